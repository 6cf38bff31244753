"""The .tcs container: header, measurement groups, trailer; every part checksummed.

The layout is written front to back with no seeking, so a .tcs file can be streamed
through a pipe, and read back either sequentially (a pipe) or by group through the
trailer's index (a file). docs/format.md is the specification; the constants below are
the only place the format's numbers live.
"""

from __future__ import annotations

import json
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import numpy as np
import zstandard

from . import badpixels, fields
from .errors import ChecksumError, ContainerError, VersionError
from .quantize import TRANSFORM_ANSCOMBE, TRANSFORM_NONE, TRANSFORMS, Quantizer, to_unsigned

MAGIC = b"\x89TCS\r\n\x1a\n"
END_MARKER = b"TCS-END\n"
GROUP_TAG = b"TCSG"
TRAILER_TAG = b"TCSE"
FORMAT_VERSION = 3  # 2: quantised measurements (header coding block), groups split into parts
# 3: float input only: a part may carry a bad-pixel map (FLAG_BAD_PIXELS); integer files stay 2
MASK_SCHEME = "splitmix64-words-v1"

# magic, version, B, seed, density, height, width, input dtype, metadata length
HEADER = struct.Struct("<8sHHQdII8sI")
# version >= 2, after the metadata: transform, step, detector gain, offset, read noise
CODING = struct.Struct("<B3xdddd")
# tag, group index, valid frames, stored dtype, filter, offset, raw length, payload length
GROUP_V1 = struct.Struct("<4sIHBBqQQ")
# version >= 2: the same, then the part's first frame within the group and the group's part count
GROUP = struct.Struct("<4sIHBBqQQBB")
# tag, frame count, group count, value min, value max
TRAILER = struct.Struct("<4sQIdd")
CRC = struct.Struct("<I")
TAIL = struct.Struct("<II8s")  # trailer length, trailer crc, end marker

MAX_METADATA = 1 << 25  # 32 MiB: room for a source's own metadata (at most 16 MiB) and ours
MAX_GROUPS = 1 << 28

# The dtypes a measurement is stored in; the code is the byte in each group record.
STORED_DTYPES = {1: "uint8", 2: "uint16", 3: "uint32", 4: "uint64", 5: "float32", 6: "float64"}
STORED_CODES = {np.dtype(v): k for k, v in STORED_DTYPES.items()}
INPUT_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32")
FILTER_NONE = 0
FILTER_SHUFFLE = 1  # bytes regrouped by significance before zstd: the high bytes compress well
FLAG_BAD_PIXELS = 0x80  # in the filter byte (version 3): a bad-pixel map follows the part's record
BAD_MAP_LENGTH = struct.Struct("<I")


@dataclass
class Header:
    """What a decoder needs to rebuild the movie, and what the source looked like."""

    B: int
    seed: int
    height: int
    width: int
    dtype: str
    density: float = 0.5
    metadata: dict = field(default_factory=dict)
    version: int = FORMAT_VERSION
    quantizer: Quantizer | None = None  # None: the measurement is stored losslessly

    def to_bytes(self) -> bytes:
        if self.version not in (2, FORMAT_VERSION):
            raise ValueError(f"emcodec writes .tcs format versions 2 and {FORMAT_VERSION} only")
        meta = json.dumps(self.metadata, sort_keys=True).encode("utf-8")
        fixed = HEADER.pack(
            MAGIC, self.version, self.B, self.seed, self.density, self.height, self.width,
            self.dtype.encode("ascii"), len(meta),
        )
        q = self.quantizer
        coding = (CODING.pack(TRANSFORM_ANSCOMBE, q.step, q.gain, q.offset, q.read_noise) if q
                  else CODING.pack(TRANSFORM_NONE, 0.0, 0.0, 0.0, 0.0))
        body = fixed + meta + coding
        return body + CRC.pack(zlib.crc32(body))

    @property
    def coding(self) -> dict:
        """How the measurement is stored, as `emcodec info` reports it."""
        if self.quantizer is None:
            return {"quantize": "off", "transform": TRANSFORMS[TRANSFORM_NONE]}
        return {"quantize": "on", **self.quantizer.describe()}


@dataclass
class Trailer:
    """What is only known at the end: the frame count, value range and the group index."""

    frame_count: int
    value_min: float
    value_max: float
    offsets: list[int]

    def to_bytes(self) -> bytes:
        body = TRAILER.pack(TRAILER_TAG, self.frame_count, len(self.offsets), self.value_min, self.value_max)
        body += np.asarray(self.offsets, dtype="<u8").tobytes()
        return body + TAIL.pack(len(body), zlib.crc32(body), END_MARKER)


