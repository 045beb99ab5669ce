"""``leaderboard build`` end to end on hand-made results: what it writes, and that it is reproducible."""

from __future__ import annotations

import re

import pytest

from leaderboard.build import BuildError, build
from leaderboard.results import METRICS
from leaderboard.table import COLUMNS


def _md_section(md: str, name: str) -> str:
    m = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", md, re.S | re.M)
    assert m, name
    return m.group(1)


def _md_rows(block: str, first_cell: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in block.splitlines()
            if line.startswith(f"| {first_cell}")]


def test_writes_page_table_plots_and_panels(built_board):
    res, out, summary = built_board
    files = set(summary.files)
    assert {"index.html", "leaderboard.md"} <= files
    for bench in ("coco-ad-demo", "coco-ad"):
        for kind in ("metrics", "splits", "sweeps"):
            for ext in ("png", "svg"):
                assert f"plots/{bench}-{kind}.{ext}" in files
    for bench in ("mvtec-ad", "visa"):  # reported numbers only: their bars, nothing else
        assert f"plots/{bench}-metrics.png" in files and f"plots/{bench}-splits.png" not in files
    # panels are copied, byte for byte, so the folder is self-contained
    panels = sorted(f for f in files if f.startswith("panels/"))
    assert len(panels) == 12
    for f in panels:
        assert (out / f).read_bytes() == (res / f.removeprefix("panels/")).read_bytes()
    assert (out / "plots/coco-ad-demo-metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "plots/coco-ad-demo-metrics.svg").read_bytes()[:600]
    assert summary.benchmarks == ("coco-ad", "coco-ad-demo", "mvtec-ad", "visa")


def test_markdown_table_values_order_and_marks(built_board):
    _, out, _ = built_board
    md = (out / "leaderboard.md").read_text()
    demo = _md_section(md, "coco-ad-demo")
    header = next(line for line in demo.splitlines() if line.startswith("| Method | Profile"))
    assert [c.strip() for c in header.strip("|").split("|")][2:] == list(COLUMNS)
    rows = _md_rows(demo.split("### ")[0], "[") + _md_rows(demo.split("### ")[0], "Gamma")
    by = {(r[0], r[1]): dict(zip(COLUMNS, r[2:])) for r in rows}
    assert set(by) == {("[Alpha](https://example.org/paper-a)", "ader"), ("[Alpha](https://example.org/paper-a)", "exact"),
                       ("[Beta](https://example.org/beta)", "exact"), ("Gamma", "exact")}
    alpha_ader = by[("[Alpha](https://example.org/paper-a)", "ader")]
    alpha, beta, gamma = (by[(k, "exact")] for k in ("[Alpha](https://example.org/paper-a)",
                                                       "[Beta](https://example.org/beta)", "Gamma"))
    # closed form: metric k of split s is base + step*k + 0.02*s; mean over 4 splits adds 0.03
    assert alpha["I-AUROC"] == "<u>63.0</u>" or alpha["I-AUROC"] == "63.0"
    assert beta["I-AUROC"] == "**73.0**" and gamma["I-AUROC"] == "<u>68.0</u>" and alpha["I-AUROC"] == "63.0"
    assert gamma["mIoU-max"] == "**78.0**" and alpha["mIoU-max"] == "<u>73.0</u>" and beta["mIoU-max"] == "63.0"
    # I-avg of Alpha exact = mean(63, 64, 65) = 64.0
    assert alpha["I-avg"] == "64.0"
    # the only ader row is alone in its ranking group: no marks at all
    assert all("**" not in v and "<u>" not in v for v in alpha_ader.values())
    assert alpha_ader["I-AUROC"] == "64.0"
    # per-split tables follow the mean table
    assert demo.index("### coco-ad-demo: per split") > demo.index("| [Beta]")
    split0 = demo.split("Split 0:")[1].split("Split 1:")[0]
    row = next(r for r in _md_rows(split0, "[Beta]"))
    assert row[2] == "**70.0**"


def test_reported_rows_are_a_separate_block(built_board):
    _, out, _ = built_board
    md = (out / "leaderboard.md").read_text()
    coco = _md_section(md, "coco-ad")
    scored_at = coco.index("| [Delta]")
    reported_at = coco.index("Reported in the paper")
    assert scored_at < reported_at  # scored rows first
    reported = _md_rows(coco[reported_at:].split("### ")[0], "[")
    assert [r[0].split("]")[0][1:] for r in reported] == ["DRAEM", "RD", "UniAD", "DeSTSeg", "SimpleNet", "DiAD",
                                                          "InvAD-lite", "InvAD"]
    invad = dict(zip(COLUMNS, reported[-1][1:]))
    assert invad["I-AUROC"] == "**65.9**" and invad["P-AUROC"] == "**73.3**"
    # best among reported only; the scored Delta row (ader, pool 16) is alone and unmarked
    delta = _md_rows(coco[:reported_at], "[Delta]")[0]
    assert all("**" not in c for c in delta)
    assert "No scored results for this benchmark yet." in _md_section(md, "mvtec-ad")


def test_html_rows_links_and_safety(built_board):
    _, out, _ = built_board
    page = (out / "index.html").read_text()
    assert "<script src" not in page and "<link" not in page and "http://" not in page.replace(
        'href="http', "")  # nothing fetched from a network
    assert 'data-key="alpha.exact.json"' in page and 'data-key="coco/delta.ader.json"' in page
    assert 'href="https://example.org/paper-a"' in page and 'href="https://example.org/beta"' in page
    assert "javascript:" not in page
    delta_row = re.search(r'<tr class="scored" data-key="coco/delta.ader.json".*?</tr>', page, re.S).group(0)
    assert "ader, pool 16" in delta_row and ">0.1.0<" in delta_row
    import hashlib
    assert hashlib.sha256(b"coco-ad").hexdigest()[:12] in delta_row
    assert page.index('id="t-coco-ad-scored"') < page.index('id="t-coco-ad-reported"')
    assert page.count('<span class="badge">reported</span>') == 24
    for m in METRICS:
        assert f'data-col="{m}"' in page


def test_rebuild_is_byte_identical_and_drops_stale_files(built_board, tmp_path):
    res, out, summary = built_board
    first = {f: (out / f).read_bytes() for f in summary.files}
    other = tmp_path / "again"
    other.mkdir()
    (other / "index.html").write_text("old page")
    (other / "stale.png").write_bytes(b"x")
    again = build(res, other, quiet=True)
    assert again.files == summary.files
    assert not (other / "stale.png").exists()
    for f in summary.files:
        assert (other / f).read_bytes() == first[f], f
    assert not list(tmp_path.glob(".again.*"))  # no temporary folder left behind


def test_refuses_to_replace_a_folder_that_is_not_a_leaderboard(tmp_path, results_dir):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    with pytest.raises(BuildError, match="not a leaderboard"):
        build(results_dir, out, quiet=True)
    assert (out / "precious.txt").read_text() == "keep"
    with pytest.raises(BuildError, match="inside the results folder"):
        build(results_dir, results_dir / "board", quiet=True)
