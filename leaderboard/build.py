"""``leaderboard build``: result files in, a self-contained leaderboard folder out.

Output folder layout::

    <out>/index.html            static page (works from file://, no network)
    <out>/leaderboard.md        README-ready Markdown tables
    <out>/leaderboard.csv       one row per result × split (leaderboard.frame)
    <out>/plots/<benchmark>-{metrics,splits,sweeps}.{png,svg}
    <out>/panels/<result key's folder>/<result stem>_panels/<split>/<image>.png   (copied from the results)
    <out>/.leaderboard-build    marker: this folder is a build output, and the files it holds

Phases, as in pycocotools: read and check every input first (a bad file stops
the build before anything is written), build the table model, render, then
publish. Everything is rendered into a temporary sibling folder that replaces
``<out>`` by renames at the end (:func:`contract.files.replace_folder`), so an
interrupted build leaves the old leaderboard intact, and no file of a
previous build survives into the new one.

``<out>`` is replaced only when the build wrote it: its marker lists every
file of the previous build, and a folder holding anything else (``docs/``
beside the page, a file without a marker) is refused with one line, never
deleted. Folders written by leaderboard 0.1 (no marker, only its own file
names, its page's generator tag) are recognised too.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from contract.files import recover_folder, replace_folder
from leaderboard import frame as csv_out
from leaderboard import html as html_out
from leaderboard import markdown as md_out
from leaderboard.reported import DEFAULT_SOURCES, load_sources
from leaderboard.results import Result, read_panel, read_results
from leaderboard.table import Section, build_sections

MARKER = ".leaderboard-build"
MARKER_HEAD = ("coco-ad leaderboard: written by `python -m leaderboard build`, which replaces this whole folder "
               "on every build.\nFiles of this build:\n")
#: What leaderboard 0.1 wrote (it had no marker): top-level names, and the page's generator tag.
LEGACY_NAMES = {"index.html", "leaderboard.md", "plots", "panels"}
LEGACY_TAG = b'<meta name="generator" content="coco-ad leaderboard '


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


def _listing(folder: Path) -> tuple[list[str], list[str]]:
    """(relative paths of the regular files, relative paths of anything else that is not a folder) below ``folder``."""
    files, others = [], []
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():
                dirnames.remove(name)
                others.append((base / name).relative_to(folder).as_posix())
        for name in filenames:
            rel = (base / name).relative_to(folder).as_posix()
            (files if stat.S_ISREG(os.lstat(base / name).st_mode) else others).append(rel)
    return sorted(files), sorted(others)


def _is_legacy(out: Path, files: list[str]) -> bool:
    top = {PurePosixPath(f).parts[0] for f in files}
    if not top <= LEGACY_NAMES or "index.html" not in files:
        return False
    if any(f.startswith("plots/") and not f.endswith((".png", ".svg")) for f in files):
        return False
    if any(f.startswith("panels/") and not f.endswith(".png") for f in files):
        return False
    with open(out / "index.html", "rb") as f:
        return LEGACY_TAG in f.read(4096)


def check_out(out: Path) -> None:
    """Refuse (one line) an ``out`` that this build may not replace; see the module docstring."""
    if out.is_symlink():
        raise BuildError(f"{out}: is a symbolic link; pass the real folder as --out DIR")
    if not out.exists():
        return
    if not out.is_dir():
        raise BuildError(f"{out}: exists and is not a folder; pass another --out DIR")
    try:
        files, others = _listing(out)
    except OSError as e:
        raise BuildError(f"{out}: cannot list it ({e.strerror or e}); pass another --out DIR") from None
    if not files and not others:
        return
    hint = "move it away or pass an empty or new --out DIR"
    if others:
        raise BuildError(f"{out}: holds {others[0]}, which the leaderboard build did not write "
                         f"(not a regular file); {hint}")
    marker = out / MARKER
    if MARKER in files:
        try:
            text = marker.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        if not text.startswith(MARKER_HEAD):
            raise BuildError(f"{marker}: not a marker of the leaderboard build; {hint}")
        ours = set(text[len(MARKER_HEAD):].splitlines()) | {MARKER}
        extra = [f for f in files if f not in ours]
        if extra:
            raise BuildError(f"{out}: holds {extra[0]}, which the leaderboard build did not write; {hint}")
        return
    try:
        legacy = _is_legacy(out, files)
    except OSError:
        legacy = False
    if not legacy:
        raise BuildError(f"{out}: is a non-empty folder that the leaderboard build did not write (no {MARKER} "
                         f"marker); {hint}")


def _inside(out: Path, folder: Path) -> bool:
    o, f = out.resolve(), folder.resolve()
    return o == f or f in o.parents


def _panel_target(res: Result, file: str) -> str:
    return (PurePosixPath("panels") / PurePosixPath(res.key).parent / file).as_posix()


def _write(stage: Path, rel: str, data: bytes) -> None:
    p = stage / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def _panels(sections: list[Section]) -> dict:
    """``{result key: [(caption, relative file)]}`` of the panels shown (one result per submission)."""
    out: dict = {}
    for sec in sections:
        for _, res in sec.panels:
            out[res.key] = [(f"split {p['split']} · {p['img_path']}", _panel_target(res, p["file"]))
                            for p in res.panels]
    return out


def _copy_panels(sections: list[Section], stage: Path) -> None:
    for sec in sections:
        for _, res in sec.panels:
            for p in res.panels:
                _write(stage, _panel_target(res, p["file"]), read_panel(res, p))


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
            rel = f"plots/{sec.slug}-{kind}"
            plots.save_figure(fig, stage / rel)
            stems[kind] = rel
        if stems:
            out[sec.benchmark] = stems
    return out


def _marker(files: list[str]) -> bytes:
    return (MARKER_HEAD + "".join(f"{f}\n" for f in files)).encode("utf-8")


def build(results, out: Path, reported=DEFAULT_SOURCES, quiet: bool = False,
          note: Callable[[str], None] | None = None) -> BuildSummary:
    """Build the leaderboard of the result files and folders ``results`` (a path or a list) into ``out``.

    ``reported``: CSV files of published numbers, each shown as its own
    source (default: the InvAD paper's and ADer's benchmark); None or () leaves
    them out. ``note``: receives one line per input skipped (not a result, a link).
    """
    out = Path(out)
    try:
        # First of all, even if this build fails: a crash between the renames of an
        # earlier build left the last complete leaderboard aside; put it back.
        recover_folder(out)
    except OSError as e:
        raise BuildError(f"{out}: cannot restore the previous leaderboard ({e.strerror or e})") from None
    inputs = [Path(results)] if isinstance(results, (str, os.PathLike)) else [Path(p) for p in results]
    for folder in inputs:
        if folder.is_dir() and _inside(out, folder):
            raise BuildError(f"{out}: must not be inside the results folder {folder}; pass another --out DIR")
    loaded = read_results(inputs, note=note)
    rows = load_sources(reported or ())
    check_out(out)
    sections = build_sections(loaded, rows)
    panels = _panels(sections)

    stage = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for stale in out.parent.glob(f".{out.name}.build-*.tmp"):  # staging folders of interrupted builds
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", suffix=".tmp", dir=out.parent))
        _copy_panels(sections, stage)
        plots = _write_plots(sections, stage)
        _write(stage, "leaderboard.md", md_out.render(sections).encode("utf-8"))
        _write(stage, "leaderboard.csv", csv_out.csv_bytes(loaded))
        _write(stage, "index.html", html_out.render(sections, plots, panels, len(loaded)).encode("utf-8"))
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        _write(stage, MARKER, _marker(files))
        files = sorted([*files, MARKER])
        os.chmod(stage, 0o755)
        replace_folder(stage, out)
        stage = None
    except OSError as e:
        where = e.filename or out
        raise BuildError(f"{out}: cannot write the leaderboard ({e.strerror or e}: {where}); "
                         f"check that the folder is writable and the disk has room") from None
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
    summary = BuildSummary(out=out, n_results=len(loaded), benchmarks=tuple(s.benchmark for s in sections),
                           files=tuple(files))
    if not quiet:
        scored = sum(1 for s in sections if s.scored_groups)
        print(f"leaderboard: {len(loaded)} result file{'s' if len(loaded) != 1 else ''} on {scored} "
              f"benchmark{'s' if scored != 1 else ''} (+{len(sections) - scored} with reported numbers only), "
              f"{len(files)} files in {out}")
        print(f"leaderboard: page {summary.index.resolve().as_uri()}")
        print(f"leaderboard: table {out / 'leaderboard.md'}, data {out / 'leaderboard.csv'}")
    return summary