@dataclass
class Part:
    """One measurement: frames first .. first+n_frames-1 of its group, padded to B.

    A group is one part, unless the encoder found a scene cut inside it and split it there.
    `measurement` is Y (integers exactly; a quantised Y as each code's mean, in float64).
    """

    first: int
    n_frames: int
    measurement: np.ndarray
    bad: np.ndarray | None = None  # (H, W) pixels non-finite in any of its input frames (version 3)


@dataclass
class Group:
    index: int
    n_valid: int
    parts: list[Part]
    stored_bytes: int

    @property
    def measurement(self) -> np.ndarray:
        """The measurement of a group stored in one part."""
        if len(self.parts) != 1:
            raise ContainerError(f"group {self.index} is split into {len(self.parts)} parts")
        return self.parts[0].measurement


def pack_measurement(y: np.ndarray, zstd: zstandard.ZstdCompressor,
                     offset: int | None = None) -> tuple[int, int, int, int, bytes]:
    """Store Y losslessly: integers shifted to start at 0 in the narrowest unsigned type.

    With `offset`, y holds unsigned values ready to store (the quantiser's codes less `offset`).
    `zstd` is the caller's: making a compressor per group cost a quarter of the packing.
    """
    if y.dtype.kind == "f":
        stored, offset = y, 0
    elif offset is not None:
        stored = y
    else:
        stored, offset = to_unsigned(y)  # as the quantiser stores its codes
    stored = np.ascontiguousarray(stored)
    flt = FILTER_SHUFFLE if stored.itemsize > 1 else FILTER_NONE
    data = byte_shuffle(stored) if flt == FILTER_SHUFFLE else stored
    payload = zstd.compress(data)
    return STORED_CODES[stored.dtype], flt, offset, stored.nbytes, payload


def byte_shuffle(a: np.ndarray) -> np.ndarray:
    """Byte planes, least significant first; shifts are several times faster than a transpose."""
    words = a.reshape(-1).view(f"u{a.itemsize}")
    planes = np.empty((a.itemsize, words.size), dtype=np.uint8)
    np.copyto(planes[0], words, casting="unsafe")  # keeps the low byte
    for i in range(1, a.itemsize):
        np.right_shift(words, 8 * i, out=planes[i], casting="unsafe")
    return planes


def unpack_measurement(code: int, flt: int, offset: int, raw_len: int, payload: bytes, shape) -> np.ndarray:
    flt &= ~FLAG_BAD_PIXELS
    if code not in STORED_DTYPES or flt not in (FILTER_NONE, FILTER_SHUFFLE):
        raise ContainerError(f"unknown measurement encoding (dtype code {code}, filter {flt})")
    dtype = np.dtype(STORED_DTYPES[code]).newbyteorder("<")
    if raw_len != shape[0] * shape[1] * dtype.itemsize:
        raise ContainerError("group size does not match the frame shape in the header")
    try:
        raw = zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw_len)
    except zstandard.ZstdError as exc:
        raise ContainerError(f"measurement data cannot be decompressed: {exc}") from None
    if len(raw) != raw_len:
        raise ContainerError("measurement data has the wrong length")
    data = np.frombuffer(raw, dtype=np.uint8)
    if flt == FILTER_SHUFFLE:
        data = data.reshape(dtype.itemsize, -1).T
    y = np.ascontiguousarray(data).view(dtype).reshape(shape).astype(dtype.newbyteorder("="))
    if dtype.kind == "f":
        return y
    return y.astype(np.int64) + offset if offset else y


_THREAD = threading.local()


def zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    """This thread's compressor for `level`, kept between files: a new one costs as much as
    packing a 256x256 group (zstd's advice is to reuse them; one thread at a time may)."""
    kept = _THREAD.__dict__.setdefault("zstd", {})
    if level not in kept:
        kept[level] = zstandard.ZstdCompressor(level=level)
    return kept[level]


