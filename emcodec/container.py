"""The .tcs container: header, measurement groups, trailer; every part checksummed.

The layout is written front to back with no seeking, so a .tcs file can be streamed
through a pipe, and read back either sequentially (a pipe) or by group through the
trailer's index (a file). docs/format.md is the specification; the constants below are
the only place the format's numbers live.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import numpy as np
import zstandard

from .errors import ChecksumError, ContainerError, VersionError

MAGIC = b"\x89TCS\r\n\x1a\n"
END_MARKER = b"TCS-END\n"
GROUP_TAG = b"TCSG"
TRAILER_TAG = b"TCSE"
FORMAT_VERSION = 1
MASK_SCHEME = "splitmix64-words-v1"

# magic, version, B, seed, density, height, width, input dtype, metadata length
HEADER = struct.Struct("<8sHHQdII8sI")
# tag, group index, valid frames, stored dtype, filter, offset, raw length, payload length
GROUP = struct.Struct("<4sIHBBqQQ")
# tag, frame count, group count, value min, value max
TRAILER = struct.Struct("<4sQIdd")
CRC = struct.Struct("<I")
TAIL = struct.Struct("<II8s")  # trailer length, trailer crc, end marker

MAX_METADATA = 1 << 20
MAX_GROUPS = 1 << 28

# The dtypes a measurement is stored in; the code is the byte in each group record.
STORED_DTYPES = {1: "uint8", 2: "uint16", 3: "uint32", 4: "uint64", 5: "float32", 6: "float64"}
STORED_CODES = {np.dtype(v): k for k, v in STORED_DTYPES.items()}
INPUT_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32")
FILTER_NONE = 0
FILTER_SHUFFLE = 1  # bytes regrouped by significance before zstd: the high bytes compress well


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

    def to_bytes(self) -> bytes:
        meta = json.dumps(self.metadata, sort_keys=True).encode("utf-8")
        fixed = HEADER.pack(
            MAGIC, self.version, self.B, self.seed, self.density, self.height, self.width,
            self.dtype.encode("ascii"), len(meta),
        )
        body = fixed + meta
        return body + CRC.pack(zlib.crc32(body))


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
class Group:
    """One decoded measurement: `measurement` holds Y in a dtype wide enough for the sum."""

    index: int
    n_valid: int
    measurement: np.ndarray
    stored_bytes: int


def pack_measurement(y: np.ndarray, level: int) -> tuple[int, int, int, int, bytes]:
    """Store Y losslessly: integers shifted to start at 0 in the narrowest unsigned type."""
    if y.dtype.kind == "f":
        stored, offset = y, 0
    else:
        offset = int(y.min()) if y.size else 0
        span = int(y.max()) - offset if y.size else 0
        narrow = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if span <= np.iinfo(t).max)
        stored = (y - offset).astype(narrow) if offset else y.astype(narrow, copy=False)
    stored = np.ascontiguousarray(stored)
    flt = FILTER_SHUFFLE if stored.itemsize > 1 else FILTER_NONE
    data = byte_shuffle(stored) if flt == FILTER_SHUFFLE else stored
    payload = zstandard.ZstdCompressor(level=level).compress(data)
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


class TcsWriter:
    """Writes a .tcs stream front to back; `close` writes the trailer."""

    def __init__(self, fileobj: BinaryIO, header: Header, level: int = 1):
        self._f = fileobj
        self.header = header
        self.level = level
        self._pos = 0
        self._offsets: list[int] = []
        self._write(header.to_bytes())

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._pos += len(data)

    def write_group(self, measurement: np.ndarray, n_valid: int) -> int:
        """Append one group; returns the bytes it took on disk."""
        start = self._pos
        code, flt, offset, raw_len, payload = pack_measurement(measurement, self.level)
        rec = GROUP.pack(GROUP_TAG, len(self._offsets), n_valid, code, flt, offset, raw_len, len(payload))
        self._write(rec + CRC.pack(zlib.crc32(rec)))
        self._write(payload + CRC.pack(zlib.crc32(payload)))
        self._offsets.append(start)
        return self._pos - start

    def close(self, frame_count: int, value_min: float, value_max: float) -> int:
        """Write the trailer; returns the total bytes written."""
        self._write(Trailer(frame_count, value_min, value_max, self._offsets).to_bytes())
        self._f.flush()
        return self._pos


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if data is None or len(data) != n:
        raise ContainerError(f"file is truncated (ends inside the {what})")
    return data


def _check_crc(data: bytes, crc_bytes: bytes, what: str) -> None:
    if zlib.crc32(data) != CRC.unpack(crc_bytes)[0]:
        raise ChecksumError(f"checksum mismatch in the {what}: the file is corrupt")


def read_header(f: BinaryIO) -> Header:
    start = f.read(HEADER.size)
    if len(start) < len(MAGIC) or start[: len(MAGIC)] != MAGIC:
        raise ContainerError("not a .tcs file (wrong magic number)")
    if len(start) < HEADER.size:
        raise ContainerError("file is truncated (ends inside the header)")
    magic, version, B, seed, density, height, width, dtype, meta_len = HEADER.unpack(start)
    if version > FORMAT_VERSION:
        raise VersionError(
            f"file has .tcs format version {version}; this emcodec reads up to {FORMAT_VERSION}: upgrade emcodec"
        )
    if meta_len > MAX_METADATA:
        raise ContainerError("header is corrupt (metadata length out of range)")
    meta = _read_exact(f, meta_len, "header")
    _check_crc(start + meta, _read_exact(f, CRC.size, "header"), "header")
    dtype_name = dtype.rstrip(b"\0").decode("ascii", "replace")
    if version < 1 or not 2 <= B <= 64 or height < 1 or width < 1 or dtype_name not in INPUT_DTYPES:
        raise ContainerError("header is corrupt (field out of range)")
    try:
        metadata = json.loads(meta.decode("utf-8")) if meta else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ContainerError("header metadata is not valid JSON") from None
    if not isinstance(metadata, dict):
        raise ContainerError("header metadata is not a JSON object")
    return Header(B, seed, height, width, dtype_name, density, metadata, version)


def _read_group_body(f: BinaryIO, header: Header, rec: bytes) -> Group:
    _check_crc(rec, _read_exact(f, CRC.size, "group record"), "group record")
    _, index, n_valid, code, flt, offset, raw_len, pay_len = GROUP.unpack(rec)
    if not 1 <= n_valid <= header.B or pay_len > raw_len + (raw_len >> 3) + (1 << 16):
        raise ContainerError(f"group {index} record is corrupt (field out of range)")
    payload = _read_exact(f, pay_len, f"group {index}")
    _check_crc(payload, _read_exact(f, CRC.size, f"group {index}"), f"group {index}")
    y = unpack_measurement(code, flt, offset, raw_len, payload, (header.height, header.width))
    return Group(index, n_valid, y, GROUP.size + 2 * CRC.size + pay_len)


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
        f.seek(self._data_start)
        return trailer

    @property
    def n_groups(self) -> int | None:
        return None if self.trailer is None else len(self.trailer.offsets)

    def read_group(self, index: int) -> Group:
        """One group by its index (seekable files only)."""
        if self.trailer is None:
            raise ContainerError("random access needs a seekable file, not a stream")
        self._f.seek(self.trailer.offsets[index])
        rec = _read_exact(self._f, GROUP.size, f"group {index} record")
        if rec[:4] != GROUP_TAG:
            raise ContainerError(f"group {index} not found at its indexed offset: the file is corrupt")
        group = _read_group_body(self._f, self.header, rec)
        if group.index != index:
            raise ContainerError(f"group {index} record holds index {group.index}: the file is corrupt")
        return group

    def verify(self, indices=None) -> None:
        """Check the checksums of these groups (default: all) without decoding them.

        Run before a long decode, so a damaged file is reported before any work is done.
        """
        for index in range(self.n_groups) if indices is None else indices:
            self._f.seek(self.trailer.offsets[index])
            rec = _read_exact(self._f, GROUP.size, f"group {index} record")
            if rec[:4] != GROUP_TAG:
                raise ContainerError(f"group {index} not found at its indexed offset: the file is corrupt")
            _check_crc(rec, _read_exact(self._f, CRC.size, "group record"), "group record")
            pay_len = GROUP.unpack(rec)[7]
            payload = _read_exact(self._f, pay_len, f"group {index}")
            _check_crc(payload, _read_exact(self._f, CRC.size, f"group {index}"), f"group {index}")

    def groups(self) -> Iterator[Group]:
        """Every group in order, reading sequentially; afterwards `trailer` is set."""
        if self._data_start is not None:
            self._f.seek(self._data_start)
        expected = 0
        while True:
            tag = _read_exact(self._f, 4, "group sequence")
            if tag == TRAILER_TAG:
                self._finish_stream(tag, expected)
                return
            if tag != GROUP_TAG:
                raise ContainerError(f"file is corrupt (unexpected bytes where group {expected} should start)")
            rec = tag + _read_exact(self._f, GROUP.size - 4, f"group {expected} record")
            group = _read_group_body(self._f, self.header, rec)
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
        self.trailer = trailer
