"""emcodec verify, compress --verify, and what info does not check (issue 16, item 3)."""

import io
import json
import struct

import numpy as np
import pytest
import tifffile

from emcodec import container
from emcodec.cli import main
from emcodec.container import TcsReader
from emcodec.errors import ChecksumError, ContainerError


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tcs(tmp_path, capsys):
    frames = np.random.default_rng(1).poisson(30, (12, 16, 24)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", frames)
    code, _, err = run(["compress", tmp_path / "m.tif", "-B", "4", "-q"], capsys)
    assert code == 0, err
    return tmp_path / "m.tcs"


def payload_byte(path) -> int:
    """A byte inside group 1's payload (header and trailer checksums still match)."""
    with open(path, "rb") as f:
        r = TcsReader(f)
        start = r.trailer.offsets[1]
    return start + container.GROUP.size + container.CRC.size + 5


def test_verify_finds_payload_damage_that_info_does_not_check(tcs, capsys):
    data = bytearray(tcs.read_bytes())
    data[payload_byte(tcs)] ^= 0x10
    bad = tcs.with_name("bad.tcs")
    bad.write_bytes(bytes(data))
    code, out, _ = run(["info", bad], capsys)
    assert code == 0 and "payload was not verified" in out
    code, out, _ = run(["info", bad, "--json"], capsys)
    assert json.loads(out)["payload_verified"] is False
    code, out, _ = run(["verify", tcs, bad], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{tcs}: ok (12 frames in 3 groups") and "FAILED" in lines[1] and "group 1" in lines[1]
    code, out, _ = run(["verify", tcs], capsys)
    assert code == 0
    code, out, _ = run(["verify", "--json", tcs, bad, tcs.with_name("missing.tcs")], capsys)
    results = json.loads(out)
    assert code == 1 and [r["ok"] for r in results] == [True, False, False]
    assert results[0]["frames"] == 12 and "no such file" in results[2]["error"]


def test_every_byte_of_the_file_is_covered_by_a_checksum(tcs):
    good = tcs.read_bytes()
    assert TcsReader(io.BytesIO(good)).check_all() == 3
    for pos in range(len(good)):
        data = bytearray(good)
        data[pos] ^= 0x04
        with pytest.raises(ContainerError):
            TcsReader(io.BytesIO(bytes(data))).check_all()
    with pytest.raises(ContainerError):
        TcsReader(io.BytesIO(good + b"\0")).check_all()


def test_a_flipped_bit_in_the_version_field_is_damage_not_a_newer_version(tcs):
    good = tcs.read_bytes()
    for bit in range(16):
        data = bytearray(good)
        version = struct.unpack_from("<H", data, 8)[0] ^ (1 << bit)
        struct.pack_into("<H", data, 8, version)
        with pytest.raises(ChecksumError, match="corrupt"):
            TcsReader(io.BytesIO(bytes(data)))


def test_compress_verify_refuses_a_file_damaged_on_the_way_to_disk(tcs, capsys, monkeypatch):
    src = tcs.with_name("m.tif")
    out = tcs.with_name("v.tcs")
    code, err_out, err = run(["compress", src, "-B", "4", "-o", out, "--verify"], capsys)
    assert code == 0 and "verified" in err
    out.unlink()
    real = container.TcsWriter._write

    def damaging(self, data):  # a payload bit flipped after its checksum was taken
        if len(data) > 64 and data[:4] not in (container.GROUP_TAG, container.MAGIC[:4], container.TRAILER_TAG):
            data = bytes([data[0] ^ 1]) + data[1:]
        real(self, data)

    monkeypatch.setattr(container.TcsWriter, "_write", damaging)
    code, _, err = run(["compress", src, "-B", "4", "-o", out, "--verify"], capsys)
    assert code == 1 and "failed verification" in err and err.count("\n") == 1
    assert not out.exists() and not list(tcs.parent.glob(".*part"))
    code, _, err = run(["compress", src, "-B", "4", "-o", out], capsys)
    assert code == 0  # without --verify the damage goes unnoticed until decoding
    code, _, err = run(["compress", src, "-B", "4", "-o", "-", "--verify"], capsys)
    assert code == 1 and "--verify needs a file output" in err


def test_damage_messages_name_a_numbered_group_without_an_article():
    from emcodec.container import _the

    assert _the("group 3") == "group 3" and _the("group 2 part 1") == "group 2 part 1"
    assert _the("header") == "the header" and _the("group 3 bad-pixel map") == "the group 3 bad-pixel map"