class TcsWriter:
    """Writes a .tcs stream front to back; `close` writes the trailer."""

    def __init__(self, fileobj: BinaryIO, header: Header, level: int = 1):
        self._f = fileobj
        self.header = header
        self._zstd = zstd_compressor(level)  # groups are packed one at a time, on one thread at a time
        self._pos = 0
        self._offsets: list[int] = []
        self._lut: dict = {}  # the quantiser's table, kept between groups
        self._write(header.to_bytes())

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._pos += len(data)

    def write_group(self, measurement: np.ndarray, n_valid: int) -> int:
        """Append one group stored in one part; returns the bytes it took on disk."""
        return self.write_parts([(0, n_valid, measurement)])

    def write_parts(self, parts: list[tuple]) -> int:
        """Append one group as parts (first frame, frames, measurement[, bad-pixel map]);
        returns its bytes on disk. A map (float input, version 3) marks pixels that were not
        finite in any of the part's frames."""
        if not 1 <= len(parts) <= self.header.B:
            raise ValueError(f"a group has 1..{self.header.B} parts, got {len(parts)}")
        start = self._pos
        q = self.header.quantizer
        for first, n, y, *rest in parts:
            bad = rest[0] if rest and rest[0] is not None and rest[0].any() else None
            offset = None
            if q is not None:
                y, offset = q.quantize(y, self._lut)
            code, flt, offset, raw_len, payload = pack_measurement(y, self._zstd, offset)
            if bad is not None:
                if self.header.version < 3:
                    raise ValueError("a bad-pixel map needs .tcs format version 3")
                flt |= FLAG_BAD_PIXELS
            rec = GROUP.pack(GROUP_TAG, len(self._offsets), n, code, flt, offset, raw_len, len(payload),
                             first, len(parts))
            self._write(rec + CRC.pack(zlib.crc32(rec)))
            if bad is not None:
                packed = badpixels.pack(bad)
                block = BAD_MAP_LENGTH.pack(len(packed)) + packed
                self._write(block + CRC.pack(zlib.crc32(block)))
            self._write(payload + CRC.pack(zlib.crc32(payload)))
        self._offsets.append(start)
        return self._pos - start

    def close(self, frame_count: int, value_min: float, value_max: float) -> int:
        """Write the trailer; returns the total bytes written."""
        self._write(Trailer(frame_count, value_min, value_max, self._offsets).to_bytes())
        self._f.flush()
        return self._pos


READ_CHUNK = 1 << 24  # a length field is never trusted with one allocation larger than this


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    """n bytes, or ContainerError. A length beyond the file's end is refused before reading,
    and a stream is read in chunks, so a crafted length of 2^40 allocates nothing."""
    if n > READ_CHUNK:
        try:
            here, end = f.tell(), f.seek(0, 2)
            f.seek(here)
        except (AttributeError, OSError, ValueError):
            here = end = None
        if end is not None and n > end - here:
            raise ContainerError(f"file is truncated or corrupt (the {what} would end past the end of the file)")
        data = bytearray()
        while len(data) < n:
            chunk = f.read(min(READ_CHUNK, n - len(data)))
            if not chunk:
                break
            data += chunk
        data = bytes(data)
    else:
        data = f.read(n)
    if data is None or len(data) != n:
        raise ContainerError(f"file is truncated (ends inside {_the(what)})")
    return data


def _the(what: str) -> str:
    """'the header', but 'group 3' (a numbered record takes no article)."""
    return what if re.fullmatch(r"group \d+( part \d+)?", what) else f"the {what}"


def _check_crc(data: bytes, crc_bytes: bytes, what: str) -> None:
    if zlib.crc32(data) != CRC.unpack(crc_bytes)[0]:
        raise ChecksumError(f"checksum mismatch in {_the(what)}: the file is corrupt")


def read_header(f: BinaryIO) -> Header:
    start = f.read(HEADER.size)
    if len(start) < len(MAGIC) or start[: len(MAGIC)] != MAGIC:
        raise ContainerError("not a .tcs file (wrong magic number)")
    if len(start) < HEADER.size:
        raise ContainerError("file is truncated (ends inside the header)")
    magic, version, B, seed, density, height, width, dtype, meta_len = HEADER.unpack(start)
    if version > FORMAT_VERSION:
        _refuse_version(f, start, version, meta_len)
    if meta_len > MAX_METADATA:
        raise ContainerError("header is corrupt (metadata length out of range)")
    meta = _read_exact(f, meta_len, "header")
    coding = _read_exact(f, CODING.size, "header") if version >= 2 else b""
    _check_crc(start + meta + coding, _read_exact(f, CRC.size, "header"), "header")
    dtype_name = dtype.rstrip(b"\0").decode("ascii", "replace")
    if version < 1 or not 2 <= B <= 64 or height < 1 or width < 1 or dtype_name not in INPUT_DTYPES:
        raise ContainerError("header is corrupt (field out of range)")
    try:
        metadata = json.loads(meta.decode("utf-8")) if meta else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ContainerError("header metadata is not valid JSON") from None
    except RecursionError:
        raise ContainerError("header metadata is nested too deeply") from None
    if not isinstance(metadata, dict):
        raise ContainerError("header metadata is not a JSON object")
    fields.check_shape(height, width, density)
    fields.check_metadata(metadata)
    quantizer = _read_coding(coding, B * density, dtype_name) if coding else None
    return Header(B, seed, height, width, dtype_name, density, metadata, version, quantizer)


