"""Devices and DistributedDataParallel: which process this is, where it computes, and how the
processes agree. One process (no torchrun) is the world of size 1."""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call created the process group and must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def select_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """CUDA (this process's GPU) when present or asked for, else CPU."""
    if preference not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be auto, cuda or cpu, got {preference!r}")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested, but CUDA is not available here")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (WORLD_SIZE > 1): nccl on CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return DistInfo(rank, world, local_rank)
    device = select_device(device_preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # Generous timeout: the other ranks wait while rank 0 validates or builds a crop cache.
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))
    return DistInfo(rank, world, local_rank, owns_group=True)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def parameter_digest(model: nn.Module) -> str:
    """sha256 of every parameter and buffer, in order: equal digests = identical weights."""
    digest = hashlib.sha256()
    for name, tensor in unwrap(model).state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def gather(value: Any, info: DistInfo) -> list[Any]:
    """`value` of every process, in rank order."""
    if info.world_size == 1:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def broadcast_object(value: Any, info: DistInfo) -> Any:
    """Rank 0's `value` on every process."""
    if info.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_process(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every process when `flag` is true on any one."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    if info.world_size > 1:
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_processes(values: torch.Tensor, info: DistInfo, device: torch.device):
    """(K,) float64 values averaged over the processes (returned on the CPU)."""
    if info.world_size == 1:
        return values
    values = values.to(device)
    dist.all_reduce(values)
    return values.cpu() / info.world_size


def broadcast_buffers(model: nn.Module, info: DistInfo) -> None:
    """Rank 0's buffers (BatchNorm statistics) to every process."""
    if info.world_size > 1:
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()


def finish(info: DistInfo) -> None:
    """Destroy the process group if `init_distributed` created it."""
    if info.owns_group:
        dist.destroy_process_group()
