"""DM3/DM4, TIA SER and Velox EMD through RosettaSciIO: real vendor files (skipped when
../shared/data/vendor is absent) and a Velox movie built with h5py in the layout RosettaSciIO
reads; carried pixel size, unit, frame time and metadata survive compress and decompress."""

import json
from pathlib import Path

import numpy as np
import pytest

from emcodec.cli import main
from emcodec.codec import compress, info as tcs_info
from emcodec.container import TcsReader
from emcodec.errors import InputError, MissingDependencyError
from emcodec.formats import ReadOptions, open_stack

pytest.importorskip("rsciio")
h5py = pytest.importorskip("h5py")

VENDOR = Path(__file__).resolve().parents[2] / "shared" / "data" / "vendor"
needs_vendor = pytest.mark.skipif(not VENDOR.is_dir(), reason="../shared/data/vendor is absent")


# --------------------------------------------------------------------------- real files


@needs_vendor
@pytest.mark.parametrize("name,dtype", [("test-1.dm3", "int16"), ("test-2.dm4", "float32"), ("test-11.dm4", "uint32")])
def test_dm_stacks_read_as_written_by_digitalmicrograph(name, dtype):
    with open_stack(VENDOR / name) as r:
        assert (r.info.n_frames, r.info.height, r.info.width) == (2, 2, 2)
        assert r.info.dtype == np.dtype(dtype) and r.info.source_format == "dm"
        np.testing.assert_array_equal(r.read(0, 2), np.arange(1, 9).reshape(2, 2, 2))
        assert r.info.metadata and "ImageList" in r.info.metadata


@needs_vendor
def test_ser_series_calibrated_through_its_emi(tmp_path, capsys):
    """TIA's diffraction series: read through the .emi beside it, its calibration is 1 / nm,
    not a pixel size; read alone, RosettaSciIO takes the same number for metres (4.2e7 m per
    pixel), which is not carried either. Both say so in `emcodec info`."""
    ser = "128x128x5-diffraction_preview_1.ser"
    with open_stack(VENDOR / ser) as r:
        assert (r.info.n_frames, r.info.height, r.info.width, r.info.dtype) == (5, 128, 128, np.int32)
        assert r.info.pixel_size is None and r.info.pixel_unit is None
        assert r.info.extra["calibration"] == "the file states 0.0424641 1 / nm per pixel, not a length"
        assert "ObjectInfo" in r.info.metadata  # the .emi's acquisition settings travel too
        frames = r.read(0, 5)
    assert frames.std() > 0 and not np.array_equal(frames[0], frames[4])
    (tmp_path / ser).write_bytes((VENDOR / ser).read_bytes())  # the .ser without its .emi
    with open_stack(tmp_path / ser) as r:
        assert r.info.pixel_size is None and "ObjectInfo" not in r.info.metadata
        assert r.info.extra["calibration"].startswith("the file states 4.24641e+16 nm per pixel, over 1 mm")
        np.testing.assert_array_equal(r.read(0, 5), frames)
    assert main(["compress", str(VENDOR / ser), "-o", str(tmp_path / "d.tcs"), "-B", "2", "-q"]) == 0
    assert main(["info", str(tmp_path / "d.tcs")]) == 0
    assert "not stated (the file states 0.0424641 1 / nm per pixel, not a length)" in capsys.readouterr().out


@needs_vendor
def test_dm4_measurement_is_that_of_its_frames(tmp_path):
    """The .tcs from a DM4 equals the .tcs of the same frames given as TIFF."""
    import tifffile

    with open_stack(VENDOR / "test-11.dm4") as r:
        frames = r.read(0, 2)
    tifffile.imwrite(tmp_path / "same.tif", frames, photometric="minisblack")
    for src, out in ((VENDOR / "test-11.dm4", "a.tcs"), (tmp_path / "same.tif", "b.tcs")):
        compress(src, tmp_path / out, B=2, quantize="off")
    ya, yb = (TcsReader(open(tmp_path / o, "rb")).read_group(0).parts[0].measurement for o in ("a.tcs", "b.tcs"))
    np.testing.assert_array_equal(ya, yb)
    assert tcs_info(tmp_path / "a.tcs")["metadata"]["source_format"] == "dm"


