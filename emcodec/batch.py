"""Batches: many movies compressed (or .tcs files decoded) in one command.

Inputs are files, folders (walked, so `-o DIR` mirrors their tree) and quoted globs. Each
file is one job that never raises: a failing file becomes a result with its error, and the
others go on. Jobs run here one after the other, in N local processes (`--jobs N`), or on
a Dask `distributed` cluster (`--scheduler ADDRESS`, or `local` for a LocalCluster). Each
output is atomic already (codec.py writes a temporary file and renames it).
"""

from __future__ import annotations

import glob
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from .errors import EmcodecError, InputError, MissingDependencyError

COMPRESS, DECOMPRESS = "compress", "decompress"


@dataclass(frozen=True)
class Job:
    kind: str  # COMPRESS or DECOMPRESS
    source: str
    target: str


def is_batch(inputs: list[str], series: bool = False) -> bool:
    """Several inputs, or a folder or glob that is not one movie (--series, a .zarr store)."""
    from .formats import is_store

    if len(inputs) != 1 or series:
        return len(inputs) > 1
    path = inputs[0]
    return (os.path.isdir(path) and not is_store(path)) or (_magic(path) and not os.path.exists(path))


def _magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _glob_root(pattern: str) -> Path:
    """The folders of a glob before its first wildcard: the tree below is mirrored."""
    fixed = []
    for part in Path(pattern).parts[:-1]:
        if _magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _wanted(kind: str):
    from .formats import _by_extension

    movie_exts = set(_by_extension())
    return (lambda name: os.path.splitext(name)[1].lower() in movie_exts) if kind == COMPRESS else \
        (lambda name: name.lower().endswith(".tcs"))


def expand(inputs: list[str], kind: str) -> list[tuple[str, Path]]:
    """(file, path relative to where its tree is mirrored) for every input file, in order."""
    from .formats import is_store
    from .formats.series import natural_key

    wanted = _wanted(kind)
    found: list[tuple[str, Path]] = []
    for item in inputs:
        if _magic(item) and not os.path.exists(item):
            root = _glob_root(item)
            matches = sorted(glob.glob(item, recursive=True), key=natural_key)
            files = [m for m in matches if (os.path.isfile(m) or is_store(m)) and wanted(m)]
            if not files:
                raise InputError(f"no {'movies' if kind == COMPRESS else '.tcs files'} match '{item}'")
            found += [(m, Path(os.path.relpath(m, root))) for m in files]
        elif os.path.isdir(item) and not is_store(item):
            files = []
            for folder, dirs, names in os.walk(item):
                stores = [d for d in dirs if is_store(os.path.join(folder, d)) and wanted(d)]
                dirs[:] = sorted((d for d in dirs if d not in stores and not d.startswith(".")), key=natural_key)
                files += [os.path.join(folder, n) for n in names + stores if wanted(n) and not n.startswith(".")]
            if not files:
                raise InputError(f"folder '{item}' holds no {'movies' if kind == COMPRESS else '.tcs files'}")
            found += [(f, Path(os.path.relpath(f, item))) for f in sorted(files, key=natural_key)]
        elif os.path.exists(item):
            found.append((item, Path(os.path.basename(os.path.normpath(item)))))
        else:
            raise InputError(f"'{item}': no such file or folder")
    return found


def plan(inputs: list[str], kind: str, out_dir: str | None, ext: str | None = None) -> list[Job]:
    """One job per input file; outputs beside the inputs or mirrored under `out_dir`.

    Compress writes `<name>.tcs`; decompress `<name>.decoded<ext>` (ext: the source's
    extension, as a single decompress does, unless given: .tif, .mrc, .zarr, .h5).
    """
    jobs, seen = [], {}
    for source, rel in expand(inputs, kind):
        stem = rel.name[: -len(rel.suffix)] if rel.suffix else rel.name
        if kind == COMPRESS:
            name = stem + ".tcs"
        else:
            name = stem + ".decoded" + (ext or _source_ext(source))
        target = (Path(out_dir) / rel.parent / name) if out_dir else Path(source).parent / name
        if str(target) in seen:
            raise InputError(f"'{seen[str(target)]}' and '{source}' would both be written to '{target}'")
        seen[str(target)] = source
        jobs.append(Job(kind, source, str(target)))
    return jobs


