"""Structure-aware fuzzing: fields set to awkward values behind valid checksums (issue 16, item 7).

Only emcodec's own errors may escape, and a decode that succeeds must give finite frames
that are not all zero. benchmarks/fuzz.py runs the same mutations on many more files.
"""

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emcodec import codec, fuzz
from emcodec.errors import EmcodecError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12)
known_keys = st.sampled_from(["pixel_size", "source_name", "source_format", "pixel_unit", "frame_time",
                              "original_metadata", "source_extra", "quantize", "scene_cuts"])
metadata = (st.dictionaries(known_keys, json_values, max_size=3) | json_values
            | st.integers(1, 3000).map(lambda n: ("[" * n + "]" * n).encode()))
field_values = st.sampled_from(fuzz.INTS) | st.sampled_from(fuzz.FLOATS) | st.integers(-(2**64), 2**64)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """A quantised uint16 file with a short last group, and a lossless float32 file."""
    folder = tmp_path_factory.mktemp("fuzz")
    return folder, fuzz.base_files(folder)


def decode_checked(path, out) -> str:
    """'refused' or 'decoded' (after checking the output); anything else escapes to the test."""
    try:
        codec.info(path)
        codec.decompress(path, out, method="gap-tv", device="cpu", threads=1, force=True)
    except EmcodecError:
        return "refused"
    frames = tifffile.imread(out).astype(np.float64)
    assert np.isfinite(frames).all() and np.any(frames != 0)
    return "decoded"


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(["u16", "f32"]), data=st.data())
def test_crafted_fields_end_in_emcodec_errors_or_good_frames(bases, base, data):
    folder, files = bases
    good = files[base]
    if data.draw(st.integers(0, 5)) == 0:
        crafted = fuzz.set_metadata(good, data.draw(metadata))
    else:
        field = data.draw(st.sampled_from(fuzz.FIELDS))
        crafted = fuzz.set_field(good, field, data.draw(field_values), which=data.draw(st.integers(0, 7)))
    path = folder / "crafted.tcs"
    path.write_bytes(crafted)
    decode_checked(path, folder / "crafted.tif")
    assert isinstance(codec.verify(path)["ok"], bool)  # verify reports, it never raises


def test_the_fuzzer_reaches_behind_the_checksums(bases):
    """Sanity: unchanged files decode, and a crafted one passes every CRC but is refused."""
    folder, files = bases
    for name, good in files.items():
        (folder / "g.tcs").write_bytes(good)
        assert decode_checked(folder / "g.tcs", folder / "g.tif") == "decoded"
    crafted = fuzz.set_field(files["u16"], ("trailer", "value_min", "d", 16), 0.0)
    crafted = fuzz.set_field(crafted, ("trailer", "value_max", "d", 24), 1.0)  # every frame would clip to 0..1
    (folder / "c.tcs").write_bytes(crafted)
    assert codec.verify(folder / "c.tcs")["ok"]  # every checksum matches
    assert decode_checked(folder / "c.tcs", folder / "c.tif") == "refused"