@needs_vendor
@pytest.mark.parametrize("name,dtype", [("test-11.dm4", np.uint32), ("test-2.dm4", np.float32)])
def test_dm4_stack_enlarged_from_a_real_file_reads_every_frame(tmp_path, name, dtype):
    """tests/dmfile.py (the large-DM4 benchmark's builder): a real DM4 with its data array and
    size fields replaced reads back, through RosettaSciIO and emcodec, as the frames written,
    and its metadata tree is the real file's except the stack's Data and Dimensions."""
    from rsciio.digitalmicrograph import file_reader

    from dmfile import enlarge_dm4

    frames = np.random.default_rng(8).integers(0, 5000, (7, 12, 16)).astype(dtype)
    path = tmp_path / "big.dm4"
    assert enlarge_dm4(VENDOR / name, path, iter(frames), 7, 12, 16) == np.dtype(dtype)
    with open_stack(path) as r:
        assert (r.info.n_frames, r.info.height, r.info.width, r.info.dtype) == (7, 12, 16, np.dtype(dtype))
        np.testing.assert_array_equal(r.read(0, 7), frames)
        np.testing.assert_array_equal(np.concatenate(list(r.iter_chunks(3))), frames)

    def tree(p):
        (stack,) = [s for s in file_reader(str(p)) if np.ndim(s["data"]) == 3]
        md = stack["original_metadata"]
        image = md["ImageList"]["TagGroup0"]["ImageData"]  # the stack (the thumbnail is left out)
        return stack["data"], md, image.pop("Data", None), image.pop("Dimensions")

    data, md, array, dims = tree(path)
    np.testing.assert_array_equal(data, frames)
    assert dims == {"Data0": 16, "Data1": 12, "Data2": 7} and array["size"] == frames.size
    _, real_md, real_array, real_dims = tree(VENDOR / name)
    assert real_dims == {"Data0": 2, "Data1": 2, "Data2": 2} and md == real_md
    assert array["offset"] == real_array["offset"]  # the same tags before the data, byte for byte
    assert main(["compress", str(path), "-o", str(tmp_path / "big.tcs"), "-B", "3", "-q"]) == 0
    assert tcs_info(tmp_path / "big.tcs")["frames"] == 7


