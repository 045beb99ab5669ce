"""``verify``: re-hash every file a benchmark folder's manifest lists.

A file is reported as ``missing`` or ``changed`` (its sha256 differs from the
manifest's); split checksums are recomputed as well, so a manifest edited by
hand is caught too. A split's evaluation-size ground truth
(:mod:`benchmark.eval_gt`) is also recomputed from its masks, so a stale one
(another protocol) is caught although its own sha256 matches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.errors import BuildError
from contract.files import loads_json_strict, sha256_file, sha256_of_listing
from benchmark.folder import MANIFEST
from benchmark.manifest import owned_by


def verify_folder(root: Path, workers: int | None = None, quiet: bool = True) -> tuple[int, list[str]]:
    """(number of files checked, problem lines); BuildError if there is no readable manifest."""
    root = Path(root)
    path = root / MANIFEST
    try:
        manifest = loads_json_strict(path.read_bytes())
    except FileNotFoundError:
        raise BuildError(f"{path}: missing; is {root} a benchmark folder? (build one with python -m benchmark.build)") from None
    except ValueError as e:
        raise BuildError(f"{path}: not valid JSON ({e}); rebuild the benchmark") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise BuildError(f"{path}: no 'files' listing; rebuild the benchmark")
    splits = manifest.get("splits")
    if not isinstance(splits, dict):
        raise BuildError(f"{path}: 'splits' must be an object of split entries; rebuild the benchmark")
    problems = []
    bad_files = set()
    for rel in sorted(files):
        p = root / rel
        if not isinstance(files[rel], str) or not p.is_file():
            problems.append(f"missing: {rel}")
            bad_files.add(rel)
        elif sha256_file(p) != files[rel]:
            problems.append(f"changed: {rel}")
            bad_files.add(rel)
    for sid, entry in sorted(splits.items()):
        if not isinstance(entry, dict):
            problems.append(f"split {sid}: its entry in {MANIFEST} is not an object")
            continue
        own = [(r, d) for r, d in files.items() if owned_by(r, entry)]
        if entry.get("sha256") != sha256_of_listing(own):
            problems.append(f"split {sid}: checksum in {MANIFEST} does not match its listed files")
        if entry.get("eval_gt") is not None and not any(r in bad_files for r, _ in own):
            problems += _check_eval_gt(root, sid, workers, quiet)
    return len(files), problems


def _check_eval_gt(root: Path, sid: str, workers: int | None, quiet: bool) -> list[str]:
    """The split's evaluation-size ground truth against the one recomputed from its masks."""
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
    same = stored is not None and all(np.array_equal(stored.row(i), fresh[i]) for i in range(len(fresh)))
    if stored is not None:
        stored.close()
    if not same:
        rel = bench.split(sid)["eval_gt"]
        return [f"changed: {rel} (not the split's masks at the protocol's evaluation size; "
                f"rewrite it with python -m benchmark.build gt {root})"]
    return []
