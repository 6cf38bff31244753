"""The standard codecs emcodec is compared with, each a thin wrapper over a maintained library.

Every baseline works on "codes": the movie mapped linearly to its bit depth
(code = (x - lo) * scale). That conversion is done once, outside the timed encode (issue 4:
a baseline's conversion is not its encoding cost). A baseline exposes one quality knob and
says which way it moves the size, so one search (matching.py) serves all of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

# SVT-AV1 prints a banner per encoder to stderr unless told otherwise.
os.environ.setdefault("SVT_LOG", "1")


@dataclass
class Scale:
    """Linear map between movie values and a codec's integer codes."""

    lo: float
    scale: float
    bits: int

    @classmethod
    def for_movie(cls, frames: np.ndarray, bits: int, *, by_max: bool = True) -> "Scale":
        """Codes span 0..2**bits-1 over [min(0, movie min), movie max] ("scaled by the movie max")."""
        lo = min(0.0, float(np.min(frames))) if by_max else float(np.min(frames))
        hi = float(np.max(frames))
        top = (1 << bits) - 1
        return cls(lo, top / (hi - lo) if hi > lo else 1.0, bits)

    def encode(self, frames: np.ndarray) -> np.ndarray:
        top = (1 << self.bits) - 1
        codes = np.rint((np.asarray(frames, dtype=np.float64) - self.lo) * self.scale)
        return np.clip(codes, 0, top).astype(np.uint8 if self.bits <= 8 else np.uint16)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return codes.astype(np.float64) / self.scale + self.lo


class Baseline:
    """One codec: `encode(codes, knob) -> list[bytes]`, `decode(payloads, shape) -> codes`.

    knob_range:   (low, high) of the quality knob.
    knob_step:    the knob's granularity (1: integers only; None: continuous).
    more_bytes_when_larger: True if a larger knob value gives a larger output.
    """

    name = ""
    label = ""
    library = ""
    bits = 8
    knob = "quality"
    knob_range: tuple[float, float] = (1, 100)
    knob_step: float | None = 1
    more_bytes_when_larger = True
    log_knob = False  # search the knob on a log scale
    video = False

    def available(self) -> bool:
        raise NotImplementedError

    def missing_note(self) -> str:
        return f"{self.name}: skipped, {self.library} is not installed"

    def scale_for(self, frames: np.ndarray) -> Scale:
        return Scale.for_movie(frames, self.bits)

    def settings(self) -> dict:
        """Fixed parameters other than the knob, recorded in the report."""
        return {}

    def encode(self, codes: np.ndarray, knob) -> list[bytes]:
        """Every byte the codec needs to decode the frames; their total is its size."""
        raise NotImplementedError

    def decode(self, payloads: list[bytes], shape: tuple[int, int, int]) -> np.ndarray:
        raise NotImplementedError


# ---------------------------------------------------------------- still-image codecs


def _imagecodecs():
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs


class _ImageCodec(Baseline):
    """Each frame coded alone; the total is the sum of the per-frame files."""

    library = "imagecodecs"
    _flag = ""

    def available(self) -> bool:
        ic = _imagecodecs()
        return bool(ic is not None and getattr(getattr(ic, self._flag, None), "available", False) is True)

    def encode(self, codes, knob):
        return [self._encode_frame(c, knob) for c in codes]

    def decode(self, payloads, shape):
        out = np.empty(shape, dtype=np.uint8 if self.bits <= 8 else np.uint16)
        for i, p in enumerate(payloads):
            out[i] = self._decode_frame(p)
        return out


class Jpeg8(_ImageCodec):
    """Baseline JPEG, 8 bits scaled by the movie max (the paper's protocol), libjpeg-turbo."""

    name, label, bits, _flag = "jpeg", "JPEG 8-bit (libjpeg-turbo)", 8, "JPEG8"

    def settings(self):
        return {"subsampling": "none (gray)", "optimize": False}

    def _encode_frame(self, c, knob):
        return bytes(_imagecodecs().jpeg8_encode(c, level=int(knob)))

    def _decode_frame(self, p):
        return _imagecodecs().jpeg8_decode(p)