def _source_ext(tcs: str) -> str:
    """The extension a single decompress would write for this file (its source's)."""
    from .codec import default_output, open_tcs

    try:
        reader = open_tcs(tcs)
    except EmcodecError:
        return ".tif"  # the job itself reports the damage
    try:
        return default_output(tcs, reader.header).suffix
    finally:
        reader._f.close()


def run_one(job: Job, options: dict, skip_existing: bool = False) -> dict:
    """Do one job; every failure is returned as the result's error, never raised."""
    result = {"input": job.source, "output": job.target, "status": "failed", "error": None, "seconds": 0.0}
    if skip_existing and os.path.lexists(job.target):
        result["status"] = "skipped"
        return result
    warnings: list[str] = []
    t0 = time.perf_counter()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(job.target)), exist_ok=True)
        if job.kind == COMPRESS:
            from .api import compress

            done = compress(job.source, job.target, warn=warnings.append, **options)
            result.update(frames=done.frames, bytes=done.file_bytes, ratio=round(done.ratio, 3))
        else:
            from .api import decompress

            decompress(job.source, job.target, warn=warnings.append, **options)
        result["status"] = "ok"
    except (EmcodecError, OSError, ValueError, MemoryError) as exc:
        result["error"] = " ".join(str(exc).split()) or type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        result["error"] = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
    result["seconds"] = round(time.perf_counter() - t0, 3)
    if warnings:
        result["warnings"] = warnings
    return result


def run(jobs: list[Job], options: dict, *, n_jobs: int = 1, scheduler: str | None = None,
        skip_existing: bool = False, on_result=None) -> list[dict]:
    """Results of every job, in the jobs' order; `on_result` is called as each one finishes."""
    on_result = on_result or (lambda r: None)
    results: dict[int, dict] = {}
    if scheduler:
        for i, r in _on_dask(jobs, options, scheduler, n_jobs, skip_existing):
            results[i] = r
            on_result(r)
    elif n_jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(n_jobs, len(jobs)), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_one, job, options, skip_existing): i for i, job in enumerate(jobs)}
            for f in as_completed(futures):
                results[futures[f]] = r = f.result()
                on_result(r)
    else:
        for i, job in enumerate(jobs):
            results[i] = r = run_one(job, options, skip_existing)
            on_result(r)
    return [results[i] for i in range(len(jobs))]


def _on_dask(jobs, options, scheduler: str, n_jobs: int, skip_existing: bool):
    """(index, result) from a distributed cluster: `local` starts a LocalCluster of n_jobs
    single-threaded workers, anything else is a scheduler's address."""
    try:
        from distributed import Client, LocalCluster, as_completed as done_order
    except ImportError:
        raise MissingDependencyError("--scheduler needs dask.distributed: pip install 'emcodec[dask]'") from None
    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(n_workers=max(1, n_jobs), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise EmcodecError(f"cannot reach the Dask scheduler at {scheduler}: {' '.join(str(exc).split())}") \
            from None
    try:
        futures = {client.submit(run_one, job, options, skip_existing, pure=False): i for i, job in enumerate(jobs)}
        for f in done_order(futures):
            try:
                r = f.result()
            except Exception as exc:  # noqa: BLE001 - a worker died: that file failed, not the batch
                job = jobs[futures[f]]
                r = {"input": job.source, "output": job.target, "status": "failed",
                     "error": f"worker failed: {type(exc).__name__}: {' '.join(str(exc).split())}", "seconds": 0.0}
            yield futures[f], r
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def table(results: list[dict]) -> str:
    """A plain summary table: status, input, output or error; then the counts."""
    rows = [(r["status"], r["input"], r["output"] if r["status"] != "failed" else f"error: {r['error']}",
             f"{r['seconds']:.1f}s" if r["status"] != "skipped" else "") for r in results]
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{s:<{width[0]}}  {i:<{width[1]}}  {o}  {t}".rstrip() for s, i, o, t in rows]
    counts = {k: sum(r["status"] == k for r in results) for k in ("ok", "skipped", "failed")}
    lines.append(f"{len(results)} files: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed")
    return "\n".join(lines)
