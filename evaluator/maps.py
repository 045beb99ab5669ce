"""Safe readers for anomaly-map files (SPEC §4): ``.npy``, ``.tiff``, 16-bit ``.png``.

A map file comes from whoever made the submission, so it is read as untrusted
input: the size the header claims is checked against the file size and a sane
limit before the body is read, ``.npy`` files are never unpickled, images are
decoded only after their mode and size are known to be right, and the values
must be finite. Every refusal is a :class:`MapError` whose message is one line
saying what is wrong and how to fix it (the caller adds the file name).

Accepted formats (higher value = more anomalous):

- ``.npy``: 2-D float16 or float32 (either byte order, C or Fortran order);
- ``.tiff``: one frame, Pillow mode ``F`` (32-bit float), as MVTec AD's maps;
- ``.png``: 16-bit grayscale (Pillow modes ``I;16``/``I;16B``/``I``),
  value / 65535, giving float32 in [0, 1].
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np

from contract.files import sha256_bytes

MAP_SUFFIXES = (".npy", ".png", ".tiff")
MAX_SIDE = 8192
"""Largest accepted height or width of a map (pixels)."""
_MAX_NPY_HEADER = 10_000
# Largest plausible file: a float32 MAX_SIDE² map plus a generous header / container overhead.
MAX_FILE_BYTES = MAX_SIDE * MAX_SIDE * 4 + (1 << 20)
_NPY_DTYPES = (np.dtype("<f2"), np.dtype(">f2"), np.dtype("<f4"), np.dtype(">f4"))
_PNG_MODES = ("I;16", "I;16B", "I;16L", "I")


class MapError(ValueError):
    """A map file that cannot be accepted; the message is one line without the file name."""


def _check_shape(shape: tuple) -> tuple[int, int]:
    if len(shape) != 2:
        raise MapError(f"map must be 2-D (height, width), got shape {tuple(shape)}; squeeze channel/batch axes")
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise MapError(f"empty map of shape ({h}, {w})")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise MapError(f"map of shape ({h}, {w}) exceeds the {MAX_SIDE}x{MAX_SIDE} limit; save it at the evaluation size")
    return h, w


def _check_finite(arr: np.ndarray) -> np.ndarray:
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(arr.size - finite.sum() - n_nan)
        raise MapError(f"map has {n_nan} NaN and {n_inf} infinite value(s); every value must be finite")
    return arr


def _npy_header(fp) -> tuple[tuple[int, int], bool, np.dtype, int]:
    """Parse and check a ``.npy`` header: ``(shape, fortran_order, dtype, body offset)``.

    Reads only the header (never unpickles); refuses object/record dtypes,
    dtypes other than float16/float32, and shapes that are not sane 2-D maps.
    """
    try:
        version = np.lib.format.read_magic(fp)
    except (ValueError, EOFError):
        raise MapError("not a .npy file (bad magic bytes); write it with numpy.save") from None
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise MapError(f".npy format version {version[0]}.{version[1]} is not supported; write it with numpy.save")
    try:
        shape, fortran, dtype = readers[version](fp, max_header_size=_MAX_NPY_HEADER)
    except Exception as e:  # numpy's header parser raises ValueError, SyntaxError, TokenError, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MapError(f"corrupt .npy header ({msg})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise MapError(f".npy holds dtype {dtype} (objects/records are refused); save a float16 or float32 array")
    shape = _check_shape(shape)
    if dtype not in _NPY_DTYPES:
        raise MapError(f"map dtype is {dtype.name}; save it as float16 or float32")
    return shape, bool(fortran), dtype, fp.tell()


def _check_npy_size(shape: tuple[int, int], dtype: np.dtype, offset: int, total: int) -> int:
    """Number of elements, after checking that the body is exactly what the header claims."""
    count = shape[0] * shape[1]
    expected, got = count * dtype.itemsize, total - offset
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise MapError(f".npy file {what}: header says {shape} {dtype.name} = {expected} bytes, body has {got}")
    return count


def _npy_array(data: bytes, shape: tuple[int, int], fortran: bool, dtype: np.dtype, offset: int) -> np.ndarray:
    count = _check_npy_size(shape, dtype, offset, len(data))
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(arr, dtype=dtype.newbyteorder("="))


def _decode_npy(data: bytes) -> np.ndarray:
    return _npy_array(data, *_npy_header(io.BytesIO(data)))


def _open_image(data: bytes, fmt: str):
    from PIL import Image, UnidentifiedImageError

    try:
        # Pillow warns (DecompressionBombWarning) before it would refuse; our own size limit decides.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data), formats=[fmt])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise MapError(f"not a readable {fmt} file") from None
    return im


def _decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    im = _open_image(data, "PNG")
    if im.mode not in _PNG_MODES:
        raise MapError(f"PNG mode {im.mode} (8-bit, colour or palette); save a 16-bit grayscale PNG (uint16 array)")
    w, h = im.size
    _check_shape((h, w))
    try:
        im.verify()  # chunk CRCs and IEND: catches truncation that decoding alone may miss
        im = Image.open(io.BytesIO(data), formats=["PNG"])
        im.load()
    except Exception as e:  # Pillow raises many types on corrupt data; all mean "bad file"
        raise MapError(f"corrupt or truncated PNG ({e})") from None
    arr = np.asarray(im)
    if arr.dtype.kind not in "iu" or arr.shape != (h, w) or arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
        raise MapError("PNG is not 16-bit grayscale; save a uint16 array")
    return (arr.astype(np.float32) / np.float32(65535)).astype(np.float32)


def _decode_tiff(data: bytes) -> np.ndarray:
    im = _open_image(data, "TIFF")
    if getattr(im, "n_frames", 1) != 1:
        raise MapError(f"TIFF has {im.n_frames} frames; save exactly one float32 frame")
    if im.mode != "F":
        raise MapError(f"TIFF mode {im.mode}; save a 32-bit float TIFF (Pillow mode F, float32 array)")
    w, h = im.size
    _check_shape((h, w))
    try:
        im.load()
    except Exception as e:  # corrupt data surfaces as assorted Pillow errors
        raise MapError(f"corrupt or truncated TIFF ({e})") from None
    arr = np.asarray(im, dtype=np.float32)
    if arr.shape != (h, w):
        raise MapError(f"TIFF decodes to shape {arr.shape}; save a single-channel float32 TIFF")
    return np.ascontiguousarray(arr)


_DECODERS = {".npy": _decode_npy, ".png": _decode_png, ".tiff": _decode_tiff}


def decode_map(data: bytes, suffix: str) -> np.ndarray:
    """Decode the bytes of a map file of type ``suffix`` to a finite 2-D float16/float32 array."""
    if suffix not in _DECODERS:
        raise MapError(f"unknown map type {suffix!r}; use one of {', '.join(MAP_SUFFIXES)}")
    if not data:
        raise MapError("empty (zero-byte) file")
    return _check_finite(_DECODERS[suffix](data))


def load_map(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Read one map file: ``(array, sha256 of its bytes)``.

    The file is read once (its size checked first); the array is 2-D, float16
    (``.npy`` float16) or float32 (everything else), finite. Raises
    :class:`MapError` (message without the file name) for anything else.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise MapError("missing") from None
    if not os.path.isfile(path) or os.path.islink(path):
        raise MapError("not a regular file")
    if st.st_size == 0:
        raise MapError("empty (zero-byte) file")
    if st.st_size > MAX_FILE_BYTES:
        raise MapError(f"file of {st.st_size} bytes is larger than any map within the {MAX_SIDE}x{MAX_SIDE} limit")
    with open(path, "rb") as f:
        if path.suffix != ".npy":
            data = f.read()
            return decode_map(data, path.suffix), sha256_bytes(data)
        # The header first: an absurd or inconsistent shape is refused before the body is read.
        header = _npy_header(f)
        _check_npy_size(header[0], header[2], header[3], st.st_size)
        f.seek(0)
        data = f.read()
    return _check_finite(_npy_array(data, *header)), sha256_bytes(data)


def read_map(path: str | os.PathLike) -> np.ndarray:
    """The array of one map file (see :func:`load_map`)."""
    return load_map(path)[0]
