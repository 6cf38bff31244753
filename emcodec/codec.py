"""The compress / decompress / inspect pipelines that the CLI and the Python API share.

compress:   stacks.open_stack -> encoder.GroupEncoder -> container.TcsWriter
decompress: container.TcsReader -> decoders (imported only here, they need torch) -> stacks.create_stack
"""

from __future__ import annotations

import itertools
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

from . import __version__, badpixels, memory
from .atomic import AtomicFile, check_target
from .container import FORMAT_VERSION, MASK_SCHEME, SKIP, Header, TcsReader, TcsWriter
from .coherence import CutDetector, split
from .encoder import DEFAULT_B, GroupEncoder, check_B, spare_core, usable_cores
from .errors import ContainerError, EmcodecError, InputError, OutputError
from .masks import DENSITY
from .quantize import AUTO_STEP, MAX_DETECTOR, MAX_STEP, MIN_GAIN, MIN_STEP, Quantizer, auto_quantizer

DEFAULT_SEED = 0
DEFAULT_LEVEL = 1
DEFAULT_METHOD = "movie"
# decode the file as a movie (emcodec/decoders/movie.py, preview.py); movie-learned: the movie
# decoder with the learned prior instead of its TV step (better on the simulator, worse on the
# real stills: docs/BENCHMARKS.md), not the default
MOVIE_METHODS = ("movie", "movie-learned", "preview")
DEFAULT_WINDOW = 2
DEFAULT_QUANTIZE = "auto"
STDIO = "-"

Progress = Callable[[int], None]  # called with the number of frames just done


@dataclass
class CompressResult:
    frames: int
    groups: int
    raw_bytes: int
    file_bytes: int
    split_groups: int = 0  # groups stored in parts because a scene cut was found inside
    quantizer: Quantizer | None = None
    bad_pixels: int = 0  # pixels NaN or infinite in some frame, stored as bad-pixel maps

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
            chunk = None  # not held while the next chunk is read
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
    from .formats.carry import header_fields

    return {
        "pixel_size": list(info.pixel_size) if info.pixel_size else None,
        "source_format": info.source_format,
        "source_name": info.source_name,
        "source_extra": info.extra,
        "encoder": f"emcodec {__version__}",
        "mask_scheme": MASK_SCHEME,
        **header_fields(info),  # pixel unit, frame time, the source's own metadata
    }


def parse_quantize(value: str | float | None) -> str | float:
    """`off`, `auto` or a step (in noise standard deviations) from the command line."""
    if value is None or str(value).lower() in ("auto", "off"):
        return "auto" if value is None else str(value).lower()
    try:
        step = float(value)
    except ValueError:
        raise EmcodecError(f"--quantize takes off, auto or a step such as 0.5, got {value!r}") from None
    if not MIN_STEP <= step <= MAX_STEP:
        raise EmcodecError(f"--quantize step must be between {MIN_STEP} and {MAX_STEP}, got {step}")
    return step


def check_detector(gain, offset, read_noise) -> None:
    """--gain, --offset, --read-noise: finite numbers (gain > 0, read noise >= 0), checked
    before any reading, so inf or nan is one clear line rather than a failure deep inside."""
    for name, value, ok in (("--gain", gain, lambda v: v > 0), ("--offset", offset, lambda v: True),
                            ("--read-noise", read_noise, lambda v: v >= 0)):
        if value is None:
            continue
        if not np.isfinite(value):
            raise EmcodecError(f"{name} must be a finite number, got {value}")
        if abs(value) > MAX_DETECTOR or (name == "--gain" and 0 < value < MIN_GAIN):
            raise EmcodecError(f"{name} must be within {MIN_GAIN:g} .. {MAX_DETECTOR:g}, got {value}")
        if not ok(value):
            raise EmcodecError(f"{name} must be {'positive' if name == '--gain' else '>= 0'}, got {value}")


def choose_quantizer(frames: np.ndarray, B: int, quantize: str | float, *, gain=None, offset=None,
                     read_noise=None) -> tuple[Quantizer | None, str]:
    """The file's quantiser (None: lossless) and a line saying why, from its first group."""
    if quantize == "off":
        return None, "off (asked for)"
    if np.asarray(frames).dtype.kind == "f":
        if quantize != "auto":
            raise EmcodecError("--quantize needs integer detector counts; float input is stored "
                               "losslessly (use --quantize off or auto)")
        return None, "off (float input is stored losslessly)"
    if gain is not None and not gain > 0:
        raise EmcodecError(f"--gain must be positive, got {gain}")
    if read_noise is not None and read_noise < 0:
        raise EmcodecError(f"--read-noise must be >= 0, got {read_noise}")
    step = AUTO_STEP if quantize == "auto" else quantize
    q = auto_quantizer(frames, B, DENSITY, step=step, gain=gain, offset=offset, read_noise=read_noise)
    if q is None:
        if quantize != "auto":
            raise EmcodecError("the detector noise cannot be estimated from this movie (too few frames or "
                               "no brightness range); give --gain (and --offset, --read-noise)")
        return None, "off (the detector noise could not be estimated from the first frames)"
    source = "given" if gain is not None else "estimated from the first frames"
    return q, (f"step {q.step:g} noise std, gain {q.gain:.4g}, offset {q.offset:.4g}, "
               f"read noise {q.read_noise:.4g} ({source})")


