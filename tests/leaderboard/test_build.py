"""``leaderboard build`` end to end on hand-made results: what it writes, how it groups, and that it is reproducible.

Closed forms (conftest.make_result): metric k of split s is base + step*k + 0.02*s, so over the four demo
splits a metric's mean is base + step*k + 0.03, its spread (population std of 0, 2, 4, 6 points) 2.2 points,
and mAD (the mean of metrics 0-6) base + 3*step + 0.03.
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from leaderboard.build import MARKER, BuildError, build
from leaderboard.results import METRICS
from leaderboard.table import COLUMNS

from .conftest import make_result, own_checks_if_needed


def _md_section(md: str, name: str) -> str:
    m = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", md, re.S | re.M)
    assert m, name
    return m.group(1)


def _md_block(section: str, heading_start: str) -> str:
    m = re.search(rf"^### {re.escape(heading_start)}.*?\n(.*?)(?=^### |\Z)", section, re.S | re.M)
    assert m, heading_start
    return m.group(1)


def _md_rows(block: str) -> list[list[str]]:
    lines = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| Rank")
             and not line.startswith("| Method |")]
    return [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in lines]


def test_writes_page_table_csv_plots_and_panels(built_board):
    res, out, summary = built_board
    files = set(summary.files)
    assert {"index.html", "leaderboard.md", "leaderboard.csv", MARKER} <= files
    for bench in ("coco-ad-demo", "coco-ad"):
        for kind in ("metrics", "splits", "sweeps"):
            for ext in ("png", "svg"):
                assert f"plots/{bench}-{kind}.{ext}" in files
    for bench in ("mvtec-ad", "visa"):  # reported numbers only: their bars, nothing else
        assert f"plots/{bench}-metrics.png" in files and f"plots/{bench}-splits.png" not in files
    # panels are copied byte for byte, once per submission: Alpha's exact result, not its ader twin
    panels = sorted(f for f in files if f.startswith("panels/"))
    assert panels == [f"panels/alpha.exact_panels/{s}/000000000000.png" for s in "0123"]
    for f in panels:
        assert (out / f).read_bytes() == (res / f.removeprefix("panels/")).read_bytes()
    assert (out / "plots/coco-ad-demo-metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "plots/coco-ad-demo-metrics.svg").read_bytes()[:600]
    assert summary.benchmarks == ("coco-ad", "coco-ad-demo", "mvtec-ad", "visa")
    # the marker lists every file of the build
    listed = (out / MARKER).read_text().splitlines()
    assert set(listed[2:]) == files - {MARKER}


def test_groups_ranks_and_marks_in_markdown(built_board):
    _, out, _ = built_board
    md = (out / "leaderboard.md").read_text()
    demo = _md_section(md, "coco-ad-demo")
    headings = re.findall(r"^### (.*)$", demo, re.M)
    assert headings[0].startswith("Scored: exact") and headings[0].endswith("splits 0, 1, 2, 3")
    assert headings[1].startswith("Scored: ader") and headings[1].endswith("splits 0, 1, 2, 3")
    assert headings[2].startswith("Partial results: exact") and headings[2].endswith("split 3 only")
    header = next(line for line in demo.splitlines() if line.startswith("| Rank | Method |"))
    assert [c.strip() for c in header.strip("|").split("|")][2:] == list(COLUMNS)
    rows = _md_rows(_md_block(demo, "Scored: exact"))
    by = {r[1]: dict(zip(["Rank", "Method", *COLUMNS], r)) for r in rows}
    # ranked by mAD: Gamma 71.0, Beta 70.0, InvAD-tiny 68.0, Alpha 66.0
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    assert [r[1].split("]")[0].lstrip("[").split(" (")[0] for r in rows] == ["Gamma", "Beta", "InvAD-tiny", "Alpha"]
    gamma, beta, alpha = by["Gamma"], by["[Beta](https://example.org/beta)"], by["[Alpha](https://example.org/paper-a)"]
    assert gamma["mAD"] == "**71.0**" and beta["mAD"] == "*70.0*" and alpha["mAD"] == "66.0"
    assert beta["I-AUROC"] == "**73.0**" and gamma["I-AUROC"] == "*68.0*" and alpha["I-AUROC"] == "63.0"
    assert gamma["mIoU-max"] == "**78.0**" and beta["mIoU-max"] == "63.0"
    assert alpha["I-avg"] == "64.0"  # mean(63, 64, 65)
    # the only ader row is alone in its group: no marks at all
    ader = _md_rows(_md_block(demo, "Scored: ader"))
    assert len(ader) == 1 and all("**" not in c and not c.startswith("*") for c in ader[0][2:])
    assert ader[0][2] == "67.0"


def test_partial_results_apart_and_never_bolded(built_board):
    _, out, _ = built_board
    demo = _md_section((out / "leaderboard.md").read_text(), "coco-ad-demo")
    partial = _md_block(demo, "Partial results")
    assert "never against complete results" in partial
    (row,) = _md_rows(partial)
    # Epsilon scores 90.0 everywhere, far above every complete row, and is marked nowhere
    assert row[1].startswith("[Epsilon]") and row[2:] == ["90.0"] * len(COLUMNS)
    assert "Epsilon" not in _md_block(demo, "Scored: exact")
    page = (out / "index.html").read_text()
    eps = re.search(r'<tr class="scored" data-key="eps.exact.json".*?</tr>', page, re.S).group(0)
    assert 'class="badge partial"' in eps and 'class="best"' not in eps and 'class="second"' not in eps
    # in the per-split table of split 3 it compares with everyone, as it scored the same split
    split3 = demo.split("Split 3:")[1]
    eps3 = next(r for r in _md_rows(split3) if r[1].startswith("[Epsilon]"))
    assert eps3[0] == "1" and eps3[3] == "**90.0**"


def test_spread_over_splits(built_board):
    _, out, _ = built_board
    demo = _md_section((out / "leaderboard.md").read_text(), "coco-ad-demo")
    spread = _md_block(demo, "coco-ad-demo: spread over splits")
    rows = {r[0]: r for r in _md_rows(spread)}
    beta = rows["[Beta](https://example.org/beta)"]
    assert beta[1] == "exact" and beta[2] == "0 1 2 3"
    # population std of (0, 2, 4, 6) points = 2.236
    assert beta[3:] == [f"{v} ± 2.2" for v in ("70.0", "73.0", "72.0", "71.0", "70.0", "69.0", "68.0", "67.0", "66.0",
                                               "65.0", "64.0", "63.0", "72.0", "68.5", "65.0")]
    assert not any(r[0].startswith("[Epsilon]") for r in rows.values())  # one split: no spread
    page = (out / "index.html").read_text()
    row = re.search(r'<tr class="scored" data-key="beta.exact.json".*?</tr>', page, re.S).group(0)
    assert row.count('<span class="sd"') == len(COLUMNS) and "±2.2" in row


def test_reported_sources_are_separate_groups(built_board):
    _, out, _ = built_board
    md = (out / "leaderboard.md").read_text()
    coco = _md_section(md, "coco-ad")
    headings = re.findall(r"^### (.*)$", coco, re.M)
    assert headings[:4] == ["Scored: ader, pool 16, AUPRO 100 steps, splits 0, 1, 2, 3",
                            "Scored: ader-bench, pool 16, AUPRO 100 steps, splits 0, 1, 2, 3",
                            "Reported in the InvAD paper", "Reported in ADer's benchmark (100 epochs)"]
    paper = _md_rows(_md_block(coco, "Reported in the InvAD paper"))
    assert [r[1].split("]")[0][1:] for r in paper] == ["InvAD", "InvAD-lite", "RD", "DiAD", "UniAD", "SimpleNet",
                                                       "DeSTSeg", "DRAEM"]
    invad = dict(zip(["Rank", "Method", *COLUMNS], paper[0]))
    assert invad["I-AUROC"] == "**65.9**" and invad["P-AUROC"] == "**73.3**" and invad["mAD"] == "**50.2**"
    ader_block = _md_block(coco, "Reported in ADer")
    assert "comparable with scored rows of the ader\\-bench profile" in ader_block.replace("Comparable", "comparable") \
        or "ader-bench profile" in ader_block
    ader = _md_rows(ader_block)
    assert len(ader) == 14 and ader[0][1].startswith("[ViTAD]") and ader[0][2] == "**52.1**"
    assert ader[-1][1].startswith("[DRAEM]") and ader[-1][0] == "14"
    # the scored rows are each alone in their group: unmarked, whatever the reported rows hold
    for block in ("Scored: ader,", "Scored: ader-bench"):
        (row,) = _md_rows(_md_block(coco, block))
        assert all("*" not in c for c in row[2:])
    page = (out / "index.html").read_text()
    assert "Scored rows of the <code>ader-bench</code> profile are the ones comparable with these." in page
    assert 'id="t-coco-ad-invad-paper"' in page and 'id="t-coco-ad-ader-benchmark-100e"' in page
    assert page.count('<span class="badge">reported</span>') == 24 + 45  # ADer: 14 COCO-AD, 16 MVTec AD, 15 VisA rows
    assert "No scored results for this benchmark yet." in _md_section(md, "mvtec-ad")


def test_unpublished_preset_is_not_linked_as_published(built_board):
    _, out, _ = built_board
    md = (out / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if "InvAD-tiny" in line)
    assert "InvAD\\-tiny" not in row  # names are not over-escaped
    assert "InvAD-tiny (unpublished preset invad-tiny, code baselines/invad/)" in row
    assert "arxiv.org" not in row
    page = (out / "index.html").read_text()
    tr = re.search(r'<tr class="scored" data-key="tiny.exact.json".*?</tr>', page, re.S).group(0)
    assert '<span class="method">InvAD-tiny</span>' in tr  # the name links nowhere
    assert "unpublished preset" in tr and "<code>baselines/invad/</code>" in tr
    assert '<a href="https://arxiv.org/abs/2404.10760">method paper</a>' in tr


def test_panels_once_per_submission_and_no_empty_headings(built_board):
    _, out, _ = built_board
    page = (out / "index.html").read_text()
    sections = dict(re.findall(r'<section class="benchmark" id="b-([^"]+)".*?>(.*?)</section>', page, re.S))
    demo = sections["coco-ad-demo"]
    assert demo.count("<h3>Qualitative panels</h3>") == 1
    assert demo.count('<figure class="panel">') == 4 and "Alpha · submission alpha" in demo
    for name in ("coco-ad", "mvtec-ad", "visa"):
        assert "Qualitative panels" not in sections[name]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts = 0
        self.attrs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        self.attrs += [(tag, k, v or "") for k, v in attrs]


def test_html_rows_links_and_safety(built_board):
    _, out, _ = built_board
    page = (out / "index.html").read_text()
    p = _Page()
    p.feed(page)
    assert p.scripts == 1  # ours
    assert not [a for a in p.attrs if a[1].startswith("on")]
    hrefs = [v for tag, k, v in p.attrs if k in ("href", "src")]
    assert all(v.startswith(("https://", "#", "plots/", "panels/")) for v in hrefs), hrefs
    assert "javascript:" not in page
    assert 'data-key="alpha.exact.json"' in page and 'data-key="coco/delta.ader.json"' in page
    assert 'href="https://example.org/paper-a"' in page and 'href="https://example.org/beta"' in page
    assert hashlib.sha256(b"coco-ad").hexdigest() in page
    assert page.index('id="t-coco-ad-ader-pool-16-AUPRO-100-steps-0-1-2-3"') < page.index('id="t-coco-ad-invad-paper"')
    for m in METRICS:
        assert f'data-col="{m}"' in page
    # definitions of every average and of the spread are on the page
    for needle in ("<code>mAD</code> = mean of I-AUROC, I-AP, I-F1max, P-AUROC, P-AP, P-F1max, AUPRO",
                   "<code>I-avg</code> = mean of I-AUROC, I-AP, I-F1max", "population, ddof = 0"):
        assert needle in page


def test_csv_is_the_dataframe_of_load_results(built_board):
    import leaderboard

    res, out, _ = built_board
    with own_checks_if_needed():
        df = leaderboard.load_results(res)
    csv = pd.read_csv(out / "leaderboard.csv", dtype={"split": str, "benchmark_version": str})
    assert len(df) == len(csv) == 5 * 4 + 1 + 2 * 4
    assert list(csv.columns) == list(df.columns)
    for c in COLUMNS:
        assert (csv[c] - df[c]).abs().max() < 1e-15
    beta = df[df.result == "beta.exact.json"]
    assert list(beta.split) == ["0", "1", "2", "3"]
    assert beta["I-AUROC"].tolist() == pytest.approx([0.70, 0.72, 0.74, 0.76])
    assert beta["mAD"].mean() == pytest.approx(0.70) and beta["mAD"].std(ddof=0) == pytest.approx(0.02 * 1.25 ** 0.5)
    tiny = df[df.method == "InvAD-tiny"].iloc[0]
    assert tiny.preset == "invad-tiny" and not tiny.published


def test_rebuild_is_byte_identical(built_board, tmp_path):
    res, out, summary = built_board
    first = {f: (out / f).read_bytes() for f in summary.files}
    other = tmp_path / "again"
    with own_checks_if_needed():
        again = build(res, other, quiet=True)
    assert again.files == summary.files
    for f in summary.files:
        assert (other / f).read_bytes() == first[f], f
    assert not list(tmp_path.glob(".again.*"))  # no temporary folder left behind


def _small(folder, name="m", splits=("0",)):
    return make_result(folder, f"{name}.exact", method=name.upper(), splits=splits, sweeps=False,
                       benchmark_splits=splits)


def test_files_of_the_previous_build_are_dropped(tmp_path, own_checks):
    first, second = tmp_path / "first", tmp_path / "second"
    _small(first, "a")
    make_result(second, "c.exact", benchmark="other-bench", splits=("0",), sweeps=False, benchmark_splits=("0",))
    out = tmp_path / "board"
    build(first, out, quiet=True, reported=None)
    assert (out / "plots" / "coco-ad-demo-metrics.png").exists()
    build(second, out, quiet=True, reported=None)
    assert not (out / "plots" / "coco-ad-demo-metrics.png").exists()
    assert (out / "plots" / "other-bench-metrics.png").exists()


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path, own_checks):
    res = tmp_path / "results"
    _small(res)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    with pytest.raises(BuildError, match="did not write"):
        build(res, out, quiet=True)
    assert (out / "precious.txt").read_text() == "keep"
    with pytest.raises(BuildError, match="inside the results folder"):
        build(res, res / "board", quiet=True)


def test_page_beside_other_files_is_not_replaced(tmp_path, own_checks):
    """Issue 11 #5: a folder holding an index.html and docs/ was replaced, deleting docs/."""
    res = tmp_path / "results"
    _small(res)
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    (site / "docs" / "guide.md").write_text("mine")
    (site / "index.html").write_text("<html>my site</html>")
    with pytest.raises(BuildError, match="did not write"):
        build(res, site, quiet=True, reported=None)
    assert (site / "docs" / "guide.md").read_text() == "mine"
    # a real build output to which someone added a file is refused too, naming the file
    board = tmp_path / "board"
    build(res, board, quiet=True, reported=None)
    (board / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="holds notes.txt, which the leaderboard build did not write"):
        build(res, board, quiet=True, reported=None)
    assert (board / "notes.txt").read_text() == "mine"