@needs_vendor
def test_velox_file_without_a_movie_is_one_clear_line(tmp_path, capsys):
    rc = main(["compress", str(VENDOR / "fei_example_dpc_titles.emd"), "-o", str(tmp_path / "x.tcs")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert "holds no movie (a single image (2x2)" in err and not (tmp_path / "x.tcs").exists()


def test_missing_rosettasciio_names_the_extra(tmp_path, monkeypatch):
    import importlib

    real = importlib.import_module

    def refuse(name, *a, **k):
        if name.startswith("rsciio"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", refuse)
    (tmp_path / "a.dm4").write_bytes(b"\0" * 64)
    with pytest.raises(MissingDependencyError, match=r"emcodec\[formats\]"):
        open_stack(tmp_path / "a.dm4")


# --------------------------------------------------------------------------- a Velox movie


def _velox_json(obj) -> np.ndarray:
    raw = np.frombuffer(json.dumps(obj).encode(), np.uint8)
    out = np.zeros((len(raw) + 64, 1), np.uint8)  # Velox pads the metadata block with NULs
    out[: len(raw), 0] = raw
    return out


def write_velox_movie(path, frames, exposure="0.05", pixel="2.5e-10"):
    """A Ceta camera movie as Velox writes it: /Version, and under /Data/Image/<uuid> the
    frames as Data (y, x, frame) chunked one frame per chunk, with a JSON Metadata block."""
    uuid = "0123456789abcdef0123456789abcdef"
    meta = {
        "Core": {"MetadataDefinitionVersion": "7.9"},
        "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1600000000"}},
        "Scan": {},  # a TEM camera movie: the frame time is the detector's exposure time
        "Detectors": {"Detector-0": {"DetectorName": "BM-Ceta", "ExposureTime": exposure}},
        "BinaryResult": {"PixelSize": {"width": pixel, "height": pixel}, "PixelUnitX": "m",
                         "PixelUnitY": "m", "Offset": {"x": "0", "y": "0"}, "DetectorIndex": "0"},
    }
    ops = {uuid[:8]: {"dataPath": f"/Data/Image/{uuid}", "cameraName": "BM-Ceta"}}
    with h5py.File(path, "w") as f:
        f.create_dataset("Version", data=np.array([json.dumps({"format": "Velox", "version": "9"}).encode()],
                                                  dtype=object))
        g = f.create_group(f"Data/Image/{uuid}")
        data = np.ascontiguousarray(np.moveaxis(frames, 0, -1))
        g.create_dataset("Data", data=data, chunks=(*data.shape[:2], 1))
        g.create_dataset("Metadata", data=_velox_json(meta))
        op = f.create_group("Operations/CameraInputOperation")
        for key, value in ops.items():
            op.create_dataset(key, data=np.array([json.dumps(value).encode()], dtype=object))


@pytest.fixture
def velox(tmp_path):
    rng = np.random.default_rng(5)
    frames = rng.poisson(40, (6, 20, 24)).astype(np.uint16)
    path = tmp_path / "insitu.emd"
    write_velox_movie(path, frames)
    return path, frames


def test_velox_movie_frames_pixel_size_and_frame_time(velox):
    path, frames = velox
    with open_stack(path) as r:
        info = r.info
        np.testing.assert_array_equal(r.read(0, 6), frames)
        np.testing.assert_array_equal(np.concatenate(list(r.iter_chunks(4))), frames)
    assert info.source_format == "emd" and info.dtype == np.uint16
    assert info.pixel_size == pytest.approx((2.5, 2.5)) and info.pixel_unit in ("pm", "nm", "Å")
    assert info.frame_time == pytest.approx(0.05)
    assert info.metadata["Detectors"]["Detector-0"]["DetectorName"] == "BM-Ceta"


def test_velox_single_image_is_refused(tmp_path):
    write_velox_movie(tmp_path / "one.emd", np.ones((1, 8, 8), np.uint16))
    with pytest.raises(InputError, match=r"'one.emd' holds no movie \(a single image \(8x8\)\)"):
        open_stack(tmp_path / "one.emd")


def test_series_of_single_velox_images_is_one_movie(tmp_path):
    """A folder of single-image vendor files (what a camera saving each frame writes) is one
    movie with --series, in natural order, with the first file's calibration; each file alone
    holds no movie."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in (1, 2, 10):
        write_velox_movie(folder / f"image_{k}.emd", np.full((1, 8, 8), k, np.uint16))
    with pytest.raises(InputError, match="holds no movie"):
        open_stack(folder / "image_1.emd")
    with open_stack(folder, ReadOptions(series=True)) as r:
        assert (r.info.n_frames, r.info.source_format, r.info.extra["frame_format"]) == (3, "series", "emd")
        assert r.info.pixel_size == pytest.approx((2.5, 2.5))
        assert r.read(0, 3)[:, 0, 0].tolist() == [1, 2, 10]


def write_velox_spectrum(path, counts):
    """An EDS spectrum in the Velox layout RosettaSciIO reads: no /Data/Image, and under
    /Data/Spectrum/<uuid> the counts as Data (channels, 1) with a JSON Metadata block naming
    the detector and its dispersion."""
    uuid = "fedcba9876543210fedcba9876543210"
    meta = {
        "Core": {"MetadataDefinitionVersion": "7.9"},
        "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1600000000"}},
        "Detectors": {"Detector-0": {"DetectorName": "SuperXG1", "Dispersion": "5", "OffsetEnergy": "-480"}},
        "BinaryResult": {"Detector": "SuperXG1", "DetectorIndex": "0"},
    }
    with h5py.File(path, "w") as f:
        f.create_dataset("Version", data=np.array([json.dumps({"format": "Velox", "version": "9"}).encode()],
                                                  dtype=object))
        g = f.create_group(f"Data/Spectrum/{uuid}")
        g.create_dataset("Data", data=np.asarray(counts)[:, None], chunks=(len(counts), 1))  # Velox chunks its data
        g.create_dataset("Metadata", data=_velox_json(meta))


def test_velox_spectrum_is_one_clear_line(tmp_path, capsys):
    write_velox_spectrum(tmp_path / "eds.emd", np.arange(2048, dtype=np.uint32))
    rc = main(["compress", str(tmp_path / "eds.emd"), "-o", str(tmp_path / "x.tcs")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err == ("error: 'eds.emd' holds no movie (a spectrum (2048)); "
                               "emcodec needs a stack of image frames")
    assert not (tmp_path / "x.tcs").exists()


@pytest.mark.parametrize("ext", ["tif", "mrc"])
def test_velox_round_trip_carries_calibration_and_time(velox, tmp_path, ext, capsys):
    pytest.importorskip("torch")
    path, frames = velox
    tcs, out = tmp_path / "m.tcs", tmp_path / f"m.decoded.{ext}"
    assert main(["compress", str(path), "-o", str(tcs), "-B", "2", "-q"]) == 0
    assert main(["info", str(tcs)]) == 0
    shown = capsys.readouterr().out
    assert "2.5 Å" in shown and "50 ms per frame (20 frames/s)" in shown and "source_format      emd" in shown
    assert main(["decompress", str(tcs), "-o", str(out), "--method", "gap-tv", "-q"]) == 0
    with open_stack(out) as r:
        assert (r.info.n_frames, r.info.height, r.info.width, r.info.dtype) == (6, 20, 24, np.uint16)
        assert r.info.pixel_size == pytest.approx((2.5, 2.5))
        assert r.info.frame_time == pytest.approx(0.05)
        if ext == "tif":  # TIFF keeps the unit and the whole metadata tree; MRC is Å and labels
            assert r.info.pixel_unit == tcs_info(tcs)["metadata"]["pixel_unit"]
            assert r.info.metadata == tcs_info(tcs)["metadata"]["original_metadata"]
