"""Tests for emcodec.stacks: TIFF/MRC reading (fast and page paths), writing, metadata, errors."""

import io
import json
import os

import mrcfile
import numpy as np
import pytest
import tifffile
from hypothesis import given, settings, strategies as st

from emcodec import stacks
from emcodec.errors import InputError, OutputError
from emcodec.stacks import create_stack, open_stack, read_description, stack_format

N, H, W = 5, 32, 48
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32"]


def movie(dtype, seed=0, shape=(N, H, W)):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.normal(100.0, 30.0, shape).astype(dt)
    info = np.iinfo(dt)
    lo, hi = max(info.min, -(2**20)), min(info.max, 2**20)  # within float32-exact range (MRC)
    # include both extremes of the representable range where the format allows it
    a = rng.integers(lo, hi, shape, endpoint=True).astype(dt)
    a.flat[0], a.flat[1] = lo, hi
    return a


def part_files(directory):
    return [f for f in os.listdir(directory) if f.endswith(".part")]


def write(path, data, **kw):
    kw.setdefault("n_frames", data.shape[0])
    with create_stack(path, height=data.shape[1], width=data.shape[2], dtype=data.dtype, **kw) as w:
        w.write(data[:2])
        w.write(data[2:])


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "name,fmt",
    [("a.tif", "tiff"), ("A.TIFF", "tiff"), ("x.ome.tif", "tiff"), ("b.mrc", "mrc"), ("c.MRCS", "mrc")],
)
def test_stack_format(name, fmt):
    assert stack_format(name) == fmt


@pytest.mark.parametrize("name", ["a.png", "movie", "a.mrc.gz", "a.tcs"])
def test_stack_format_rejects(name):
    with pytest.raises(InputError, match=r"\.tif, \.tiff, \.mrc, \.mrcs"):
        stack_format(name)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", ["tif", "mrc", "mrcs"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path, dtype, ext):
    data = movie(dtype, seed=DTYPES.index(dtype))
    p = tmp_path / f"out.{ext}"
    write(p, data, pixel_size=(1.0637, 0.75), description="decoded by emcodec", labels=["run 1"])
    assert part_files(tmp_path) == []
    with open_stack(p) as r:
        info = r.info
        assert (info.n_frames, info.height, info.width) == data.shape
        assert info.dtype == np.dtype(dtype)
        assert info.pixel_size == pytest.approx((1.0637, 0.75), rel=1e-6)
        assert info.source_format == ("tiff" if ext == "tif" else "mrc")
        assert info.source_name == f"out.{ext}"
        got = r.read(0, N)
        assert type(got) is np.ndarray and got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, data)
    assert "decoded by emcodec" in read_description(p)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "uint16", "float32", "int32"])
def test_mrc_output_is_valid_image_stack(tmp_path, dtype):
    data = movie(dtype, seed=3)
    p = tmp_path / "out.mrcs"
    write(p, data, pixel_size=(2.5, 2.5), labels=["first", "second"])
    assert mrcfile.validate(str(p), print_file=io.StringIO())
    with mrcfile.open(p) as m:
        assert m.is_image_stack() and m.header.ispg == 0
        assert m.voxel_size.x == pytest.approx(2.5) and m.voxel_size.z == pytest.approx(2.5)
        stored = m.data.astype(np.float64)
        assert m.header.dmin == pytest.approx(stored.min())
        assert m.header.dmax == pytest.approx(stored.max())
        assert m.header.dmean == pytest.approx(stored.mean(), rel=1e-5)
        assert m.header.rms == pytest.approx(stored.std(), rel=1e-5)
        expected_mode = {"uint8": 6, "int8": 0, "int16": 1, "uint16": 6, "float32": 2, "int32": 2}
        assert int(m.header.mode) == expected_mode[dtype]
    with open_stack(p) as r:
        labels = r.info.extra["labels"]
        assert labels[-2:] == ["first", "second"]
        assert (f"emcodec: original dtype {dtype}" in labels) == (dtype in ("uint8", "int32"))


def test_mrc_rejects_inexact_int32_and_leaves_nothing(tmp_path):
    data = np.full((2, 4, 4), 2**24 + 1, np.int32)
    p = tmp_path / "o.mrc"
    with pytest.raises(OutputError, match="float32"):
        write(p, data)
    assert os.listdir(tmp_path) == []


