"""The main job: ``python -m leaderboard.demo [--workdir runs/demo] [--quiet]``.

Runs the whole chain on the embedded demo source, each stage through its
command line only (a child ``python -m …`` process, output streamed)::

    benchmark   python -m benchmark.build demo --out W/benchmark
    for every (module, preset) of BASELINES, e.g. baselines.invad / invad-tiny:
    baseline    python -m baselines.invad run --benchmark W/benchmark --preset invad-tiny
                    --out W/runs/invad-tiny --submission W/submissions/invad-tiny
    validate    python -m evaluator validate W/submissions/invad-tiny --benchmark W/benchmark
    score       python -m evaluator score … --profile exact --panels 2 --out W/results/invad-tiny.exact.json
    score       python -m evaluator score … --profile ader  --panels 2 --out W/results/invad-tiny.ader.json
    score       python -m evaluator score … --profile ader-bench --panels 2 --out W/results/invad-tiny.ader-bench.json
    then
    leaderboard python -m leaderboard build --results W/results --out W/leaderboard

A rerun skips every step whose outputs exist and are at least as new as its
inputs (make's rule), so an interrupted job resumes where it stopped and a
changed input reruns only what depends on it. The leaderboard's inputs are
every result file in ``W/results``, not only the job's own: put your own
result there (``python -m evaluator score … --out W/results/mine.exact.json``,
or ``examples/bring_your_own.py``) and a rerun rebuilds the board with it; the
list of results of the last build is kept in ``W/.leaderboard-inputs``, so an
added, removed or replaced file is noticed whatever its time stamp. A failing
step stops the job with the step's exit code and one line naming the step.

A shorter job, for a quick look or a test: ``--presets`` picks some of the
baselines, ``--splits`` some of the splits and ``--epochs`` overrides every
preset's epochs. Such a run gets its own names (``invad-tiny-e1-s0`` for
``--epochs 1 --splits 0``), so it never passes for the full one, and its
result covers only those splits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from contract.files import atomic_write_bytes

#: (baseline package, preset) trained and scored by the main job, in this order.
BASELINES = (
    ("baselines.invad", "invad-tiny"),
    ("baselines.vitad", "vitad-tiny"),
    ("baselines.uniad", "uniad-tiny"),
    ("baselines.rd", "rd-tiny"),
    ("baselines.rdpp", "rdpp-tiny"),
)
PANELS = 2
PROFILES = ("exact", "ader", "ader-bench")


@dataclass(frozen=True)
class Step:
    """One child command of the job.

    ``outputs``: files that exist once the step has run. ``inputs``: files the
    outputs are made from; the step is up to date when every output exists
    and none is older than any input. ``stale``: what to remove before
    rerunning a step whose outputs are out of date (tools refuse to overwrite
    a finished submission, rightly). ``writes``: False for a step that only
    guards its outputs (they are written by the steps after it).
    """

    name: str
    argv: tuple  # arguments after ``python -m``
    outputs: tuple
    inputs: tuple = ()
    stale: tuple = ()
    writes: bool = True
    scan: Path | None = None
    stamp: Path | None = None


@dataclass
class Plan:
    steps: list = field(default_factory=list)
    page: Path | None = None


def variant(preset: str, splits: tuple = (), epochs: int | None = None) -> str:
    """Name of a preset's run, submission and results: the preset, marked when shortened."""
    return preset + (f"-e{epochs}" if epochs is not None else "") + (f"-s{'_'.join(splits)}" if splits else "")


def plan(workdir: Path, quiet: bool = False, presets: tuple | None = None, splits: tuple = (),
         epochs: int | None = None) -> Plan:
    """The job's steps for ``workdir`` (paths absolute, so children may run anywhere).

    ``presets`` (default: every one of :data:`BASELINES`), ``splits``
    (default: all) and ``epochs`` (default: the presets') shorten the job.
    """
    w = Path(workdir).resolve()
    bench, results_dir, board = w / "benchmark", w / "results", w / "leaderboard"
    manifest = bench / "benchmark.json"
    q = ("--quiet",) if quiet else ()
    splits = tuple(str(s) for s in splits)
    extra = (("--splits", *splits) if splits else ()) + (("--epochs", str(epochs)) if epochs is not None else ())
    steps = [Step("build the demo benchmark", ("benchmark.build", "demo", "--out", str(bench), *q), (manifest,))]
    all_results: list[Path] = []
    for module, preset in BASELINES:
        if presets is not None and preset not in presets:
            continue
        name = variant(preset, splits, epochs)
        sub, run_dir = w / "submissions" / name, w / "runs" / name
        sub_json = sub / "submission.json"
        results = {p: results_dir / f"{name}.{p}.json" for p in PROFILES}
        all_results += results.values()
        steps += [
            Step(f"train and predict {name} on " + (f"split(s) {', '.join(splits)}" if splits else "every split"),
                 (module, "run", "--benchmark", str(bench), "--preset", preset, "--out", str(run_dir),
                  "--submission", str(sub), *extra, *q),
                 (sub_json,), (manifest,), (sub,)),
            # validate has no output of its own: it guards the scores, so it runs whenever a score is due.
            Step(f"validate the {name} submission", ("evaluator", "validate", str(sub), "--benchmark", str(bench)),
                 tuple(results.values()), (sub_json, manifest), writes=False),
        ]
        for p in PROFILES:
            steps.append(Step(f"score {name} with the {p} profile",
                              ("evaluator", "score", str(sub), "--benchmark", str(bench), "--profile", p,
                               "--panels", str(PANELS), "--out", str(results[p]), *q),
                              (results[p],), (sub_json, manifest)))
    steps.append(Step("build the leaderboard",
                      ("leaderboard", "build", "--results", str(results_dir), "--out", str(board), *q),
                      (board / "index.html",), tuple(all_results), scan=results_dir,
                      stamp=w / ".leaderboard-inputs"))
    return Plan(steps=steps, page=board / "index.html")