class Jpeg12(Jpeg8):
    """12-bit JPEG through libjpeg-turbo 3's 12-bit path, where the build has it.

    Its quantisation tables are clamped to baseline values (<= 255) while 12-bit DCT
    coefficients are 16x larger, so even quality 1 stays at a few bits per pixel.
    """

    name, label, bits = "jpeg12", "JPEG 12-bit (libjpeg-turbo)", 12

    def available(self) -> bool:
        if not super().available():
            return False
        ic = _imagecodecs()
        try:  # the flag does not say whether 12-bit was compiled in; a tiny encode does
            probe = np.arange(64, dtype=np.uint16).reshape(8, 8) * 60
            return ic.jpeg8_decode(ic.jpeg8_encode(probe, level=90, bitspersample=12)).dtype == np.uint16
        except Exception:  # noqa: BLE001 - any failure means "not usable here"
            return False

    def missing_note(self):
        return "jpeg12: skipped, this imagecodecs/libjpeg-turbo build has no 12-bit JPEG"

    def _encode_frame(self, c, knob):
        return bytes(_imagecodecs().jpeg8_encode(c, level=int(knob), bitspersample=12))


class Jpeg2000(_ImageCodec):
    """JPEG 2000 (OpenJPEG), 16-bit; imagecodecs' level is the target PSNR of the layer in dB."""

    name, label, bits, _flag = "jpeg2000", "JPEG 2000 16-bit (OpenJPEG)", 16, "JPEG2K"
    knob, knob_range, knob_step = "psnr_target_db", (20.0, 140.0), None

    def settings(self):
        return {"reversible": False, "codecformat": "j2k"}

    def _encode_frame(self, c, knob):
        return bytes(_imagecodecs().jpeg2k_encode(c, level=float(knob), codecformat="j2k", numthreads=1))

    def _decode_frame(self, p):
        return _imagecodecs().jpeg2k_decode(p)


class JpegXL(_ImageCodec):
    """JPEG XL (libjxl), 16-bit, knob = butteraugli distance (larger = fewer bytes), effort 7."""

    name, label, bits, _flag = "jpegxl", "JPEG XL 16-bit (libjxl)", 16, "JPEGXL"
    knob, knob_range, knob_step, more_bytes_when_larger = "distance", (0.05, 25.0), None, False
    log_knob = True
    effort = 7

    def settings(self):
        return {"effort": self.effort, "numthreads": 1}

    def _encode_frame(self, c, knob):
        return bytes(_imagecodecs().jpegxl_encode(c, distance=float(knob), effort=self.effort, numthreads=1))

    def _decode_frame(self, p):
        return _imagecodecs().jpegxl_decode(p)


# ---------------------------------------------------------------- video codecs (PyAV)


def _av():
    try:
        import av
    except ImportError:
        return None
    return av