def test_mrc_needs_frame_count(tmp_path):
    with pytest.raises(ValueError):
        create_stack(tmp_path / "o.mrc", height=4, width=4, dtype="int16", n_frames=None)
    assert os.listdir(tmp_path) == []


def test_mrc_long_description_wraps_over_labels(tmp_path):
    desc = "x" * 100 + "\nsecond line é"
    p = tmp_path / "o.mrc"
    write(p, movie("int16"), description=desc)
    with mrcfile.open(p) as m:
        assert all(len(lab) <= 80 for lab in m.header.label)
    assert read_description(p) == "x" * 80 + "\n" + "x" * 20 + "\nsecond line ?"


def test_mrc_bad_labels(tmp_path):
    with pytest.raises(ValueError):
        create_stack(tmp_path / "o.mrc", height=4, width=4, dtype="int16", n_frames=1,
                     labels=["y" * 81])
    with pytest.raises(ValueError):  # uint8 needs one slot for the dtype marker
        create_stack(tmp_path / "o.mrc", height=4, width=4, dtype="uint8", n_frames=1,
                     labels=["l"] * 10)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("dtype", ["uint16", "float32", "int32"])
def test_tiff_unknown_frame_count_is_bigtiff(tmp_path, dtype):
    data = movie(dtype, seed=7)
    p = tmp_path / "o.tif"
    with create_stack(p, height=H, width=W, dtype=dtype, n_frames=None, pixel_size=(0.5, 0.5),
                      description="stream ünïcode") as w:
        for f in data:
            w.write(f)  # 2-D frames are accepted too
    with tifffile.TiffFile(p) as tf:
        assert tf.is_bigtiff
    with open_stack(p) as r:
        assert r.info.n_frames == N and r.info.pixel_size == pytest.approx((0.5, 0.5))
        np.testing.assert_array_equal(r.read(0, N), data)
    assert read_description(p) == "stream ünïcode"


def test_tiff_imagej_output_readable_by_tifffile(tmp_path):
    data = movie("uint16")
    p = tmp_path / "o.tif"
    write(p, data, pixel_size=(1.2, 1.2), description="ünï info", labels=["a", "b"])
    with tifffile.TiffFile(p) as tf:
        assert tf.is_imagej
        md = tf.imagej_metadata
        assert md["frames"] == N and md["unit"] == "nm"
        assert md["Info"] == "ünï info"
        assert md["Properties"]["emcodec.labels"] == "a\nb"
        assert tf.pages[0].resolution[0] == pytest.approx(1 / 0.12)
        np.testing.assert_array_equal(tf.asarray(), data)


def test_float16_is_upcast(tmp_path):
    data = movie("float32").astype(np.float16)
    p = tmp_path / "h.tif"
    tifffile.imwrite(p, data)
    with open_stack(p) as r:
        assert r.info.dtype == np.float32 and r.info.extra["stored_dtype"] == "float16"
        np.testing.assert_array_equal(r.read(0, N), data.astype(np.float32))
    m = tmp_path / "h.mrc"
    mrcfile.new(m, data)
    with open_stack(m) as r:
        assert r.info.dtype == np.float32
        np.testing.assert_array_equal(r.read(0, N), data.astype(np.float32))


# --------------------------------------------------------------------------- TIFF inputs


def test_bigtiff_input_fast_path(tmp_path):
    data = movie("uint16")
    p = tmp_path / "big.tif"
    tifffile.imwrite(p, data, bigtiff=True)
    with open_stack(p) as r:
        assert r.info.extra.get("bigtiff") is True
        chunks = list(r.iter_chunks(2))
        # contiguous uncompressed data are memory-mapped: chunks are views, not copies
        assert all(isinstance(c, np.memmap) for c in chunks)
        np.testing.assert_array_equal(np.concatenate(chunks), data)


