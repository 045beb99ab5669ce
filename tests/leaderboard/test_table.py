"""The table model: averages, percentages, best/second marks, published numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from leaderboard.reported import PAPER_CSV, ReportedError, load_reported
from leaderboard.results import METRICS, load_results, sort_split_ids
from leaderboard.table import AVERAGES, COLUMNS, Row, build_sections, marks, percent, with_averages

from .conftest import make_result

SHARED_CSV = Path("/work/shared/reported/invad-paper.csv")


def _row(group: str, **vals) -> Row:
    values = {c: None for c in COLUMNS}
    values.update({k.replace("_", "-"): v for k, v in vals.items()})
    return Row(kind="scored", key=str(vals), benchmark="b", method="m", values=values, group=group)


def test_paper_column_order():
    assert METRICS == ("I-AUROC", "I-AP", "I-F1max", "AUPRO", "P-AUROC", "P-AP", "P-F1max",
                       "mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8", "mIoU-max")
    assert COLUMNS[-3:] == ("I-avg", "P-avg", "avg_.2_.8")


def test_averages_closed_form():
    m = {k: 0.0 for k in METRICS}
    m.update({"I-AUROC": 0.3, "I-AP": 0.6, "I-F1max": 0.9, "AUPRO": 0.1, "P-AUROC": 0.2, "P-AP": 0.3,
              "P-F1max": 0.4, "mF1_.2_.8": 0.5, "mAcc_.2_.8": 0.25, "mIoU_.2_.8": 0.0})
    v = with_averages(m)
    assert v["I-avg"] == pytest.approx(0.6)
    assert v["P-avg"] == pytest.approx(0.25)
    assert v["avg_.2_.8"] == pytest.approx(0.25)
    # an undefined part makes the average undefined (an average of fewer metrics is not comparable)
    m["AUPRO"] = None
    assert with_averages(m)["P-avg"] is None
    assert with_averages(m)["I-avg"] == pytest.approx(0.6)
    assert {name for name, _ in AVERAGES} == {"I-avg", "P-avg", "avg_.2_.8"}


def test_percent_formatting():
    assert percent(0.659) == "65.9"
    assert percent(1.0) == "100.0"
    assert percent(0.0) == "0.0"
    assert percent(None) == "–"


def test_marks_best_second_ties_and_groups():
    rows = [
        _row("scored:exact", I_AUROC=0.70),
        _row("scored:exact", I_AUROC=0.80),
        _row("scored:exact", I_AUROC=0.8001),  # shows as 80.0 too: a tie for best
        _row("scored:exact", I_AUROC=0.60),
        _row("scored:exact", I_AUROC=None),
        _row("scored:ader", I_AUROC=0.99),  # alone in its group: no mark
        _row("reported", I_AUROC=0.10),
        _row("reported", I_AUROC=0.20),
    ]
    m = marks(rows, columns=("I-AUROC",))
    assert m == {(1, "I-AUROC"): "best", (2, "I-AUROC"): "best", (0, "I-AUROC"): "second",
                 (7, "I-AUROC"): "best", (6, "I-AUROC"): "second"}


def test_reported_csv_is_the_shared_copy_and_loads():
    if SHARED_CSV.exists():
        assert PAPER_CSV.read_bytes() == SHARED_CSV.read_bytes()
    rows = load_reported()
    assert len(rows) == 24
    assert {r.benchmark for r in rows} == {"coco-ad", "mvtec-ad", "visa"}
    inv = next(r for r in rows if r.benchmark == "coco-ad" and r.method == "InvAD")
    assert inv.values["I-AUROC"] == pytest.approx(0.659)
    assert inv.values["mIoU-max"] == pytest.approx(0.152)
    assert inv.paper.startswith("https://")
    # every method of the CSV has its links
    with open(PAPER_CSV, newline="") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {r.method for r in rows if r.paper}


def test_reported_csv_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    text = PAPER_CSV.read_text().splitlines()
    bad.write_text("\n".join([text[0], text[1].replace("55.1", "155.1")]) + "\n")
    with pytest.raises(ReportedError, match="line 2: I-AUROC is 155.1"):
        load_reported(bad)
    bad.write_text("benchmark,method\ncoco-ad,X\n")
    with pytest.raises(ReportedError, match="header must be"):
        load_reported(bad)


def test_sections_scored_first_then_reported_only(results_dir):
    sections = build_sections(load_results(results_dir), load_reported())
    assert [s.benchmark for s in sections] == ["coco-ad", "coco-ad-demo", "mvtec-ad", "visa"]
    demo = sections[1]
    assert [r.method for r in demo.scored] == ["Alpha", "Alpha", "Beta", "Gamma"]
    assert [r.profile for r in demo.scored] == ["ader", "exact", "exact", "exact"]
    assert demo.reported == []
    assert list(demo.splits) == ["0", "1", "2", "3"]
    coco = sections[0]
    assert [r.kind for r in coco.scored] == ["scored"]
    assert coco.scored[0].profile == "ader, pool 16"
    assert len(coco.reported) == 8 and all(r.kind == "reported" for r in coco.reported)
    assert sections[2].scored == [] and len(sections[2].reported) == 8


def test_split_id_order():
    assert sort_split_ids(["10", "2", "0", "b", "a"]) == ["0", "2", "10", "a", "b"]


def test_different_benchmark_builds_are_flagged(tmp_path):
    import json

    from leaderboard import markdown

    d = tmp_path / "results"
    make_result(d, "a.exact", splits=("0",))
    p = make_result(d, "b.exact", splits=("0",))
    obj = json.loads(p.read_text())
    obj["benchmark"]["sha256"] = "f" * 64
    p.write_text(json.dumps(obj))
    md = markdown.render(build_sections(load_results(d), []))
    assert "different builds of the benchmark" in md
    assert "(sha256 `ffffffffffff`)" in md
    assert "per split" not in md  # one split: the mean table says it all
