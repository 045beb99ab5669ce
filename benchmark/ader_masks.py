"""``--masks ader``: the ground-truth masks of the published COCO-AD, as ADer draws them.

The published COCO-AD masks come from ADer's ``data/gen_benchmark/coco.py``
(zhangzjn/ADer). Its rule, for one anomalous val image of a split:

- the canvas is zeros of the size OpenCV decodes the image file to
  (``cv2.imread``, which applies the EXIF orientation), not the annotation's
  ``width`` × ``height``;
- every anomaly-class annotation of the image is drawn on it with value 255:
  a polygon annotation part by part, each part filled on its own by
  ``cv2.fillPoly`` (8-connected edges, no sub-pixel shift) on its vertices
  cast to int64 (truncated toward zero, not rounded); an RLE annotation
  decoded by pycocotools (uncompressed RLE through ``frPyObjects`` with the
  annotation's height and width, compressed RLE as given), crowd or not;
- ADer writes the canvas as a 3-channel PNG with three equal channels. We
  write its first channel as our usual 8-bit single-channel 0/255 PNG, so the
  values equal ADer's pixel for pixel.

Two cases ADer's script cannot draw, where we choose a behaviour:

- the decoded size differs from the annotation's (EXIF rotation, or a wrong
  width/height in the annotation file): polygons are drawn at their own
  coordinates and clipped, as ADer does; an RLE annotation makes ADer's
  script fail (numpy shape mismatch), and we place its pixels at their own
  coordinates, clipped, the same convention. The build names how many images
  this concerns;
- polygon parts that ADer's ``reshape`` or OpenCV reject (an odd number of
  coordinates, no vertex, non-finite or non-int32 coordinates) are bad input:
  one line naming the annotation, nothing written.

OpenCV's ``fillPoly`` changed its output twice: in 4.8.0 (opencv/opencv#23076,
polygons with corners outside the image) and in 4.11.0 (#26187, fill beyond
the outline). ADer's masks (2024) were drawn between the two. Versions
4.8.1, 4.9.0 and 4.10.0 give identical masks on 2,000 random polygons; 4.7.0
and 4.11.0–5.0.0 differ from them on two thirds of those polygons. So this
mode requires OpenCV 4.8–4.10 (the ``ader-masks`` extra pins 4.10.0.84) and
refuses any other version.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils

from benchmark.errors import BuildError
from benchmark.masks import write_mask

EXTRA = "ader-masks"
#: OpenCV versions whose fillPoly draws ADer's masks (see the module docstring).
OPENCV_VERSIONS = ((4, 8), (4, 9), (4, 10))
_INSTALL = f"pip install 'coco-ad-suite[{EXTRA}]' (opencv-python-headless==4.10.0.84)"
_INT32 = 2**31


def require_opencv():
    """The ``cv2`` module, if it draws as ADer's did; BuildError (one line) otherwise."""
    try:
        import cv2
    except ImportError:
        raise BuildError(f"--masks ader needs OpenCV, which is not installed: {_INSTALL}") from None
    version = tuple(int(v) for v in cv2.__version__.split(".")[:2])
    if version not in OPENCV_VERSIONS:
        raise BuildError(
            f"--masks ader needs OpenCV 4.8–4.10, whose fillPoly drew ADer's masks; found {cv2.__version__} "
            f"(fillPoly changed in 4.8 and 4.11): {_INSTALL}"
        )
    return cv2


def opencv_version() -> str:
    return require_opencv().__version__


def check_segmentation(segm, where: str) -> None:
    """BuildError unless ADer's rule can draw this (already COCO-valid) segmentation."""
    if not isinstance(segm, list):
        return  # RLE: decoded by pycocotools, as in the default mode
    for j, part in enumerate(segm):
        if not part or len(part) % 2:
            raise BuildError(
                f"{where}: polygon part {j} has {len(part)} coordinates; ADer's rule needs an even, non-zero "
                f"number (x, y pairs); fix the annotation or build with --masks pycocotools"
            )
        if not all(math.isfinite(v) and -_INT32 < v < _INT32 for v in part):
            raise BuildError(
                f"{where}: polygon part {j} has a coordinate that is not a finite 32-bit value, which OpenCV "
                f"cannot draw; fix the annotation or build with --masks pycocotools"
            )


def decoded_size(path: str) -> tuple[str, tuple[int, int] | None]:
    """(``path``, (height, width) of the image as ``cv2.imread`` decodes it, or None if OpenCV cannot read it)."""
    cv2 = require_opencv()
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return path, (None if img is None else (int(img.shape[0]), int(img.shape[1])))


def decoded_sizes(paths: list[Path], workers: int, quiet: bool) -> dict[str, tuple[int, int]]:
    """{path: decoded (height, width)} of every image, decoded in ``workers`` processes.

    BuildError (one line, counting and naming a few) if OpenCV cannot decode
    some of them: ADer's rule has no canvas for them.
    """
    from benchmark.writer import run_parallel

    sizes = dict(run_parallel(decoded_size, [str(p) for p in paths], workers, "image sizes", quiet))
    bad = sorted(n for n, s in sizes.items() if s is None)
    if bad:
        few = ", ".join(bad[:3]) + (", …" if len(bad) > 3 else "")
        raise BuildError(
            f"{len(bad)} image file(s) OpenCV cannot decode ({few}); ADer's rule sizes each mask like its "
            f"decoded image: restore them or build with --masks pycocotools"
        )
    return sizes


def _rle(segm, height: int, width: int) -> dict:
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, height, width)
    return segm


def ader_mask(size: tuple[int, int], ann_size: tuple[int, int], segms: list) -> np.ndarray:
    """uint8 (H, W) mask of ``segms`` on a canvas of the decoded ``size`` = (H, W), by ADer's rule.

    ``ann_size`` = (height, width) of the annotation's image entry (used by
    uncompressed RLE, as ADer does).
    """
    cv2 = require_opencv()
    canvas = np.zeros(size, dtype=np.uint8)
    for segm in segms:
        if isinstance(segm, list):
            for part in segm:
                pts = np.asarray(part, dtype=np.float64).astype(np.int64).reshape(-1, 2)
                # OpenCV wants int32 points; the values were checked to fit (check_segmentation).
                cv2.fillPoly(canvas, [pts.astype(np.int32)], 255)
        else:
            m = mask_utils.decode(_rle(segm, *ann_size)).astype(bool)
            h, w = min(size[0], m.shape[0]), min(size[1], m.shape[1])
            canvas[:h, :w][m[:h, :w]] = 255
    return canvas


def render_ader_job(out_root: str, job: tuple) -> list[tuple[str, str]]:
    """Worker: one val image's masks by ADer's rule, for every split in which it is anomalous.

    ``job`` = ``(file_name, height, width, annotations, targets, decoded_size)``
    as :func:`benchmark.masks.render_coco_job`'s, plus the image's decoded
    (height, width). Returns ``[(relpath, sha256)]``.
    """
    _, height, width, annotations, targets, size = job
    out = []
    for relpath, labels in targets:
        m = ader_mask(tuple(size), (height, width), [segm for label, segm in annotations if label in labels])
        out.append((relpath, write_mask(Path(out_root), relpath, m)))
    return out

