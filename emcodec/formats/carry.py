"""What travels from a source movie through the .tcs header into the decoded movie.

compress puts ``header_fields(info)`` into the header metadata; decompress hands
``writer_fields(metadata)`` to create_stack; ``emcodec info`` prints ``describe(metadata)``.
Pixel size stays in the header as ``pixel_size`` [x, y] in Å (as before); ``pixel_unit`` is
the unit the source stated it in, so the decoded TIFF states it in the same unit.
"""

from __future__ import annotations

import json
import math

from .base import StackInfo, _unit_factor


def header_fields(info: StackInfo) -> dict:
    """The carried facts of a source, as header metadata keys (absent ones left out)."""
    out: dict = {}
    if info.pixel_unit and info.pixel_size is not None:
        out["pixel_unit"] = info.pixel_unit
    if info.frame_time is not None and math.isfinite(info.frame_time) and info.frame_time > 0:
        out["frame_time"] = float(info.frame_time)
    if info.metadata:
        out["original_metadata"] = info.metadata
    return out


def writer_fields(metadata: dict) -> dict:
    """create_stack keywords for what a .tcs header carries."""
    unit = metadata.get("pixel_unit")
    frame_time = metadata.get("frame_time")
    original = metadata.get("original_metadata")
    extra = metadata.get("source_extra")
    group = None
    if metadata.get("source_format") == "mrc" and isinstance(extra, dict):
        from .mrc import space_group

        group = space_group(extra.get("ispg"), extra.get("mz"))
    return {
        "pixel_unit": unit if isinstance(unit, str) and _unit_factor(unit) else None,
        "frame_time": float(frame_time) if isinstance(frame_time, (int, float)) and frame_time > 0 else None,
        "source_metadata": original if isinstance(original, dict) and original else None,
        "space_group": group,  # an MRC source's, for an MRC output
    }


def in_unit(angstrom: float, unit: str | None) -> tuple[float, str]:
    """A size in Å expressed in `unit` when it is a known length unit, else in Å."""
    factor = _unit_factor(unit) if unit else None
    if not factor:
        return angstrom, "Å"
    return float(f"{angstrom / factor:.9g}"), unit


def _size_text(pixel_size, unit) -> str:
    x, y = pixel_size
    xs, u = in_unit(x, unit)
    ys, _ = in_unit(y, unit)
    size = f"{xs:g} {u}" if xs == ys else f"{xs:g} x {ys:g} {u}"
    if u != "Å":
        size += f" ({x:g} Å)" if x == y else f" ({x:g} x {y:g} Å)"
    return size + " per pixel"


def _time_text(seconds: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit} per frame ({1 / seconds:.4g} frames/s)"
    return f"{seconds:.4g} s per frame ({1 / seconds:.4g} frames/s)"


def describe(metadata: dict) -> list[tuple[str, str]]:
    """(key, text with units) lines for `emcodec info`."""
    lines = []
    ps = metadata.get("pixel_size")
    extra = metadata.get("source_extra")
    calibration = extra.get("calibration") if isinstance(extra, dict) else None  # one a vendor reader did not carry
    unstated = f"not stated ({calibration})" if isinstance(calibration, str) and calibration else "not stated"
    lines.append(("pixel_size", _size_text(ps, metadata.get("pixel_unit")) if ps else unstated))
    ft = metadata.get("frame_time")
    lines.append(("frame_time", _time_text(ft) if isinstance(ft, (int, float)) and ft > 0 else "not stated"))
    original = metadata.get("original_metadata")
    if isinstance(original, dict) and original:
        size = len(json.dumps(original))
        note = " (truncated)" if "emcodec_note" in original else ""
        lines.append(("original_metadata", f"{len(original)} top-level keys, {size} bytes of JSON{note} "
                                            "(--json shows it)"))
    return lines
