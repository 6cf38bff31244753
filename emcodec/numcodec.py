"""A numcodecs codec, so zarr pipelines can store movies as TCS measurements.

Registered under the id ``emcodec_tcs`` by the ``numcodecs.codecs`` entry point, so
``numcodecs.get_codec({"id": "emcodec_tcs", "B": 10})`` finds it once emcodec is installed.
Use it as the filter of a zarr (format 2) array chunked one group of B frames per chunk:

    zarr.create_array(store, shape=(n, h, w), chunks=(10, h, w), dtype="uint16",
                      filters=[TcsCodec(B=10)], compressors=None, zarr_format=2)
"""

from __future__ import annotations

import io

import numpy as np
from numcodecs.abc import Codec

PER_GROUP_METHODS = ("tcsdl", "gap-tv")


class TcsCodec(Codec):
    """Each chunk (frames, y, x) becomes one small .tcs file; decoding is lossy.

    A codec sees one chunk at a time, so it cannot see the neighbouring chunks that the
    movie decoder fuses along the motion: chunks are decoded with a per-group method
    (``tcsdl``, the shipped network, GAP-TV where no weights exist for B; or ``gap-tv``).
    For the motion-compensated decode, keep the .tcs file and use ``emcodec.open(path)``.
    """

    codec_id = "emcodec_tcs"

    def __init__(self, B: int = 10, seed: int = 0, quantize: str | float = "auto", level: int = 1,
                 method: str = "tcsdl", threads: int | None = 1):
        from .encoder import check_B

        check_B(B)
        if method not in PER_GROUP_METHODS:
            raise ValueError(f"TcsCodec decodes one chunk at a time: method must be one of "
                             f"{', '.join(PER_GROUP_METHODS)}, not {method!r}")
        self.B, self.seed, self.quantize, self.level = int(B), int(seed), quantize, int(level)
        self.method, self.threads = method, threads
        self._decoder = None

    def get_config(self) -> dict:
        return {"id": self.codec_id, "B": self.B, "seed": self.seed, "quantize": self.quantize,
                "level": self.level, "method": self.method, "threads": self.threads}

    def encode(self, buf) -> bytes:
        from .codec import compress
        from .formats.array import ArrayReader

        frames = np.asarray(buf)
        if frames.ndim != 3:
            raise ValueError(f"TcsCodec encodes chunks of (frames, y, x), got shape {frames.shape}")
        out = io.BytesIO()
        compress(ArrayReader(frames, name="zarr chunk"), out, B=self.B, seed=self.seed, quantize=self.quantize,
                 level=self.level)
        return out.getvalue()

    def decode(self, buf, out=None) -> np.ndarray:
        from .container import TcsReader
        from .reader import decode_range

        reader = TcsReader(io.BytesIO(bytes(memoryview(buf))))
        decoder, device = self._ready(reader.header.B)
        frames, _ = decode_range(reader, decoder, self.method, 0, reader.trailer.frame_count, device)
        if out is not None:
            np.copyto(np.asarray(out).reshape(frames.shape), frames)
            return out
        return frames

    def _ready(self, B: int):
        """The per-group decoder, built once per codec (the weights load here)."""
        from .codec import choose_decoder
        from .decoders.base import resolve_device, set_cpu_threads

        if self._decoder is None:
            set_cpu_threads(self.threads)
            self._decoder = choose_decoder(self.method, B, lambda message: None)
        return self._decoder, resolve_device("cpu")
