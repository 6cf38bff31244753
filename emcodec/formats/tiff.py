"""TIFF movies (multi-page, BigTIFF, ImageJ, OME) through tifffile: reading and writing."""

from __future__ import annotations

import json
import os
import struct
import warnings
import xml.etree.ElementTree as ET

import numpy as np

from ..errors import InputError
from .base import (
    _RESUNIT_TO_A,
    StackInfo,
    StackReader,
    StackWriter,
    _advise_sequential,
    _check_dtype,
    _from_mapped,
    _one_line,
    _pixel_pair,
    _unit_factor,
)


MAX_INFO = 1 << 16  # characters of a source's ImageJ Info kept in the .tcs header


class _TiffReader(StackReader):
    def __init__(self, path: str, name: str, allow_truncated: bool = False):
        import tifffile

        self._allow_truncated = allow_truncated
        try:
            tf = tifffile.TiffFile(path)
        except Exception as e:
            raise _unreadable(path, name, e) from None
        self._tf = tf
        self._mm: np.ndarray | None = None
        self._whole: np.ndarray | None = None
        try:
            self._setup(path, name)
        except InputError:
            tf.close()
            raise
        except Exception as e:
            tf.close()
            raise _unreadable(path, name, e) from None

    def _setup(self, path: str, name: str) -> None:
        tf = self._tf
        if not tf.series:
            raise InputError(f"'{name}' contains no images")
        if len(tf.series) > 1:
            shapes = ", ".join(str(tuple(s.shape)) for s in tf.series[:4])
            raise InputError(
                f"'{name}' holds {len(tf.series)} image series of different shape or type "
                f"({shapes}); emcodec needs a file with one movie"
            )
        s = tf.series[0]
        page0 = s.keyframe
        if page0.samplesperpixel > 1:
            raise InputError(
                f"'{name}' is a colour (RGB/RGBA, {page0.samplesperpixel} samples per pixel) "
                "image; emcodec needs single-channel frames"
            )
        shape = list(s.get_shape(False))
        axes = s.get_axes(False)
        if len(axes) == len(shape):
            shape = [d for d, a in zip(shape, axes) if a != "S"]
        if len(shape) < 2:
            raise InputError(f"'{name}' has an unsupported image shape {tuple(shape)}")
        height, width = shape[-2:]
        rest = shape[:-2]
        if sum(1 for d in rest if d != 1) > 1:
            raise InputError(
                f"'{name}' is a {len(s.shape)}-D stack (axes {s.axes}, shape {tuple(s.shape)}); "
                "emcodec needs a single movie (frames, y, x)"
            )
        n = int(np.prod(rest)) if rest else 1
        if n == 0 or height == 0 or width == 0:
            raise InputError(f"'{name}' has no frames (shape {tuple(s.shape)})")
        dtype = _check_dtype(np.dtype(s.dtype), name)
        self._frame_shape = (height, width)

        stated = n
        cut = _truncation(tf, s, n, height * width * np.dtype(s.dtype).itemsize, path)
        if cut is not None:
            complete, expected = cut
            if not self._allow_truncated or complete == 0:
                of = f"of {expected}" if expected else "(the file does not state how many it held)"
                raise InputError(f"'{name}' is truncated: {complete} complete frame(s) found {of}"
                                 + ("; --allow-truncated compresses those" if complete else ""))
            n = complete
        # a cut compressed file often leaves tifffile a series of its first page only: its
        # complete frames are then read from the file's own pages
        self._file_pages = cut is not None and s.dataoffset is None and len(s.pages) < n
        if s.dataoffset is not None:
            stored = np.dtype(tf.byteorder + np.dtype(s.dtype).char)
            try:
                self._mm = np.memmap(
                    path, stored, "r", int(s.dataoffset), (n, height, width), "C"
                )
            except (ValueError, OSError) as e:
                raise InputError(f"'{name}' is truncated or unreadable: {_one_line(e)}") from None
            _advise_sequential(self._mm)
        # a cut file: its complete pages, one by one
        self._by_page = cut is not None or len(s.pages) in (n, stated)

        extra: dict = {"axes": s.axes}
        for flag in ("imagej", "ome", "bigtiff"):
            if getattr(tf, "is_" + flag, False):
                extra[flag] = True
        comp = getattr(page0.compression, "name", str(page0.compression))
        if comp not in ("NONE", "1"):
            extra["compression"] = comp
        desc = page0.description if hasattr(page0, "description") else ""
        if desc and len(desc) < 2000 and not tf.is_ome:
            extra["description"] = desc
        if dtype.name != np.dtype(s.dtype).name:
            extra["stored_dtype"] = np.dtype(s.dtype).name
        if cut is not None:
            extra["truncated"] = {"complete_frames": cut[0], "expected_frames": cut[1]}
        info = (getattr(tf, "imagej_metadata", None) or {}).get("Info")
        if isinstance(info, str) and info.strip():  # the source's own notes (Fiji: Image > Show Info)
            extra["imagej_info"] = info if len(info) <= MAX_INFO else info[:MAX_INFO] + "\n[truncated by emcodec]"

        self.info = StackInfo(
            n_frames=n,
            height=int(height),
            width=int(width),
            dtype=dtype,
            pixel_size=_tiff_pixel_size(tf),
            source_format="tiff",
            source_name=name,
            extra=extra,
            **_carried(tf),
        )

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        dtype = self.info.dtype
        m = stop - start
        if self._mm is not None:
            return _from_mapped(self._mm[start:stop], dtype)
        if self._by_page:
            if m == 0:
                return np.empty((0, *self._frame_shape), dtype), False
            try:
                arr = self._tf.asarray(key=range(start, stop), series=None if self._file_pages else 0)
            except Exception as e:
                raise InputError(
                    f"'{self.info.source_name}': cannot decode frames {start}-{stop - 1}: "
                    f"{_one_line(e)}"
                ) from None
        else:
            # Pages do not map one-to-one to frames (e.g. volumetric pages): rare, so the
            # series is decoded once and kept rather than streamed.
            if self._whole is None:
                try:
                    self._whole = self._tf.series[0].asarray().reshape(-1, *self._frame_shape)
                except Exception as e:
                    raise InputError(
                        f"'{self.info.source_name}': cannot decode: {_one_line(e)}"
                    ) from None
            return _from_mapped(self._whole[start:stop], dtype)
        arr = arr.reshape(m, *self._frame_shape)
        return (arr if arr.dtype == dtype else arr.astype(dtype)), False

    def close(self) -> None:
        self._mm = None  # views already handed out keep their own mapping alive
        self._whole = None
        self._tf.close()


