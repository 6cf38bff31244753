"""`emcodec benchmark`: what do I get back at the same bytes on disk, and what does it cost?"""

from __future__ import annotations

import click

from ..errors import EmcodecError


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EmcodecError(f"{what} takes comma-separated integers, e.g. 10,20,30; got {text!r}") from None
    if not values:
        raise EmcodecError(f"{what} needs at least one value")
    return values


def _name_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [v.strip().lower() for v in text.split(",") if v.strip()]


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@click.command("benchmark")
@click.argument("movie", required=False, type=click.Path(dir_okay=False))
@click.option("-B", "B", default="10,20,30", show_default=True, help="Group sizes to test, comma-separated.")
@click.option("--vs", "vs", default="jpeg", show_default=True,
              help="Baselines, comma-separated, or 'all': jpeg, jpeg12, jpeg2000, jpegxl, h264, h265, av1.")
@click.option("--reference", type=click.Path(dir_okay=False, exists=True),
              help="Movie to score against (e.g. denoised or noise-free). [default: the sample's clean "
                   "frames, else the raw frames]")
@click.option("--method", help="emcodec decoders, comma-separated. [default: every registered one]")
@click.option("--frames", "n_frames", type=click.IntRange(min=1), help="Use only the first N frames.")
@click.option("--crop", type=click.IntRange(min=8), help="Use only the centre NxN pixels.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write every number to this JSON file.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), help="Write PSNR-vs-bits and frame/FFT panels to this PNG.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True,
              help="Where emcodec's decoders run.")
@click.option("--seed", type=int, default=0, show_default=True, help="emcodec mask seed.")
@click.option("--level", type=int, default=1, show_default=True, help="emcodec zstd level.")
@click.option("--quantize", default="auto", show_default=True,
              help="emcodec measurement settings to compare, comma-separated: off, auto, or steps (e.g. off,auto,2).")
@click.option("--scan-points", type=click.IntRange(min=2), default=8, show_default=True,
              help="Baseline settings tried below the matched one for the best PSNR within the budget.")
@click.option("--noise-seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Noise realisations the verdict averages over (fresh noise around a noise-free reference; "
                   "1 when there is none).")
@click.option("--dose", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Counts per pixel per frame when MOVIE is a PNG still (made into a drifting movie).")
@click.option("--threads", type=click.IntRange(min=1), help="Decoder CPU threads. [default: the idle cores]")
@click.option("--force", is_flag=True, help="Overwrite existing --json/--plot files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages (the table is still printed).")
def benchmark(movie, B, vs, reference, method, n_frames, crop, json_out, plot_out, device, seed, level,
              quantize, scan_points, noise_seeds, dose, threads, force, quiet):
    """Rate-distortion and speed of emcodec against standard codecs at matched bytes.

    For each B the movie is compressed to a real .tcs file and decoded with every emcodec
    method; each baseline gets the setting whose output is the largest that fits in the same
    bytes (and the best PSNR any setting within them reaches). PSNR/SSIM are against
    --reference, the built-in sample's noise-free frames, or the raw frames; the report says
    which. Without MOVIE a built-in simulated movie is used (a small crop of it by default);
    a PNG still becomes a drifting movie with Poisson noise at --dose, its noise-free frames
    the reference. Also scored: the lattice (Bragg-peak cross-power), the FRC resolution, the
    atom columns (where the reference resolves them) and the temporal yardsticks; the verdict
    at the top says, per B and measure, who wins at the same bytes over --noise-seeds noise draws.

    \b
    Examples:
      emcodec benchmark --vs jpeg
      emcodec benchmark --vs all --json bench.json --plot bench.png
      emcodec benchmark --vs av1,jpegxl --quantize off,auto,2 --plot rd.png
      emcodec benchmark movie.tif -B 10,30 --vs jpeg,av1 --frames 60 --crop 256
      emcodec benchmark noisy.tif --reference denoised.tif --vs jpeg,jpeg2000 --json out.json
      emcodec benchmark still.png --dose 20 --frames 30 --crop 256 --vs jpeg,av1 --plot still.png
    """
    from ..atomic import check_target
    from . import baselines as bl
    from .report import print_report, write_json, write_plot
    from .run import Config, load_movie
    from .verdict import run_with_seeds

    Bs = _int_list(B, "-B")
    from ..encoder import check_B

    for b in Bs:
        check_B(b)
    names = _name_list(vs) or []
    if names == ["all"]:
        names = list(bl.BY_NAME)
    bl.get_baselines(names)  # unknown names fail before any work
    inputs = [p for p in (movie, reference) if p]
    for out in (json_out, plot_out):
        if out:
            check_target(out, force=force, inputs=inputs)
    if plot_out:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            from ..errors import MissingDependencyError

            raise MissingDependencyError("--plot needs matplotlib: pip install 'emcodec[bench]'") from None

    def log(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)

    if movie is not None and not __import__("os").path.isfile(movie):
        raise EmcodecError(f"{movie}: no such file")
    data = load_movie(movie, reference=reference, n_frames=n_frames, crop=crop, dose=dose)
    for note in data.notes:
        log(f"note: {note}")
    from ..codec import parse_quantize

    settings = [parse_quantize(q) for q in (_name_list(quantize) or [])]
    if not settings:
        raise EmcodecError("--quantize needs at least one setting")
    config = Config(Bs=Bs, methods=_name_list(method), baselines=names, device=_resolve_device(device),
                    seed=seed, level=level, quantize=settings, scan_points=scan_points, threads=threads)
    report = run_with_seeds(data, config, noise_seeds, log=log)
    print_report(report)
    if json_out:
        write_json(report, json_out, force=True)
        log(f"wrote {json_out}")
    if plot_out:
        write_plot(report, data, plot_out, force=True)
        log(f"wrote {plot_out}")
