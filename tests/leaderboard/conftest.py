"""Hand-made evaluator result files (the JSON format of interfaces.md / SPEC §5).

The leaderboard reads nothing but these files, so its tests write them
directly instead of running the evaluator.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from leaderboard.results import METRICS

#: Artefacts written by the tests (the browser screenshot), listed at the end of the run.
ARTIFACTS: list[Path] = []


def pytest_terminal_summary(terminalreporter):
    for p in ARTIFACTS:
        terminalreporter.write_line(f"leaderboard screenshot: {p}")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_result(
    folder: Path,
    stem: str,
    method: str = "Method-A",
    profile: str = "exact",
    benchmark: str = "coco-ad-demo",
    splits=("0", "1", "2", "3"),
    base: float = 0.6,
    step: float = 0.01,
    pool: int | None = None,
    paper: str | None = "https://example.org/paper-a",
    code: str | None = "https://example.org/code-a",
    panels: int = 0,
    sweeps: bool = True,
    overrides: dict | None = None,
) -> Path:
    """Write ``folder/<stem>.json`` (and its panels) and return its path.

    Metric ``k`` of split ``s`` is ``base + step*k + 0.02*s`` (clipped to
    [0, 1]), so means and rankings are known in closed form; ``overrides``
    ({metric: value}) replaces a metric in every split and in the mean.
    """
    folder.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    split_blocks = {}
    for si, sid in enumerate(splits):
        vals = {m: min(1.0, max(0.0, base + step * k + 0.02 * si)) for k, m in enumerate(METRICS)}
        vals.update(overrides)
        split_blocks[sid] = {**vals, "n_images": 40, "n_anomalous": 12, "resized_maps": 0,
                             "classes": {"coco": {**vals, "n_images": 40, "n_anomalous": 12}}}
    mean = {}
    for m in METRICS:
        vs = [b[m] for b in split_blocks.values() if b[m] is not None]
        mean[m] = sum(vs) / len(vs) if vs else None
    t = [round(i / 100, 2) for i in range(101)]
    sw = {sid: {"thresholds": t,
                "F1": [max(0.0, (base - 0.2) * (1 - abs(x - 0.4))) for x in t],
                "IoU": [max(0.0, (base - 0.3) * (1 - abs(x - 0.5))) for x in t],
                "recall": [1.0 - x for x in t]} for sid in splits}
    panel_list = []
    rng = np.random.default_rng(len(stem))
    for sid in splits:
        for i in range(panels):
            rel = f"{stem}_panels/{sid}/{i:012d}.png"
            img = (rng.random((32, 96, 3)) * 255).astype(np.uint8)
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / rel)
            panel_list.append({"split": sid, "img_path": f"val2017/{i:012d}.jpg", "file": rel})
    obj = {
        "evaluator": {"version": "0.1.0", "profile": profile, "pool": pool,
                      "versions": {"python": "3.11", "numpy": "2", "numba": "0.6"}},
        "benchmark": {"name": benchmark, "version": "1", "sha256": _sha(benchmark)},
        "submission": {"name": stem.split(".")[0], "sha256": _sha(stem),
                       "method": {"name": method, **({"paper": paper} if paper else {}),
                                  **({"code": code} if code else {}), "backbone": "resnet18"}},
        "splits": split_blocks,
        "mean": mean,
        "warnings": ["split 0, class coco: nothing to report"] if profile == "exact" else [],
        "panels": panel_list,
        "seconds": 1.5,
    }
    if sweeps:
        obj["sweeps"] = sw
    p = folder / f"{stem}.json"
    p.write_text(json.dumps(obj, sort_keys=True, indent=2))
    return p


def write_results(d: Path) -> Path:
    """Several submissions on the demo benchmark and on coco-ad, two profiles, into ``d``."""
    make_result(d, "alpha.exact", method="Alpha", base=0.60, panels=1)
    make_result(d, "alpha.ader", method="Alpha", profile="ader", base=0.61, panels=1)
    make_result(d, "beta.exact", method="Beta", base=0.70, step=-0.01, paper=None, code="https://example.org/beta")
    make_result(d, "gamma.exact", method="Gamma", base=0.65, sweeps=False, paper="javascript:alert(1)", code=None)
    make_result(d / "coco", "delta.ader", method="Delta", profile="ader", pool=16, benchmark="coco-ad",
                base=0.55, panels=1)
    return d


@pytest.fixture
def results_dir(tmp_path) -> Path:
    return write_results(tmp_path / "results")


@pytest.fixture(scope="session")
def built_board(tmp_path_factory):
    """One leaderboard built from :func:`write_results` (shared: a build takes seconds)."""
    from leaderboard.build import build

    root = tmp_path_factory.mktemp("board")
    res = write_results(root / "results")
    summary = build(res, root / "out", quiet=True)
    return res, root / "out", summary
