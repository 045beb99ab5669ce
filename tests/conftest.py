"""Shared fixtures: small, valid benchmark folders written by hand (SPEC §3).

They follow the folder contract directly instead of calling the builder, so
the evaluator, baseline and leaderboard tests do not depend on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.protocol import DEFAULT_PROTOCOL
from contract.files import atomic_write_bytes, dumps_json, sha256_file, sha256_of_listing

# In CI every test must run: a missing reference library (sklearn, scipy,
# scikit-image: the `test` extra) must not turn metric tests into silent
# skips. Locally a skip stays a skip.
_IN_CI = bool(os.environ.get("CI"))
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if _IN_CI and report.skipped:
        _skipped.append(report.nodeid)


def pytest_collectreport(report):
    if _IN_CI and report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _IN_CI and _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _IN_CI and _skipped:
        terminalreporter.write_line(
            f"CI is set and {len(_skipped)} test(s) were skipped, which fails the run "
            f"(install the test extra: pip install -e \".[test]\"): {', '.join(_skipped[:10])}",
            red=True)


def _write_image(path: Path, rng: np.random.Generator, size: tuple[int, int], anomalous: bool) -> None:
    h, w = size
    img = (rng.random((h, w, 3)) * 60 + 100).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=90)


def write_benchmark(
    root: Path,
    splits: tuple[str, ...] = ("0",),
    classes: tuple[str, ...] = ("coco",),
    n_train: int = 6,
    n_test_normal: int = 3,
    n_test_anomalous: int = 3,
    native_size: tuple[int, int] = (48, 64),
    eval_size: tuple[int, int] = (32, 32),
    name: str = "tiny-ad",
    seed: int = 0,
) -> Path:
    """Write a benchmark folder with random images and rectangular anomaly masks.

    Each class gets ``n_train`` train images and ``n_test_normal`` +
    ``n_test_anomalous`` test images per split; every anomalous test image has
    a filled rectangle in its mask. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    a = 1
    files: dict[str, str] = {}
    split_entries = {}
    for sid in splits:
        mask_dir = f"val_mask_{a}_{sid}"
        meta = {"train": {}, "test": {}}
        counts = {"train": 0, "test_normal": 0, "test_anomalous": 0}
        for cls in classes:
            train, test = [], []
            for i in range(n_train):
                rel = f"train/{cls}_{i:04d}.jpg"
                if not (root / rel).exists():
                    _write_image(root / rel, rng, native_size, False)
                train.append({"img_path": rel, "mask_path": "", "cls_name": cls, "specie_name": "", "anomaly": 0})
            for i in range(n_test_normal + n_test_anomalous):
                rel = f"val/{cls}_{i:04d}.jpg"
                anomalous = i >= n_test_normal
                if not (root / rel).exists():
                    _write_image(root / rel, rng, native_size, anomalous)
                mask_rel = ""
                if anomalous:
                    h, w = native_size
                    m = np.zeros(native_size, np.uint8)
                    y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
                    m[y0 : y0 + h // 3, x0 : x0 + w // 3] = 255
                    mask_rel = f"{mask_dir}/{cls}_{i:04d}.png"
                    (root / mask_dir).mkdir(exist_ok=True)
                    Image.fromarray(m).save(root / mask_rel)
                    files[mask_rel] = sha256_file(root / mask_rel)
                test.append({"img_path": rel, "mask_path": mask_rel, "cls_name": cls, "specie_name": "",
                             "anomaly": int(anomalous)})
            meta["train"][cls] = train
            meta["test"][cls] = test
            counts["train"] += len(train)
            counts["test_normal"] += n_test_normal
            counts["test_anomalous"] += n_test_anomalous
        meta_rel = f"meta_{a}_{sid}.json"
        atomic_write_bytes(root / meta_rel, dumps_json(meta, compact=True))
        files[meta_rel] = sha256_file(root / meta_rel)
        split_files = [(p, d) for p, d in files.items() if p == meta_rel or p.startswith(mask_dir + "/")]
        split_entries[sid] = {
            "meta": meta_rel,
            "mask_dir": mask_dir,
            "normal_classes": list(classes),
            "anomaly_classes": ["rectangle"],
            "counts": counts,
            "sha256": sha256_of_listing(split_files),
        }
    manifest = {
        "name": name,
        "version": "1",
        "image_root": ".",
        "protocol": dict(DEFAULT_PROTOCOL, eval_size=list(eval_size)),
        "source": {},
        "splits": split_entries,
        "files": dict(sorted(files.items())),
    }
    atomic_write_bytes(root / "benchmark.json", dumps_json(manifest))
    return root


@pytest.fixture
def make_benchmark(tmp_path):
    """Factory: ``make_benchmark(**kwargs)`` → path of a fresh benchmark folder."""
    counter = iter(range(1000))

    def make(**kwargs) -> Path:
        return write_benchmark(tmp_path / f"bench{next(counter)}", **kwargs)

    return make


def read_json(path: Path):
    return json.loads(Path(path).read_text())