def _refuse_version(f: BinaryIO, start: bytes, version: int, meta_len: int) -> None:
    """A version above ours: a damaged version field (the header's CRC matches with a known
    version in its place) is reported as damage, not as a reason to upgrade."""
    if meta_len <= MAX_METADATA:
        rest = f.read(meta_len + CODING.size + CRC.size)
        for known, extra in ((3, CODING.size), (2, CODING.size), (1, 0)):
            if len(rest) < meta_len + extra + CRC.size:
                continue
            body = start[:8] + struct.pack("<H", known) + start[10:] + rest[: meta_len + extra]
            if zlib.crc32(body) == CRC.unpack_from(rest, meta_len + extra)[0]:
                raise ChecksumError("checksum mismatch in the header (damaged format version field): "
                                    "the file is corrupt")
    raise VersionError(
        f"file has .tcs format version {version}; this emcodec reads up to {FORMAT_VERSION}: upgrade emcodec"
    )


def _read_coding(coding: bytes, frames: float, dtype: str) -> Quantizer | None:
    transform, step, gain, offset, read_noise = CODING.unpack(coding)
    if transform == TRANSFORM_NONE:
        return None
    if transform != TRANSFORM_ANSCOMBE:
        raise ContainerError(f"unknown measurement transform {transform}: upgrade emcodec")
    if dtype == "float32":
        raise ContainerError("header is corrupt (a quantised measurement of float input)")
    try:
        return Quantizer(step, gain, offset, read_noise, frames)
    except ValueError as exc:
        raise ContainerError(f"header is corrupt ({exc})") from None


def group_record(version: int) -> struct.Struct:
    return GROUP if version >= 2 else GROUP_V1


@dataclass
class _Record:
    """A part's record: where its payload is and what it holds."""

    index: int
    n_frames: int
    code: int
    flt: int
    offset: int
    raw_len: int
    pay_len: int
    first: int = 0
    parts: int = 1


def _read_record(f: BinaryIO, header: Header, rec: bytes) -> _Record:
    """Check a record (its tag already read into `rec`, the rest too) and its CRC."""
    _check_crc(rec, _read_exact(f, CRC.size, "group record"), "group record")
    r = _Record(*group_record(header.version).unpack(rec)[1:])
    if (not 1 <= r.n_frames <= header.B or not 1 <= r.parts <= header.B or r.first + r.n_frames > header.B
            or r.pay_len > r.raw_len + (r.raw_len >> 3) + (1 << 16)):
        raise ContainerError(f"group {r.index} record is corrupt (field out of range)")
    code = r.code if r.code in STORED_DTYPES else None
    if code is None or r.raw_len != header.height * header.width * np.dtype(STORED_DTYPES[code]).itemsize:
        raise ContainerError(f"group {r.index} record is corrupt (its size does not match the frame shape)")
    fields.check_record(r.index, np.dtype(STORED_DTYPES[code]).kind, r.offset, header.dtype,
                        header.quantizer is not None)
    if r.flt & FLAG_BAD_PIXELS and (header.version < 3 or header.dtype != "float32"):
        raise ContainerError(f"group {r.index} record is corrupt (a bad-pixel map in a file that cannot have one)")
    return r


def _read_bad_map(f: BinaryIO, header: Header, r: _Record, payloads: str) -> tuple[np.ndarray | None, int]:
    """The part's bad-pixel map (None unless flagged; not unpacked when only checking) and its bytes."""
    if not r.flt & FLAG_BAD_PIXELS:
        return None, 0
    what = f"group {r.index} bad-pixel map"
    head = _read_exact(f, BAD_MAP_LENGTH.size, what)
    (n,) = BAD_MAP_LENGTH.unpack(head)
    if n > badpixels.max_packed((header.height, header.width)):
        raise ContainerError(f"{what} is corrupt (length out of range)")
    data = _read_exact(f, n, what)
    _check_crc(head + data, _read_exact(f, CRC.size, what), what)
    size = BAD_MAP_LENGTH.size + n + CRC.size
    if payloads == CHECK:
        return None, size
    try:
        return badpixels.unpack(data, (header.height, header.width)), size
    except ValueError as exc:
        raise ContainerError(f"{what} is corrupt ({exc})") from None


