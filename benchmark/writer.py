"""Writing a benchmark folder (SPEC §3) from a plan, whatever the source.

Order of work, chosen so that an interrupted build can simply be rerun:
checks first (nothing written on bad input or into a folder that cannot be
written), then image links, masks (in parallel, each written atomically as
soon as it is rendered), meta files, the evaluation-size ground truth of
each split (:mod:`benchmark.eval_gt`), and ``benchmark.json`` last. A write that
fails on the way (a full disk) is one line, leaves no partial file, and the
same command resumes.

The build removes only what it wrote, by exact names: leftovers of its own
interrupted atomic writes (``.<name>.<random>.tmp`` of the files it writes)
and the meta and mask files that the previous ``benchmark.json`` of the folder
lists but the new one does not (a rebuild from changed annotations, or an
evaluation-size ground truth of another size). Any
other file in the folder or in its mask folders is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import multiprocessing
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from benchmark import manifest as mf
from benchmark.errors import BuildError
from benchmark.eval_gt import eval_gt_relpath
from benchmark.eval_gt import write_split as write_eval_gt
from benchmark.protocol import DEFAULT_PROTOCOL
from contract.names import default_workers
from contract.files import atomic_write_bytes, atomic_write_json, dumps_json, remove_tmp_leftovers, sha256_bytes
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
    masks: str | None = None  # COCO-AD mask mode (manifest key ``masks``); None: masks copied from the source
    libraries: dict[str, str] = field(default_factory=dict)  # extra library versions that shape the masks


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


# Errors of the output folder (not of the input, not our bugs): one line, not a traceback.
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def check_writable(out: Path, subfolders: list[str]) -> None:
    """BuildError unless ``out`` (made if missing) and its existing ``subfolders`` accept new files.

    Probes with a temporary file that is removed at once, so that a read-only
    folder is refused before anything is written.
    """
    for folder in [out] + [out / d for d in subfolders]:
        try:
            if folder == out:
                out.mkdir(parents=True, exist_ok=True)
            elif not folder.is_dir() or folder.is_symlink():
                continue
            fd, probe = tempfile.mkstemp(prefix=".benchmark-build-probe.", suffix=".tmp", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise BuildError(f"{folder}: cannot write here ({e.strerror or e}); choose another --out") from None


@contextlib.contextmanager
def write_errors(out: Path):
    """Turn a failed write into ``out`` (full disk, permissions changed on the way) into one line."""
    try:
        yield
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:
            raise
        where = f" ({e.filename})" if e.filename else ""
        raise BuildError(
            f"{out}: cannot write the benchmark{where}: {e.strerror or e}; no file is half-written and "
            f"benchmark.json comes last: fix it and rerun the same command"
        ) from None


def _real_path(out: Path, rel: str) -> Path | None:
    """``out / rel`` if ``rel`` is a plain relative path whose every step below ``out`` is no link; else None."""
    parts = rel.split("/")
    if not rel or "\\" in rel or any(p in ("", ".", "..") for p in parts):
        return None
    p = out
    for part in parts:
        p = p / part
        if p.is_symlink():
            return None
    return p


def stale_files(existing: dict | None, keep: set[str]) -> list[str]:
    """Meta and mask files the previous manifest lists, that a build no longer lists (those in ``keep``)."""
    if existing is None:
        return []
    out = []
    for entry in existing["splits"].values():
        if not isinstance(entry, dict):
            continue
        meta, mdir = str(entry.get("meta", "")), str(entry.get("mask_dir", "")).rstrip("/")
        for rel in existing["files"]:
            if rel in keep:
                continue
            if (rel == meta and "/" not in rel and rel.endswith(".json") and rel != MANIFEST) or (
                mdir and rel.startswith(mdir + "/") and rel.endswith(".png")
            ) or (rel == entry.get("eval_gt") and "/" not in rel and rel.endswith(".npy")):
                out.append(rel)
    return sorted(set(out))


def remove_files(out: Path, rels: list[str]) -> int:
    """Delete the listed regular files under ``out`` (never through a link), then folders they leave empty."""
    n = 0
    for rel in rels:
        p = _real_path(out, rel)
        if p is None or not p.is_file():
            continue
        p.unlink()
        n += 1
        parent = p.parent
        while parent != out and parent.parent != out and not any(parent.iterdir()):
            parent.rmdir()  # a nested mask folder (MVTec's <class>/test/<defect>/) that held only these files
            parent = parent.parent
    return n


def remove_own_tmp(out: Path, rels) -> None:
    """Leftovers of interrupted atomic writes of the files ``rels`` (relative to ``out``)."""
    by_dir: dict[str, set[str]] = {}
    for rel in rels:
        head, _, name = rel.rpartition("/")
        by_dir.setdefault(head, set()).add(name)
    for head, names in sorted(by_dir.items()):
        folder = _real_path(out, head) if head else out
        if folder is not None and folder.is_dir():
            remove_tmp_leftovers(folder, names)


def run_parallel(fn: Callable, jobs: list, workers: int, desc: str, quiet: bool):
    """Yield ``fn(job)`` for every job, in any order, from ``workers`` processes, with a progress bar."""
    bar = tqdm(total=len(jobs), desc=desc, unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True)
    try:
        if workers <= 1 or len(jobs) < 2:
            for job in jobs:
                yield fn(job)
                bar.update()
        else:
            chunk = max(1, min(32, len(jobs) // (workers * 8)))
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                for res in pool.imap_unordered(fn, jobs, chunksize=chunk):
                    yield res
                    bar.update()
    finally:
        bar.close()


def render_masks(out: Path, plan: BuildPlan, workers: int, quiet: bool) -> dict[str, str]:
    """Run every mask job (in ``workers`` processes); {relpath: sha256} of the written masks."""
    hashes: dict[str, str] = {}
    for res in run_parallel(functools.partial(plan.render, str(out)), plan.jobs, workers, "masks", quiet):
        hashes.update(res)
    return hashes


def write_benchmark(out: Path, plan: BuildPlan, workers: int | None = None, quiet: bool = False) -> dict:
    """Write ``plan`` into the benchmark folder ``out``; returns the manifest written."""
    out = Path(out)
    workers = default_workers() if workers is None else max(1, int(workers))
    split_ids = [s.sid for s in plan.splits]

    # --- checks: nothing is written before all of them pass
    existing = mf.read_existing(out)
    merge = mf.check_can_merge(existing, out, plan.name, plan.source, split_ids, plan.masks)
    check_links(out, plan.links)
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a folder; choose another --out")
    check_writable(out, [s.mask_dir for s in plan.splits])
    with write_errors(out):
        return _write(out, plan, workers, quiet, existing, merge)


def _write(out: Path, plan: BuildPlan, workers: int, quiet: bool, existing: dict | None, merge: bool) -> dict:
    expected = {s.sid: {it["mask_path"] for it in s.test if it["mask_path"]} for s in plan.splits}
    listed_before = set(existing["files"]) if existing else set()
    eval_gts = {eval_gt_relpath(s.meta, DEFAULT_PROTOCOL["eval_size"]) for s in plan.splits}
    own = {MANIFEST} | {s.meta for s in plan.splits} | set().union(*expected.values()) | listed_before | eval_gts
    remove_own_tmp(out, sorted(own))
    make_links(out, plan.links)

    mask_hashes = render_masks(out, plan, workers, quiet)
    new_files: dict[str, str] = {}
    new_splits: dict[str, dict] = {}
    for s in plan.splits:
        missing = sorted(expected[s.sid] - set(mask_hashes))
        if missing:  # a bug of ours, not bad input
            raise RuntimeError(f"split {s.sid}: {len(missing)} mask(s) not rendered, e.g. {missing[:3]}")
        meta_bytes = dumps_json(s.meta_json(), compact=True)
        atomic_write_bytes(out / s.meta, meta_bytes)
        files = {p: mask_hashes[p] for p in expected[s.sid]}
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
    manifest = mf.assemble(existing, merge, plan.name, plan.source, new_splits, new_files, plan.masks, plan.libraries)
    # Files of the previous build that the new manifest drops, removed while the old manifest still lists them.
    remove_files(out, stale_files(existing, set(manifest["files"])))
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
