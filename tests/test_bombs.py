"""Decompression bombs and crafted lengths: refused up front, never allocated (issue 16, item 6)."""

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from emcodec import container, memory
from emcodec.cli import main
from emcodec.container import CRC, GROUP, GROUP_TAG, Header, TcsReader, Trailer
from emcodec.errors import ContainerError, EmcodecError
from emcodec.quantize import Quantizer


class Stream(io.BytesIO):
    def seekable(self):
        return False


def crafted(height, width, pay_len, frames=10):
    """A checksum-valid file whose header claims height x width and whose one record claims pay_len."""
    head = Header(10, 0, height, width, "uint16", version=2).to_bytes()
    raw = height * width * 2
    rec = GROUP.pack(GROUP_TAG, 0, frames, 2, 0, 0, raw, pay_len, 0, 1)
    body = rec + CRC.pack(zlib.crc32(rec)) + bytes(64)
    return head + body + Trailer(frames, 0.0, 1.0, [len(head)]).to_bytes()


def test_a_huge_frame_claim_is_refused_before_decoding(tmp_path, capsys):
    path = tmp_path / "bomb.tcs"
    path.write_bytes(crafted(16384, 16384, 1000))
    assert len(path.read_bytes()) < 9000
    code = main(["decompress", str(path), "-o", str(tmp_path / "o.tif"), "--method", "gap-tv"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: decoding a group of 10 frames of 16384 x 16384 needs about")
    assert "GiB" in err and err.count("\n") == 1 and not (tmp_path / "o.tif").exists()


def test_max_memory_overrides_the_figure(tmp_path, capsys, monkeypatch):
    import tifffile

    tifffile.imwrite(tmp_path / "m.tif", np.random.default_rng(0).poisson(9, (4, 32, 32)).astype(np.uint16),
                     photometric="minisblack")
    assert main(["compress", str(tmp_path / "m.tif"), "-B", "4", "-q"]) == 0
    monkeypatch.setattr(memory, "available", lambda: 1 << 16)  # pretend 64 KiB is free
    args = ["decompress", str(tmp_path / "m.tcs"), "--method", "gap-tv", "-q", "--force"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1 and "more than the 64.0 KiB available" in err
    assert main(args + ["--max-memory", "2G"]) == 0
    capsys.readouterr()
    assert main(args + ["--max-memory", "12 apples"]) == 1
    assert "--max-memory takes a size" in capsys.readouterr().err


def test_the_movie_decoders_estimate_counts_what_it_holds():
    """The movie decoder holds one group in the writer's dtype, its window's parts and their
    half-resolution flows, and one tile's work: at 4096 x 4096, B = 30 the pre-check no
    longer counts 8 float64 copies of the frames (34.7 GiB: it refused the decode)."""
    uint16 = memory.decode_peak(4096, 4096, 30, movie=True, window=2, itemsize=2)
    assert uint16 < 4 << 30
    assert memory.decode_peak(4096, 4096, 30, movie=True, window=2, itemsize=4) - uint16 == 30 * 4096 * 4096 * 2
    assert memory.decode_peak(4096, 4096, 30, movie=False, window=2) > 30 << 30
    # a window of K parts on each side: 2K + 1 parts, K(3K + 1) flows
    assert memory.decode_peak(512, 512, 10, movie=True, window=3) > memory.decode_peak(512, 512, 10, movie=True,
                                                                                       window=2)


class Pipe(io.BufferedReader):
    def seekable(self):
        return False

    def tell(self):
        raise OSError("illegal seek")


@pytest.mark.parametrize("seekable", [True, False])
def test_a_length_field_beyond_the_file_allocates_nothing(seekable, tmp_path):
    path = tmp_path / "crafted.tcs"
    path.write_bytes(crafted(8192, 8192, 100_000_000))  # allowed by the record's own bound, 12 KB of file
    tracemalloc.start()
    with pytest.raises(ContainerError, match="truncated"), \
            (open(path, "rb") if seekable else Pipe(io.FileIO(path))) as f:
        r = TcsReader(f)
        r.read_group(0) if seekable else next(r.groups())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20


def test_a_record_whose_size_disagrees_with_the_frame_is_refused():
    head = Header(4, 0, 8, 8, "uint16", version=2).to_bytes()
    rec = GROUP.pack(GROUP_TAG, 0, 4, 2, 0, 0, 1 << 40, 16, 0, 1)
    data = head + rec + CRC.pack(zlib.crc32(rec)) + bytes(20) + Trailer(4, 0.0, 1.0, [len(head)]).to_bytes()
    with pytest.raises(ContainerError, match="does not match the frame shape"):
        TcsReader(io.BytesIO(data)).read_group(0, container.CHECK)


def test_the_dequantiser_only_tabulates_the_codes_present():
    q = Quantizer(step=0.01, gain=1e-9, frames=5.0)
    codes = np.array([[0, 3], [10**9, 7]], dtype=np.int64)  # a full table would be 8 GB
    tracemalloc.start()
    y = q.dequantize(codes)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert y.shape == (2, 2) and np.isfinite(y).all() and peak < 1 << 20
    q = Quantizer(step=1.0, gain=2.0, frames=5.0)
    sparse = np.random.default_rng(0).integers(0, 400, 50)  # span > size: the sparse path
    dense = q.dequantize(np.concatenate([sparse, np.arange(400)]))[:50]
    np.testing.assert_array_equal(q.dequantize(sparse), dense)


def test_deeply_nested_metadata_is_a_container_error():
    h = Header(4, 0, 8, 8, "uint16", version=2)
    data = bytearray(h.to_bytes())
    meta = b"[" * 100000 + b"]" * 100000
    fixed = bytearray(data[: container.HEADER.size])
    struct.pack_into("<I", fixed, 44, len(meta))
    body = bytes(fixed) + meta + data[-4 - container.CODING.size : -4]
    with pytest.raises(ContainerError, match="nested too deeply"):
        container.read_header(io.BytesIO(body + CRC.pack(zlib.crc32(body))))


def test_size_parsing():
    assert memory.parse_size("8G") == 8 << 30 and memory.parse_size("512M") == 512 << 20
    assert memory.parse_size("1.5GiB") == 3 << 29 and memory.parse_size("4096") == 4096
    for bad in ("", "-1G", "0", "lots"):
        with pytest.raises(EmcodecError):
            memory.parse_size(bad)
