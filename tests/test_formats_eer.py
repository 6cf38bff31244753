"""EER reading: events summed per fraction, super-resolution, gain reference, frame time."""

import numpy as np
import pytest
import tifffile

from emcodec.cli import main
from emcodec.codec import info as tcs_info
from emcodec.errors import InputError
from emcodec.formats import ReadOptions, open_stack
from eerfile import random_events, write_eer

H, W, N_RAW = 24, 32, 10


@pytest.fixture
def eer(tmp_path):
    rng = np.random.default_rng(17)
    events = random_events(rng, N_RAW, H, W, per_frame=60)
    path = tmp_path / "movie.eer"
    write_eer(path, events, H, W, exposure_time=2.0)
    return path, events


def counts(events, upsample=1):
    """Expected per-raw-frame counts at `upsample` x the sensor grid."""
    out = np.zeros((len(events), H * upsample, W * upsample), np.int64)
    shift = {1: 2, 2: 1, 4: 0}[upsample]
    for k, (index, sx, sy) in enumerate(events):
        y = (index // W) * upsample + (sy >> shift)
        x = (index % W) * upsample + (sx >> shift)
        np.add.at(out[k], (y, x), 1)
    return out


def test_eer_fraction_sums_raw_frames_and_drops_the_remainder(eer):
    path, events = eer
    with open_stack(path, ReadOptions(eer_fraction=3)) as r:
        info = r.info
        got = r.read(0, info.n_frames)
    assert info.n_frames == 3 and info.source_format == "eer" and info.dtype == np.uint8
    assert info.extra["eer_dropped_frames"] == 1 and info.extra["eer_raw_frames"] == N_RAW
    want = counts(events)[:9].reshape(3, 3, H, W).sum(axis=1)
    np.testing.assert_array_equal(got, want)
    assert info.frame_time == pytest.approx(2.0 / N_RAW * 3)
    assert info.pixel_size is None  # the file states the sensor's pixel, not the specimen's
    assert info.metadata["cameraName"] == "Falcon 4i"


@pytest.mark.parametrize("upsample", [2, 4])
def test_eer_upsample_places_events_by_their_sub_pixel_bits(eer, upsample):
    path, events = eer
    with open_stack(path, ReadOptions(eer_upsample=upsample)) as r:
        assert (r.info.height, r.info.width) == (H * upsample, W * upsample)
        got = r.read(0, N_RAW)
    np.testing.assert_array_equal(got, counts(events, upsample))


@pytest.mark.parametrize("compression,bits", [(65000, None), (65002, (8, 2, 2)), (65002, (6, 2, 2))])
@pytest.mark.parametrize("upsample", [1, 4])
def test_eer_codes_65000_and_65002_with_their_stated_bits(tmp_path, compression, bits, upsample):
    """The 8-bit skip code (65000) and the code whose bit widths tags 65007-65009 state (65002;
    a reader that took 65001's 7 bits would misplace every event), read directly and through
    the fallback (tifffile, one page at a time)."""
    from emcodec.formats import eer as eer_module

    rng = np.random.default_rng(23)
    events = random_events(rng, 6, H, W, per_frame=60)
    path = tmp_path / "m.eer"
    write_eer(path, events, H, W, compression=compression, bits=bits)
    want = counts(events, upsample).reshape(3, 2, H * upsample, W * upsample).sum(axis=1)
    for direct in (True, False):
        eer_module._ACCUMULATES = None if direct else False
        try:
            with open_stack(path, ReadOptions(eer_fraction=2, eer_upsample=upsample)) as r:
                assert r._direct == direct and r.info.extra["eer_compression"] == compression
                np.testing.assert_array_equal(r.read(0, 3), want)
        finally:
            eer_module._ACCUMULATES = None


def test_eer_gain_reference_multiplies_the_counts(eer, tmp_path):
    path, events = eer
    gain = np.random.default_rng(3).uniform(0.5, 2.0, (H, W)).astype(np.float32)
    tifffile.imwrite(tmp_path / "ref.gain", gain)
    with open_stack(path, ReadOptions(eer_fraction=5, eer_upsample=2, gain_ref=str(tmp_path / "ref.gain"))) as r:
        assert r.info.dtype == np.float32
        got = r.read(0, 2)
    up = np.repeat(np.repeat(gain, 2, 0), 2, 1)  # a sensor-sized gain follows the upsampling
    want = counts(events, 2).reshape(2, 5, 2 * H, 2 * W).sum(axis=1) * up
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_eer_bad_gain_and_bad_files_are_one_line_errors(eer, tmp_path):
    path, _ = eer
    tifffile.imwrite(tmp_path / "small.tif", np.ones((5, 5), np.float32))
    with pytest.raises(InputError, match="gain reference 'small.tif' is 5x5"):
        open_stack(path, ReadOptions(gain_ref=str(tmp_path / "small.tif")))
    with pytest.raises(InputError, match="more than the 10 raw frames"):
        open_stack(path, ReadOptions(eer_fraction=11))
    plain = tmp_path / "plain.eer"
    tifffile.imwrite(plain, np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match="not an EER movie"):
        open_stack(plain)


def test_eer_compresses_from_the_command_line(eer, tmp_path, capsys):
    path, _ = eer
    out = tmp_path / "m.tcs"
    assert main(["compress", str(path), "-o", str(out), "-B", "2", "--eer-fraction", "2", "-q"]) == 0
    facts = tcs_info(out)
    assert facts["frames"] == 5 and facts["metadata"]["frame_time"] == pytest.approx(0.4)
    assert facts["metadata"]["source_extra"]["eer_fraction"] == 2
    assert main(["info", str(out)]) == 0
    assert "400 ms per frame (2.5 frames/s)" in capsys.readouterr().out
    assert main(["compress", str(path), "-o", str(tmp_path / "x.tcs"), "--eer-upsample", "3"]) != 0
    tif = tmp_path / "a.tif"
    tifffile.imwrite(tif, np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    assert main(["compress", str(tif), "--eer-fraction", "2"]) == 1
    assert "applies to .eer files only" in capsys.readouterr().err


def _traced_peak(fn):
    """Bytes allocated at the peak of fn() above what was allocated before it (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_eer_pages_are_decoded_into_the_output_frame_not_one_array_each(tmp_path):
    """Each raw page is added straight into its output frame: reading a frame allocates that
    frame and the strips' bytes, not a frame-sized array per raw page (tifffile's asarray)."""
    from emcodec.formats import eer as eer_module

    side, fraction = 256, 8
    rng = np.random.default_rng(5)
    path = tmp_path / "m.eer"
    write_eer(path, random_events(rng, 2 * fraction, side, side, per_frame=1300), side, side)
    frame = side * side  # uint8 counts
    with open_stack(path, ReadOptions(eer_fraction=fraction)) as r:
        assert r._direct, "imagecodecs' eer_decode no longer adds into the given array"
        r.read(0, 1)  # imports, file handles and one-off buffers before measuring
        peak = _traced_peak(lambda: r.read(1, 2))
        got = r.read(0, 2)
    assert peak < 1.5 * frame, f"reading one {frame}-byte frame allocated {peak} bytes at its peak"
    with tifffile.TiffFile(path) as tf:
        want = tf.series[0].asarray().reshape(2, fraction, side, side).sum(axis=1)
    np.testing.assert_array_equal(got, want)
    eer_module._ACCUMULATES = False  # the fallback (tifffile, one reused page buffer) gives the same frames
    try:
        with open_stack(path, ReadOptions(eer_fraction=fraction)) as r:
            assert not r._direct
            np.testing.assert_array_equal(r.read(0, 2), want)
    finally:
        eer_module._ACCUMULATES = None


def test_compress_holds_one_decoded_group_however_long_the_movie(tmp_path):
    """A decoded (not memory-mapped) movie streams through compress one group at a time: the
    peak does not grow with the number of groups (it held three groups before)."""
    from emcodec.codec import compress

    side, fraction, B = 256, 2, 4
    group = B * side * side  # bytes of one group of uint8 counts
    rng = np.random.default_rng(6)
    peaks = {}
    for n_groups in (1, 6):
        path = tmp_path / f"g{n_groups}.eer"
        write_eer(path, random_events(rng, n_groups * B * fraction, side, side, per_frame=600), side, side)
        out = tmp_path / f"g{n_groups}.tcs"
        compress(path, out, B=B, read_options=ReadOptions(eer_fraction=fraction), force=True)  # warm imports
        peaks[n_groups] = _traced_peak(
            lambda: compress(path, out, B=B, read_options=ReadOptions(eer_fraction=fraction), force=True))
    assert peaks[6] - peaks[1] < group / 2, f"peaks {peaks} with {group}-byte groups"
