"""The main job's plan and step skipping, with a fake runner standing in for the child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leaderboard import demo


class FakeRunner:
    """Records each command and writes the outputs the real tool would (or fails on request)."""

    def __init__(self, workdir: Path, fail: dict | None = None):
        self.w = workdir.resolve()
        self.calls: list[tuple] = []
        self.fail = fail or {}

    def __call__(self, argv: tuple) -> int:
        self.calls.append(argv)
        key = " ".join(argv[:2])
        if key in self.fail:
            return self.fail[key]
        a = list(argv)

        def after(flag):
            return Path(a[a.index(flag) + 1])

        def touch(p: Path):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(key)

        if argv[0] == "benchmark.build":
            touch(after("--out") / "benchmark.json")
        elif argv[0].startswith("baselines."):
            sub = after("--submission")
            assert not sub.exists(), "the baseline refuses to overwrite a submission"
            touch(sub / "submission.json")
        elif argv[:2] == ("evaluator", "score"):
            touch(after("--out"))
        elif argv[0] == "leaderboard":
            touch(after("--out") / "index.html")
        return 0

    def names(self) -> list[str]:
        return [" ".join(c[:2]) for c in self.calls]


def _all_steps() -> list[str]:
    """The command names the job runs, from demo.BASELINES and demo.PROFILES (other engineers add to both)."""
    out = ["benchmark.build demo"]
    for module, _ in demo.BASELINES:
        out += [f"{module} run", "evaluator validate"] + ["evaluator score"] * len(demo.PROFILES)
    return out + ["leaderboard build"]


ALL = _all_steps()
N = len(ALL)
FIRST_MODULE, FIRST_PRESET = demo.BASELINES[0]


def _age_all(root: Path) -> None:
    """Give every file one old mtime, so that whatever is written next is newer (mtime resolution varies)."""
    t = time.time() - 100
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (t, t))


def test_plan_matches_the_documented_commands(tmp_path):
    job = demo.plan(tmp_path / "w")
    w = (tmp_path / "w").resolve()
    argvs = [s.argv for s in job.steps]
    assert len(argvs) == N
    assert argvs[0] == ("benchmark.build", "demo", "--out", str(w / "benchmark"))
    p = FIRST_PRESET
    assert argvs[1] == (FIRST_MODULE, "run", "--benchmark", str(w / "benchmark"), "--preset", p,
                        "--out", str(w / f"runs/{p}"), "--submission", str(w / f"submissions/{p}"))
    assert argvs[2] == ("evaluator", "validate", str(w / f"submissions/{p}"), "--benchmark", str(w / "benchmark"))
    for i, profile in enumerate(demo.PROFILES):
        assert argvs[3 + i] == ("evaluator", "score", str(w / f"submissions/{p}"), "--benchmark", str(w / "benchmark"),
                                "--profile", profile, "--panels", "2", "--out", str(w / f"results/{p}.{profile}.json"))
    assert argvs[-1] == ("leaderboard", "build", "--results", str(w / "results"), "--out", str(w / "leaderboard"))
    assert job.page == w / "leaderboard/index.html"
    quiet = demo.plan(tmp_path / "w", quiet=True)
    assert all(s.argv[-1] == "--quiet" for s in quiet.steps if s.argv[1] != "validate")


def test_runs_everything_then_skips_everything(tmp_path):
    lines = []
    steps = demo.plan(tmp_path).steps
    run = FakeRunner(tmp_path)
    assert demo.run_job(steps, run, say=lines.append) == 0
    assert run.names() == ALL
    assert any(line.startswith(f"==> [1/{N}] build the demo benchmark (0:00:00 elapsed)") for line in lines)
    rerun = FakeRunner(tmp_path)
    lines.clear()
    assert demo.run_job(steps, rerun, say=lines.append) == 0
    assert rerun.calls == []
    assert sum("up to date, skipped" in line for line in lines) == N


def test_resumes_after_the_last_finished_step(tmp_path):
    steps = demo.plan(tmp_path).steps
    first = FakeRunner(tmp_path, fail={"evaluator score": 3})
    lines = []
    assert demo.run_job(steps, first, say=lines.append) == 3
    assert first.names() == ALL[:4]  # stopped at the first score
    assert lines[-1] == (f"demo: step 4/{N} 'score {FIRST_PRESET} with the {demo.PROFILES[0]} profile' failed with "
                         f"exit code 3 (its output is above); fix it and rerun to resume")
    second = FakeRunner(tmp_path)
    assert demo.run_job(steps, second, say=lambda s: None) == 0
    assert second.names() == ALL[2:]  # benchmark and baseline are not redone


def test_a_changed_result_rebuilds_only_the_leaderboard(tmp_path):
    steps = demo.plan(tmp_path).steps
    demo.run_job(steps, FakeRunner(tmp_path), say=lambda s: None)
    _age_all(tmp_path)
    (tmp_path / f"results/{FIRST_PRESET}.{demo.PROFILES[-1]}.json").write_text("rescored")  # newer than the page
    run = FakeRunner(tmp_path)
    demo.run_job(steps, run, say=lambda s: None)
    assert run.names() == ["leaderboard build"]


def test_a_missing_result_revalidates_and_rescores_only_it(tmp_path):
    steps = demo.plan(tmp_path).steps
    demo.run_job(steps, FakeRunner(tmp_path), say=lambda s: None)
    (tmp_path / f"results/{FIRST_PRESET}.{demo.PROFILES[0]}.json").unlink()
    run = FakeRunner(tmp_path)
    demo.run_job(steps, run, say=lambda s: None)
    assert run.names() == ["evaluator validate", "evaluator score", "leaderboard build"]
    assert demo.PROFILES[0] in run.calls[1]


def test_a_rebuilt_benchmark_reruns_everything_after_it(tmp_path):
    steps = demo.plan(tmp_path).steps
    demo.run_job(steps, FakeRunner(tmp_path), say=lambda s: None)
    _age_all(tmp_path)
    (tmp_path / "benchmark/benchmark.json").unlink()
    run = FakeRunner(tmp_path)
    lines = []
    assert demo.run_job(steps, run, say=lines.append) == 0
    assert run.names() == ALL  # the old submission was removed first, so the baseline could write a new one
    assert any("removing the out-of-date" in line and "submissions" in line for line in lines)


def test_a_result_added_to_the_results_folder_rebuilds_the_board(tmp_path):
    """Bring your own: a result copied in with an old time stamp (cp -p) is noticed, so is one removed."""
    steps = demo.plan(tmp_path).steps
    demo.run_job(steps, FakeRunner(tmp_path), say=lambda s: None)
    mine = tmp_path / "results" / "mine.exact.json"
    mine.write_text("{}")
    os.utime(mine, (1_000_000, 1_000_000))  # 1970: older than everything
    run = FakeRunner(tmp_path)
    demo.run_job(steps, run, say=lambda s: None)
    assert run.names() == ["leaderboard build"]
    rerun = FakeRunner(tmp_path)
    demo.run_job(steps, rerun, say=lambda s: None)
    assert rerun.calls == []
    mine.unlink()
    again = FakeRunner(tmp_path)
    demo.run_job(steps, again, say=lambda s: None)
    assert again.names() == ["leaderboard build"]


def test_a_step_that_writes_nothing_is_an_error(tmp_path):
    steps = demo.plan(tmp_path).steps
    assert demo.run_job(steps[:1], lambda argv: 0, say=lambda s: None) == 1


def test_signal_exit_codes_follow_the_shell(tmp_path):
    steps = demo.plan(tmp_path).steps
    lines = []
    assert demo.run_job(steps, lambda argv: -9, say=lines.append) == 137
    assert "'build the demo benchmark' failed with exit code 137" in lines[-1]


def test_quiet_prints_only_problems(tmp_path):
    steps = demo.plan(tmp_path, quiet=True).steps
    lines = []
    assert demo.run_job(steps, FakeRunner(tmp_path), quiet=True, say=lines.append) == 0
    assert lines == []


def test_cli_failing_step_one_line_and_exit_code(tmp_path):
    """Through the real entry point: the first child fails (its output dir is a file), the job stops there."""
    w = tmp_path / "w"
    w.mkdir()
    (w / "benchmark").write_text("not a folder")
    r = subprocess.run([sys.executable, "-m", "leaderboard.demo", "--workdir", str(w), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith(f"demo: step 1/{N} 'build the demo benchmark' failed with exit code ")
    assert last.endswith(f"{r.returncode} (its output is above); fix it and rerun to resume")
    assert not (w / "submissions").exists()


@pytest.mark.parametrize("argv", [["--help"]])
def test_cli_help(argv):
    r = subprocess.run([sys.executable, "-m", "leaderboard.demo", *argv], capture_output=True, text=True)
    assert r.returncode == 0 and "--workdir" in r.stdout


def test_plan_of_a_shortened_job_names_it_apart(tmp_path):
    job = demo.plan(tmp_path / "w", presets=("invad-tiny",), splits=("0", "2"), epochs=1)
    w = (tmp_path / "w").resolve()
    assert job.steps[1].argv[-7:] == ("--submission", str(w / "submissions/invad-tiny-e1-s0_2"),
                                      "--splits", "0", "2", "--epochs", "1")
    assert job.steps[1].argv[job.steps[1].argv.index("--out") + 1] == str(w / "runs/invad-tiny-e1-s0_2")
    assert job.steps[3].outputs == (w / "results/invad-tiny-e1-s0_2.exact.json",)
    assert [s for s in demo.plan(tmp_path / "w", presets=()).steps if s.argv[0].startswith("baselines.")] == []


@pytest.mark.slow
def test_main_job_end_to_end_on_one_split(tmp_path):
    """The real chain (child processes, no fakes) on demo split 0 with invad-tiny for one epoch, then a rerun."""
    import json

    w = tmp_path / "w"
    argv = [sys.executable, "-m", "leaderboard.demo", "--workdir", str(w), "--presets", "invad-tiny",
            "--splits", "0", "--epochs", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")  # like the baseline tests: steady on a small or shared machine
    r = subprocess.run([*argv, "--quiet"], capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1].startswith("demo: done in ")
    name = "invad-tiny-e1-s0"
    for profile in demo.PROFILES:
        res = json.loads((w / "results" / f"{name}.{profile}.json").read_text())
        assert res["evaluator"]["profile"] == profile
        assert list(res["splits"]) == ["0"]
        assert res["submission"]["method"]["preset"] == "invad-tiny"
        assert res["submission"]["method"]["epochs"] == 1
        metrics = res["splits"]["0"]
        assert all(0.0 <= metrics[m] <= 1.0 for m in ("I-AUROC", "P-AUROC", "AUPRO", "P-AP"))
        assert metrics["P-AUROC"] > 0.6  # one epoch already localises better than chance
    board = w / "leaderboard"
    assert (board / "index.html").is_file() and (board / "leaderboard.md").is_file()
    assert "InvAD-tiny" in (board / "leaderboard.md").read_text()
    outputs = sorted(p for p in w.rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    steps = [line for line in again.stdout.splitlines() if line.startswith("==> [")]
    assert len(steps) == 4 + len(demo.PROFILES) and all(line.split(": ")[-1].startswith("up to date, skipped") for line in steps), steps
    assert sorted(p for p in w.rglob("*") if p.is_file()) == outputs
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
