"""The napari reader plugin (issue 18, item 5), headless: the manifest, the layers it returns
(pixel size as scale, an instant preview), and the LRU cache of decoded groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

npe2 = pytest.importorskip("npe2")
pytest.importorskip("dask.array")

import emcodec  # noqa: E402
from emcodec import lazy, napari_reader  # noqa: E402
from emcodec.reader import TcsMovie  # noqa: E402

MANIFEST = Path(napari_reader.__file__).with_name("napari.yaml")


@pytest.fixture(scope="module")
def tcs(tmp_path_factory):
    d = tmp_path_factory.mktemp("napari")
    frames = np.random.default_rng(2).poisson(40, (35, 32, 32)).astype(np.uint16)
    emcodec.compress(frames, d / "m.tcs", B=10, pixel_size=(5.0, 5.0))  # 5 Å = 0.5 nm
    yield d / "m.tcs", frames
    lazy.release()


def test_the_manifest_is_valid_and_names_the_reader():
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "emcodec"
    reader = manifest.contributions.readers[0]
    assert reader.filename_patterns == ["*.tcs"]
    command = next(c for c in manifest.contributions.commands if c.id == reader.command)
    module, func = command.python_name.split(":")
    assert getattr(__import__(module, fromlist=[func]), func) is napari_reader.get_reader


def test_only_tcs_files_are_claimed(tcs, tmp_path):
    path, _ = tcs
    assert napari_reader.get_reader(str(path)) is napari_reader.read_tcs
    assert napari_reader.get_reader([str(path)]) is napari_reader.read_tcs
    (tmp_path / "x.tif").write_bytes(b"")
    assert napari_reader.get_reader(str(tmp_path / "x.tif")) is None


def test_layers_are_lazy_with_the_pixel_size_as_scale_and_an_instant_preview(tcs, monkeypatch):
    path, frames = tcs
    decoded = []
    monkeypatch.setattr(TcsMovie, "_decode", lambda self, a, b: decoded.append((a, b)))
    (full, full_kw, kind), (preview, preview_kw, _) = napari_reader.read_tcs(str(path))
    assert kind == "image" and full.shape == (35, 32, 32) and full.dtype == np.uint16
    assert full_kw["scale"] == (1.0, 0.5, 0.5) and full_kw["metadata"]["pixel_unit"] == "nm"
    assert preview.shape == (4, 32, 32) and preview_kw["scale"] == (10.0, 0.5, 0.5)
    # the preview is each group's Y/S, close to the mean of its frames, with no decoder at all
    first = preview[0].compute(scheduler="synchronous")
    assert decoded == []
    assert abs(float(first.mean()) - float(frames[:10].mean())) < 0.05 * float(frames[:10].mean())


pytest.importorskip("torch")


def test_scrolling_through_a_group_decodes_it_once(tcs, monkeypatch):
    path, _ = tcs
    lazy.release()
    calls = []
    original = TcsMovie._decode
    monkeypatch.setattr(TcsMovie, "_decode", lambda self, a, b: calls.append((a, b)) or original(self, a, b))
    monkeypatch.setattr(napari_reader, "CACHE_GROUPS", 2)
    full = napari_reader.read_tcs(str(path))[0][0]
    frames = [full[t].compute() for t in (0, 1, 5, 9)]  # napari computes one frame at a time
    assert calls == [(0, 10)]
    full[12].compute(), full[25].compute()  # groups 1 and 2: group 0 leaves the cache of 2
    assert calls == [(0, 10), (10, 20), (20, 30)]
    full[15].compute()  # still cached
    assert len(calls) == 3
    again = full[1].compute()
    assert calls[-1] == (0, 10) and np.array_equal(again, frames[1])
    with emcodec.open(path) as m:
        assert np.array_equal(frames[2], m[5])
