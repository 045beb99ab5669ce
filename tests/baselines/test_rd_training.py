"""RD and RD++ through the shared engine: resume, checkpoints, submissions, and the RD++ training rules."""

import json

import pytest
import torch
import torch.multiprocessing as mp

import baselines.rd  # noqa: F401  (registers the presets)
import baselines.rdpp  # noqa: F401
import evaluator
from baselines.common import engine
from baselines.common.checkpoint import load_checkpoint
from baselines.common.cli import main
from baselines.common.predict import load_trained, predict
from baselines.common.presets import get_preset
from baselines.common.runtime import Runtime
from tests.baselines.conftest import same_state
from tests.baselines.test_engine import _ddp_worker, _free_port

CPU = Runtime(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
TINY = ("rd-tiny", "rdpp-tiny")


def small(name: str, **kw):
    """The tiny preset at 64×64 input, batch 4, 2 epochs: seconds per run."""
    return get_preset(name).replace(**{**dict(image_size=64, batch_size=4, epochs=2), **kw})


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from tests.conftest import write_benchmark

    return write_benchmark(tmp_path_factory.mktemp("rd") / "bench", n_train=6, n_test_normal=2, n_test_anomalous=2)


@pytest.fixture(scope="module", params=TINY)
def trained(request, bench, tmp_path_factory):
    preset = small(request.param)
    ckpt = engine.train_split(preset, bench, "0", tmp_path_factory.mktemp(request.param) / "run", CPU, quiet=True)
    return preset, ckpt


def test_resume_is_bit_identical(trained, bench, tmp_path):
    preset, straight = trained
    part = engine.train_split(preset, bench, "0", tmp_path / "b", CPU, stop_after=1, quiet=True)
    assert not load_checkpoint(part)["finished"]
    resumed = engine.train_split(preset, bench, "0", tmp_path / "b", CPU, resume=True, quiet=True)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert b["finished"] and b["epoch"] == 2 and a["preset"] == b["preset"]
    assert same_state(a["model"], b["model"])
    for k in a["optimizer"]["state"]:
        assert same_state(a["optimizer"]["state"][k], b["optimizer"]["state"][k])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_checkpoint_round_trip(trained):
    preset, ckpt = trained
    state = load_checkpoint(ckpt)
    model, p2, _ = load_trained(ckpt, torch.device("cpu"))
    assert p2 == preset and same_state(model.state_dict(), state["model"])
    fresh = engine.build_model(preset, weights="none")
    fresh.load_state_dict(state["model"])
    fresh.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.anomaly_map(*model(x), (32, 32)), fresh.anomaly_map(*fresh(x), (32, 32)))


def test_predict_writes_a_valid_submission(trained, bench, tmp_path):
    preset, ckpt = trained
    sub = predict([ckpt], tmp_path / "sub", bench, device=torch.device("cpu"), quiet=True)
    assert evaluator.validate(sub, bench) == []
    m = json.loads((sub / "submission.json").read_text())["method"]
    assert (m["name"], m["preset"], m["published"], m["code"]) == (preset.display_name, preset.name, False, "")
    assert m["paper"] == get_preset(preset.name.removesuffix("-tiny")).paper
    assert not (sub / "0" / "scores.csv").exists()  # image score: the map's maximum (pooling_ks=None)


def test_rdpp_steps_on_every_second_batch_and_caches_clean_features(bench, tmp_path):
    # 6 images, batch 2 → 3 batches per epoch, 2 epochs: global iterations 0..5, steps at 0, 2, 4
    preset = small("rdpp-tiny", batch_size=2, step_every=2)
    state = load_checkpoint(engine.train_split(preset, bench, "0", tmp_path / "a", CPU, quiet=True))
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {3}
    # ... while every batch moved the BatchNorm statistics, as in the official loop
    tracked = {int(v) for k, v in state["model"].items() if k.endswith("num_batches_tracked")
               and not k.startswith("encoder.")}
    assert tracked == {6}
    assert [h["cached_steps"] for h in state["history"]] == [0, 3]
    # cached clean features give the training that recomputing them gives
    plain = load_checkpoint(engine.train_split(preset.replace(cache_features=False), bench, "0", tmp_path / "b",
                                               CPU, quiet=True))
    assert not any(h["cached_steps"] for h in plain["history"])
    for k in state["model"]:
        assert torch.equal(state["model"][k], plain["model"][k]), k  # bit-identical: the cache is exact


def test_drop_last_skips_the_incomplete_batch(bench, tmp_path):
    preset = small("rd-tiny", drop_last=True, cache_features=False)  # 6 images, batch 4: one batch per epoch
    state = load_checkpoint(engine.train_split(preset, bench, "0", tmp_path / "r", CPU, quiet=True))
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {2}
    with pytest.raises(engine.BaselineError, match="fewer than one batch"):
        engine.train_split(preset.replace(batch_size=8), bench, "0", tmp_path / "s", CPU, quiet=True)


@pytest.mark.parametrize("method, names", [("rd", ["rd", "rd-tiny"]), ("rdpp", ["rdpp", "rdpp-tiny"])])
def test_presets_command(method, names, capsys):
    assert main(method, ["presets"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()] == names


def test_rdpp_run_command(bench, tmp_path):
    args = ["run", "--benchmark", str(bench), "--preset", "rdpp-tiny", "--out", str(tmp_path / "run"),
            "--submission", str(tmp_path / "sub"), "--epochs", "1", "--batch-size", "3", "--quiet", "--threads", "1"]
    assert main("rdpp", args) == 0
    assert evaluator.validate(tmp_path / "sub", bench) == []
    assert main("rd", [a if a != "rdpp-tiny" else "rd-tiny" for a in args]) == 2  # another method's run folder


def _worker(*args):  # the spawned processes import this module, which registers RD++
    _ddp_worker(*args)


def test_rdpp_trains_under_ddp(bench, tmp_path):
    # two gloo processes, 3 images each per step: the noisy copies, the three forward outputs and the two
    # learning-rate groups go through DistributedDataParallel (ADer's RD++ trainer cannot run under DDP)
    preset = small("rdpp-tiny", epochs=1, batch_size=6)
    mp.spawn(_worker, args=(2, _free_port(), str(bench), str(tmp_path / "ddp"), preset.to_dict()), nprocs=2,
             join=True)
    state = load_checkpoint(tmp_path / "ddp" / "0" / "checkpoint.pt")
    assert state["finished"] and state["world_size"] == 2
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == [preset.lr, 5 * preset.lr]
    torch.manual_seed(preset.seed)
    init = engine.build_model(preset, weights="none").state_dict()
    for part in ("projection.", "bottleneck.", "decoder."):
        assert any(not torch.equal(init[k], v) for k, v in state["model"].items() if k.startswith(part)), part
