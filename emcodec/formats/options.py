"""The command line's reading choices, checked against the input before any work starts."""

from __future__ import annotations

import os

from ..errors import InputError
from . import ReadOptions
from .series import is_glob


def read_options(path: str, *, series: bool = False, eer_fraction: int | None = None,
                 eer_upsample: int | str | None = None, gain_ref: str | None = None) -> ReadOptions:
    """ReadOptions for `path`; EER choices given for a file that is not EER are an error, not
    something silently ignored."""
    eer_given = [flag for flag, value in (("--eer-fraction", eer_fraction), ("--eer-upsample", eer_upsample),
                                          ("--gain-ref", gain_ref)) if value is not None]
    is_eer = (os.path.splitext(path)[1].lower() == ".eer"
              or (series and is_glob(path) and path.lower().endswith(".eer")))
    if eer_given and not is_eer:
        raise InputError(f"{', '.join(eer_given)} {'applies' if len(eer_given) == 1 else 'apply'} to .eer files only")
    if not series and is_glob(path) and not os.path.exists(path):
        raise InputError(f"'{path}' is a glob: give --series to read the files as the frames of one movie")
    return ReadOptions(series=series, eer_fraction=eer_fraction or 1, eer_upsample=int(eer_upsample or 1),
                       gain_ref=gain_ref)


def default_output(path: str, series: bool) -> str:
    """MOVIE with .tcs; for a series, the folder's name with .tcs beside the folder."""
    if series:
        folder = os.path.dirname(path) if is_glob(path) else path
        folder = os.path.normpath(folder or ".")
        if folder in (".", os.sep):
            folder = os.path.join(folder, os.path.basename(os.path.abspath(folder)) or "series")
        return folder + ".tcs"
    root, _ = os.path.splitext(path)
    return root + ".tcs"
