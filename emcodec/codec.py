"""The compress / decompress / inspect pipelines that the CLI and the Python API share.

compress:   stacks.open_stack -> encoder.GroupEncoder -> container.TcsWriter
decompress: container.TcsReader -> decoders (imported only here, they need torch) -> stacks.create_stack
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from . import __version__
from .atomic import AtomicFile, check_target
from .container import FORMAT_VERSION, MASK_SCHEME, Header, TcsReader, TcsWriter
from .encoder import DEFAULT_B, GroupEncoder, check_B, spare_core
from .errors import ContainerError, EmcodecError, InputError, OutputError
from .masks import DENSITY

DEFAULT_SEED = 0
DEFAULT_LEVEL = 1
DEFAULT_METHOD = "tcsdl"
STDIO = "-"

Progress = Callable[[int], None]  # called with the number of frames just done


@dataclass
class CompressResult:
    frames: int
    groups: int
    raw_bytes: int
    file_bytes: int

    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.file_bytes if self.file_bytes else float("nan")


def _groups_of(chunks: Iterator[np.ndarray], B: int) -> Iterator[np.ndarray]:
    """Regroup chunks of any size into groups of exactly B frames (the last may be short)."""
    pending: list[np.ndarray] = []
    have = 0
    for chunk in chunks:
        if not pending and len(chunk) == B:
            yield chunk
            continue
        pending.append(chunk)
        have += len(chunk)
        while have >= B:
            block = np.concatenate(pending, axis=0)
            yield block[:B]
            pending, have = ([block[B:]], have - B) if have > B else ([], 0)
    if have:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending, axis=0)


def _source_metadata(info) -> dict:
    return {
        "pixel_size": list(info.pixel_size) if info.pixel_size else None,
        "source_format": info.source_format,
        "source_name": info.source_name,
        "source_extra": info.extra,
        "encoder": f"emcodec {__version__}",
        "mask_scheme": MASK_SCHEME,
    }


def compress(
    source: str | os.PathLike,
    output: str | os.PathLike | BinaryIO,
    *,
    B: int = DEFAULT_B,
    seed: int = DEFAULT_SEED,
    level: int = DEFAULT_LEVEL,
    force: bool = False,
    progress: Progress | None = None,
) -> CompressResult:
    """Compress a TIFF or MRC movie into a .tcs file, `-` (stdout) or an open binary file."""
    from .stacks import open_stack, release_pages

    check_B(B)
    if not 1 <= level <= 22:
        raise EmcodecError(f"zstd level must be between 1 and 22, got {level}")
    if not 0 <= seed < 2**64:
        raise EmcodecError("seed must be between 0 and 2**64 - 1")
    with open_stack(source) as reader:
        info = reader.info
        header = Header(B, seed, info.height, info.width, info.dtype.name, DENSITY, _source_metadata(info))
        encoder = GroupEncoder(B, seed, info.height, info.width, info.dtype, release=release_pages)

        def write(f: BinaryIO) -> tuple[int, int]:
            # With cores to spare, group g is compressed on a second thread while g+1 is summed.
            writer = TcsWriter(f, header, level)
            vmin, vmax, n = np.inf, -np.inf, 0
            packer = ThreadPoolExecutor(1) if spare_core(info.height * info.width) else None
            pending = None
            try:
                for frames in _groups_of(reader.iter_chunks(B), B):
                    y, lo, hi = encoder.encode(frames)
                    vmin, vmax = min(vmin, lo), max(vmax, hi)
                    if pending is not None:
                        pending.result()
                    if packer:
                        pending = packer.submit(writer.write_group, y, len(frames))
                    else:
                        writer.write_group(y, len(frames))
                    n += len(frames)
                    if progress:
                        progress(len(frames))
                if pending is not None:
                    pending.result()
            finally:
                if packer:
                    packer.shutdown()
            if n == 0:
                raise InputError(f"{source}: the movie has no frames")
            return n, writer.close(n, vmin, vmax)

        try:
            if isinstance(output, (str, os.PathLike)) and str(output) == STDIO:
                frames, size = write(sys.stdout.buffer)
            elif isinstance(output, (str, os.PathLike)):
                check_target(output, force=force, inputs=[source])
                with AtomicFile(output, force=force) as f:
                    frames, size = write(f)
            else:
                frames, size = write(output)
        finally:
            encoder.close()
    itemsize = np.dtype(info.dtype).itemsize
    return CompressResult(frames, -(-frames // B), frames * info.height * info.width * itemsize, size)


def open_tcs(source: str | os.PathLike | BinaryIO) -> TcsReader:
    """Open a .tcs file for reading; `-` reads standard input into a temporary file first.

    Spooling a pipe keeps one reading path: the trailer (frame count, index) is checked
    before any output is written.
    """
    if isinstance(source, (str, os.PathLike)) and str(source) == STDIO:
        spool = tempfile.TemporaryFile()
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
        return TcsReader(spool)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a .tcs file")
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
        try:
            return TcsReader(f)
        except BaseException:
            f.close()
            raise
    return TcsReader(source)


def info(source: str | os.PathLike) -> dict:
    """Everything a user wants to know about a .tcs file, as plain JSON-able values."""
    reader = open_tcs(source)
    try:
        h, t = reader.header, reader.trailer
        size = reader._f.seek(0, 2)
        raw = t.frame_count * h.height * h.width * np.dtype(h.dtype).itemsize
        return {
            "format_version": h.version,
            "B": h.B,
            "seed": h.seed,
            "mask_density": h.density,
            "frame_shape": [h.height, h.width],
            "dtype": h.dtype,
            "frames": t.frame_count,
            "groups": len(t.offsets),
            "value_range": [t.value_min, t.value_max],
            "file_bytes": size,
            "raw_bytes": raw,
            "compression_ratio": raw / size,
            "bits_per_pixel": 8 * size / max(1, t.frame_count * h.height * h.width),
            "metadata": h.metadata,
        }
    finally:
        reader._f.close()


def parse_frames(spec: str | None, frame_count: int) -> tuple[int, int]:
    """`A:B` (Python-style, end exclusive, either side optional) -> a clamped [start, stop)."""
    if not spec:
        return 0, frame_count
    try:
        a, _, b = spec.partition(":")
        start = int(a) if a.strip() else 0
        stop = int(b) if b.strip() else frame_count
    except ValueError:
        raise EmcodecError(f"--frames takes START:STOP (for example 0:100), got {spec!r}") from None
    if start < 0:
        start += frame_count
    if stop < 0:
        stop += frame_count
    start, stop = max(0, start), min(frame_count, stop)
    if start >= stop:
        raise EmcodecError(f"--frames {spec} selects no frames of the {frame_count} in the file")
    return start, stop


def default_output(tcs_path: str, header: Header) -> Path:
    """`<name>.decoded.<source extension>` beside the .tcs, never the original movie."""
    src = header.metadata.get("source_name") or ""
    ext = Path(src).suffix.lower()
    if ext not in (".tif", ".tiff", ".mrc", ".mrcs"):
        ext = ".mrc" if header.metadata.get("source_format") == "mrc" else ".tif"
    base = Path(tcs_path) if tcs_path != STDIO else Path("stdin.tcs")
    stem = base.name[:-4] if base.name.lower().endswith(".tcs") else base.name
    return base.with_name(f"{stem}.decoded{ext}")


def to_dtype(frames: np.ndarray, dtype: str, lo: float, hi: float) -> np.ndarray:
    """Round and clip decoded frames to the source's value range and dtype."""
    out = np.clip(frames, lo, hi)
    if np.dtype(dtype).kind in "iu":
        out = np.rint(out)
    return out.astype(dtype)


