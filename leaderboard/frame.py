"""Result files as a pandas DataFrame: ``leaderboard.load_results(paths)`` and ``leaderboard.csv``.

One row per (result file, split scored), in the order of the result keys and
the natural split order. Columns: provenance first (:data:`PROVENANCE`), then
every metric of :data:`leaderboard.table.COLUMNS` as a fraction in [0, 1]
(NaN where undefined), so ``df.groupby(["method", "profile"])[list(COLUMNS)].mean()``
is the board's mean row and ``.std(ddof=0)`` its spread.

``leaderboard.csv`` is the same table, written reproducibly (floats in
Python's shortest round-trip form, ``\\n`` line ends). Text cells are cleaned
as on the page (no bidi or control characters) and a cell that a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``) gets a
leading ``'``.
"""

from __future__ import annotations

import io

from leaderboard import text
from leaderboard.results import Result
from leaderboard.table import COLUMNS, setting_label, with_averages

#: Provenance columns of :func:`frame`, in order.
PROVENANCE = (
    "result", "benchmark", "benchmark_version", "benchmark_sha256", "benchmark_masks", "split", "splits_scored",
    "complete", "profile", "pool", "aupro_steps", "setting", "ground_truth", "evaluator_version", "method",
    "preset", "published", "paper", "code", "backbone", "params_m", "submission", "submission_sha256",
    "n_images", "n_anomalous",
)
_TEXT = ("result", "benchmark", "benchmark_version", "benchmark_masks", "split", "splits_scored", "profile",
         "setting", "ground_truth", "evaluator_version", "method", "preset", "paper", "code", "backbone",
         "submission")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def records(results: list[Result]) -> list[dict]:
    """One dict per (result, split), keys :data:`PROVENANCE` + :data:`COLUMNS`."""
    out = []
    for res in sorted(results, key=lambda r: r.key):
        m = res.method
        base = {
            "result": res.key, "benchmark": res.benchmark, "benchmark_version": res.benchmark_version,
            "benchmark_sha256": res.benchmark_sha256, "benchmark_masks": res.masks,
            "splits_scored": " ".join(res.split_ids), "complete": res.complete, "profile": res.profile,
            "pool": res.pool, "aupro_steps": res.aupro_steps, "setting": setting_label(res),
            "ground_truth": res.ground_truth, "evaluator_version": res.evaluator_version, "method": m["name"],
            "preset": m.get("preset"), "published": m.get("published"), "paper": m.get("paper") or None,
            "code": m.get("code") or None, "backbone": m.get("backbone"), "params_m": m.get("params_m"),
            "submission": res.data["submission"]["name"], "submission_sha256": res.data["submission"]["sha256"],
        }
        for sid in res.split_ids:
            block = res.data["splits"][sid]
            values = with_averages(block)
            out.append({**base, "split": sid, "n_images": block["n_images"], "n_anomalous": block["n_anomalous"],
                        **{c: values[c] for c in COLUMNS}})
    return out


def frame(results: list[Result]):
    """The DataFrame of :func:`records` (columns in :data:`PROVENANCE` + :data:`COLUMNS` order)."""
    import pandas as pd

    df = pd.DataFrame.from_records(records(results), columns=[*PROVENANCE, *COLUMNS])
    df[list(COLUMNS)] = df[list(COLUMNS)].astype("float64")
    for c in ("pool", "aupro_steps", "n_images", "n_anomalous"):
        df[c] = df[c].astype("Int64")
    for c in ("complete", "published"):
        df[c] = df[c].astype("boolean")
    return df


def _cell(v):
    if isinstance(v, str):
        v = text.clean(v)
        return "'" + v if v.startswith(_FORMULA) else v
    return v


def csv_bytes(results: list[Result]) -> bytes:
    """``leaderboard.csv``: :func:`frame` with text cells made safe for spreadsheets."""
    df = frame(results)
    for c in _TEXT:
        df[c] = df[c].map(_cell, na_action="ignore")
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")
