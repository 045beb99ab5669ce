"""Writing a submission folder (SPEC §4), so nobody hand-rolls the format.

    from benchmark import open_benchmark
    from evaluator.submission import SubmissionWriter

    bench = open_benchmark("data/coco-ad")
    with SubmissionWriter("submissions/my-method", bench,
                          method={"name": "MyMethod", "backbone": "wide_resnet50_2"},
                          splits=["0", "1", "2", "3"]) as w:
        for item in bench.items("0"):
            w.add("0", item.img_path, anomaly_map, score=None)

Maps are stored as ``.npy`` float16 (default) or float32. The folder is
assembled under ``<folder>.partial`` and renamed into place by ``close()`` only
when every test image of every listed split has its map, so an interrupted
prediction never leaves something that looks like a finished submission.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path, PurePosixPath

import numpy as np

from benchmark import Benchmark
from contract.files import atomic_write_bytes, dumps_json, replace_folder

SCHEMA_VERSION = 1
MAP_DTYPES = {"float16": np.float16, "float32": np.float32}


def map_relpath(split: str, img_path: str, suffix: str = ".npy") -> str:
    """``<split>/maps/<img_path with its suffix replaced>`` (POSIX separators)."""
    p = PurePosixPath(img_path)
    return str(PurePosixPath(str(split), "maps", p.with_suffix(suffix)))


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


class SubmissionWriter:
    """Assemble a valid submission folder; see the module docstring."""

    def __init__(
        self,
        folder: str | os.PathLike,
        benchmark: Benchmark,
        method: dict,
        splits: list[str] | None = None,
        dtype: str = "float16",
        overwrite: bool = False,
    ):
        if "name" not in method:
            raise ValueError("method needs at least a 'name'")
        try:
            json.dumps(method, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"method must be plain JSON with finite numbers ({e})") from None
        if dtype not in MAP_DTYPES:
            raise ValueError(f"dtype must be one of {sorted(MAP_DTYPES)}")
        self.folder = Path(folder)
        self.benchmark = benchmark
        self.method = dict(method)
        self.splits = [str(s) for s in (splits if splits is not None else benchmark.split_ids)]
        for s in self.splits:
            benchmark.split(s)  # raises BenchmarkError for an unknown split
        self.dtype = MAP_DTYPES[dtype]
        self.overwrite = overwrite
        if self.folder.exists() and not overwrite:
            raise FileExistsError(f"{self.folder}: already exists (pass overwrite=True to replace it)")
        self.partial = self.folder.with_name(self.folder.name + ".partial")
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True)
        self._expected = {s: {it.img_path for it in benchmark.items(s, "test")} for s in self.splits}
        self._done: dict[str, set[str]] = {s: set() for s in self.splits}
        self._scores: dict[str, dict[str, float]] = {s: {} for s in self.splits}
        self._closed = False

    def add(self, split: str, img_path: str, amap: np.ndarray, score: float | None = None) -> None:
        """Store the anomaly map (2-D, finite; higher = more anomalous) of one test image."""
        split = str(split)
        if split not in self._expected:
            raise KeyError(f"split {split!r} is not one of this submission's splits {self.splits}")
        if img_path not in self._expected[split]:
            raise KeyError(f"{img_path!r} is not a test image of split {split}")
        arr = np.asarray(amap)
        if arr.ndim != 2:
            raise ValueError(f"{img_path}: anomaly map must be 2-D, got shape {arr.shape}")
        arr = arr.astype(self.dtype)
        if not np.isfinite(arr).all():
            raise ValueError(f"{img_path}: anomaly map has NaN/inf (after casting to {arr.dtype})")
        atomic_write_bytes(self.partial / map_relpath(split, img_path), npy_bytes(arr))
        self._done[split].add(img_path)
        if score is not None:
            score = float(score)
            if not np.isfinite(score):
                raise ValueError(f"{img_path}: image score is not finite")
            self._scores[split][img_path] = score

    def close(self) -> Path:
        """Check completeness, write ``scores.csv`` / ``submission.json``, move into place."""
        if self._closed:
            return self.folder
        for s in self.splits:
            missing = self._expected[s] - self._done[s]
            if missing:
                first = ", ".join(sorted(missing)[:3])
                raise RuntimeError(f"split {s}: {len(missing)} test image(s) have no map yet (e.g. {first})")
            scores = self._scores[s]
            if scores and len(scores) != len(self._expected[s]):
                raise RuntimeError(f"split {s}: scores given for some images only; give all or none")
            if scores:
                lines = ["img_path,score"] + [f"{k},{scores[k]!r}" for k in sorted(scores)]
                atomic_write_bytes(self.partial / s / "scores.csv", ("\n".join(lines) + "\n").encode())
        doc = {
            "schema_version": SCHEMA_VERSION,
            "benchmark": {"name": self.benchmark.name, "version": self.benchmark.version},
            "method": self.method,
            "splits": self.splits,
        }
        atomic_write_bytes(self.partial / "submission.json", dumps_json(doc))
        replace_folder(self.partial, self.folder)
        self._closed = True
        return self.folder

    def abort(self) -> None:
        if not self._closed and self.partial.exists():
            shutil.rmtree(self.partial)
        self._closed = True

    def __enter__(self) -> "SubmissionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
