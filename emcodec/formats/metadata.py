"""A source file's own metadata as one bounded JSON object, so it fits the .tcs header.

Vendor trees (DigitalMicrograph tags, Velox JSON, TIA headers) hold numpy scalars, bytes,
dates and sometimes huge arrays; the header must stay a plain JSON object of bounded size.
Anything deeper than MAX_DEPTH or beyond MAX_BYTES is left out, and the tree then says so
under NOTE_KEY, so a reader never mistakes a truncated tree for the whole one.
"""

from __future__ import annotations

import datetime as _dt
import json
import math

import numpy as np

MAX_BYTES = 16 << 20  # 16 MiB of JSON
MAX_DEPTH = 32
MAX_LIST = 4096  # items kept of one list or array: bulk data is not metadata
NOTE_KEY = "emcodec_note"


class _Budget:
    def __init__(self, max_bytes: int, max_depth: int):
        self.left = max_bytes
        self.max_depth = max_depth
        self.cut_depth = False
        self.cut_size = False
        self.cut_list = False


def _leaf(value):
    """A JSON scalar for a leaf, or the marker _NOT_LEAF for containers."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else str(v)  # JSON has no nan/inf
    if isinstance(value, (complex, np.complexfloating)):
        return str(complex(value))
    if isinstance(value, (bytes, bytearray, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (_dt.date, _dt.time, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _leaf(value.item())
    return _NOT_LEAF


_NOT_LEAF = object()


def _convert(value, depth: int, budget: _Budget):
    leaf = _leaf(value)
    if leaf is not _NOT_LEAF:
        cost = len(json.dumps(leaf))
        if cost > budget.left:
            budget.cut_size = True
            return _NOT_LEAF
        budget.left -= cost
        return leaf
    if depth >= budget.max_depth:
        budget.cut_depth = True
        return _NOT_LEAF
    if isinstance(value, dict) or hasattr(value, "items") and callable(value.items):
        out = {}
        budget.left -= 2
        for key, item in value.items():
            key = str(key)
            need = len(json.dumps(key)) + 4  # '"key": ' and the ', ' that separates it from the next item
            if need > budget.left:
                budget.cut_size = True
                break
            budget.left -= need
            got = _convert(item, depth + 1, budget)
            if got is _NOT_LEAF:
                budget.left += need
                if budget.cut_size:
                    break
                continue
            out[key] = got
        return out
    if isinstance(value, (list, tuple, np.ndarray)):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        if len(items) > MAX_LIST:
            budget.cut_list = True
            items = items[:MAX_LIST]
        out = []
        budget.left -= 2
        for item in items:
            got = _convert(item, depth + 1, budget)
            if got is _NOT_LEAF:
                if budget.cut_size:
                    break
                continue
            budget.left -= 2
            out.append(got)
        return out
    return _convert(str(value), depth, budget)  # anything else: its text


def bounded_tree(tree, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> dict:
    """`tree` as a JSON object of at most `max_bytes` (as json.dumps writes it) and depth
    `max_depth`; what did not fit is left out and NOTE_KEY says why."""
    reserve = 400  # room for the note
    budget = _Budget(max(0, max_bytes - reserve), max_depth)
    out = _convert(tree if isinstance(tree, dict) else {"value": tree}, 0, budget)
    if out is _NOT_LEAF:
        out = {}
    notes = []
    if budget.cut_depth:
        notes.append(f"branches deeper than {max_depth} levels left out")
    if budget.cut_size:
        notes.append(f"truncated to {max_bytes} bytes of JSON")
    if budget.cut_list:
        notes.append(f"lists longer than {MAX_LIST} items cut to their first {MAX_LIST}")
    if notes:
        out[NOTE_KEY] = "original metadata incomplete: " + "; ".join(notes)
    return out
