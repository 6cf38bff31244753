"""`emcodec demo`: the whole path on a built-in simulated movie whose clean frames are known."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

from .codec import compress, decompress, info
from .metrics import psnr


def run_demo(out_dir, *, B: int = 10, methods=("movie", "tcsdl", "gap-tv"), force: bool = False) -> Iterator[str]:
    """Write the sample movie, compress it, decode it with each method and score the results."""
    from .atomic import check_target
    from .simulate import sample_movie
    from .stacks import create_stack, open_stack

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    movie, tcs = out / "sample.tif", out / "sample.tcs"
    decoded = {m: out / f"sample.decoded.{m}.tif" for m in methods}
    picture = out / "sample.png"
    for path in (movie, tcs, *decoded.values(), picture):
        check_target(path, force=force)
    clean, noisy = sample_movie()
    with create_stack(movie, height=noisy.shape[1], width=noisy.shape[2], dtype=noisy.dtype,
                      n_frames=len(noisy), pixel_size=(1.0, 1.0), force=force) as writer:
        writer.write(noisy)
    yield (f"sample movie  {movie}: {len(noisy)} frames of {noisy.shape[1]}x{noisy.shape[2]} {noisy.dtype} "
           "(simulated in-situ TEM, about 30 counts/pixel/frame)")
    result = compress(movie, tcs, B=B, force=force)
    facts = info(tcs)
    yield (f"compressed    {tcs}: {result.file_bytes} bytes, ratio {facts['compression_ratio']:.1f}, "
           f"{facts['bits_per_pixel']:.3f} bits/pixel/frame, B={B}")
    yield f"raw noisy frames against the noise-free ones: PSNR {psnr(clean, noisy):.2f} dB"
    frames = {}
    for method, path in decoded.items():
        notes: list[str] = []
        t = time.perf_counter()
        decompress(tcs, path, method=method, force=force, warn=notes.append)
        seconds = time.perf_counter() - t
        with open_stack(path) as reader:
            back = reader.read(0, reader.info.n_frames)
        frames[method] = back
        yield (f"decoded       {path} with {method} in {seconds:.1f} s: PSNR {psnr(clean, back):.2f} dB "
               "against the noise-free frames")
        for note in notes:
            yield f"  note: {note}"
    yield _picture(picture, clean, noisy, frames, B, force)


def _picture(path, clean, noisy, frames: dict, B: int, force: bool) -> str:
    """The demo's PNG (frames, power spectra, per-frame PSNR), or a one-line note without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "picture       not drawn: matplotlib is not installed (pip install 'emcodec[bench]')"
    from .bench.figure import write_demo_plot

    write_demo_plot(path, clean, noisy, frames, B, force=force)
    return f"picture       {path}: noisy and noise-free frame, each decode, their power spectra, PSNR per frame"
