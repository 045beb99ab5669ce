"""MVTec AD → benchmark folder (one split, ``cls_name`` per object, name ``mvtec-ad``).

Source layout (the standard one)::

    <root>/<cls>/train/good/<img>
    <root>/<cls>/test/<defect or good>/<img>
    <root>/<cls>/ground_truth/<defect>/<stem>_mask.png

``specie_name`` is the defect folder (``good`` for normal images), as in
ADer's meta. Classes are the subfolders holding both ``train/`` and ``test/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from benchmark.errors import BuildError
from contract.files import sha256_of_listing
from benchmark.single_split import IMAGE_SUFFIXES, build_single_split, item, mask_relpath, missing_error

NAME = "mvtec-ad"
GOOD = "good"


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def scan_mvtec(root: Path):
    """(train items, [(test item, source mask or None)], anomaly classes, class names, source listing)."""
    root = Path(root)
    if not root.is_dir():
        raise BuildError(f"{root}: MVTec AD folder missing; pass --root DIR holding <class>/train, <class>/test")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "train").is_dir() and (p / "test").is_dir())
    if not classes:
        raise BuildError(f"{root}: no class folders with train/ and test/; expected the MVTec AD layout <class>/train/good, <class>/test/<defect>")
    train, test, anomaly_classes, missing, listing = [], [], set(), [], []
    for cls in classes:
        good = root / cls / "train" / GOOD
        if not good.is_dir():
            raise BuildError(f"{good}: missing; MVTec AD keeps the normal training images in <class>/train/good")
        for p in _images(good):
            rel = p.relative_to(root).as_posix()
            train.append(item(rel, "", cls, GOOD, 0))
            listing.append((rel, str(p.stat().st_size)))
        for dfolder in sorted(d for d in (root / cls / "test").iterdir() if d.is_dir()):
            defect = dfolder.name
            for p in _images(dfolder):
                rel = p.relative_to(root).as_posix()
                listing.append((rel, str(p.stat().st_size)))
                if defect == GOOD:
                    test.append((item(rel, "", cls, GOOD, 0), None))
                    continue
                src = root / cls / "ground_truth" / defect / f"{p.stem}_mask.png"
                if not src.is_file():
                    missing.append(src.relative_to(root).as_posix())
                    continue
                listing.append((src.relative_to(root).as_posix(), str(src.stat().st_size)))
                anomaly_classes.add(f"{cls}/{defect}")
                test.append((item(rel, mask_relpath(rel), cls, defect, 1), src))
    if missing:
        raise missing_error(root, "ground-truth mask file(s)", missing, "restore <class>/ground_truth/<defect>/<stem>_mask.png")
    return train, test, sorted(anomaly_classes), classes, listing


def build_mvtec(root: Path, out: Path | None = None, workers: int | None = None, quiet: bool = False,
                echo: Callable[[str], None] = print) -> dict:
    train, test, anomaly_classes, classes, listing = scan_mvtec(root)
    # No annotation file: the source is identified by its file list (paths and sizes).
    source = {"file-list": sha256_of_listing(listing)}
    return build_single_split(root, out, NAME, source, train, test, anomaly_classes, classes, workers, quiet, echo)
