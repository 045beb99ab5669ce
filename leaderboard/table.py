"""The leaderboard's table model: groups of comparable rows, averages, spread, ranks, best/second marks.

Pure functions over checked results and published rows; the Markdown, HTML,
CSV and plot writers all render the same :class:`Section` objects, so the
outputs cannot disagree.

Grouping (stated on every output): rows are ranked against each other only
inside a *group*. Scored rows share a group when they share the benchmark
build (sha256 of ``benchmark.json``), the set of splits scored, the
evaluator profile, the image-score pool and the AUPRO steps: any of these
changes the numbers. A partial result (a subset of the benchmark's splits)
therefore never shares a group with complete ones; it is shown apart and
marked. Each reported source (the paper, ADer's benchmark) is a group of its
own. Scored and reported numbers are never ranked together.

Within a group: the rank orders rows by ``mAD`` as displayed (one decimal;
ties share a rank; a row without ``mAD`` is unranked); best (bold) and second
(italic) are marked per column over the displayed values; a group of one row
gets no marks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from leaderboard.reported import ReportedRow, Source
from leaderboard.text import unique_slugs
from leaderboard.results import METRICS, Result, sort_split_ids

#: Averages: (column name, the metrics it averages). ``mAD`` is ADer's (and the ranking key).
AVERAGES = (
    ("mAD", ("I-AUROC", "I-AP", "I-F1max", "P-AUROC", "P-AP", "P-F1max", "AUPRO")),
    ("I-avg", ("I-AUROC", "I-AP", "I-F1max")),
    ("P-avg", ("AUPRO", "P-AUROC", "P-AP", "P-F1max")),
    ("avg_.2_.8", ("mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8")),
)
RANK_BY = "mAD"

#: Every numeric column of the tables, in order: the ranking key, the paper's eleven, its three averages.
COLUMNS = (RANK_BY,) + METRICS + tuple(name for name, _ in AVERAGES if name != RANK_BY)

#: One-line meaning of each column (README, page legend).
DESCRIPTIONS = {
    "mAD": "mean of I-AUROC, I-AP, I-F1max, P-AUROC, P-AP, P-F1max and AUPRO (ADer's mAD; the rank orders by it)",
    "I-AUROC": "area under the ROC curve of the image scores (ties count one half)",
    "I-AP": "average precision of the image scores",
    "I-F1max": "best F1 of the image scores over every threshold",
    "AUPRO": "area under the per-region-overlap curve up to 30% false-positive rate, divided by 0.3 (MVTec AD)",
    "P-AUROC": "area under the ROC curve over all pixels",
    "P-AP": "average precision over all pixels",
    "P-F1max": "best pixel F1 over every threshold",
    "mF1_.2_.8": "mean pixel F1 at the thresholds 0.2, 0.3 … 0.8 of the min-max normalised maps",
    "mAcc_.2_.8": "mean recall of anomalous pixels at the thresholds 0.2 … 0.8 of the normalised maps",
    "mIoU_.2_.8": "mean IoU of the anomalous pixels at the thresholds 0.2 … 0.8 of the normalised maps",
    "mIoU-max": "best IoU of the anomalous pixels over every threshold of the normalised maps",
    "I-avg": "mean of I-AUROC, I-AP and I-F1max (the InvAD paper's image average)",
    "P-avg": "mean of AUPRO, P-AUROC, P-AP and P-F1max (the InvAD paper's pixel average)",
    "avg_.2_.8": "mean of mF1_.2_.8, mAcc_.2_.8 and mIoU_.2_.8",
}

GROUPING_RULE = ("Rows are ranked only within their group: scored rows share a group when they share the "
                 "benchmark build (sha256), the set of splits scored, the evaluator profile, the pool and the "
                 "AUPRO steps; a partial result (a subset of the splits) is shown apart; each reported source is "
                 "a group of its own, never mixed with scored rows or with the other source.")
RANKING_RULE = ("Rank: by mAD as displayed, within the group (ties share a rank). Bold: best, italic: second best "
                "per column, compared on the displayed values within the group.")
SPREAD_RULE = ("Values are the mean over the splits scored; ± is the standard deviation of the per-split values "
               "over those splits (population, ddof = 0), shown when at least two splits have the value. "
               "An average is undefined (–) when any metric it averages is.")

#: Profiles in display order; others follow, sorted by name.
PROFILE_ORDER = ("exact", "ader", "ader-bench")

_PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Row:
    """One table row. ``values`` maps every column of :data:`COLUMNS` to a fraction or None.

    ``spread``: the standard deviation over splits of each column (fractions,
    None where fewer than two splits have the value; None for reported and
    per-split rows). ``group``: the key of the group it is ranked in.
    """

    kind: str  # "scored" or "reported"
    key: str  # unique and stable: the result's key (#split), or reported/<source>/<benchmark>/<method>
    benchmark: str
    method: str
    values: dict
    group: str
    rank: int | None = None
    spread: dict | None = None
    setting: str | None = None  # scored: profile, pool and AUPRO steps as one label
    profile: str | None = None
    partial: bool = False
    split: str | None = None
    submission: str | None = None
    submission_sha256: str | None = None
    evaluator_version: str | None = None
    benchmark_version: str | None = None
    benchmark_sha256: str | None = None
    paper: str | None = None
    code: str | None = None
    backbone: str | None = None
    params_m: float | None = None
    preset: str | None = None
    published: bool | None = None
    code_folder: str | None = None  # baselines/<method>/ of an unpublished preset of this suite
    note: str = ""
    seconds: float | None = None
    warnings: tuple = ()
    n_images: int | None = None
    n_anomalous: int | None = None

    @property
    def unpublished(self) -> bool:
        return self.published is False

    @property
    def label(self) -> str:
        """Name used in plot legends: the method, and the setting (and "partial") for scored rows."""
        if self.kind != "scored":
            return self.method
        return f"{self.method} ({self.setting}{', partial' if self.partial else ''})"


@dataclass
class Group:
    """Rows ranked together; see the module docstring."""

    key: str
    kind: str  # "scored" or "reported"
    rows: list = field(default_factory=list)
    setting: str | None = None
    profile: str | None = None
    split_ids: tuple = ()
    partial: bool = False
    benchmark_version: str | None = None
    benchmark_sha256: str | None = None
    source: Source | None = None

    @property
    def heading(self) -> str:
        """Plain-text heading of the group (renderers escape it)."""
        if self.kind == "reported":
            return self.source.title
        splits = splits_text(self.split_ids)
        if self.partial:
            return f"Partial results: {self.setting}, {splits} only"
        return f"Scored: {self.setting}, {splits}"


@dataclass
class Section:
    """Everything shown for one benchmark."""

    benchmark: str
    slug: str = ""  # unique among the sections of a build: page ids and plot file names
    groups: list = field(default_factory=list)  # scored groups first, then one per reported source
    splits: dict = field(default_factory=dict)  # split id -> per-split Rows (every scored result with that split)
    results: dict = field(default_factory=dict)  # scored row key -> its Result
    panels: list = field(default_factory=list)  # (Row, Result): the panels shown, one result per submission
    builds: list = field(default_factory=list)  # distinct (benchmark version, sha256) of the scored rows

    @property
    def scored_groups(self) -> list:
        return [g for g in self.groups if g.kind == "scored"]

    @property
    def reported_groups(self) -> list:
        return [g for g in self.groups if g.kind == "reported"]

    @property
    def scored(self) -> list:
        """Every scored (mean) row, group after group."""
        return [r for g in self.scored_groups for r in g.rows]

    @property
    def reported(self) -> list:
        return [r for g in self.reported_groups for r in g.rows]


def splits_text(ids) -> str:
    ids = list(ids)
    return f"split {ids[0]}" if len(ids) == 1 else "splits " + ", ".join(ids)


def with_averages(metrics: dict) -> dict:
    """The 11 metrics plus the averages of :data:`AVERAGES`.

    An average is None when any metric it averages is None: an average over
    fewer metrics would not be comparable with the other rows.
    """
    out = {m: metrics.get(m) for m in METRICS}
    for name, parts in AVERAGES:
        vals = [out[p] for p in parts]
        out[name] = None if any(v is None for v in vals) else math.fsum(vals) / len(vals)
    return out


def spread(per_split: list[dict]) -> dict:
    """Population standard deviation (ddof = 0) of each column over the splits that define it; None below two."""
    out = {}
    for c in COLUMNS:
        vals = [v[c] for v in per_split if v[c] is not None]
        if len(vals) < 2:
            out[c] = None
            continue
        mu = math.fsum(vals) / len(vals)
        out[c] = math.sqrt(math.fsum((x - mu) ** 2 for x in vals) / len(vals))
    return out


def percent(v: float | None) -> str:
    """A fraction as a percentage with one decimal; an en dash for undefined."""
    return "–" if v is None else f"{100.0 * v:.1f}"


def setting_label(res: Result, with_build: bool = False) -> str:
    """Profile, pool and AUPRO steps of a result as one label (``ader, pool 16, AUPRO 100 steps``)."""
    parts = [res.profile]
    if res.pool is not None:
        parts.append(f"pool {res.pool}")
    if res.aupro_steps is not None:
        parts.append(f"AUPRO {res.aupro_steps} steps")
    if with_build:
        parts.append(f"build {res.benchmark_sha256[:12]}")
    return ", ".join(parts)


def _setting_key(res: Result) -> tuple:
    return (res.benchmark_sha256, res.profile, res.pool, res.aupro_steps)


def _profile_order(profile: str) -> tuple:
    return (PROFILE_ORDER.index(profile), "") if profile in PROFILE_ORDER else (len(PROFILE_ORDER), profile)


def _code_folder(method: dict) -> str | None:
    """``baselines/<method>/`` for a preset of this suite's baselines (``invad-tiny`` → ``baselines/invad/``)."""
    preset = method.get("preset")
    if not isinstance(preset, str):
        return None
    pkg = preset.split("-")[0].lower()
    return f"baselines/{pkg}/" if _PACKAGE.match(pkg) else None


