"""COCO-AD construction (SPEC §2) from a COCO-format source.

Definitions, for ``n`` categories (``n`` a multiple of 4, ``a = n / 4``; COCO:
80 and 20):

- label ``i`` is the ``i``-th category id in ascending order;
- split ``k`` (0..3) holds labels ``a·k … a·k + a − 1`` out as anomaly classes;
- only images with at least one annotation take part;
- train set: annotated ``train2017`` images none of whose annotations is an
  anomaly class (the others are dropped);
- test set: every annotated ``val2017`` image; anomalous iff one of its
  annotations is an anomaly class, with the union of those annotations,
  rasterised by pycocotools as ``COCO.annToMask`` does, as ground truth (an
  image whose anomaly annotations all have zero area is anomalous with an
  empty mask); with ``masks="ader"`` drawn instead as ADer's script drew the
  published masks (:mod:`benchmark.ader_masks`).

Membership and labels are pure functions of the annotation files
(:func:`index_part`, :func:`plan_splits`); reading and writing sit in
:func:`load_source` and :func:`build_coco_ad`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from benchmark.errors import BuildError
from contract.files import sha256_bytes
from benchmark.folder import DEFAULT_MASKS, MASK_MODES
from benchmark.masks import render_coco_job
from benchmark.writer import BuildPlan, SplitPlan, format_counts, write_benchmark

N_SPLITS = 4
PARTS = ("train", "val")
CLS_NAME = "coco"

#: Image and category counts of the annotation files of a complete COCO 2017.
COCO2017_IMAGES = {"train": 118_287, "val": 5_000}
COCO2017_CATEGORIES = 80
#: Published per-split counts (SPEC §2) that a complete COCO 2017 must give.
PUBLISHED_COUNTS = {
    "0": {"train": 30_438, "test_normal": 1_291, "test_anomalous": 3_661},
    "1": {"train": 65_133, "test_normal": 2_785, "test_anomalous": 2_167},
    "2": {"train": 79_083, "test_normal": 3_328, "test_anomalous": 1_624},
    "3": {"train": 77_580, "test_normal": 3_253, "test_anomalous": 1_699},
}


def annotation_file(root: Path, part: str) -> Path:
    return Path(root) / "annotations" / f"instances_{part}2017.json"


def image_folder(part: str) -> str:
    return f"{part}2017"


@dataclass
class PartIndex:
    """What the construction needs of one annotation file.

    ``images``: {image id: (file_name, height, width)} of every listed image;
    ``labels``: {image id: set of labels} of the annotated ones;
    ``anns``: {image id: [(label, segmentation)]} (val only, else empty).
    """

    part: str
    images: dict[int, tuple[str, int, int]]
    labels: dict[int, set[int]]
    anns: dict[int, list[tuple[int, object]]]


def _where(path: Path, what: str) -> str:
    return f"{path}: {what}"


def parse_categories(data: dict, path: Path) -> list[tuple[int, str]]:
    """[(category id, name)] sorted by id."""
    try:
        cats = sorted((int(c["id"]), str(c["name"])) for c in data["categories"])
    except (KeyError, TypeError, ValueError) as e:
        raise BuildError(_where(path, f"malformed 'categories' ({type(e).__name__}: {e}); use a COCO instances file")) from None
    ids = [c for c, _ in cats]
    if len(set(ids)) != len(ids):
        raise BuildError(_where(path, "duplicate category ids in 'categories'"))
    if not cats:
        raise BuildError(_where(path, "no categories"))
    return cats


def index_part(data: dict, part: str, label_of: dict[int, int], path: Path, keep_segm: bool) -> PartIndex:
    """Index one parsed annotation file (see :class:`PartIndex`)."""
    images: dict[int, tuple[str, int, int]] = {}
    try:
        for im in data["images"]:
            images[int(im["id"])] = (str(im["file_name"]), int(im["height"]), int(im["width"]))
    except (KeyError, TypeError, ValueError) as e:
        raise BuildError(_where(path, f"malformed 'images' entry ({type(e).__name__}: {e}); use a COCO instances file")) from None
    labels: dict[int, set[int]] = {}
    anns: dict[int, list] = {}
    try:
        annotations = data["annotations"]
        iter(annotations)
    except (KeyError, TypeError):
        raise BuildError(_where(path, "no 'annotations' list; use a COCO instances file")) from None
    for n, ann in enumerate(annotations):
        try:
            img_id, cat_id = int(ann["image_id"]), int(ann["category_id"])
            segm = ann["segmentation"] if keep_segm else None
        except (KeyError, TypeError, ValueError) as e:
            raise BuildError(_where(path, f"annotation #{n} is malformed ({type(e).__name__}: {e})")) from None
        if cat_id not in label_of:
            raise BuildError(_where(path, f"annotation #{n} (id {ann.get('id')}) has unknown category_id {cat_id}"))
        if img_id not in images:
            raise BuildError(_where(path, f"annotation #{n} (id {ann.get('id')}) refers to unlisted image_id {img_id}"))
        label = label_of[cat_id]
        labels.setdefault(img_id, set()).add(label)
        if keep_segm:
            _check_segmentation(segm, images[img_id], path, n)
            anns.setdefault(img_id, []).append((label, segm))
    return PartIndex(part, images, labels, anns)


def _check_segmentation(segm, image: tuple[str, int, int], path: Path, n: int) -> None:
    """Reject segmentations pycocotools cannot rasterise for this image (one line, not a crash)."""
    _, h, w = image
    if isinstance(segm, list):
        if all(isinstance(p, list) and all(isinstance(v, (int, float)) for v in p) for p in segm):
            # pycocotools tells polygons from boxes by the first part's length and fails on <= 4 numbers
            if segm and len(segm[0]) <= 4:
                raise BuildError(_where(path, f"annotation #{n}: polygon part 0 has {len(segm[0])} coordinates, "
                                              f"which pycocotools cannot rasterise; fix the annotation"))
            return
    elif isinstance(segm, dict) and isinstance(segm.get("size"), list) and len(segm["size"]) == 2:
        counts = segm.get("counts")
        if [int(v) for v in segm["size"]] != [h, w]:
            raise BuildError(_where(path, f"annotation #{n}: RLE size {segm['size']} differs from its image's {[h, w]}"))
        if isinstance(counts, str):
            return
        if isinstance(counts, list) and all(isinstance(v, int) for v in counts) and sum(counts) == h * w:
            return
    raise BuildError(_where(path, f"annotation #{n}: segmentation is neither polygons nor an RLE of its image"))


def anomaly_labels(sid: str, a: int) -> set[int]:
    k = int(sid)
    return set(range(a * k, a * k + a))


def mask_dir_name(a: int, sid: str) -> str:
    return f"val2017_mask_ad_{a}_{sid}"


def meta_name(a: int, sid: str) -> str:
    return f"meta_{a}_{sid}.json"


def _item(img_path: str, mask_path: str, anomaly: int) -> dict:
    return {"img_path": img_path, "mask_path": mask_path, "cls_name": CLS_NAME, "specie_name": "", "anomaly": anomaly}


def plan_splits(
    train: PartIndex, val: PartIndex, categories: list[tuple[int, str]], split_ids: list[str]
) -> tuple[list[SplitPlan], list[tuple]]:
    """Split plans and the mask jobs (for :func:`benchmark.masks.render_coco_job`)."""
    a = len(categories) // N_SPLITS
    names = [name for _, name in categories]
    plans = []
    targets: dict[int, list] = {}  # val image id -> [(mask relpath, anomaly labels)]
    for sid in split_ids:
        anom = anomaly_labels(sid, a)
        tr = [
            _item(f"{image_folder('train')}/{train.images[i][0]}", "", 0)
            for i, labs in train.labels.items()
            if not (labs & anom)
        ]
        te = []
        mdir = mask_dir_name(a, sid)
        for i, labs in val.labels.items():
            fname = val.images[i][0]
            if labs & anom:
                rel = f"{mdir}/{Path(fname).stem}.png"
                te.append(_item(f"{image_folder('val')}/{fname}", rel, 1))
                targets.setdefault(i, []).append((rel, frozenset(anom)))
            else:
                te.append(_item(f"{image_folder('val')}/{fname}", "", 0))
        tr.sort(key=lambda d: d["img_path"])
        te.sort(key=lambda d: d["img_path"])
        plans.append(
            SplitPlan(
                sid=sid,
                meta=meta_name(a, sid),
                mask_dir=mdir,
                train=tr,
                test=te,
                normal_classes=[n for lab, n in enumerate(names) if lab not in anom],
                anomaly_classes=[n for lab, n in enumerate(names) if lab in anom],
            )
        )
    jobs = []
    for i in sorted(targets, key=lambda i: val.images[i][0]):
        _, h, w = val.images[i]
        needed = set().union(*(labs for _, labs in targets[i]))
        anns = [(lab, segm) for lab, segm in val.anns[i] if lab in needed]
        jobs.append((val.images[i][0], h, w, anns, targets[i]))
    return plans, jobs


def _read_json(path: Path) -> tuple[dict, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BuildError(f"{path}: annotation file missing; expected the COCO layout <root>/annotations/instances_{{train,val}}2017.json") from None
    except IsADirectoryError:
        raise BuildError(f"{path}: is a folder, expected a COCO annotation file") from None
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BuildError(f"{path}: malformed JSON ({e}); re-download or regenerate it") from None
    if not isinstance(obj, dict):
        raise BuildError(f"{path}: not a COCO annotation file (top level is not an object)")
    return obj, sha256_bytes(data)


def _check_images(root: Path, idx: PartIndex) -> None:
    folder = root / image_folder(idx.part)
    if not folder.is_dir():
        raise BuildError(f"{folder}: image folder missing; expected the COCO layout <root>/{image_folder(idx.part)}/")
    present = set(os.listdir(folder))
    missing = []
    for i in idx.labels:
        fname = idx.images[i][0]
        if fname not in present and not (folder / fname).is_file():
            missing.append(fname)
    if missing:
        missing.sort()
        few = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
        raise BuildError(
            f"{folder}: {len(missing)} annotated image file(s) missing ({few}); restore them or use a complete source"
        )


def _check_unique_stems(idx: PartIndex, path: Path) -> None:
    seen: dict[str, str] = {}
    for i in idx.labels:
        fname = idx.images[i][0]
        stem = Path(fname).stem
        if stem in seen and seen[stem] != fname:
            raise BuildError(f"{path}: images {seen[stem]} and {fname} share a stem, so their masks would collide")
        seen[stem] = fname


@dataclass
class Source:
    root: Path
    categories: list[tuple[int, str]]
    train: PartIndex
    val: PartIndex
    hashes: dict[str, str]  # {annotation file name: sha256}


def load_source(root: Path) -> Source:
    """Read and check a COCO-format source; BuildError (one line) on any defect."""
    root = Path(root)
    if not root.is_dir():
        raise BuildError(f"{root}: COCO root folder missing; pass --coco-root DIR holding annotations/, train2017/, val2017/")
    parsed, hashes, cats = {}, {}, {}
    for part in PARTS:
        path = annotation_file(root, part)
        parsed[part], hashes[path.name] = _read_json(path)
        cats[part] = parse_categories(parsed[part], path)
    if cats["train"] != cats["val"]:
        raise BuildError(f"{annotation_file(root, 'train')}: categories differ from {annotation_file(root, 'val').name}'s; use matching files")
    categories = cats["val"]
    if len(categories) % N_SPLITS:
        raise BuildError(
            f"{annotation_file(root, 'val')}: {len(categories)} categories; COCO-AD needs a multiple of {N_SPLITS} (one quarter held out per split)"
        )
    label_of = {cid: lab for lab, (cid, _) in enumerate(categories)}
    idx = {}
    for part in PARTS:
        idx[part] = index_part(parsed[part], part, label_of, annotation_file(root, part), keep_segm=(part == "val"))
        parsed[part] = None  # drop the big parse early (train2017 is ~450 MB of JSON)
    _check_unique_stems(idx["val"], annotation_file(root, "val"))
    for part in PARTS:
        _check_images(root, idx[part])
    return Source(root, categories, idx["train"], idx["val"], hashes)


def is_complete_coco2017(src: Source, table: dict | None = None) -> bool:
    """A full COCO 2017: the annotation files list every train and val image."""
    table = COCO2017_IMAGES if table is None else table
    return (
        len(src.categories) == COCO2017_CATEGORIES
        and len(src.train.images) == table["train"]
        and len(src.val.images) == table["val"]
    )


def parse_split_ids(splits: list[str] | None) -> list[str]:
    if not splits:
        return [str(k) for k in range(N_SPLITS)]
    out = []
    for s in (part for arg in splits for part in str(arg).split(",") if part.strip()):
        s = s.strip()
        if s not in {str(k) for k in range(N_SPLITS)}:
            raise BuildError(f"unknown split id {s!r}; COCO-AD has splits {', '.join(str(k) for k in range(N_SPLITS))}")
        if s not in out:
            out.append(s)
    return sorted(out, key=int)


def _ader_jobs(coco_root: Path, jobs: list, workers: int | None, quiet: bool, echo: Callable[[str], None]) -> list:
    """The mask jobs with each image's decoded size appended, for :func:`benchmark.ader_masks.render_ader_job`."""
    from benchmark import ader_masks
    from contract.names import default_workers

    path = annotation_file(coco_root, "val")
    for fname, _, _, anns, _ in jobs:
        for label, segm in anns:
            ader_masks.check_segmentation(segm, f"{path}: an annotation of {fname}")
    folder = coco_root / image_folder("val")
    sizes = ader_masks.decoded_sizes(
        [folder / j[0] for j in jobs], default_workers() if workers is None else max(1, int(workers)), quiet
    )
    out = [(*job, sizes[str(folder / job[0])]) for job in jobs]
    other = sorted(job[0] for job in out if tuple(job[5]) != (job[1], job[2]))
    if other:
        echo(
            f"note: {len(other)} anomalous image(s) decode at another size than their annotation's width/height "
            f"(e.g. {other[0]}: EXIF orientation or a wrong size); as ADer, their masks take the decoded size"
        )
    return out