def test_replaces_a_board_written_by_leaderboard_0_1(tmp_path, own_checks):
    res = tmp_path / "results"
    _small(res)
    old = tmp_path / "board"
    (old / "plots").mkdir(parents=True)
    (old / "plots" / "x-metrics.png").write_bytes(b"png")
    (old / "leaderboard.md").write_text("# Leaderboard\n")
    (old / "index.html").write_text('<html><head><meta name="generator" content="coco-ad leaderboard 0.1.0">')
    build(res, old, quiet=True, reported=None)
    assert not (old / "plots" / "x-metrics.png").exists() and (old / MARKER).exists()


def test_out_that_is_a_link_is_refused(tmp_path, own_checks):
    res = tmp_path / "results"
    _small(res)
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(BuildError, match="symbolic link"):
        build(res, tmp_path / "link", quiet=True)


def test_several_inputs_and_skipped_files(tmp_path, own_checks):
    a, b = tmp_path / "a", tmp_path / "b"
    _small(a, "m")
    make_result(b, "m.exact", method="N", splits=("0",), sweeps=False, benchmark_splits=("0",))
    (a / "submission.json").write_text('{"schema_version": 1, "method": {"name": "x"}}')
    (a / "notes.json").write_text("not json at all")
    single = _small(tmp_path / "c", "s")
    notes = []
    summary = build([a, b, single, a / "m.exact.json"], tmp_path / "out", quiet=True, reported=None,
                    note=notes.append)
    assert summary.n_results == 3  # a/m.exact.json given twice is read once
    assert sorted(notes) == [f"{a / 'notes.json'}: skipped, not an evaluator result (not JSON (line 1, column 1: "
                             f"Expecting value))",
                             f"{a / 'submission.json'}: skipped, not an evaluator result (no 'evaluator' key)"]
    page = (tmp_path / "out" / "index.html").read_text()
    for key in ("a/m.exact.json", "b/m.exact.json", "c/s.exact.json"):
        assert f'data-key="{key}"' in page


