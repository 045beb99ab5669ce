"""Writing a benchmark folder (SPEC §3) from a plan, whatever the source.

Order of work, chosen so that an interrupted build can simply be rerun:
checks first (nothing written on bad input), then image links, masks (in
parallel, each written atomically as soon as it is rendered), meta files, the
evaluation-size ground truth of each split (:mod:`benchmark.eval_gt`), and
``benchmark.json`` last. Leftovers of an interrupted run (temporary files,
masks no longer listed) are removed, so a rerun leaves exactly what a clean
build would.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from benchmark import manifest as mf
from benchmark.errors import BuildError
from benchmark.eval_gt import write_split as write_eval_gt
from benchmark.protocol import DEFAULT_PROTOCOL
from contract.names import default_workers
from contract.files import atomic_write_bytes, atomic_write_json, dumps_json, remove_stale_tmp, sha256_bytes
from benchmark.folder import MANIFEST


@dataclass
class SplitPlan:
    """One split to write: its meta items (ADer dicts) and what the manifest says of it."""

    sid: str
    meta: str  # meta file, relative to the benchmark folder
    mask_dir: str  # mask folder, relative to the benchmark folder
    train: list[dict]
    test: list[dict]
    normal_classes: list[str]
    anomaly_classes: list[str]

    @property
    def counts(self) -> dict[str, int]:
        n_anom = sum(1 for it in self.test if it["anomaly"])
        return {"train": len(self.train), "test_normal": len(self.test) - n_anom, "test_anomalous": n_anom}

    def meta_json(self) -> dict:
        """ADer meta: ``{"train": {cls: [items]}, "test": {cls: [items]}}``, items sorted by img_path."""
        out: dict[str, dict[str, list]] = {}
        for part, items in (("train", self.train), ("test", self.test)):
            by_cls: dict[str, list] = {}
            for it in sorted(items, key=lambda d: d["img_path"]):
                by_cls.setdefault(it["cls_name"], []).append(it)
            out[part] = by_cls
        return out


@dataclass
class BuildPlan:
    """Everything a build writes; made (and checked) before anything is written."""

    name: str
    source: dict[str, str]  # {annotation/list file name: sha256}
    splits: list[SplitPlan]
    jobs: list  # mask jobs for ``render``
    render: Callable  # top-level worker: render(out_root: str, job) -> [(relpath, sha256)]
    links: dict[str, Path] = field(default_factory=dict)  # {name in out: source folder}


def check_links(out: Path, links: dict[str, Path]) -> None:
    """BuildError if a link cannot be made because a real file or folder is in the way."""
    for name, target in links.items():
        p = out / name
        if p.is_symlink() or not p.exists():
            continue
        if p.resolve() == Path(target).resolve():
            continue  # e.g. --out inside a tree that already holds the images
        raise BuildError(
            f"{p}: exists and is not a link to {target}; move it away or choose another --out"
        )


def _link_target(out: Path, target: Path) -> str:
    """Relative target when the source lies inside ``out`` (the folder stays relocatable)."""
    out_abs, tgt_abs = Path(os.path.abspath(out)), Path(os.path.abspath(target))
    try:
        tgt_abs.relative_to(out_abs)
        return os.path.relpath(tgt_abs, out_abs)
    except ValueError:
        return str(tgt_abs)


def make_links(out: Path, links: dict[str, Path]) -> None:
    for name, target in sorted(links.items()):
        p = out / name
        want = _link_target(out, target)
        if p.is_symlink():
            if os.readlink(p) == want:
                continue
        elif p.exists():
            continue  # checked by check_links: it is the source folder itself
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.parent / f".{p.name}.link.tmp"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(want, tmp, target_is_directory=True)
        os.replace(tmp, p)


def _remove_stray(out: Path, mask_dir: str, keep: set[str]) -> int:
    """Delete files under ``out/mask_dir`` that this build did not write, and empty folders."""
    root = out / mask_dir
    n = 0
    if not root.is_dir():
        return 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for fn in filenames:
            p = Path(dirpath) / fn
            if p.relative_to(out).as_posix() not in keep:
                p.unlink()
                n += 1
        if dirpath != str(root) and not os.listdir(dirpath):
            os.rmdir(dirpath)
    return n


def render_masks(out: Path, plan: BuildPlan, workers: int, quiet: bool) -> dict[str, str]:
    """Run every mask job (in ``workers`` processes); {relpath: sha256} of the written masks."""
    hashes: dict[str, str] = {}
    fn = functools.partial(plan.render, str(out))
    bar = tqdm(total=len(plan.jobs), desc="masks", unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True)
    try:
        if workers <= 1 or len(plan.jobs) < 2:
            for job in plan.jobs:
                hashes.update(fn(job))
                bar.update()
        else:
            chunk = max(1, min(32, len(plan.jobs) // (workers * 8)))
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                for res in pool.imap_unordered(fn, plan.jobs, chunksize=chunk):
                    hashes.update(res)
                    bar.update()
    finally:
        bar.close()
    return hashes


def write_benchmark(out: Path, plan: BuildPlan, workers: int | None = None, quiet: bool = False) -> dict:
    """Write ``plan`` into the benchmark folder ``out``; returns the manifest written."""
    out = Path(out)
    workers = default_workers() if workers is None else max(1, int(workers))
    split_ids = [s.sid for s in plan.splits]

    # --- checks: nothing is written before all of them pass
    existing = mf.read_existing(out)
    merge = mf.check_can_merge(existing, out, plan.name, plan.source, split_ids)
    check_links(out, plan.links)
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a folder; choose another --out")

    # --- write
    out.mkdir(parents=True, exist_ok=True)
    for p in out.glob(".*.tmp"):  # leftovers of an interrupted write or link (never folders)
        if p.is_symlink() or p.is_file():
            p.unlink()
    for s in plan.splits:
        if (out / s.mask_dir).is_dir():
            remove_stale_tmp(out / s.mask_dir)
    make_links(out, plan.links)

    mask_hashes = render_masks(out, plan, workers, quiet)
    new_files: dict[str, str] = {}
    new_splits: dict[str, dict] = {}
    for s in plan.splits:
        expected = {it["mask_path"] for it in s.test if it["mask_path"]}
        missing = sorted(expected - set(mask_hashes))
        if missing:  # a bug of ours, not bad input
            raise RuntimeError(f"split {s.sid}: {len(missing)} mask(s) not rendered, e.g. {missing[:3]}")
        _remove_stray(out, s.mask_dir, expected)
        meta_bytes = dumps_json(s.meta_json(), compact=True)
        atomic_write_bytes(out / s.meta, meta_bytes)
        files = {p: mask_hashes[p] for p in expected}
        files[s.meta] = sha256_bytes(meta_bytes)
        # The evaluator's fast path: the test masks at the evaluation size (benchmark.eval_gt).
        gt_rel, gt_sha = write_eval_gt(out, s.meta, [(it["img_path"], it["mask_path"]) for it in s.test],
                                       files, DEFAULT_PROTOCOL, workers, quiet)
        files[gt_rel] = gt_sha
        new_files.update(files)
        new_splits[s.sid] = mf.split_entry(
            s.meta, s.mask_dir, s.normal_classes, s.anomaly_classes, s.counts, files
        )
        new_splits[s.sid]["eval_gt"] = gt_rel
    manifest = mf.assemble(existing, merge, plan.name, plan.source, new_splits, new_files)
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def format_counts(plan: BuildPlan, published: dict[str, dict[str, int]] | None = None) -> str:
    """The per-split count table (with the published counts beside, when given)."""
    head = f"{'split':>5}  {'train':>8}  {'test normal':>11}  {'test anomalous':>14}"
    if published:
        head += "  published (train / normal / anomalous)"
    lines = [head]
    for s in plan.splits:
        c = s.counts
        line = f"{s.sid:>5}  {c['train']:>8,}  {c['test_normal']:>11,}  {c['test_anomalous']:>14,}"
        if published and s.sid in published:
            p = published[s.sid]
            ok = all(p[k] == c[k] for k in ("train", "test_normal", "test_anomalous"))
            line += f"  {p['train']:,} / {p['test_normal']:,} / {p['test_anomalous']:,}  {'ok' if ok else 'MISMATCH'}"
        lines.append(line)
    return "\n".join(lines)
