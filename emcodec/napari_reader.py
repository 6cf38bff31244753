"""napari reader plugin (manifest: emcodec/napari.yaml): open a .tcs file lazily.

Two layers, both with the pixel size as scale: an instant preview (each group's
measurement over its mask count, Y/S, the average of its frames: no torch, one read per
group) and the full decode, the Dask array of `emcodec.open(path).to_dask()` whose chunk
tasks go through an LRU cache of decoded groups, so scrolling frame by frame through a
group decodes it once. napari itself is not imported here.
"""

from __future__ import annotations

import os

import numpy as np

CACHE_GROUPS = 8  # decoded groups kept per file: a few screens of scrolling back and forth


def get_reader(path):
    """The reader for one .tcs path (napari asks with every file dropped on it)."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    return read_tcs if str(path).lower().endswith(".tcs") and os.path.isfile(path) else None


def read_tcs(path) -> list[tuple]:
    """[(decoded movie, kwargs, "image"), (preview, kwargs, "image")] for napari."""
    from . import lazy
    from .codec import open_tcs
    from .formats.carry import in_unit

    if isinstance(path, (list, tuple)):
        path = path[0]
    reader = open_tcs(path)
    try:
        h, n, n_groups = reader.header, reader.trailer.frame_count, reader.n_groups
    finally:
        reader._f.close()
    meta = h.metadata
    ps, unit = meta.get("pixel_size"), meta.get("pixel_unit") or "nm"
    (sx, u), (sy, _) = (in_unit(ps[0], unit), in_unit(ps[1], unit)) if ps else ((1.0, "px"), (1.0, "px"))
    name = os.path.basename(os.fspath(path))
    common = {"metadata": {"emcodec": meta, "pixel_unit": u}, "colormap": "gray"}
    full = lazy.to_dask(path, cache_groups=CACHE_GROUPS)
    preview = preview_array(path, h, n_groups)
    return [
        (full, {"name": name, "scale": (1.0, sy, sx), **common}, "image"),
        (preview, {"name": f"{name} preview (Y/S per group)", "scale": (float(h.B), sy, sx),
                   "visible": False, **common}, "image"),
    ]


def preview_array(path, header, n_groups: int):
    """A dask array (groups, y, x) of Y/S per group, float32, one chunk per group."""
    import dask.array as da
    from dask.base import tokenize

    name = "emcodec-preview-" + tokenize(os.path.abspath(os.fspath(path)), os.stat(path).st_mtime_ns)
    graph = {(name, g, 0, 0): (group_preview, os.fspath(path), g) for g in range(n_groups)}
    return da.Array(graph, name, chunks=((1,) * n_groups, (header.height,), (header.width,)), dtype=np.float32)


def group_preview(path: str, g: int) -> np.ndarray:
    """Y/S of group g: its measurement over the number of frames each pixel saw."""
    from . import masks
    from .codec import open_tcs

    reader = open_tcs(path)
    try:
        h = reader.header
        group = reader.read_group(g)
    finally:
        reader._f.close()
    total = masks.make_masks(h.seed, h.B, 0, 0, h.height, h.width).sum(0, dtype=np.float32)
    y = sum(np.asarray(p.measurement, np.float32) for p in group.parts)
    return (y / np.maximum(total * len(group.parts), 1.0))[None]