CRASHING_BUILD = r"""
import os, sys
from pathlib import Path
real = os.replace
def replace(src, dst):
    if Path(src).name.startswith(".board.build-"):  # between the two renames of the swap: die
        os._exit(9)
    real(src, dst)
os.replace = replace
from leaderboard.__main__ import main
main(["build", "--results", sys.argv[1], "--out", sys.argv[2], "--reported", "none", "--quiet"])
"""


def test_a_crash_while_publishing_never_loses_the_last_board(tmp_path):
    """Issue 11 #7: the board moved aside before a crash was deleted as a stale leftover by the next build."""
    import subprocess
    import sys

    from .conftest import CONTRACT

    res = tmp_path / "results"
    _small(res, "a", splits=("0",))
    board = tmp_path / "board"
    assert main_quiet(["--results", str(res), "--out", str(board)]) == 0
    before = {p.relative_to(board): p.read_bytes() for p in board.rglob("*") if p.is_file()}
    _small(res, "b", splits=("0",))
    # the child checks results as this process does (own checks where the schema predates CONTRACTS.md)
    code = CRASHING_BUILD if CONTRACT else CRASHING_BUILD.replace(
        "from leaderboard.__main__", "import leaderboard.results as r; r._result_schema_path = lambda: None\n"
        "from leaderboard.__main__")
    r = subprocess.run([sys.executable, "-c", code, str(res), str(board)], capture_output=True, text=True)
    assert r.returncode == 9, r.stderr
    assert not board.exists()
    # the next build fails (a broken result) and still puts the last complete board back
    (res / "broken.json").write_text('{"evaluator": {}}')
    assert main_quiet(["--results", str(res), "--out", str(board)]) == 1
    assert {p.relative_to(board): p.read_bytes() for p in board.rglob("*") if p.is_file()} == before