class _VideoCodec(Baseline):
    """The frame sequence as one video stream, in memory; the total is every packet plus
    the codec's extradata (the bitstream alone, no container: the baseline's best case)."""

    library = "PyAV"
    video = True
    bits = 10
    # CRF is fractional in x264/x265 (and in quarter steps in SVT-AV1): on noisy movies one
    # integer step can change the size by 1.7x, too coarse to match bytes.
    knob, knob_range, knob_step, more_bytes_when_larger = "crf", (0, 51), 0.25, False
    encoder = ""
    decoder = ""
    pix_fmt = "gray10le"
    options: dict = {}

    def available(self) -> bool:
        av = _av()
        if av is None:
            return False
        try:
            enc = av.codec.Codec(self.encoder, "w")
            av.codec.Codec(self.decoder, "r")
        except Exception:  # noqa: BLE001 - codec not in this FFmpeg build
            return False
        return self.pix_fmt in {f.name for f in (enc.video_formats or [])}

    def missing_note(self):
        if _av() is None:
            return f"{self.name}: skipped, PyAV (av) is not installed"
        return f"{self.name}: skipped, this PyAV/FFmpeg build lacks the {self.encoder} encoder or {self.decoder} decoder"

    def settings(self):
        return {"encoder": self.encoder, "decoder": self.decoder, "pix_fmt": self.pix_fmt, **self.options}

    def _frame(self, av, code: np.ndarray):
        h, w = code.shape
        frame = av.VideoFrame(w, h, self.pix_fmt)
        for i, plane in enumerate(frame.planes):
            row = plane.line_size // 2
            buf = np.full((plane.height, row), 1 << (self.bits - 1), dtype=np.uint16)  # neutral chroma
            if i == 0:
                buf[:, :w] = code
            plane.update(buf.tobytes())
        return frame

    def _knob_options(self, knob) -> dict:
        return {"crf": f"{knob:g}"}

    def encode(self, codes, knob):
        av = _av()
        n, h, w = codes.shape
        ctx = av.CodecContext.create(self.encoder, "w")
        ctx.width, ctx.height, ctx.pix_fmt = w, h, self.pix_fmt
        ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25, 1)
        ctx.options = {**self._knob_options(knob), **self.options}
        out: list[bytes] = []
        for i, code in enumerate(codes):
            frame = self._frame(av, code)
            frame.pts = i
            out.extend(bytes(p) for p in ctx.encode(frame))
        out.extend(bytes(p) for p in ctx.encode(None))
        return [bytes(ctx.extradata or b"")] + out  # first item: out-of-band headers (often empty)

    def decode(self, payloads, shape):
        av = _av()
        n, h, w = shape
        ctx = av.CodecContext.create(self.decoder, "r")
        extra, *packets = payloads
        if extra:
            ctx.extradata = extra
        frames = []
        for p in packets:
            frames.extend(ctx.decode(av.Packet(p)))
        frames.extend(ctx.decode(None))
        out = np.empty(shape, dtype=np.uint16)
        for i, f in enumerate(frames[:n]):
            plane = f.planes[0]
            out[i] = np.frombuffer(bytes(plane), dtype=np.uint16).reshape(f.height, plane.line_size // 2)[:, :w]
        if len(frames) < n:
            raise RuntimeError(f"{self.name}: decoder returned {len(frames)} of {n} frames")
        return out


class H264(_VideoCodec):
    name, label, encoder, decoder = "h264", "H.264 10-bit gray (x264)", "libx264", "h264"
    options = {"preset": "medium"}


class H265(_VideoCodec):
    name, label, encoder, decoder = "h265", "H.265 10-bit gray (x265)", "libx265", "hevc"
    options = {"preset": "medium", "x265-params": "log-level=error"}


class AV1(_VideoCodec):
    """SVT-AV1 takes 4:2:0 only: luma carries the movie, chroma is flat (costs almost nothing)."""

    name, label, encoder, decoder = "av1", "AV1 10-bit (SVT-AV1)", "libsvtav1", "libdav1d"
    pix_fmt = "yuv420p10le"
    knob_range = (1, 63)
    options = {"preset": "8"}

    def _knob_options(self, knob) -> dict:
        # FFmpeg's own crf option is integer-only. lp=1: one encoding thread team. With the
        # default, SVT-AV1 once stalled for good inside svt_av1_enc_get_packet (every thread
        # asleep, 40 min) in a benchmark on 2 shared cores, as its 3.1 deadlock reports describe;
        # the bytes are the same either way (checked at CRF 20 and 40).
        return {"svtav1-params": f"crf={knob:g}:lp=1"}


ALL = [Jpeg8(), Jpeg12(), Jpeg2000(), JpegXL(), H264(), H265(), AV1()]
BY_NAME = {b.name: b for b in ALL}


def get_baselines(names: list[str]) -> list[Baseline]:
    """Baselines by name, in the order given; unknown names are an error."""
    from ..errors import EmcodecError

    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise EmcodecError(f"unknown baseline {', '.join(unknown)} (choose from {', '.join(BY_NAME)})")
    return [BY_NAME[n] for n in names]


def library_versions() -> dict:
    """Versions of everything that produced a number in the report."""
    import platform

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("torch", "zstandard", "tifffile", "skimage", "matplotlib"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - not installed: not used
            pass
    ic = _imagecodecs()
    if ic is not None:
        versions["imagecodecs"] = ic.__version__
        for part in ic.version().split(", "):
            lib, _, ver = part.partition("-")
            if lib in ("libjpeg_turbo", "openjpeg", "libjxl"):
                versions[lib] = ver
    av = _av()
    if av is not None:
        versions["av"] = av.__version__
        versions["ffmpeg"] = {k: ".".join(map(str, v)) for k, v in av.library_versions.items()
                              if k in ("libavcodec", "libavutil")}
    return versions
