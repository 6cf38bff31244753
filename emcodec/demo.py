"""`emcodec demo`: the whole path on a built-in simulated movie whose clean frames are known."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator


from .codec import compress, decompress, info
from .metrics import psnr


def run_demo(out_dir, *, B: int = 10, method: str = "gap-tv", force: bool = False) -> Iterator[str]:
    """Write the sample movie, compress it, decode it and report what came back."""

    from .atomic import check_target
    from .simulate import sample_movie
    from .stacks import create_stack, open_stack

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean, noisy = sample_movie()
    movie, tcs, decoded = out / "sample.tif", out / "sample.tcs", out / "sample.decoded.tif"
    for path in (movie, tcs, decoded):
        check_target(path, force=force)
    with create_stack(movie, height=noisy.shape[1], width=noisy.shape[2], dtype=noisy.dtype,
                      n_frames=len(noisy), pixel_size=(1.0, 1.0), force=force) as writer:
        writer.write(noisy)
    yield f"sample movie: {movie} ({len(noisy)} frames of {noisy.shape[1]}x{noisy.shape[2]} {noisy.dtype}, simulated)"
    result = compress(movie, tcs, B=B, force=force)
    facts = info(tcs)
    yield (f"compressed:   {tcs} ({result.file_bytes} bytes, ratio {facts['compression_ratio']:.2f}, "
           f"{facts['bits_per_pixel']:.3f} bits/pixel, B={B})")
    decompress(tcs, decoded, method=method, force=force)
    with open_stack(decoded) as reader:
        back = reader.read(0, reader.info.n_frames)
    yield f"decoded:      {decoded} with {method} ({len(back)} frames, {back.dtype})"
    yield (f"PSNR against the noise-free frames: decoded {psnr(clean, back):.2f} dB, "
           f"raw noisy frames {psnr(clean, noisy):.2f} dB")

