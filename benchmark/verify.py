"""``verify``: re-hash every file a benchmark folder's manifest lists, and check its fields.

A file is reported as ``missing`` or ``changed`` (its sha256 differs from the
manifest's); split checksums are recomputed as well, so a manifest edited by
hand is caught too. The fields that decide what the evaluator reads and how it
compares are checked as well (:func:`field_problems`): ``image_root`` inside
the folder, a supported ``protocol`` and ``eval_size``, a known ``masks``
mode, and meta paths that stay inside the folder. A split's evaluation-size
ground truth (:mod:`benchmark.eval_gt`) is recomputed from its masks, so a
stale one (another protocol) is caught although its own sha256 matches.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmark.errors import BuildError
from contract.files import sha256_file, sha256_of_listing
from contract.names import sort_split_ids
from benchmark.folder import DEFAULT_MASKS, MANIFEST, MASK_MODES, inside_folder
from benchmark.manifest import owned_by
from benchmark.protocol import protocol_problems


def verify_folder(root: Path, workers: int | None = None, quiet: bool = True) -> tuple[int, list[str]]:
    """(number of files checked, problem lines); BuildError if there is no readable manifest.

    ``workers``: processes that recompute the evaluation-size ground truth (default: the CPUs).
    """
    root = Path(root)
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BuildError(f"{path}: missing; is {root} a benchmark folder? (build one with python -m benchmark.build)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else e
        raise BuildError(f"{path}: not valid JSON ({why}); rebuild the benchmark") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise BuildError(f"{path}: no 'files' listing; rebuild the benchmark")
    problems = []
    for rel in sorted(files):
        p = root / rel
        if not inside_folder(rel):
            problems.append(f"listed path leaves the benchmark folder: {rel!r:.80}")
        elif not p.is_file():
            problems.append(f"missing: {rel}")
        elif sha256_file(p) != files[rel]:
            problems.append(f"changed: {rel}")
    splits = manifest.get("splits")
    if not isinstance(splits, dict):
        raise BuildError(f"{path}: no 'splits' object; rebuild the benchmark")
    for sid, entry in sorted(splits.items()):
        own = [(r, d) for r, d in files.items() if isinstance(entry, dict) and owned_by(r, entry)]
        if not isinstance(entry, dict) or entry.get("sha256") != sha256_of_listing(own):
            problems.append(f"split {sid}: checksum in {MANIFEST} does not match its listed files")
    problems += field_problems(root, manifest, problems)
    if not problems:  # the ground truth is recomputed only from inputs that are intact
        for sid, entry in sorted(splits.items()):
            if entry.get("eval_gt") is not None:
                problems += _check_eval_gt(root, sid, workers, quiet)
    return len(files), problems


def _check_eval_gt(root: Path, sid: str, workers: int | None, quiet: bool) -> list[str]:
    """The split's evaluation-size ground truth against the one recomputed from its masks."""
    import numpy as np

    from benchmark import BenchmarkError, eval_gt, open_benchmark
    from contract.names import default_workers

    try:
        bench = open_benchmark(root)
        stored = bench.eval_gt(sid)
        items = [(it.img_path, it.mask_path) for it in bench.items(sid, "test")]
        jobs = eval_gt.split_jobs(root, items, bench.files, bench.protocol)
        fresh = eval_gt.render(jobs, bench.eval_size, default_workers() if workers is None else workers, quiet)
    except (BenchmarkError, ValueError, KeyError) as e:
        return [f"split {sid}: evaluation-size ground truth cannot be checked ({e})"]
    same = all(np.array_equal(stored.row(i), fresh[i]) for i in range(len(fresh)))
    stored.close()
    if not same:
        return [f"changed: {bench.split(sid)['eval_gt']} (not the split's masks at the protocol's evaluation "
                f"size; rewrite it with python -m benchmark.build gt {root})"]
    return []


def field_problems(root: Path, manifest: dict, file_problems: list[str]) -> list[str]:
    """Problems of the fields that steer the evaluator (see the module docstring).

    ``image_root`` must be a relative path that stays inside the folder, even
    after resolving links: images outside the folder are reached only through
    the image folders the builder links in (COCO-AD built with ``--out``
    elsewhere than the COCO root: ``train2017/`` and ``val2017/`` pointing
    there), never through ``image_root``. Meta files that are listed and
    unchanged are read, and every ``img_path`` / ``mask_path`` in them must be
    relative without ``..``, and every ``mask_path`` listed in ``files``.
    """
    out = []
    image_root = manifest.get("image_root", ".")
    if not inside_folder(image_root) and image_root != ".":
        out.append(f"image_root {image_root!r:.80} leaves the benchmark folder; it must be a relative path inside it ('.')")
    else:
        real_root, real_images = os.path.realpath(root), os.path.realpath(root / image_root)
        if os.path.commonpath([real_root, real_images]) != real_root:
            out.append(f"image_root {image_root!r:.80} resolves outside the benchmark folder (through a link)")
    out += protocol_problems(manifest.get("protocol"))
    masks = manifest.get("masks", DEFAULT_MASKS)
    if masks not in MASK_MODES:
        out.append(f"masks {masks!r:.60} is not a known mask mode ({', '.join(MASK_MODES)})")
    files = manifest["files"]
    bad_files = {line.split(": ", 1)[1] for line in file_problems if line.startswith(("missing: ", "changed: "))}
    for sid, entry in sorted(manifest["splits"].items()):
        meta = entry.get("meta") if isinstance(entry, dict) else None
        if not inside_folder(meta) or not inside_folder(entry.get("mask_dir")):
            out.append(f"split {sid}: meta or mask_dir leaves the benchmark folder")
            continue
        if meta not in files or meta in bad_files:
            continue  # already reported (or not listed: the split checksum says so)
        out += _meta_problems(root / meta, meta, files)
    return out


def _meta_problems(path: Path, meta: str, files: dict) -> list[str]:
    try:
        doc = json.loads(path.read_bytes())
        items = [it for part in ("train", "test") for lst in doc[part].values() for it in lst]
        paths = [(it["img_path"], it.get("mask_path", "") or "") for it in items]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        return [f"{meta}: not an ADer meta file ({type(e).__name__})"]
    out = []
    outside = sorted({p for pair in paths for p in pair if p and not inside_folder(p)} | {i for i, _ in paths if not i})
    if outside:
        out.append(f"{meta}: {len(outside)} path(s) leave the benchmark folder, e.g. {outside[0]!r:.80}")
    unlisted = sorted({m for _, m in paths if m and m not in files and inside_folder(m)})
    if unlisted:
        out.append(f"{meta}: {len(unlisted)} mask_path(s) not listed in {MANIFEST}, e.g. {unlisted[0]!r:.80}")
    return out


def describe(root: Path) -> str:
    """One line: what the folder holds (name, version, mask mode, splits), for ``verify``'s report."""
    manifest = json.loads((Path(root) / MANIFEST).read_bytes())
    splits = ", ".join(sort_split_ids(manifest["splits"]))
    masks = manifest.get("masks", DEFAULT_MASKS)
    how = {"pycocotools": "pycocotools annToMask", "ader": "ADer's OpenCV fillPoly rule"}.get(masks, "unknown")
    return f"{manifest.get('name')} v{manifest.get('version')}, splits {splits}, masks: {masks} ({how})"
