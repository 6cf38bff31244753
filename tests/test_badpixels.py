"""NaN / inf input pixels: stored as a bad-pixel map, NaN again after decoding (issue 16, item 1)."""

import io
import json

import numpy as np
import pytest
import tifffile

from emcodec import container
from emcodec.cli import main
from emcodec.container import FLAG_BAD_PIXELS, Header, TcsReader, TcsWriter
from emcodec.errors import ContainerError


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def float_movie(n=12, h=32, w=40):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 100 + 30 * np.sin(xx / 6.0) * np.cos(yy / 7.0)
    return (base + rng.normal(0, 2, (n, h, w))).astype(np.float32), base


def test_a_dead_pixel_and_a_hot_frame_decode_everywhere_else(tmp_path, capsys):
    x, base = float_movie()
    x[:, 5, 7] = np.nan  # dead in every frame
    x[3, 10, 11] = np.inf  # one frame of group 0 (B = 4)
    x[9, 20, 21] = -np.inf  # one frame of group 2
    tifffile.imwrite(tmp_path / "f.tif", x)
    code, _, err = run(["compress", tmp_path / "f.tif", "-B", 4, "-q"], capsys)
    assert code == 0 and err.splitlines() == [
        "warning: 3 pixel(s) are NaN or infinite in some frames: stored as a bad-pixel map "
        "(filled before summing, NaN again after decoding)"]
    tcs = tmp_path / "f.tcs"
    code, out, _ = run(["info", tcs, "--json"], capsys)
    assert json.loads(out)["format_version"] == 3
    code, _, err = run(["decompress", tcs, "-o", tmp_path / "d.tif", "--method", "gap-tv", "-q"], capsys)
    assert code == 0, err
    y = tifffile.imread(tmp_path / "d.tif")
    expected = np.zeros(y.shape, bool)
    expected[:, 5, 7] = True
    expected[0:4, 10, 11] = True  # the part (here the whole group) that held the inf
    expected[8:12, 20, 21] = True
    np.testing.assert_array_equal(np.isnan(y), expected)
    assert np.abs(y[~expected] - np.broadcast_to(base, y.shape)[~expected]).mean() < 5
    report = json.loads((tmp_path / "d.tif.emcodec.json").read_text())
    assert [g.get("bad_pixels", 0) for g in report["groups"]] == [2, 1, 2]
    code, _, err = run(["decompress", tcs, "-o", tmp_path / "p.tif", "--method", "gap-tv", "--frames", "4:8",
                        "-q"], capsys)
    part = tifffile.imread(tmp_path / "p.tif")
    assert code == 0 and np.isnan(part[:, 5, 7]).all() and np.isfinite(part).sum() == part.size - 4


def write_float_file(bad_maps, version=3):
    x, _ = float_movie(8, 16, 24)
    from emcodec.encoder import GroupEncoder

    enc = GroupEncoder(4, 1, 16, 24, x.dtype)
    buf = io.BytesIO()
    w = TcsWriter(buf, Header(4, 1, 16, 24, "float32", version=version))
    for g in range(2):
        w.write_parts([(0, 2, enc.encode(x[g * 4 : g * 4 + 2])[0], bad_maps[g][0]),
                       (2, 2, enc.encode(x[g * 4 + 2 : g * 4 + 4])[0], bad_maps[g][1])])
    w.close(8, float(x.min()), float(x.max()))
    return buf.getvalue()


def test_maps_round_trip_per_part_and_every_byte_is_checked():
    rng = np.random.default_rng(3)
    maps = [[rng.random((16, 24)) < 0.05, None], [None, rng.random((16, 24)) < 0.5]]
    data = write_float_file(maps)
    r = TcsReader(io.BytesIO(data))
    for g in range(2):
        for mode in (container.DECODE, container.SKIP):
            parts = r.read_group(g, mode).parts
            for part, want in zip(parts, maps[g]):
                assert (part.bad is None) if want is None else np.array_equal(part.bad, want)
    assert r.check_all() == 2
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x20
        with pytest.raises(ContainerError):
            TcsReader(io.BytesIO(bytes(bad))).check_all()


def test_a_map_is_refused_where_the_format_cannot_hold_one():
    with pytest.raises(ValueError, match="version 3"):
        write_float_file([[np.ones((16, 24), bool), None], [None, None]], version=2)
    data = bytearray(write_float_file([[None, None], [None, None]], version=2))
    assert data[8] == 2
    # a version-2 record with the flag set (its CRC recomputed) is corrupt, not a map
    off = TcsReader(io.BytesIO(bytes(data))).trailer.offsets[0]
    rec = bytearray(data[off : off + container.GROUP.size])
    rec[11] |= FLAG_BAD_PIXELS
    data[off : off + container.GROUP.size] = rec
    data[off + container.GROUP.size : off + container.GROUP.size + 4] = container.CRC.pack(
        container.zlib.crc32(bytes(rec)))
    with pytest.raises(ContainerError, match="cannot have one"):
        TcsReader(io.BytesIO(bytes(data))).read_group(0)


def test_integer_files_stay_version_2(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "i.tif", np.random.default_rng(0).poisson(20, (6, 16, 16)).astype(np.uint16))
    assert run(["compress", tmp_path / "i.tif", "-B", 3, "-q"], capsys)[0] == 0
    assert (tmp_path / "i.tcs").read_bytes()[8] == 2