def build_coco_ad(
    coco_root: Path,
    out: Path | None = None,
    splits: list[str] | None = None,
    workers: int | None = None,
    quiet: bool = False,
    name: str = "coco-ad",
    echo: Callable[[str], None] = print,
    masks: str = DEFAULT_MASKS,
) -> dict:
    """Build COCO-AD from ``coco_root`` into ``out`` (default: the COCO root); returns the manifest.

    ``masks``: one of :data:`benchmark.masks.MASK_MODES`, how annotations become masks.
    """
    split_ids = parse_split_ids(splits)
    if masks not in MASK_MODES:
        raise BuildError(f"unknown mask mode {masks!r}; use one of {', '.join(MASK_MODES)}")
    if masks == "ader":
        from benchmark import ader_masks

        ader_masks.require_opencv()  # before reading anything: a missing extra fails at once
    coco_root = Path(coco_root)
    out = coco_root if out is None else Path(out)
    echo(f"{name}: reading the annotation files of {coco_root}")
    src = load_source(coco_root)
    plans, jobs = plan_splits(src.train, src.val, src.categories, split_ids)
    render, libraries = render_coco_job, {}
    if masks == "ader":
        jobs = _ader_jobs(coco_root, jobs, workers, quiet, echo)
        render, libraries = ader_masks.render_ader_job, {"opencv": ader_masks.opencv_version()}
    links = {}
    if os.path.abspath(out) != os.path.abspath(coco_root):
        links = {image_folder(p): coco_root / image_folder(p) for p in PARTS}
    plan = BuildPlan(name=name, source=src.hashes, splits=plans, jobs=jobs, render=render, links=links,
                     masks=masks, libraries=libraries)

    a = len(src.categories) // N_SPLITS
    echo(
        f"{name}: {len(src.categories)} categories, {a} held out per split; "
        f"annotated images: {len(src.train.labels):,} of {len(src.train.images):,} train, "
        f"{len(src.val.labels):,} of {len(src.val.images):,} val"
    )
    if is_complete_coco2017(src):
        echo(format_counts(plan, PUBLISHED_COUNTS))
        bad = [
            s.sid
            for s in plans
            if any(s.counts[k] != PUBLISHED_COUNTS[s.sid][k] for k in ("train", "test_normal", "test_anomalous"))
        ]
        if bad:
            raise BuildError(
                f"{coco_root}: a complete COCO 2017 must give the published counts, split(s) {', '.join(bad)} differ "
                f"(see the table); check the annotation files (sha256 in the manifest) and rebuild"
            )
    else:
        echo(format_counts(plan))
    manifest = write_benchmark(out, plan, workers=workers, quiet=quiet)
    echo(f"wrote {out} (splits {', '.join(split_ids)}; {len(manifest['files']):,} files listed)")
    return manifest