def test_imagej_hyperstack_input(tmp_path):
    data = movie("uint16")
    p = tmp_path / "hyper.tif"
    tifffile.imwrite(p, data.reshape(N, 1, 1, H, W), imagej=True,
                     resolution=(1 / 0.25, 1 / 0.5), metadata={"axes": "TZCYX", "unit": "micron"})
    with open_stack(p) as r:
        assert (r.info.n_frames, r.info.height, r.info.width) == (N, H, W)
        assert r.info.extra["imagej"] is True
        assert r.info.pixel_size == pytest.approx((2500.0, 5000.0))
        np.testing.assert_array_equal(r.read(1, 4), data[1:4])


# ImageJ writes non-ASCII units escaped in its (ASCII) description
@pytest.mark.parametrize("unit,factor", [("nm", 10.0), ("\\u00B5m", 1e4), ("\\u00C5", 1.0),
                                         ("micron", 1e4), ("um", 1e4), ("angstrom", 1.0)])
def test_imagej_units(tmp_path, unit, factor):
    p = tmp_path / "u.tif"
    tifffile.imwrite(p, movie("uint8"), imagej=True, resolution=(2.0, 4.0),
                     metadata={"axes": "TYX", "unit": unit})
    with open_stack(p) as r:
        assert r.info.pixel_size == pytest.approx((0.5 * factor, 0.25 * factor))


def test_ome_tiff_input(tmp_path):
    data = movie("int16")
    p = tmp_path / "m.ome.tif"
    tifffile.imwrite(p, data, metadata={"axes": "TYX", "PhysicalSizeX": 0.12, "PhysicalSizeXUnit": "nm",
                                        "PhysicalSizeY": 0.013, "PhysicalSizeYUnit": "µm"})
    with open_stack(p) as r:
        assert r.info.extra["ome"] is True
        assert r.info.pixel_size == pytest.approx((1.2, 130.0))
        np.testing.assert_array_equal(r.read(0, N), data)


def test_ome_default_unit_is_micrometre(tmp_path):
    p = tmp_path / "m.ome.tif"
    tifffile.imwrite(p, movie("uint8"), metadata={"axes": "TYX", "PhysicalSizeX": 0.001,
                                                 "PhysicalSizeY": 0.001})
    with open_stack(p) as r:
        assert r.info.pixel_size == pytest.approx((10.0, 10.0))


@pytest.mark.parametrize("unit,res,expected", [
    ("CENTIMETER", 1e7, 10.0),       # 1e7 pixels per cm -> 10 Å
    ("INCH", 2.54e7, 10.0),
    ("NONE", 3.0, None),             # no physical unit stated
    (None, None, None),              # tifffile default: 1/1, no unit
])
def test_standard_resolution_tags(tmp_path, unit, res, expected):
    p = tmp_path / "r.tif"
    kw = {} if res is None else {"resolution": (res, res), "resolutionunit": unit}
    tifffile.imwrite(p, movie("uint16"), **kw)
    with open_stack(p) as r:
        if expected is None:
            assert r.info.pixel_size is None
        else:
            assert r.info.pixel_size == pytest.approx((expected, expected))


@pytest.mark.parametrize("kw", [{"compression": "zlib"}, {"tile": (16, 16)}, {"compression": "lzw"}])
def test_page_path_matches_fast_path(tmp_path, kw):
    data = movie("uint16", seed=11)
    fast, slow = tmp_path / "fast.tif", tmp_path / "slow.tif"
    tifffile.imwrite(fast, data)
    try:
        tifffile.imwrite(slow, data, **kw)
    except Exception as e:  # codec not available in this environment
        pytest.skip(f"cannot write {kw}: {e}")
    with open_stack(fast) as a, open_stack(slow) as b:
        ca, cb = list(a.iter_chunks(2)), list(b.iter_chunks(2))
        assert [c.shape[0] for c in cb] == [2, 2, 1]
        assert isinstance(ca[0], np.memmap) and not isinstance(cb[0], np.memmap)
        for x, y in zip(ca, cb):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(b.read(1, 4), data[1:4])


def test_interleaved_pages_read_page_by_page(tmp_path):
    data = movie("float32")
    p = tmp_path / "pages.tif"
    with tifffile.TiffWriter(p) as tw:
        for f in data:
            tw.write(f, metadata=None)  # one IFD per page between the frames: not one block
    with open_stack(p) as r:
        assert r.info.n_frames == N
        np.testing.assert_array_equal(np.concatenate(list(r.iter_chunks(3))), data)