def lossless_noise(frames: np.ndarray, B: int, gain=None, offset=None, read_noise=None) -> dict | None:
    """The detector noise of a movie stored without the quantiser (whose header holds it
    otherwise), kept in the metadata for decompress's self-check: the user's values, else
    the quantiser's fit on integer counts; None when unknown (float input without --gain)."""
    if gain is not None:
        return {"gain": float(gain), "offset": float(offset or 0.0), "read_noise": float(read_noise or 0.0),
                "source": "given"}
    q = auto_quantizer(frames, B, DENSITY, offset=offset, read_noise=read_noise)
    if q is None:
        return None
    return {"gain": q.gain, "offset": q.offset, "read_noise": q.read_noise, "source": "estimated from the first frames"}


def compress(
    source: str | os.PathLike,
    output: str | os.PathLike | BinaryIO,
    *,
    B: int = DEFAULT_B,
    seed: int = DEFAULT_SEED,
    level: int = DEFAULT_LEVEL,
    quantize: str | float = DEFAULT_QUANTIZE,
    gain: float | None = None,
    offset: float | None = None,
    read_noise: float | None = None,
    split_cuts: bool = True,
    read_options=None,
    force: bool = False,
    verify_written: bool = False,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> CompressResult:
    """Compress a movie file (or an open StackReader) into a .tcs file, `-` (stdout) or an open binary file.

    `quantize`: "off" (lossless measurement), "auto" (step AUTO_STEP, detector noise from
    `gain`/`offset`/`read_noise` or estimated) or a step in noise standard deviations.
    `split_cuts`: store groups with a scene cut inside in parts (emcodec/coherence.py).
    `read_options`: a formats.ReadOptions (EER fraction and upsampling, gain reference, series).
    `verify_written`: read the written file back and check every checksum before it takes
    the output's name (a file output only), so the raw data can be deleted safely.
    """
    from .stacks import StackReader, open_stack, release_pages

    check_B(B)
    quantize = parse_quantize(quantize)
    if not 1 <= level <= 22:
        raise EmcodecError(f"zstd level must be between 1 and 22, got {level}")
    if not 0 <= seed < 2**64:
        raise EmcodecError("seed must be between 0 and 2**64 - 1")
    check_detector(gain, offset, read_noise)
    to_path = isinstance(output, (str, os.PathLike)) and str(output) != STDIO
    if not to_path and str(output) == STDIO and (sys.stdout is None or sys.stdout.closed):
        raise OutputError("standard output is closed; give -o FILE")
    if verify_written and not to_path:
        raise EmcodecError("--verify needs a file output (it reads the written file back), not -o -")
    given = isinstance(source, StackReader)  # an open reader: an in-memory array (emcodec.api)
    if to_path:
        check_target(output, force=force, inputs=[] if given else [source])
    with source if given else open_stack(source, read_options) as reader:
        info = reader.info
        cut = (info.extra or {}).get("truncated")
        if cut and warn:
            of = f"of {cut['expected_frames']}" if cut.get("expected_frames") else "(the file states no count)"
            warn(f"{source} is truncated: compressing its {cut['complete_frames']} complete frame(s) {of} "
                 "(--allow-truncated)")
        groups = _groups_of(reader.iter_chunks(B), B)
        first = next(groups, None)
        if first is None:
            raise InputError(f"{source}: the movie has no frames")
        quantizer, why = choose_quantizer(first, B, quantize, gain=gain, offset=offset, read_noise=read_noise)
        noise = lossless_noise(first, B, gain, offset, read_noise) if quantizer is None else None
        # Only the stream holds a group, so a decoded (not memory-mapped) group is freed before
        # the reader decodes the next one: one group in memory, not three. (An iterator, not a
        # list: chain keeps its arguments, and an exhausted list iterator lets go of the list.)
        stream = itertools.chain(iter([first]), groups)
        del first
        metadata = {**_source_metadata(info), "quantize": why, "scene_cuts": "split" if split_cuts else "off",
                    **({"detector_noise": noise} if noise else {})}
        header = Header(B, seed, info.height, info.width, info.dtype.name, DENSITY, metadata, quantizer=quantizer,
                        version=FORMAT_VERSION if info.dtype.kind == "f" else 2)  # 3: bad-pixel maps
        bad_union = np.zeros((info.height, info.width), bool) if info.dtype.kind == "f" else None
        encoder = GroupEncoder(B, seed, info.height, info.width, info.dtype, release=release_pages)
        detector = CutDetector(info.height, info.width) if split_cuts else None

        def write(f: BinaryIO) -> tuple[int, int, int]:
            # With cores to spare, group g is compressed on a second thread while g+1 is summed.
            writer = TcsWriter(f, header, level)
            vmin, vmax, n, n_split = np.inf, -np.inf, 0, 0
            packer = ThreadPoolExecutor(1) if spare_core(info.height * info.width) else None
            pending = None
            try:
                for frames in stream:
                    bad = badpixels.find(frames)
                    if bad is not None:  # filled before the cut test and the sum; the map is stored
                        frames = badpixels.fill(frames, bad)
                        np.logical_or(bad_union, bad.any(axis=0), out=bad_union)
                    cuts = detector.cuts(frames) if detector is not None else []
                    parts = []
                    for a, count in split(len(frames), cuts):
                        y, lo, hi = encoder.encode(frames[a : a + count])
                        vmin, vmax = min(vmin, lo), max(vmax, hi)
                        parts.append((a, count, y, None if bad is None else bad[a : a + count].any(axis=0)))
                    n_split += len(parts) > 1
                    if pending is not None:
                        pending.result()
                    if packer:
                        pending = packer.submit(writer.write_parts, parts)
                    else:
                        writer.write_parts(parts)
                    n += len(frames)
                    if progress:
                        progress(len(frames))
                    frames = bad = None
                if pending is not None:
                    pending.result()
            finally:
                if packer:
                    packer.shutdown()
            return n, writer.close(n, vmin, vmax), n_split

        try:
            if isinstance(output, (str, os.PathLike)) and str(output) == STDIO:
                frames, size, n_split = write(sys.stdout.buffer)
            elif to_path:
                atomic = AtomicFile(output, force=force)
                with atomic as f:
                    frames, size, n_split = write(f)
                    if verify_written:
                        f.flush()
                        os.fsync(f.fileno())
                        _verify_or_fail(atomic.temp, output)
            else:
                frames, size, n_split = write(output)
        finally:
            encoder.close()
    itemsize = np.dtype(info.dtype).itemsize
    n_bad = int(bad_union.sum()) if bad_union is not None else 0
    if n_bad and warn:
        warn(f"{n_bad} pixel(s) are NaN or infinite in some frames: stored as a bad-pixel map "
             "(filled before summing, NaN again after decoding)")
    return CompressResult(frames, -(-frames // B), frames * info.height * info.width * itemsize, size,
                          n_split, quantizer, n_bad)


def _verify_or_fail(written: Path, output) -> None:
    """compress --verify: the file just written, read back from disk; it keeps no name if damaged."""
    check = verify(written)
    if not check["ok"]:
        raise OutputError(f"{output}: the written file failed verification ({check['error']}); nothing was kept")


def open_tcs(source: str | os.PathLike | BinaryIO) -> TcsReader:
    """Open a .tcs file for reading; `-` reads standard input into a temporary file first.

    Spooling a pipe keeps one reading path: the trailer (frame count, index) is checked
    before any output is written.
    """
    f = open_raw(source)
    try:
        return TcsReader(f)
    except BaseException:
        if f is not source:
            f.close()
        raise


def open_raw(source: str | os.PathLike | BinaryIO) -> BinaryIO:
    """The binary file behind `source` (`-`: standard input spooled to a temporary file)."""
    if isinstance(source, (str, os.PathLike)) and str(source) == STDIO:
        spool = tempfile.TemporaryFile()
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
        return spool
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a .tcs file")
        try:
            return open(path, "rb")
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    return source


def info(source: str | os.PathLike) -> dict:
    """Everything a user wants to know about a .tcs file, as plain JSON-able values."""
    reader = open_tcs(source)
    try:
        h, t = reader.header, reader.trailer
        size = reader._f.seek(0, 2)
        raw = t.frame_count * h.height * h.width * np.dtype(h.dtype).itemsize
        layout = reader.layout()
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
            "measurement": h.coding,
            "split_groups": sum(len(parts) > 1 for parts in layout),
            "scene_cuts_at": [g * h.B + first for g, parts in enumerate(layout) for first, _ in parts[1:]],
            "metadata": h.metadata,
            "payload_verified": False,  # header and trailer checksums only: `emcodec verify` reads the rest
            "grey_levels": posterised(h.dtype, t.value_min, t.value_max),  # None: rounding loses nothing visible
        }
    finally:
        reader._f.close()


def verify(source: str | os.PathLike) -> dict:
    """Check every checksum of a .tcs file without decoding it.

    Returns {"file", "ok", "groups", "frames", "error"}: a damaged or unreadable file is a
    result (ok false, the reason in "error"), not an exception, so many files can be checked.
    """
    result = {"file": str(source), "ok": False, "groups": None, "frames": None, "error": None}
    try:
        reader = open_tcs(source)
    except EmcodecError as exc:
        result["error"] = " ".join(str(exc).split())
        return result
    try:
        result["groups"] = reader.check_all()
        result["frames"] = reader.trailer.frame_count
        result["ok"] = True
    except (EmcodecError, OSError) as exc:
        result["error"] = " ".join(str(exc).split())
    finally:
        reader._f.close()
    return result


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


OUTPUT_DTYPES = (None, "float32")  # None: the source's dtype
POSTERISED_LEVELS = 1024  # integer sources with fewer grey levels than this lose precision when rounded


def posterised(dtype: str, value_min: float, value_max: float) -> int | None:
    """The source's grey levels when decoding to its integer dtype rounds visibly, else None."""
    if np.dtype(dtype).kind not in "iu" or not np.isfinite(value_max - value_min):
        return None
    levels = int(value_max - value_min) + 1
    return levels if levels < POSTERISED_LEVELS else None


WRITE_FRAMES = 4  # frames converted and written at once: a 4096 x 4096 x 30 group is 2 GB in float32


def to_dtype(frames: np.ndarray, dtype: str, lo: float, hi: float) -> np.ndarray:
    """Round and clip decoded frames to the source's value range and dtype."""
    out = np.clip(frames, lo, hi)
    if np.dtype(dtype).kind in "iu":
        out = np.rint(out)
    return out.astype(dtype)


@dataclass(frozen=True)
class Output:
    """The writer's dtype and value range. The movie decoder converts its frames with it
    tile by tile, so a group is held as the writer takes it (uint16: half of float32)."""

    dtype: np.dtype
    lo: float
    hi: float

    def convert(self, frames: np.ndarray) -> np.ndarray:
        if not np.isfinite(frames).all():  # rounding would hide it
            raise ContainerError("the decode gives non-finite values: the file is inconsistent")
        return to_dtype(frames, self.dtype, self.lo, self.hi)


RESIDUAL_ALERT = 0.25  # a quarter of the measurement unexplained: never a good decode
RESIDUAL_OUTLIER = 3.0  # times the file's median residual


NOISE_ALERT = 2.5  # RMS residual over the RMS noise: 6x the variance noise explains
DECODER_ERROR = 0.10  # of the measurement: what the decoders leave where noise is small (high dose)


def flag_groups(checks: list) -> list[bool]:
    """Groups whose decode does not explain their measurement (SelfCheck per group).

    With a noise model, each group is judged alone, against the noise its own measurement
    should hold: a dark group after a beam blank has a small measurement and a small noise
    alike. Flagged: more than NOISE_ALERT times that noise left unexplained and more than
    DECODER_ERROR of the measurement (at high dose the decoders' own error, a few per cent,
    is many times the noise: docs/decoders.md, "Self-check"). Without one (float input
    without --gain), groups are compared with each other (flag_residuals).
    """
    if checks and all(c.noise_ratio is not None for c in checks):
        return [c.noise_ratio > NOISE_ALERT and c.residual > DECODER_ERROR for c in checks]
    return flag_residuals([c.residual for c in checks])


def _describe_noise(header: Header) -> dict | None:
    """The sidecar's account of the noise model the self-check used."""
    q = header.quantizer
    if q is not None:
        return {"gain": q.gain, "offset": q.offset, "read_noise": q.read_noise, "quantiser_step": q.step,
                "from": "the quantiser in the header"}
    d = header.metadata.get("detector_noise")
    if isinstance(d, dict):
        return {**d, "from": "the header metadata (stored losslessly)"}
    return None


class _Ticks:
    """Progress in frames of [start, stop): whole frames within a group as its tiles are
    decoded (the last one when it is written, so a bar never runs ahead), the rest when the
    group is written."""

    def __init__(self, progress: Progress | None, start: int, stop: int, B: int):
        self.progress, self.start, self.stop, self.B = progress, start, stop, B
        self.given: dict[int, int] = {}

    def within(self, g: int, n_valid: int) -> Callable[[float], None] | None:
        if self.progress is None:
            return None
        frames = max(0, min(self.stop, g * self.B + n_valid) - max(self.start, g * self.B))

        def tick(fraction: float) -> None:
            n = min(int(fraction * frames), frames - 1)
            if n > self.given.get(g, 0):
                self.progress(n - self.given.get(g, 0))
                self.given[g] = n
        return tick

    def of_movie(self, frame_count: int, offset: int = 0) -> Callable[[int, float], None] | None:
        """The movie decoder's progress(group, fraction), its groups numbered from `offset`."""
        if self.progress is None:
            return None

        def tick(g: int, fraction: float) -> None:
            g += offset
            self.within(g, min(self.B, frame_count - g * self.B))(fraction)
        return tick

    def written(self, g: int, frames: int) -> None:
        left = frames - self.given.pop(g, 0)
        if self.progress is not None and left > 0:
            self.progress(left)


def flag_residuals(residuals: list[float]) -> list[bool]:
    """Groups whose decode does not explain their measurement as well as the others do.

    Noise keeps every residual above zero, so a group is flagged only against the file's own
    typical level (and an absolute ceiling), not against zero.
    """
    if not residuals:
        return []
    typical = float(np.median(residuals))
    return [r > RESIDUAL_ALERT or (r > RESIDUAL_OUTLIER * typical and r > 0.02) for r in residuals]


def decoding_methods() -> list[str]:
    """Every name `--method` accepts: the movie decoder first, then the per-group methods."""
    from .decoders import available_methods

    return [*MOVIE_METHODS, *available_methods()]


def choose_decoder(method: str, B: int, warn: Callable[[str], None], *, window: int = DEFAULT_WINDOW):
    """The decoder for `method`; TCS-DL without weights for this B falls back to GAP-TV.

    `movie` wraps the per-group method (TCS-DL, or GAP-TV where no weights exist) as the
    first pass of the movie decoder; `movie-learned` also loads the shipped learned prior.
    """
    from .decoders import UnknownMethodError, get_decoder, get_decoder_class

    if method not in decoding_methods():
        names = ", ".join(decoding_methods())
        raise UnknownMethodError(f"unknown decoding method {method!r} (available: {names})")
    if method == "preview":
        from .decoders.preview import PreviewDecoder
        from .motion import require_cv2

        require_cv2()
        return PreviewDecoder()
    if method in MOVIE_METHODS:
        from .decoders import require_torch

        require_torch()
        from .decoders.movie import MovieDecoder
        from .motion import require_cv2

        require_cv2()
        prior, entry = None, None
        if method == "movie-learned":
            from .model.prior import load_prior

            prior, entry = load_prior()
            if prior is None:
                raise UnknownMethodError("movie-learned needs the learned prior (weights/prior.json), "
                                         "which this installation does not have")
        if prior is None:  # the fit needs no network's start (docs/decoders.md)
            from .decoders.normalised import NormalisedMeasurement

            return MovieDecoder(NormalisedMeasurement(), window=window)
        # the learned prior was trained on fits started from TCS-DL decodes
        return MovieDecoder(choose_decoder("tcsdl", B, warn), window=window, prior=prior, prior_entry=entry)
    cls = get_decoder_class(method)
    supports = getattr(cls, "supports", None)
    if supports is not None and not supports(B):
        warn(f"no {method} weights for B={B}; decoding with gap-tv instead")
        return get_decoder("gap-tv")
    decoder = cls()
    if hasattr(decoder, "load"):
        decoder.load(B)
    return decoder


def noise_model(header: Header):
    """The noise a measurement of this file should hold (decoders.measurement.Noise): the
    quantiser's detector law and step, or the detector noise a lossless file recorded; None
    when the file knows neither (float input), and the self-check falls back to comparing
    groups with each other."""
    from .decoders.measurement import Noise

    integer = np.dtype(header.dtype).kind in "iu"
    q = header.quantizer
    if q is not None:
        return Noise(q.gain, q.offset, q.read_noise, integer, q)
    d = header.metadata.get("detector_noise")
    if isinstance(d, dict):  # checked when the header was read (fields.check_metadata)
        return Noise(float(d["gain"]), float(d["offset"]), float(d["read_noise"]), integer, None)
    return None


class _OpenCvCpu:
    """The device of a decoder that runs on OpenCV alone (preview): torch is never imported."""

    type = "cpu"

    def __str__(self) -> str:
        return "cpu"


def _device_and_threads(decoder, device, threads):
    """The decoding device and CPU thread count; importing torch only for decoders that use it."""
    if not getattr(decoder, "uses_torch", True):
        from .motion import require_cv2

        n = threads if threads else usable_cores()
        require_cv2().setNumThreads(n)
        return _OpenCvCpu(), n
    from .decoders.base import resolve_device, set_cpu_threads

    device = resolve_device(device)
    if device.type == "cpu":
        threads = set_cpu_threads(threads)
    return device, threads


def _motion_library() -> str:
    from .motion import LIBRARY

    return LIBRARY


def _per_group(reader, decoder, group_range, device, noise=None, ticks=None):
    """(group index, group, frames, self-check) decoding each group on its own."""
    from .decoders.base import decode_stored_group

    h = reader.header
    for g in group_range:
        group = reader.read_group(g)
        x, check = decode_stored_group(decoder, group, h.B, h.seed, device=device, noise=noise,
                                       progress=ticks.within(g, group.n_valid) if ticks else None)
        yield g, group, x, check


def _as_movie(reader, decoder, start, stop, noise=None, progress=None, output: Output | None = None):
    """The same, from the movie decoder: parts are collected into their groups, and a
    group is handed on as soon as its last part is decoded (one group's frames held at a
    time), already converted by `output` when given. `progress(group, fraction)` as
    decode_movie reports it."""
    from .decoders.measurement import self_check
    from .decoders.movie import decode_movie

    h = reader.header
    current, parts, check = None, [], None
    for g, unit, x in decode_movie(reader, decoder, start, stop, progress=progress, output=output):
        if current is None or g != current[0]:
            current, parts, check = (g, reader.read_group(g, payloads=SKIP)), [], None
        part = self_check(x, unit.y, h.seed, h.B, noise)
        check = part if check is None else check.worst(part)
        parts.append(x)
        del x
        if len(parts) == len(current[1].parts):
            frames = parts[0] if len(parts) == 1 else np.concatenate(parts)
            parts = []
            yield current[0], current[1], frames, check
            del frames


def _description(labels: list[str], metadata: dict) -> str:
    """The output's description: emcodec's provenance, then the source's own ImageJ Info or
    MRC labels (emcodec's own labels of an earlier decode left out)."""
    extra = metadata.get("source_extra")
    extra = extra if isinstance(extra, dict) else {}
    info = extra.get("imagej_info")
    own = [lab for lab in extra.get("labels") or [] if isinstance(lab, str) and not lab.startswith("emcodec")]
    text = "; ".join(labels)
    if isinstance(info, str) and info:
        text += "\n\nSource Info:\n" + info
    if own and isinstance(extra.get("labels"), list):
        text += "\n\nSource labels:\n" + "\n".join(own)
    return text


def _restore_bad_pixels(out: np.ndarray, group, offset: int) -> int:
    """NaN at each part's recorded bad pixels in its decoded frames (`out` starts at frame
    `offset` of the group); returns the most bad pixels of a part (0: none recorded)."""
    worst = 0
    for part in group.parts:
        if part.bad is None:
            continue
        a, b = max(part.first - offset, 0), max(part.first + part.n_frames - offset, 0)
        badpixels.restore(out[a:b], part.bad)
        worst = max(worst, int(part.bad.sum()))
    return worst


class _Salvage:
    """decompress --salvage: the intact groups of a damaged file, in the reader's shape."""

    def __init__(self, f: BinaryIO):
        from .salvage import salvage

        self._f = f
        try:
            self.saved = salvage(f)
        except BaseException:
            f.close()
            raise
        if not self.saved.intact:
            f.close()
            raise ContainerError("salvage found no intact group: "
                                 + ("; ".join(self.saved.problems[:1]) or "the file holds none"))
        self.header, self.trailer = self.saved.header, self.saved.trailer

    def decoded(self, decoder, movie: bool, start: int, stop: int, group_range: range, device, noise, ticks,
                output: Output | None = None):
        """(group, Group or None, frames, self-check) in order; None for a group not recovered;
        the movie decoder's frames converted by `output`."""
        from .decoders.base import decode_stored_group
        from .salvage import RunReader, _group_at, intact_runs

        h, saved = self.header, self.saved
        runs = intact_runs(saved, range(len(saved.trailer.offsets)))
        g = group_range.start
        while g < group_range.stop:
            if g not in saved.intact:
                yield g, None, None, None
                g += 1
                continue
            run = next(r for r in runs if r[0] <= g < r[1])
            end = min(run[1], group_range.stop)
            if movie:
                rr = RunReader(self._f, saved, *run)
                lo = max(start, g * h.B) - run[0] * h.B
                hi = min(stop, end * h.B, saved.frame_count) - run[0] * h.B
                for gr, group, x, check in _as_movie(rr, decoder, lo, hi, noise,
                                                     ticks.of_movie(saved.frame_count, run[0]), output):
                    group.index = gr + run[0]
                    yield gr + run[0], group, x, check
            else:
                for gi in range(g, end):
                    group = _group_at(self._f, h, saved.intact[gi])
                    x, check = decode_stored_group(decoder, group, h.B, h.seed, device=device, noise=noise,
                                                   progress=ticks.within(gi, group.n_valid))
                    yield gi, group, x, check
            g = end


def decompress(
    source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    method: str = DEFAULT_METHOD,
    frames: str | None = None,
    window: int = DEFAULT_WINDOW,
    device: str = "auto",
    threads: int | None = None,
    force: bool = False,
    salvage: bool = False,
    missing: list | None = None,
    max_memory: int | None = None,
    dtype: str | None = None,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Decode a .tcs file into a TIFF or MRC movie; returns the path written.

    Beside the movie, `<output>.emcodec.json` records the method, weights, B, seed and the
    self-check residual of every group, so a user knows which frames not to trust.
    `salvage`: decode every intact group of a damaged or cut-short file (emcodec/salvage.py);
    frames of lost groups are written as 0 (NaN for float output) and their [first, last]
    ranges are appended to `missing` (the CLI then exits 2).
    `max_memory`: bytes one group may need (default: what is available; emcodec/memory.py).
    `dtype`: "float32" writes the decoder's values unrounded (default: the source's dtype).
    """
    if dtype not in OUTPUT_DTYPES:
        raise EmcodecError(f"--dtype takes {' or '.join(map(str, OUTPUT_DTYPES[1:]))}, got {dtype!r}")
    from .formats.carry import writer_fields
    from .stacks import create_stack

    warn = warn or (lambda message: None)
    reader = _Salvage(open_raw(source)) if salvage else open_tcs(source)
    try:
        h, t = reader.header, reader.trailer
        target = Path(output) if output is not None else default_output(str(source), h)
        sidecar = target.with_name(target.name + ".emcodec.json")
        inputs = [source] if str(source) != STDIO else []
        check_target(target, force=force, inputs=inputs)
        check_target(sidecar, force=force, inputs=inputs)
        start, stop = parse_frames(frames, t.frame_count)
        group_range = range(start // h.B, (stop - 1) // h.B + 1)
        out_dtype = h.dtype if dtype is None else dtype
        memory.check(h.height, h.width, h.B, movie=method in MOVIE_METHODS, window=window, limit=max_memory,
                     itemsize=np.dtype(out_dtype).itemsize)
        lost = reader.saved.missing(start, stop) if salvage else []
        if not salvage:
            reader.verify(group_range)
        decoder = choose_decoder(method, h.B, warn, window=window)
        device, threads = _device_and_threads(decoder, device, threads)
        labels = [
            f"emcodec {__version__} reconstruction",
            f"method={decoder.name} B={h.B} seed={h.seed} device={device}"
            + (f" threads={threads}" if device.type == "cpu" else ""),  # outputs are bit-identical per thread count
        ] + [part for label in getattr(decoder, "labels", []) for part in textwrap.wrap(label, 80)]
        if (start, stop) != (0, t.frame_count):  # in the output itself, not only in the sidecar
            labels.append(f"frames {start}-{stop - 1} of {t.frame_count}: the first frame here is frame {start}")
        fill = np.nan if np.dtype(out_dtype).kind == "f" else 0
        if lost:
            ranges = ", ".join(f"{a}-{b - 1}" for a, b in lost)  # (a None end is added below)
            labels.append(f"salvaged: frames {ranges} were damaged or missing, written as {fill}")
            warn(f"frames {ranges} are damaged or missing; written as {fill} (salvage)")
        if salvage and not reader.saved.trailer_found and stop == t.frame_count:
            warn(f"no intact trailer: the movie may have held frames after frame {stop - 1}; they are lost")
            labels.append(f"salvaged: no trailer, frames after {stop - 1} (if any) are lost")
            lost.append((stop, None))
        if missing is not None:
            missing.extend([a, None if b is None else b - 1] for a, b in lost)
        pixel_size = h.metadata.get("pixel_size")
        groups, checks = [], []
        noise = noise_model(h)
        ticks = _Ticks(progress, start, stop, h.B)
        with create_stack(
            target, height=h.height, width=h.width, dtype=out_dtype, n_frames=stop - start,
            pixel_size=tuple(pixel_size) if pixel_size else None, description=_description(labels, h.metadata),
            labels=labels, force=force, **writer_fields(h.metadata),
        ) as writer:
            if method in MOVIE_METHODS:
                decoder.device = device
            movie = method in MOVIE_METHODS  # its frames come converted to the writer's dtype
            output = Output(np.dtype(out_dtype), t.value_min, t.value_max)
            if salvage:
                decoded = reader.decoded(decoder, movie, start, stop, group_range, device, noise, ticks, output)
            elif movie:
                decoded = _as_movie(reader, decoder, start, stop, noise, ticks.of_movie(t.frame_count), output)
            else:
                decoded = _per_group(reader, decoder, group_range, device, noise, ticks)
            for g, group, x, check in decoded:
                first = g * h.B
                if group is None:  # salvage: a group that was not recovered
                    lo, hi = max(start, first), min(stop, first + h.B, t.frame_count)
                    writer.write(np.full((hi - lo, h.height, h.width), fill, dtype=out_dtype))
                    groups.append({"group": g, "frames": [first, min(first + h.B, t.frame_count)], "missing": True})
                    ticks.written(g, hi - lo)
                    continue
                lo, hi = max(start, first), min(stop, first + group.n_valid)
                # (the movie decoder's Output.convert has checked its frames, tile by tile)
                if not movie and not all(np.isfinite(x[k : k + WRITE_FRAMES]).all()
                                         for k in range(0, len(x), WRITE_FRAMES)):
                    raise ContainerError(f"group {g} decodes to non-finite values: the file is inconsistent")
                n_bad = 0
                for k in range(lo - first, hi - first, WRITE_FRAMES):  # a few frames' copies at a time
                    out = x[k : min(k + WRITE_FRAMES, hi - first)]
                    out = out if movie else output.convert(out)
                    n_bad = max(n_bad, _restore_bad_pixels(out, group, k))
                    writer.write(out)
                del x  # before the next group is decoded: one group's frames at a time
                groups.append({"group": g, "frames": [first, first + group.n_valid],
                               "residual": round(check.residual, 6),
                               **({"noise_ratio": round(check.noise_ratio, 3)} if check.noise_ratio is not None else {}),
                               **({"split_at": [first + p.first for p in group.parts[1:]]}
                                  if len(group.parts) > 1 else {}),
                               **({"bad_pixels": n_bad} if n_bad else {})})
                checks.append(check)
                ticks.written(g, hi - lo)
        decoded_groups = [e for e in groups if not e.get("missing")]
        for entry, flagged in zip(decoded_groups, flag_groups(checks)):
            entry["flagged"] = flagged
            if flagged:
                a, b = entry["frames"]
                why = (f"the decode leaves {entry['noise_ratio']:.1f}x the noise its measurement should hold "
                       "unexplained" if "noise_ratio" in entry else
                       f"measurement residual {entry['residual']:.3f} is far above the others")
                warn(f"group {entry['group']} (frames {a}-{b - 1}): {why}; do not trust these frames")
        report = {
            "reconstruction_of": h.metadata.get("source_name"),
            "emcodec": __version__, "method": decoder.name, "B": h.B, "seed": h.seed,
            "weights": getattr(getattr(decoder, "first_pass", decoder), "entry", {}).get("sha256"),
            **({"window": decoder.window, "first_pass": getattr(decoder.first_pass, "name", None),
                "prior": (decoder.prior_entry or {}).get("sha256", "tv"),
                "motion": _motion_library()}
               if method in MOVIE_METHODS else {}),
            "frames": [start, stop], "device": str(device),
            **({"cpu_threads": threads} if device.type == "cpu" else {}),
            "residual": "RMS(sum_k C_k x_k - Y) / RMS(Y) per group; noise keeps it above 0",
            "noise_ratio": "RMS(sum_k C_k x_k - Y) over the RMS noise Y should hold (detector noise and quantiser "
                           "step); about 1 when the decode explains the measurement",
            "noise_model": _describe_noise(h),
            "flagged_when": (f"noise_ratio > {NOISE_ALERT:g} and residual > {DECODER_ERROR:g}" if noise is not None
                             else f"no noise model: residual > {RESIDUAL_ALERT:g}, or > {RESIDUAL_OUTLIER:g}x the "
                                  "file's median"),
            **({"salvage": {"trailer_found": reader.saved.trailer_found,
                            "missing_frames": [[a, None if b is None else b - 1] for a, b in lost],
                            "filled_with": "NaN" if fill != 0 else 0,
                            "problems": reader.saved.problems}} if salvage else {}),
            "groups": groups,
        }
        with AtomicFile(sidecar, force=True) as f:
            f.write((json.dumps(report, indent=2) + "\n").encode())
        return target
    finally:
        reader._f.close()
