"""The benchmark: for each B, emcodec's real file and decoders against baselines at matched bytes.

Encoder CPU (`time.process_time()`, every thread of the process) is measured in a fresh
process that never imports torch: once a torch decoder has run, its idle worker threads
inflate whatever is timed next (measured: emcodec's compress() went from 0.16 to 0.26 ms per
frame), and that would be charged to the encoders.
"""

from __future__ import annotations

import functools
import io
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..errors import EmcodecError, InputError
from ..metrics import data_range, mean_psnr, psnr_frames, ssim_frames
from . import baselines as bl
from .matching import Sizer, match_budget, scan_grid

SAMPLE_DEFAULT_FRAMES = 30  # one full group at B = 30, and a default run of a few minutes
SAMPLE_DEFAULT_CROP = 128
MIN_CPU_SECONDS = 0.2  # repeat a timed encode until it has used this much CPU
MAX_REPEATS = 25
TIMING_ROUNDS = 5  # encoder timings: interleaved rounds, median of each encoder's


@dataclass
class Movie:
    frames: np.ndarray  # what is compressed: source dtype, (n, h, w)
    reference: np.ndarray  # what the frames are scored against
    reference_kind: str  # "clean", "file" or "raw"
    reference_note: str
    source: str
    notes: list[str] = field(default_factory=list)
    events: list[dict] | None = None  # simulator events (emcodec.simulate.simulate_events_movie), scored if given
    pixel_size: float | None = None  # Å per pixel, for the science measures' units (None: per pixel)

    @property
    def raw_bytes(self) -> int:
        return self.frames.nbytes


@dataclass
class Config:
    Bs: list[int] = field(default_factory=lambda: [10, 20, 30])
    methods: list[str] | None = None  # None: every registered decoder
    baselines: list[str] = field(default_factory=lambda: ["jpeg"])
    device: str = "cpu"
    seed: int = 0
    level: int = 1
    quantize: list = field(default_factory=lambda: ["auto"])  # emcodec settings: "off", "auto", steps
    scan_points: int = 8
    panel_B: int | None = None  # the B shown in the frame/FFT panel (default: the first)
    isolate_timing: bool = True  # time the encoders in a fresh process (see _run_timings)
    timing: bool = True  # time the encoders at all (off for the extra noise seeds of the verdict)
    science: bool = True  # lattice, resolution and column measures (emcodec/bench/science.py)
    threads: int | None = None  # decoder CPU threads (None: the idle cores)


