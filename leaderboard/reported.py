"""The numbers published in the InvAD paper, shipped as data (``leaderboard/data/``).

``invad-paper.csv`` holds one row per (benchmark, method) with the eleven
metrics in percent and a free-text note; ``methods.csv`` the paper and code
links of those methods. Both are read with the csv module and checked, so a
transcription slip (a missing column, a value out of range) fails loudly.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from leaderboard.results import METRICS

DATA_DIR = Path(__file__).resolve().parent / "data"
PAPER_CSV = DATA_DIR / "invad-paper.csv"
METHODS_CSV = DATA_DIR / "methods.csv"

#: Where the reported numbers come from (shown beside every reported row).
SOURCE = {
    "title": "Zhang et al., Learning Feature Inversion for Multi-class Anomaly Detection "
             "under General-purpose COCO-AD Benchmark (2024)",
    "url": "https://arxiv.org/abs/2404.10760",
}


class ReportedError(Exception):
    """The published-numbers file is malformed; the message is one line."""


@dataclass(frozen=True)
class ReportedRow:
    """One published row; ``values`` are fractions (the CSV's percent / 100)."""

    benchmark: str
    method: str
    values: dict
    note: str
    paper: str | None
    code: str | None


def _read_csv(path: Path, header: list[str]) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != header:
                raise ReportedError(f"{path}: header must be {','.join(header)}, got {','.join(reader.fieldnames or [])}")
            return list(reader)
    except OSError as e:
        raise ReportedError(f"{path}: cannot read it ({e})") from None


def load_methods(path: Path = METHODS_CSV) -> dict[str, dict]:
    """``{method: {"paper": url | None, "code": url | None}}``."""
    rows = _read_csv(path, ["method", "paper", "code"])
    return {r["method"]: {"paper": r["paper"] or None, "code": r["code"] or None} for r in rows}


def load_reported(path: Path = PAPER_CSV, methods_path: Path = METHODS_CSV) -> list[ReportedRow]:
    """Published rows in the file's order (the paper's order of methods)."""
    links = load_methods(methods_path)
    rows = _read_csv(path, ["benchmark", "method", *METRICS, "note"])
    out: list[ReportedRow] = []
    seen = set()
    for lineno, r in enumerate(rows, start=2):
        key = (r["benchmark"], r["method"])
        if not r["benchmark"] or not r["method"]:
            raise ReportedError(f"{path}, line {lineno}: benchmark and method must not be empty")
        if key in seen:
            raise ReportedError(f"{path}, line {lineno}: {r['method']} on {r['benchmark']} is listed twice")
        seen.add(key)
        values = {}
        for m in METRICS:
            cell = (r[m] or "").strip()
            if cell == "":
                values[m] = None
                continue
            try:
                v = float(cell)
            except ValueError:
                raise ReportedError(f"{path}, line {lineno}: {m} is {cell!r}, not a number") from None
            if not (math.isfinite(v) and 0.0 <= v <= 100.0):
                raise ReportedError(f"{path}, line {lineno}: {m} is {cell}, not a percentage in [0, 100]")
            values[m] = v / 100.0
        link = links.get(r["method"], {})
        out.append(ReportedRow(benchmark=r["benchmark"], method=r["method"], values=values,
                               note=(r["note"] or "").strip(), paper=link.get("paper"), code=link.get("code")))
    return out