def _next_record(f: BinaryIO, header: Header, what: str) -> _Record:
    size = group_record(header.version).size
    rec = _read_exact(f, size, f"{what} record")
    if rec[:4] != GROUP_TAG:
        raise ContainerError(f"{what} not found where its record should start: the file is corrupt")
    return _read_record(f, header, rec)


DECODE, CHECK, SKIP = "decode", "check", "skip"


def _read_group_rest(f: BinaryIO, header: Header, r: _Record, payloads: str = DECODE) -> Group:
    """The group whose first record `r` was just read: its payloads and any further parts.

    `payloads`: DECODE them, CHECK their CRCs only, or SKIP over them (records only).
    """
    index, n_parts = r.index, r.parts
    parts, stored, n_valid = [], 0, 0
    for i in range(n_parts):
        if i:
            r = _next_record(f, header, f"group {index} part {i}")
        if r.index != index or r.parts != n_parts or r.first != n_valid:
            raise ContainerError(f"group {index} parts are inconsistent: the file is corrupt")
        bad, map_bytes = _read_bad_map(f, header, r, payloads)
        stored += group_record(header.version).size + 2 * CRC.size + r.pay_len + map_bytes
        n_valid += r.n_frames
        if payloads == SKIP:
            f.seek(r.pay_len + CRC.size, 1)
            parts.append(Part(r.first, r.n_frames, None, bad))
            continue
        payload = _read_exact(f, r.pay_len, f"group {index}")
        _check_crc(payload, _read_exact(f, CRC.size, f"group {index}"), f"group {index}")
        y = None
        if payloads == DECODE:
            y = unpack_measurement(r.code, r.flt, r.offset, r.raw_len, payload, (header.height, header.width))
            if header.quantizer is not None:
                y = header.quantizer.dequantize(y)
        parts.append(Part(r.first, r.n_frames, y, bad))
    return Group(index, n_valid, parts, stored)


def _parse_trailer(body: bytes) -> Trailer:
    _, frames, n_groups, vmin, vmax = TRAILER.unpack(body[: TRAILER.size])
    if len(body) != TRAILER.size + 8 * n_groups:
        raise ContainerError("trailer is corrupt (group count does not match its length)")
    offsets = np.frombuffer(body[TRAILER.size :], dtype="<u8").tolist()
    return Trailer(frames, vmin, vmax, offsets)


