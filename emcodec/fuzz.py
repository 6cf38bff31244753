"""Structure-aware mutation of .tcs files: one field set to an awkward value, checksums redone.

A random bit flip is caught by the CRCs; this reaches what lies behind them (a crafted file
or a buggy writer). Used by tests/test_fuzz.py (hypothesis) and benchmarks/fuzz.py (many files).
"""

from __future__ import annotations

import io
import json
import struct
import zlib

from .container import CODING, CRC, GROUP, HEADER, TAIL, TRAILER, TcsReader

INTS = (0, 1, 2, 3, 4, 63, 64, 65, 255, 256, 65535, 2**20, 2**31 - 1, 2**32 - 1, 2**40, 2**62, 2**63 - 1, -1,
        -(2**31), -(2**63))
FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 1e-9, 1e-300, 5e-324, 1e300, -1e300, float("inf"), float("-inf"),
          float("nan"), 255.0, 65535.0, 1e12)

# (region, name, struct code, offset within the region)
HEADER_FIELDS = [("header", n, c, o) for n, c, o in (
    ("version", "H", 8), ("B", "H", 10), ("seed", "Q", 12), ("density", "d", 20), ("height", "I", 28),
    ("width", "I", 32), ("dtype", "8s", 36))]
CODING_FIELDS = [("coding", n, c, o) for n, c, o in (
    ("transform", "B", 0), ("step", "d", 4), ("gain", "d", 12), ("offset", "d", 20), ("read_noise", "d", 28))]
RECORD_FIELDS = [("record", n, c, o) for n, c, o in (
    ("index", "I", 4), ("n_frames", "H", 8), ("stored_dtype", "B", 10), ("filter", "B", 11), ("offset", "q", 12),
    ("raw_length", "Q", 20), ("payload_length", "Q", 28), ("first", "B", 36), ("parts", "B", 37))]
TRAILER_FIELDS = [("trailer", n, c, o) for n, c, o in (
    ("frame_count", "Q", 4), ("group_count", "I", 12), ("value_min", "d", 16), ("value_max", "d", 24))]
FIELDS = HEADER_FIELDS + CODING_FIELDS + RECORD_FIELDS + TRAILER_FIELDS + [("trailer", "group_offset", "Q", 32)]
DTYPE_NAMES = (b"uint8", b"int8", b"uint16", b"int16", b"uint32", b"int32", b"float32", b"float64", b"", b"\xff")


def fit(code: str, value):
    """`value` made to fit a struct code (wrapped for integers), so every pick is writable."""
    if code == "d":
        return float(value)
    if not isinstance(value, bytes):
        value = int(value) if value == value and abs(value) != float("inf") else 0
    if code == "8s":
        return value if isinstance(value, bytes) else DTYPE_NAMES[value % len(DTYPE_NAMES)]
    bits = struct.calcsize(code) * 8
    if code.islower():
        return (value + 2 ** (bits - 1)) % 2**bits - 2 ** (bits - 1)
    return value % 2**bits


class Layout:
    """Where the fields of a (valid, version >= 2) file are."""

    def __init__(self, data: bytes):
        r = TcsReader(io.BytesIO(data))
        self.meta_len = struct.unpack_from("<I", data, 44)[0]
        self.coding = HEADER.size + self.meta_len
        self.records = [off for g in range(r.n_groups) for off in self._parts(data, r.trailer.offsets[g])]
        length = TAIL.unpack_from(data, len(data) - TAIL.size)[0]
        self.trailer = len(data) - TAIL.size - length
        self.n_groups = r.n_groups

    @staticmethod
    def _parts(data: bytes, off: int):
        n_parts = data[off + 37]
        for _ in range(n_parts):
            yield off
            flt, pay = data[off + 11], struct.unpack_from("<Q", data, off + 28)[0]
            extra = 0
            if flt & 0x80:
                extra = 4 + struct.unpack_from("<I", data, off + GROUP.size + CRC.size)[0] + CRC.size
            off += GROUP.size + CRC.size + extra + pay + CRC.size


def reseal(data: bytearray, lay: Layout) -> bytes:
    """Recompute every CRC after fields were changed in place."""
    end = lay.coding + CODING.size
    data[end : end + CRC.size] = CRC.pack(zlib.crc32(bytes(data[:end])))
    for off in lay.records:
        rec = bytes(data[off : off + GROUP.size])
        data[off + GROUP.size : off + GROUP.size + CRC.size] = CRC.pack(zlib.crc32(rec))
    tail = len(data) - TAIL.size
    body = bytes(data[lay.trailer : tail])
    data[tail + 4 : tail + 8] = CRC.pack(zlib.crc32(body))
    return bytes(data)


def set_field(data: bytes, field: tuple, value, which: int = 0) -> bytes:
    """`data` with one field (of the which-th record or group offset) set to `value`, CRCs redone."""
    lay = Layout(data)
    region, name, code, off = field
    base = {"header": 0, "coding": lay.coding, "trailer": lay.trailer}.get(region)
    if region == "record":
        base = lay.records[which % len(lay.records)]
    if name == "group_offset":
        off += 8 * (which % lay.n_groups)
    buf = bytearray(data)
    struct.pack_into("<" + code, buf, base + off, fit(code, value))
    return reseal(buf, lay)


def set_metadata(data: bytes, metadata) -> bytes:
    """`data` with its header metadata replaced by any JSON value (offsets and CRCs redone)."""
    lay = Layout(data)
    meta = json.dumps(metadata).encode() if not isinstance(metadata, bytes) else metadata
    delta = len(meta) - lay.meta_len
    fixed = bytearray(data[: HEADER.size])
    struct.pack_into("<I", fixed, 44, len(meta))
    buf = bytearray(bytes(fixed) + meta + data[lay.coding :])
    lay.coding += delta
    lay.records = [o + delta for o in lay.records]
    lay.trailer += delta
    for g in range(lay.n_groups):
        pos = lay.trailer + TRAILER.size + 8 * g
        struct.pack_into("<Q", buf, pos, struct.unpack_from("<Q", buf, pos)[0] + delta)
    return reseal(buf, lay)


def base_files(folder) -> dict[str, bytes]:
    """The two files every fuzz run mutates: a quantised uint16 movie with a short last group
    and a lossless float32 movie (B = 4, tiny), compressed in `folder`."""
    from pathlib import Path

    import numpy as np
    import tifffile

    from . import codec

    folder = Path(folder)
    rng = np.random.default_rng(7)
    out = {}
    for name, frames in (("u16", rng.poisson(200, (10, 16, 24)).astype(np.uint16)),
                         ("f32", (50 + rng.normal(0, 3, (8, 16, 24))).astype(np.float32))):
        tifffile.imwrite(folder / f"{name}.tif", frames, photometric="minisblack")
        codec.compress(folder / f"{name}.tif", folder / f"{name}.tcs", B=4)
        out[name] = (folder / f"{name}.tcs").read_bytes()
    return out