def _scored_row(res: Result, key: str, group: str, setting: str, partial: bool, split: str | None = None) -> Row:
    d = res.data
    method = res.method
    if split is None:
        values = with_averages(d["mean"])
        sd = spread([with_averages(d["splits"][s]) for s in res.split_ids])
        blocks = list(d["splits"].values())
    else:
        values, sd, blocks = with_averages(d["splits"][split]), None, [d["splits"][split]]
    published = method.get("published")
    return Row(
        kind="scored",
        key=key,
        benchmark=res.benchmark,
        method=method["name"],
        values=values,
        group=group,
        spread=sd,
        setting=setting,
        profile=res.profile,
        partial=partial,
        split=split,
        submission=d["submission"]["name"],
        submission_sha256=d["submission"]["sha256"],
        evaluator_version=res.evaluator_version,
        benchmark_version=res.benchmark_version,
        benchmark_sha256=res.benchmark_sha256,
        paper=method.get("paper") or None,
        code=method.get("code") or None,
        backbone=method.get("backbone"),
        params_m=method.get("params_m"),
        preset=method.get("preset"),
        published=published,
        code_folder=_code_folder(method) if published is False else None,
        seconds=float(d["seconds"]),
        warnings=tuple(d.get("warnings") or ()),
        n_images=sum(b["n_images"] for b in blocks),
        n_anomalous=sum(b["n_anomalous"] for b in blocks),
    )


