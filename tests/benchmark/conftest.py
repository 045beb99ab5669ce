"""Small COCO-format sources for the builder tests, written here with pycocotools.

The source covers every annotation kind the construction must handle:
polygons of one and of several parts, uncompressed RLE (``counts`` a list),
compressed RLE (``counts`` a string), crowd regions, a zero-area annotation
that is an image's only anomaly annotation in split 3, unannotated images
(one of them without a file on disk, which must not matter), and 8 categories
with gapped ids. Images are crops of scikit-image's sample photos.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image
from skimage import data as skdata

CATEGORY_IDS = [1, 3, 4, 7, 9, 10, 15, 20]  # gapped, as COCO's
CATEGORIES = [{"id": cid, "name": f"thing {cid}", "supercategory": "test"} for cid in CATEGORY_IDS]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def label_id(label: int) -> int:
    return CATEGORY_IDS[label]


def rle_counts_list(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE written out by hand (column-major runs, starting with 0s)."""
    flat = mask.astype(bool).T.reshape(-1)  # column-major order
    counts, cur, run = [], False, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_string(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def polygon(rng, h, w, n=6, scale=0.3):
    cx, cy = rng.uniform(0.25 * w, 0.75 * w), rng.uniform(0.25 * h, 0.75 * h)
    r = scale * min(h, w) * rng.uniform(0.5, 1.0)
    ang = np.sort(rng.uniform(0, 2 * np.pi, size=n))
    return [round(float(v), 2) for xy in zip(cx + r * np.cos(ang), cy + r * np.sin(ang)) for v in xy]


def blob(rng, h, w):
    """A random blob mask (union of two ellipses), for the RLE annotations."""
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for _ in range(2):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        ax, ay = rng.uniform(0.1, 0.3) * w, rng.uniform(0.1, 0.3) * h
        m |= ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
    return m


def segmentation(kind: str, rng, h, w):
    """(segmentation, iscrowd) of one annotation kind."""
    if kind == "poly":
        return [polygon(rng, h, w)], 0
    if kind == "poly2":  # one object in two parts
        return [polygon(rng, h, w, 5, 0.2), polygon(rng, h, w, 7, 0.15)], 0
    if kind == "rle_list":
        return rle_counts_list(blob(rng, h, w)), 1
    if kind == "rle_str":
        return rle_string(blob(rng, h, w)), 0
    if kind == "crowd_str":
        return rle_string(blob(rng, h, w)), 1
    if kind == "zero":
        x, y = 2.0, float(h - 3)
        return [[x, y, x + 5, y, x + 10, y]], 0
    raise ValueError(kind)


# Hand-made val images: (list of (label, kind)); [] = unannotated.
VAL_SCENES = [
    [(0, "poly2"), (3, "rle_str")],
    [(2, "rle_list"), (5, "poly")],
    [(1, "poly"), (6, "zero")],  # split 3: anomalous only through a zero-area annotation
    [],
    [(7, "poly"), (7, "crowd_str")],
    [(4, "poly")],
    [(0, "poly"), (1, "poly2")],
    [(6, "poly"), (2, "rle_str")],
    [(3, "poly"), (4, "rle_list"), (5, "poly2")],
    [(1, "rle_str")],
    [(5, "poly")],
    [(7, "rle_list")],
]


def _photo(i: int, h: int, w: int) -> np.ndarray:
    img = getattr(skdata, PHOTOS[i % len(PHOTOS)])()
    y0 = (17 * i) % (img.shape[0] - h)
    x0 = (29 * i) % (img.shape[1] - w)
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w, :3])


def make_coco_source(root: Path, seed: int = 0, n_train: int = 16) -> Path:
    """Write a COCO-format source under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    kinds = ["poly", "poly2", "rle_list", "rle_str", "crowd_str"]
    ann_id = 100
    for part in ("train", "val"):
        (root / f"{part}2017").mkdir(exist_ok=True)
        if part == "val":
            scenes = list(VAL_SCENES)
        else:
            scenes = []
            for i in range(n_train):
                if i % 7 == 3:
                    scenes.append([])
                else:
                    labs = rng.choice(8, size=int(rng.integers(1, 3)), replace=False)
                    scenes.append([(int(l), kinds[int(rng.integers(len(kinds)))]) for l in labs])
        images, annotations = [], []
        for i, scene in enumerate(scenes):
            img_id = (1000 if part == "train" else 5000) + 3 * i + (i % 2)
            h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
            fname = f"{img_id:012d}.jpg"
            Image.fromarray(_photo(i, h, w)).save(root / f"{part}2017" / fname, quality=85)
            images.append({"id": img_id, "file_name": fname, "height": h, "width": w})
            for label, kind in scene:
                segm, crowd = segmentation(kind, rng, h, w)
                annotations.append(
                    {"id": ann_id, "image_id": img_id, "category_id": label_id(label), "segmentation": segm,
                     "iscrowd": crowd, "area": 0.0, "bbox": [0, 0, 0, 0]}
                )
                ann_id += 1
        # An unannotated image whose file is absent: it takes no part, so no error.
        images.append({"id": 99999 if part == "val" else 99998, "file_name": f"{99999:012d}.jpg", "height": 50, "width": 50})
        doc = {"images": images, "annotations": annotations, "categories": list(reversed(CATEGORIES))}
        (root / "annotations" / f"instances_{part}2017.json").write_text(json.dumps(doc))
    return root


@pytest.fixture(scope="session")
def coco_source(tmp_path_factory) -> Path:
    """A read-only COCO-format source shared by the tests (copy it before changing it)."""
    return make_coco_source(tmp_path_factory.mktemp("coco") / "coco")


@pytest.fixture
def coco_copy(coco_source, tmp_path) -> Path:
    """A private copy of the source, for tests that damage it."""
    dst = tmp_path / "coco"
    shutil.copytree(coco_source, dst)
    return dst


def tree_bytes(root: Path) -> dict[str, bytes | str]:
    """{relpath: bytes} of the files, {relpath: 'link -> target'} of the links, under ``root``."""
    out: dict[str, bytes | str] = {}
    for p in sorted(Path(root).rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link -> " + str(Path(p).readlink())
        elif p.is_file() and not any(part.is_symlink() for part in p.parents):
            out[rel] = p.read_bytes()
    return out


@contextlib.contextmanager
def read_only(folder: Path, monkeypatch):
    """``folder`` made unwritable for this process: mode 0555, or for root (whom modes do not stop)
    the immutable attribute, or, where neither is possible, creating files in it failing with EACCES."""
    import errno
    import os
    import subprocess
    import tempfile

    def writable() -> bool:
        try:
            fd, p = tempfile.mkstemp(dir=folder)
        except OSError:
            return False
        os.close(fd)
        os.unlink(p)
        return True

    mode = folder.stat().st_mode
    folder.chmod(0o555)
    immutable = False
    if writable():
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    if writable():  # no way to stop root here: refuse file creation in this folder at the os level
        real_open, real_mkdir = os.open, os.mkdir

        def inside(path) -> bool:
            return os.path.dirname(os.path.abspath(path)) == os.path.abspath(folder)

        def guarded_open(path, flags, *a, **k):
            if flags & os.O_CREAT and inside(path):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, flags, *a, **k)

        def guarded_mkdir(path, *a, **k):
            if inside(path):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_mkdir(path, *a, **k)

        monkeypatch.setattr(os, "open", guarded_open)
        monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(mode)
