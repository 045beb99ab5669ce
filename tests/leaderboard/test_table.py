"""The table model: averages, spread, groups, ranks, best/second marks, published numbers."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from leaderboard.reported import ADER_BENCHMARK_CSV, DATA_DIR, DEFAULT_SOURCES, PAPER_CSV, ReportedError, \
    load_methods, load_reported, load_sources
from leaderboard.results import METRICS, read_results, sort_split_ids
from leaderboard.table import AVERAGES, COLUMNS, Row, build_sections, marks, percent, ranked, spread, with_averages

from .conftest import make_result

SHARED = Path("/work/shared/reported")


def _row(group: str, **vals) -> Row:
    values = {c: None for c in COLUMNS}
    values.update({k.replace("_", "-"): v for k, v in vals.items()})
    return Row(kind="scored", key=str(vals), benchmark="b", method=str(vals), values=values, group=group)


def test_column_order():
    assert METRICS == ("I-AUROC", "I-AP", "I-F1max", "AUPRO", "P-AUROC", "P-AP", "P-F1max",
                       "mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8", "mIoU-max")
    assert COLUMNS == ("mAD", *METRICS, "I-avg", "P-avg", "avg_.2_.8")


def test_averages_closed_form():
    m = {k: 0.0 for k in METRICS}
    m.update({"I-AUROC": 0.3, "I-AP": 0.6, "I-F1max": 0.9, "AUPRO": 0.1, "P-AUROC": 0.2, "P-AP": 0.3,
              "P-F1max": 0.4, "mF1_.2_.8": 0.5, "mAcc_.2_.8": 0.25, "mIoU_.2_.8": 0.0, "mIoU-max": 0.99})
    v = with_averages(m)
    assert v["I-avg"] == pytest.approx(0.6)
    assert v["P-avg"] == pytest.approx(0.25)
    assert v["avg_.2_.8"] == pytest.approx(0.25)
    assert v["mAD"] == pytest.approx((0.3 + 0.6 + 0.9 + 0.1 + 0.2 + 0.3 + 0.4) / 7)  # mIoU-max is not in it
    # an undefined part makes the average undefined (an average of fewer metrics is not comparable)
    m["AUPRO"] = None
    assert with_averages(m)["P-avg"] is None and with_averages(m)["mAD"] is None
    assert with_averages(m)["I-avg"] == pytest.approx(0.6)
    assert dict(AVERAGES)["mAD"] == ("I-AUROC", "I-AP", "I-F1max", "P-AUROC", "P-AP", "P-F1max", "AUPRO")


def test_spread_is_the_population_std_of_numpy():
    rng = np.random.default_rng(0)
    per_split = [with_averages({m: float(rng.random()) for m in METRICS}) for _ in range(4)]
    sd = spread(per_split)
    for c in COLUMNS:
        assert sd[c] == pytest.approx(float(np.std([v[c] for v in per_split], ddof=0)), abs=1e-15)
    per_split[2]["I-AUROC"] = None  # undefined on a split: the spread of the others
    assert spread(per_split)["I-AUROC"] == pytest.approx(np.std([per_split[i]["I-AUROC"] for i in (0, 1, 3)]))
    assert spread(per_split[:1])["mAD"] is None  # one split: no spread


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


def test_ranks_by_displayed_mad_ties_share():
    rows = ranked([_row("g", mAD=0.50), _row("g", mAD=0.7004), _row("g", mAD=None), _row("g", mAD=0.6996),
                   _row("g", mAD=0.6)])
    assert [(r.rank, r.values["mAD"]) for r in rows] == [(1, 0.6996), (1, 0.7004), (3, 0.6), (4, 0.5), (None, None)]


def test_shipped_sources_are_the_shared_copies():
    readme = (DATA_DIR / "README.md").read_text()
    for p in (PAPER_CSV, ADER_BENCHMARK_CSV):
        shared = SHARED / p.name
        if shared.exists():
            assert p.read_bytes() == shared.read_bytes()
        assert hashlib.sha256(p.read_bytes()).hexdigest() in readme  # provenance recorded with its checksum
    assert DEFAULT_SOURCES == (PAPER_CSV, ADER_BENCHMARK_CSV)


def test_paper_csv_loads():
    rows = load_reported()
    assert len(rows) == 24
    assert {r.benchmark for r in rows} == {"coco-ad", "mvtec-ad", "visa"}
    inv = next(r for r in rows if r.benchmark == "coco-ad" and r.method == "InvAD")
    assert inv.values["I-AUROC"] == pytest.approx(0.659)
    assert inv.values["mIoU-max"] == pytest.approx(0.152)
    assert inv.paper.startswith("https://") and inv.source.comparable_profile == "ader"


def test_ader_benchmark_csv_loads_and_its_mad_is_the_published_one():
    rows = load_reported(ADER_BENCHMARK_CSV)
    counts = {b: sum(r.benchmark == b for r in rows) for b in ("coco-ad", "mvtec-ad", "visa")}
    assert counts == {"coco-ad": 14, "mvtec-ad": 16, "visa": 15}
    assert all(r.source.comparable_profile == "ader-bench" for r in rows)
    for r in rows:
        assert all(r.values[m] is None for m in ("mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8"))  # not published
        published = float(re.search(r"mAD (\d+\.\d)", r.note).group(1))
        # mAD from the seven one-decimal values vs ADer's from unrounded ones: within rounding
        assert abs(100 * with_averages(r.values)["mAD"] - published) <= 0.1 + 1e-9, (r.benchmark, r.method)


def test_every_reported_method_has_its_links():
    links = load_methods()
    for path in (PAPER_CSV, ADER_BENCHMARK_CSV):
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                ln = links[r["method"].casefold()]  # DesTSeg (ADer) and DeSTSeg (paper) are one method
                assert ln["paper"].startswith("https://") and ln["code"].startswith("https://github.com/")


def test_reported_csv_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    text = PAPER_CSV.read_text().splitlines()
    bad.write_text("\n".join([text[0], text[1].replace("55.1", "155.1")]) + "\n")
    with pytest.raises(ReportedError, match="line 2: I-AUROC is 155.1"):
        load_reported(bad)
    bad.write_text("benchmark,method\ncoco-ad,X\n")
    with pytest.raises(ReportedError, match="header must be"):
        load_reported(bad)
    bad.write_text(text[0] + "\n" + "coco-ad,X\n")
    with pytest.raises(ReportedError, match="line 2: 14 cells expected"):
        load_reported(bad)
    with pytest.raises(ReportedError, match="given twice"):
        load_sources([PAPER_CSV, PAPER_CSV])


def test_sections_groups_scored_first_then_each_source(tmp_path, own_checks):
    d = tmp_path / "results"
    make_result(d, "a.exact", method="A")
    make_result(d, "a.ader", method="A", profile="ader")
    make_result(d / "coco", "b.ader", method="B", profile="ader", pool=16, benchmark="coco-ad")
    sections = build_sections(read_results(d), load_sources(DEFAULT_SOURCES))
    assert [s.benchmark for s in sections] == ["coco-ad", "coco-ad-demo", "mvtec-ad", "visa"]
    coco, demo = sections[0], sections[1]
    assert [(g.kind, g.profile, g.source.key if g.source else None) for g in coco.groups] == [
        ("scored", "ader", None), ("reported", None, "invad-paper"), ("reported", None, "ader-benchmark-100e")]
    assert [g.profile for g in demo.groups] == ["exact", "ader"] and demo.reported_groups == []
    assert list(demo.splits) == ["0", "1", "2", "3"]
    assert [len(g.rows) for g in sections[3].groups] == [8, 15]  # visa: the paper's 8, ADer's 15


def _groups(results):
    sec = build_sections(results, [])[0]
    return [(g.setting, g.split_ids, g.partial, [r.method for r in g.rows]) for g in sec.groups]


def test_rows_share_a_group_only_when_everything_that_changes_numbers_is_equal(tmp_path, own_checks):
    d = tmp_path / "r"
    make_result(d, "a", method="A", profile="ader", pool=16, contract=True, aupro_steps=100)
    make_result(d, "b", method="B", profile="ader", pool=16, contract=True, aupro_steps=100)
    make_result(d, "c", method="C", profile="ader", pool=16, contract=True, aupro_steps=200)  # other AUPRO steps
    make_result(d, "d", method="D", profile="ader", pool=8, contract=True, aupro_steps=100)  # other pool
    make_result(d, "e", method="E", profile="ader", pool=16, contract=True, aupro_steps=100,
                benchmark_sha="e" * 64)  # another build of the benchmark
    make_result(d, "f", method="F", profile="ader", pool=16, contract=True, aupro_steps=100, splits=("0", "1"))
    make_result(d, "g", method="G", profile="ader-bench", pool=16, contract=True, aupro_steps=100)
    groups = _groups(read_results(d))
    full = ("0", "1", "2", "3")
    assert [(s.split(", build")[0], ids, p, m) for s, ids, p, m in groups] == [
        ("ader, pool 8, AUPRO 100 steps", full, False, ["D"]),
        ("ader, pool 16, AUPRO 100 steps", full, False, ["A", "B"]),
        ("ader, pool 16, AUPRO 100 steps", full, False, ["E"]),
        ("ader, pool 16, AUPRO 200 steps", full, False, ["C"]),
        ("ader-bench, pool 16, AUPRO 100 steps", full, False, ["G"]),
        ("ader, pool 16, AUPRO 100 steps", ("0", "1"), True, ["F"]),
    ]
    assert sum("build eeeeeeeeeeee" in s for s, *_ in groups) == 1  # two builds: the label names them


def test_partial_results_without_the_contract_fields_are_inferred(tmp_path, own_checks):
    d = tmp_path / "r"
    make_result(d, "a", method="A", contract=False)
    make_result(d, "b", method="B", contract=False, splits=("3",))
    make_result(d, "c", method="C", contract=False, splits=("3",), benchmark="other")
    groups = _groups(read_results(d))
    assert groups == [("exact", ("0", "1", "2", "3"), False, ["A"]), ("exact", ("3",), True, ["B"])]
    # alone on its benchmark build, a one-split result of an older evaluator cannot be known partial
    other = build_sections(read_results(d), [])[1]
    assert [g.partial for g in other.groups] == [False]


def test_complete_false_is_partial_even_alone(tmp_path, own_checks):
    d = tmp_path / "r"
    make_result(d, "a", method="A", contract=True, splits=("3",))
    assert _groups(read_results(d)) == [("exact", ("3",), True, ["A"])]


def test_split_id_order():
    assert sort_split_ids(["10", "2", "0", "b", "a"]) == ["0", "2", "10", "a", "b"]


def test_different_benchmark_builds_are_flagged(tmp_path, own_checks):
    from leaderboard import markdown

    d = tmp_path / "results"
    make_result(d, "a.exact", splits=("0",), benchmark_splits=("0",))
    make_result(d, "b.exact", splits=("0",), benchmark_splits=("0",), benchmark_sha="f" * 64)
    md = markdown.render(build_sections(read_results(d), []))
    assert "different builds of it" in md
    assert "(sha256 `ffffffffffff`)" in md
    assert "per split" not in md  # one split: the mean table says it all
