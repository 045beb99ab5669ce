"""Published numbers, shipped as data (``leaderboard/data/``), each file a separate source.

Two sources ship with the leaderboard (provenance and checksums in
``leaderboard/data/README.md``):

- ``invad-paper.csv``: the tables of the InvAD / COCO-AD paper, computed with
  ADer's ``util/metric.py`` (what the evaluator's ``ader`` profile reproduces);
- ``ader-benchmark-100e.csv``: ADer's benchmark tables (100 epochs), computed
  with ADer's later evaluator, whose P-AUROC, P-AP and AUPRO come from the
  binned ADEval accumulator (what the ``ader-bench`` profile reproduces).

Each CSV holds one row per (benchmark, method) with the eleven metrics in
percent (empty = not published) and a free-text note; ``methods.csv`` holds
the paper and code links of the methods. Files are read with the csv module
and checked, so a transcription slip (a missing column, a value out of range)
fails loudly. A CSV given with ``--reported`` that is not one of the shipped
files is a source of its own, named after the file.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from leaderboard.results import METRICS

DATA_DIR = Path(__file__).resolve().parent / "data"
PAPER_CSV = DATA_DIR / "invad-paper.csv"
ADER_BENCHMARK_CSV = DATA_DIR / "ader-benchmark-100e.csv"
METHODS_CSV = DATA_DIR / "methods.csv"
#: What ``leaderboard build`` shows when no ``--reported`` is given, in this order.
DEFAULT_SOURCES = (PAPER_CSV, ADER_BENCHMARK_CSV)
MAX_CSV_BYTES = 4 << 20


@dataclass(frozen=True)
class Source:
    """Where a group of reported rows comes from (shown above the group)."""

    key: str  # stable id, used in page ids
    title: str  # short name: the group's heading
    citation: str  # what was published, by whom
    url: str | None
    metric_code: str  # how the numbers were computed
    comparable_profile: str | None = None  # the evaluator profile whose scored rows compare with these


#: The shipped sources, by file name.
KNOWN_SOURCES = {
    PAPER_CSV.name: Source(
        key="invad-paper",
        title="Reported in the InvAD paper",
        citation="Zhang et al., Learning Feature Inversion for Multi-class Anomaly Detection under "
                 "General-purpose COCO-AD Benchmark (2024), results tables",
        url="https://arxiv.org/abs/2404.10760",
        metric_code="computed by the authors with ADer's util/metric.py (exact sklearn path)",
        comparable_profile="ader",
    ),
    ADER_BENCHMARK_CSV.name: Source(
        key="ader-benchmark-100e",
        title="Reported in ADer's benchmark (100 epochs)",
        citation="ADer benchmark tables, configs/benchmark/README.md of zhangzjn/ADer (snapshot of 2025-01-29), "
                 "100-epoch multi-class results (Zhang et al., ADer, arXiv 2406.03262)",
        url="https://github.com/zhangzjn/ADer/blob/main/configs/benchmark/README.md",
        metric_code="computed with ADer's later evaluator: P-AUROC, P-AP and AUPRO from the binned ADEval "
                    "accumulator (50 bins), the .2-.8 metrics not published",
        comparable_profile="ader-bench",
    ),
}


class ReportedError(Exception):
    """The published-numbers file is malformed; the message is one line."""


@dataclass(frozen=True)
class ReportedRow:
    """One published row; ``values`` are fractions (the CSV's percent / 100), None where not published."""

    benchmark: str
    method: str
    values: dict
    note: str
    paper: str | None
    code: str | None
    source: Source


def source_for(path: Path) -> Source:
    """The shipped source of a file of that name, or a source named after the file."""
    path = Path(path)
    if path.name in KNOWN_SOURCES:
        return KNOWN_SOURCES[path.name]
    return Source(key=f"file-{path.stem}", title=f"Reported ({path.name})", citation=f"numbers from {path.name}",
                  url=None, metric_code="metric code not stated")


def _read_csv(path: Path, header: list[str]) -> list[dict]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CSV_BYTES + 1)
    except OSError as e:
        raise ReportedError(f"{path}: cannot read it ({e.strerror or e})") from None
    if len(data) > MAX_CSV_BYTES:
        raise ReportedError(f"{path}: larger than {MAX_CSV_BYTES >> 20} MiB; not a table of published numbers")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReportedError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames != header:
            raise ReportedError(f"{path}: header must be {','.join(header)}, got {','.join(reader.fieldnames or [])}")
        rows = list(reader)
    except csv.Error as e:
        raise ReportedError(f"{path}: not a CSV table ({e})") from None
    for lineno, r in enumerate(rows, start=2):
        if None in r or any(v is None for v in r.values()):
            raise ReportedError(f"{path}, line {lineno}: {len(header)} cells expected")
    return rows


def load_methods(path: Path = METHODS_CSV) -> dict[str, dict]:
    """``{method name, case-folded: {"paper": url | None, "code": url | None}}``."""
    rows = _read_csv(path, ["method", "paper", "code"])
    return {r["method"].casefold(): {"paper": r["paper"] or None, "code": r["code"] or None} for r in rows}


def load_reported(path: Path = PAPER_CSV, methods_path: Path = METHODS_CSV) -> list[ReportedRow]:
    """Published rows of one file, in the file's order (the source's order of methods)."""
    path = Path(path)
    links = load_methods(methods_path)
    rows = _read_csv(path, ["benchmark", "method", *METRICS, "note"])
    source = source_for(path)
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
                raise ReportedError(f"{path}, line {lineno}: {m} is {cell[:40]!r}, not a number") from None
            if not (math.isfinite(v) and 0.0 <= v <= 100.0):
                raise ReportedError(f"{path}, line {lineno}: {m} is {cell[:40]}, not a percentage in [0, 100]")
            values[m] = v / 100.0
        link = links.get(r["method"].casefold(), {})
        out.append(ReportedRow(benchmark=r["benchmark"], method=r["method"], values=values,
                               note=(r["note"] or "").strip(), paper=link.get("paper"), code=link.get("code"),
                               source=source))
    return out


def load_sources(paths) -> list[ReportedRow]:
    """The rows of every file of ``paths``, file after file."""
    out: list[ReportedRow] = []
    keys = set()
    for p in paths:
        rows = load_reported(Path(p))
        if rows and rows[0].source.key in keys:
            raise ReportedError(f"{p}: given twice (or another file of the same name); pass each source once")
        keys.update(r.source.key for r in rows[:1])
        out += rows
    return out
