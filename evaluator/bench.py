"""``python -m evaluator bench``: time the metric engine against the NumPy reference.

A deterministic synthetic class (N maps of S×S with blob-shaped anomalies and
their ground truth; a few anomalous images with empty masks, as in COCO-AD)
is streamed image by image through :class:`~evaluator.metrics.ClassAccumulator`,
and every profile's results are taken from that one pass. Then the same data,
stacked in memory, goes through the plain NumPy exact implementation of
:mod:`evaluator.reference`. The command prints both times (map generation not
included; wall-clock and CPU time of all threads, which tells a busy machine
from a slow engine), their ratio, the peak resident memory after each phase and the
largest difference between the two sets of exact metrics; it exits 1 if they
differ by more than 1e-9.

Numba kernels are compiled on first use and cached on disk (``cache=True``);
that one-off cost is timed separately ("kernels ready").
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

from evaluator.metrics import METRIC_NAMES, PROFILES, ClassAccumulator

TOLERANCE = 1e-9


def _interp_matrix(size: int, knots: int) -> np.ndarray:
    """(size, knots) matrix of linear interpolation from a coarse grid to pixels."""
    pos = np.linspace(0, knots - 1, size)
    lo = np.minimum(pos.astype(int), knots - 2)
    frac = pos - lo
    m = np.zeros((size, knots))
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m


def synthetic_image(seed: int, index: int, size: int, dtype=np.float16,
                    _cache: dict = {}) -> tuple[np.ndarray, np.ndarray, int]:
    """Image ``index`` of the synthetic class: (gt bool (S, S), map (S, S), label).

    60 % of the images are anomalous, with 1–3 elliptic regions whose map
    values are raised by a smooth bump (sometimes offset or weaker than the
    region); 1 % of the anomalous ones have an empty mask. Every map has a
    smooth background, pixel noise and, now and then, a false-positive bump.
    Deterministic in (seed, index).
    """
    if size not in _cache:
        _cache.clear()
        _cache[size] = (_interp_matrix(size, 9), np.arange(size, dtype=np.float32))
    up, axis = _cache[size]
    rng = np.random.default_rng([seed, index])
    # Smooth background: a 9×9 grid interpolated bilinearly. einsum without
    # optimisation stays off BLAS, whose idle spinning threads would steal the
    # cores the engine is being timed on.
    rows = np.einsum("ik,kl->il", up, rng.standard_normal((9, 9)))
    amap = np.einsum("il,jl->ij", rows, up).astype(np.float32) * 0.15
    amap += rng.standard_normal((size, size), dtype=np.float32) * 0.08
    gt = np.zeros((size, size), bool)
    label = int(rng.random() < 0.6)
    empty = label == 1 and rng.random() < 0.01
    n_bumps = int(rng.integers(1, 4)) if label else int(rng.random() < 0.3)
    for _ in range(n_bumps):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(size / 40, size / 6, 2)
        d2 = ((axis[:, None] - cy) / ry) ** 2 + ((axis[None, :] - cx) / rx) ** 2
        if label and not empty:
            gt |= d2 <= 1.0
            shift = rng.uniform(0.5, 1.5)
            amap += np.float32(rng.uniform(0.2, 1.0)) * np.exp(-d2 * np.float32(shift))
        else:
            amap += np.float32(rng.uniform(0.1, 0.5)) * np.exp(-d2)
    return gt, amap.astype(dtype), label


def _rss_now_mib() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _rss_peak_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _fmt_mib(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.0f} MiB"


def _progress(iterable, total, desc, quiet):
    if quiet:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr)


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every kernel; returns seconds."""
    t0 = time.perf_counter()
    for dtype in (np.float16, np.float32):
        acc = ClassAccumulator(pool=2)
        for i in range(3):
            gt, amap, label = synthetic_image(0, i, 16, dtype)
            acc.add(gt, amap, label)
        for profile in PROFILES:
            acc.result(profile)
    return time.perf_counter() - t0


def run_accumulator(n: int, size: int, seed: int, dtype, pool: int | None, quiet: bool):
    acc = ClassAccumulator(pool=pool)
    t_add = cpu = 0.0
    for i in _progress(range(n), n, "accumulator", quiet):
        gt, amap, label = synthetic_image(seed, i, size, dtype)
        t0, c0 = time.perf_counter(), time.process_time()
        acc.add(gt, amap, label)
        t_add += time.perf_counter() - t0
        cpu += time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    results = {p: acc.result(p) for p in PROFILES}
    for p in PROFILES:
        acc.sweep(p)
    t_result = time.perf_counter() - t0
    cpu += time.process_time() - c0
    return acc, results, t_add, t_result, cpu


def run_reference(n: int, size: int, seed: int, dtype, quiet: bool):
    from evaluator import reference

    masks = np.zeros((n, size, size), bool)
    maps = np.zeros((n, size, size), dtype)
    labels = np.zeros(n, np.int64)
    for i in _progress(range(n), n, "reference data", quiet):
        masks[i], maps[i], labels[i] = synthetic_image(seed, i, size, dtype)
    t0, c0 = time.perf_counter(), time.process_time()
    result = reference.evaluate(masks, maps, labels, profile="exact")
    return result, time.perf_counter() - t0, time.process_time() - c0


