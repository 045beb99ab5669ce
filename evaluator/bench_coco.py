"""``python -m evaluator bench --coco-split``: time one COCO-AD-sized split end to end.

Builds, in a temporary folder (or ``--keep DIR``), a benchmark of one split
shaped like COCO-AD's split 0 — 4,952 test images, 3,661 of them anomalous
with ground-truth masks at COCO's native 480×640 (8-bit PNG, 1–3 ellipses
each, 1 % of them empty like COCO-AD's zero-area annotations), the
evaluation-size ground truth written as the builder writes it — and a
submission of one 256×256 float16 ``.npy`` map per test image. Then it runs
``python -m evaluator score`` on it as a child process, as a user would, and
prints the command's wall-clock time, its CPU time (all threads: tells a busy
machine from a slow scorer) and its peak resident memory.

``--ground-truth masks`` builds the case without the evaluation-size ground
truth, so the scorer reads and resizes every mask PNG (the fallback path).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: COCO-AD split 0: test images and anomalous ones (SPEC §2), and COCO's usual image size.
COCO_SPLIT_IMAGES = 4952
COCO_SPLIT_ANOMALOUS = 3661
NATIVE_SIZE = (480, 640)


def _mask_png(rng: np.random.Generator, empty: bool) -> bytes:
    """PNG bytes of one native-size 0/255 mask: 1–3 filled ellipses (none if ``empty``)."""
    import io

    from PIL import Image, ImageDraw

    h, w = NATIVE_SIZE
    im = Image.new("L", (w, h), 0)
    if not empty:
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(4, h / 4), rng.uniform(4, w / 4)
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def build_case(root: Path, n_images: int, n_anomalous: int, seed: int, eval_size_gt: bool, quiet: bool) -> tuple[Path, Path]:
    """Write the benchmark and the submission under ``root``; returns their folders."""
    from tqdm import tqdm

    from benchmark import eval_gt, open_benchmark
    from benchmark.protocol import DEFAULT_PROTOCOL
    from contract.files import atomic_write_bytes, atomic_write_json, dumps_json, sha256_bytes, sha256_of_listing
    from evaluator.bench import synthetic_image
    from evaluator.submission import SubmissionWriter

    bench_dir, sub_dir = root / "benchmark", root / "submission"
    rng = np.random.default_rng(seed)
    anomalous = set(rng.choice(n_images, size=n_anomalous, replace=False).tolist())
    mask_dir, meta_rel = "val2017_mask_ad_20_0", "meta_20_0.json"
    files: dict[str, str] = {}
    items = []
    for i in tqdm(range(n_images), desc="case: masks", unit="img", disable=True if quiet else None, leave=False):
        stem = f"{i:012d}"
        mask_rel = ""
        if i in anomalous:
            mask_rel = f"{mask_dir}/{stem}.png"
            data = _mask_png(rng, empty=rng.random() < 0.01)
            atomic_write_bytes(bench_dir / mask_rel, data)
            files[mask_rel] = sha256_bytes(data)
        items.append({"img_path": f"val2017/{stem}.jpg", "mask_path": mask_rel, "cls_name": "coco",
                      "specie_name": "", "anomaly": int(i in anomalous)})
    meta = dumps_json({"train": {"coco": []}, "test": {"coco": items}}, compact=True)
    atomic_write_bytes(bench_dir / meta_rel, meta)
    files[meta_rel] = sha256_bytes(meta)
    entry = {"meta": meta_rel, "mask_dir": mask_dir, "normal_classes": [], "anomaly_classes": [],
             "counts": {"train": 0, "test_normal": n_images - n_anomalous, "test_anomalous": n_anomalous}}
    pairs = [(it["img_path"], it["mask_path"]) for it in items]
    size = tuple(DEFAULT_PROTOCOL["eval_size"])
    packed = eval_gt.render(eval_gt.split_jobs(bench_dir, pairs, files, DEFAULT_PROTOCOL), size, quiet=quiet)
    if eval_size_gt:
        rel = eval_gt.eval_gt_relpath(meta_rel, size)
        data = eval_gt.encode(packed)
        atomic_write_bytes(bench_dir / rel, data)
        files[rel] = sha256_bytes(data)
        entry["eval_gt"] = rel
    entry["sha256"] = sha256_of_listing(files.items())
    atomic_write_json(bench_dir / "benchmark.json", {
        "name": "coco-ad-bench-split", "version": "1", "image_root": ".", "protocol": dict(DEFAULT_PROTOCOL),
        "source": {}, "splits": {"0": entry}, "files": dict(sorted(files.items()))})

    bench = open_benchmark(bench_dir)
    gt = eval_gt.EvalGT({p: i for i, p in enumerate(sorted(img for img, mask in pairs if mask))}, size, packed)
    with SubmissionWriter(sub_dir, bench, method={"name": "bench"}, splits=["0"]) as w:
        for i, it in enumerate(tqdm(bench.items("0"), desc="case: maps", unit="img",
                                    disable=True if quiet else None, leave=False)):
            # A smooth noisy map, raised on most of the ground truth: a detector of middling quality.
            amap = synthetic_image(seed, i, size[0], np.float32)[1]
            w.add("0", it.img_path, amap + np.float32(0.4 * rng.random()) * gt.mask(it.img_path))
    return bench_dir, sub_dir


#: ``python -m evaluator`` in a child that, as it exits, writes its peak resident memory (KiB) to
#: the file named by its first argument: Linux's VmHWM, which starts afresh at exec, where
#: ``ru_maxrss`` would carry the RSS of the process that forked it.
_CHILD = """import runpy, sys
report = sys.argv.pop(1)
sys.argv[0] = "python -m evaluator"
try:
    runpy.run_module("evaluator", run_name="__main__")
