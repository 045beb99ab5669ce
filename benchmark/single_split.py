"""The one-split layout shared by the MVTec AD and VisA builders.

``<out>/meta_0.json`` (ADer meta, ``cls_name`` per object), normalised masks
under ``<out>/mask_ad_0/<img_path with suffix .png>`` (8-bit, 0/255: the
source masks are copied, nonzero = anomalous, never modified in place), and
``benchmark.json`` with the single split ``"0"``. The meta is not called
``meta.json`` so that an ADer ``meta.json`` already in the dataset folder is
left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from benchmark.errors import BuildError
from benchmark.masks import render_copy_job
from benchmark.writer import BuildPlan, SplitPlan, format_counts, write_benchmark

SPLIT_ID = "0"
META = "meta_0.json"
MASK_DIR = "mask_ad_0"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def item(img_path: str, mask_path: str, cls_name: str, specie_name: str, anomaly: int) -> dict:
    return {"img_path": img_path, "mask_path": mask_path, "cls_name": cls_name, "specie_name": specie_name, "anomaly": anomaly}


def mask_relpath(img_path: str) -> str:
    return f"{MASK_DIR}/{Path(img_path).with_suffix('.png').as_posix()}"


def missing_error(where: Path, what: str, names: list[str], fix: str) -> BuildError:
    names = sorted(names)
    few = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    return BuildError(f"{where}: {len(names)} {what} missing ({few}); {fix}")


def build_single_split(
    root: Path,
    out: Path | None,
    name: str,
    source: dict[str, str],
    train: list[dict],
    test: list[tuple[dict, Path | None]],
    anomaly_classes: list[str],
    link_names: list[str],
    workers: int | None,
    quiet: bool,
    echo: Callable[[str], None] = print,
) -> dict:
    """Write the one-split benchmark. ``test`` pairs each item with its source mask file (or None)."""
    root = Path(root)
    out = root if out is None else Path(out)
    if not train or not test:
        raise BuildError(f"{root}: no {'train' if not train else 'test'} images found; check the folder layout")
    jobs = sorted((str(src), it["mask_path"]) for it, src in test if src is not None)
    plan_split = SplitPlan(
        sid=SPLIT_ID,
        meta=META,
        mask_dir=MASK_DIR,
        train=sorted(train, key=lambda d: d["img_path"]),
        test=sorted((it for it, _ in test), key=lambda d: d["img_path"]),
        normal_classes=sorted({it["cls_name"] for it in train} | {it["cls_name"] for it, _ in test}),
        anomaly_classes=sorted(anomaly_classes),
    )
    links = {}
    if os.path.abspath(out) != os.path.abspath(root):
        links = {n: root / n for n in sorted(link_names)}
    plan = BuildPlan(name=name, source=source, splits=[plan_split], jobs=jobs, render=render_copy_job, links=links)
    echo(f"{name}: {len(plan_split.normal_classes)} classes")
    echo(format_counts(plan))
    manifest = write_benchmark(out, plan, workers=workers, quiet=quiet)
    echo(f"wrote {out} ({len(manifest['files']):,} files listed)")
    return manifest
