"""The embedded demo: a small, generated COCO-format source, and COCO-AD built on it.

``python -m benchmark.build demo --out DIR`` writes

- ``DIR/source/``: the generated COCO-format source (``annotations/
  instances_{train,val}2017.json``, ``train2017/*.jpg``, ``val2017/*.jpg``);
- ``DIR/``: the benchmark folder built from it by the very same COCO-AD
  construction (``benchmark.coco_ad``), named ``coco-ad-demo``: 8 categories,
  ``a`` = 2, ``meta_2_<k>.json``, ``val2017_mask_ad_2_<k>/``, and relative links
  ``train2017 -> source/train2017``, ``val2017 -> source/val2017``, so the folder
  is self-contained and can be moved as a whole.

The scenes are procedural (numpy only), from one fixed seed: a muted textured
background (four shared families: weave, cloudy noise, soft tiles, wood
grain) with one to three objects. Each of the 8 categories has its own
unmistakable colour, texture and shape, because every category is held out
in one split and a good detector must be able to tell it from the normal
ones. The annotations exercise everything the construction must handle:
polygons (several parts for ``cyan bars``), compressed and uncompressed RLE,
crowd regions, unannotated images, category ids with gaps (as COCO's), and
one val image whose only annotation of ``white hexagon`` has zero area.
Objects are drawn through the very masks pycocotools makes of their
annotations, so the ground truth is exactly what is visible.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

from benchmark import manifest as mf
from benchmark.errors import BuildError
from contract.files import atomic_write_bytes, dumps_json, remove_tmp_leftovers

SEED = 20240613
N_TRAIN = 270
N_VAL = 96
SIZE_RANGE = (160, 320)  # native width and height, inclusive
JPEG_OPTIONS = {"format": "JPEG", "quality": 90, "optimize": False, "subsampling": 0}
NAME = "coco-ad-demo"
SOURCE_DIR = "source"

# (category id, name, shape, RGB colour, texture); ids have gaps as COCO's do.
CATEGORIES = [
    (1, "red disc", "disc", (225, 35, 35), "shaded"),
    (2, "green square", "square", (40, 185, 60), "checker"),
    (4, "blue triangle", "triangle", (35, 80, 235), "stripes"),
    (5, "yellow star", "star", (245, 215, 30), "dots"),
    (8, "magenta ring", "ring", (215, 45, 205), "concentric"),
    (11, "cyan bars", "bars", (30, 215, 225), "grid"),
    (13, "orange cross", "cross", (250, 135, 15), "diagonal"),
    (17, "white hexagon", "hexagon", (245, 245, 240), "speckle"),
]
BACKGROUNDS = ("weave", "clouds", "tiles", "grain")


# ---------------------------------------------------------------- geometry


def _ngon(cx, cy, radii, theta0) -> list[float]:
    """Flat COCO polygon [x0, y0, x1, y1, …] through points at ``radii`` (one per vertex)."""
    radii = np.asarray(radii, dtype=float)
    ang = theta0 + np.arange(len(radii)) * 2 * np.pi / len(radii)
    pts = np.stack([cx + radii * np.cos(ang), cy + radii * np.sin(ang)], axis=1)
    return [round(float(v), 2) for v in pts.ravel()]


def _rect(cx, cy, half_len, half_wid, theta) -> list[float]:
    c, s = np.cos(theta), np.sin(theta)
    pts = []
    for u, v in ((-half_len, -half_wid), (half_len, -half_wid), (half_len, half_wid), (-half_len, half_wid)):
        pts += [round(float(cx + u * c - v * s), 2), round(float(cy + u * s + v * c), 2)]
    return pts


def shape_polygons(shape: str, cx: float, cy: float, r: float, theta: float) -> tuple[list, list]:
    """(filled polygons, hole polygons) of a shape of radius ``r`` centred at (cx, cy)."""
    if shape == "disc":
        return [_ngon(cx, cy, [r] * 40, theta)], []
    if shape == "square":
        return [_ngon(cx, cy, [r] * 4, theta + np.pi / 4)], []
    if shape == "triangle":
        return [_ngon(cx, cy, [r] * 3, theta)], []
    if shape == "star":
        return [_ngon(cx, cy, [r, 0.45 * r] * 5, theta)], []
    if shape == "hexagon":
        return [_ngon(cx, cy, [r] * 6, theta)], []
    if shape == "ring":
        return [_ngon(cx, cy, [r] * 40, theta)], [_ngon(cx, cy, [0.55 * r] * 40, theta)]
    if shape == "bars":  # two separate parallel bars: one object in two polygon parts
        off = 0.45 * r
        dx, dy = -np.sin(theta) * off, np.cos(theta) * off
        return [_rect(cx + dx, cy + dy, 0.95 * r, 0.25 * r, theta), _rect(cx - dx, cy - dy, 0.95 * r, 0.25 * r, theta)], []
    if shape == "cross":
        w = 0.3 * r
        return [_rect(cx, cy, r, w, theta), _rect(cx, cy, r, w, theta + np.pi / 2)], []
    raise ValueError(shape)


def _poly_mask(polys: list, h: int, w: int) -> np.ndarray:
    if not polys:
        return np.zeros((h, w), dtype=bool)
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(bool)


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE: run lengths over the column-major pixels, starting with a run of 0s."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


# ---------------------------------------------------------------- appearance


def _grid(h: int, w: int):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def _muted(rng) -> np.ndarray:
    """A low-saturation mid-brightness RGB colour in [0, 255]."""
    grey = rng.uniform(95, 175)
    tint = rng.normal(0, 14, size=3)
    return np.clip(grey + tint, 60, 200)


def background(rng, h: int, w: int) -> np.ndarray:
    """Float32 (h, w, 3) procedural background of a random family, values in [0, 255]."""
    yy, xx = _grid(h, w)
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    c1, c2 = _muted(rng), _muted(rng)
    if kind == "weave":
        f1, f2 = rng.uniform(0.25, 0.45, size=2)
        t = 0.5 + 0.25 * np.sin(xx * f1) * np.sin(yy * f2) + 0.25 * np.sin((xx + yy) * 0.05)
    elif kind == "clouds":
        gh, gw = int(rng.integers(4, 8)), int(rng.integers(4, 8))
        small = Image.fromarray((rng.uniform(0, 255, size=(gh, gw))).astype(np.uint8))
        t = np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float32) / 255.0
    elif kind == "tiles":
        p = rng.uniform(36, 64)
        t = 0.5 + 0.35 * np.sign(np.sin(xx * np.pi / p) * np.sin(yy * np.pi / p))
    else:  # grain
        a = rng.uniform(4, 9)
        t = 0.5 + 0.5 * np.sin((xx + a * np.sin(yy / rng.uniform(12, 24))) / rng.uniform(3, 6))
    t = t[..., None].astype(np.float32)
    img = c1 * (1 - t) + c2 * t
    return img.astype(np.float32)


def texture(kind: str, colour, rng, h: int, w: int, cx: float, cy: float, r: float, theta: float) -> np.ndarray:
    """Float32 (h, w, 3) fill of a category: its colour modulated by its texture."""
    yy, xx = _grid(h, w)
    c = np.asarray(colour, dtype=np.float32)
    dark = c * 0.45
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)  # object-aligned axes
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    if kind == "shaded":
        t = np.clip(1 - np.hypot(xx - cx + 0.3 * r, yy - cy + 0.3 * r) / (1.8 * r), 0, 1)
        return dark + (c - dark) * (0.5 + 0.5 * t)[..., None]
    if kind == "checker":
        t = ((np.floor(u / 7) + np.floor(v / 7)) % 2)[..., None]
    elif kind == "stripes":
        t = (np.sin(v * 2 * np.pi / 8) > 0)[..., None].astype(np.float32)
    elif kind == "dots":
        t = 1.0 - ((np.hypot((u % 9) - 4.5, (v % 9) - 4.5) < 2.2)[..., None]).astype(np.float32)
    elif kind == "concentric":
        t = (np.sin(np.hypot(xx - cx, yy - cy) * 2 * np.pi / 6) > 0)[..., None].astype(np.float32)
    elif kind == "grid":
        t = 1.0 - (((u % 8) < 2) | ((v % 8) < 2))[..., None].astype(np.float32)
    elif kind == "diagonal":
        t = (np.sin((u + v) * 2 * np.pi / 10) > 0)[..., None].astype(np.float32)
    elif kind == "speckle":
        t = (rng.uniform(0, 1, size=(h, w)) > 0.3)[..., None].astype(np.float32)
        return np.where(t > 0, c, c * 0.7)
    else:
        raise ValueError(kind)
    return dark + (c - dark) * t


# ---------------------------------------------------------------- scenes


@dataclass
class Scene:
    """One generated image: its JPEG bytes and its (image-id-free) annotations."""

    file_name: str
    height: int
    width: int
    jpeg: bytes
    anns: list[dict]  # category_id, segmentation, area, bbox, iscrowd


def _place(rng, h: int, w: int, radii: list[float], tries: int = 200) -> list[tuple[float, float, float]]:
    """Non-overlapping circles fully inside the image; a circle that does not fit is dropped."""
    placed: list[tuple[float, float, float]] = []
    for r in radii:
        for _ in range(tries):
            cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h - r - 2)
            if all(np.hypot(cx - x, cy - y) > r + q + 4 for x, y, q in placed):
                placed.append((cx, cy, r))
                break
    return placed


def _annotation(cat_id: int, mask: np.ndarray, segm, iscrowd: int) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "category_id": cat_id,
        "segmentation": segm,
        "area": float(mask_utils.area(rle)),
        "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)],
        "iscrowd": iscrowd,
    }


def make_scene(part: str, index: int, file_name: str) -> Scene:
    """Scene ``index`` of ``part`` ("train"/"val"); a pure function of (SEED, part, index)."""
    rng = np.random.default_rng([SEED, 0 if part == "train" else 1, index])
    h, w = (int(v) for v in rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1, size=2))
    img = background(rng, h, w)
    side = min(h, w)
    anns: list[dict] = []

    special_zero_area = part == "val" and index == 0
    unannotated = (not special_zero_area) and rng.uniform() < 0.06
    if special_zero_area:
        cats, crowd = [0], False  # one red disc, plus a zero-area white hexagon below
    elif unannotated:
        cats, crowd = [], False
    else:
        n = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
        cats = [int(c) for c in rng.integers(len(CATEGORIES), size=n)]
        crowd = rng.uniform() < 0.12

    scale = {1: (0.2, 0.32), 2: (0.16, 0.24), 3: (0.13, 0.19)}.get(len(cats) + int(crowd), (0.13, 0.19))
    radii = [float(rng.uniform(*scale)) * side for _ in cats]
    crowd_radius = 0.22 * side
    circles = _place(rng, h, w, radii + ([crowd_radius] if crowd else []))
    if crowd and len(circles) == len(radii) + 1:
        crowd_circle = circles.pop()
    else:
        crowd_circle = None
        circles = circles[: len(radii)]

    for (cx, cy, r), lab in zip(circles, cats):
        cat_id, _, shape, colour, tex = CATEGORIES[lab]
        theta = float(rng.uniform(0, 2 * np.pi))
        fill, holes = shape_polygons(shape, cx, cy, r, theta)
        mask = _poly_mask(fill, h, w) & ~_poly_mask(holes, h, w)
        img[mask] = texture(tex, colour, rng, h, w, cx, cy, r, theta)[mask]
        kind = "rle" if holes else ("polygon" if shape == "bars" else str(rng.choice(["polygon"] * 3 + ["rle", "counts"])))
        if kind == "polygon":
            segm = fill
        elif kind == "counts":
            segm = uncompressed_rle(mask)
        else:
            segm = compressed_rle(mask)
        anns.append(_annotation(cat_id, mask, segm, 0))

    if crowd_circle is not None:
        lab = int(rng.integers(len(CATEGORIES)))
        cat_id, _, shape, colour, tex = CATEGORIES[lab]
        gx, gy, gr = crowd_circle
        small = max(9.0, 0.075 * side)
        members = _place_in(rng, gx, gy, gr, small, int(rng.integers(3, 6)))
        union = np.zeros((h, w), dtype=bool)
        fill_img = np.zeros_like(img)
        for cx, cy in members:
            theta = float(rng.uniform(0, 2 * np.pi))
            fill, holes = shape_polygons(shape, cx, cy, small, theta)
            m = _poly_mask(fill, h, w) & ~_poly_mask(holes, h, w)
            fill_img[m] = texture(tex, colour, rng, h, w, cx, cy, small, theta)[m]
            union |= m
        img[union] = fill_img[union]
        segm = uncompressed_rle(union) if rng.uniform() < 0.5 else compressed_rle(union)
        anns.append(_annotation(cat_id, union, segm, 1))

    if special_zero_area:
        # A degenerate polygon (three collinear points): area 0, rasterises to nothing.
        x, y = 4.0, float(h - 6)
        anns.append(
            {
                "category_id": CATEGORIES[-1][0],
                "segmentation": [[x, y, x + 12.0, y, x + 24.0, y]],
                "area": 0.0,
                "bbox": [x, y, 24.0, 0.0],
                "iscrowd": 0,
            }
        )

    img += rng.normal(0, 3.0, size=img.shape).astype(np.float32)  # sensor noise
    buf = io.BytesIO()
    Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8)).save(buf, **JPEG_OPTIONS)
    return Scene(file_name, h, w, buf.getvalue(), anns)


def _place_in(rng, gx: float, gy: float, gr: float, r: float, n: int) -> list[tuple[float, float]]:
    """Up to ``n`` non-overlapping centres of radius-``r`` shapes inside the circle (gx, gy, gr)."""
    out: list[tuple[float, float]] = []
    for _ in range(60 * n):
        if len(out) == n:
            break
        rho, phi = rng.uniform(0, gr - r), rng.uniform(0, 2 * np.pi)
        cx, cy = gx + rho * np.cos(phi), gy + rho * np.sin(phi)
        if all(np.hypot(cx - x, cy - y) > 2 * r + 2 for x, y in out):
            out.append((cx, cy))
    return out


# ---------------------------------------------------------------- the source on disk


def _image_ids(part: str, n: int) -> list[int]:
    """COCO-like ids: increasing with gaps, distinct between the parts."""
    rng = np.random.default_rng([SEED, 7, 0 if part == "train" else 1])
    base = 9 if part == "train" else 400_000
    return (base + np.cumsum(rng.integers(1, 40, size=n))).astype(int).tolist()


def _scene_job(args: tuple[str, int, str]) -> Scene:
    return make_scene(*args)


def _scenes(jobs: list[tuple[str, int, str]], workers: int):
    """Scenes of ``jobs`` in order, made in ``workers`` processes (each is a pure function)."""
    if workers <= 1:
        yield from map(_scene_job, jobs)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(_scene_job, jobs, chunksize=8)


def _listed_images(path: Path) -> set[str]:
    """File names of the images an earlier generated annotation file lists (empty if none or unreadable)."""
    try:
        doc = json.loads(path.read_bytes())
        return {str(im["file_name"]) for im in doc["images"]}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return set()


def write_source(root: Path, workers: int = 1, quiet: bool = True) -> None:
    """Generate the demo's COCO-format source under ``root`` (deterministic bytes)."""
    import sys

    from tqdm import tqdm

    root = Path(root)
    remove_tmp_leftovers(root / "annotations", [f"instances_{part}2017.json" for part in ("train", "val")])
    next_ann = 1
    for part, n in (("train", N_TRAIN), ("val", N_VAL)):
        folder = root / f"{part}2017"
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations, names = [], [], set()
        ids = _image_ids(part, n)
        jobs = [(part, i, f"{ids[i]:012d}.jpg") for i in range(n)]
        before = _listed_images(root / "annotations" / f"instances_{part}2017.json")
        remove_tmp_leftovers(folder, {j[2] for j in jobs} | before)
        scenes = _scenes(jobs, workers)
        for i, scene in enumerate(tqdm(scenes, total=n, desc=f"demo {part}2017", unit="img", disable=quiet, file=sys.stderr)):
            atomic_write_bytes(folder / scene.file_name, scene.jpeg)
            names.add(scene.file_name)
            images.append({"id": ids[i], "file_name": scene.file_name, "height": scene.height, "width": scene.width,
                           "license": 1})
            for a in scene.anns:
                annotations.append({"id": next_ann, "image_id": ids[i], **a})
                next_ann += 1
        for name in sorted(before - names):  # images of an older generator version (listed by its annotations)
            p = folder / name
            if "/" not in name and p.is_file() and not p.is_symlink():
                p.unlink()
        data = {
            "info": {"description": "COCO-AD demo source (generated, benchmark.demo_source)", "version": "1.0", "year": 2024},
            "licenses": [{"id": 1, "name": "CC0 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
            "images": images,
            "annotations": annotations,
            "categories": [{"id": cid, "name": name, "supercategory": "shape"} for cid, name, *_ in CATEGORIES],
        }
        atomic_write_bytes(root / "annotations" / f"instances_{part}2017.json", dumps_json(data, compact=True))


def build_demo(
    out: Path, workers: int | None = None, quiet: bool = False, echo: Callable[[str], None] = print,
    masks: str = "pycocotools",
) -> dict:
    """Generate the source under ``out/source`` and build ``coco-ad-demo`` into ``out`` (``masks``: the mask mode)."""
    from benchmark.coco_ad import build_coco_ad, image_folder
    from benchmark.folder import MASK_MODES
    from benchmark.writer import check_links, check_writable, write_errors

    out = Path(out)
    if masks not in MASK_MODES:
        raise BuildError(f"unknown mask mode {masks!r}; use one of {', '.join(MASK_MODES)}")
    if masks == "ader":
        from benchmark.ader_masks import require_opencv

        require_opencv()
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a folder; choose another --out")
    # The checks write_benchmark makes, made before the source is generated.
    existing = mf.read_existing(out)
    if existing is not None and existing.get("name") != NAME:
        raise BuildError(f"{out}/benchmark.json: holds the benchmark {existing.get('name')!r}, not {NAME!r}; choose another --out")
    src = out / SOURCE_DIR
    check_links(out, {image_folder(p): src / image_folder(p) for p in ("train", "val")})
    check_writable(out, [SOURCE_DIR] + [f"{SOURCE_DIR}/{d}" for d in ("annotations", "train2017", "val2017")])
    from contract.names import default_workers

    t0 = time.perf_counter()
    with write_errors(out):
        write_source(src, workers=default_workers() if workers is None else max(1, int(workers)), quiet=quiet)
    echo(f"{NAME}: generated the source in {src} ({N_TRAIN} train + {N_VAL} val images, {time.perf_counter() - t0:.1f} s)")
    return build_coco_ad(src, out, None, workers=workers, quiet=quiet, name=NAME, echo=echo, masks=masks)
