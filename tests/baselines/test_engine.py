"""Training engine: checkpoints, resume, feature cache, torchrun (gloo) — on tiny benchmark folders."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

import baselines.invad  # noqa: F401
from baselines.common import engine
from baselines.common.checkpoint import load_checkpoint
from baselines.common.errors import BaselineError
from baselines.common.predict import load_trained
from baselines.common.presets import Preset, get_preset
from baselines.common.runtime import Runtime, setup, teardown

CPU = Runtime(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def small_preset(**kw) -> Preset:
    """invad-tiny at 64×64 input, batch 4: a few seconds per run."""
    return get_preset("invad-tiny").replace(**{**dict(image_size=64, batch_size=4, epochs=3), **kw})


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One benchmark and one uninterrupted 3-epoch run, shared by the tests below."""
    from tests.conftest import write_benchmark

    root = tmp_path_factory.mktemp("engine")
    bench = write_benchmark(root / "bench", n_train=6)
    preset = small_preset()
    ckpt = engine.train_split(preset, bench, "0", root / "run", CPU, quiet=True)
    return bench, preset, ckpt


def test_train_writes_checkpoint_and_log(trained):
    bench, preset, ckpt = trained
    run = ckpt.parent.parent
    assert ckpt == run / "0" / "checkpoint.pt"
    state = load_checkpoint(ckpt)
    assert state["finished"] and state["epoch"] == 3 and state["split"] == "0"
    assert Preset.from_dict(state["preset"]) == preset
    assert state["benchmark"]["name"] == "tiny-ad" and state["weights"] == preset.weights
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    # the LR drops x0.1 after round(0.8 * 3) = 2 epochs
    lrs = [h["lr"] for h in state["history"]]
    assert lrs[:2] == [preset.lr] * 2 and lrs[2] == pytest.approx(preset.lr * 0.1)
    assert [h["cached_features"] for h in state["history"]] == [False, True, True]
    log = json.loads((run / "0" / "train_log.json").read_text())
    assert log["finished"] and log["params"] == state["params"]
    assert not list((run / "0").glob(".*.tmp"))  # atomic writes leave nothing behind


def test_checkpoint_round_trip(trained):
    _, preset, ckpt = trained
    state = load_checkpoint(ckpt)
    model, p2, _ = load_trained(ckpt, torch.device("cpu"))
    assert p2 == preset
    assert _same_state(model.state_dict(), state["model"])
    fresh = engine.build_model(preset, weights="none")
    fresh.load_state_dict(state["model"])
    fresh.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.anomaly_map(*model(x), (32, 32)), fresh.anomaly_map(*fresh(x), (32, 32)),
                                   rtol=0, atol=0)


def test_resume_continues_identically(trained, tmp_path):
    bench, preset, straight = trained
    part = engine.train_split(preset, bench, "0", tmp_path / "b", CPU, stop_after=1, quiet=True)
    assert not load_checkpoint(part)["finished"]
    with pytest.raises(BaselineError, match="--resume"):
        engine.train_split(preset, bench, "0", tmp_path / "b", CPU, quiet=True)
    with pytest.raises(BaselineError, match="other settings"):
        engine.train_split(preset.replace(epochs=4), bench, "0", tmp_path / "b", CPU, resume=True, quiet=True)
    resumed = engine.train_split(preset, bench, "0", tmp_path / "b", CPU, resume=True, quiet=True)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert b["finished"] and b["epoch"] == 3
    assert _same_state(a["model"], b["model"])
    assert _same_state(a["optimizer"]["state"][0], b["optimizer"]["state"][0])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    # a finished checkpoint is left alone when resuming
    mtime = os.stat(resumed).st_mtime_ns
    engine.train_split(preset, bench, "0", tmp_path / "b", CPU, resume=True, quiet=True)
    assert os.stat(resumed).st_mtime_ns == mtime


def test_feature_cache_is_exact(trained, tmp_path):
    bench, preset, cached = trained
    plain = engine.train_split(preset.replace(cache_features=False), bench, "0", tmp_path / "p", CPU, quiet=True)
    a, b = load_checkpoint(cached), load_checkpoint(plain)
    assert not any(h["cached_features"] for h in b["history"])
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5)


def test_empty_training_set_is_a_user_error(make_benchmark, tmp_path):
    bench = make_benchmark(n_train=0)
    with pytest.raises(BaselineError, match="no training images"):
        engine.train_split(small_preset(), bench, "0", tmp_path / "r", CPU, quiet=True)


def _ddp_worker(rank, world, port, bench, out, preset_dict):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    rt = setup("cpu")
    try:
        engine.train_split(Preset.from_dict(preset_dict), bench, "0", out, rt, quiet=True)
    finally:
        teardown(rt)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_data_parallel_gloo_two_processes(make_benchmark, tmp_path):
    bench = make_benchmark(n_train=6)
    preset = small_preset(epochs=2)
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(bench), str(tmp_path / "ddp"), preset.to_dict()), nprocs=2,
             join=True)
    state = load_checkpoint(tmp_path / "ddp" / "0" / "checkpoint.pt")
    assert state["finished"] and state["world_size"] == 2
    # each process saw half of every global batch of 4; 6 images → 2 steps per epoch
    assert len(state["history"]) == 2 and all(torch.isfinite(torch.tensor(h["loss"])) for h in state["history"])
    torch.manual_seed(preset.seed)  # the engine's initialisation
    init = engine.build_model(preset, weights="none").state_dict()
    trainable = [k for k in state["model"] if not k.startswith("encoder.")]
    assert not all(torch.equal(init[k], state["model"][k]) for k in trainable)  # it did train
