"""Larger DM4 stacks for tests and benchmarks, made from a real DM4 file written by Gatan's
DigitalMicrograph.

RosettaSciIO reads DM3/DM4 but cannot write them, and the real DM4 files at hand
(../shared/data/vendor) are 2 x 2 x 2 stacks. Rather than write a DM4 from nothing, a real
stack is kept byte for byte except the fields that state its size, and its data array is
replaced by frames of any number and size (of the stack's own pixel type). The fields are
those of the DM4 tag file as published (Gatan's DM3/DM4 tag structure, as described by
C. Boothroyd and B. Schaffer and read by RosettaSciIO's digitalmicrograph plugin):

* header, big-endian: version (uint32, 4), size of the root tag group (uint64), byte order
  of the data (uint32, 1 = little-endian);
* a tag group: sorted (uint8), open (uint8), number of tags (uint64), then its tags;
* a tag: kind (uint8: 20 group, 21 data), name length (uint16), name, then (DM4 only) the
  number of bytes that follow in this tag (uint64); a data tag goes on with '%%%%', the
  length of its type description (uint64), the description (uint64 each; an array of a
  simple type is 20, element type, element count) and the values in the file's byte order;
* the file ends with 8 zero bytes.

So the stack's ImageData.Data array gets its new element count and byte count, the groups
around it (ImageData, its ImageList entry, ImageList) and the header's root size grow by
the same number of bytes, and ImageData.Dimensions (x, y, frames; uint32) state the new
shape. Nothing else in the file changes; frames are written as they are given, so a stack
larger than memory can be built.
"""

from __future__ import annotations

import struct

import numpy as np

_SIMPLE = {2: "i2", 3: "i4", 4: "u2", 5: "u4", 6: "f4", 7: "f8", 8: "u1", 9: "i1", 10: "i1", 11: "i8", 12: "u8"}


def _value_bytes(info: tuple) -> int:
    size = lambda t: np.dtype(_SIMPLE[t]).itemsize  # noqa: E731
    if len(info) == 1:
        return size(info[0])
    if info[0] == 20 and len(info) == 3:  # array of a simple type
        return size(info[1]) * info[2]
    if info[0] == 15:  # struct: 15, name length, field count, (name length, type) per field
        return sum(size(info[4 + 2 * k]) for k in range(info[2]))
    if info[0] == 20 and info[1] == 15:  # array of structs, the count last
        return sum(size(info[5 + 2 * k]) for k in range(info[3])) * info[-1]
    raise ValueError(f"a DM4 tag type this helper does not follow: {info}")


def parse_dm4(buf: bytes) -> dict:
    """Every tag of a DM4 file: path -> (kind, offset of its byte-count field, info, offset
    of its values, byte length of its values). Groups have info None."""
    version, _, _ = struct.unpack(">IQI", buf[:16])
    if version != 4:
        raise ValueError(f"not a DM4 file (version {version})")
    tags: dict = {}

    def group(pos: int, path: str) -> int:
        _, _, n = struct.unpack(">BBQ", buf[pos : pos + 10])
        pos += 10
        for i in range(n):
            kind, name_len = struct.unpack(">BH", buf[pos : pos + 3])
            name = buf[pos + 3 : pos + 3 + name_len].decode("latin-1") or f"[{i}]"
            pos += 3 + name_len
            count_at = pos
            pos += 8
            here = f"{path}.{name}" if path else name
            if kind == 20:
                pos = group(pos, here)
                tags[here] = (20, count_at, None, None, None)
            elif kind == 21:
                if buf[pos : pos + 4] != b"%%%%":
                    raise ValueError(f"tag {here}: no '%%%%' delimiter")
                (n_info,) = struct.unpack(">Q", buf[pos + 4 : pos + 12])
                info = struct.unpack(f">{n_info}Q", buf[pos + 12 : pos + 12 + 8 * n_info])
                pos += 12 + 8 * n_info
                length = _value_bytes(info)
                tags[here] = (21, count_at, info, pos, length)
                pos += length
            else:
                raise ValueError(f"tag {here}: unknown kind {kind}")
        return pos

    end = group(16, "")
    tags[""] = (20, None, None, None, end)
    return tags


def _stack_image(tags: dict) -> str:
    """The ImageList entry holding the 3-D stack (not the thumbnail)."""
    for path, (_, _, info, _, _) in tags.items():
        if path.startswith("ImageList.") and path.endswith(".ImageData.Dimensions.[2]"):
            return path[: -len(".ImageData.Dimensions.[2]")]
    raise ValueError("the template holds no 3-D image stack")


def enlarge_dm4(template, path, frames, n_frames: int, height: int, width: int) -> np.dtype:
    """Write `path`: the DM4 stack `template` with its data replaced by `frames` (an iterable
    of n_frames (height, width) arrays, cast to the stack's pixel type). Returns that type."""
    buf = bytearray(open(template, "rb").read())
    tags = parse_dm4(bytes(buf))
    image = _stack_image(tags)
    _, data_count_at, info, data_at, data_len = tags[f"{image}.ImageData.Data"]
    if info[0] != 20 or len(info) != 3:
        raise ValueError("the stack's data is not an array of a simple type")
    little = struct.unpack(">I", buf[12:16])[0] == 1
    dtype = np.dtype(_SIMPLE[info[1]]).newbyteorder("<" if little else ">")
    count = n_frames * height * width
    delta = count * dtype.itemsize - data_len

    def add(at: int, fmt: str, d: int) -> None:
        (v,) = struct.unpack_from(fmt, buf, at)
        struct.pack_into(fmt, buf, at, v + d)

    # the header's root size, and each enclosing tag's byte count
    add(4, ">Q", delta)
    parts = f"{image}.ImageData.Data".split(".")
    for k in range(1, len(parts) + 1):
        add(tags[".".join(parts[:k])][1], ">Q", delta)
    # the array's element count: the last number of its type description
    struct.pack_into(">Q", buf, data_at - 8, count)
    # Dimensions x, y, frames (uint32 values in the file's byte order; they follow the data)
    for axis, value in enumerate((width, height, n_frames)):
        _, _, dim_info, dim_at, _ = tags[f"{image}.ImageData.Dimensions.[{axis}]"]
        struct.pack_into(("<" if little else ">") + np.dtype(_SIMPLE[dim_info[0]]).char, buf, dim_at, value)
    written = 0
    with open(path, "wb") as f:
        f.write(buf[:data_at])
        for frame in frames:
            frame = np.asarray(frame)
            if frame.shape != (height, width):
                raise ValueError(f"frame {written} is {frame.shape}, not ({height}, {width})")
            f.write(np.ascontiguousarray(frame, dtype=dtype).tobytes())
            written += 1
        if written != n_frames:
            raise ValueError(f"{written} frames given, {n_frames} announced")
        f.write(buf[data_at + data_len :])
    return dtype.newbyteorder("=")
