"""Training one model on the normal training images of one benchmark split.

:func:`train_split` is the whole loop, as ADer's trainers run it: the
preset's optimiser (Adam or AdamW, ADer's weight-decay groups), global-norm
gradient clipping, one step LR drop, the last incomplete batch dropped when
the preset says so (ADer's ``drop_last=True``; every published preset does),
a fixed seed, a checkpoint after every epoch (atomic) and ``resume``; tqdm
shows the loss. Under torchrun the model is wrapped in
DistributedDataParallel, the global batch is split over the processes and
the trainable batch norms are synchronised across them (ADer converts them
to SyncBN), so N processes train the model that one process would with the
whole batch.
A method may ask for more (:class:`~baselines.common.model.ReconstructionModel`
hooks): per-module learning-rate multipliers (``optimizer_groups``), extra
training inputs such as RD++'s noisy images (``training_inputs``), images
every epoch although the features are cached (``trains_on_images``);
``Preset.step_every`` = k steps the optimiser on every k-th global iteration
only (ADer's RD++ trainer).

Reproducibility: the model is initialised from ``preset.seed``; epoch ``e``
visits the images in the order of a permutation seeded by ``seed + e``
(:class:`~torch.utils.data.DistributedSampler`), so a run resumed after
epoch ``e`` continues exactly as the uninterrupted run would have.

Feature cache (``preset.cache_features``): the frozen encoder's output of an
image is kept after its first training batch and reused by later batches.
Only full-size batches store or read cached features, so the encoder computes
each image with the same kernels whether its features are cached or
recomputed: cached and uncached training give bit-identical models (on one
machine and thread count; the tests check it). The images an epoch drops are
encoded at its end in a full-size batch padded with cached images, so from
the second epoch on no image is read.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

import baselines
from baselines.common.checkpoint import FILENAME, FORMAT, check_model_version, load_checkpoint, save_checkpoint
from baselines.common.data import SplitImages
from baselines.common.errors import BaselineError
from baselines.common.model import ReconstructionModel, build_model, normalisation
from baselines.common.presets import Preset
from baselines.common.runtime import Runtime, all_reduce_mean, barrier, seed_everything, sync_batchnorm
from benchmark import Benchmark, open_benchmark
from contract.files import atomic_write_json

#: largest in-memory feature cache (bytes) before ``cache_features`` is ignored
CACHE_LIMIT = 4 << 30


def versions() -> dict:
    import timm

    return {"baselines": baselines.__version__, "torch": str(torch.__version__), "timm": str(timm.__version__)}


def split_dir(run_dir: str | Path, split: str) -> Path:
    return Path(run_dir) / str(split)


def checkpoint_path(run_dir: str | Path, split: str) -> Path:
    return split_dir(run_dir, split) / FILENAME


def is_finished(path: Path) -> bool:
    return path.is_file() and bool(load_checkpoint(path).get("finished"))


def check_writable(folder: str | Path, option: str) -> None:
    """One-line error naming ``option`` unless files can be created in ``folder``.

    Probes the folder, or its nearest existing parent, with a temporary file
    that is removed at once: nothing is left behind. Run before training, so
    that a read-only output folder fails now rather than when the first
    epoch's checkpoint is due.
    """
    folder = Path(folder).absolute()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise NotADirectoryError(20, "not a folder", str(probe))
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise BaselineError(f"{folder}: cannot write here ({probe}: {e.strerror or type(e).__name__}); "
                            f"pick another {option}") from None


_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def parameter_groups(preset: Preset, model: ReconstructionModel) -> list[dict]:
    """The optimiser's parameter groups.

    One group per :meth:`~ReconstructionModel.optimizer_groups` entry, at
    ``preset.lr`` × its multiplier. Under ``decay_matrices_only`` each is split
    as ADer's ``get_optim`` does: vectors (one dimension) and ``*.bias``
    tensors without weight decay, then every other tensor with
    ``preset.weight_decay``.
    """
    names = {id(p): n for n, p in model.named_parameters()}
    groups = []
    for params, scale in model.optimizer_groups():
        params, lr = list(params), preset.lr * scale
        if not (preset.decay_matrices_only and preset.weight_decay):
            groups.append({"params": params, "lr": lr})
            continue
        plain = [p for p in params if p.ndim <= 1 or names[id(p)].endswith(".bias")]
        decayed = [p for p in params if not (p.ndim <= 1 or names[id(p)].endswith(".bias"))]
        groups += [{"params": plain, "lr": lr, "weight_decay": 0.0},
                   {"params": decayed, "lr": lr, "weight_decay": preset.weight_decay}]
    return groups


def make_optimizer(preset: Preset, model: ReconstructionModel):
    """The preset's optimiser and step schedule: the LR × ``lr_gamma`` from epoch ``lr_milestone`` on.

    ADer steps timm's StepLRScheduler at every iteration (``use_iters=True``)
    with ``decay_t = int(0.8 · epochs) × iterations per epoch``: the same
    single drop at an epoch boundary (a second one would come only after
    2 · int(0.8 · epochs) ≥ epochs). A milestone of 0 (one epoch) means no
    drop; ADer divides by zero there.
    """
    if preset.optimizer not in _OPTIMIZERS:
        raise BaselineError(f"preset {preset.name!r}: unknown optimizer {preset.optimizer!r} "
                            f"(known: {', '.join(sorted(_OPTIMIZERS))})")
    opt = _OPTIMIZERS[preset.optimizer](parameter_groups(preset, model), lr=preset.lr, betas=tuple(preset.betas),
                                        eps=preset.eps, weight_decay=preset.weight_decay)
    milestones = [preset.lr_milestone] if preset.lr_milestone >= 1 else []
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=preset.lr_gamma)
    return opt, sched


def benchmark_info(bench: Benchmark) -> dict:
    return {"name": bench.name, "version": bench.version, "sha256": bench.sha256,
            "path": str(Path(bench.root).resolve())}


class FeatureCache:
    """Frozen-encoder outputs per training image, filled as batches first meet them."""

    def __init__(self):
        self.store: dict[int, list[torch.Tensor]] = {}

    def has(self, idx: list[int]) -> bool:
        return all(i in self.store for i in idx)

    def get(self, idx: list[int], device) -> list[torch.Tensor]:
        levels = zip(*(self.store[i] for i in idx))
        return [torch.stack(level).to(device) for level in levels]

    def put(self, idx: list[int], feats: list[torch.Tensor]) -> None:
        for j, i in enumerate(idx):
            self.store[i] = [f[j].detach().to("cpu", copy=True) for f in feats]


def _fill_cache(cache: FeatureCache, model: ReconstructionModel, dataset, order: list[int], batch: int,
                device, workers: int) -> None:
    """Encode the images of ``order`` that no training batch has cached (those the epoch dropped).

    Each goes through the encoder in a batch of the training size, padded
    with images already cached, so every cached feature still comes from a
    full-size batch (the cache stays exact) and the next epoch reads no image.
    """
    missing = [i for i in order if i not in cache.store]
    done = [i for i in order if i in cache.store]
    groups = [missing[k:k + batch] for k in range(0, len(missing), batch)]
    groups = [g for g in groups if batch - len(g) <= len(done)]
    if not groups:
        return
    loader = DataLoader(dataset, batch_sampler=[g + done[:batch - len(g)] for g in groups], num_workers=workers,
                        pin_memory=device.type == "cuda")
    with torch.no_grad():
        for g, (x, _) in zip(groups, loader):
            cache.put(g, model.encode(x.to(device, non_blocking=True)))


def _cache_bytes(model: ReconstructionModel, n_images: int, image_size: int) -> int:
    enc = model.encoder
    per = sum(c * (image_size // r) ** 2 for c, r in zip(enc.channels, enc.reductions))
    return 4 * per * n_images


def train_split(
    preset: Preset,
    benchmark: str | Path | Benchmark,
    split: str,
    run_dir: str | Path,
    rt: Runtime,
    *,
    resume: bool = False,
    force: bool = False,
    weights: str | None = None,
    workers: int | None = None,
    stop_after: int | None = None,
    quiet: bool = False,
) -> Path:
    """Train (or continue training) ``preset`` on split ``split``; return the checkpoint path.

    An existing checkpoint is continued with ``resume=True``, replaced with
    ``force=True``, and is otherwise an error. A finished one is left alone
    when resuming. ``stop_after`` ends this call after that many epochs (the
    checkpoint stays unfinished; resume later).
    """
    bench = benchmark if isinstance(benchmark, Benchmark) else open_benchmark(benchmark)
    split = str(split)
    bench.split(split)
    ckpt_file = checkpoint_path(run_dir, split)
    state = None
    if ckpt_file.exists() and not force:
        if not resume:
            raise BaselineError(f"{ckpt_file}: exists; pass --resume to continue it or --force to start over")
        state = load_checkpoint(ckpt_file)
        saved = Preset.from_dict(state["preset"])
        if saved != preset:
            raise BaselineError(
                f"{ckpt_file}: was trained with other settings (preset {saved.name!r}); "
                "use another --out or --force"
            )
        if state.get("finished"):
            if rt.is_main and not quiet:
                print(f"split {split}: already trained ({state['epoch']} epochs) -> {ckpt_file}")
            return ckpt_file
    if preset.batch_size % rt.world_size:
        raise BaselineError(f"batch size {preset.batch_size} is not divisible by {rt.world_size} processes")
    mean, std = normalisation(preset)
    dataset = SplitImages(bench, split, "train", preset.image_size, mean, std, resize=preset.resize)
    if len(dataset) == 0:
        raise BaselineError(f"{bench.meta_path(split)}: split {split} has no training images")
    per_rank_batch = preset.batch_size // rt.world_size
    sampler = DistributedSampler(dataset, num_replicas=rt.world_size, rank=rt.rank, shuffle=True,
                                 seed=preset.seed, drop_last=False)
    # with drop_last the last incomplete batch is dropped, as ADer's training loaders do
    steps_per_epoch = (len(sampler) // per_rank_batch if preset.drop_last
                       else math.ceil(len(sampler) / per_rank_batch))
    if steps_per_epoch == 0:
        raise BaselineError(
            f"{bench.meta_path(split)}: split {split} has {len(dataset)} training images, fewer than one batch "
            f"of {preset.batch_size} (the preset drops incomplete batches); pass a smaller --batch-size"
        )
    if rt.is_main:
        check_writable(split_dir(run_dir, split), "--out")

    seed_everything(preset.seed)
    # resuming, every weight (the frozen encoder's too) comes from the checkpoint: no download
    model = build_model(preset, "none" if state is not None else weights)
    if rt.distributed:
        sync_batchnorm(model, rt)
    model.to(rt.device)
    opt, sched = make_optimizer(preset, model)
    history: list[dict] = []
    start_epoch = 0
    if state is not None:
        check_model_version(ckpt_file, state, model)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history = list(state.get("history", []))
        start_epoch = int(state["epoch"])
        before = (state.get("world_size"), state.get("threads") if rt.device.type == "cpu" else None)
        now = (rt.world_size, torch.get_num_threads() if rt.device.type == "cpu" else None)
        if before != now and rt.is_main and not quiet:
            print(f"split {split}: resuming with {now[0]} process(es)/{now[1]} thread(s) where training began "
                  f"with {before[0]}/{before[1]}; the result will not be bit-identical to an uninterrupted run")
    weights_source = state["weights"] if state is not None else model.encoder.weights_source

    net = model
    if rt.distributed:
        net = DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    if workers is None:
        workers = 0 if rt.device.type == "cpu" else 4
    cache = None
    if preset.cache_features and not rt.distributed:
        if _cache_bytes(model, len(dataset), preset.image_size) <= CACHE_LIMIT:
            cache = FeatureCache()
        elif rt.is_main and not quiet:
            print(f"split {split}: training set too large to cache encoder features; reading images every epoch")

    epochs = preset.epochs
    last_epoch = epochs if stop_after is None else min(epochs, start_epoch + int(stop_after))
    counts = model.param_counts()
    bar = tqdm(total=(last_epoch - start_epoch) * steps_per_epoch, disable=quiet or not rt.is_main,
               desc=f"{preset.name} split {split}", unit="step", dynamic_ncols=True)
    model.train()
    try:
        for epoch in range(start_epoch, last_epoch):
            sampler.set_epoch(epoch)
            order = list(sampler)
            batches = [order[i * per_rank_batch:(i + 1) * per_rank_batch] for i in range(steps_per_epoch)]
            if not preset.drop_last:  # the (possibly incomplete) last batch of each rank
                batches = [b for b in batches if b]
            cached = [cache is not None and len(b) == per_rank_batch and cache.has(b) for b in batches]
            needs_images = [not c or model.trains_on_images for c in cached]
            t0 = time.perf_counter()
            loss_sum, n_seen, n_done = 0.0, 0, 0
            to_read = [b for b, r in zip(batches, needs_images) if r]
            images = iter(DataLoader(dataset, batch_sampler=to_read, num_workers=workers,
                                     pin_memory=rt.device.type == "cuda") if to_read else ())
            for j, (idx, from_cache, read) in enumerate(zip(batches, cached, needs_images)):
                x = next(images)[0].to(rt.device, non_blocking=True) if read else None
                feats = cache.get(idx, rt.device) if from_cache else None
                store = cache is not None and not from_cache and len(idx) == per_rank_batch
                n_done += len(idx)
                if (epoch * steps_per_epoch + j) % preset.step_every:
                    # no optimiser step on this batch: forward only, which moves the
                    # BatchNorm statistics as the official loop does (it discards the gradient)
                    with torch.no_grad():
                        out = net(x, feats=feats)
                    if store:
                        cache.put(idx, out[0])
                    bar.update(1)
                    continue
                out = net(x, feats=feats, **model.training_inputs(x, idx, epoch))
                if store:
                    cache.put(idx, out[0])
                loss = model.loss(*out)
                if not torch.isfinite(loss):
                    raise RuntimeError(f"split {split}, epoch {epoch + 1}: loss is {loss.item()}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), preset.grad_clip)
                opt.step()
                loss_sum += loss.item() * len(idx)
                n_seen += len(idx)
                bar.update(1)
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{loss.item():.4g}",
                                lr=f"{opt.param_groups[0]['lr']:.2g}")
            if cache is not None:
                _fill_cache(cache, model, dataset, order, per_rank_batch, rt.device, workers)
            seconds = time.perf_counter() - t0
            lr = opt.param_groups[0]["lr"]
            sched.step()
            mean_loss = all_reduce_mean(rt, loss_sum / max(n_seen, 1), n_seen)
            history.append({
                "epoch": epoch + 1, "loss": mean_loss, "lr": lr, "seconds": round(seconds, 3),
                "images_per_second": round(n_done * rt.world_size / seconds, 2) if seconds > 0 else None,
                "steps": len(batches), "cached_steps": sum(cached),
            })
            finished = epoch + 1 == epochs
            if rt.is_main:
                save_checkpoint(ckpt_file, {
                    "format": FORMAT, "versions": versions(), "preset": preset.to_dict(),
                    "model_version": model.version,
                    "benchmark": benchmark_info(bench), "split": split, "epoch": epoch + 1,
                    "finished": finished, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "params": counts, "history": history,
                    "weights": weights_source, "world_size": rt.world_size, "threads": torch.get_num_threads(),
                })
                atomic_write_json(split_dir(run_dir, split) / "train_log.json", {
                    "preset": preset.name, "split": split, "epochs": epochs, "finished": finished,
                    "params": counts, "history": history, "versions": versions(),
                    "device": str(rt.device), "world_size": rt.world_size, "threads": torch.get_num_threads(),
                })
            barrier(rt)
    finally:
        bar.close()
    return ckpt_file


def train_log(run_dir: str | Path, split: str) -> dict:
    return json.loads((split_dir(run_dir, split) / "train_log.json").read_text())
