"""Write EER files for tests and benchmarks, following the published EER description.

imagecodecs decodes EER but has no encoder, so the bitstream is written here, as the EER
file format documentation (Thermo Fisher, v3.0, section 4) describes it and as imagecodecs'
decoder reads it: per electron event, a run-length code of `skipbits` bits (pixels skipped
since the previous event; the all-ones code skips that many pixels and carries no event),
then `horzbits` + `vertbits` sub-pixel bits stored XOR'd with 2 (bits packed LSB first).
The frame ends where the skips reach the last pixel. Each raw frame is one BigTIFF page
(compression 65001, EER 7-bit skip + 2+2 sub-pixel bits; 65000 is the 8-bit skip, and 65002
states its bit widths in tags 65007-65009) and the first page carries the acquisition metadata
as XML in tag 65001, which is what tifffile uses to know an EER file.
tifffile cannot write compression 65001 itself, so pages are written with pre-encoded
strips under a placeholder compression tag that is then overwritten with 65001.
"""

from __future__ import annotations

import numpy as np

SKIP, HORZ, VERT = 7, 2, 2
CODE_BITS = {65000: (8, 2, 2), 65001: (7, 2, 2)}  # 65002: any, stated in tags 65007-65009


def encode_frame(index: np.ndarray, sub_x: np.ndarray, sub_y: np.ndarray, n_pixels: int,
                 bits: tuple[int, int, int] = (SKIP, HORZ, VERT)) -> bytes:
    """One raw frame: sorted unique flat pixel indices of its events and their sub-pixels 0..3,
    coded with (skip, horizontal, vertical) bits."""
    SKIP, HORZ, VERT = bits
    index = np.asarray(index, np.int64)
    full = (1 << SKIP) - 1
    nbits = SKIP + HORZ + VERT
    prev = np.concatenate([[0], index[:-1] + 1]) if len(index) else np.zeros(0, np.int64)
    skips = index - prev
    repeats = skips // full  # all-ones codes before each event
    event_code = (skips % full) | ((np.asarray(sub_x) ^ HORZ) << SKIP) | ((np.asarray(sub_y) ^ VERT) << (SKIP + HORZ))
    tail = n_pixels - (int(index[-1]) + 1 if len(index) else 0)
    counts = repeats + 1
    n_codes = int(counts.sum()) + tail // full + 1
    values = np.full(n_codes, full, np.int64)
    lengths = np.full(n_codes, SKIP, np.int64)
    at = np.cumsum(counts) - 1
    values[at] = event_code
    lengths[at] = nbits
    values[-1] = tail % full  # the last skip reaches the end of the frame
    offsets = np.cumsum(lengths) - lengths
    total = int(offsets[-1] + lengths[-1]) + 2 * nbits  # the decoder wants a code's worth to spare
    bits = np.zeros(total + (-total) % 16, np.uint8)
    for b in range(nbits):
        sel = lengths > b
        bits[offsets[sel] + b] = (values[sel] >> b) & 1
    return np.packbits(bits, bitorder="little").tobytes()


def metadata_xml(exposure_time: float, n_frames: int, camera: str = "Falcon 4i") -> bytes:
    items = [("exposureTime", "s", exposure_time), ("numberOfFrames", None, n_frames),
             ("cameraName", None, camera), ("sensorPixelSize.width", "m", 1.4e-05)]
    body = "".join(f'<item name="{k}"' + (f' unit="{u}"' if u else "") + f">{v}</item>" for k, u, v in items)
    return f"<metadata>{body}</metadata>".encode()


def write_eer(path, frames, height: int, width: int, exposure_time: float = 1.0,
              n_frames: int | None = None, compression: int = 65001,
              bits: tuple[int, int, int] | None = None) -> None:
    """`frames`: per raw frame, (flat index, sub_x, sub_y) arrays of its events; a list, or
    any iterable with `n_frames` given (then one frame's events are held at a time).
    `compression` 65000 or 65001 fixes the code's bits; 65002 takes `bits` (skip, horizontal,
    vertical) and states them in tags 65007-65009 of every page."""
    import tifffile

    bits = CODE_BITS[compression] if compression != 65002 else bits
    stated = [(65007 + i, 3, 1, b, True) for i, b in enumerate(bits)] if compression == 65002 else []
    n_frames = len(frames) if n_frames is None else n_frames
    md = metadata_xml(exposure_time, n_frames)
    k = -1
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for k, (index, sub_x, sub_y) in enumerate(frames):
            strip = encode_frame(index, sub_x, sub_y, height * width, bits)
            tw.write(iter([strip]), shape=(height, width), dtype=np.uint8, compression="zlib",
                     rowsperstrip=height, metadata=None,
                     extratags=([(65001, 7, len(md), md, True)] if k == 0 else []) + stated)
    if k + 1 != n_frames:
        raise ValueError(f"{k + 1} raw frames given, {n_frames} announced")
    with tifffile.TiffFile(path, mode="r+b") as tf:
        for page in tf.pages:
            page.tags["Compression"].overwrite(compression)


def random_events(rng, n_frames: int, height: int, width: int, per_frame: int):
    """Events at distinct pixels of each frame, with random sub-pixel positions."""
    out = []
    for _ in range(n_frames):
        index = np.sort(rng.choice(height * width, per_frame, replace=False))
        out.append((index, rng.integers(0, 4, per_frame), rng.integers(0, 4, per_frame)))
    return out
