"""Ground-truth masks: COCO rasterisation, normalisation and deterministic PNG files.

A mask file is an 8-bit single-channel PNG at the image's native size holding
0 (normal) or 255 (anomalous). PNGs are encoded by Pillow with fixed options
and no metadata, so the same mask always gives the same bytes.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

from contract.files import atomic_write_bytes, sha256_bytes

# Fixed encoder settings: part of the "same inputs, same bytes" guarantee.
PNG_OPTIONS = {"format": "PNG", "compress_level": 6, "optimize": False}


def segmentation_to_rle(segm, height: int, width: int) -> dict:
    """COCO segmentation → compressed RLE, exactly as pycocotools ``COCO.annToRLE``.

    ``segm`` is a polygon list (one object may have several parts, merged), an
    uncompressed RLE (``counts`` a list) or a compressed RLE (``counts`` a
    string). An empty polygon list gives an empty mask.
    """
    if isinstance(segm, list):
        if not segm:
            return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
        return mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, height, width)
    return segm


def union_mask(segms: Iterable, height: int, width: int) -> np.ndarray:
    """uint8 (height, width) mask, 255 inside the union of ``segms``, else 0."""
    out = np.zeros((height, width), dtype=bool)
    for segm in segms:
        out |= mask_utils.decode(segmentation_to_rle(segm, height, width)).astype(bool)
    return out.astype(np.uint8) * 255


def normalise_mask(arr: np.ndarray) -> np.ndarray:
    """Any mask image array (H, W) or (H, W, C) → uint8 0/255; nonzero is anomalous."""
    if arr.ndim == 3:
        arr = arr.any(axis=2)
    return (arr != 0).astype(np.uint8) * 255


def read_mask_file(path: str | os.PathLike) -> np.ndarray:
    """Read a mask image of any mode and normalise it to 0/255 (see :func:`normalise_mask`).

    Grey-level modes are read as stored (so 0/1 masks count as anomalous where
    1); colour and palette images by their RGB values, alpha ignored.
    """
    with Image.open(path) as im:
        if im.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
            arr = np.asarray(im)
        else:
            arr = np.asarray(im.convert("RGB"))
    return normalise_mask(arr)


def encode_png(mask_u8: np.ndarray) -> bytes:
    """Deterministic PNG bytes of a uint8 (H, W) mask (mode ``L``, no metadata)."""
    if mask_u8.dtype != np.uint8 or mask_u8.ndim != 2:
        raise ValueError(f"mask must be uint8 (H, W), got {mask_u8.dtype} {mask_u8.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask_u8)).save(buf, **PNG_OPTIONS)
    return buf.getvalue()


def write_mask(out_root: Path, relpath: str, mask_u8: np.ndarray) -> str:
    """Atomically write the mask's PNG to ``out_root / relpath``; return its sha256.

    A file that already holds exactly these bytes (a rerun) is left as it is.
    """
    data = encode_png(mask_u8)
    path = Path(out_root) / relpath
    try:
        same = path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        same = False
    if not same:
        atomic_write_bytes(path, data)
    return sha256_bytes(data)


def render_coco_job(out_root: str, job: tuple) -> list[tuple[str, str]]:
    """Worker: one val image's masks for every split in which it is anomalous.

    ``job`` = ``(file_name, height, width, annotations, targets)`` with
    ``annotations`` a list of ``(label, segmentation)`` and ``targets`` a list
    of ``(relpath, anomaly_labels)``; every target has at least one annotation
    with a label in its set. Each annotation is converted to RLE once and reused
    across splits. Returns ``[(relpath, sha256)]``; the masks themselves stay
    in the worker.
    """
    _, height, width, annotations, targets = job
    rles: dict[int, dict] = {}
    out = []
    for relpath, labels in targets:
        parts = []
        for i, (label, segm) in enumerate(annotations):
            if label in labels:
                if i not in rles:
                    rles[i] = segmentation_to_rle(segm, height, width)
                parts.append(rles[i])
        # Union in RLE space (pycocotools merge), one decode per mask.
        rle = parts[0] if len(parts) == 1 else mask_utils.merge(parts, intersect=False)
        m = mask_utils.decode(rle)
        m *= 255
        out.append((relpath, write_mask(Path(out_root), relpath, m)))
    return out


def render_copy_job(out_root: str, job: tuple) -> list[tuple[str, str]]:
    """Worker: normalise one source mask file (``job`` = ``(src_path, relpath)``)."""
    src, relpath = job
    return [(relpath, write_mask(Path(out_root), relpath, read_mask_file(src)))]
