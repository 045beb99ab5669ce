"""Process setup: device, threads, seeds, and torchrun's DistributedDataParallel.

Under ``torchrun`` (``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in the
environment) :func:`setup` joins the process group — NCCL on CUDA, gloo on
CPU — and gives each process its own GPU; otherwise it is a single process on
CUDA when available, else CPU.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

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


def teardown(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()
