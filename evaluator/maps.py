"""Safe readers for anomaly-map files (SPEC §4): ``.npy``, ``.tiff``, 16-bit ``.png``.

A map file comes from whoever made the submission, so it is read as untrusted
input: the size the header claims is checked against the file size and the
limits below before anything is decoded, ``.npy`` files are never unpickled,
images are decoded only after their mode and size are known to be right, and
the values must be finite. Every refusal is a :class:`MapError` whose message
is one line saying what is wrong and how to fix it (the caller adds the file
name).

Accepted formats (higher value = more anomalous):

- ``.npy``: 2-D float16 or float32 (either byte order, C or Fortran order);
- ``.tiff``: one frame, Pillow mode ``F`` (32-bit float), as MVTec AD's maps;
- ``.png``: 16-bit grayscale (Pillow modes ``I;16``/``I;16B``/``I``), value
  = code / 65535 in float32. :func:`load_map` keeps the uint16 codes (the
  scorer counts them in a fixed-size table, :mod:`evaluator.metrics.kernels`);
  :func:`read_map` gives the values.

Memory per map is bounded: at most :data:`MAX_SIDE` pixels a side, and, when
the caller passes the benchmark's evaluation size, at most
:data:`MAX_PIXELS_FACTOR` times its pixels (2048×2048 for 256×256), checked
from the header before decoding. A map that is 8192×8192 in a 130 KB PNG is
thus refused in microseconds instead of decoded into 800 MB.
"""

from __future__ import annotations

import io
import os
import stat
import warnings

import numpy as np

from contract.files import sha256_bytes

MAP_SUFFIXES = (".npy", ".png", ".tiff")
MAX_SIDE = 8192
"""Largest accepted height or width of a map (pixels)."""
MAX_PIXELS_FACTOR = 64
"""A map may have at most this many times the pixels of the evaluation size."""
_MAX_NPY_HEADER = 10_000
# Largest plausible file: a float32 MAX_SIDE² map plus a generous header / container overhead.
MAX_FILE_BYTES = MAX_SIDE * MAX_SIDE * 4 + (1 << 20)
_NPY_DTYPES = (np.dtype("<f2"), np.dtype(">f2"), np.dtype("<f4"), np.dtype(">f4"))
_PNG_MODES = ("I;16", "I;16B", "I;16L", "I")
_PNG_SCALE = np.float32(65535)


class MapError(ValueError):
    """A map file that cannot be accepted; the message is one line without the file name."""


def max_pixels_for(eval_size: tuple[int, int] | None) -> int | None:
    """The pixel limit of a map for a benchmark of evaluation size ``eval_size`` (None: no relative limit)."""
    return None if eval_size is None else MAX_PIXELS_FACTOR * int(eval_size[0]) * int(eval_size[1])


def max_file_bytes(max_pixels: int | None) -> int:
    """Largest file that can hold a map within ``max_pixels`` (float32 plus container overhead)."""
    return MAX_FILE_BYTES if max_pixels is None else min(MAX_FILE_BYTES, max_pixels * 4 + (1 << 20))


def _check_shape(shape: tuple, max_pixels: int | None = None) -> tuple[int, int]:
    if len(shape) != 2:
        raise MapError(f"map must be 2-D (height, width), got shape {tuple(shape)}; squeeze channel/batch axes")
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise MapError(f"empty map of shape ({h}, {w})")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise MapError(f"map of shape ({h}, {w}) exceeds the {MAX_SIDE}x{MAX_SIDE} limit; save it at the evaluation size")
    if max_pixels is not None and h * w > max_pixels:
        raise MapError(f"map of shape ({h}, {w}) has more than {max_pixels} pixels ({MAX_PIXELS_FACTOR} times the "
                       "evaluation size); save it at the evaluation size")
    return h, w


def _check_finite(arr: np.ndarray) -> np.ndarray:
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(arr.size - finite.sum() - n_nan)
        raise MapError(f"map has {n_nan} NaN and {n_inf} infinite value(s); every value must be finite")
    return arr


def check_finite(arr: np.ndarray) -> np.ndarray:
    """``arr`` if every value is finite (PNG codes always are), else MapError saying how many are not."""
    return arr if arr.dtype == np.uint16 else _check_finite(arr)


def _npy_header(fp, max_pixels: int | None = None) -> tuple[tuple[int, int], bool, np.dtype, int]:
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
    shape = _check_shape(shape, max_pixels)
    if dtype not in _NPY_DTYPES:
        raise MapError(f"map dtype is {dtype.name}; save it as float16 or float32")
    return shape, bool(fortran), dtype, fp.tell()


#: Parsed ``.npy`` headers by their exact bytes: a submission's maps share one
#: header, and NumPy's parser (``ast.literal_eval``) costs more than reading a map.
_HEADERS: dict[bytes, tuple] = {}


def _header_bytes(data: bytes) -> bytes | None:
    """The magic, version, length and header dict of a ``.npy`` (the bytes before the body), or None."""
    if data[:6] != b"\x93NUMPY" or len(data) < 12:
        return None
    if data[6] == 1:
        end = 10 + int.from_bytes(data[8:10], "little")
    elif data[6] == 2:
        end = 12 + int.from_bytes(data[8:12], "little")
    else:
        return None
    return data[:end] if end <= min(len(data), _MAX_NPY_HEADER + 12) else None


def _check_npy_size(shape: tuple[int, int], dtype: np.dtype, offset: int, total: int) -> int:
    """Number of elements, after checking that the body is exactly what the header claims."""
    count = shape[0] * shape[1]
    expected, got = count * dtype.itemsize, total - offset
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise MapError(f".npy file {what}: header says {shape} {dtype.name} = {expected} bytes, body has {got}")
    return count


