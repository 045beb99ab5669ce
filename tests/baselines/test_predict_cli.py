"""Prediction into a submission folder and the command line (train / predict / run / presets)."""

import json
import time

import numpy as np
import pytest
import torch

import baselines.invad  # noqa: F401
import evaluator
from baselines.common import engine
from baselines.common.checkpoint import load_checkpoint
from baselines.common.cli import main
from baselines.common.predict import predict
from baselines.common.presets import get_preset
from baselines.common.runtime import Runtime
from benchmark import open_benchmark

CPU = Runtime(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def cli(*argv) -> int:
    return main("invad", [str(a) for a in argv], default_preset="invad")


@pytest.fixture(scope="module")
def two_splits(tmp_path_factory):
    """A two-split benchmark (eval size 32×32) and invad-tiny at 64×64 trained on both."""
    from tests.conftest import write_benchmark

    root = tmp_path_factory.mktemp("predict")
    bench = write_benchmark(root / "bench", splits=("0", "1"), n_train=4, n_test_normal=2, n_test_anomalous=2)
    preset = get_preset("invad-tiny").replace(image_size=64, batch_size=4, epochs=1)
    for s in ("0", "1"):
        engine.train_split(preset, bench, s, root / "run", CPU, quiet=True)
    return bench, preset, root


def test_predict_writes_a_valid_submission(two_splits):
    bench_dir, preset, root = two_splits
    sub = predict([root / "run"], root / "sub", bench_dir, device=torch.device("cpu"), quiet=True)
    bench = open_benchmark(bench_dir)
    assert evaluator.validate(sub, bench_dir) == []
    doc = json.loads((sub / "submission.json").read_text())
    assert doc["schema_version"] == 1 and doc["splits"] == ["0", "1"]
    assert doc["benchmark"] == {"name": "tiny-ad", "version": "1"}
    m = doc["method"]
    assert m["name"] == "InvAD-tiny" and m["preset"] == "invad-tiny" and m["backbone"] == "tf_efficientnet_lite0"
    # a CPU preset of a published method: the paper is the method's, the configuration is ours
    assert m["paper"] == "https://arxiv.org/abs/2404.10760" and m["published"] is False and m["preset"] == "invad-tiny"
    assert m["image_size"] == 64 and m["epochs"] == 1
    params = load_checkpoint(root / "run" / "0" / "checkpoint.pt")["params"]
    assert m["params_m"] == round(params["total"] / 1e6, 3)
    assert m["params_trainable_m"] == round(params["trainable"] / 1e6, 3)
    assert m["params_m"] == 7.101  # EfficientNet-Lite0 levels 1-4 (2.96 M) + InvAD-tiny (4.14 M at 64×64 input)
    for s in ("0", "1"):
        assert not (sub / s / "scores.csv").exists()  # image score = map max
        for item in bench.items(s):
            arr = np.load(sub / s / "maps" / item.img_path.replace(".jpg", ".npy"))
            assert arr.dtype == np.float16 and arr.shape == (32, 32) and np.isfinite(arr).all()
    # same checkpoints → same bytes
    again = predict([root / "run" / "0" / "checkpoint.pt", root / "run" / "1" / "checkpoint.pt"], root / "sub2",
                    bench_dir, device=torch.device("cpu"), quiet=True)
    for f in sorted(p.relative_to(sub) for p in sub.rglob("*") if p.is_file()):
        assert (sub / f).read_bytes() == (again / f).read_bytes(), f


def test_predict_refuses_unfinished_and_existing(two_splits, tmp_path):
    bench_dir, preset, root = two_splits
    part = engine.train_split(preset.replace(epochs=2), bench_dir, "0", tmp_path / "part", CPU, stop_after=1,
                              quiet=True)
    assert cli("predict", "--checkpoint", part, "--submission", tmp_path / "s", "--quiet") == 2
    assert not (tmp_path / "s").exists()
    (tmp_path / "taken").mkdir()
    assert cli("predict", "--checkpoint", root / "run", "--submission", tmp_path / "taken", "--quiet") == 2


def test_cli_errors_are_one_line(tmp_path, make_benchmark, capsys):
    bench = make_benchmark()
    assert cli("train", "--benchmark", tmp_path / "nope", "--split", "0") == 2
    assert cli("train", "--benchmark", bench, "--split", "0", "--preset", "nope") == 2
    assert cli("train", "--benchmark", bench, "--split", "7", "--preset", "invad-tiny") == 2
    assert cli("train", "--benchmark", bench, "--split", "0", "--preset", "invad-tiny", "--epochs", "0") == 2
    assert cli("train", "--benchmark", bench, "--split", "0", "--weights", tmp_path / "w.pth") == 2
    assert cli("predict", "--checkpoint", tmp_path / "none.pt", "--submission", tmp_path / "s") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("error: ") for line in err), err
    assert "unknown preset 'nope'" in err[1] and "no split '7'" in err[2]


