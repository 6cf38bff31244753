"""The `emcodec` command line: parse, call the pipelines in codec.py, print.

Every expected failure is an EmcodecError raised where it is found; `main` turns it into
one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager

import click

from . import __version__
from .errors import EmcodecError

EXIT_ERROR = 1
EXIT_PARTIAL = 2  # decompress --salvage wrote the movie, but some frames were lost
EXIT_INTERNAL = 3


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def progress_bar(total: int | None, label: str, quiet: bool):
    """A rich progress bar on stderr, only when a person is watching it (stderr is a
    terminal; stdout may carry the data, `-o -`)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
        TimeRemainingColumn(), console=_stderr_console(), transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _say(quiet: bool, message: str) -> None:
    """Human-readable summaries go to stderr so stdout can carry data (`-o -`)."""
    if not quiet:
        click.echo(message, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emcodec")
def cli():
    """Compress electron-microscopy movies by temporal compressive sensing (TCS-DL).

    \b
    Examples:
      emcodec compress movie.tif -B 10           # -> movie.tcs
      emcodec info movie.tcs
      emcodec decompress movie.tcs               # -> movie.decoded.tif
      emcodec compress movie.mrc -o - | ssh host 'cat > movie.tcs'
      emcodec demo                               # try it on a built-in sample
    """


def batch_options(command):
    """The options compress and decompress share for batches of files (and -q)."""
    for option in reversed([
        click.option("--jobs", "n_jobs", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Batches: files processed at once in local processes (with --scheduler local: workers)."),
        click.option("--scheduler", help="Batches: run on a Dask distributed cluster, given its scheduler's "
                     "address (tcp://host:8786), or 'local' to start one here. Needs the [dask] extra."),
        click.option("--skip-existing", is_flag=True,
                     help="Batches: leave files whose output exists alone (re-run a batch)."),
        click.option("--json", "as_json", is_flag=True, help="Batches: print the results as JSON instead of a table."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary."),
    ]):
        command = option(command)
    return command


@cli.command()
@click.argument("movies", nargs=-1, required=True, type=click.Path())
@click.option("-B", "B", type=int, default=10, show_default=True, help="Frames summed into one measurement (2-64).")
@click.option("-o", "--output", help="Output .tcs file, or - for stdout; for several inputs (or a folder, or a "
              "glob) a folder that mirrors their tree. [default: MOVIE with .tcs]")
@click.option("--seed", type=int, default=0, show_default=True, help="Mask seed (masks are a function of it).")
@click.option("--level", type=int, default=1, show_default=True, help="zstd level for the measurement (1-22).")
@click.option("--quantize", default="auto", show_default=True,
              help="off (lossless measurement), auto, or a step in noise standard deviations (e.g. 0.5). "
                   "Quantises after a variance-stabilising transform; float input is always lossless.")
@click.option("--gain", type=float, help="Detector gain (values per electron), if known. [default: estimated]")
@click.option("--offset", type=float, help="Detector offset (value at zero electrons), with --gain.")
@click.option("--read-noise", type=float, help="Detector read noise (standard deviation), with --gain.")
@click.option("--no-split", is_flag=True, help="Do not split groups at scene cuts (beam blanked, stage jump).")
@click.option("--series", is_flag=True, help="MOVIE is a folder (or a quoted glob) of single-frame files: one movie, "
              "in natural sort order.")
@click.option("--eer-fraction", type=click.IntRange(min=1), help="EER: raw frames summed into each frame.  [default: 1]")
@click.option("--eer-upsample", type=click.Choice(["1", "2", "4"]), help="EER: super-resolution from the events' "
              "sub-pixel bits.  [default: 1]")
@click.option("--gain-ref", type=click.Path(dir_okay=False), help="EER: gain reference (.gain, .tif or .mrc) "
              "multiplied into every frame.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--allow-truncated", is_flag=True,
              help="Compress the complete frames of a cut-short TIFF (with a warning) instead of refusing it.")
@click.option("--verify", "verify_written", is_flag=True,
              help="Read the written file back and check every checksum before reporting success.")
@batch_options
def compress(movies, B, output, seed, level, quantize, gain, offset, read_noise, no_split, series, eer_fraction,
             eer_upsample, gain_ref, force, allow_truncated, verify_written, n_jobs, scheduler, skip_existing, as_json, quiet):
    """Compress a movie (TIFF, MRC, DM3/DM4, Velox EMD, TIA SER, EER, a folder of frames) into a .tcs file.

    \b
    Examples:
      emcodec compress movie.tif -B 30
      emcodec compress stack.mrcs -o stack.tcs --seed 7
      emcodec compress movie.tif --quantize off       # keep the measurement exact
      emcodec compress counts.tif --gain 1 --offset 0 # a counting detector
      emcodec compress movie.tif -o - > movie.tcs
      emcodec compress movie.tif --verify             # read back and check before success
      emcodec compress insitu.dm4                     # vendor formats need: pip install 'emcodec[formats]'
      emcodec compress movie.eer --eer-fraction 20 --eer-upsample 2 --gain-ref movie.gain
      emcodec compress frames/ --series               # frame_1.dm4, frame_2.dm4, ... frame_10.dm4
      emcodec compress session/ -o archive/ --jobs 2  # every movie under session/, tree mirrored
      emcodec compress 'runs/*.tif' -o archive/ --skip-existing --scheduler tcp://head:8786
    """
    from .api import compress as run
    from .batch import COMPRESS, is_batch
    from .formats.options import default_output, read_options
    from .stacks import open_stack

    if is_batch(list(movies), series):
        if series:
            raise EmcodecError("--series reads one movie from one folder or glob; give one at a time")
        from .formats import ReadOptions

        options = dict(B=B, seed=seed, level=level, quantize=quantize, gain=gain, offset=offset,
                       read_noise=read_noise, split_cuts=not no_split, force=force, verify_written=verify_written,
                       read_options=ReadOptions(eer_fraction=eer_fraction or 1, eer_upsample=int(eer_upsample or 1),
                                                gain_ref=gain_ref, allow_truncated=allow_truncated))
        return _batch(COMPRESS, list(movies), output, options, n_jobs, scheduler, skip_existing, as_json, quiet)
    movie = movies[0]
    options = dataclasses.replace(read_options(movie, series=series, eer_fraction=eer_fraction,
                                               eer_upsample=eer_upsample, gain_ref=gain_ref),
                                  allow_truncated=allow_truncated)
    if output is None:
        output = default_output(movie, series)
    with open_stack(movie, options) as probe:
        total = probe.info.n_frames
    with progress_bar(total, "compress", quiet) as advance:
        result = run(movie, output, B=B, seed=seed, level=level, quantize=quantize, gain=gain, offset=offset,
                     read_noise=read_noise, split_cuts=not no_split, read_options=options, force=force,
                     verify_written=verify_written,
                     progress=advance, warn=lambda message: click.echo(f"warning: {message}", err=True))
    q = result.quantizer
    _say(quiet, f"{movie}: {result.frames} frames -> {output}: {result.file_bytes} bytes, "
                f"ratio {result.ratio:.2f} (B={B}, measurement "
                f"{'quantised, step %g' % q.step if q else 'lossless'}"
                f"{', %d group(s) split at scene cuts' % result.split_groups if result.split_groups else ''})"
                f"{'; verified: every checksum matches' if verify_written else ''}")


@cli.command()
@click.argument("tcs_files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-o", "--output", help="Output .tif/.tiff/.mrc/.mrcs/.zarr/.h5; for several inputs (or a folder, or a "
              "glob) a folder that mirrors their tree. [default: <name>.decoded.<source extension>]")
@click.option("--to", "to_ext", type=click.Choice([".tif", ".mrc", ".zarr", ".h5"]),
              help="Batches: the output format. [default: the source's]")
@click.option("--method", default="movie", show_default=True,
              help="Decoder: movie (frames follow the motion, fused across neighbouring groups); preview (fast, "
                   "watchable, not for measuring: each group's normalised measurement moved along the motion); "
                   "or one group at a time: tcsdl (the shipped network; GAP-TV where no weights exist for the "
                   "file's B) or gap-tv.")
@click.option("--frames", help="Only frames START:STOP (end exclusive), e.g. 0:100.")
@click.option("--window", type=click.IntRange(min=0), default=2, show_default=True,
              help="movie: groups on each side of a group that its frames are fused with.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=0), default=0,
              help="CPU threads (0: the cores other programs leave idle).  [default: 0]")
@click.option("--force", is_flag=True, help="Overwrite an existing output file (never the input).")
@click.option("--salvage", is_flag=True,
              help="Decode every intact group of a damaged or cut-short file; lost frames are written as 0 "
                   "(NaN for float) and listed. Exit status 2 when frames were lost.")
@click.option("--max-memory", help="Memory one group's decode may use, e.g. 16G (default: the free RAM "
              "and cgroup limit; decoding is refused up front when its estimate is larger).")
@click.option("--dtype", "out_dtype", type=click.Choice(["float32"]),
              help="Write float32 frames, unrounded (low-dose integer movies posterise when rounded). "
                   "[default: the source's dtype]")
@batch_options
def decompress(tcs_files, output, to_ext, method, frames, window, device, threads, force, salvage, max_memory,
               out_dtype, n_jobs, scheduler, skip_existing, as_json, quiet):
    """Rebuild a movie from a .tcs file (TCS is read from stdin with -).

    \b
    Examples:
      emcodec decompress movie.tcs
      emcodec decompress movie.tcs -o movie.mrc --method tcsdl --device cpu
      emcodec decompress movie.tcs --window 2
      emcodec decompress movie.tcs --frames 0:30 -o preview.tif
      cat movie.tcs | emcodec decompress - -o movie.tif
      emcodec decompress cut-short.tcs --salvage  # exit 2: some frames lost
      emcodec decompress movie.tcs -o movie.zarr  # OME-Zarr (or -o movie.h5): pip install 'emcodec[zarr]'
      emcodec decompress archive/ -o decoded/ --to .h5 --jobs 2 --skip-existing
    """
    from .api import decompress as run
    from .batch import DECOMPRESS, is_batch
    from .memory import parse_size

    max_memory = parse_size(max_memory) if max_memory is not None else None
    if is_batch(list(tcs_files)):
        if salvage or "-" in tcs_files:
            raise EmcodecError("--salvage and - (stdin) take one file at a time")
        parallel = n_jobs > 1 or scheduler
        options = dict(method=method, frames=frames, window=window, device=device, force=force,
                       max_memory=max_memory, dtype=out_dtype, threads=threads or (1 if parallel else 0))
        return _batch(DECOMPRESS, list(tcs_files), output, options, n_jobs, scheduler, skip_existing, as_json,
                      quiet, to_ext)
    tcs = tcs_files[0]
    total = None
    if tcs != "-" and not salvage:
        from .codec import info as tcs_info

        from .codec import parse_frames

        start, stop = parse_frames(frames, tcs_info(tcs)["frames"])
        total = stop - start  # the frames asked for, not the file's
    with progress_bar(total, "decode", quiet) as advance:
        missing: list = []
        target = run(tcs, output or True, method=method, frames=frames, window=window, device=device, threads=threads, force=force,
                     salvage=salvage, missing=missing, max_memory=max_memory, dtype=out_dtype, progress=advance,
                     warn=lambda message: click.echo(f"warning: {message}", err=True))
    _say(quiet, f"{tcs} -> {target} (self-check per group: {target.name}.emcodec.json)")
    if missing:
        click.get_current_context().exit(EXIT_PARTIAL)


def _batch(kind, inputs, output, options, n_jobs, scheduler, skip_existing, as_json, quiet, to_ext=None):
    """Run a batch (emcodec/batch.py), print a table or JSON; exit 1 when any file failed."""
    from . import batch

    if output == "-":
        raise EmcodecError("-o - takes one input; for several give a folder")
    jobs = batch.plan(inputs, kind, output, to_ext)
    say = (lambda r: None) if quiet or as_json else \
        (lambda r: click.echo(f"{r['status']}: {r['input']}" + (f": {r['error']}" if r["error"] else ""), err=True))
    results = batch.run(jobs, options, n_jobs=n_jobs, scheduler=scheduler, skip_existing=skip_existing,
                        on_result=say)
    if as_json or not quiet:
        click.echo(json.dumps(results, indent=2) if as_json else batch.table(results))
    if any(r["status"] == "failed" for r in results):
        click.get_current_context().exit(EXIT_ERROR)


@cli.command()
@click.argument("tcs", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(tcs, as_json):
    """Show the header, group count, sizes and compression ratio of a .tcs file.

    \b
    Examples:
      emcodec info movie.tcs
      emcodec info movie.tcs --json | jq .compression_ratio
    """
    from .codec import info as run

    facts = run(tcs)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    meta = facts.pop("metadata")
    coding = facts.pop("measurement")
    if coding["quantize"] == "on":
        facts["measurement"] = (f"quantised: {coding['transform']} transform, step {coding['step']:g} noise std "
                                f"(gain {coding['gain']:.4g}, offset {coding['offset']:.4g}, "
                                f"read noise {coding['read_noise']:.4g})")
    else:
        facts["measurement"] = "lossless" + (f" ({meta['quantize']})" if meta.get("quantize") else "")
    facts.pop("payload_verified")
    levels = facts.pop("grey_levels")
    cuts = facts.pop("scene_cuts_at")
    if cuts:
        facts["split_groups"] = f"{facts['split_groups']} (scene cuts before frames {', '.join(map(str, cuts))})"
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        click.echo(f"{key:<{width}}  {value}")
    from .formats.carry import describe

    for key in ("source_name", "source_format"):
        click.echo(f"{key:<{width}}  {meta.get(key)}")
    for key, text in describe(meta):
        click.echo(f"{key:<{width}}  {text}")
    click.echo(f"{'encoder':<{width}}  {meta.get('encoder')}")
    click.echo(f"{'checksums':<{width}}  header and trailer only; the payload was not verified "
               "(emcodec verify checks it)")
    if levels:
        click.echo(f"{'precision':<{width}}  the source's {facts['dtype']} values span {levels} grey levels: decoded "
                   "integers posterise (decompress --dtype float32 keeps the decoder's precision)")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file, as a list.")
def verify(files, as_json):
    """Check every checksum of .tcs files without decoding them.

    Exit status 0 when every file is intact, 1 when any is damaged or unreadable.

    \b
    Examples:
      emcodec verify movie.tcs
      emcodec verify run1/*.tcs --json
    """
    from .codec import verify as run

    results = [run(path) for path in files]
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            if r["ok"]:
                click.echo(f"{r['file']}: ok ({r['frames']} frames in {r['groups']} groups, every checksum matches)")
            else:
                click.echo(f"{r['file']}: FAILED: {r['error']}")
    if not all(r["ok"] for r in results):
        click.get_current_context().exit(EXIT_ERROR)


@cli.command()
@click.option("--out", "out_dir", default="emcodec-demo", show_default=True, help="Folder for the sample files.")
@click.option("-B", "B", type=int, default=10, show_default=True)
@click.option("--method", "methods", multiple=True, default=("movie", "tcsdl", "gap-tv"), show_default=True,
              help="Decoder(s) to compare; repeat the option for several.")
@click.option("--force", is_flag=True, help="Overwrite files from an earlier demo.")
def demo(out_dir, B, methods, force):
    """Compress and rebuild a built-in simulated in-situ EM movie, and score it.

    \b
    Example:
      emcodec demo --out /tmp/demo -B 10
    """
    from .demo import run_demo

    for line in run_demo(out_dir, B=B, methods=methods, force=force):
        click.echo(line)


@cli.command()
@click.option("-B", "B", type=int, default=10, show_default=True, help="Group size the weights are for.")
@click.option("--data", type=click.Path(file_okay=False), help="Folder of your own TIFF/MRC movies to mix in.")
@click.option("--out", default="checkpoints/run", show_default=True, help="Checkpoint folder.")
@click.option("--minutes", type=float, default=60.0, show_default=True, help="Wall-clock budget (0: none).")
@click.option("--steps", type=int, default=5000, show_default=True)
@click.option("--width", type=int, default=32, show_default=True, help="Channels of the network.")
@click.option("--init", type=click.Path(dir_okay=False, exists=True), help="Start from these weights (fine-tune).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=int, default=0, help="CPU threads (0: torch's default).")
@click.option("--export", type=click.Path(file_okay=False), help="Write tcsdl-b<B>.pt + manifest entry here.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option("-q", "--quiet", is_flag=True)
def train(B, data, out, minutes, steps, width, init, seed, device, threads, export, resume, quiet):
    """Train TCS-DL weights on simulated in-situ EM movies (and your own, with --data).

    
    Examples:
      emcodec train -B 10 --minutes 60 --out checkpoints/b10 --export weights
      emcodec train -B 10 --data my_movies/ --init weights/tcsdl-b10.pt --minutes 30 --export my_weights
      emcodec train -B 10 --out checkpoints/b10 --resume
    """
    from .encoder import check_B
    from .errors import MissingDependencyError

    check_B(B)
    try:
        from .training.train import TrainConfig, train as run
    except ImportError:
        raise MissingDependencyError("training needs PyTorch: pip install 'emcodec[decode]'") from None
    cfg = TrainConfig(B=B, width=width, out=out, seed=seed, steps=steps, minutes=minutes, init=init or "",
                      data=data or "", device=device, threads=threads, export=export or "")
    log = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    if quiet or not sys.stdout.isatty():
        run(cfg, resume=resume, log=log)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]train B={task.fields[B]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}  val PSNR {task.fields[psnr]}"), TimeElapsedColumn(),
                  console=_stderr_console()) as bar:
        task = bar.add_task("train", total=steps, B=B, loss="-", psnr="-")

        def progress(step, total, loss, psnr):
            bar.update(task, completed=step, loss=f"{loss:.5f}",
                       psnr="-" if psnr is None else f"{psnr:.2f} dB")

        run(cfg, resume=resume, log=lambda line: bar.console.print(line), progress=progress)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@contextmanager
def _quiet_libraries():
    """tifffile logs what it skips in a damaged file (via logging's last-resort stderr handler);
    emcodec reports the consequence itself, in one line. EMCODEC_DEBUG keeps the logs."""
    log = logging.getLogger("tifffile")
    level = log.level
    if not os.environ.get("EMCODEC_DEBUG"):
        log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def main(argv=None) -> int:
    """Entry point: turns every failure into one line and an exit code."""
    from .signals import EXIT_TERMINATED, Terminated, sigterm_unwinds

    try:
        with sigterm_unwinds(), warnings.catch_warnings(), _quiet_libraries():
            if not os.environ.get("EMCODEC_DEBUG"):  # library warnings would break the one-line rule
                warnings.simplefilter("ignore")
            status = cli.main(args=argv, prog_name="emcodec", standalone_mode=False)
        if isinstance(status, int) and not isinstance(status, bool):
            return status  # ctx.exit(n) from a command (verify: some files damaged)
    except Terminated:
        click.echo("error: terminated (SIGTERM); unfinished output removed", err=True)
        return EXIT_TERMINATED
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR  # not click's 2 for usage errors: 2 means a partial decode (--salvage)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except EmcodecError as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_ERROR
    except MemoryError:
        click.echo("error: out of memory", err=True)
        return EXIT_ERROR
    except OSError as exc:
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        click.echo(f"error:{name} {exc.strerror or _one_line(exc)}", err=True)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the promise is: never a traceback
        if os.environ.get("EMCODEC_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {_one_line(exc)} "
                   "(please report it; set EMCODEC_DEBUG=1 for the traceback)", err=True)
        return EXIT_INTERNAL
    return 0


from .bench.command import benchmark  # noqa: E402 - light: click only until it runs

cli.add_command(benchmark)


if __name__ == "__main__":
    sys.exit(main())
