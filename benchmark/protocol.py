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


#: Largest evaluation side a benchmark may declare: 16× ADer's 256, so that a
#: hostile ``eval_size`` cannot make the evaluator allocate gigabytes per map.
MAX_EVAL_SIDE = 4096


def protocol_problems(protocol) -> list[str]:
    """What makes ``protocol`` (a parsed ``benchmark.json`` block) unsupported; empty if fine.

    Supported: the keys of :data:`DEFAULT_PROTOCOL` and no others, ``eval_size``
    two integers in 1…:data:`MAX_EVAL_SIDE`, ``mask_threshold`` an integer in
    0…254, the two resize methods as in :data:`DEFAULT_PROTOCOL`.
    """
    if not isinstance(protocol, dict):
        return [f"protocol must be an object like {DEFAULT_PROTOCOL}, got {type(protocol).__name__}"]
    out = []
    keys = set(protocol)
    if keys != set(DEFAULT_PROTOCOL):
        extra, missing = sorted(keys - set(DEFAULT_PROTOCOL)), sorted(set(DEFAULT_PROTOCOL) - keys)
        out.append("protocol keys differ from " + ", ".join(DEFAULT_PROTOCOL)
                   + (f" (unknown: {', '.join(map(repr, extra))})" if extra else "")
                   + (f" (missing: {', '.join(missing)})" if missing else ""))
    size = protocol.get("eval_size")
    if "eval_size" in protocol and not (
        isinstance(size, list) and len(size) == 2
        and all(type(v) is int and 1 <= v <= MAX_EVAL_SIDE for v in size)
    ):
        out.append(f"protocol eval_size must be [height, width], integers 1…{MAX_EVAL_SIDE}, got {size!r:.60}")
    t = protocol.get("mask_threshold")
    if "mask_threshold" in protocol and not (type(t) is int and 0 <= t <= 254):
        out.append(f"protocol mask_threshold must be an integer 0…254, got {t!r:.60}")
    for key in ("mask_resize", "map_resize"):
        if key in protocol and protocol[key] != DEFAULT_PROTOCOL[key]:
            out.append(f"protocol {key} {protocol[key]!r:.60} is not supported (supported: {DEFAULT_PROTOCOL[key]!r})")
    return out


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
