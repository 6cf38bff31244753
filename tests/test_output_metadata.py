"""What a decoded file says about itself (issue 16, item 11: the parts done here)."""

import json

import mrcfile
import numpy as np
import tifffile

from emcodec.cli import main
from emcodec.formats import read_description


def test_a_frame_range_names_its_first_frame_in_the_output_and_mrc_labels_are_written_once(tmp_path, capsys):
    x = np.random.default_rng(0).poisson(30, (12, 32, 40)).astype(np.int16)
    with mrcfile.new(tmp_path / "m.mrc") as m:
        m.set_data(x)
    assert main(["compress", str(tmp_path / "m.mrc"), "-B", "4", "-q"]) == 0
    for out, frames in (("part.mrc", "4:8"), ("part.tif", "5:10"), ("all.mrc", None)):
        args = ["decompress", str(tmp_path / "m.tcs"), "-o", str(tmp_path / out), "--method", "gap-tv", "-q"]
        assert main(args + (["--frames", frames] if frames else [])) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert "the first frame here is frame 4" in read_description(tmp_path / "part.mrc")
    assert "the first frame here is frame 5" in read_description(tmp_path / "part.tif")
    assert "first frame here" not in read_description(tmp_path / "all.mrc")
    with mrcfile.open(tmp_path / "part.mrc") as m:
        labels = [bytes(lab).decode().strip() for lab in m.header.label[: m.header.nlabl]]
    assert labels.count("emcodec 0.1.0 reconstruction") == 1
    assert not any(lab.startswith("emcodec 0.1.0 reconstruction;") for lab in labels)  # no second, joined copy


def test_the_source_imagej_info_travels_to_the_decoded_file(tmp_path, capsys):
    x = np.random.default_rng(1).poisson(30, (8, 32, 40)).astype(np.uint16)
    info = "Microscope=Krios G4\nVoltage=300 kV\nDose rate=20 e/px/s"
    tifffile.imwrite(tmp_path / "ij.tif", x, imagej=True, metadata={"Info": info})
    assert main(["compress", str(tmp_path / "ij.tif"), "-B", "4", "-q"]) == 0
    for out in ("d.tif", "d.mrc"):
        assert main(["decompress", str(tmp_path / "ij.tcs"), "-o", str(tmp_path / out), "--method", "gap-tv",
                     "-q"]) == 0, capsys.readouterr().err
    text = read_description(tmp_path / "d.tif")
    assert text.startswith("emcodec 0.1.0 reconstruction") and "Source Info:\n" + info in text
    with mrcfile.open(tmp_path / "d.mrc") as m:
        labels = [bytes(lab).decode().strip() for lab in m.header.label[: m.header.nlabl]]
    assert labels.count("emcodec 0.1.0 reconstruction") == 1 and any("Microscope=Krios G4" in lab for lab in labels)


def test_the_imagej_frame_interval_and_units_travel_and_info_names_them(tmp_path, capsys):
    x = np.random.default_rng(2).poisson(30, (8, 32, 40)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "ij.tif", x, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"unit": "nm", "finterval": 0.025})
    assert main(["compress", str(tmp_path / "ij.tif"), "-B", "4", "-q"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "ij.tcs")]) == 0
    out = capsys.readouterr().out
    assert "0.5 nm (5 Å) per pixel" in out and "25 ms per frame" in out
    assert main(["decompress", str(tmp_path / "ij.tcs"), "-o", str(tmp_path / "d.tif"), "--method", "gap-tv",
                 "-q"]) == 0, capsys.readouterr().err
    with tifffile.TiffFile(tmp_path / "d.tif") as f:
        ij = f.imagej_metadata
        assert ij["finterval"] == 0.025 and ij["unit"] == "nm"
        assert f.pages[0].tags["XResolution"].value == (2, 1)


