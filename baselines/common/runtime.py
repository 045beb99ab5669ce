"""Process setup: device, threads, seeds, and torchrun's DistributedDataParallel.

Under ``torchrun`` (``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in the
environment) :func:`setup` joins the process group — NCCL on CUDA, gloo on
CPU — and gives each process its own GPU; otherwise it is a single process on
CUDA when available, else CPU. :func:`sync_batchnorm` makes the batch norms
of a model compute their statistics over the global batch.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from baselines.common.errors import BaselineError


@dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads(local_world_size: int = 1, threads: int | None = None) -> int:
    """Set torch's intra-op threads and return the number.

    ``threads`` if given, else ``OMP_NUM_THREADS`` if set, else this
    process's share of the CPUs it may run on. Never chosen from the machine's
    load: the thread count changes the order of floating-point sums inside
    the convolutions, so a fixed count is what keeps a rerun (or a resumed
    run) bit-identical. On a machine that other jobs keep busy, pass fewer
    threads (``--threads 1``): OpenMP teams larger than the idle CPUs spin at
    every barrier and can run slower than a single thread.
    """
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        threads = int(os.environ["OMP_NUM_THREADS"])
    if threads is None:
        threads = available_cpus() // max(1, local_world_size)
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def pick_device(name: str | None = None, local_rank: int = 0) -> torch.device:
    """``name`` ("cpu", "cuda", "cuda:1") or the default: CUDA if available, else CPU."""
    if name:
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BaselineError(f"--device {name}: CUDA is not available here; use --device cpu")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup(device: str | None = None, threads: int | None = None) -> Runtime:
    """Join torchrun's process group if launched by it; pick the device; set threads."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    dev = pick_device(device, local_rank)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    configure_threads(local_world if dev.type == "cpu" else 1, threads)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def barrier(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(rt: Runtime, value: float, count: int) -> float:
    """Mean over all processes of per-process means ``value`` weighted by ``count``."""
    if not (rt.distributed and dist.is_initialized()):
        return value
    t = torch.tensor([value * count, float(count)], dtype=torch.float64,
                     device=rt.device if rt.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t[0] / max(t[1], 1.0))


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: every process's loss reaches every input."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm with statistics over every process's batch, for CPU (gloo) training.

    What :class:`torch.nn.SyncBatchNorm` does on GPUs, which it alone
    supports: in training mode the mean and the biased variance normalising
    the batch are those of the global batch (two differentiable all-reduces:
    the sum, then the squared deviations from the global mean, so the
    gradient flows to every process as it would through one large batch);
    the running variance gets the unbiased global variance. Outside training,
    or in a single process, it is the plain batch norm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        all_reduce = _SumOverProcesses.apply
        dims = [0, *range(2, x.dim())]
        shape = (1, -1, *([1] * (x.dim() - 2)))
        count = all_reduce(x.new_tensor([x.numel() // x.shape[1]], dtype=torch.float64))
        mean = all_reduce(x.sum(dims)) / count.to(x.dtype)
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / count.to(x.dtype)
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            n = float(count)
            with torch.no_grad():
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1.0, 1.0)), alpha=m)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def _to_cpu_sync(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CPUSyncBatchNorm):
        out = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias  # the same Parameter objects
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    for name, child in module.named_children():
        setattr(module, name, _to_cpu_sync(child))
    return module


def sync_batchnorm(model: nn.Module, rt: Runtime) -> nn.Module:
    """Synchronise the batch norms of ``model`` (in place) except its frozen ``encoder``, as ADer does under DDP.

    GPUs get :class:`torch.nn.SyncBatchNorm` (ADer's ``sync_BN``), CPUs
    :class:`CPUSyncBatchNorm`. The frozen encoder stays in eval mode, where a
    synchronised batch norm is the plain one, so it is left as it is. The
    state dict keeps its keys and the parameters their identity.
    """
    frozen = getattr(model, "encoder", None)
    for name, child in model.named_children():
        if child is frozen:
            continue
        if rt.device.type == "cpu":
            setattr(model, name, _to_cpu_sync(child))
        else:
            setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
    return model


def teardown(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()