def _mtime(p: Path) -> int | None:
    try:
        return p.stat().st_mtime_ns
    except OSError:  # missing, or a parent is not a folder: either way not made yet
        return None


def scanned(folder: Path | None) -> list[Path]:
    """The ``*.json`` files below ``folder`` that ``leaderboard build`` would consider, sorted."""
    if folder is None or not folder.is_dir():
        return []
    from leaderboard.nofollow import walk_json

    return [folder / rel for rel in sorted(walk_json(folder, lambda line: None))]


def listing(files: list[Path]) -> str:
    """One line per file: path, size and mtime in nanoseconds (what a stamp compares)."""
    lines = []
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        lines.append(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n")
    return "".join(lines)


def up_to_date(step: Step) -> bool:
    """Every output exists, none is older than an existing input, and the scanned inputs are those of the stamp."""
    outs = [_mtime(p) for p in step.outputs]
    if not outs or any(t is None for t in outs):
        return False
    found = scanned(step.scan)
    if step.stamp is not None:
        try:
            if step.stamp.read_text(encoding="utf-8") != listing(found):
                return False
        except (OSError, UnicodeDecodeError):
            return False
    ins = [t for t in (_mtime(p) for p in (*step.inputs, *found)) if t is not None]
    return not ins or min(outs) >= max(ins)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def child_env() -> dict:
    """Environment of the child processes: unbuffered output (so it streams) and the project importable."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def subprocess_runner(argv: tuple) -> int:
    """Run ``python -m <argv>`` with this interpreter, output going straight to ours."""
    return subprocess.run([sys.executable, "-m", *argv], env=child_env()).returncode


def _exit_code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc  # killed by signal N: the shell's 128 + N


def run_job(steps: list, runner: Callable[[tuple], int] = subprocess_runner, quiet: bool = False,
            say: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic) -> int:
    """Run the steps in order, skipping those that are up to date; 0, or the failing step's exit code."""
    if say is None:
        def say(line: str) -> None:
            print(line, flush=True)
    t0 = clock()
    n = len(steps)
    for i, step in enumerate(steps, start=1):
        head = f"[{i}/{n}] {step.name}"
        if up_to_date(step):
            if not quiet:
                say(f"==> {head}: up to date, skipped ({_clock(clock() - t0)} elapsed)")
            continue
        for p in step.stale:
            if p.exists():
                if not quiet:
                    say(f"    removing the out-of-date {p}")
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        if not quiet:
            say(f"==> {head} ({_clock(clock() - t0)} elapsed)\n    $ python -m {' '.join(step.argv)}")
        try:
            rc = runner(step.argv)
        except KeyboardInterrupt:
            say(f"demo: interrupted during step {i}/{n} '{step.name}'; rerun to resume")
            return 130
        if rc != 0:
            say(f"demo: step {i}/{n} '{step.name}' failed with exit code {_exit_code(rc)} (its output is above); "
                f"fix it and rerun to resume")
            return _exit_code(rc) or 1
        missing = [str(p) for p in step.outputs if step.writes and not p.exists()]
        if missing:
            say(f"demo: step {i}/{n} '{step.name}' exited 0 but did not write {', '.join(missing)}")
            return 1
        if step.stamp is not None:
            atomic_write_bytes(step.stamp, listing(scanned(step.scan)).encode("utf-8"))
        if not quiet:
            say(f"    done ({_clock(clock() - t0)} elapsed)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard.demo",
        description="Run the whole chain on the embedded demo: build the demo benchmark, train and predict "
                    f"{', '.join(p for _, p in BASELINES)} on every split, validate and score each "
                    f"({', '.join(PROFILES)} profiles), build the leaderboard. Finished steps are skipped "
                    "on a rerun.")
    parser.add_argument("--workdir", default="runs/demo", metavar="DIR",
                        help="where every output goes (default: runs/demo)")
    parser.add_argument("--quiet", action="store_true", help="only the children's warnings and the final line")
    known = [p for _, p in BASELINES]
    parser.add_argument("--presets", nargs="+", metavar="NAME", choices=known,
                        help=f"train and score only these baselines (default: all of {', '.join(known)})")
    parser.add_argument("--splits", nargs="+", metavar="ID", default=(),
                        help="only these demo splits (default: all); results then cover only them")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="override every preset's number of epochs (a quick, weaker run)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    job = plan(Path(args.workdir), quiet=args.quiet, presets=args.presets, splits=tuple(args.splits),
               epochs=args.epochs)
    t0 = time.monotonic()
    rc = run_job(job.steps, quiet=args.quiet)
    if rc == 0:
        print(f"demo: done in {_clock(time.monotonic() - t0)}; leaderboard page {job.page.as_uri()} "
              f"(Markdown table: {job.page.parent / 'leaderboard.md'})", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
