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
from tests.baselines.conftest import same_optimizer, same_state

CPU = Runtime(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def small_preset(**kw) -> Preset:
    """invad-tiny at 64×64 input, batch 4: a few seconds per run."""
    return get_preset("invad-tiny").replace(**{**dict(image_size=64, batch_size=4, epochs=3), **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One benchmark and one uninterrupted 3-epoch run, shared by the tests below."""
    from tests.conftest import write_benchmark

    root = tmp_path_factory.mktemp("engine")
    bench = write_benchmark(root / "bench", n_train=10)  # 2 batches of 4 per epoch, 2 images dropped
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
    assert state["format"] == 2 and state["model_version"] == 2
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    # the LR drops x0.1 after int(0.8 * 3) = 2 epochs
    lrs = [h["lr"] for h in state["history"]]
    assert lrs[:2] == [preset.lr] * 2 and lrs[2] == pytest.approx(preset.lr * 0.1)
    # 10 images, batch 4: the last incomplete batch is dropped (ADer's drop_last=True)
    assert [h["steps"] for h in state["history"]] == [2, 2, 2]
    # the first epoch computes every feature; later batches whose images were all seen reuse them
    cached = [h["cached_steps"] for h in state["history"]]
    assert cached[0] == 0 and sum(cached) >= 1
    log = json.loads((run / "0" / "train_log.json").read_text())
    assert log["finished"] and log["params"] == state["params"]
    assert not list((run / "0").glob(".*.tmp"))  # atomic writes leave nothing behind


def test_checkpoint_round_trip(trained):
    _, preset, ckpt = trained
    state = load_checkpoint(ckpt)
    model, p2, _ = load_trained(ckpt, torch.device("cpu"))
    assert p2 == preset
    assert same_state(model.state_dict(), state["model"])
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
    assert same_state(a["model"], b["model"])
    assert same_optimizer(a["optimizer"], b["optimizer"])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    # a finished checkpoint is left alone when resuming
    mtime = os.stat(resumed).st_mtime_ns
    engine.train_split(preset, bench, "0", tmp_path / "b", CPU, resume=True, quiet=True)
    assert os.stat(resumed).st_mtime_ns == mtime


def test_feature_cache_is_exact(trained, tmp_path):
    # every training batch has the same size, so cached features are the very bits the encoder
    # would compute again: the models and the optimiser states are equal, not merely close
    bench, preset, cached = trained
    plain = engine.train_split(preset.replace(cache_features=False), bench, "0", tmp_path / "p", CPU, quiet=True)
    a, b = load_checkpoint(cached), load_checkpoint(plain)
    assert sum(h["cached_steps"] for h in a["history"]) >= 1
    assert not any(h["cached_steps"] for h in b["history"])
    assert same_state(a["model"], b["model"])
    assert same_optimizer(a["optimizer"], b["optimizer"])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_old_checkpoints_are_refused_with_their_version(trained, tmp_path):
    _, preset, ckpt = trained
    state = load_checkpoint(ckpt)
    old = dict(state, format=1, versions={"baselines": "0.1.0"})
    old.pop("model_version")
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(BaselineError, match=r"format 1 \(written by baselines 0\.1\.0\); this version reads "
                                            r"format 2 only") as e:
        load_checkpoint(tmp_path / "old.pt")
    assert "\n" not in str(e.value)
    torch.save(dict(state, model_version=1), tmp_path / "v1.pt")
    with pytest.raises(BaselineError, match="invad architecture version 1, this version of the baselines builds "
                                            "version 2"):
        load_trained(tmp_path / "v1.pt", torch.device("cpu"))


def test_unwritable_output_fails_before_training(make_benchmark, tmp_path):
    bench = make_benchmark(n_train=4)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(BaselineError, match=r"cannot write here .*pick another --out"):
        engine.train_split(small_preset(), bench, "0", tmp_path / "file" / "run", CPU, quiet=True)
    assert (tmp_path / "file").read_text() == "not a folder"


def test_fewer_images_than_a_batch_is_a_user_error(make_benchmark, tmp_path):
    bench = make_benchmark(n_train=3)
    with pytest.raises(BaselineError, match="3 training images, fewer than one batch of 4"):
        engine.train_split(small_preset(), bench, "0", tmp_path / "r", CPU, quiet=True)
    assert not (tmp_path / "r").exists()


def test_empty_training_set_is_a_user_error(make_benchmark, tmp_path):
    bench = make_benchmark(n_train=0)
    with pytest.raises(BaselineError, match="no training images"):
        engine.train_split(small_preset(), bench, "0", tmp_path / "r", CPU, quiet=True)


def _only_rank_0_writes(*args, **kwargs):
    raise AssertionError("a process other than rank 0 wrote a file")


def _ddp_worker(rank, world, port, bench, out, preset_dict):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    if rank != 0:  # the engine's only writers
        engine.save_checkpoint = engine.atomic_write_json = engine.check_writable = _only_rank_0_writes
    rt = setup("cpu")
    try:
        engine.train_split(Preset.from_dict(preset_dict), bench, "0", out, rt, quiet=True)
    finally:
        teardown(rt)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_the_model_of_one_with_the_whole_batch(make_benchmark, tmp_path):
    """DDP over gloo, global batch 4 split 2 + 2, against one process with batches of 4 (2 epochs, 1 step each).

    Same seed, same initial weights, same global batches (the sampler's
    permutation does not depend on the number of processes), batch norms
    synchronised: the same losses, statistics and gradients, summed in
    another order (DDP averages two half-batch gradients, the synchronised
    batch norm sums two halves), so they agree to float32 rounding (measured
    ~1e-6 relative; without synchronised batch norms the gradients differ by
    ~130 %). The weights agree less tightly, for a reason of Adam's: with
    beta1 = 0 a step moves every weight by about lr, whatever the size of its
    gradient, so a gradient component that is zero up to rounding (biases
    before a batch norm, ...) steps ±lr at random. Each weight is therefore
    bounded by 2 Σ_t lr_t √((1 − β2^t) / (1 − β2)), and the reconstructions,
    which such weights barely touch, agree to 2e-4 (measured 2e-5).
    """
    bench = make_benchmark(n_train=5)  # one batch of 4 per epoch; the 5th image is dropped
    preset = small_preset(epochs=2, cache_features=False)
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(bench), str(tmp_path / "ddp"), preset.to_dict()), nprocs=2,
             join=True)
    assert sorted(p.name for p in (tmp_path / "ddp").rglob("*")) == ["0", "checkpoint.pt", "train_log.json"]
    ddp = load_checkpoint(tmp_path / "ddp" / "0" / "checkpoint.pt")
    assert ddp["finished"] and ddp["world_size"] == 2 and [h["steps"] for h in ddp["history"]] == [1, 1]
    one = load_checkpoint(engine.train_split(preset, bench, "0", tmp_path / "one", CPU, quiet=True))
    for a, b in zip(ddp["history"], one["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    # Adam's exp_avg with beta1 = 0 is the last step's (clipped) gradient
    grads = [torch.cat([st["exp_avg"].flatten().double() for _, st in sorted(c["optimizer"]["state"].items())])
             for c in (ddp, one)]
    assert float((grads[0] - grads[1]).norm() / grads[1].norm()) < 1e-5
    beta2 = preset.betas[1]
    bound = 2 * sum(h["lr"] * ((1 - beta2 ** t) / (1 - beta2)) ** 0.5 for t, h in enumerate(one["history"], 1))
    for k, v in one["model"].items():
        assert float((ddp["model"][k].double() - v.double()).abs().max()) <= bound, k
    stats = [k for k in one["model"] if k.startswith(("fuser.", "decoder.")) and "running_" in k]
    assert stats  # the fuser's batch norms took part, with statistics over the global batch
    for k in stats:  # a running mean follows the (±lr) bias of the conv before it, with momentum 0.1
        torch.testing.assert_close(ddp["model"][k], one["model"][k], rtol=1e-5, atol=0.1 * bound, msg=k)
    models = [load_trained(tmp_path / d / "0" / "checkpoint.pt", torch.device("cpu"))[0] for d in ("ddp", "one")]
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        recs = [m(x)[1] for m in models]
    for a, b in zip(*recs):
        assert float((a - b).norm() / b.norm()) < 2e-4


@pytest.mark.parametrize("epochs, milestone", [(100, 80), (12, 9), (3, 2), (1, None)])
def test_lr_drops_once_after_int_of_80_percent_of_the_epochs(epochs, milestone):
    # ADer: timm's StepLRScheduler stepped per iteration with decay_t = int(0.8 * epochs) epochs' iterations
    preset = small_preset(epochs=epochs)
    model = torch.nn.Linear(2, 2)
    model.trainable_parameters = lambda: list(model.parameters())
    model.optimizer_groups = lambda: [(list(model.parameters()), 1.0)]
    opt, sched = engine.make_optimizer(preset, model)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: nothing moves; the scheduler expects it first
        sched.step()
    first_low = next((e for e, lr in enumerate(lrs) if lr < preset.lr), None)
    assert first_low == milestone
    assert all(lr == pytest.approx(preset.lr * 0.1) for lr in lrs[milestone or epochs:])