def _max_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for k in METRIC_NAMES:
        if (a[k] is None) != (b[k] is None):
            return float("inf")
        if a[k] is not None:
            worst = max(worst, abs(a[k] - b[k]))
    return worst


def _fmt(v):
    return "—" if v is None else f"{100 * v:.3f}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evaluator bench",
        description="Time the streaming metric engine (every profile, one pass) against "
                    "the plain NumPy exact reference on a deterministic synthetic class.")
    p.add_argument("--n-images", type=int, default=1000, metavar="N", help="number of maps (default 1000)")
    p.add_argument("--size", type=int, default=256, metavar="S", help="maps are S×S (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="map dtype (default float16)")
    p.add_argument("--pool", type=int, default=16, metavar="K",
                   help="ader and ader-bench image score: max of the K×K average-pooled map (default 16, "
                        "the paper's setting; 0: the map's maximum)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference", dest="reference", action="store_true", default=None,
                     help="always time the NumPy reference (it holds every map in memory, "
                          "about 50 bytes per pixel)")
    ref.add_argument("--no-reference", dest="reference", action="store_false",
                     help="skip the NumPy reference")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


#: Above this many pixels the reference (≈ 50 bytes per pixel) is skipped unless asked for.
AUTO_REFERENCE_PIXELS = 2**27


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--coco-split" in argv:  # the end-to-end case: its own options
        from evaluator.bench_coco import main as coco_main

        return coco_main(argv)
    args = build_parser().parse_args(argv)
    if args.n_images < 1 or args.size < 2:
        print("bench: --n-images must be >= 1 and --size >= 2", file=sys.stderr)
        return 2
    pool = args.pool or None
    if pool is not None and not 1 <= pool <= args.size:
        print(f"bench: --pool {args.pool} does not fit maps of {args.size}×{args.size}", file=sys.stderr)
        return 2
    dtype = np.dtype(args.dtype).type
    n, size = args.n_images, args.size
    pixels = n * size * size
    do_reference = args.reference
    if do_reference is None:
        do_reference = pixels <= AUTO_REFERENCE_PIXELS

    # Idle OpenMP workers sleep instead of spinning between batches, leaving
    # the core to the thread that stages the next maps (read before the Numba
    # thread pool starts; a value set by the user wins).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numba

    print(f"bench: {n} maps of {size}×{size} {args.dtype} ({pixels / 1e6:.1f} M pixels), "
          f"seed {args.seed}, ader pool {pool or 'off'}, {numba.get_num_threads()} Numba threads")
    print(f"  kernels ready (Numba compile or cache load, one-off): {warm_up():.2f} s")

    rss0 = _rss_now_mib()
    acc, results, t_add, t_result, cpu_acc = run_accumulator(n, size, args.seed, dtype, pool, args.quiet)
    t_acc = t_add + t_result
    peak_acc = _rss_peak_mib()
    print(f"  {acc.n_anomalous} anomalous images")
    print(f"  accumulator, {' + '.join(PROFILES)} from one pass: {t_acc:7.3f} s wall, {cpu_acc:7.3f} s CPU "
          f"(add {t_add:.3f} s = {1e9 * t_add / pixels:.2f} ns/pixel, results {t_result:.3f} s); "
          f"peak RSS {_fmt_mib(peak_acc)} (RSS at start {_fmt_mib(rss0)})")

    status = 0
    reference = None
    if do_reference:
        reference, t_ref, cpu_ref = run_reference(n, size, args.seed, dtype, args.quiet)
        peak_ref = _rss_peak_mib()
        diff = _max_difference(results["exact"], reference)
        print(f"  NumPy reference, exact only:             {t_ref:7.3f} s wall, {cpu_ref:7.3f} s CPU; "
              f"peak RSS {_fmt_mib(peak_ref)}")
        print(f"  speed-up: {t_ref / t_acc:.1f}x   largest |exact - reference|: {diff:.1e}")
        if not diff <= TOLERANCE:
            print(f"bench: the engine and the reference differ by {diff:.3g} (> {TOLERANCE})",
                  file=sys.stderr)
            status = 1
    else:
        print(f"  NumPy reference skipped ({pixels / 1e6:.0f} M pixels would need about "
              f"{50 * pixels / 2**30:.0f} GiB; --reference forces it)")

    header = f"  {'metric':<12}" + "".join(f"{p + ' %':>14}" for p in PROFILES) + (
        f"{'reference %':>13}" if reference else "")
    print(header)
    for k in METRIC_NAMES:
        line = f"  {k:<12}" + "".join(f"{_fmt(results[p][k]):>14}" for p in PROFILES)
        if reference:
            line += f"{_fmt(reference[k]):>13}"
        print(line)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