def test_big_endian_tiff_returns_native(tmp_path):
    data = movie("int16")
    p = tmp_path / "be.tif"
    tifffile.imwrite(p, data, byteorder=">")
    with open_stack(p) as r:
        assert r.info.dtype == np.dtype("int16") and r.info.dtype.isnative
        chunk = next(r.iter_chunks(5))
        assert chunk.dtype.isnative
        np.testing.assert_array_equal(chunk, data)


def test_single_image_is_one_frame(tmp_path):
    img = movie("uint16", shape=(H, W))
    p, m = tmp_path / "one.tif", tmp_path / "one.mrc"
    tifffile.imwrite(p, img)
    mrcfile.new(m, img)
    for path in (p, m):
        with open_stack(path) as r:
            assert (r.info.n_frames, r.info.height, r.info.width) == (1, H, W)
            np.testing.assert_array_equal(r.read(0, 1)[0], img)


def test_singleton_dims_are_squeezed(tmp_path):
    data = movie("uint8")
    p = tmp_path / "s.tif"
    tifffile.imwrite(p, data.reshape(1, N, 1, H, W))
    with open_stack(p) as r:
        assert r.info.n_frames == N
        np.testing.assert_array_equal(r.read(0, N), data)


# --------------------------------------------------------------------------- MRC inputs


def test_mrc_volume_input_frames_along_z(tmp_path):
    data = movie("float32")
    p = tmp_path / "vol.mrc"
    with mrcfile.new(p) as m:
        m.set_data(data)
        m.voxel_size = (3.0, 4.0, 5.0)  # a volume, not flagged as a stack
    with open_stack(p) as r:
        assert (r.info.n_frames, r.info.height, r.info.width) == (N, H, W)
        assert r.info.pixel_size == (3.0, 4.0)
        assert isinstance(next(r.iter_chunks(2)), np.memmap)
        np.testing.assert_array_equal(r.read(0, N), data)


def test_mrc_without_voxel_size(tmp_path):
    p = tmp_path / "v.mrcs"
    mrcfile.new(p, movie("int16"))
    with open_stack(p) as r:
        assert r.info.pixel_size is None


def test_foreign_mode6_is_uint16(tmp_path):
    p = tmp_path / "u8.mrc"
    # a uint8 file from another tool (mrcfile widens it) has no emcodec marker: stays uint16
    mrcfile.new(p, movie("uint8"))
    with open_stack(p) as r:
        assert r.info.dtype == np.uint16


def test_mrc_volume_stack(tmp_path):
    p = tmp_path / "vs.mrc"
    mrcfile.new(p, movie("int16", shape=(2, 3, H, W)))  # 4-D: a stack of volumes
    with pytest.raises(InputError, match="4-D"):
        open_stack(p)
    q = tmp_path / "vs1.mrc"
    data = movie("int16", shape=(1, N, H, W))
    mrcfile.new(q, data)
    with open_stack(q) as r:
        assert r.info.n_frames == N
        np.testing.assert_array_equal(r.read(0, N), data[0])


@pytest.mark.parametrize("ext", ["tif", "mrc"])
def test_extra_is_json(tmp_path, ext):
    p = tmp_path / f"j.{ext}"
    write(p, movie("uint8"), description="d", labels=["l"])
    with open_stack(p) as r:
        assert json.loads(json.dumps(r.info.extra)) == r.info.extra


# --------------------------------------------------------------------------- chunks


def test_iter_chunks_sizes_order_and_range(tmp_path):
    data = movie("int16")
    p = tmp_path / "c.mrc"
    write(p, data)
    with open_stack(p) as r:
        chunks = list(r.iter_chunks(2))
        assert [c.shape for c in chunks] == [(2, H, W), (2, H, W), (1, H, W)]
        np.testing.assert_array_equal(np.concatenate(chunks), data)
        sub = list(r.iter_chunks(3, start=1, stop=5))
        assert [c.shape[0] for c in sub] == [3, 1]
        np.testing.assert_array_equal(np.concatenate(sub), data[1:5])
        assert list(r.iter_chunks(10, start=2, stop=2)) == []
        assert [c.shape[0] for c in r.iter_chunks(100)] == [N]
        with pytest.raises(ValueError):
            list(r.iter_chunks(0))
        with pytest.raises(ValueError):
            list(r.iter_chunks(2, start=3, stop=N + 1))
        with pytest.raises(ValueError):
            r.read(4, 2)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 7), start=st.integers(0, N), length=st.integers(0, N))
