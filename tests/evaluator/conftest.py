"""Fixtures of the evaluator tests: a small benchmark and valid submissions for it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from benchmark import open_benchmark
from evaluator.submission import SubmissionWriter


def write_submission(folder: Path, bench, maps=None, scores=None, method=None, dtype="float16", splits=None) -> Path:
    """A valid submission; ``maps(split, item) -> 2-D array`` (default: seeded noise at eval size)."""
    rng = np.random.default_rng(1)
    h, w = bench.eval_size

    def noise(split, item):
        return rng.random((h, w), dtype=np.float32)

    maps = maps or noise
    with SubmissionWriter(folder, bench, method=method or {"name": "Noise", "paper": "none"},
                          splits=splits, dtype=dtype) as wr:
        for sid in wr.splits:
            for item in bench.items(sid):
                wr.add(sid, item.img_path, maps(sid, item), score=None if scores is None else scores(sid, item))
    return folder


def tree_snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256 or 'link -> target'}`` of everything below ``root`` (links not followed)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                snap[rel] = "link -> " + os.readlink(p)
            elif p.is_file():
                snap[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                snap[rel] = "dir"
    return snap


@pytest.fixture
def bench_dir(make_benchmark):
    """Two splits, two classes, 3 normal + 3 anomalous test images per class, eval size 32x32."""
    return make_benchmark(splits=("0", "1"), classes=("a", "b"), n_train=1)


@pytest.fixture
def bench(bench_dir):
    return open_benchmark(bench_dir)


@pytest.fixture
def valid_sub(tmp_path, bench):
    """A valid submission of seeded noise maps (float16 .npy) in ``tmp_path/subs/noise``."""
    return write_submission(tmp_path / "subs" / "noise", bench)