def _reported_row(r: ReportedRow) -> Row:
    return Row(kind="reported", key=f"reported/{r.source.key}/{r.benchmark}/{r.method}", benchmark=r.benchmark,
               method=r.method, values=with_averages(r.values), group=f"reported:{r.source.key}", paper=r.paper,
               code=r.code, note=r.note)


def _shown(v: float | None) -> float | None:
    return None if v is None else float(percent(v))


def ranked(rows: list[Row]) -> list[Row]:
    """``rows`` (one group) with their rank by displayed mAD, best first; unranked rows last, by name."""
    shown = [_shown(r.values[RANK_BY]) for r in rows]
    out = []
    for r, v in zip(rows, shown):
        rank = None if v is None else 1 + sum(1 for w in shown if w is not None and w > v)
        out.append(replace(r, rank=rank))
    return sorted(out, key=lambda r: (r.rank is None, r.rank or 0, r.method.casefold(), r.method,
                                      r.submission or "", r.setting or "", r.key))


def _result_order(res: Result):
    return (res.method["name"].casefold(), res.method["name"], res.data["submission"]["name"], res.key)


def _partial(res: Result, known: dict) -> bool:
    """Known partial, or (for older results that do not say) fewer splits than the benchmark build is known to have."""
    c = res.complete
    if c is not None:
        return not c
    return set(res.split_ids) < known[res.benchmark_sha256]