def test_iter_chunks_property(tmp_path_factory, n, start, length):
    d = tmp_path_factory.getbasetemp() / "prop"
    d.mkdir(exist_ok=True)
    p = d / "z.tif"
    data = movie("uint16", seed=5)
    if not p.exists():
        tifffile.imwrite(p, data, compression="zlib")
    stop = min(N, start + length)
    with open_stack(p) as r:
        chunks = list(r.iter_chunks(n, start, stop))
    assert all(1 <= c.shape[0] <= n for c in chunks)
    assert all(c.shape[0] == n for c in chunks[:-1])
    got = np.concatenate(chunks) if chunks else np.empty((0, H, W), data.dtype)
    np.testing.assert_array_equal(got, data[start:stop])


# --------------------------------------------------------------------------- rejections


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_stack(tmp_path / "nope.tif")


def test_directory_and_empty_file(tmp_path):
    d = tmp_path / "dir.tif"
    d.mkdir()
    with pytest.raises(InputError, match="directory"):
        open_stack(d)
    e = tmp_path / "e.mrc"
    e.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_stack(e)


@pytest.mark.parametrize("name", ["g.tif", "g.mrc"])
def test_garbage_file(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError) as ei:
        open_stack(p)
    assert "\n" not in str(ei.value) and name in str(ei.value)


def test_truncated_tiff(tmp_path):
    p = tmp_path / "t.tif"
    tifffile.imwrite(p, movie("uint16"))
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError):
        with open_stack(p) as r:
            r.read(0, N)


def test_unsupported_extension(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="supported extensions"):
        open_stack(p)


def test_rgb_tiff(tmp_path):
    p = tmp_path / "rgb.tif"
    tifffile.imwrite(p, movie("uint8", shape=(H, W, 3)), photometric="rgb")
    with pytest.raises(InputError, match="RGB"):
        open_stack(p)


def test_4d_tiff(tmp_path):
    p = tmp_path / "4d.tif"
    tifffile.imwrite(p, movie("uint16", shape=(2, 5, H, W)))
    with pytest.raises(InputError, match="4-D"):
        open_stack(p)