def _decode_npy(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    key = _header_bytes(data)
    header = _HEADERS.get(key) if key is not None else None
    if header is None:
        header = _npy_header(io.BytesIO(data), max_pixels)
        if key is not None and len(key) == header[3] and len(_HEADERS) < 256:
            _HEADERS[key] = header
    shape, fortran, dtype, offset = header
    _check_shape(shape, max_pixels)  # a cached header may come from a call with another limit
    count = _check_npy_size(shape, dtype, offset, len(data))
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(arr, dtype=dtype.newbyteorder("="))


def _open_image(data: bytes, fmt: str):
    from PIL import Image

    try:
        # Pillow warns (DecompressionBombWarning) below twice its own limit and refuses
        # (DecompressionBombError) above; our limit, from the size the header declares, decides first.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        raise MapError(f"{fmt} declares far more pixels than the {MAX_SIDE}x{MAX_SIDE} limit (a decompression "
                       "bomb); save the map at the evaluation size") from None
    except Exception:  # UnidentifiedImageError, OSError, SyntaxError, ...
        raise MapError(f"not a readable {fmt} file") from None
    return im


def _decode_png(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    from PIL import Image

    im = _open_image(data, "PNG")
    if im.mode not in _PNG_MODES:
        raise MapError(f"PNG mode {im.mode} (8-bit, colour or palette); save a 16-bit grayscale PNG (uint16 array)")
    w, h = im.size
    _check_shape((h, w), max_pixels)
    try:
        im.verify()  # chunk CRCs and IEND: catches truncation that decoding alone may miss
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data), formats=["PNG"])
            im.load()
    except Exception as e:  # Pillow raises many types on corrupt data; all mean "bad file"
        raise MapError(f"corrupt or truncated PNG ({' '.join(str(e).split())})") from None
    arr = np.asarray(im)
    if arr.dtype.kind not in "iu" or arr.shape != (h, w) or arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
        raise MapError("PNG is not 16-bit grayscale; save a uint16 array")
    return arr.astype(np.uint16)


def _decode_tiff(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    im = _open_image(data, "TIFF")
    # Pillow reads whether a second frame exists when it opens the file; ``n_frames``
    # would walk the whole chain (100,000 chained frames: minutes).
    if getattr(im, "is_animated", False):
        raise MapError("TIFF has more than one frame; save exactly one float32 frame")
    if im.mode != "F":
        raise MapError(f"TIFF mode {im.mode}; save a 32-bit float TIFF (Pillow mode F, float32 array)")
    w, h = im.size
    _check_shape((h, w), max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.load()
    except Exception as e:  # corrupt data surfaces as assorted Pillow errors
        raise MapError(f"corrupt or truncated TIFF ({' '.join(str(e).split())})") from None
    arr = np.asarray(im, dtype=np.float32)
    if arr.shape != (h, w):
        raise MapError(f"TIFF decodes to shape {arr.shape}; save a single-channel float32 TIFF")
    return np.ascontiguousarray(arr)


_DECODERS = {".npy": _decode_npy, ".png": _decode_png, ".tiff": _decode_tiff}


def decode_map(data: bytes, suffix: str, max_pixels: int | None = None, finite: bool = True) -> np.ndarray:
    """Decode the bytes of a map file of type ``suffix``: a 2-D float16/float32
    array, or uint16 codes for a 16-bit PNG (value = code / 65535).

    ``max_pixels``: refuse larger maps (see :func:`max_pixels_for`);
    ``finite``: check that every value is finite (callers that check it
    themselves while counting pass False).
    """
    if suffix not in _DECODERS:
        raise MapError(f"unknown map type {suffix!r}; use one of {', '.join(MAP_SUFFIXES)}")
    if not data:
        raise MapError("empty (zero-byte) file")
    arr = _DECODERS[suffix](data, max_pixels)
    return check_finite(arr) if finite else arr


def read_bytes(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, opened without following a link; MapError if it is
    missing, a link or special file, empty, or larger than ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise MapError("missing") from None
    except OSError as e:
        if os.path.islink(path):
            raise MapError("not a regular file") from None
        raise MapError(f"cannot read ({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise MapError("not a regular file")
    with os.fdopen(fd, "rb") as f:
        if st.st_size == 0:
            raise MapError("empty (zero-byte) file")
        if st.st_size > limit:
            raise MapError(f"file of {st.st_size} bytes is larger than any map within the size limit "
                           f"({limit} bytes); save it at the evaluation size")
        try:
            # Exactly the size: asking for more makes Python allocate (and the kernel map) the whole limit.
            return f.read(st.st_size)
        except OSError as e:
            raise MapError(f"cannot read ({e.strerror})") from None


def load_map(path: str | os.PathLike, max_pixels: int | None = None, finite: bool = True) -> tuple[np.ndarray, str]:
    """Read one map file: ``(array, sha256 of its bytes)``.

    The file is read once (its size checked first, against ``max_pixels``
    too); the array is 2-D float16 (``.npy`` float16), uint16 codes (16-bit
    ``.png``) or float32 (everything else), finite unless ``finite=False``.
    Raises :class:`MapError` (message without the file name) for anything else.
    """
    data = read_bytes(path, max_file_bytes(max_pixels))
    return decode_map(data, os.path.splitext(path)[1], max_pixels, finite), sha256_bytes(data)


def map_values(arr: np.ndarray) -> np.ndarray:
    """A map's values: PNG codes as float32 code / 65535; float16/float32 maps unchanged."""
    return arr.astype(np.float32) / _PNG_SCALE if arr.dtype == np.uint16 else arr


def read_map(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """The values of one map file (see :func:`load_map`): float16 or float32."""
    return map_values(load_map(path, max_pixels)[0])
