"""The .tcs container: round trips, streams, damage detection, and the spec in docs/format.md."""

import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emcodec import container
from emcodec.container import GROUP, HEADER, MAGIC, Header, TcsReader, TcsWriter
from emcodec.encoder import GroupEncoder, pad_group
from emcodec.errors import ChecksumError, ContainerError, VersionError
from emcodec.masks import make_masks

FORMAT_MD = (Path(__file__).resolve().parents[1] / "docs" / "format.md").read_text()
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32"]


class Stream(io.BytesIO):
    """A pipe: bytes in order, no seeking."""

    def seekable(self):
        return False


def random_movie(dtype, n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return rng.normal(3, 2, (n, h, w)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, (n, h, w), endpoint=True).astype(dtype)


def write_tcs(x, B=4, seed=3, level=1):
    n, h, w = x.shape
    enc = GroupEncoder(B, seed, h, w, x.dtype)
    buf = io.BytesIO()
    writer = TcsWriter(buf, Header(B, seed, h, w, x.dtype.name, metadata={"source_name": "m.tif"}), level)
    ys = []
    for s in range(0, n, B):
        ys.append(enc.encode(x[s : s + B])[0])
        writer.write_group(ys[-1], len(x[s : s + B]))
    writer.close(n, float(x.min()), float(x.max()))
    return buf.getvalue(), ys


@pytest.fixture(scope="module")
def sample():
    x = random_movie("uint16", 11, 9, 13)
    return write_tcs(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_dtype(dtype):
    x = random_movie(dtype, 7, 10, 70)
    data, ys = write_tcs(x, B=3)
    masks = make_masks(3, 3, 0, 0, 10, 70)
    for g, y in enumerate(ys):
        expected = (pad_group(x[3 * g : 3 * g + 3], 3).astype(np.float64) * masks).sum(axis=0)
        np.testing.assert_allclose(y.astype(np.float64), expected, rtol=1e-6)
    reader = TcsReader(io.BytesIO(data))
    assert reader.header.dtype == dtype and reader.trailer.frame_count == 7 and reader.n_groups == 3
    assert [g.n_valid for g in reader.groups()] == [3, 3, 1]
    for g, y in enumerate(ys):
        np.testing.assert_array_equal(reader.read_group(g).measurement, y)
    assert reader.trailer.value_min == float(x.min()) and reader.trailer.value_max == float(x.max())


def test_stream_reading_equals_random_access(sample):
    data, ys = sample
    reader = TcsReader(Stream(data))
    assert reader.trailer is None
    got = [g.measurement for g in reader.groups()]
    assert reader.trailer.frame_count == 11
    for a, b in zip(got, ys):
        np.testing.assert_array_equal(a, b)


def test_integer_measurements_use_narrow_storage():
    # low-dose counts: sums of 4 frames stay below 256, so one byte per pixel although
    # the uint16 input's accumulator is uint32
    x = np.random.default_rng(2).integers(0, 60, (4, 8, 8)).astype(np.uint16)
    data, _ = write_tcs(x)
    rec = GROUP.unpack_from(data, data.index(container.GROUP_TAG))
    assert container.STORED_DTYPES[rec[3]] == "uint8"


@pytest.mark.parametrize("cut", [1, 7, 47, 60, 100, -30, -17, -9, -1])
def test_truncation_is_reported(sample, cut):
    data, _ = sample
    for cls in (io.BytesIO, Stream):
        with pytest.raises(ContainerError):
            r = TcsReader(cls(data[:cut]))
            list(r.groups())


def test_every_single_bit_flip_is_detected(sample):
    data, _ = sample
    rng = np.random.default_rng(1)
    for pos in rng.choice(len(data), size=200, replace=False):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(ContainerError):
            r = TcsReader(io.BytesIO(bytes(bad)))
            list(r.groups())
            [r.read_group(i) for i in range(r.n_groups)]


def test_checksum_error_names_the_part(sample):
    data, _ = sample
    bad = bytearray(data)
    bad[-40] ^= 0xFF  # inside the trailer's offsets
    with pytest.raises(ChecksumError, match="trailer"):
        TcsReader(io.BytesIO(bytes(bad)))


def test_newer_version_is_refused(sample):
    data, _ = sample
    fixed = bytearray(data[: HEADER.size])
    struct.pack_into("<H", fixed, 8, container.FORMAT_VERSION + 1)
    meta_len = struct.unpack_from("<I", fixed, 44)[0]
    body = bytes(fixed) + data[HEADER.size : HEADER.size + meta_len]
    newer = body + struct.pack("<I", zlib.crc32(body)) + data[HEADER.size + meta_len + 4 :]
    with pytest.raises(VersionError, match="upgrade"):
        TcsReader(io.BytesIO(newer))


def test_not_a_tcs_file():
    with pytest.raises(ContainerError, match="not a .tcs"):
        TcsReader(io.BytesIO(b"II*\x00" + bytes(100)))
    with pytest.raises(ContainerError):
        TcsReader(io.BytesIO(b""))


def test_spec_matches_constants():
    assert HEADER.size == 48 and GROUP.size == 38 and container.GROUP_V1.size == 36 and container.CODING.size == 36
    assert f"`struct` format `{container.GROUP_V1.format}`" in FORMAT_MD
    assert f"`struct` format `{container.CODING.format}`" in FORMAT_MD
    assert "89 54 43 53 0D 0A 1A 0A" in FORMAT_MD and MAGIC == bytes.fromhex("89 54 43 53 0D 0A 1A 0A")
    assert f"`struct` format `{HEADER.format}`" in FORMAT_MD
    assert f"`struct` format `{GROUP.format}`" in FORMAT_MD
    assert container.END_MARKER == b"TCS-END\n" and "`TCS-END\\n`" in FORMAT_MD
    for code, name in container.STORED_DTYPES.items():
        assert re.search(rf"\b{code} {name}\b", FORMAT_MD)
    assert f"format version {container.FORMAT_VERSION}" in FORMAT_MD


def read_everything(data: bytes, seekable: bool):
    r = TcsReader(io.BytesIO(data) if seekable else Stream(data))
    for _ in r.groups():
        pass
    if seekable:
        for i in range(r.n_groups):
            r.read_group(i)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_raise_only_container_errors(blob, seekable):
    for data in (blob, MAGIC + blob):
        try:
            read_everything(data, seekable)
        except ContainerError:
            pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_raise_only_container_errors(sample, data):
    good, _ = sample
    buf = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            buf = buf[:pos]
        else:
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    seekable = data.draw(st.booleans())
    try:
        read_everything(bytes(buf), seekable)
    except ContainerError:
        pass


def test_quantised_groups_round_trip_as_each_codes_mean():
    from emcodec.quantize import Quantizer

    x = np.random.default_rng(4).poisson(50, (8, 16, 24)).astype(np.uint16)
    q = Quantizer(step=1.0, gain=1.0, frames=2.0)
    enc = GroupEncoder(4, 3, 16, 24, x.dtype)
    buf = io.BytesIO()
    writer = TcsWriter(buf, Header(4, 3, 16, 24, "uint16", quantizer=q))
    ys = [enc.encode(x[s : s + 4])[0] for s in (0, 4)]
    for y in ys:
        writer.write_group(y, 4)
    writer.close(8, float(x.min()), float(x.max()))
    reader = TcsReader(io.BytesIO(buf.getvalue()))
    assert reader.header.quantizer == q and reader.header.coding["quantize"] == "on"
    for g, y in enumerate(ys):
        got = reader.read_group(g).measurement
        np.testing.assert_array_equal(got, q.dequantize(q.codes_of(y)))
        assert 0 < np.abs(got - y).max() <= 0.5 * q.step * np.sqrt(y.max()) + 1


def test_a_group_split_in_parts_round_trips_and_inconsistent_parts_are_refused():
    rng = np.random.default_rng(5)
    ys = [rng.integers(0, 500, (6, 7)) for _ in range(3)]
    buf = io.BytesIO()
    writer = TcsWriter(buf, Header(5, 1, 6, 7, "uint16"))
    writer.write_parts([(0, 2, ys[0]), (2, 3, ys[1])])
    writer.write_group(ys[2], 4)
    writer.close(9, 0.0, 500.0)
    data = buf.getvalue()
    for reader in (TcsReader(io.BytesIO(data)), TcsReader(Stream(data))):
        groups = list(reader.groups())
        assert [(p.first, p.n_frames) for p in groups[0].parts] == [(0, 2), (2, 3)]
        assert [g.n_valid for g in groups] == [5, 4]
        np.testing.assert_array_equal(groups[0].parts[1].measurement, ys[1])
    reader = TcsReader(io.BytesIO(data))
    assert reader.layout() == [[(0, 2), (2, 3)], [(0, 4)]]
    with pytest.raises(ContainerError, match="split"):
        reader.read_group(0).measurement
    # a second part that claims to start elsewhere, with a valid CRC: still refused
    second = data.index(container.GROUP_TAG, data.index(container.GROUP_TAG) + 4)
    rec = bytearray(data[second : second + GROUP.size])
    rec[36] = 1
    bad = data[:second] + bytes(rec) + struct.pack("<I", zlib.crc32(bytes(rec))) + data[second + GROUP.size + 4 :]
    with pytest.raises(ContainerError, match="inconsistent"):
        TcsReader(io.BytesIO(bad)).read_group(0)


DATA = Path(__file__).resolve().parent / "data"


def test_a_version_1_file_still_reads_and_holds_the_exact_measurements():
    import tifffile

    x = tifffile.imread(DATA / "format-v1-source.tif")
    with open(DATA / "format-v1.tcs", "rb") as f:
        reader = TcsReader(f)
        assert reader.header.version == 1 and reader.header.quantizer is None
        assert reader.layout() == [[(0, 5)], [(0, 5)], [(0, 3)]]
        enc = GroupEncoder(5, 77, *x.shape[1:], x.dtype)
        for g, group in enumerate(reader.groups()):
            np.testing.assert_array_equal(group.measurement, enc.encode(x[5 * g : 5 * g + 5])[0])


def test_each_thread_keeps_one_zstd_compressor_per_level():
    import threading

    from emcodec.container import zstd_compressor

    assert zstd_compressor(1) is zstd_compressor(1) and zstd_compressor(1) is not zstd_compressor(3)
    other = []
    t = threading.Thread(target=lambda: other.append(zstd_compressor(1)))
    t.start()
    t.join()
    assert other[0] is not zstd_compressor(1)