def _crop(a: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return a
    h, w = a.shape[1:]
    sh, sw = min(size, h), min(size, w)
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    return a[:, y0 : y0 + sh, x0 : x0 + sw]


STILL_FRAMES = 30
STILL_DOSE = 20.0


def load_movie(path=None, *, reference=None, n_frames: int | None = None, crop: int | None = None,
               dose: float = STILL_DOSE, seed: int = 1) -> Movie:
    """The movie to benchmark and its reference: --reference, the sample's clean frames, or the raw frames.

    A PNG still becomes a drifting movie with Poisson noise at `dose` counts/px/frame and its
    noise-free frames as the reference (emcodec/bench/stills.py)."""
    from ..stacks import open_stack

    notes = []
    if path is not None and str(path).lower().endswith(".png"):
        if reference is not None:
            raise InputError("--reference is not used with a still: its noise-free frames are the reference")
        from .stills import movie_from_still

        frames_wanted = n_frames or STILL_FRAMES
        clean, noisy = movie_from_still(path, frames_wanted, dose, seed, size=crop or 256)
        return Movie(noisy, clean, "clean", f"noise-free drifted frames of the still {Path(path).name}",
                     f"still {Path(path).name}, drift + Poisson at dose {dose:g}",
                     [f"the still {Path(path).name} made into {frames_wanted} frames of {noisy.shape[1]}x"
                      f"{noisy.shape[2]}: sub-pixel drift, Poisson noise at {dose:g} counts/px/frame (seed {seed})"])
    pixel_size = None
    if path is None:
        from ..simulate import sample_movie

        clean, noisy = sample_movie()
        if n_frames is None and crop is None:
            n_frames, crop = SAMPLE_DEFAULT_FRAMES, SAMPLE_DEFAULT_CROP
            notes.append(f"default run limited to the first {n_frames} frames, centre {crop}x{crop} of the "
                         f"{len(noisy)}x{noisy.shape[1]}x{noisy.shape[2]} built-in sample (GAP-TV decoding is slow "
                         f"on a CPU); use --frames {len(noisy)} --crop {noisy.shape[1]} for all of it")
        frames, ref = noisy, clean
        source = "built-in sample (emcodec.simulate.sample_movie)"
        kind, ref_note = "clean", "noise-free frames of the built-in simulated sample"
    else:
        with open_stack(path) as reader:
            stop = reader.info.n_frames if n_frames is None else min(n_frames, reader.info.n_frames)
            frames = reader.read(0, stop)
            if reader.info.pixel_size:
                pixel_size = float(reader.info.pixel_size[0])
        source = str(path)
        ref = None
    if n_frames is not None:
        frames = frames[:n_frames]
    frames = np.ascontiguousarray(_crop(frames, crop))
    if path is not None:
        kind, ref_note = "raw", "the raw frames themselves (no noise-free reference given)"
    if reference is not None:
        with open_stack(reference) as reader:
            if reader.info.n_frames < len(frames):
                raise InputError(f"{reference}: has {reader.info.n_frames} frames, the movie has {len(frames)}")
            ref = reader.read(0, len(frames))
        ref = _crop(ref, crop)
        kind, ref_note = "file", f"--reference {reference}"
    elif path is not None:
        ref = frames
    else:
        ref = _crop(ref[: len(frames)], crop)
    ref = np.ascontiguousarray(ref, dtype=np.float32)
    if ref.shape != frames.shape:
        raise InputError(f"the reference has shape {ref.shape}, the movie {frames.shape}")
    if frames.dtype.name not in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32"):
        raise InputError(f"unsupported movie dtype {frames.dtype}")
    return Movie(frames, ref, kind, ref_note, source, notes, pixel_size=pixel_size)


def cpu_model() -> str:
    """`lscpu`'s model name, so a report says which machine made it."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def timed(fn: Callable, *, repeat: bool = True, min_cpu: float = MIN_CPU_SECONDS):
    """(result, CPU seconds per call, wall seconds per call); repeats short calls for a stable figure."""
    cpu = wall = 0.0
    reps = 0
    while True:
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        reps += 1
        if not repeat or cpu >= min_cpu or reps >= MAX_REPEATS:
            return out, cpu / reps, wall / reps


def _to_source(values: np.ndarray, movie: Movie) -> np.ndarray:
    """Decoded values in the source's dtype and range, exactly as emcodec's decoder writes them."""
    from ..codec import to_dtype

    return to_dtype(values, movie.frames.dtype.name, float(movie.frames.min()), float(movie.frames.max()))


def _scores(movie: Movie, decoded: np.ndarray, peak: float, *, with_ssim: bool = True) -> dict:
    p = psnr_frames(movie.reference, decoded, peak)
    out = {"psnr": mean_psnr(p, movie.reference), "psnr_frames": [float(v) for v in p]}
    if with_ssim:
        s = ssim_frames(movie.reference, decoded)
        out["ssim"] = float(np.mean(s))
        out["ssim_frames"] = [float(v) for v in s]
    return out


def _rate(movie: Movie, nbytes: int) -> dict:
    n, h, w = movie.frames.shape
    return {"bytes": int(nbytes), "bpp": 8 * nbytes / (n * h * w), "ratio": movie.raw_bytes / nbytes}


def _speed(movie: Movie, seconds: float, prefix: str) -> dict:
    n = len(movie.frames)
    return {f"{prefix}_s": seconds, f"{prefix}_fps": n / seconds if seconds > 0 else float("inf"),
            f"{prefix}_MBps": movie.raw_bytes / 1e6 / seconds if seconds > 0 else float("inf")}


def run_benchmark(movie: Movie, config: Config, *, log: Callable[[str], None] = lambda s: None) -> dict:
    """Every number of the report, as plain JSON-able values (plus `_panel` images for the plot)."""
    from ..codec import MOVIE_METHODS, compress, decoding_methods as available_methods, decompress
    from ..stacks import create_stack, open_stack

    methods = list(config.methods) if config.methods is not None else available_methods()
    unknown = [m for m in methods if m not in available_methods()]
    if unknown:
        raise EmcodecError(f"unknown method {', '.join(unknown)} (available: {', '.join(available_methods())})")
    n, h, w = movie.frames.shape
    notes = list(movie.notes)
    if "tcsdl" not in available_methods():
        notes.append("TCS-DL is not registered yet: emcodec is scored with "
                     + (", ".join(methods) + " only" if methods else "no decoder (--method given empty)"))
    elif not methods:
        notes.append("no emcodec decoder asked for (--method given empty): sizes and encoder cost only")
    baselines = []
    for b in bl.get_baselines(config.baselines):
        if b.available():
            baselines.append(b)
        else:
            notes.append(b.missing_note())
    peak = data_range(movie.reference)
    for B in config.Bs:
        if n % B:
            fits = [b for b in range(2, n + 1) if n % b == 0 and abs(b - B) <= B // 2]
            notes.append(f"B={B} does not divide the {n} frames: the last group holds {n % B} frames padded to {B} "
                         "with repeats of its last frame, so the file is larger than these frames need"
                         + (f" (B={', '.join(map(str, fits))} would divide {n})" if fits else ""))
    if movie.reference_kind == "raw":
        notes.append("temporal yardsticks not scored: they need a noise-free reference (--reference)")
    else:
        short = [B for B in config.Bs if n < 2 * B]
        if short:
            notes.append(f"temporal yardsticks not scored at B={', '.join(map(str, short))}: they need at least "
                         f"two groups ({2 * max(short)} frames for B={max(short)}), the movie has {n}")
    prep = None
    if config.science:
        from .science import prepare

        prep = prepare(movie.reference, pixel_size=movie.pixel_size)
    decoder_params = {}
    for m in methods:
        from ..decoders import get_decoder_class

        if m in MOVIE_METHODS:
            from ..codec import DEFAULT_WINDOW
            from ..motion import LIBRARY

            decoder_params[m] = {"class": "MovieDecoder", "B": list(config.Bs),
                                 "labels": [f"window={DEFAULT_WINDOW} motion={LIBRARY}, first pass "
                                            + ("none" if m == "preview" else "the normalised measurement" if m == "movie"
                                               else "tcsdl (gap-tv where no weights exist for B)")]}
            continue
        cls = get_decoder_class(m)
        try:
            labels = [str(x) for x in getattr(cls(), "labels", [])]
        except EmcodecError:
            labels = []
        supports = getattr(cls, "supports", None)
        decoder_params[m] = {"class": cls.__name__, "labels": labels,
                             "B": [B for B in config.Bs if supports is None or supports(B)]}
        missing = [B for B in config.Bs if B not in decoder_params[m]["B"]]
        if missing:
            notes.append(f"{m}: no weights for B={','.join(map(str, missing))} yet, so not scored there "
                         f"(emcodec decompress would fall back to GAP-TV)")
    report: dict = {
        "emcodec_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform()},
        "versions": bl.library_versions(),
        "movie": {"source": movie.source, "frames": n, "height": h, "width": w, "dtype": movie.frames.dtype.name,
                  "raw_bytes": movie.raw_bytes, "value_range": [float(movie.frames.min()), float(movie.frames.max())]},
        "reference": {"kind": movie.reference_kind, "description": movie.reference_note, "data_range": peak},
        "metrics": "PSNR per frame with peak = reference max - min, mean over frames; SSIM (scikit-image) per "
                   "frame with the same data range, mean over frames",
        "settings": {"B": list(config.Bs), "methods": methods, "baselines": [b.name for b in baselines],
                     "device": config.device, "seed": config.seed, "zstd_level": config.level,
                     "quantize": [quantize_label(q) for q in config.quantize],
                     "decoders": decoder_params,
                     "matching": "largest total <= .tcs file size, by bisection on the quality knob; "
                                 ">= 90% of it where the knob allows",
                     "baseline_settings": {b.name: {"label": b.label, "bits": b.bits, "knob": b.knob,
                                                    "knob_range": list(b.knob_range), **b.settings()}
                                           for b in baselines}},
        "notes": notes,
        "results": [],
    }
    if config.science:
        report["science_settings"] = _science_settings(prep)
    if movie.reference_kind != "raw":
        report["raw_frames"] = {**_scores(movie, movie.frames, peak), **_science(movie, movie.frames, prep)}

    with tempfile.TemporaryDirectory(prefix="emcodec-bench-") as tmp:
        tmp = Path(tmp)
        src = tmp / "movie.tif"
        with create_stack(src, height=h, width=w, dtype=movie.frames.dtype, n_frames=n, pixel_size=None) as wr:
            wr.write(movie.frames)

        # 1. emcodec files, one per B and quantiser setting (a "point"), no torch yet
        points = {}
        for B in config.Bs:
            for q in config.quantize:
                label = quantize_label(q)
                log(f"B={B}: emcodec compress --quantize {label}")
                tcs = tmp / f"movie-B{B}-q{label}.tcs"
                result = compress(src, tcs, B=B, seed=config.seed, level=config.level, quantize=q)
                if result.file_bytes != tcs.stat().st_size:
                    raise RuntimeError("compress() reported a size that is not the file's")
                points[B, label] = {"B": B, "quantize": label, "tcs": tcs, "emcodec": _rate(movie, result.file_bytes),
                                    "methods": {}, "baselines": {}}
                if result.quantizer is not None:
                    points[B, label]["emcodec"]["quantizer"] = result.quantizer.describe()
        for key, point in points.items():
            log(f"B={key[0]} --quantize {key[1]}: binning at matched bytes")
            point["binning"] = _binning(movie, point, peak, config.level, prep)
        largest = max(p["emcodec"]["bytes"] for p in points.values())
        panel = _panel_key(config, points)

        # 2. baselines: match, scan for the best PSNR in budget, time encode and decode
        for b in baselines:
            scale = b.scale_for(movie.frames)
            codes = scale.encode(movie.frames)
            sizer = Sizer(lambda k, b=b, codes=codes: b.encode(codes, k))
            psnr_cache: dict[float, dict] = {}

            def score(trial, with_ssim=False, b=b, scale=scale):
                key = (trial.knob, with_ssim)
                if key not in psnr_cache:
                    dec = _to_source(scale.decode(b.decode(trial.payloads, movie.frames.shape)), movie)
                    psnr_cache[key] = (_scores(movie, dec, peak, with_ssim=with_ssim), dec)
                return psnr_cache[key]

            for key, point in points.items():
                B, budget = key[0], point["emcodec"]["bytes"]
                log(f"B={B} --quantize {key[1]}: {b.name} at matched bytes ({budget} bytes)")
                m = match_budget(sizer, budget, b.knob_range, step=b.knob_step,
                                 more_bytes_when_larger=b.more_bytes_when_larger, log=b.log_knob)
                entry = {"label": b.label, "knob": b.knob, "budget_bytes": budget, "fits": m.fits,
                         "smallest_bytes": m.smallest.nbytes,
                         "tried": [{"knob": t.knob, "bytes": t.nbytes} for t in m.trials]}
                if not m.fits:
                    entry["note"] = (f"even the fewest-bytes setting ({b.knob}={m.smallest.knob:g}) takes "
                                     f"{m.smallest.nbytes} bytes > {budget}")
                    point["baselines"][b.name] = entry
                    continue
                t = m.matched
                scores, decoded = score(t, with_ssim=True)
                _, _, dec_wall = timed(lambda: b.decode(t.payloads, movie.frames.shape))
                entry["matched"] = {"knob": t.knob, **_rate(movie, t.nbytes), "fraction_of_budget": m.fraction,
                                    **{k: v for k, v in scores.items()}, **_speed(movie, dec_wall, "decode")}
                entry["within_tolerance"] = m.within_tolerance
                entry["knob_at_limit"] = m.knob_at_limit
                if m.next_over is not None:
                    entry["next_step"] = {"knob": m.next_over.knob, "bytes": m.next_over.nbytes}
                if m.fraction < 0.9 and not m.knob_allows_more:
                    entry["note"] = (f"{m.fraction:.0%} of the budget: the next {b.knob} step gives "
                                     f"{m.next_over.nbytes} bytes, over it" if m.next_over is not None else
                                     f"{m.fraction:.0%} of the budget: the knob is at its most-bytes end")
                scan = []
                for k in scan_grid(m, b.knob_range, step=b.knob_step, more_bytes_when_larger=b.more_bytes_when_larger,
                                   points=config.scan_points, log=b.log_knob):
                    trial = sizer(k)
                    if trial.nbytes <= budget:
                        scan.append({"knob": k, "bytes": trial.nbytes, "psnr": score(trial)[0]["psnr"]})
                best = max(scan, key=lambda s: s["psnr"])
                best_scores, best_dec = score(sizer(best["knob"]), with_ssim=True)
                entry["best_in_budget"] = {"knob": best["knob"], **_rate(movie, best["bytes"]),
                                           "psnr": best_scores["psnr"], "ssim": best_scores["ssim"],
                                           "psnr_frames": best_scores["psnr_frames"],
                                           **_temporal(movie, best_dec, B), **_science(movie, best_dec, prep),
                                           "_panel": best_dec[len(best_dec) // 2]}
                entry["scan"] = scan
                if key == panel:
                    entry["_frames"] = decoded
                point["baselines"][b.name] = entry
                _drop_large(sizer, largest)

        # 3. encoder CPU at matched bytes, all in one fresh process (see _encoder_timings)
        log("encoder CPU at matched bytes" if config.timing else "encoder CPU not timed (timing off)")
        tasks = [] if not config.timing else [("emcodec", key) for key in points]
        tasks += [(name, e["matched"]["knob"]) for p in points.values() for name, e in p["baselines"].items()
                  if "matched" in e]
        timings = dict(zip(tasks, _run_timings(str(src), tasks, config))) if tasks else {}
        for key, p in points.items() if config.timing else ():
            cpu, wall = timings[("emcodec", key)]
            p["emcodec"].update(encode_cpu_s_per_frame=cpu / n, **_speed(movie, wall, "encode"))
            for name, e in p["baselines"].items():
                if "matched" in e:
                    cpu, wall = timings[(name, e["matched"]["knob"])]
                    e["matched"].update(encode_cpu_s_per_frame=cpu / n, **_speed(movie, wall, "encode"))
        report["settings"]["encoder_timing"] = (
            f"time.process_time() around the encode calls only, in {TIMING_ROUNDS} interleaved rounds "
            f"(every encoder once per round, repeated to >= {MIN_CPU_SECONDS / TIMING_ROUNDS:g} s CPU; the "
            "median round kept), after one untimed call of each encoder, in a fresh "
            "process that never imports torch" if config.isolate_timing else "in this process")

        # 4. emcodec decoders (torch from here on)
        for key, p in points.items():
            B = key[0]
            for method in methods:
                if B not in report["settings"]["decoders"][method]["B"]:
                    continue
                log(f"B={B} --quantize {key[1]}: decode with {method}")
                out = tmp / f"movie-B{B}-q{key[1]}-{method}.tif"
                c0, w0 = time.process_time(), time.perf_counter()
                try:
                    decompress(p["tcs"], out, method=method, device=config.device, force=True,
                               threads=config.threads)
                    with open_stack(out) as reader:
                        decoded = reader.read(0, reader.info.n_frames)
                    path = "emcodec.codec.decompress to a TIFF, read back"
                except EmcodecError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a bug in the writer must not hide the decoder's numbers
                    c0, w0 = time.process_time(), time.perf_counter()
                    decoded = _decode_in_memory(p["tcs"], method, config.device)
                    path = "in memory (decode_group + to_dtype, no output file)"
                    notes.append(f"B={B} {method}: decompress() failed ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:120]}); decoded in memory with the same decoder instead")
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                entry = {**_scores(movie, decoded, peak), **_speed(movie, wall, "decode"), "decode_cpu_s": cpu,
                         "decode_path": path, **_temporal(movie, decoded, B), **_science(movie, decoded, prep),
                         "_panel": decoded[len(decoded) // 2]}
                if key == panel:
                    entry["_frames"] = decoded
                p["methods"][method] = entry
                for leftover in tmp.glob(out.name + "*"):  # the movie and decompress's sidecar
                    leftover.unlink()

    for p in points.values():
        p.pop("tcs")
        report["results"].append(p)
    report["encoder_cost"] = encoder_cost(report) if config.timing else None
    return report


def _science(movie: Movie, decoded: np.ndarray, prep: dict | None) -> dict:
    """The lattice, resolution and column measures (emcodec/bench/science.py) of one decode."""
    if prep is None:
        return {}
    from .science import science_report

    return {"science": science_report(movie.reference, decoded, prep)}


def _science_settings(prep: dict) -> dict:
    """What the science measures found in the reference and how they are defined."""
    from . import science as sc

    cols = {k: v for k, v in prep["columns"].items() if k != "sign"}
    if "sign" in prep["columns"]:
        cols["polarity"] = "bright columns" if prep["columns"]["sign"] > 0 else "dark columns"
    return {"bragg_peaks": int(len(prep["peaks"]["freq"])),
            "lattice": f"Bragg peaks: local maxima of the reference's frame-averaged power spectrum >= "
                       f"{sc.PEAK_SIGMA:g} robust sigma above their ring's median (at most {sc.MAX_PEAKS}); per "
                       f"peak the background-subtracted cross-power Re<F_dec F_ref*>/<|F_ref|^2> over frames; "
                       f"kept_freq = largest |k| with every peak up to it >= {sc.KEEP:g}; > {sc.AMPLIFIED:g} "
                       "counts as amplified",
            "frc": f"Fourier ring correlation of each frame with its reference frame; freq = median over frames "
                   f"of where it drops below {sc.FRC_THRESHOLD:g}",
            "columns": cols,
            "columns_rule": f"local maxima (scikit-image) refined by a 2-D Gaussian fit, the same settings for every "
                            f"movie; matched (Hungarian, scipy) within {sc.MATCH_RADIUS:g}x the spacing, over "
                            f"{sc.COLUMN_FRAMES} evenly spaced frames",
            "unit": "1/Å and Å" if prep["pixel_size"] else "1/px and px"}


def _temporal(movie: Movie, decoded: np.ndarray, B: int) -> dict:
    """The temporal yardsticks (emcodec/bench/temporal.py) against a clean reference."""
    if movie.reference_kind == "raw" or len(movie.frames) < 2 * B:
        return {}
    from .temporal import temporal_report

    try:
        return {"temporal": temporal_report(movie.reference, decoded, B, movie.events)}
    except ValueError as exc:  # e.g. a static reference has no motion to follow
        return {"temporal": {"note": str(exc)}}


def _binning(movie: Movie, point: dict, peak: float, level: int, prep: dict | None = None) -> dict:
    """Binning (each group's plain sum) stored with emcodec's quantiser and zstd, within the
    .tcs file's bytes, the container's overhead charged; scored like the decoders."""
    from ..codec import open_tcs
    from ..container import CRC, group_record
    from .binning import binning_at_budget

    reader = open_tcs(point["tcs"])
    try:
        size = point["emcodec"]["bytes"]
        groups = [reader.read_group(g, payloads="skip") for g in range(len(reader.trailer.offsets))]
        record = group_record(reader.header.version).size + 2 * CRC.size
        overhead = size - sum(g.stored_bytes for g in groups) + record * len(groups)
    finally:
        reader._f.close()
    B = point["B"]
    got = binning_at_budget(movie.frames, B, size, overhead, level=level)
    entry = {"fits": got["fits"], "tried": got["tried"], "rule": "plain sum of each group's B frames, "
             "emcodec's quantiser (gain fitted, frames=B) and zstd, container overhead charged; decoded as the "
             "group's mean for all its frames"}
    if got["fits"]:
        decoded = _to_source(got["frames"], movie)
        entry.update(step=got["step"], **_rate(movie, got["bytes"]), **_scores(movie, decoded, peak),
                     **_temporal(movie, decoded, B), **_science(movie, decoded, prep),
                     _panel=decoded[len(decoded) // 2])
    return entry


def quantize_label(q) -> str:
    return f"{q:g}" if isinstance(q, (int, float)) else str(q)


def _panel_key(config: Config, points: dict) -> tuple:
    """The point whose frames the figure shows: the panel B (default the first) at the first setting."""
    B = config.panel_B or config.Bs[0]
    return next(k for k in points if k[0] == B)


def _encoder_timings(src: str, tasks: list[tuple], seed: int, level: int) -> list[tuple[float, float]]:
    """(CPU s, wall s) per call of each encoder: ("emcodec", (B, quantize)) or (baseline name, knob).

    emcodec is timed as a user runs it: compress() from the TIFF (in the page cache), input
    reading and conversion included. Baselines get their codes ready-made (conversion not
    counted) and are timed on the encode call alone.
    """
    from ..codec import compress
    from ..stacks import open_stack

    with open_stack(src) as reader:
        frames = reader.read(0, reader.info.n_frames)

    def emcodec(B: int, quantize) -> Callable:
        return lambda: compress(src, io.BytesIO(), B=B, seed=seed, level=level, quantize=quantize)

    codes: dict[str, np.ndarray] = {}
    calls, warm = [], set()
    for name, arg in tasks:
        if name == "emcodec":
            fn = emcodec(int(arg[0]), arg[1])
        else:
            b = bl.BY_NAME[name]
            if name not in codes:
                codes[name] = b.scale_for(frames).encode(frames)
            fn = functools.partial(b.encode, codes[name], arg)
        if name not in warm:  # first use imports modules (tifffile: ~0.1 s): start-up, not encoding
            fn()
            warm.add(name)
        calls.append(fn)
    # Rounds: every encoder timed once per round, the median kept. On a shared machine a burst
    # of load then costs one round of each encoder, instead of all of whichever ran at the time.
    rounds = [[timed(fn, min_cpu=MIN_CPU_SECONDS / TIMING_ROUNDS)[1:] for fn in calls] for _ in range(TIMING_ROUNDS)]
    return [(float(np.median([r[i][0] for r in rounds])), float(np.median([r[i][1] for r in rounds])))
            for i in range(len(calls))]


def _run_timings(src: str, tasks: list[tuple], config: Config) -> list[tuple[float, float]]:
    """Encoder timings in a fresh process: torch's idle worker threads (once a decoder has run
    in this process) and the matching's memory churn would otherwise inflate the CPU figures."""
    if not config.isolate_timing:
        return _encoder_timings(src, tasks, config.seed, config.level)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_encoder_timings, src, tasks, config.seed, config.level).result()
    except (BrokenProcessPool, OSError):  # no child possible (e.g. __main__ read from stdin): time here
        config.isolate_timing = False
        return _encoder_timings(src, tasks, config.seed, config.level)


