"""ViTAD through the shared engine, prediction and command line: drop_last, AdamW, resume, scores.csv."""

import csv
import json

import numpy as np
import pytest
import torch

import baselines.vitad  # noqa: F401
import evaluator
from baselines.common import engine
from baselines.common.checkpoint import load_checkpoint
from baselines.common.cli import main
from baselines.common.maps import pooled_max
from baselines.common.predict import load_trained, predict
from baselines.common.presets import get_preset
from baselines.common.runtime import Runtime
from benchmark import open_benchmark
from tests.baselines.conftest import same_state

CPU = Runtime(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def small_preset(**kw):
    """vitad-tiny at 64×64 (its 2×2 token grid), batch 4 of 6 images: one step per epoch, 2 images dropped."""
    return get_preset("vitad-tiny").replace(**{**dict(image_size=64, batch_size=4, epochs=3), **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import write_benchmark

    root = tmp_path_factory.mktemp("vitad")
    bench = write_benchmark(root / "bench", splits=("0", "1"), n_train=6, n_test_normal=2, n_test_anomalous=2)
    preset = small_preset()
    ckpts = [engine.train_split(preset, bench, s, root / "run", CPU, quiet=True) for s in ("0", "1")]
    return bench, preset, ckpts, root


def test_adamw_steps_and_drop_the_incomplete_batch(trained):
    _, preset, ckpts, _ = trained
    state = load_checkpoint(ckpts[0])
    assert state["finished"] and state["epoch"] == 3
    losses = [h["loss"] for h in state["history"]]
    assert losses[-1] < 0.8 * losses[0], losses  # it learns, in three steps
    # 6 images, batch 4, drop_last: one optimiser step per epoch
    assert all(int(s["step"]) == 3 for s in state["optimizer"]["state"].values())
    groups = state["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.0, 1e-4] and all(g["eps"] == 1e-8 for g in groups)
    assert [h["steps"] for h in state["history"]] == [1, 1, 1]
    # the two dropped images are encoded at the end of epoch 1: epoch 2 already reads no image
    assert [h["cached_steps"] for h in state["history"]] == [0, 1, 1]
    lrs = [h["lr"] for h in state["history"]]
    assert lrs == pytest.approx([preset.lr, preset.lr, preset.lr * 0.1])


def test_checkpoint_round_trip_and_resume_bit_identical(trained, tmp_path):
    bench, preset, ckpts, _ = trained
    # the whole model, the teacher's resampled position embedding included, comes back from the file
    model, p2, state = load_trained(ckpts[0], torch.device("cpu"))
    assert p2 == preset and same_state(model.state_dict(), state["model"]) and not model.training
    part = engine.train_split(preset, bench, "0", tmp_path / "b", CPU, stop_after=1, quiet=True)
    assert not load_checkpoint(part)["finished"]
    resumed = load_checkpoint(engine.train_split(preset, bench, "0", tmp_path / "b", CPU, resume=True, quiet=True))
    straight = load_checkpoint(ckpts[0])
    assert same_state(straight["model"], resumed["model"])
    for k, v in straight["optimizer"]["state"].items():
        assert same_state(v, resumed["optimizer"]["state"][k])
    assert [h["loss"] for h in straight["history"]] == [h["loss"] for h in resumed["history"]]


def test_submission_carries_the_pooled_image_score(trained):
    bench_dir, preset, ckpts, root = trained
    sub = predict([root / "run"], root / "sub", bench_dir, device=torch.device("cpu"), quiet=True)
    assert evaluator.validate(sub, bench_dir) == []
    method = json.loads((sub / "submission.json").read_text())["method"]
    assert (method["name"], method["preset"], method["published"]) == ("ViTAD-tiny", "vitad-tiny", False)
    assert method["paper"] == "https://arxiv.org/abs/2312.07495" and method["code"] == ""
    assert method["image_score"] == "max of the 16x16 average-pooled map (scores.csv)"
    bench = open_benchmark(bench_dir)
    model, _, _ = load_trained(ckpts[0], torch.device("cpu"))
    items = bench.items("0")
    from baselines.common.data import SplitImages
    from baselines.common.model import normalisation

    data = SplitImages(bench, "0", "test", 64, *normalisation(preset))
    x = torch.stack([data[i][0] for i in range(len(data))])
    with torch.no_grad():
        maps = model.anomaly_map(*model(x), (64, 64)).float()
    with open(sub / "0" / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["img_path"] for r in rows] == sorted(it.img_path for it in items)
    expected = dict(zip((it.img_path for it in items), pooled_max(maps, 16).tolist()))
    assert all(float(r["score"]) == pytest.approx(expected[r["img_path"]], rel=1e-5) for r in rows)
    # the maps themselves are at the benchmark's evaluation size (32×32), float16
    arr = np.load(sub / "0" / "maps" / items[0].img_path.replace(".jpg", ".npy"))
    assert arr.dtype == np.float16 and arr.shape == (32, 32)


def test_pool_larger_than_the_maps_is_a_user_error(trained, tmp_path, capsys):
    bench_dir, preset, _, _ = trained
    engine.train_split(small_preset(epochs=1, pool=65), bench_dir, "0", tmp_path / "r", CPU, quiet=True)
    rc = main("vitad", ["predict", "--checkpoint", str(tmp_path / "r"), "--submission", str(tmp_path / "s"),
                        "--quiet"])
    assert rc == 2 and not (tmp_path / "s").exists()
    assert "pool 65 does not fit its 64x64 maps" in capsys.readouterr().err


def test_fewer_images_than_one_batch_is_a_user_error(make_benchmark, tmp_path):
    from baselines.common.errors import BaselineError

    bench = make_benchmark(n_train=3)
    with pytest.raises(BaselineError, match="fewer than one batch of 4"):
        engine.train_split(small_preset(), bench, "0", tmp_path / "r", CPU, quiet=True)


def test_presets_command(capsys):
    assert main("vitad", ["presets"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in out] == ["vitad", "vitad-tiny"]
    assert "vit_small_patch16_224.dino" in out[0]