class TcsReader:
    """Reads a .tcs stream; random access to groups when the file is seekable."""

    def __init__(self, fileobj: BinaryIO):
        self._f = fileobj
        self.header = read_header(fileobj)
        self._data_start = fileobj.tell() if self._seekable() else None
        self.trailer: Trailer | None = self._read_tail() if self._data_start is not None else None

    def _seekable(self) -> bool:
        try:
            return self._f.seekable()
        except (AttributeError, OSError, ValueError):
            return False

    def _read_tail(self) -> Trailer:
        f = self._f
        end = f.seek(0, 2)
        if end - self._data_start < TAIL.size + TRAILER.size:
            raise ContainerError("file is truncated (no trailer)")
        f.seek(end - TAIL.size)
        length, crc, marker = TAIL.unpack(f.read(TAIL.size))
        if marker != END_MARKER:
            raise ContainerError("file is truncated or damaged (no end marker)")
        if not TRAILER.size <= length <= end - self._data_start - TAIL.size:
            raise ContainerError("trailer is corrupt (length out of range)")
        f.seek(end - TAIL.size - length)
        body = f.read(length)
        if body[:4] != TRAILER_TAG:
            raise ContainerError("trailer is corrupt (no trailer tag)")
        if zlib.crc32(body) != crc:
            raise ChecksumError("checksum mismatch in the trailer: the file is corrupt")
        trailer = _parse_trailer(body)
        n = len(trailer.offsets)
        if n > MAX_GROUPS or trailer.frame_count > n * self.header.B or trailer.frame_count <= (n - 1) * self.header.B:
            raise ContainerError("trailer is corrupt (frame count does not match the groups)")
        if any(not self._data_start <= o < end - TAIL.size - length for o in trailer.offsets):
            raise ContainerError("trailer is corrupt (group offset out of range)")
        fields.check_value_range(trailer.value_min, trailer.value_max, self.header.dtype)
        f.seek(self._data_start)
        return trailer

    @property
    def n_groups(self) -> int | None:
        return None if self.trailer is None else len(self.trailer.offsets)

    def read_group(self, index: int, payloads: str = DECODE) -> Group:
        """One group by its index (seekable files only)."""
        if self.trailer is None:
            raise ContainerError("random access needs a seekable file, not a stream")
        self._f.seek(self.trailer.offsets[index])
        group = _read_group_rest(self._f, self.header, _next_record(self._f, self.header, f"group {index}"),
                                 payloads)
        if group.index != index:
            raise ContainerError(f"group {index} record holds index {group.index}: the file is corrupt")
        t, B = self.trailer, self.header.B
        if group.n_valid != min(B, t.frame_count - index * B):
            raise ContainerError(f"group {index} holds {group.n_valid} frames where the trailer implies "
                                 f"{min(B, t.frame_count - index * B)}: the file is inconsistent")
        if payloads == DECODE:
            for part in group.parts:
                fields.check_measurement(part.measurement, B, t.value_min, t.value_max, index)
        return group

    def verify(self, indices=None) -> None:
        """Check the checksums of these groups (default: all) without decoding them.

        Run before a long decode, so a damaged file is reported before any work is done.
        """
        for index in range(self.n_groups) if indices is None else indices:
            self.read_group(index, payloads=CHECK)

    def layout(self) -> list[list[tuple[int, int]]]:
        """Each group's parts as (first frame, frames), from the records alone (cheap)."""
        return [[(p.first, p.n_frames) for p in self.read_group(g, payloads=SKIP).parts]
                for g in range(self.n_groups)]

    def check_all(self) -> int:
        """Every checksum in the file, read front to back; returns the group count.

        Also checks that the trailer's index points at the groups found and that nothing
        follows the end marker, so every byte of the file has been accounted for.
        """
        index = None if self.trailer is None else list(self.trailer.offsets)
        starts: list[int] = []
        n = sum(1 for _ in self.groups(CHECK, starts))
        if index is not None and index != starts:
            raise ContainerError("trailer is corrupt (its group index does not match the groups)")
        if self._f.read(1):
            raise ContainerError("file is corrupt (bytes after the end marker)")
        return n

    def groups(self, payloads: str = DECODE, starts: list | None = None) -> Iterator[Group]:
        """Every group in order, reading sequentially; afterwards `trailer` is set.

        `payloads` as for read_group; `starts`, when given, collects each group's offset.
        """
        if self._data_start is not None:
            self._f.seek(self._data_start)
        expected = 0
        size = group_record(self.header.version).size
        while True:
            if starts is not None and self._data_start is not None:
                starts.append(self._f.tell())
            tag = _read_exact(self._f, 4, "group sequence")
            if tag == TRAILER_TAG:
                if starts:
                    starts.pop()
                self._finish_stream(tag, expected)
                return
            if tag != GROUP_TAG:
                raise ContainerError(f"file is corrupt (unexpected bytes where group {expected} should start)")
            rec = tag + _read_exact(self._f, size - 4, f"group {expected} record")
            group = _read_group_rest(self._f, self.header, _read_record(self._f, self.header, rec), payloads)
            if group.index != expected:
                raise ContainerError(f"groups out of order: found {group.index}, expected {expected}")
            expected += 1
            yield group

    def _finish_stream(self, tag: bytes, n_groups: int) -> None:
        rest = _read_exact(self._f, TRAILER.size - 4, "trailer")
        count = struct.unpack_from("<I", rest, 8)[0]
        if count != n_groups:
            raise ContainerError(f"trailer lists {count} groups but the file holds {n_groups}")
        body = tag + rest + _read_exact(self._f, 8 * count, "trailer")
        length, crc, marker = TAIL.unpack(_read_exact(self._f, TAIL.size, "trailer"))
        if marker != END_MARKER or length != len(body):
            raise ContainerError("file is truncated or damaged (no end marker)")
        if zlib.crc32(body) != crc:
            raise ChecksumError("checksum mismatch in the trailer: the file is corrupt")
        trailer = _parse_trailer(body)
        if not (n_groups - 1) * self.header.B < trailer.frame_count <= n_groups * self.header.B:
            raise ContainerError("trailer is corrupt (frame count does not match the groups)")
        fields.check_value_range(trailer.value_min, trailer.value_max, self.header.dtype)
        self.trailer = trailer
