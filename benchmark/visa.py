"""VisA → benchmark folder (one split, ``cls_name`` per object, name ``visa``).

Source: ``<root>/split_csv/1cls.csv`` with the columns ``object, split, label,
image, mask`` (``split`` train/test, ``label`` normal/anomaly, paths relative
to ``<root>``). VisA masks hold 0/1 or 0/255; nonzero is anomalous. The
anomaly classes of the manifest are ``<object>/anomaly`` (VisA names no
defect types). ``specie_name`` is empty.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from benchmark.errors import BuildError
from contract.files import sha256_file
from benchmark.single_split import build_single_split, item, mask_relpath, missing_error

NAME = "visa"
CSV = "split_csv/1cls.csv"
COLUMNS = ("object", "split", "label", "image", "mask")


def read_rows(root: Path) -> list[dict]:
    root = Path(root)
    if not root.is_dir():
        raise BuildError(f"{root}: VisA folder missing; pass --root DIR holding {CSV}")
    path = root / CSV
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            if any(c not in fields for c in COLUMNS):
                raise BuildError(f"{path}: needs the columns {', '.join(COLUMNS)} (has {', '.join(fields) or 'none'})")
            rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except FileNotFoundError:
        raise BuildError(f"{path}: missing; VisA ships its split in {CSV}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise BuildError(f"{path}: unreadable CSV ({e})") from None
    return rows


def scan_visa(root: Path):
    root = Path(root)
    rows = read_rows(root)
    path = root / CSV
    train, test, anomaly_classes, missing, tops, seen = [], [], set(), [], set(), set()
    for n, r in enumerate(rows, start=2):
        split, label, obj, img = r["split"].lower(), r["label"].lower(), r["object"], r["image"]
        if split not in ("train", "test") or label not in ("normal", "anomaly") or not obj or not img:
            raise BuildError(f"{path}: line {n}: expected split train|test, label normal|anomaly, object and image (got {r})")
        if split == "train" and label != "normal":
            raise BuildError(f"{path}: line {n}: an anomalous training image ({img}); unsupervised training uses normal images only")
        for rel in (img, r["mask"]):
            if rel and (Path(rel).is_absolute() or ".." in Path(rel).parts):
                raise BuildError(f"{path}: line {n}: path {rel!r} leaves the VisA folder; paths must be relative to it")
        if img in seen:
            raise BuildError(f"{path}: line {n}: image {img} listed twice")
        seen.add(img)
        tops.add(Path(img).parts[0])
        if not (root / img).is_file():
            missing.append(img)
            continue
        if split == "train":
            train.append(item(img, "", obj, "", 0))
        elif label == "normal":
            test.append((item(img, "", obj, "", 0), None))
        else:
            if not r["mask"] or not (root / r["mask"]).is_file():
                missing.append(r["mask"] or f"(no mask for {img})")
                continue
            anomaly_classes.add(f"{obj}/anomaly")
            test.append((item(img, mask_relpath(img), obj, "", 1), root / r["mask"]))
    if missing:
        raise missing_error(root, "listed image or mask file(s)", missing, f"restore them or fix {CSV}")
    return train, test, sorted(anomaly_classes), sorted(tops)


def build_visa(root: Path, out: Path | None = None, workers: int | None = None, quiet: bool = False,
               echo: Callable[[str], None] = print) -> dict:
    train, test, anomaly_classes, tops = scan_visa(root)
    source = {CSV: sha256_file(Path(root) / CSV)}
    return build_single_split(root, out, NAME, source, train, test, anomaly_classes, tops, workers, quiet, echo)