def _truncation(tf, s, n: int, frame_bytes: int, path: str) -> tuple[int, int | None] | None:
    """(complete frames, frames the file states it holds, None when it states none) of a
    cut-short TIFF; None when whole.

    tifffile reads a cut file as the pages it can reach, often one, without an error: the
    frame count the file states (ImageJ `images`, tifffile's shape), the frame data against
    the file size and the chain of pages running past the end (`_ifd_chain`) tell the truth.
    """
    size = os.path.getsize(path)
    stated, broken = None, False
    ij = getattr(tf, "imagej_metadata", None) or {}
    if isinstance(ij.get("images"), int):
        stated = ij["images"]
    shaped = getattr(tf, "shaped_metadata", None) or ()
    if shaped and isinstance(shaped[0], dict) and len(shaped[0].get("shape") or ()) >= 3:
        try:
            stated = max(stated or 0, int(np.prod(shaped[0]["shape"][:-2])))
        except (TypeError, ValueError):
            pass
    if s.dataoffset is not None:
        # An ImageJ file's frames are contiguous after its first page (ImageJ reads them so); a
        # cut loses the page directories written after the data, and tifffile then offers a
        # one-frame series: the frames the file states are counted, not that series.
        limit = max(n, stated or 0) if getattr(tf, "is_imagej", False) else n
        complete = int(min(limit, max(0, (size - int(s.dataoffset)) // max(1, frame_bytes))))
    else:
        complete = 0
        # a cut compressed file's series may be its first page only: the file's pages count
        pages = s.pages if len(s.pages) >= max(n, stated or 0) else tf.pages
        key = s.keyframe
        for i in range(len(pages)):
            try:
                page = pages[i]
            except Exception:  # noqa: BLE001 - a directory the cut ran through: the pages end here
                break
            ends = [int(o) + int(c) for o, c in zip(getattr(page, "dataoffsets", ()), getattr(page, "databytecounts", ()))]
            if not ends or max(ends) > size or page.shape != key.shape or page.dtype != key.dtype:
                break
            complete += 1
    if s.dataoffset is None or not stated:  # without a stated count only the page chain tells
        chain = _ifd_chain(path)
        if chain is not None and chain[1]:
            complete, broken = min(complete, chain[0]), True
    expected = max(stated or 0, n)
    if expected > complete or broken:
        return complete, stated if stated and stated > complete else None
    return None


def _unreadable(path: str, name: str, exc: Exception) -> InputError:
    """The error for a TIFF that tifffile cannot open: "truncated" when its chain of page
    directories runs past the end of the file (a cut inside a directory makes tifffile
    report a corrupt structure, not a short file)."""
    chain = _ifd_chain(path)
    if chain is not None and chain[1]:
        return InputError(f"'{name}' is truncated: it ends inside frame {chain[0] + 1}, and tifffile cannot "
                          f"read the {chain[0]} frame(s) before it")
    return InputError(f"'{name}' is not a readable TIFF file: {_one_line(exc)}")


MAX_CHAIN = 1 << 24  # page directories followed before a chain is taken as a loop
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_DATA_TAGS = ((273, 279), (324, 325))  # (Strip|Tile)Offsets, (Strip|Tile)ByteCounts
_UINTS = {3: "u2", 4: "u4", 13: "u4", 16: "u8"}


def _ifd_chain(path: str) -> tuple[int, bool] | None:
    """(pages wholly inside the file, whether the file ends inside a page), read from the
    TIFF structure itself; None when it does not start as a TIFF.

    A page is whole when its directory, the tag values it points to and its strips or
    tiles all lie inside the file. tifffile stops quietly at the first page it cannot read
    (or reports a corrupt structure), so without a stated frame count this is what tells a
    cut file from a short movie.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(16)
            order = {b"II": "<", b"MM": ">"}.get(head[:2])
            if order is None or len(head) < 8:
                return None
            version = struct.unpack(order + "H", head[2:4])[0]
            if version == 42:
                offset, count, entry, first = "I", "H", 12, struct.unpack(order + "I", head[4:8])[0]
            elif version == 43 and len(head) == 16:
                offset, count, entry, first = "Q", "Q", 20, struct.unpack(order + "Q", head[8:16])[0]
            else:
                return None
            osize, csize = struct.calcsize(offset), struct.calcsize(count)
            tag = struct.Struct(order + "HH" + offset)
            pages, at, seen, whole = 0, first, set(), None
            while at:
                if at in seen or pages >= MAX_CHAIN:
                    return pages, False  # a loop is damage, not a cut
                seen.add(at)
                if at + csize > size:
                    return whole if whole is not None else pages, True
                f.seek(at)
                n = struct.unpack(order + count, f.read(csize))[0]
                end = at + csize + n * entry + osize
                if end > size:
                    return whole if whole is not None else pages, True
                raw = f.read(n * entry + osize)
                values, inside = {}, True
                for i in range(n):
                    code, kind, many = tag.unpack_from(raw, i * entry)
                    nbytes = _TYPE_SIZES.get(kind, 1) * many
                    if nbytes <= osize:
                        values[code] = (kind, many, raw[i * entry + tag.size : i * entry + tag.size + nbytes])
                        continue
                    where = struct.unpack_from(order + offset, raw, i * entry + tag.size)[0]
                    if where + nbytes > size:
                        inside = False
                    elif code in (273, 279, 324, 325):
                        f.seek(where)
                        values[code] = (kind, many, f.read(nbytes))
                inside = inside and _data_inside(values, order, size)
                # a cut loses a run of pages at the end; one bad page followed by good ones is not a cut
                whole = None if inside else (pages if whole is None else whole)
                at = struct.unpack_from(order + offset, raw, n * entry)[0]
                pages += 1
            return (whole, True) if whole is not None else (pages, False)
    except (OSError, struct.error, ValueError):
        return None


def _data_inside(values: dict, order: str, size: int) -> bool:
    """Whether a page's strips or tiles end inside the file (no data tags: nothing to check)."""
    for offsets, counts in _DATA_TAGS:
        if offsets in values and counts in values:
            (k1, n1, b1), (k2, n2, b2) = values[offsets], values[counts]
            if k1 not in _UINTS or k2 not in _UINTS or n1 != n2:
                return True  # an odd layout: no claim either way
            o = np.frombuffer(b1, order + _UINTS[k1]).astype(np.uint64)
            c = np.frombuffer(b2, order + _UINTS[k2]).astype(np.uint64)
            return bool((o + c <= size).all())
    return True


def _carried(tf) -> dict:
    """Frame time, pixel unit and source metadata as emcodec writes them (ImageJ 'finterval',
    'unit' and a Property; or the emcodec entry of tifffile's JSON description)."""
    out: dict = {}
    em: dict = {}
    if tf.is_imagej:
        ij = tf.imagej_metadata or {}
        unit = ij.get("unit")
        em = {"frame_time": ij.get("finterval"), "pixel_unit": unit if _unit_factor(unit) else None}
        props = ij.get("Properties") or {}
        raw = props.get(SOURCE_METADATA) if isinstance(props, dict) else None
        if isinstance(raw, str):
            try:
                em["source_metadata"] = json.loads(raw)
            except ValueError:
                pass
    elif tf.is_shaped:
        for md in tf.shaped_metadata or ():
            if isinstance(md, dict) and isinstance(md.get("emcodec"), dict):
                em = md["emcodec"]
    ft = em.get("frame_time")
    if isinstance(ft, (int, float)) and ft > 0:
        out["frame_time"] = float(ft)
    if isinstance(em.get("pixel_unit"), str) and _unit_factor(em["pixel_unit"]):
        out["pixel_unit"] = _clean_unit(em["pixel_unit"])
    if isinstance(em.get("source_metadata"), dict):
        out["metadata"] = em["source_metadata"]
    return out


def _clean_unit(unit: str) -> str:
    """ImageJ's spelling of a unit ('micron', '\\u00B5m') as emcodec states units ('µm')."""
    return {1e4: "µm", 10.0: "nm", 1.0: "Å", 0.01: "pm"}.get(_unit_factor(unit), unit)


def _tiff_pixel_size(tf) -> tuple[float, float] | None:
    """OME PhysicalSize first, then ImageJ unit + resolution, then ResolutionUnit tags."""
    if tf.is_ome:
        try:
            ps = _ome_pixel_size(tf.ome_metadata)
        except Exception:
            ps = None
        if ps is not None:
            return ps
    tags = tf.pages[0].tags
    xr = tags.get("XResolution")
    yr = tags.get("YResolution")

    def per_unit(tag) -> float | None:
        if tag is None:
            return None
        num, den = tag.value
        return (den / num) if num else None

    x, y = per_unit(xr), per_unit(yr)
    if x is None and y is None:
        return None
    factor = None
    if tf.is_imagej:
        factor = _unit_factor((tf.imagej_metadata or {}).get("unit"))
    if factor is None:
        ru = tags.get("ResolutionUnit")
        factor = _RESUNIT_TO_A.get(int(ru.value) if ru is not None else 2)
        # baseline default unit is inch; a 1/1 resolution with no tag is "not stated" though
        if ru is None and xr is not None and tuple(xr.value) == (1, 1):
            factor = None
    if factor is None:
        return None
    return _pixel_pair(None if x is None else x * factor, None if y is None else y * factor)


def _ome_pixel_size(xml: str) -> tuple[float, float] | None:
    root = ET.fromstring(xml)
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Pixels":
            vals = []
            for ax in ("X", "Y"):
                v = el.get("PhysicalSize" + ax)
                f = _unit_factor(el.get(f"PhysicalSize{ax}Unit", "µm"))
                vals.append(float(v) * f if v is not None and f is not None else None)
            return _pixel_pair(*vals)
    return None


SOURCE_METADATA = "emcodec.source_metadata"  # ImageJ Property holding the source's metadata (JSON)
# ImageJ length units emcodec writes, by the source's unit (ImageJ reads 'micron' for µm)
_IMAGEJ_UNITS = {"pm": "pm", "nm": "nm", "um": "micron", "µm": "micron", "μm": "micron", "micron": "micron"}


def _tiff_needs_bigtiff(n_frames: int | None, frame_bytes: int) -> bool:
    if n_frames is None:
        return True
    # data + one IFD (a few hundred bytes) per page must fit 32-bit offsets
    return n_frames * (frame_bytes + 512) + 2**20 >= 2**32


def _in_description(labels, description: str) -> bool:
    """Whether the description already holds every label (decompress writes its provenance
    as both: once in a TIFF is enough, Fiji shows Info and Properties side by side)."""
    return bool(description) and all(lab in description for lab in labels)


class _TiffStackWriter(StackWriter):
    """ImageJ hyperstack (axes TYX, unit nm, description in 'Info') for uint8/uint16/int16/
    float32 under 4 GB: Fiji then shows the calibration. Other dtypes, bigger data or an
    unknown frame count: tifffile's shaped (JSON) format with centimetre resolution tags, and
    BigTIFF when needed. With a known count the header is written first and the frames are
    appended as raw bytes, so each write is one plain file write."""

    _IMAGEJ_DTYPES = {np.dtype(t) for t in ("uint8", "uint16", "int16", "float32")}

    def __init__(self, target, tmp, *, pixel_size, description, labels, frame_time=None, pixel_unit=None,
                 source_metadata=None, **kw):
        super().__init__(target, tmp, **kw)
        import tifffile

        self._fh = None
        self._tw = None
        frame_bytes = self.height * self.width * self.dtype.itemsize
        bigtiff = _tiff_needs_bigtiff(self.n_frames, frame_bytes)
        imagej = not bigtiff and self.dtype in self._IMAGEJ_DTYPES
        self._file_dtype = self.dtype.newbyteorder("<")
        opts: dict = {}
        if imagej:
            md: dict = {"axes": "TYX"}
            if description:
                md["Info"] = description
            props = {}
            if labels and not _in_description(labels, description):  # provenance written once
                props["emcodec.labels"] = "\n".join(labels)
            if source_metadata:
                props[SOURCE_METADATA] = json.dumps(source_metadata)
            if props:
                md["Properties"] = props
            if pixel_size is not None:
                unit = _IMAGEJ_UNITS.get((pixel_unit or "").lower(), "nm")
                per_a = _unit_factor(unit)
                md["unit"] = unit
                opts["resolution"] = (per_a / pixel_size[0], per_a / pixel_size[1])
            if frame_time:
                md["finterval"] = float(frame_time)
        else:
            em: dict = {}
            if description:
                em["description"] = description
            if labels and not _in_description(labels, description):
                em["labels"] = list(labels)
            if frame_time:
                em["frame_time"] = float(frame_time)
            if pixel_unit and pixel_size is not None:
                em["pixel_unit"] = pixel_unit
            if source_metadata:
                em["source_metadata"] = source_metadata
            md = {"emcodec": em} if em else {}
            if self.n_frames is not None:
                md["axes"] = "TYX"
            if pixel_size is not None:
                opts["resolution"] = (1e8 / pixel_size[0], 1e8 / pixel_size[1])
                opts["resolutionunit"] = "CENTIMETER"
        self._imagej = imagej
        self._opts = dict(opts, metadata=md, photometric="minisblack")
        tw = tifffile.TiffWriter(tmp, bigtiff=bigtiff, imagej=imagej, byteorder="<")
        if self.n_frames is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    offset, _ = tw.write(
                        None,
                        shape=(self.n_frames, self.height, self.width),
                        dtype=self._file_dtype,
                        returnoffset=True,
                        **self._opts,
                    )
            finally:
                tw.close()
            self._fh = open(tmp, "r+b")
            self._fh.seek(offset)
        else:
            self._tw = tw

    def _write_frames(self, frames: np.ndarray) -> None:
        frames = np.ascontiguousarray(frames, dtype=self._file_dtype)
        if self._fh is not None:
            self._fh.write(memoryview(frames).cast("B"))
        else:
            for f in frames:  # tifffile extends a contiguous series one page at a time
                self._tw.write(f, contiguous=True, **self._opts)

    def _finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tw is not None:
            self._tw.close()
            self._tw = None

    def _close_quietly(self) -> None:
        for obj in (self._fh, self._tw):
            if obj is not None:
                try:
                    obj.close()
                except Exception:
                    pass
        self._fh = self._tw = None




Writer = _TiffStackWriter


def open_reader(path: str, name: str, options, fmt: str = "") -> StackReader:
    return _TiffReader(path, name, getattr(options, "allow_truncated", False))


def read_description(path: str, name: str) -> str:
    """ImageJ 'Info' (what Fiji shows under Image > Show Info), or the emcodec entry of a
    tifffile JSON description, or else the plain ImageDescription."""
    with _TiffReader(path, name) as r:
        tf = r._tf
        if tf.is_imagej:
            return str((tf.imagej_metadata or {}).get("Info", ""))
        if tf.is_ome:
            return ""
        if tf.is_shaped:
            for md in tf.shaped_metadata or ():
                em = md.get("emcodec") if isinstance(md, dict) else None
                if isinstance(em, dict) and "description" in em:
                    return str(em["description"])
        desc = tf.pages[0].description or ""
        return "" if desc.lstrip().startswith("{") else desc
