"""TCS-DL network and training loop on tiny configurations (whole file well under 30 s)."""

import dataclasses
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from emcodec.model import TCSDL, adapt_state_dict  # noqa: E402
from emcodec.training import TrainConfig, train  # noqa: E402
from emcodec.training.train import draw_masks, lr_at, normalise, simulated_batch  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: tiny convolutions gain nothing from more, and a shared CI box stays usable."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _inputs(n=2, B=4, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, B, h, w, generator=g)
    masks = (torch.rand(n, B, h, w, generator=g) < 0.5).float()
    return (masks * x).sum(1), masks, x


@pytest.mark.parametrize("shape", [(16, 16), (32, 24), (17, 23)])
def test_output_shapes(shape):
    torch.manual_seed(0)
    model = TCSDL(4, 6)
    y, masks, _ = _inputs(h=shape[0], w=shape[1])
    fwd, bwd = model(y, masks)
    assert fwd.shape == bwd.shape == masks.shape
    assert torch.isfinite(bwd).all()


def test_wrong_B_rejected():
    model = TCSDL(4, 4)
    y, masks, _ = _inputs(B=5)
    with pytest.raises(ValueError):
        model(y, masks)


def test_attention_memory_is_bounded():
    torch.manual_seed(0)
    model = TCSDL(4, 4).eval()
    y, masks, _ = _inputs(n=1, h=256, w=256)
    with torch.inference_mode():
        model(y, masks)
    shape = model.first.att.last_matrix_shape
    # 256x256 -> 128x128 half-res -> 32x32 pooled cells -> 16 windows of 8x8 cells:
    # 16 matrices of 64x64 instead of one (128*128)^2 matrix over all positions
    assert shape == (16, 64, 64)


def test_determinism():
    y, masks, _ = _inputs()
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = TCSDL(4, 4).eval()
        with torch.inference_mode():
            outs.append(model(y, masks)[1])
    assert torch.equal(outs[0], outs[1])


def test_training_steps_reduce_loss_on_fixed_batch():
    torch.manual_seed(0)
    model = TCSDL(4, 8)
    y, masks, x = _inputs(n=2, h=16, w=16)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    def loss_fn():
        f, b = model(y, masks)
        return ((b - x) ** 2).mean() + 0.5 * ((f - x) ** 2).mean()

    first = loss_fn().item()
    for _ in range(20):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.7 * first


def test_adapt_state_dict_between_B():
    small = TCSDL(4, 4)
    big = TCSDL(7, 4)
    big.load_state_dict(adapt_state_dict(small.state_dict(), 7))
    y, masks, _ = _inputs(B=7)
    fwd, bwd = big(y, masks)
    assert bwd.shape == masks.shape


def test_normalise_matches_decoder_convention():
    noisy, clean = simulated_batch(TrainConfig(B=4, batch=2, patch=16), step=0)
    masks = draw_masks(TrainConfig(), 0, noisy.shape)
    y, target = normalise(noisy, clean, masks)
    assert y.shape == (2, 16, 16) and target.shape == (2, 4, 16, 16)
    # y' is the measurement of the normalised noisy frames: Y = (hi-lo) y' + lo S, and the
    # same affine map takes the clean frames to the target
    Y, S = (masks * noisy).sum(1), masks.sum(1)
    for i in range(2):
        a = (clean[i] - clean[i].mean()).flatten()
        scale = float((a * (target[i] - target[i].mean()).flatten()).sum() / (a * a).sum())  # 1/(hi-lo)
        lo = float(clean[i].flatten()[0] - target[i].flatten()[0] / scale)
        assert torch.allclose(y[i] / scale + lo * S[i], Y[i], rtol=1e-3, atol=1e-2 * float(Y[i].abs().max()))
    assert torch.isfinite(y).all() and torch.isfinite(target).all()


def test_lr_schedule():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, lr_min=1e-5)
    assert lr_at(cfg, 0) < lr_at(cfg, 9) <= 1e-3
    assert abs(lr_at(cfg, 100) - 1e-5) < 1e-9


