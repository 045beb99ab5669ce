"""Scoring a submission folder against a benchmark folder (SPEC §5).

The phases, in the spirit of pycocotools' evaluate / accumulate / summarize:

1. check the folder (:func:`evaluator.validate.check_structure`, no map read;
   the benchmark's meta files are certified by their sha256 on the way);
2. stream: for each split, one test image at a time, read its map
   (:func:`evaluator.maps.load_map`, which also checks it), bring it to the
   evaluation size (``benchmark.protocol.resize_map``), take its ground truth
   and feed both into the :class:`~evaluator.metrics.ClassAccumulator` of its
   (split, class). The ground truth comes from the split's evaluation-size
   file (:meth:`benchmark.Benchmark.eval_gt`) when the benchmark has one, else
   from its mask (:meth:`benchmark.Benchmark.gt_mask`); either is certified by
   its sha256 in ``benchmark.json`` and both give the same bits. Maps are read
   ahead in threads within a byte budget; only those and the few kept for
   panels are in memory;
3. summarise: per-class metrics, their mean per split (undefined ones left
   out, with a warning), the mean over splits, threshold sweeps;
4. write (only if nothing was wrong): panels and the result JSON, committed
   together (:mod:`evaluator.output`).

A bad map found while streaming stops the feeding; the remaining maps are
still checked (up to :data:`~evaluator.validate.MAX_PROBLEMS` problems) and
:class:`~evaluator.validate.SubmissionError` is raised before anything is
written. Ground truth that does not match ``benchmark.json`` raises
:class:`benchmark.BenchmarkError`; an output that cannot be written,
:class:`OutputError`; arguments the scorer refuses, :class:`UsageError`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections import deque
from pathlib import Path

import numpy as np

from benchmark import Benchmark
from benchmark.protocol import resize_map
from contract.files import dumps_json, sha256_file, sha256_of_listing
from contract.names import METRIC_NAMES, default_workers
from evaluator.maps import MapError, check_finite, load_map, map_values, max_file_bytes, max_pixels_for
from evaluator.metrics.params import ADER_AUPRO_STEPS, ADEVAL_NSTRIPS
from evaluator.validate import MAX_PROBLEMS, Checked, Problems, SubmissionError, check_structure

_ROUNDING = 1e-9
#: Bytes of map files and evaluation-size maps the read-ahead may hold (at least one map).
READ_AHEAD_BYTES = 64 << 20


class UsageError(ValueError):
    """Arguments the scorer refuses (a profile it does not know, a pool larger than the maps, ...)."""


class OutputError(Exception):
    """The result or its panels cannot be written; the message is one line naming the file."""


def default_out(submission: str | os.PathLike, profile: str = "exact", pool: int | None = None,
                aupro_steps: int | None = None) -> Path:
    """Default result path: ``<submission>/../results/<submission name>.<profile>[.pool<k>][.steps<S>].json``.

    Beside the submission folder, never inside it (that would change the
    submission's checksum). ``.steps<S>`` only for a profile ``ader`` run whose
    AUPRO step count is not the published 100.
    """
    sub = Path(os.path.abspath(submission))
    tag = profile if pool is None else f"{profile}.pool{pool}"
    if profile == "ader" and aupro_steps not in (None, ADER_AUPRO_STEPS):
        tag += f".steps{aupro_steps}"
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

    def __init__(self, bench: Benchmark, sid: str, pool: int | None, aupro_steps: int, n_panels: int):
        from evaluator.metrics import ClassAccumulator

        self.sid = sid
        self.items = bench.items(sid, "test")
        self.accs = {c: ClassAccumulator(pool=pool, aupro_steps=aupro_steps) for c in bench.classes(sid)}
        self.resized = 0
        self.ground_truth = "masks"
        # Panels: anomalous images first, each group sorted by img_path (items already are).
        ranked = [it for it in self.items if it.anomaly] + [it for it in self.items if not it.anomaly]
        self.panel_items = ranked[:n_panels]
        self.panel_maps: dict[str, np.ndarray] = {}
        self.panel_gts: dict[str, np.ndarray] = {}
        # Per-class value range of the maps at eval size: the panels' fixed colour scale.
        self.ranges: dict[str, list[float]] = {}


def prefetch(fn, items, workers: int, window: int, cost=None, budget: int | None = None):
    """``fn(item)`` for each item, in order, computed ahead by ``workers`` threads (0: serially).

    At most ``window`` results are pending at once and, with ``cost(item)``
    (bytes) and ``budget``, at most ``budget`` bytes of them (always at least
    one), so memory stays bounded however many and however large the items.
    Reading, decoding (zlib, Pillow) and hashing release the GIL, which is where
    a scorer spends most of its time on real data.
    """
    from concurrent.futures import ThreadPoolExecutor

    if workers < 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as ex:
        pending: deque = deque()
        held = 0
        for it in items:
            c = cost(it) if cost is not None else 0
            while pending and (len(pending) >= window or (budget is not None and held + c > budget)):
                future, fc = pending.popleft()
                held -= fc
                yield future.result()
            pending.append((ex.submit(fn, it), c))
            held += c
        while pending:
            yield pending.popleft()[0].result()


def _io_workers() -> int:
    """Reading threads: one per two CPUs. The main thread and Numba's workers count the maps;
    more readers than that only contend for the GIL (measured: more CPU, no faster)."""
    return max(1, min(4, default_workers() // 2))


def _stream(checked: Checked, pool: int | None, aupro_steps: int, n_panels: int,
            quiet: bool) -> tuple[list[_Split], dict[str, str], list[str]]:
    """Phase 2: feed every map into its accumulator; ``(splits, {map rel: sha256}, problems)``."""
    from tqdm import tqdm

    bench = checked.benchmark
    size = bench.eval_size
    max_pixels = max_pixels_for(size)
    file_limit = max_file_bytes(max_pixels)
    problems = Problems(checked.root)
    digests: dict[str, str] = {}
    states = []
    workers = _io_workers()
    eval_bytes = size[0] * size[1] * 4
    root = str(checked.root)

    for sid in checked.splits:
        st = _Split(bench, sid, pool, aupro_steps, n_panels)
        states.append(st)
        egt = bench.eval_gt(sid)  # certified by its sha256; None for a folder built without it
        if egt is not None:
            st.ground_truth = "eval-size"
        scores = checked.scores[sid]
        panel_paths = {it.img_path for it in st.panel_items}
        maps = checked.maps[sid]

        def read(item, maps=maps, egt=egt):
            """Map (at eval size) and ground truth of one image, or the problem found."""
            rel = maps[item.img_path]
            try:
                amap, digest = load_map(os.path.join(root, rel), max_pixels, finite=False)
                resized = amap.shape != size
                if resized:  # checked before resizing, so the message counts the file's own values
                    amap = resize_map(check_finite(map_values(amap)), size, bench.protocol)
            except MapError as e:
                return item, rel, None, None, None, str(e), False
            gt = egt.mask(item.img_path) if egt is not None else bench.gt_mask(item)
            return item, rel, amap, digest, gt, None, resized

        def cost(item, maps=maps):
            return min(checked.sizes.get(maps[item.img_path], 0), file_limit) + eval_bytes

        bar = tqdm(total=len(st.items), desc=f"score split {sid}", unit="img", disable=True if quiet else None, leave=False)
        stream = prefetch(read, st.items, workers, 4 * workers, cost, READ_AHEAD_BYTES)
        try:
            for item, rel, amap, digest, gt, error, resized in stream:
                bar.update()
                if len(problems) >= MAX_PROBLEMS:
                    break
                if error is None:
                    try:
                        if problems.lines:  # no longer feeding: check the values alone
                            check_finite(amap)
                        else:
                            score = None if scores is None else scores[item.img_path]
                            try:
                                st.accs[item.cls_name].add(gt, amap, int(item.anomaly), score=score)
                            except ValueError:  # non-finite values: the accumulator finds them as it stages
                                check_finite(amap)  # the message validate gives
                                raise
                    except MapError as e:
                        error = str(e)
                if error is not None:
                    problems.add(rel, error)
                    continue
                digests[rel] = digest
                if problems.lines:
                    continue  # already failed: keep checking maps, stop computing
                st.resized += resized
                if n_panels:
                    values = map_values(amap)
                    lo, hi = float(values.min()), float(values.max())
                    r = st.ranges.setdefault(item.cls_name, [lo, hi])
                    r[0], r[1] = min(r[0], lo), max(r[1], hi)
                    if item.img_path in panel_paths:
                        st.panel_maps[item.img_path] = np.array(values, dtype=np.float32)
                        st.panel_gts[item.img_path] = np.array(gt)
        finally:
            stream.close()  # waits for the reading threads, which may still use the ground truth file
            bar.close()
            if egt is not None:
                egt.close()
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


def _check_arguments(profile: str, pool, aupro_steps, panels: int, out) -> tuple[int | None, int | None]:
    """UsageError for arguments the scorer refuses; returns ``(pool, aupro_steps)`` normalised."""
    from evaluator.metrics import PROFILES

    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    if pool is not None:
        if isinstance(pool, bool) or int(pool) != pool or pool < 1:
            raise UsageError(f"pool must be a positive integer, got {pool!r}")
        if profile == "exact":
            raise UsageError("pool changes only the ADer profiles' image score; use it with profile 'ader' or 'ader-bench'")
        pool = int(pool)
    if aupro_steps is not None:
        if isinstance(aupro_steps, bool) or int(aupro_steps) != aupro_steps or aupro_steps < 1:
            raise UsageError(f"AUPRO steps must be a positive integer, got {aupro_steps!r}")
        if profile != "ader":
            raise UsageError("AUPRO steps change only the ader profile's AUPRO (ader-bench bins it into "
                             f"ADEval's {ADEVAL_NSTRIPS} strips); use them with profile 'ader'")
        aupro_steps = int(aupro_steps)
    if panels and out is None:
        raise UsageError("panels need out= (they are written beside the result file)")
    if panels < 0:
        raise UsageError("panels must be >= 0")
    if out is not None and Path(out).is_dir():
        raise UsageError(f"{out}: is a folder; the result is a file (give --out FILE.json)")
    recorded = {"exact": None, "ader": ADER_AUPRO_STEPS if aupro_steps is None else aupro_steps,
                "ader-bench": ADEVAL_NSTRIPS}[profile]
    return pool, recorded


def score(
    submission: str | os.PathLike,
    benchmark: str | os.PathLike | Benchmark,
    profile: str = "exact",
    pool: int | None = None,
    panels: int = 0,
    out: str | os.PathLike | None = None,
    quiet: bool = True,
    sweeps: bool = True,
    aupro_steps: int | None = None,
) -> dict:
    """Score a submission folder; returns the result dict (format: ``schemas/result.schema.json``).

    ``profile``: ``"exact"`` (SPEC definitions), ``"ader"`` (the paper's
    numbers, ADer's ``util/metric.py``) or ``"ader-bench"`` (ADer's benchmark
    tables: binned ADEval P-AUROC, P-AP, AUPRO). ``pool``: ``k`` → image score
    = max of the k×k average-pooled map (ADer profiles; ADer's configs use 16
    for some methods); ignored for images that ``scores.csv`` scores.
    ``aupro_steps``: ADer's AUPRO threshold count (profile ``ader``; default
    100, the published configs' ``max_step_aupro``). ``out``: if given, the
    result JSON is written there, and ``panels`` > 0 writes that many
    qualitative PNGs per split into ``<out stem>_panels/``, both committed as
    one unit. Raises :class:`~evaluator.validate.SubmissionError` (one line per
    problem) before writing anything if the submission is bad.
    """
    t0 = time.perf_counter()
    pool, recorded_steps = _check_arguments(profile, pool, aupro_steps, panels, out)
    checked, problems = check_structure(submission, benchmark)
    if problems or checked is None:
        raise SubmissionError(problems)
    if pool is not None and pool > min(checked.benchmark.eval_size):
        h, w = checked.benchmark.eval_size
        raise UsageError(f"pool {pool} is larger than the evaluation size {h}x{w} of {checked.benchmark.root}")
    if out is not None and _is_inside(Path(out), checked.root):
        raise SubmissionError([f"{out}: the result file must not lie inside the submission folder {checked.root} "
                               "(it would change the submission); choose another --out"])
    if out is not None:
        from evaluator.output import recover

        try:
            recover(out)  # an earlier run that died while committing: finish it first
        except OSError as e:
            raise OutputError(f"{out}: cannot finish the interrupted write of an earlier run "
                              f"({e.strerror or e}); choose another --out") from None

    steps = recorded_steps if profile == "ader" else ADER_AUPRO_STEPS  # ader-bench records its ADEval strips
    states, digests, problems = _stream(checked, pool, steps, panels, quiet)
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
    complete = set(splits) == set(bench.split_ids)
    if not complete:
        warnings.append(f"partial result: splits {', '.join(splits)} of {', '.join(bench.split_ids)}; its mean is "
                        "not comparable with that of a complete result")
    from_masks = [st.sid for st in states if st.ground_truth == "masks"]
    if from_masks and len(from_masks) < len(states):
        warnings.append(f"splits {', '.join(from_masks)}: ground truth read from the masks (the benchmark has no "
                        "evaluation-size file for them)")

    listing = [(rel, digests[rel] if rel in digests else sha256_file(checked.root / rel)) for rel in checked.files]
    result = {
        "evaluator": {"version": _evaluator_version(), "profile": profile, "pool": pool,
                      "aupro_steps": recorded_steps, "ground_truth": "masks" if from_masks else "eval-size",
                      "versions": _versions()},
        "benchmark": {"name": bench.name, "version": bench.version, "sha256": bench.sha256,
                      "split_ids": list(bench.split_ids), "masks": bench.manifest.get("masks", "pycocotools")},
        "submission": {
            "name": Path(os.path.abspath(checked.root)).name,
            "sha256": sha256_of_listing(listing),
            "method": checked.manifest["method"],
        },
        "complete": complete,
        "splits": splits,
        "mean": mean,
        "warnings": warnings,
    }
    if sweeps:
        result["sweeps"] = sweep_blocks
    panel_files = None
    if out is not None and panels:
        from evaluator.panels import render_panels

        panel_files, result["panels"] = render_panels(bench, states, out, warnings)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    json.dumps(result, allow_nan=False)  # a NaN or inf here is a bug of ours: stop before writing
    if out is not None:
        _write(Path(out), dumps_json(result), panel_files)
    return result


def _write(out: Path, data: bytes, panel_files: list[tuple[str, bytes]] | None) -> None:
    """Stage the panels, then commit them with the result (:mod:`evaluator.output`)."""
    from contract.files import atomic_write_bytes
    from evaluator.output import commit, new_staging

    staging = None
    try:
        if panel_files is not None:
            staging = new_staging(out)
            for rel, png in panel_files:
                atomic_write_bytes(staging / rel, png)
        commit(out, data, staging)
    except BaseException as e:
        # Not committed (no journal): the previous result and panels are untouched; drop our staging.
        if staging is not None and staging.exists() and not (out.parent / f".{out.name}.commit").exists():
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise OutputError(f"{out}: cannot write ({e.strerror or e}); choose another --out") from None
        raise


def _evaluator_version() -> str:
    from evaluator import __version__

    return __version__
