"""Process-group setup for runs launched by ``torchrun``: who this process is, and joining the group.

torchrun (and SLURM, Kubernetes PyTorchJob, TorchX, which start processes the same way) sets
RANK, WORLD_SIZE and LOCAL_RANK for every process. Backend gloo on CPU, nccl on CUDA with one
GPU per process (``LOCAL_RANK``); whether CUDA is used is still decided by :mod:`rtn_core.device`.
"""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from .device import choose_device

# ranks wait for the slowest one at the end of a share of work: allow for long shares
TIMEOUT = datetime.timedelta(hours=12)


def launched() -> bool:
    """Whether this process is one of several started by torchrun (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def start(requested_device: str | None = None) -> torch.device:
    """Join the process group (once) and return this process's device.

    On CUDA each process takes GPU ``LOCAL_RANK`` and makes it current, so code that moves
    tensors to "cuda" uses that GPU. Raises ValueError when CUDA is asked for and unusable, or
    when there are fewer GPUs than processes on this node.
    """
    device = choose_device(requested_device)
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices: "
                             "start at most one process per GPU (--nproc-per-node)")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return device


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def average(value: float) -> float:
    """``value`` averaged over the processes (itself when there is one process)."""
    if not dist.is_initialized():
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.item() / dist.get_world_size()


def stop() -> None:
    """Leave the process group (at the end of a command, so the process exits cleanly), once every
    process has got there: a rank that tears its group down while another still talks to it can
    abort that one ("terminate called without an active exception", seen once in the tests)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
