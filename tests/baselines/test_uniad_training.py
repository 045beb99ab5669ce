"""UniAD through the shared engine: dropped last batch, exact cache and resume despite jitter and dropout, scores.csv."""

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import baselines.uniad  # noqa: F401
import evaluator
from baselines.common import engine
from baselines.common.checkpoint import load_checkpoint
from baselines.common.cli import main
from baselines.common.errors import BaselineError
from baselines.common.maps import pooled_max
from baselines.common.model import normalisation
from baselines.common.predict import load_trained, predict
from baselines.common.presets import get_preset
from baselines.common.runtime import Runtime
from benchmark import open_benchmark
from tests.baselines.conftest import same_optimizer, same_state

CPU = Runtime(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def small_preset(**kw):
    """uniad-tiny at 64×64 input, batch 4 (6 images: one full batch per epoch, two images dropped)."""
    return get_preset("uniad-tiny").replace(**{**dict(image_size=64, batch_size=4, epochs=3), **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import write_benchmark

    root = tmp_path_factory.mktemp("uniad")
    bench = write_benchmark(root / "bench", splits=("0", "1"), n_train=6, n_test_normal=3, n_test_anomalous=3)
    preset = small_preset()
    ckpts = [engine.train_split(preset, bench, s, root / "run", CPU, quiet=True) for s in ("0", "1")]
    return bench, preset, ckpts, root


def test_last_incomplete_batch_dropped(trained):
    _, preset, ckpts, _ = trained
    state = load_checkpoint(ckpts[0])
    assert state["finished"] and [h["epoch"] for h in state["history"]] == [1, 2, 3]
    # 6 images, batch 4: one step per epoch (two without drop_last)
    assert int(state["model"]["train_steps"]) == 3
    assert [h["steps"] for h in state["history"]] == [1, 1, 1]
    # the two dropped images are encoded at the end of epoch 1 (in a full batch, padded with cached
    # images): every later epoch reads the cache only
    assert [h["cached_steps"] for h in state["history"]] == [0, 1, 1]
    lrs = [h["lr"] for h in state["history"]]
    assert lrs[:2] == [preset.lr] * 2 and lrs[2] == pytest.approx(preset.lr * 0.1)


def test_feature_cache_is_bit_identical_despite_jitter_and_dropout(trained, tmp_path):
    bench, preset, ckpts, _ = trained
    plain = engine.train_split(preset.replace(cache_features=False), bench, "0", tmp_path / "p", CPU, quiet=True)
    a, b = load_checkpoint(ckpts[0]), load_checkpoint(plain)
    assert not any(h["cached_steps"] for h in b["history"])
    assert same_state(a["model"], b["model"]) and same_optimizer(a["optimizer"], b["optimizer"])


def test_resume_is_bit_identical(trained, tmp_path):
    bench, preset, ckpts, _ = trained
    part = engine.train_split(preset, bench, "0", tmp_path / "r", CPU, stop_after=1, quiet=True)
    assert not load_checkpoint(part)["finished"]
    torch.manual_seed(1234)  # whatever the global generators hold when training continues
    resumed = engine.train_split(preset, bench, "0", tmp_path / "r", CPU, resume=True, quiet=True)
    a, b = load_checkpoint(ckpts[0]), load_checkpoint(resumed)
    assert b["finished"] and same_state(a["model"], b["model"]) and same_optimizer(a["optimizer"], b["optimizer"])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_fewer_images_than_one_batch_is_a_user_error(trained, tmp_path):
    bench, preset, _, _ = trained
    with pytest.raises(BaselineError, match="fewer than one batch of 8"):
        engine.train_split(preset.replace(batch_size=8), bench, "0", tmp_path / "x", CPU, quiet=True)


def test_submission_carries_the_pooled_image_scores(trained):
    bench_dir, preset, ckpts, root = trained
    sub = predict([root / "run"], root / "sub", bench_dir, device=torch.device("cpu"), quiet=True)
    assert evaluator.validate(sub, bench_dir) == []
    m = json.loads((sub / "submission.json").read_text())["method"]
    assert (m["name"], m["preset"], m["published"], m["paper"]) == (
        "UniAD-tiny", "uniad-tiny", False, "https://arxiv.org/abs/2206.03687")
    bench = open_benchmark(bench_dir)
    from baselines.common.data import SplitImages

    model, _, _ = load_trained(ckpts[0], torch.device("cpu"))
    data = SplitImages(bench, "0", "test", 64, *normalisation(preset))
    x = torch.stack([data[i][0] for i in range(len(data))])
    with torch.no_grad():
        maps = model.anomaly_map(*model(x), (64, 64))
    expected = pooled_max(maps, 16).numpy()
    with open(sub / "0" / "scores.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["img_path", "score"]
    got = {p: float(s) for p, s in rows[1:]}
    assert [it.img_path for it in data.items] == sorted(got)
    np.testing.assert_array_equal([got[it.img_path] for it in data.items], expected)
    # the pooled score is not the map's maximum, and it is what the evaluator ranks
    assert not np.allclose(expected, maps.flatten(1).amax(1).double().numpy())
    result = evaluator.score(sub, bench_dir, profile="exact")
    labels = [it.anomaly for it in data.items]
    assert result["splits"]["0"]["I-AUROC"] == pytest.approx(roc_auc_score(labels, expected), abs=1e-12)


def test_cli_lists_the_presets(capsys):
    assert main("uniad", ["presets"], default_preset="uniad") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in out] == ["uniad", "uniad-tiny"]
    assert "pool 16" in out[0]
