"""Scoring a submission folder against a benchmark folder (SPEC §5).

The phases, in the spirit of pycocotools' evaluate / accumulate / summarize:

1. check the folder (:func:`evaluator.validate.check_structure`, no map read);
2. stream: for each split, one test image at a time, read its map
   (:func:`evaluator.maps.load_map`, which also checks it), bring it to the
   evaluation size (``benchmark.protocol.resize_map``), read its ground truth
   (``Benchmark.gt_mask``) and feed both into the
   :class:`~evaluator.metrics.ClassAccumulator` of its (split, class). Only
   one map and one mask are in memory at a time (plus the few kept for panels);
3. summarise: per-class metrics, their mean per split (undefined ones left
   out, with a warning), the mean over splits, threshold sweeps;
4. write (only if nothing was wrong): panels, then the result JSON, each
   atomically.

A bad map found while streaming stops the feeding; the remaining maps are
still checked (up to :data:`~evaluator.validate.MAX_PROBLEMS` problems) and
:class:`~evaluator.validate.SubmissionError` is raised before anything is
written.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmark import Benchmark
from benchmark.protocol import resize_map
from contract.files import atomic_write_json, sha256_file, sha256_of_listing
from contract.names import METRIC_NAMES, default_workers
from evaluator.maps import MapError, load_map
from evaluator.validate import MAX_PROBLEMS, Checked, Problems, SubmissionError, check_structure


_ROUNDING = 1e-9


def default_out(submission: str | os.PathLike, profile: str = "exact", pool: int | None = None) -> Path:
    """Default result path: ``<submission>/../results/<submission name>.<profile>[.pool<k>].json``.

    Beside the submission folder, never inside it (that would change the
    submission's checksum).
    """
    sub = Path(os.path.abspath(submission))
    tag = profile if pool is None else f"{profile}.pool{pool}"
    return sub.parent / "results" / f"{sub.name}.{tag}.json"


def _versions() -> dict[str, str]:
    import numba
    import PIL

    return {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__, "pillow": PIL.__version__}


def mean_defined(values) -> float | None:
    """Mean of the values that are not ``None``; ``None`` if there are none."""
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


class _Split:
    """Streaming state of one split: accumulators per class, panel picks, counters."""

    def __init__(self, bench: Benchmark, sid: str, pool: int | None, n_panels: int):
        from evaluator.metrics import ClassAccumulator

        self.sid = sid
        self.items = bench.items(sid, "test")
        self.accs = {c: ClassAccumulator(pool=pool) for c in bench.classes(sid)}
        self.resized = 0
        # Panels: anomalous images first, each group sorted by img_path (items already are).
        ranked = [it for it in self.items if it.anomaly] + [it for it in self.items if not it.anomaly]
        self.panel_items = ranked[:n_panels]
        self.panel_maps: dict[str, np.ndarray] = {}
        # Per-class value range of the maps at eval size: the panels' fixed colour scale.
        self.ranges: dict[str, list[float]] = {}


def prefetch(fn, items, workers: int, window: int):
    """``fn(item)`` for each item, in order, computed ahead by ``workers`` threads.

    At most ``window`` results are pending at once, so memory stays bounded
    however many items there are. Decoding (zlib, Pillow) and hashing release
    the GIL, which is where a scorer spends most of its time on real data.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as ex:
        pending: deque = deque()
        for it in items:
            pending.append(ex.submit(fn, it))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _io_workers() -> int:
    return default_workers()


def _stream(checked: Checked, pool: int | None, n_panels: int, quiet: bool) -> tuple[list[_Split], dict[str, str], list[str]]:
    """Phase 2: feed every map into its accumulator; ``(splits, {map rel: sha256}, problems)``."""
    from tqdm import tqdm

    bench = checked.benchmark
    size = bench.eval_size
    problems = Problems(checked.root)
    digests: dict[str, str] = {}
    states = []
    workers = _io_workers()

    def read(job):
        """Map (checked, at eval size) and ground truth of one image, or the problem found."""
        sid, item = job
        rel = checked.maps[sid][item.img_path]
        try:
            amap, digest = load_map(checked.root / rel)
        except MapError as e:
            return item, rel, None, None, None, str(e), False
        except OSError as e:
            return item, rel, None, None, None, f"cannot read ({e.strerror})", False
        resized = amap.shape != size
        if resized:
            amap = resize_map(amap, size, bench.protocol)
        try:
            gt = bench.gt_mask(item)
        except (OSError, ValueError) as e:
            mask = bench.mask_file(item)
            raise SubmissionError(
                [f"{mask}: cannot read the ground-truth mask ({e}); check the benchmark with python -m benchmark.build verify"]
            ) from None
        return item, rel, amap, digest, gt, None, resized

    for sid in checked.splits:
        st = _Split(bench, sid, pool, n_panels)
        states.append(st)
        scores = checked.scores[sid]
        panel_paths = {it.img_path for it in st.panel_items}
        jobs = ((sid, it) for it in st.items)
        bar = tqdm(total=len(st.items), desc=f"score split {sid}", unit="img", disable=True if quiet else None, leave=False)
        for item, rel, amap, digest, gt, error, resized in prefetch(read, jobs, workers, 4 * workers):
            bar.update()
            if len(problems) >= MAX_PROBLEMS:
                break
            if error is not None:
                problems.add(rel, error)
                continue
            digests[rel] = digest
            if problems.lines:
                continue  # already failed: keep checking maps, stop computing
            st.resized += resized
            score = None if scores is None else scores[item.img_path]
            st.accs[item.cls_name].add(gt, amap, int(item.anomaly), score=score)
            if n_panels:
                lo, hi = float(amap.min()), float(amap.max())
                r = st.ranges.setdefault(item.cls_name, [lo, hi])
                r[0], r[1] = min(r[0], lo), max(r[1], hi)
            if item.img_path in panel_paths:
                st.panel_maps[item.img_path] = np.array(amap, dtype=np.float32)
        bar.close()
    return states, digests, problems.lines


def _fraction(value) -> float | None:
    """A metric value for the result file: a float in [0, 1] or None.

    Sums of float64 weights (AUPRO's 1 / region area) can land a few ulps
    outside [0, 1]; those are clamped so that the file keeps its contract.
    """
    if value is None:
        return None
    value = float(value)
    if -_ROUNDING <= value < 0.0 or 1.0 < value <= 1.0 + _ROUNDING:
        value = min(max(value, 0.0), 1.0)
    return value


def _summarise(st: _Split, profile: str, warnings: list[str], with_sweeps: bool):
    """Phase 3 for one split: ``(split block, sweep or None)``."""
    classes = {}
    class_sweeps = []
    for cls, acc in st.accs.items():
        res = acc.result(profile)
        block = {m: _fraction(res.get(m)) for m in METRIC_NAMES}
        block["n_images"] = int(acc.n_images)
        block["n_anomalous"] = int(acc.n_anomalous)
        classes[cls] = block
        warnings.extend(f"split {st.sid}, class {cls}: {w}" for w in acc.warnings(profile))
        if with_sweeps:
            sw = acc.sweep(profile)
            if sw is not None and sw.get("thresholds"):
                class_sweeps.append(sw)
    split = {m: mean_defined(c[m] for c in classes.values()) for m in METRIC_NAMES}
    for m in METRIC_NAMES:
        if split[m] is None:
            warnings.append(f"split {st.sid}: {m} is undefined for every class; left out of the mean")
    split["n_images"] = sum(c["n_images"] for c in classes.values())
    split["n_anomalous"] = sum(c["n_anomalous"] for c in classes.values())
    split["resized_maps"] = st.resized
    split["classes"] = classes
    if st.resized:
        warnings.append(
            f"split {st.sid}: {st.resized} of {split['n_images']} maps were resized to the evaluation size "
            f"(Pillow bilinear, float)"
        )
    return split, _mean_sweep(class_sweeps)


def _mean_sweep(sweeps: list[dict]) -> dict | None:
    """Mean over classes of each curve; the classes share the normalised-threshold grid."""
    if not sweeps:
        return None
    thresholds = [float(t) for t in sweeps[0]["thresholds"]]
    usable = [s for s in sweeps if len(s["thresholds"]) == len(thresholds) and np.allclose(s["thresholds"], thresholds)]
    out: dict[str, list[float]] = {"thresholds": thresholds}
    for key in sorted(k for k in usable[0] if k != "thresholds"):
        out[key] = [float(v) for v in np.mean([np.asarray(s[key], dtype=np.float64) for s in usable], axis=0)]
    return out


def score(
    submission: str | os.PathLike,
    benchmark: str | os.PathLike | Benchmark,
    profile: str = "exact",
    pool: int | None = None,
    panels: int = 0,
    out: str | os.PathLike | None = None,
    quiet: bool = True,
    sweeps: bool = True,
) -> dict:
    """Score a submission folder; returns the result dict (format: ``schemas/result.schema.json``).

    ``profile``: ``"exact"`` (SPEC definitions) or ``"ader"`` (the paper's
    numbers). ``pool``: ``k`` → image score = max of the k×k average-pooled map
    (ADer's configs use 16); ignored for images that ``scores.csv`` scores.
    ``out``: if given, the result JSON is written there (atomically), and
    ``panels`` > 0 writes that many qualitative PNGs per split into
    ``<out stem>_panels/``. Raises :class:`~evaluator.validate.SubmissionError`
    (one line per problem) before writing anything if the submission is bad.
    """
    from evaluator.metrics import PROFILES

    t0 = time.perf_counter()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    if pool is not None:
        if isinstance(pool, bool) or int(pool) != pool or pool < 1:
            raise ValueError(f"pool must be a positive integer, got {pool!r}")
        if profile != "ader":
            raise ValueError("pool changes only the ader profile's image score; use it with profile 'ader'")
        pool = int(pool)
    if panels and out is None:
        raise ValueError("panels need out= (they are written beside the result file)")
    if panels < 0:
        raise ValueError("panels must be >= 0")
    checked, problems = check_structure(submission, benchmark)
    if problems or checked is None:
        raise SubmissionError(problems)
    if pool is not None and pool > min(checked.benchmark.eval_size):
        h, w = checked.benchmark.eval_size
        raise ValueError(f"pool {pool} is larger than the evaluation size {h}x{w} of {checked.benchmark.root}")
    if out is not None and Path(out).is_dir():
        raise ValueError(f"{out}: is a folder; the result is a file (give --out FILE.json)")
    if out is not None and _is_inside(Path(out), checked.root):
        raise SubmissionError([f"{out}: the result file must not lie inside the submission folder {checked.root} "
                               "(it would change the submission); choose another --out"])

    states, digests, problems = _stream(checked, pool, panels, quiet)
    if problems:
        raise SubmissionError(problems, stopped_early=len(problems) >= MAX_PROBLEMS)

    bench = checked.benchmark
    warnings: list[str] = []
    splits, sweep_blocks = {}, {}
    for st in states:
        splits[st.sid], sw = _summarise(st, profile, warnings, sweeps)
        if sw is not None:
            sweep_blocks[st.sid] = sw
    mean = {m: mean_defined(splits[s][m] for s in splits) for m in METRIC_NAMES}

    listing = [(rel, digests[rel] if rel in digests else sha256_file(checked.root / rel)) for rel in checked.files]
    result = {
        "evaluator": {"version": _evaluator_version(), "profile": profile, "pool": pool, "versions": _versions()},
        "benchmark": {"name": bench.name, "version": bench.version, "sha256": bench.sha256},
        "submission": {
            "name": Path(os.path.abspath(checked.root)).name,
            "sha256": sha256_of_listing(listing),
            "method": checked.manifest["method"],
        },
        "splits": splits,
        "mean": mean,
        "warnings": warnings,
    }
    if sweeps:
        result["sweeps"] = sweep_blocks
    if out is not None:
        out = Path(out)
        if panels:
            from evaluator.panels import write_panels

            result["panels"] = write_panels(bench, states, out, warnings)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    if out is not None:
        atomic_write_json(out, result)
    return result


def _evaluator_version() -> str:
    from evaluator import __version__

    return __version__