def test_several_series_tiff(tmp_path):
    p = tmp_path / "two.tif"
    with tifffile.TiffWriter(p) as tw:
        tw.write(movie("uint16", shape=(H, W)))
        tw.write(movie("uint16", shape=(3, H // 2, W)), photometric="minisblack")
    with pytest.raises(InputError, match="series"):
        open_stack(p)


@pytest.mark.parametrize("dtype", ["float64", "bool", "int64"])
def test_bad_dtype_tiff(tmp_path, dtype):
    p = tmp_path / "b.tif"
    tifffile.imwrite(p, np.zeros((2, 8, 8), dtype))
    with pytest.raises(InputError, match="unsupported pixel type"):
        open_stack(p)


def test_complex_mrc(tmp_path):
    p = tmp_path / "c.mrc"
    mrcfile.new(p, np.zeros((2, 8, 8), np.complex64))
    with pytest.raises(InputError, match="complex"):
        open_stack(p)


def test_zero_frame_mrc(tmp_path):
    p = tmp_path / "z.mrc"
    with mrcfile.new(p) as m:
        m.set_data(np.zeros((0, 8, 8), np.int16))
    with pytest.raises(InputError):
        open_stack(p)


# --------------------------------------------------------------------------- atomic writes


def test_temp_file_beside_target_until_commit(tmp_path):
    data = movie("uint16")
    p = tmp_path / "o.tif"
    w = create_stack(p, height=H, width=W, dtype="uint16", n_frames=N)
    w.write(data)
    parts = part_files(tmp_path)
    assert len(parts) == 1 and parts[0].startswith(".o.tif.")
    assert not p.exists()
    w.commit()
    assert part_files(tmp_path) == [] and p.exists()


@pytest.mark.parametrize("ext", ["tif", "mrc"])
def test_abort_leaves_nothing(tmp_path, ext):
    p = tmp_path / f"o.{ext}"
    w = create_stack(p, height=H, width=W, dtype="int16", n_frames=N)
    w.write(movie("int16")[:2])
    w.abort()
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError):
        with create_stack(p, height=H, width=W, dtype="int16", n_frames=N) as w:
            w.write(movie("int16")[:2])
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_short_write_is_not_committed(tmp_path):
    p = tmp_path / "o.tif"
    with pytest.raises(ValueError, match="2 of 5"):
        with create_stack(p, height=H, width=W, dtype="uint8", n_frames=N) as w:
            w.write(movie("uint8")[:2])
    assert os.listdir(tmp_path) == []


def test_write_checks_shape_and_dtype(tmp_path):
    p = tmp_path / "o.tif"
    with create_stack(p, height=H, width=W, dtype="uint16", n_frames=2) as w:
        with pytest.raises(ValueError):
            w.write(np.zeros((1, H, W + 1), np.uint16))
        with pytest.raises(ValueError):  # narrowing would wrap silently
            w.write(np.zeros((1, H, W), np.int32))
        w.write(np.ones((1, H, W), np.uint8))  # widening is fine
        w.write(np.ones((H, W), np.uint16))
        with pytest.raises(ValueError):
            w.write(np.ones((1, H, W), np.uint16))  # more than announced
    with open_stack(p) as r:
        assert r.read(0, 2).sum() == 2 * H * W


@pytest.mark.parametrize("ext", ["tif", "mrc"])
def test_existing_target(tmp_path, ext):
    p = tmp_path / f"o.{ext}"
    p.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists; use --force"):
        create_stack(p, height=H, width=W, dtype="float32", n_frames=N)
    assert p.read_bytes() == b"keep me" and part_files(tmp_path) == []
    data = movie("float32")
    write(p, data, force=True)
    with open_stack(p) as r:
        np.testing.assert_array_equal(r.read(0, N), data)
    assert part_files(tmp_path) == []


def test_unwritable_destinations(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        create_stack(tmp_path / "missing" / "o.tif", height=4, width=4, dtype="uint8", n_frames=1)
    f = tmp_path / "file"
    f.write_bytes(b"")
    with pytest.raises(OutputError):
        create_stack(f / "o.mrc", height=4, width=4, dtype="uint8", n_frames=1)
    d = tmp_path / "dir.tif"
    d.mkdir()
    with pytest.raises(OutputError, match="directory"):
        create_stack(d, height=4, width=4, dtype="uint8", n_frames=1, force=True)
    with pytest.raises(OutputError, match="supported extensions"):
        create_stack(tmp_path / "o.png", height=4, width=4, dtype="uint8", n_frames=1)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write"):
            create_stack(d / "o.tif", height=4, width=4, dtype="uint8", n_frames=1)
    finally:
        d.chmod(0o700)


def test_output_permissions_follow_umask(tmp_path):
    p = tmp_path / "o.tif"
    write(p, movie("uint8"))
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_stacks_module_exports():
    assert set(stacks.__all__) >= {"StackInfo", "StackReader", "StackWriter", "stack_format",
                                   "open_stack", "create_stack", "read_description"}


def test_mapped_pages_are_given_back_in_batches_covering_the_movie(tmp_path, monkeypatch):
    data = movie("uint16")
    p = tmp_path / "m.tif"
    tifffile.imwrite(p, data)
    released = []
    from emcodec.formats import base  # where StackReader.iter_chunks finds it

    monkeypatch.setattr(base, "release_pages", lambda view: released.append(view.shape[0]))
    with open_stack(p) as r:
        frame_bytes = H * W * 2
        monkeypatch.setattr(r, "RELEASE_BYTES", 2 * frame_bytes)
        got = [np.array(c) for c in r.iter_chunks(1)]
    np.testing.assert_array_equal(np.concatenate(got), data)
    assert sum(released) == N and all(n <= 2 for n in released) and len(released) < N
