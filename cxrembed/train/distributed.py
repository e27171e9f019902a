"""Multi-process training through ``torchrun``: detection, process group, DDP, agreement.

``torchrun --nproc-per-node N --no-python cxr train ...`` (or any launcher that sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) runs one
process per device. :func:`setup` joins the process group (NCCL on CUDA, gloo on CPU)
unless the caller already did; every process trains on its own share of each epoch's
batches (the batch sampler shards by rank, so ``batch_size`` is per process) and
:class:`torch.nn.parallel.DistributedDataParallel` averages the gradients, so the weights
stay identical on every rank. Only rank 0 writes the run folder; all ranks read the
checkpoint on resume. Decisions that must be unanimous (stop on a signal, stop on a NaN
loss) go through :func:`any_rank`, so no rank waits forever in a collective the others
have left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from cxrlabel.errors import InputError

__all__ = [
    "DistContext",
    "env_world",
    "setup",
    "teardown",
    "device_for",
    "wrap",
    "unwrap",
    "any_rank",
    "gather_rows",
    "sync_buffers",
    "barrier",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank, world size, local rank, and whether it owns the
    process group (then :func:`teardown` destroys it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` alone).

    Examples
    --------
    >>> env_world() if "WORLD_SIZE" not in os.environ else (0, 1, 0)
    (0, 1, 0)
    """
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise InputError(
            f"RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun); {exc}"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"RANK={rank} is not in 0..WORLD_SIZE-1 (WORLD_SIZE={world})")
    return rank, world, local


def setup(device_type: str = "cpu") -> DistContext:
    """Join (or reuse) the process group when launched with several processes."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        return DistContext(rank, world, int(os.environ.get("LOCAL_RANK", rank)), False)
    rank, world, local = env_world()
    if world == 1:
        return DistContext()
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise InputError(
            f"WORLD_SIZE={world} but {', '.join(missing)} is not set; launch with torchrun "
            "(it sets them) or set them yourself"
        )
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local, True)


def teardown(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def device_for(ctx: DistContext, device: torch.device) -> torch.device:
    """One GPU per process: ``cuda:LOCAL_RANK`` when training on CUDA with several ranks."""
    if device.type == "cuda" and ctx.is_distributed:
        return torch.device("cuda", ctx.local_rank)
    return device


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """Wrap in DistributedDataParallel when distributed (weights broadcast from rank 0)."""
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (or the model itself)."""
    return getattr(model, "module", model)


def any_rank(flags: list[bool], ctx: DistContext, device: torch.device) -> list[bool]:
    """Element-wise OR of boolean flags over all ranks (the flags themselves alone)."""
    if not ctx.is_distributed:
        return list(flags)
    tensor = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


def gather_rows(positions: np.ndarray, values: np.ndarray, ctx: DistContext) -> np.ndarray:
    """Reassemble rows computed in shards: rank r holds ``values`` for ``positions``.

    Returns every rank's rows in position order (the values themselves alone).
    """
    if not ctx.is_distributed:
        return values[np.argsort(positions, kind="stable")]
    parts: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(parts, (positions, values))
    all_pos = np.concatenate([p for p, _ in parts])
    all_val = np.concatenate([v for _, v in parts])
    return all_val[np.argsort(all_pos, kind="stable")]


def sync_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP syncs buffers at the start of each training forward, so after the last step each
    rank holds the statistics of its own last batch; validation and checkpoints must all
    use rank 0's.
    """
    if not ctx.is_distributed:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op alone)."""
    if ctx.is_distributed:
        dist.barrier()
