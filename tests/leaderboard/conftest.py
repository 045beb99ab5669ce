"""Hand-made evaluator result files (the JSON format of SPEC §5 and CONTRACTS.md).

The leaderboard reads nothing but these files, so its tests write them
directly instead of running the evaluator.

Results of newer evaluators carry ``complete``, ``benchmark.split_ids``,
``benchmark.masks``, ``evaluator.aupro_steps`` and ``evaluator.ground_truth``
and may have the profile ``ader-bench``. :data:`CONTRACT` says whether the
result schema shipped in this tree knows them; where it does not yet, the
tests that need those fields check results with the leaderboard's own checks
only (:func:`own_checks`), and results are written without them by default.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import leaderboard.results as results_mod
from leaderboard.results import METRICS

#: Artefacts written by the tests (the browser screenshot), listed at the end of the run.
ARTIFACTS: list[Path] = []
DEMO_SPLITS = ("0", "1", "2", "3")


def _schema_knows_contract() -> bool:
    p = results_mod._result_schema_path()
    if p is None:
        return False
    schema = json.loads(p.read_text())
    return "complete" in schema.get("properties", {}) and "ader-bench" in json.dumps(schema)


CONTRACT = _schema_knows_contract()


@contextlib.contextmanager
def own_checks_if_needed():
    """Check results with the leaderboard's own checks when the shipped schema predates CONTRACTS.md."""
    with pytest.MonkeyPatch.context() as mp:
        if not CONTRACT:
            mp.setattr(results_mod, "_result_schema_path", lambda: None)
        yield


@pytest.fixture
def own_checks():
    with own_checks_if_needed():
        yield


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
    splits=DEMO_SPLITS,
    base: float = 0.6,
    step: float = 0.01,
    pool: int | None = None,
    paper: str | None = "https://example.org/paper-a",
    code: str | None = "https://example.org/code-a",
    panels: int = 0,
    sweeps: bool = True,
    overrides: dict | None = None,
    submission: str | None = None,
    contract: bool | None = None,
    benchmark_splits=DEMO_SPLITS,
    aupro_steps: int | None = None,
    method_extra: dict | None = None,
    benchmark_sha: str | None = None,
) -> Path:
    """Write ``folder/<stem>.json`` (and its panels) and return its path.

    Metric ``k`` of split ``s`` (its index in ``splits``) is
    ``base + step*k + 0.02*s`` (clipped to [0, 1]), so means, spreads and
    rankings are known in closed form; ``overrides`` ({metric: value})
    replaces a metric in every split and in the mean. ``submission``: the
    submission's name (default: the stem up to its first dot), which also
    fixes its checksum, so two profiles of one submission share it.
    ``contract``: write the CONTRACTS.md fields (default :data:`CONTRACT`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    submission = submission or stem.split(".")[0]
    contract = CONTRACT if contract is None else contract
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
    m = {"name": method, **({"paper": paper} if paper else {}), **({"code": code} if code else {}),
         "backbone": "resnet18", **(method_extra or {})}
    obj = {
        "evaluator": {"version": "0.1.0", "profile": profile, "pool": pool,
                      "versions": {"python": "3.11", "numpy": "2", "numba": "0.6"}},
        "benchmark": {"name": benchmark, "version": "1", "sha256": benchmark_sha or _sha(benchmark)},
        "submission": {"name": submission, "sha256": _sha(submission), "method": m},
        "splits": split_blocks,
        "mean": mean,
        "warnings": ["split 0, class coco: nothing to report"] if profile == "exact" else [],
        "panels": panel_list,
        "seconds": 1.5,
    }
    if contract:
        obj["complete"] = set(benchmark_splits) <= set(splits)
        obj["benchmark"]["split_ids"] = list(benchmark_splits)
        obj["benchmark"]["masks"] = "pycocotools"
        obj["evaluator"]["aupro_steps"] = aupro_steps if aupro_steps is not None or profile == "exact" else 100
        obj["evaluator"]["ground_truth"] = "eval-size"
    if sweeps:
        obj["sweeps"] = sw
    p = folder / f"{stem}.json"
    p.write_text(json.dumps(obj, sort_keys=True, indent=2))
    return p


TINY = {"preset": "invad-tiny", "published": False, "implementation": "coco-ad-suite baselines 0.1.0"}


def write_results(d: Path) -> Path:
    """Submissions on the demo benchmark and on coco-ad, several profiles, a partial one, into ``d``.

    coco-ad-demo (results without the CONTRACTS.md fields unless the schema knows them):
    Alpha (one submission, scored exact and ader, panels), Beta, Gamma (no sweeps, a javascript: paper
    link), InvAD-tiny (an unpublished preset), Epsilon (split 3 only: partial, better than everyone).
    coco-ad (results with the CONTRACTS.md fields): Delta (ader, pool 16) and Zeta (ader-bench), no panels.
    """
    make_result(d, "alpha.exact", method="Alpha", base=0.60, panels=1)
    make_result(d, "alpha.ader", method="Alpha", profile="ader", base=0.61, panels=1)
    make_result(d, "beta.exact", method="Beta", base=0.70, step=-0.01, paper=None, code="https://example.org/beta")
    make_result(d, "gamma.exact", method="Gamma", base=0.65, sweeps=False, paper="javascript:alert(1)", code=None)
    make_result(d, "tiny.exact", method="InvAD-tiny", base=0.62, paper="https://arxiv.org/abs/2404.10760", code=None,
                method_extra=TINY)
    make_result(d, "eps.exact", method="Epsilon", base=0.90, step=0.0, splits=("3",))
    make_result(d / "coco", "delta.ader", method="Delta", profile="ader", pool=16, benchmark="coco-ad",
                base=0.55, contract=True, benchmark_splits=DEMO_SPLITS)
    make_result(d / "coco", "zeta.ader-bench", method="Zeta", profile="ader-bench", pool=16, benchmark="coco-ad",
                base=0.50, contract=True, aupro_steps=100)
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
    with own_checks_if_needed():
        summary = build(res, root / "out", quiet=True)
    return res, root / "out", summary