def main_quiet(argv) -> int:
    from leaderboard.__main__ import main

    with own_checks_if_needed():
        return main(["build", *argv, "--reported", "none", "--quiet"])


@pytest.mark.parametrize("failure", ["read-only", "full"])
def test_unwritable_output_is_one_line_and_keeps_the_board(failure, tmp_path, capsys, monkeypatch):
    """Issue 11 #9: a read-only or full output folder gave a traceback."""
    import errno
    import tempfile

    import leaderboard.build as build_mod

    res = tmp_path / "results"
    _small(res)
    board = tmp_path / "board"
    assert main_quiet(["--results", str(res), "--out", str(board)]) == 0
    before = {p.relative_to(board): p.read_bytes() for p in board.rglob("*") if p.is_file()}
    if failure == "read-only":  # the suite may run as root, for whom chmod does not make a folder read-only
        def mkdtemp(*a, **k):
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))
        monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    else:
        real = build_mod._write

        def write(stage, rel, data):
            if rel == "index.html":
                raise OSError(errno.ENOSPC, "No space left on device", str(stage / rel))
            real(stage, rel, data)
        monkeypatch.setattr(build_mod, "_write", write)
    capsys.readouterr()
    assert main_quiet(["--results", str(res), "--out", str(board)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"leaderboard: error: {board}: cannot write the leaderboard (")
    assert ("Permission denied" if failure == "read-only" else "No space left on device") in err
    assert {p.relative_to(board): p.read_bytes() for p in board.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board", "results"]  # no staging left behind