def _tiny(tmp_path, **kw):
    base = dict(B=4, width=4, patch=16, batch=2, steps=4, warmup=2, val_clips=2, val_size=16,
                out=str(tmp_path / "run"), seed=1, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_train_export_and_manifest(tmp_path):
    cfg = _tiny(tmp_path, export=str(tmp_path / "weights"))
    json.dumps(dataclasses.asdict(cfg))  # the config is JSON-serialisable
    summary = train(cfg, log=lambda s: None)
    assert summary["steps_done"] == 4
    manifest = json.loads((tmp_path / "weights" / "manifest.json").read_text())
    entry = manifest["weights"]["4"]
    from emcodec.training.train import sha256

    assert entry["sha256"] == sha256(tmp_path / "weights" / "tcsdl-b4.pt")
    state = torch.load(tmp_path / "weights" / "tcsdl-b4.pt", weights_only=True)
    TCSDL(4, 4).load_state_dict(state)
    assert entry["training"]["B"] == 4 and "final_val_psnr_db" in entry


def test_resume_reproduces_uninterrupted_run(tmp_path):
    full = _tiny(tmp_path, steps=6, out=str(tmp_path / "full"))
    train(full, log=lambda s: None)
    a = torch.load(tmp_path / "full" / "final.pt", weights_only=True)
    # interrupted after 3 steps (steps=3 writes a checkpoint at step 3), then resumed to 6
    part = _tiny(tmp_path, steps=3, out=str(tmp_path / "part"))
    train(part, log=lambda s: None)
    ck = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 3
    train(dataclasses.replace(part, steps=6), resume=True, log=lambda s: None)
    b = torch.load(tmp_path / "part" / "final.pt", weights_only=True)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_load_model_checks_sha256(tmp_path):
    from emcodec.errors import WeightsError
    from emcodec.model import load_model

    train(_tiny(tmp_path, steps=1, export=str(tmp_path / "w")), log=lambda s: None)
    model, entry = load_model(4, tmp_path / "w")
    assert entry["B"] == 4 and not model.training
    with pytest.raises(WeightsError):
        load_model(8, tmp_path / "w")
    (tmp_path / "w" / "tcsdl-b4.pt").write_bytes(b"not weights")
    with pytest.raises(WeightsError):
        load_model(4, tmp_path / "w")


def test_reproduce_replays_a_resumed_run_sitting_by_sitting(tmp_path):
    from emcodec.model import manifest
    from emcodec.training.reproduce import replay, replayed_init

    w = tmp_path / "w"
    first = _tiny(tmp_path, steps=3, out=str(tmp_path / "ck" / "b4"))
    s1 = train(first, log=lambda s: None)
    # the second sitting changes the schedule: a replay that ignored it would differ
    train(dataclasses.replace(first, steps=6, lr=3e-3, export=str(w)), resume=True, log=lambda s: None)
    entry = manifest(w)[4]
    assert [(s["from_step"], s["to_step"], s["lr"]) for s in entry["sittings"]] == [(0, 3, 1e-3), (3, 6, 3e-3)]
    assert s1["sittings"][0]["init"] == "" and entry["steps_done"] == 6

    replay(4, entry, str(tmp_path / "re"), export=str(tmp_path / "w2"), log=lambda s: None)
    shipped = torch.load(w / "tcsdl-b4.pt", weights_only=True)
    again = torch.load(tmp_path / "w2" / "tcsdl-b4.pt", weights_only=True)
    after_first = torch.load(tmp_path / "re" / "b4-s1" / "final.pt", weights_only=True)
    for k in shipped:
        assert torch.allclose(shipped[k], again[k], atol=1e-6), k
    assert any(not torch.allclose(shipped[k], after_first[k]) for k in shipped)
    assert replayed_init("checkpoints/b10-s1/final.pt", "out") == str(Path("out/b10-s1/final.pt"))
    assert replayed_init("/data/mine.pt", "out") == "/data/mine.pt"


def test_resume_with_a_longer_schedule_ramps_the_learning_rate(tmp_path):
    from emcodec.training.train import rewarmed_lr

    # geometric from the rate the run stopped at to the schedule's, then the schedule
    assert rewarmed_lr(5e-4, 2e-5, 0, 4) == pytest.approx(2e-5 * 25 ** 0.25)
    assert rewarmed_lr(5e-4, 2e-5, 3, 4) == pytest.approx(5e-4)
    assert rewarmed_lr(5e-4, 2e-5, 9, 4) == 5e-4
    assert rewarmed_lr(1e-4, 2e-4, 0, 4) == 1e-4  # never above the schedule
    # sitting 1 ends its cosine near lr_min; sitting 2 stretches the schedule to 80 steps, whose
    # rate at step 10 is 20x higher: one step later the optimizer is still near where it stopped
    first = _tiny(tmp_path, steps=10, lr=1e-3, lr_min=2e-5, warmup=1)
    train(first, log=lambda s: None)
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    stopped = ck["optimizer"]["param_groups"][0]["lr"]
    assert stopped < 1e-4
    summary = train(dataclasses.replace(first, steps=80, rewarm=20), resume=True, stop_at=11, log=lambda s: None)
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    used = ck["optimizer"]["param_groups"][0]["lr"]
    scheduled = lr_at(dataclasses.replace(first, steps=80), 10)
    assert scheduled > 10 * stopped
    assert used == pytest.approx(rewarmed_lr(scheduled, stopped, 0, 20)) and used < scheduled / 5
    assert summary["sittings"][-1]["rewarm"] == 20 and summary["steps_done"] == 11
