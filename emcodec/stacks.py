"""Compatibility: the movie readers and writers now live in ``emcodec.formats`` (one module per
format family); this module keeps the old import path working."""

from __future__ import annotations

from .formats import (
    SUPPORTED_DTYPES,
    ReadOptions,
    StackInfo,
    StackReader,
    StackWriter,
    create_stack,
    open_stack,
    read_description,
    release_pages,
    stack_format,
)

__all__ = [
    "StackInfo",
    "StackReader",
    "StackWriter",
    "SUPPORTED_DTYPES",
    "ReadOptions",
    "stack_format",
    "open_stack",
    "create_stack",
    "read_description",
    "release_pages",
]