def test_the_source_mrc_labels_travel_to_the_decoded_file(tmp_path, capsys):
    with mrcfile.new(tmp_path / "s.mrc") as m:
        m.set_data(np.random.default_rng(2).poisson(30, (8, 32, 40)).astype(np.int16))
        m.add_label("Krios G4, 300 kV, session 2024-05-01")
    assert main(["compress", str(tmp_path / "s.mrc"), "-B", "4", "-q"]) == 0
    assert main(["decompress", str(tmp_path / "s.tcs"), "-o", str(tmp_path / "d.mrc"), "--method", "gap-tv",
                 "-q"]) == 0, capsys.readouterr().err
    with mrcfile.open(tmp_path / "d.mrc") as m:
        labels = [bytes(lab).decode().strip() for lab in m.header.label[: m.header.nlabl]]
    assert labels[0] == "emcodec 0.1.0 reconstruction" and "Krios G4, 300 kV, session 2024-05-01" in labels


def _decode(tmp_path, tcs, out, capsys, *extra):
    code = main(["decompress", str(tmp_path / tcs), "-o", str(tmp_path / out), "--method", "gap-tv", "-q", *extra])
    assert code == 0, capsys.readouterr().err


def test_the_source_mrc_space_group_travels_to_the_decoded_mrc(tmp_path, capsys):
    import io

    x = np.random.default_rng(3).poisson(30, (8, 32, 40)).astype(np.int16)
    # (space group, volume depth): a movie kept as a volume (mrcfile's default for 3-D data),
    # an image stack, a crystallographic group, and a stack of one 8-deep volume
    for name, group, depth in (("vol", 1, None), ("stack", 0, None), ("p21", 4, None), ("vstack", 401, 8)):
        with mrcfile.new(tmp_path / f"{name}.mrc") as m:
            m.set_data(x)
            if group == 0:
                m.set_image_stack()
            else:
                m.header.ispg = group
                if depth:
                    m.header.mz = depth
        assert main(["compress", str(tmp_path / f"{name}.mrc"), "-B", "4", "-q"]) == 0
        _decode(tmp_path, f"{name}.tcs", f"d-{name}.mrc", capsys)
        _decode(tmp_path, f"{name}.tcs", f"part-{name}.mrc", capsys, "--frames", "1:7")
        for out, frames, mz in ((f"d-{name}.mrc", 8, depth or (1 if group == 0 else 8)),
                                (f"part-{name}.mrc", 6, 1 if group in (0, 401) else 6)):
            assert mrcfile.validate(str(tmp_path / out), print_file=io.StringIO()), out
            with mrcfile.open(tmp_path / out) as m:
                assert (int(m.header.ispg), int(m.header.mz)) == (group, mz), out
                assert m.data.size == frames * 32 * 40
    # a TIFF source has no space group: an image stack, as before
    tifffile.imwrite(tmp_path / "t.tif", x.astype(np.uint16), photometric="minisblack")
    assert main(["compress", str(tmp_path / "t.tif"), "-B", "4", "-q"]) == 0
    _decode(tmp_path, "t.tcs", "t.mrc", capsys)
    with mrcfile.open(tmp_path / "t.mrc") as m:
        assert m.is_image_stack() and int(m.header.ispg) == 0


def test_a_decoded_tiff_states_its_provenance_once(tmp_path, capsys):
    from emcodec import __version__

    mark = f"emcodec {__version__} reconstruction"
    for dtype in ("uint16", "int32"):  # an ImageJ hyperstack (Info, Properties); tifffile's JSON description
        x = np.random.default_rng(4).poisson(30, (8, 32, 40)).astype(dtype)
        tifffile.imwrite(tmp_path / f"{dtype}.tif", x, photometric="minisblack")
        assert main(["compress", str(tmp_path / f"{dtype}.tif"), "-B", "4", "-q"]) == 0
        _decode(tmp_path, f"{dtype}.tcs", f"d-{dtype}.tif", capsys)
        with tifffile.TiffFile(tmp_path / f"d-{dtype}.tif") as tf:
            assert tf.is_imagej == (dtype == "uint16")
            text = json.dumps(tf.imagej_metadata) if tf.is_imagej else tf.pages[0].description
        assert text.count(mark) == 1, text  # once, in Info (or the JSON description), not beside it again
        assert "method=gap-tv B=4" in read_description(tmp_path / f"d-{dtype}.tif")
