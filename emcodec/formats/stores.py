"""What zarr and HDF5 movies share: one attribute block with the provenance a decoded TIFF
or MRC carries (description, labels, pixel size and unit, frame time, source metadata),
and reading it back into StackInfo fields.

The block is stored as JSON-able values under the key ``emcodec``; the pixel size is kept
in Å (``pixel_size_angstrom`` [x, y]) as in the .tcs header, plus the unit it was stated in.
"""

from __future__ import annotations

from .base import _pixel_pair, _unit_factor


def provenance(*, pixel_size, description, labels, frame_time, pixel_unit, source_metadata) -> dict:
    """The ``emcodec`` attribute block of a written movie (absent facts left out)."""
    block: dict = {}
    if description:
        block["description"] = description
    if labels:
        block["labels"] = list(labels)
    if pixel_size is not None:
        block["pixel_size_angstrom"] = [float(pixel_size[0]), float(pixel_size[1])]
        if pixel_unit and _unit_factor(pixel_unit):
            block["pixel_unit"] = pixel_unit
    if frame_time:
        block["frame_time"] = float(frame_time)
    if source_metadata:
        block["source_metadata"] = source_metadata
    return block


def carried(block) -> dict:
    """StackInfo keywords (pixel_size, frame_time, pixel_unit, metadata) from a block."""
    if not isinstance(block, dict):
        return {"pixel_size": None}
    ps = block.get("pixel_size_angstrom")
    out: dict = {"pixel_size": _pixel_pair(float(ps[0]), float(ps[1])) if isinstance(ps, (list, tuple))
                 and len(ps) == 2 else None}
    ft = block.get("frame_time")
    if isinstance(ft, (int, float)) and ft > 0:
        out["frame_time"] = float(ft)
    unit = block.get("pixel_unit")
    if isinstance(unit, str) and _unit_factor(unit) and out["pixel_size"]:
        out["pixel_unit"] = unit
    if isinstance(block.get("source_metadata"), dict):
        out["metadata"] = block["source_metadata"]
    return out
