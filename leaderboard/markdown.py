"""README-ready Markdown tables of the leaderboard (GitHub-flavoured Markdown).

Every free-text field goes through :func:`leaderboard.text.md`, every link
through :func:`leaderboard.text.safe_url`, so the file is safe to render with
HTML allowed. Best is bold, second best italic (``*…*``).
"""

from __future__ import annotations

from leaderboard import __version__
from leaderboard import text as t
from leaderboard.table import COLUMNS, DESCRIPTIONS, GROUPING_RULE, RANKING_RULE, SPREAD_RULE, Group, Row, Section, \
    marks, percent, splits_text


def _link(label: str, url: str | None) -> str:
    url = t.safe_url(url)
    return f"[{t.md(label)}]({t.md_url(url)})" if url else t.md(label)


def _cell(v, mark: str | None) -> str:
    s = percent(v)
    if mark == "best":
        return f"**{s}**"
    if mark == "second":
        return f"*{s}*"
    return s


def _spread_cell(v, sd) -> str:
    return percent(v) if sd is None else f"{percent(v)} ± {percent(sd)}"


def _rank(row: Row) -> str:
    return "–" if row.rank is None else str(row.rank)


def method_cell(row: Row) -> str:
    """The method's name, linked to its paper (or code) unless it is an unpublished preset."""
    if row.unpublished:
        what = ["unpublished preset"]
        if row.preset:
            what[0] += f" {t.md(row.preset)}"
        if row.code_folder:
            what.append(f"code {t.md(row.code_folder)}")
        elif t.safe_url(row.code):
            what.append(_link("code", row.code))
        return f"{t.md(row.method)} ({', '.join(what)})"
    return _link(row.method, row.paper or row.code)


def _table(rows: list[Row], lead_headers: list[str], lead_cells, extra_headers=(), extra_cells=None) -> list[str]:
    m = marks(rows)
    headers = [*lead_headers, *COLUMNS, *extra_headers]
    align = ["---:" if h == "Rank" else "---" for h in lead_headers] + ["---:"] * len(COLUMNS) \
        + ["---"] * len(extra_headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    for i, row in enumerate(rows):
        cells = [*lead_cells(row), *(_cell(row.values[c], m.get((i, c))) for c in COLUMNS)]
        if extra_cells is not None:
            cells += extra_cells(row)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _build(group: Group) -> str:
    return f"version {t.md(group.benchmark_version)} (sha256 `{group.benchmark_sha256[:12]}`)"


def _group(sec: Section, g: Group, h: str) -> list[str]:
    out = [f"{h} {t.md(g.heading)}", ""]
    if g.kind == "scored":
        if g.partial:
            out += [f"These results cover {splits_text(g.split_ids)} of the benchmark only, so they are ranked "
                    f"among themselves and never against complete results.", ""]
        out += [f"Benchmark {t.md(sec.benchmark)} {_build(g)}, setting {t.md(g.setting)}; "
                f"mean over {splits_text(g.split_ids)}, in percent"
                f"{' (spread over splits below)' if len(g.split_ids) > 1 else ''}.", ""]
        out += _table(g.rows, ["Rank", "Method"], lambda r: [_rank(r), method_cell(r)])
    else:
        src = g.source
        cite = _link(src.citation, src.url)
        comparable = (f" Comparable with scored rows of the {t.md(src.comparable_profile)} profile."
                      if src.comparable_profile else "")
        out += [f"Published numbers, not scored here: {cite}; {t.md(src.metric_code)}.{comparable} "
                f"Ranked only among themselves.", ""]
        out += _table(g.rows, ["Rank", "Method (reported)"], lambda r: [_rank(r), _link(r.method, r.paper)],
                      ["Note"], lambda r: [t.md(r.note)])
    return out + [""]


def render_section(sec: Section, level: int = 2) -> list[str]:
    h = "#" * level
    out = [f"{h} {t.md(sec.benchmark)}", ""]
    if not sec.scored_groups:
        out += ["No scored results for this benchmark yet.", ""]
    if len(sec.builds) > 1:
        out += ["**Warning:** scored rows of this benchmark come from different builds of it (different sha256); "
                "each build is ranked apart.", ""]
    for g in sec.groups:
        out += _group(sec, g, h + "#")
    multi = [r for r in sec.scored if len(sec.results[r.key].split_ids) > 1]
    if multi:
        out += [f"{h}# {t.md(sec.benchmark)}: spread over splits", "",
                "Mean ± standard deviation over the splits each result scored (population, ddof = 0), in percent.",
                ""]
        headers = ["Method", "Setting", "Splits", *COLUMNS]
        out += ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * len(COLUMNS)) + "|"]
        for r in multi:
            ids = sec.results[r.key].split_ids
            cells = [method_cell(r), t.md(r.setting), t.md(" ".join(ids)),
                     *(_spread_cell(r.values[c], r.spread[c]) for c in COLUMNS)]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if sec.scored and len(sec.splits) > 1:
        out += [f"{h}# {t.md(sec.benchmark)}: per split", "",
                "Every result that scored the split; ranked among rows of the same setting.", ""]
        for sid, rows in sec.splits.items():
            out += [f"Split {t.md(sid)}:", ""]
            out += _table(rows, ["Rank", "Method", "Setting"], lambda r: [_rank(r), method_cell(r), t.md(r.setting)])
            out.append("")
    return out


def render(sections: list[Section]) -> str:
    """The whole Markdown document (sections, grouping and ranking rules, column legend)."""
    out = ["# Leaderboard", "",
           f"Generated by `python -m leaderboard build` (leaderboard {__version__}) from evaluator result files. "
           f"Values in percent with one decimal; – marks an undefined metric. {GROUPING_RULE} {RANKING_RULE} "
           f"{SPREAD_RULE}", ""]
    for sec in sections:
        out += render_section(sec)
    out += ["## Columns", ""]
    out += [f"- `{c}`: {DESCRIPTIONS[c]}." for c in COLUMNS]
    return "\n".join(out).rstrip("\n") + "\n"