RESIDUAL_ALERT = 0.25  # a quarter of the measurement unexplained: never a good decode
RESIDUAL_OUTLIER = 3.0  # times the file's median residual


def flag_residuals(residuals: list[float]) -> list[bool]:
    """Groups whose decode does not explain their measurement as well as the others do.

    Noise keeps every residual above zero, so a group is flagged only against the file's own
    typical level (and an absolute ceiling), not against zero.
    """
    if not residuals:
        return []
    typical = float(np.median(residuals))
    return [r > RESIDUAL_ALERT or (r > RESIDUAL_OUTLIER * typical and r > 0.02) for r in residuals]


def choose_decoder(method: str, B: int, warn: Callable[[str], None]):
    """The decoder for `method`; TCS-DL without weights for this B falls back to GAP-TV."""
    from .decoders import get_decoder, get_decoder_class

    cls = get_decoder_class(method)
    supports = getattr(cls, "supports", None)
    if supports is not None and not supports(B):
        warn(f"no {method} weights for B={B}; decoding with gap-tv instead")
        return get_decoder("gap-tv")
    decoder = cls()
    if hasattr(decoder, "load"):
        decoder.load(B)
    return decoder


def decompress(
    source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    method: str = DEFAULT_METHOD,
    frames: str | None = None,
    device: str = "auto",
    threads: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Decode a .tcs file into a TIFF or MRC movie; returns the path written.

    Beside the movie, `<output>.emcodec.json` records the method, weights, B, seed and the
    self-check residual of every group, so a user knows which frames not to trust.
    """
    from .stacks import create_stack

    warn = warn or (lambda message: None)
    reader = open_tcs(source)
    try:
        h, t = reader.header, reader.trailer
        target = Path(output) if output is not None else default_output(str(source), h)
        sidecar = target.with_name(target.name + ".emcodec.json")
        inputs = [source] if str(source) != STDIO else []
        check_target(target, force=force, inputs=inputs)
        check_target(sidecar, force=force, inputs=inputs)
        start, stop = parse_frames(frames, t.frame_count)
        group_range = range(start // h.B, (stop - 1) // h.B + 1)
        reader.verify(group_range)
        decoder = choose_decoder(method, h.B, warn)
        from .decoders.base import decode_group, measurement_residual, resolve_device, set_cpu_threads

        device = resolve_device(device)
        if device.type == "cpu":
            threads = set_cpu_threads(threads)
        labels = [
            f"emcodec {__version__} reconstruction",
            f"method={decoder.name} B={h.B} seed={h.seed}",
        ] + [part for label in getattr(decoder, "labels", []) for part in textwrap.wrap(label, 80)]
        pixel_size = h.metadata.get("pixel_size")
        groups = []
        with create_stack(
            target, height=h.height, width=h.width, dtype=h.dtype, n_frames=stop - start,
            pixel_size=tuple(pixel_size) if pixel_size else None, description="; ".join(labels),
            labels=labels, force=force,
        ) as writer:
            for g in group_range:
                group = reader.read_group(g)
                x = decode_group(decoder, group.measurement, h.B, h.seed, device=device)
                residual = measurement_residual(x, group.measurement, h.seed)
                first = g * h.B
                lo, hi = max(start, first), min(stop, first + group.n_valid)
                writer.write(to_dtype(x[lo - first : hi - first], h.dtype, t.value_min, t.value_max))
                groups.append({"group": g, "frames": [first, first + group.n_valid], "residual": round(residual, 6)})
                if progress:
                    progress(hi - lo)
        for entry, flagged in zip(groups, flag_residuals([e["residual"] for e in groups])):
            entry["flagged"] = flagged
            if flagged:
                a, b = entry["frames"]
                warn(f"group {entry['group']} (frames {a}-{b - 1}): measurement residual {entry['residual']:.3f} "
                     "is far above the others; do not trust these frames")
        report = {
            "reconstruction_of": h.metadata.get("source_name"),
            "emcodec": __version__, "method": decoder.name, "B": h.B, "seed": h.seed,
            "weights": getattr(decoder, "entry", {}).get("sha256"),
            "frames": [start, stop], "device": str(device),
            **({"cpu_threads": threads} if device.type == "cpu" else {}),
            "residual": "RMS(sum_k C_k x_k - Y) / RMS(Y) per group; noise keeps it above 0",
            "groups": groups,
        }
        with AtomicFile(sidecar, force=True) as f:
            f.write((json.dumps(report, indent=2) + "\n").encode())
        return target
    finally:
        reader._f.close()