finally:
    try:
        status = open("/proc/self/status").read()
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        import resource
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    open(report, "w").write(str(kib))
"""


def time_score(bench_dir: Path, sub_dir: Path, out: Path, extra: list[str]) -> dict:
    """Run ``python -m evaluator score`` as a child; its wall and CPU seconds and peak RSS (MiB)."""
    report = out.with_suffix(".peak-kib")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-c", _CHILD, str(report), "score", str(sub_dir), "--benchmark", str(bench_dir),
           "--out", str(out), "--quiet", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"score failed (exit {proc.returncode}): {proc.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = int(report.read_text()) / 1024
    report.unlink()
    return {"wall": wall, "cpu": cpu, "peak_mib": peak, "result": json.loads(out.read_text())}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evaluator bench --coco-split",
        description="Build a COCO-AD-sized split (benchmark and submission) in a temporary folder and time "
                    "the whole python -m evaluator score command on it.")
    p.add_argument("--coco-split", action="store_true", help="this mode (required)")
    p.add_argument("--n-images", type=int, default=COCO_SPLIT_IMAGES, metavar="N",
                   help=f"test images (default {COCO_SPLIT_IMAGES}, COCO-AD split 0)")
    p.add_argument("--n-anomalous", type=int, default=None, metavar="A",
                   help=f"anomalous test images (default: the share of split 0, {COCO_SPLIT_ANOMALOUS} of {COCO_SPLIT_IMAGES})")
    p.add_argument("--ground-truth", choices=("eval-size", "masks"), default="eval-size",
                   help="build the evaluation-size ground truth (default) or leave only the mask PNGs")
    p.add_argument("--profile", default="exact", help="profile passed to score (default exact)")
    p.add_argument("--repeat", type=int, default=1, metavar="R", help="time the command R times (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the case (default 0)")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="build the case in DIR (reused if it holds one already) instead of a temporary folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    n = args.n_images
    a = round(n * COCO_SPLIT_ANOMALOUS / COCO_SPLIT_IMAGES) if args.n_anomalous is None else args.n_anomalous
    if n < 1 or not 0 <= a <= n or args.repeat < 1:
        print("bench: --n-images must be >= 1, --n-anomalous from 0 to N, --repeat >= 1", file=sys.stderr)
        return 2
    from evaluator.bench import warm_up

    warm_up()  # Numba kernels compiled into the on-disk cache, so the timed command only loads them
    with tempfile.TemporaryDirectory(prefix="coco-split-bench-") as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        if (root / "submission" / "submission.json").is_file():
            bench_dir, sub_dir = root / "benchmark", root / "submission"
            print(f"bench --coco-split: reusing the case in {root}")
        else:
            bench_dir, sub_dir = build_case(root, n, a, args.seed, args.ground_truth == "eval-size", args.quiet)
            print(f"bench --coco-split: built {n} maps of 256x256 float16 and {a} masks of "
                  f"{NATIVE_SIZE[0]}x{NATIVE_SIZE[1]} in {time.perf_counter() - t0:.1f} s ({root})")
        has_gt = "eval_gt" in json.loads((bench_dir / "benchmark.json").read_text())["splits"]["0"]
        print(f"  ground truth: {'evaluation-size file' if has_gt else 'mask PNGs'}; "
              f"{os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for r in range(args.repeat):
            t = time_score(bench_dir, sub_dir, root / f"result{r}.json", ["--profile", args.profile])
            res = t["result"]
            print(f"  python -m evaluator score: {t['wall']:.2f} s wall, {t['cpu']:.2f} s CPU, "
                  f"peak RSS {t['peak_mib']:.0f} MiB; I-AUROC {100 * res['mean']['I-AUROC']:.2f}, "
                  f"P-AUROC {100 * res['mean']['P-AUROC']:.2f} ({res['evaluator'].get('ground_truth', '?')})")
    return 0
