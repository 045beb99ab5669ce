"""The comparison protocol of a benchmark (``benchmark.json`` → ``protocol``).

Default, as ADer evaluates::

    {"eval_size": [256, 256], "mask_resize": "pil-bilinear-uint8",
     "mask_threshold": 127, "map_resize": "pil-bilinear-float"}

Ground truth: the 8-bit 0/255 mask is resized with Pillow's bilinear filter
(what torchvision's ``Resize`` does to a PIL image) and is anomalous where the
result is > ``mask_threshold``. Anomaly maps of another size: Pillow bilinear in
mode ``F`` (float32).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

#: Largest ground-truth mask accepted (pixels, from the PNG header, before
#: decoding): 8192 × 8192. Bigger declared sizes are refused as decompression bombs.
MAX_MASK_PIXELS = 1 << 26

DEFAULT_PROTOCOL = {
    "eval_size": [256, 256],
    "mask_resize": "pil-bilinear-uint8",
    "mask_threshold": 127,
    "map_resize": "pil-bilinear-float",
}


def _check(protocol: dict, key: str, expected: str) -> None:
    if protocol.get(key, expected) != expected:
        raise ValueError(f"unsupported protocol {key}={protocol.get(key)!r} (supported: {expected!r})")


def resize_mask(mask_u8: np.ndarray, size: tuple[int, int], protocol: dict = DEFAULT_PROTOCOL) -> np.ndarray:
    """uint8 0/255 mask (H0, W0) → bool (H, W) at ``size`` = (H, W)."""
    _check(protocol, "mask_resize", "pil-bilinear-uint8")
    h, w = size
    if mask_u8.shape != (h, w):
        mask_u8 = np.asarray(Image.fromarray(mask_u8).resize((w, h), Image.BILINEAR))
    return mask_u8 > int(protocol.get("mask_threshold", 127))


def decode_gt_mask(data: bytes, size: tuple[int, int], protocol: dict = DEFAULT_PROTOCOL) -> np.ndarray:
    """The ground truth at ``size`` from a mask image's bytes (see :func:`resize_mask`).

    Raises ValueError (one line) for an unreadable image or one declaring more
    than :data:`MAX_MASK_PIXELS` pixels (checked before decoding).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: our own limit decides
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > MAX_MASK_PIXELS:
                    raise ValueError(f"mask declares {w}x{h} pixels, more than the limit of {MAX_MASK_PIXELS}")
                if im.mode != "L":
                    im = im.convert("L")
                arr = np.asarray(im)
    except ValueError:
        raise
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, DecompressionBombError, ...)
        raise ValueError(f"not a readable mask image ({type(e).__name__}: {' '.join(str(e).split())})") from None
    return resize_mask(arr, size, protocol)


def load_gt_mask(path: Path | None, size: tuple[int, int], protocol: dict = DEFAULT_PROTOCOL) -> np.ndarray:
    """Read a ground-truth PNG (or none: all normal) and bring it to ``size``."""
    if path is None:
        return np.zeros(size, dtype=bool)
    return decode_gt_mask(Path(path).read_bytes(), size, protocol)


def resize_map(amap: np.ndarray, size: tuple[int, int], protocol: dict = DEFAULT_PROTOCOL) -> np.ndarray:
    """Anomaly map (H0, W0) → float32 (H, W); unchanged (no copy) if already that size."""
    _check(protocol, "map_resize", "pil-bilinear-float")
    h, w = size
    if amap.shape == (h, w):
        return amap
    img = Image.fromarray(np.ascontiguousarray(amap, dtype=np.float32), mode="F")
    return np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.float32)
