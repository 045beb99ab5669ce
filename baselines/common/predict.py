"""Predicting anomaly maps of a split's test images into a submission folder (SPEC §4).

Maps go through :class:`evaluator.submission.SubmissionWriter`: float16
``.npy`` at the benchmark's evaluation size (resized with the protocol's
Pillow bilinear filter when the model's input size differs). Image scores:
with the preset's ``pool`` = k, the maximum of the k×k average-pooled map at
the model's input size, written to ``scores.csv`` (the method's own score, as
ADer's evaluator computes it with ``pooling_ks``); otherwise no
``scores.csv``, and the score is the map's maximum, as the published
evaluation of InvAD uses. ``submission.json``'s method block comes from the
checkpoint's preset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

import baselines
from baselines.common.checkpoint import check_model_version, find_checkpoints, load_checkpoint
from baselines.common.data import SplitImages
from baselines.common.errors import BaselineError
from baselines.common.maps import pooled_max
from baselines.common.model import ReconstructionModel, build_model, normalisation
from baselines.common.presets import Preset
from benchmark import Benchmark, open_benchmark
from benchmark.protocol import resize_map
from evaluator.submission import SubmissionWriter


def method_block(preset: Preset, params: dict) -> dict:
    """``submission.json`` → ``method``, filled from the preset (schema: SPEC §4)."""
    return {
        "name": preset.display_name,
        "preset": preset.name,
        "published": preset.published,
        "paper": preset.paper,
        "code": preset.code,
        "backbone": preset.backbone,
        "image_size": preset.image_size,
        "params_m": round(params["total"] / 1e6, 3),
        "params_trainable_m": round(params["trainable"] / 1e6, 3),
        "epochs": preset.epochs,
        "description": preset.description,
        "implementation": f"coco-ad-suite baselines {baselines.__version__}",
    } | ({"image_score": f"max of the {preset.pool}x{preset.pool} average-pooled map (scores.csv)"}
         if preset.pool else {})


def load_trained(path: Path, device: torch.device) -> tuple[ReconstructionModel, Preset, dict]:
    """(model in eval mode on ``device``, its preset, the checkpoint dict) of a finished checkpoint."""
    state = load_checkpoint(path)
    if not state.get("finished"):
        p = state["preset"]
        raise BaselineError(
            f"{path}: training not finished ({state['epoch']} of {p['epochs']} epochs); continue it with "
            f"`train --resume` first"
        )
    preset = Preset.from_dict(state["preset"])
    model = build_model(preset, weights="none")  # every weight, encoder included, comes from the checkpoint
    check_model_version(path, state, model)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, preset, state


@torch.no_grad()
def predict_split(model: ReconstructionModel, preset: Preset, bench: Benchmark, split: str,
                  writer: SubmissionWriter, device: torch.device, batch_size: int = 16,
                  workers: int = 0, quiet: bool = False) -> int:
    """Write the map of every test image of ``split``; returns the number of images."""
    mean, std = normalisation(preset)
    data = SplitImages(bench, split, "test", preset.image_size, mean, std, resize=preset.resize)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    size = (preset.image_size, preset.image_size)
    if preset.pool is not None and not 1 <= preset.pool <= preset.image_size:
        raise BaselineError(f"preset {preset.name!r}: image-score pool {preset.pool} does not fit its "
                            f"{preset.image_size}x{preset.image_size} maps")
    eval_size = bench.eval_size
    with tqdm(total=len(data), disable=quiet, desc=f"predict split {split}", unit="img", dynamic_ncols=True) as bar:
        for x, idx in loader:
            feats, recs = model(x.to(device, non_blocking=True))
            maps = model.anomaly_map(feats, recs, size).float().cpu()
            scores = pooled_max(maps, preset.pool).tolist() if preset.pool else [None] * len(maps)
            for amap, score, i in zip(maps.numpy(), scores, idx.tolist()):
                if amap.shape != eval_size:
                    amap = resize_map(amap, eval_size, bench.protocol)
                writer.add(split, data.items[i].img_path, np.ascontiguousarray(amap), score=score)
            bar.update(len(idx))
    return len(data)


def predict(checkpoints: list[str | Path], submission: str | Path, benchmark: str | Path | None = None, *,
            device: torch.device, batch_size: int = 16, workers: int = 0, overwrite: bool = False,
            quiet: bool = False) -> Path:
    """One submission folder holding the test maps of every checkpoint's split.

    ``checkpoints``: checkpoint files or run folders (→ their
    ``*/checkpoint.pt``), all trained with the same preset on the same
    benchmark. ``benchmark`` defaults to the folder recorded at training.
    """
    files = find_checkpoints(list(checkpoints))
    heads = []
    for f in files:
        state = load_checkpoint(f)
        heads.append((f, state["split"], state["preset"], state["benchmark"], state["params"]))
        del state
    splits = [h[1] for h in heads]
    if len(set(splits)) != len(splits):
        raise BaselineError(f"two checkpoints for the same split among {', '.join(map(str, files))}")
    if any(h[2] != heads[0][2] for h in heads):
        raise BaselineError(
            "the checkpoints were trained with different presets; predict them into separate submissions"
        )
    info = heads[0][3]
    bench = open_benchmark(benchmark if benchmark is not None else info["path"])
    if (bench.name, bench.version) != (info["name"], info["version"]):
        raise BaselineError(
            f"{bench.root}: benchmark {bench.name} v{bench.version}, but the model was trained on "
            f"{info['name']} v{info['version']}"
        )
    for h in heads:
        bench.split(h[1])  # a split this benchmark lacks is a one-line error
    order = sorted(range(len(heads)), key=lambda i: bench.split_ids.index(heads[i][1]))
    preset = Preset.from_dict(heads[0][2])
    writer = SubmissionWriter(submission, bench, method=method_block(preset, heads[0][4]),
                              splits=[heads[i][1] for i in order], overwrite=overwrite)
    with writer:
        for i in order:
            model, preset, _ = load_trained(files[i], device)
            predict_split(model, preset, bench, heads[i][1], writer, device, batch_size, workers, quiet)
            del model
    return Path(submission)
