"""Ground truth the scorer uses: the evaluation-size file (fast path) or the masks, always
certified by benchmark.json's checksums; results say which splits they cover."""

from __future__ import annotations

import json

import numpy as np
import pytest

import evaluator
from benchmark import BenchmarkError, open_benchmark
from benchmark.eval_gt import add_to_folder
from evaluator.cli import main
from evaluator.score import default_out

from .conftest import tree_snapshot, write_submission

VERIFY = "python -m benchmark.build verify"


def _strip(result: dict) -> dict:
    """The parts of a result that do not depend on the ground-truth path or the clock."""
    return {k: v for k, v in result.items() if k in ("splits", "mean", "sweeps", "complete")}


@pytest.mark.parametrize("profile", ["exact", "ader-bench"])
def test_eval_size_file_gives_the_masks_bits(tmp_path, bench_dir, bench, profile, monkeypatch):
    sub = write_submission(tmp_path / "subs" / "noise", bench)
    from_masks = evaluator.score(sub, bench_dir, profile=profile)
    assert from_masks["evaluator"]["ground_truth"] == "masks"
    assert add_to_folder(bench_dir) == ["meta_1_0_gt32x32.npy", "meta_1_1_gt32x32.npy"]
    # The masks are not read any more: only the evaluation-size file is.
    from benchmark import Benchmark

    monkeypatch.setattr(Benchmark, "gt_mask", lambda self, item: pytest.fail("read a mask"))
    fast = evaluator.score(sub, bench_dir, profile=profile)
    assert fast["evaluator"]["ground_truth"] == "eval-size"
    assert _strip(fast) == _strip(from_masks)  # every metric equal to the bit


def test_gt_command_is_idempotent_and_verified(bench_dir, capsys):
    from benchmark.build import main as build_main

    assert build_main(["gt", str(bench_dir), "--quiet"]) == 0
    first = (bench_dir / "benchmark.json").read_bytes()
    assert build_main(["gt", str(bench_dir), "--quiet"]) == 0
    assert (bench_dir / "benchmark.json").read_bytes() == first
    manifest = json.loads(first)
    assert manifest["splits"]["0"]["eval_gt"] == "meta_1_0_gt32x32.npy"
    assert "meta_1_0_gt32x32.npy" in manifest["files"]
    capsys.readouterr()
    assert build_main(["verify", str(bench_dir)]) == 0
    # A file consistent with benchmark.json but not with the masks (another protocol, a bug): verify recomputes it.
    gt = bench_dir / "meta_1_1_gt32x32.npy"
    packed = np.load(gt)
    packed[0, 0, 0] ^= 0x80
    np.save(gt, packed)
    from contract.files import atomic_write_json, sha256_file, sha256_of_listing
    from benchmark.manifest import owned_by

    manifest["files"][gt.name] = sha256_file(gt)
    entry = manifest["splits"]["1"]
    entry["sha256"] = sha256_of_listing((r, d) for r, d in manifest["files"].items() if owned_by(r, entry))
    atomic_write_json(bench_dir / "benchmark.json", manifest)
    capsys.readouterr()
    assert build_main(["verify", str(bench_dir)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{bench_dir}: changed: {gt.name} (not the split's masks at the protocol's evaluation size; "
                   f"rewrite it with python -m benchmark.build gt {bench_dir})"]


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("target", ["mask", "meta", "eval-size file"])
def test_tampered_ground_truth_is_refused(tmp_path, bench_dir, bench, target, capsys):
    sub = write_submission(tmp_path / "subs" / "noise", bench)
    if target == "eval-size file":
        add_to_folder(bench_dir)
    bench = open_benchmark(bench_dir)
    item = next(it for it in bench.items("1") if it.mask_path)
    path = {"mask": lambda: bench.root / item.mask_path, "meta": lambda: bench.meta_path("1"),
            "eval-size file": lambda: bench.root / bench.split("1")["eval_gt"]}[target]()
    _flip_byte(path)
    before = tree_snapshot(tmp_path)
    assert main(["score", str(sub), "--benchmark", str(bench_dir), "--quiet", "--panels", "1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"{path}: does not match its sha256 in {bench_dir / 'benchmark.json'}") and VERIFY in err[0]
    assert "cannot write" not in err[0] and "Traceback" not in err[0]
    assert tree_snapshot(tmp_path) == before and not default_out(sub).exists()


def test_missing_or_unlisted_ground_truth_is_refused(tmp_path, bench_dir, bench):
    sub = write_submission(tmp_path / "subs" / "noise", bench)
    item = next(it for it in bench.items("0") if it.mask_path)
    (bench_dir / item.mask_path).unlink()
    with pytest.raises(BenchmarkError, match="missing"):
        evaluator.score(sub, bench_dir)
    manifest = json.loads((bench_dir / "benchmark.json").read_text())
    del manifest["files"][item.mask_path]
    (bench_dir / "benchmark.json").write_text(json.dumps(manifest))
    with pytest.raises(BenchmarkError, match="not listed"):
        evaluator.score(sub, bench_dir)


def test_a_forged_eval_size_file_of_the_wrong_shape_is_refused(tmp_path, bench_dir, bench):
    sub = write_submission(tmp_path / "subs" / "noise", bench)
    add_to_folder(bench_dir)
    gt = bench_dir / "meta_1_0_gt32x32.npy"
    np.save(gt, np.zeros((1, 2, 3), np.uint8))
    from contract.files import sha256_file

    manifest = json.loads((bench_dir / "benchmark.json").read_text())
    manifest["files"][gt.name] = sha256_file(gt)
    (bench_dir / "benchmark.json").write_text(json.dumps(manifest))
    with pytest.raises(BenchmarkError, match=r"expected uint8 \(6, 32, 4\).*benchmark.build gt"):
        evaluator.score(sub, bench_dir)


def test_partial_result_says_so(tmp_path, bench_dir, bench):
    sub = write_submission(tmp_path / "subs" / "split1", bench, splits=["1"])
    result = evaluator.score(sub, bench_dir)
    assert list(result["splits"]) == ["1"] and result["benchmark"]["split_ids"] == ["0", "1"]
    assert result["complete"] is False
    assert any(w.startswith("partial result: splits 1 of 0, 1") for w in result["warnings"])
    full = evaluator.score(write_submission(tmp_path / "subs" / "all", bench), bench_dir)
    assert full["complete"] is True and not any(w.startswith("partial") for w in full["warnings"])
