"""The leaderboard's table model: rows, the paper's averages, best/second marks.

Pure functions over checked results and published rows; the Markdown, HTML
and plot writers all render the same :class:`Section` objects, so the three
outputs cannot disagree.

Ranking rule (stated on every output): best (bold) and second (underlined)
are computed per column over the displayed, one-decimal percentages, within a
*ranking group*: scored rows of one evaluator profile form a group, and the
reported rows form a group of their own. Scored and reported numbers are
never compared with each other, and numbers from different profiles are not
either (their definitions differ, SPEC §5). A group of one row gets no marks;
ties share a mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leaderboard.reported import SOURCE, ReportedRow
from leaderboard.results import METRICS, Result, sort_split_ids

#: The paper's averages: (column name, the metrics it averages).
AVERAGES = (
    ("I-avg", ("I-AUROC", "I-AP", "I-F1max")),
    ("P-avg", ("AUPRO", "P-AUROC", "P-AP", "P-F1max")),
    ("avg_.2_.8", ("mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8")),
)

#: Every numeric column of the tables, in order.
COLUMNS = METRICS + tuple(name for name, _ in AVERAGES)

#: One-line meaning of each column (README, page legend).
DESCRIPTIONS = {
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
    "I-avg": "mean of I-AUROC, I-AP and I-F1max",
    "P-avg": "mean of AUPRO, P-AUROC, P-AP and P-F1max",
    "avg_.2_.8": "mean of mF1_.2_.8, mAcc_.2_.8 and mIoU_.2_.8",
}

RANKING_RULE = ("Bold: best, underlined: second best per column, compared on the displayed values "
                "among scored rows of the same evaluator profile; rows reported in the paper are ranked "
                "only among themselves.")


@dataclass(frozen=True)
class Row:
    """One table row. ``values`` maps every column of :data:`COLUMNS` to a fraction or None."""

    kind: str  # "scored" or "reported"
    key: str  # unique and stable: the result's relative path, or reported/<benchmark>/<method>
    benchmark: str
    method: str
    values: dict
    group: str  # ranking group, see the module docstring
    profile: str | None = None
    submission: str | None = None
    submission_sha256: str | None = None
    evaluator_version: str | None = None
    benchmark_version: str | None = None
    benchmark_sha256: str | None = None
    paper: str | None = None
    code: str | None = None
    backbone: str | None = None
    params_m: float | None = None
    note: str = ""
    seconds: float | None = None
    warnings: tuple = ()
    n_images: int | None = None
    n_anomalous: int | None = None

    @property
    def label(self) -> str:
        """Name used in plot legends: the method, and the profile for scored rows."""
        return self.method if self.profile is None else f"{self.method} ({self.profile})"


@dataclass
class Section:
    """Everything shown for one benchmark."""

    benchmark: str
    scored: list = field(default_factory=list)  # Rows of the results' mean blocks
    reported: list = field(default_factory=list)  # Rows from the paper
    splits: dict = field(default_factory=dict)  # split id -> Rows of that split
    results: list = field(default_factory=list)  # the Results behind ``scored``, same order


def with_averages(metrics: dict) -> dict:
    """The 11 metrics plus the paper's averages.

    An average is None when any metric it averages is None: an average over
    fewer metrics would not be comparable with the other rows.
    """
    out = {m: metrics.get(m) for m in METRICS}
    for name, parts in AVERAGES:
        vals = [out[p] for p in parts]
        out[name] = None if any(v is None for v in vals) else sum(vals) / len(vals)
    return out


def percent(v: float | None) -> str:
    """A fraction as a percentage with one decimal; an en dash for undefined."""
    return "–" if v is None else f"{100.0 * v:.1f}"


def profile_label(profile: str, pool: int | None) -> str:
    return profile if pool is None else f"{profile}, pool {pool}"


def _scored_row(res: Result, metrics: dict, key: str, split: str | None = None) -> Row:
    d = res.data
    method = res.method
    block = d["splits"][split] if split is not None else None
    prof = profile_label(res.profile, res.pool)
    return Row(
        kind="scored",
        key=key,
        benchmark=res.benchmark,
        method=method["name"],
        values=with_averages(metrics),
        group=f"scored:{prof}",
        profile=prof,
        submission=d["submission"]["name"],
        submission_sha256=d["submission"]["sha256"],
        evaluator_version=d["evaluator"]["version"],
        benchmark_version=d["benchmark"]["version"],
        benchmark_sha256=d["benchmark"]["sha256"],
        paper=method.get("paper") or None,
        code=method.get("code") or None,
        backbone=method.get("backbone"),
        params_m=method.get("params_m"),
        seconds=float(d["seconds"]),
        warnings=tuple(d.get("warnings") or ()),
        n_images=block["n_images"] if block else sum(b["n_images"] for b in d["splits"].values()),
        n_anomalous=block["n_anomalous"] if block else sum(b["n_anomalous"] for b in d["splits"].values()),
    )


def _reported_row(r: ReportedRow) -> Row:
    return Row(kind="reported", key=f"reported/{r.benchmark}/{r.method}", benchmark=r.benchmark, method=r.method,
               values=with_averages(r.values), group="reported", paper=r.paper, code=r.code, note=r.note)


def _scored_order(res: Result):
    return (res.method["name"].casefold(), res.method["name"], res.data["submission"]["name"], res.profile,
            res.pool or 0, res.rel)


def build_sections(results: list[Result], reported: list[ReportedRow]) -> list[Section]:
    """Sections for every benchmark with scored results (by name), then reported-only benchmarks (by name)."""
    sections: dict[str, Section] = {}
    for res in sorted(results, key=_scored_order):
        sec = sections.setdefault(res.benchmark, Section(res.benchmark))
        sec.results.append(res)
        sec.scored.append(_scored_row(res, res.data["mean"], res.rel))
        for sid in res.split_ids:
            sec.splits.setdefault(sid, []).append(_scored_row(res, res.data["splits"][sid], f"{res.rel}#{sid}", sid))
    scored_names = sorted(sections)
    for r in reported:
        sections.setdefault(r.benchmark, Section(r.benchmark)).reported.append(_reported_row(r))
    for sec in sections.values():
        sec.splits = {sid: sec.splits[sid] for sid in sort_split_ids(sec.splits)}
    reported_only = sorted(n for n in sections if n not in scored_names)
    return [sections[n] for n in scored_names + reported_only]


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
            shown = {i: float(percent(rows[i].values[col])) for i in idx if rows[i].values[col] is not None}
            distinct = sorted(set(shown.values()), reverse=True)
            for rank, name in ((0, "best"), (1, "second")):
                if len(distinct) > rank:
                    for i, v in shown.items():
                        if v == distinct[rank]:
                            out[(i, col)] = name
    return out


def benchmark_checksums(rows: list[Row]) -> list[tuple[str, str]]:
    """Distinct (benchmark version, sha256) pairs of scored rows, sorted."""
    return sorted({(r.benchmark_version, r.benchmark_sha256) for r in rows if r.kind == "scored"})


def reported_source() -> dict:
    return dict(SOURCE)
