"""``leaderboard build``: result files in, a self-contained leaderboard folder out.

Output folder layout::

    <out>/index.html            static page (works from file://, no network)
    <out>/leaderboard.md        README-ready Markdown tables
    <out>/plots/<benchmark>-{metrics,splits,sweeps}.{png,svg}
    <out>/panels/<result folder>/<result stem>_panels/<split>/<image>.png   (copied from the results)

Phases, as in pycocotools: read and check every input first (a bad file stops
the build before anything is written), build the table model, render, then
publish. Everything is rendered into a temporary sibling folder that replaces
``<out>`` with a rename at the end, so an interrupted build leaves the old
leaderboard intact and no file of a previous build survives into the new one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from contract.files import replace_folder
from leaderboard import html as html_out
from leaderboard import markdown as md_out
from leaderboard.reported import PAPER_CSV, load_reported
from leaderboard.results import Result, load_results
from leaderboard.table import Section, build_sections

#: Files whose presence says a folder is a leaderboard we may replace.
OWN_FILES = ("index.html", "leaderboard.md")


class BuildError(Exception):
    """A problem with the output folder; the message is one line for the user."""


@dataclass(frozen=True)
class BuildSummary:
    out: Path
    n_results: int
    benchmarks: tuple
    files: tuple  # relative POSIX paths of every file written, sorted

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a folder; pass another --out DIR")
    if out.is_dir() and any(out.iterdir()) and not any((out / f).is_file() for f in OWN_FILES):
        raise BuildError(f"{out}: is a non-empty folder that is not a leaderboard (no index.html); "
                         f"pass an empty or new --out DIR")


def _panel_target(res: Result, file: str) -> str:
    parent = PurePosixPath(res.rel).parent
    return (PurePosixPath("panels") / parent / file).as_posix()


def _copy_panels(results: list[Result], stage: Path) -> dict:
    """Copy each result's panel PNGs into ``stage/panels``; ``{result rel: [(caption, relative file)]}``."""
    out: dict = {}
    for res in results:
        items = []
        for p in res.panels:
            rel = _panel_target(res, p["file"])
            dst = stage / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes((res.path.parent / p["file"]).read_bytes())
            items.append((f"split {p['split']} · {p['img_path']}", rel))
        if items:
            out[res.rel] = items
    return out


def _write_plots(sections: list[Section], stage: Path) -> dict:
    from leaderboard import plots  # matplotlib only when plotting

    out: dict = {}
    for sec in sections:
        stems = {}
        for kind, make in (("metrics", plots.metric_bars), ("splits", plots.split_breakdown),
                           ("sweeps", plots.sweep_curves)):
            if kind == "splits" and len(sec.splits) < 2:
                continue  # one split: the breakdown would repeat the bars
            fig = make(sec)
            if fig is None:
                continue
            rel = f"plots/{html_out.slug(sec.benchmark)}-{kind}"
            plots.save_figure(fig, stage / rel)
            stems[kind] = rel
        if stems:
            out[sec.benchmark] = stems
    return out


def build(results_dir: Path, out: Path, reported_csv: Path | None = PAPER_CSV, quiet: bool = False) -> BuildSummary:
    """Build the leaderboard of every result file below ``results_dir`` into ``out``.

    ``reported_csv``: published numbers to show beside the scored rows (the
    paper's, by default); None leaves them out.
    """
    results_dir, out = Path(results_dir), Path(out)
    results = load_results(results_dir)
    reported = load_reported(Path(reported_csv)) if reported_csv is not None else []
    _check_out(out)
    if out.resolve() == results_dir.resolve() or results_dir.resolve() in out.resolve().parents:
        raise BuildError(f"{out}: must not be inside the results folder {results_dir}; pass another --out DIR")
    sections = build_sections(results, reported)

    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.*.tmp"):  # leftovers of an interrupted build
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", suffix=".tmp", dir=out.parent))
    try:
        panels = _copy_panels(results, stage)
        plots = _write_plots(sections, stage)
        (stage / "leaderboard.md").write_bytes(md_out.render(sections).encode("utf-8"))
        page = html_out.render(sections, plots, panels, len(results))
        (stage / "index.html").write_bytes(page.encode("utf-8"))
        os.chmod(stage, 0o755)
        files = tuple(sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()))
        replace_folder(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    summary = BuildSummary(out=out, n_results=len(results), benchmarks=tuple(s.benchmark for s in sections),
                           files=files)
    if not quiet:
        scored = sum(1 for s in sections if s.scored)
        print(f"leaderboard: {len(results)} result file{'s' if len(results) != 1 else ''} on {scored} "
              f"benchmark{'s' if scored != 1 else ''} (+{len(sections) - scored} with reported numbers only), "
              f"{len(files)} files in {out}")
        print(f"leaderboard: page {summary.index.resolve().as_uri()}")
        print(f"leaderboard: table {(out / 'leaderboard.md')}")
    return summary
