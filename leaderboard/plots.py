"""Matplotlib plots of a leaderboard section, written reproducibly.

Reproducible means: rebuilding from the same results gives byte-identical
PNG and SVG files. Hence the Agg canvas (no GUI backend), figures built as
:class:`matplotlib.figure.Figure` objects (no pyplot global state), one fixed
font (DejaVu Sans, which matplotlib ships), text drawn as paths in SVG, a
fixed ``svg.hashsalt`` for the SVG element ids, and no date or software
metadata in the files.

Names from result files are plain text in every label (:func:`leaderboard.text.plot`
escapes ``$``): a method called ``$\\frac{1}{0}$`` must not be parsed as mathtext.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before any canvas is made; pages are built headless

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from leaderboard import text  # noqa: E402
from leaderboard.results import METRICS, SWEEP_CURVES  # noqa: E402
from leaderboard.table import COLUMNS, Section  # noqa: E402

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "svg.fonttype": "path",
    "svg.hashsalt": "coco-ad-leaderboard",
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.alpha": 0.3,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

#: savefig metadata per format: None drops the entry (no date, no software version).
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}

SCORED_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")
REPORTED_COLORS = ("#b3b3b3", "#a6cee3", "#b2df8a", "#fdbf6f", "#cab2d6", "#fb9a99", "#8dd3c7", "#80b1d3")
LINESTYLES = ("-", "--", "-.", ":")


def _color(i: int, palette=SCORED_COLORS) -> str:
    return palette[i % len(palette)]


def _pct(v):
    return math.nan if v is None else 100.0 * v


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg``; returns the two paths."""
    paths = []
    with matplotlib.rc_context(RC):
        FigureCanvasAgg(fig)
        # Lay out once, then freeze: the second format reuses the positions instead of re-solving them.
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
        for fmt in ("png", "svg"):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, metadata=METADATA[fmt])
            p = stem.with_suffix(f".{fmt}")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(buf.getvalue())
            paths.append(p)
    return paths


def _grouped_bars(ax, rows, columns, palette, hatch=None) -> None:
    n = max(len(rows), 1)
    width = 0.8 / n
    xs = range(len(columns))
    for i, row in enumerate(rows):
        offs = [x - 0.4 + width * (i + 0.5) for x in xs]
        ax.bar(offs, [_pct(row.values[c]) for c in columns], width=width, color=_color(i, palette),
               label=text.plot(row.label), hatch=hatch, edgecolor="white" if hatch is None else "#555555", linewidth=0.4)
    ax.set_xticks(list(xs), list(columns), rotation=35, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def metric_bars(sec: Section) -> Figure | None:
    """Grouped bars per column, one panel per group of the section (scored groups, then each reported source)."""
    panels = []
    for g in sec.groups:
        if g.kind == "scored":
            panels.append((g.rows, f"{sec.benchmark}: {g.heading} (mean over splits)",
                           SCORED_COLORS, None))
        else:
            panels.append((g.rows, f"{sec.benchmark}: {g.heading} (not scored here)", REPORTED_COLORS, "//"))
    if not panels:
        return None
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(11, 3.6 * len(panels)), layout="constrained")
        axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
        for ax, (rows, title, pal, hatch) in zip(axes, panels):
            _grouped_bars(ax, rows, COLUMNS, pal, hatch)
            ax.set_title(text.plot(title), loc="left", fontsize=10)
    return fig


def split_breakdown(sec: Section) -> Figure | None:
    """One small panel per metric; in each, bars per split grouped by scored row."""
    if not sec.scored or not sec.splits:
        return None
    split_ids = list(sec.splits)
    scored = sec.scored
    labels = [r.key for r in scored]
    with matplotlib.rc_context(RC):
        ncols = 4
        nrows = math.ceil(len(METRICS) / ncols)
        fig = Figure(figsize=(12, 2.8 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
        n = len(labels)
        width = 0.8 / n
        for ax, metric in zip(axes, METRICS):
            for i, key in enumerate(labels):
                ys, xs = [], []
                for j, sid in enumerate(split_ids):
                    row = next((r for r in sec.splits[sid] if r.key == f"{key}#{sid}"), None)
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(_pct(row.values[metric]) if row is not None else math.nan)
                ax.bar(xs, ys, width=width, color=_color(i), label=text.plot(scored[i].label))
            ax.set_title(metric, fontsize=9)
            ax.set_xticks(range(len(split_ids)), [text.plot(f"split {s}") for s in split_ids], fontsize=7)
            ax.set_ylim(0, 100)
            ax.grid(axis="x", visible=False)
        for ax in axes[len(METRICS):]:
            ax.axis("off")
        handles, names = axes[0].get_legend_handles_labels()
        axes[-1].legend(handles, names, loc="center", fontsize=8, frameon=False)
        fig.suptitle(text.plot(f"{sec.benchmark}: per-split breakdown (%)"), fontsize=10)
    return fig


def sweep_curves(sec: Section) -> Figure | None:
    """F1 / IoU / recall against the normalised threshold, per split (rows) for each scored result."""
    scored = sec.scored
    with_sweeps = [(row, sec.results[row.key]) for row in scored if sec.results[row.key].sweeps]
    if not with_sweeps:
        return None
    split_ids = [s for s in sec.splits if any(s in res.sweeps for _, res in with_sweeps)]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(max(6.0, 3.0 * len(split_ids)) + 2.0, 2.6 * len(SWEEP_CURVES)), layout="constrained")
        axes = fig.subplots(len(SWEEP_CURVES), len(split_ids), squeeze=False, sharex=True, sharey=True)
        for j, sid in enumerate(split_ids):
            for k, curve in enumerate(SWEEP_CURVES):
                ax = axes[k, j]
                for i, (row, res) in enumerate(with_sweeps):
                    sw = res.sweeps.get(sid)
                    if sw is None:
                        continue
                    ax.plot(sw["thresholds"], [_pct(v) for v in sw[curve]], color=_color(scored.index(row)),
                            linestyle=LINESTYLES[i // len(SCORED_COLORS) % len(LINESTYLES)], linewidth=1.2,
                            label=text.plot(row.label))
                for t in (0.2, 0.8):
                    ax.axvline(t, color="#999999", linewidth=0.6, linestyle=":")
                if k == 0:
                    ax.set_title(text.plot(f"split {sid}"), fontsize=9)
                if j == 0:
                    ax.set_ylabel(f"{curve} (%)")
                if k == len(SWEEP_CURVES) - 1:
                    ax.set_xlabel("normalised threshold")
                ax.set_xlim(0, 1)
                ax.set_ylim(0, 100)
        axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        fig.suptitle(text.plot(f"{sec.benchmark}: threshold sweeps (mean over classes; dotted lines: the .2–.8 "
                               f"range)"), fontsize=10)
    return fig