def _decode_in_memory(tcs, method: str, device: str) -> np.ndarray:
    """What `decompress` computes, without writing a file: every group, padding dropped, source dtype."""
    from ..codec import open_tcs, to_dtype
    from ..decoders import get_decoder
    from ..decoders.base import decode_stored_group

    reader = open_tcs(tcs)
    try:
        h, t = reader.header, reader.trailer
        decoder = get_decoder(method)
        out = []
        for g in range(len(t.offsets)):
            x, _ = decode_stored_group(decoder, reader.read_group(g), h.B, h.seed, device=device)
            out.append(to_dtype(x, h.dtype, t.value_min, t.value_max))
        return np.concatenate(out)
    finally:
        reader._f.close()


def _drop_large(sizer: Sizer, keep: int) -> None:
    """Forget the payloads of settings over every budget: they are never decoded, and they are big."""
    for t in sizer.trials.values():
        if t.nbytes > keep:
            t.payloads = []


AV1_BAR = 20.0  # emcodec's encoder must be at least this many times cheaper than SVT-AV1


def encoder_cost(report: dict) -> dict:
    """CPU seconds per frame of emcodec's encoder against each baseline's, at matched bytes."""
    mv = report["movie"]
    out = {"unit": "CPU seconds per frame (time.process_time over all threads of this process, "
                   "Python start-up excluded; baselines' input conversion excluded, emcodec's included)",
           "frames": f"{mv['frames']} frames of {mv['height']}x{mv['width']} {mv['dtype']}",
           "per_B": []}
    for r in report["results"]:
        em = r["emcodec"]["encode_cpu_s_per_frame"]
        row = {"B": r["B"], "quantize": r["quantize"], "emcodec": em, "baselines": {}, "bars": {}}
        for name, e in r["baselines"].items():
            if "matched" in e:
                c = e["matched"]["encode_cpu_s_per_frame"]
                row["baselines"][name] = {"cpu_s_per_frame": c, "ratio_to_emcodec": c / em if em > 0 else float("inf")}
        if "jpeg" in row["baselines"]:
            ratio = row["baselines"]["jpeg"]["ratio_to_emcodec"]
            row["bars"]["jpeg"] = {"rule": "emcodec CPU/frame <= JPEG (libjpeg-turbo)", "ratio": ratio, "holds": ratio >= 1.0}
        if "av1" in row["baselines"]:
            ratio = row["baselines"]["av1"]["ratio_to_emcodec"]
            row["bars"]["av1"] = {"rule": f"emcodec CPU/frame >= {AV1_BAR:g}x cheaper than AV1 (SVT-AV1)",
                                  "ratio": ratio, "holds": ratio >= AV1_BAR}
        out["per_B"].append(row)
    return out