def test_unreachable_hub_fails_fast_naming_the_offline_ways(make_benchmark, tmp_path, capsys, monkeypatch):
    # forgetting --preset means the published preset and its hub weights: with neither a cached copy
    # nor a way to download one, say so at once instead of after the hub client's minute of retries
    from baselines.common import encoder

    monkeypatch.setattr(encoder, "_cached", lambda *a: False)  # whatever this machine has cached
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    for var in ("HF_HUB_OFFLINE", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    bench = make_benchmark()
    t0 = time.monotonic()
    assert cli("train", "--benchmark", bench, "--split", "0", "--out", tmp_path / "run", "--batch-size", "4") == 2
    assert time.monotonic() - t0 < 15
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: preset 'invad': timm's pretrained wide_resnet50_2.racm_in1k")
    assert "127.0.0.1:9 cannot be reached" in err[0]
    assert err[0].endswith("offline, pass --weights FILE, or use --preset invad-tiny (weights included)")
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli("run", "--benchmark", bench, "--out", tmp_path / "run", "--submission", tmp_path / "sub",
               "--batch-size", "4") == 2
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "sub").exists()


def test_unwritable_submission_fails_before_training(make_benchmark, tmp_path, capsys):
    bench = make_benchmark()
    (tmp_path / "file").write_text("")
    assert cli("run", "--benchmark", bench, "--preset", "invad-tiny", "--out", tmp_path / "run",
               "--submission", tmp_path / "file" / "sub", "--quiet") == 2
    err = capsys.readouterr().err
    assert "cannot write here" in err and "pick another --submission" in err
    assert not (tmp_path / "run").exists()


def test_help_is_plain_text_and_every_argument_is_explained(capsys):
    import argparse

    from baselines.common.cli import build_parser

    parser = build_parser("invad", "python -m baselines.invad", "invad")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest for c in sub._choices_actions} == {"train", "predict", "run", "presets"}
    assert all(c.help for c in sub._choices_actions)
    for name, p in [("", parser), *sub.choices.items()]:
        assert p.description, name
        assert all(a.help for a in p._actions if not isinstance(a, argparse._SubParsersAction)), name
        with pytest.raises(SystemExit) as e:
            cli(*([name] if name else []), "--help")
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "``" not in out and ":func:" not in out and ":mod:" not in out, name  # no reST
        if name in ("train", "run"):
            assert "invad, invad-lite, invad-tiny (default invad; offline: invad-tiny" in " ".join(out.split())


def test_presets_command_lists_the_registry(capsys):
    assert cli("presets") == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.strip().splitlines()] == ["invad", "invad-lite", "invad-tiny"]


def test_run_trains_every_split_then_skips(make_benchmark, tmp_path, capsys):
    bench = make_benchmark(splits=("0", "1"), n_train=3, n_test_normal=1, n_test_anomalous=1)
    args = ["run", "--benchmark", bench, "--preset", "invad-tiny", "--out", tmp_path / "run",
            "--submission", tmp_path / "sub", "--epochs", "1", "--batch-size", "3", "--quiet", "--threads", "1"]
    assert cli(*args) == 0
    assert evaluator.validate(tmp_path / "sub", bench) == []
    assert json.loads((tmp_path / "sub" / "submission.json").read_text())["splits"] == ["0", "1"]
    stamp = json.loads((tmp_path / "run" / "predicted.json").read_text())
    assert sorted(stamp["checkpoints"]) == ["0/checkpoint.pt", "1/checkpoint.pt"]
    capsys.readouterr()
    assert cli(*args[:-3]) == 0  # rerun (with progress output): nothing to train, nothing to predict
    out = capsys.readouterr().out
    assert out.count("already trained") == 2 and "submission up to date" in out
    # a changed preset is refused rather than mixed into the same run folder
    assert cli(*[a if a != "1" else "2" for a in args]) == 2