def build_sections(results: list[Result], reported: list[ReportedRow]) -> list[Section]:
    """Sections for every benchmark with scored results (by name), then reported-only benchmarks (by name)."""
    results = sorted(results, key=_result_order)
    known: dict[str, set] = {}  # benchmark sha256 -> every split id known to exist in it
    for res in results:
        s = known.setdefault(res.benchmark_sha256, set())
        s.update(res.split_ids)
        s.update(res.benchmark_split_ids or ())

    sections: dict[str, Section] = {}
    for res in results:
        sections.setdefault(res.benchmark, Section(res.benchmark))
    for name, sec in sections.items():
        mine = [r for r in results if r.benchmark == name]
        sec.builds = sorted({(r.benchmark_version, r.benchmark_sha256) for r in mine})
        several = len(sec.builds) > 1
        groups: dict[tuple, Group] = {}
        for res in mine:
            partial = _partial(res, known)
            setting = setting_label(res, with_build=several)
            gkey = (_setting_key(res), tuple(res.split_ids), partial)
            gid = "scored:" + "|".join(str(x) for x in (*_setting_key(res), " ".join(res.split_ids)))
            g = groups.get(gkey)
            if g is None:
                g = groups[gkey] = Group(key=gid, kind="scored", setting=setting, profile=res.profile,
                                         split_ids=tuple(res.split_ids), partial=partial,
                                         benchmark_version=res.benchmark_version,
                                         benchmark_sha256=res.benchmark_sha256)
            g.rows.append(_scored_row(res, res.key, gid, setting, partial))
            sec.results[res.key] = res
            for sid in res.split_ids:
                sgid = "split:" + "|".join(str(x) for x in _setting_key(res))
                sec.splits.setdefault(sid, []).append(
                    _scored_row(res, f"{res.key}#{sid}", sgid, setting, partial, split=sid))

        def group_order(item):
            (sha, profile, pool, steps), split_ids, partial = item[0]
            g = item[1]
            return (partial, _profile_order(profile), pool or 0, steps or 0, -len(split_ids),
                    [(0, int(s)) if s.isdigit() else (1, s) for s in split_ids], g.benchmark_version, sha)

        sec.groups = [g for _, g in sorted(groups.items(), key=group_order)]
        for g in sec.groups:
            g.rows = ranked(g.rows)
        sec.splits = {sid: _split_rows(sec.splits[sid]) for sid in sort_split_ids(sec.splits)}
        seen_subs = set()
        for row in sec.scored:
            res = sec.results[row.key]
            if res.panels and row.submission_sha256 not in seen_subs:
                seen_subs.add(row.submission_sha256)
                sec.panels.append((row, res))

    scored_names = sorted(sections)
    by_source: dict[tuple, Group] = {}
    for r in reported:
        sec = sections.setdefault(r.benchmark, Section(r.benchmark))
        g = by_source.get((r.benchmark, r.source.key))
        if g is None:
            g = by_source[(r.benchmark, r.source.key)] = Group(key=f"reported:{r.source.key}", kind="reported",
                                                                source=r.source)
            sec.groups.append(g)
        g.rows.append(_reported_row(r))
    for g in by_source.values():
        g.rows = ranked(g.rows)
    reported_only = sorted(n for n in sections if n not in scored_names)
    out = [sections[n] for n in scored_names + reported_only]
    for sec, s in zip(out, unique_slugs(sec.benchmark for sec in out)):
        sec.slug = s
    return out


def _split_rows(rows: list[Row]) -> list[Row]:
    """Per-split rows: ranked within their setting (same split, so partial and complete results compare)."""
    by: dict[str, list[Row]] = {}
    for r in rows:
        by.setdefault(r.group, []).append(r)
    first = {}
    for r in rows:
        first.setdefault(r.group, r)

    def order(gid):
        r = first[gid]
        return (_profile_order(r.profile), r.setting, gid)

    return [r for gid in sorted(by, key=order) for r in ranked(by[gid])]


def marks(rows: list[Row], columns=COLUMNS) -> dict:
    """``{(row index, column): "best" | "second"}`` per the ranking rule of this module."""
    out = {}
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.group, []).append(i)
    for idx in groups.values():
        if len(idx) < 2:
            continue
        for col in columns:
            shown = {i: _shown(rows[i].values[col]) for i in idx if rows[i].values[col] is not None}
            distinct = sorted(set(shown.values()), reverse=True)
            for rank, name in ((0, "best"), (1, "second")):
                if len(distinct) > rank:
                    for i, v in shown.items():
                        if v == distinct[rank]:
                            out[(i, col)] = name
    return out
