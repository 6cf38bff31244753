"""The learned prior of the movie decoder (model/prior.py) and its training loop, with tiny
networks: shapes, the Anscombe round trip, resumable checkpoints, and that training on fit
pairs beats leaving the fit alone."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emcodec.model.prior import RefineNet, anscombe, inverse_anscombe, refine_image  # noqa: E402
from emcodec.training import prior as training  # noqa: E402


def test_anscombe_round_trip():
    x = torch.linspace(0, 500, 101)
    assert torch.allclose(inverse_anscombe(anscombe(x)), x, atol=1e-3)


def test_refine_keeps_shape_and_is_finite():
    model = RefineNet(width=8, depth=4)
    z = np.random.default_rng(0).poisson(20, (40, 52)).astype(np.float32)
    out = refine_image(model, z, z)
    assert out.shape == z.shape and np.isfinite(out).all()


def _pairs(path, n=12, size=64, seed=0):
    """Fit-like pairs: a smooth scene, z = scene + noise, z0 = a blurred scene."""
    import cv2

    rng = np.random.default_rng(seed)
    scenes = [cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 3) * 400 + 20 for _ in range(n)]
    target = np.stack(scenes)
    z = target + rng.normal(0, 6, target.shape).astype(np.float32)
    z0 = np.stack([cv2.GaussianBlur(s, (0, 0), 2) for s in scenes])
    meta = np.array([(10**6 + i, 10, 10.0, 0) for i in range(n)])
    np.savez(path, z=z, z0=z0, target=target, meta=meta)


def test_training_learns_and_resumes(tmp_path, monkeypatch):
    _pairs(tmp_path / "pairs.npz")
    monkeypatch.setattr(training, "RefineNet", lambda: RefineNet(width=8, depth=4))
    torch.manual_seed(0)
    first = training.train([tmp_path / "pairs.npz"], tmp_path / "ckpt.pt", minutes=0.15, resume=False, lr=3e-3,
                           log=lambda s: None)
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["step"] > 0
    again = training.train([tmp_path / "pairs.npz"], tmp_path / "ckpt.pt", minutes=0.05, resume=True, lr=3e-3,
                           log=lambda s: None)
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["step"] > state["step"]
    assert first["learned"] > first["fit"] + 1.0  # it removes noise the fit left
    assert again["learned"] > first["fit"] + 1.0


def test_prior_manifest_is_checked(tmp_path):
    from emcodec.errors import WeightsError
    from emcodec.model.prior import load_prior

    assert load_prior(tmp_path) == (None, None)  # no prior: the decoder keeps its TV step
    _pairs(tmp_path / "pairs.npz")
    model = RefineNet()
    torch.save({"model": model.state_dict(), "optimizer": {}, "step": 1, "seconds": 1.0,
                "architecture": model.architecture}, tmp_path / "ckpt.pt")
    training.export(tmp_path / "ckpt.pt", [tmp_path / "pairs.npz"], tmp_path / "w", log=lambda s: None)
    loaded, entry = load_prior(tmp_path / "w")
    assert entry["architecture"]["name"] == "refine-v1" and not loaded.training
    (tmp_path / "w" / "refine-v1.pt").write_bytes(b"\0" * 10)
    with pytest.raises(WeightsError, match="sha256"):
        load_prior(tmp_path / "w")


def test_shipped_prior_beats_the_tv_step_on_a_held_out_movie(tmp_path):
    """The shipped weights against the TV step they replace, on a movie of a seed the
    training never saw (training seeds >= 10**6), through the whole decoder."""
    import tifffile

    from emcodec import codec, simulate
    from emcodec.decoders.movie import MovieDecoder, decode_movie
    from emcodec.metrics import psnr
    from emcodec.model.prior import load_prior

    prior, entry = load_prior()
    assert prior is not None, "weights/prior.json is missing"
    clean, noisy, _ = simulate.simulate_motion_movie(40, 96, 96, seed=12, dose=10, motion="deformation", kind="atomic")
    tifffile.imwrite(tmp_path / "m.tif", noisy)
    codec.compress(tmp_path / "m.tif", tmp_path / "m.tcs", B=10)
    first = codec.choose_decoder("tcsdl", 10, lambda s: None)
    out = {}
    for name, p in (("tv", None), ("learned", prior)):
        reader = codec.open_tcs(tmp_path / "m.tcs")
        out[name] = np.concatenate([x for _, _, x in decode_movie(reader, MovieDecoder(first, prior=p), 0, 40)])
        reader._f.close()
    assert psnr(clean, out["learned"]) > psnr(clean, out["tv"]) + 0.5


def test_the_default_decoder_keeps_the_tv_step_and_movie_learned_uses_the_prior(tmp_path):
    """`movie` (the default) keeps its TV step: the learned prior, trained on the simulator,
    lost 1.4-4.5 dB on movies made from the real stills. `movie-learned` uses it and says so."""
    import json

    import tifffile

    from emcodec import codec

    frames = np.random.default_rng(5).poisson(30, (20, 48, 48)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", frames)
    codec.compress(tmp_path / "m.tif", tmp_path / "m.tcs", B=10)
    codec.decompress(tmp_path / "m.tcs", tmp_path / "d.tif", device="cpu", threads=1)
    report = json.loads((tmp_path / "d.tif.emcodec.json").read_text())
    assert report["method"] == "movie" and report["prior"] == "tv"
    assert "prior=TV" in codec.choose_decoder("movie", 10, print).labels[0]
    codec.decompress(tmp_path / "m.tcs", tmp_path / "l.tif", method="movie-learned", device="cpu", threads=1)
    report = json.loads((tmp_path / "l.tif.emcodec.json").read_text())
    shipped = json.loads((training.Path(__file__).resolve().parents[1] / "weights" / "prior.json").read_text())
    assert report["method"] == "movie-learned" and report["prior"] == shipped["sha256"]
    assert "prior=learned (refine-v1)" in codec.choose_decoder("movie-learned", 10, print).labels[0]


STILLS = training.Path(__file__).resolve().parents[2] / "shared" / "data" / "real-stills"


@pytest.mark.skipif(not (STILLS / "12965.png").is_file(), reason="the real stills (../shared) are not here")
def test_on_a_real_still_the_tv_step_beats_the_learned_prior(tmp_path):
    """Why `movie` keeps the TV step: on a movie made from a real lattice image (never used in
    training) the simulator-trained prior loses to it."""
    import tifffile

    from emcodec import codec
    from emcodec.bench.stills import movie_from_still
    from emcodec.metrics import psnr

    clean, noisy = movie_from_still(STILLS / "12965.png", 20, 20.0, 1, size=128)
    tifffile.imwrite(tmp_path / "m.tif", noisy)
    codec.compress(tmp_path / "m.tif", tmp_path / "m.tcs", B=10)
    got = {}
    for method in ("movie", "movie-learned"):
        codec.decompress(tmp_path / "m.tcs", tmp_path / f"{method}.tif", method=method, device="cpu", threads=1,
                         dtype="float32")
        got[method] = psnr(clean, tifffile.imread(tmp_path / f"{method}.tif"))
    assert got["movie"] > got["movie-learned"] + 0.5, got
