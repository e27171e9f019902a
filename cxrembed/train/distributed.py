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

An exception that only one rank sees (a bug, a file it alone cannot read) cannot be
agreed on that way: the other ranks are already waiting in the step's next collective.
:func:`peer_failure` publishes it in the launcher's key-value store before the rank
exits (:func:`setup` starts a watchdog thread, :func:`teardown` stops it); every other rank then stops within seconds with a :class:`PeerFailedError` naming
the rank that failed (the error itself is printed once, by that rank), whether its own
collective fails (gloo notices the closed connection) or hangs (a watchdog thread ends the
process after :data:`PEER_GRACE_SECONDS`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from cxrembed.errors import PeerFailedError
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
    "peer_failure",
    "PEER_GRACE_SECONDS",
]

# How long a rank whose peer failed waits for its own collective to fail before its
# watchdog ends the process, and how often the watchdog looks.
PEER_GRACE_SECONDS = 20.0
_POLL_SECONDS = 0.5
_WATCHES: dict[int, _FailureWatch] = {}  # by id() of the DistContext setup() returned


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
        return _watched(DistContext(rank, world, int(os.environ.get("LOCAL_RANK", rank)), False))
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
    return _watched(DistContext(rank, world, local, True))


def teardown(ctx: DistContext) -> None:
    """Stop watching for failed peers; leave the process group if :func:`setup` created it."""
    watch = _WATCHES.pop(id(ctx), None)
    if watch is not None:
        watch.stop()
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


def peer_failure(ctx: DistContext, exc: Exception) -> PeerFailedError | None:
    """Share a failure: the error to raise instead of ``exc``, or None to raise ``exc``.

    Call it from the ``except`` of the code between :func:`setup` and :func:`teardown`.
    When another rank failed first (``exc`` is then this rank's collective failing), the
    answer is a :class:`PeerFailedError` naming it; otherwise this rank records
    ``"RANK: ErrorType"`` in the launcher's store (the first failure wins) for the
    others, and ``exc`` stands. Alone, or without a store, it returns None.
    """
    watch = _WATCHES.get(id(ctx))
    if watch is None or isinstance(exc, PeerFailedError):
        return None
    other = watch.other_failure()
    if other is not None:
        return PeerFailedError(other)
    watch.report(exc)
    return None


def _watched(ctx: DistContext) -> DistContext:
    """Start the failure watchdog of a distributed context (kept until :func:`teardown`)."""
    if ctx.is_distributed:
        watch = _FailureWatch.connect(ctx)
        if watch is not None:
            _WATCHES[id(ctx)] = watch
            watch.start()
    return ctx


class _FailureWatch:
    """A store client of its own (the main thread's may be blocked) and the watchdog."""

    def __init__(self, store: Any, rank: int) -> None:
        self.store, self.rank = store, rank
        # a launcher that restarts the workers keeps its store: one key per attempt
        self.key = f"cxrkit/train/failed/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
        self._done = threading.Event()
        self._lock = threading.Lock()  # one store call at a time on this client
        self._thread = threading.Thread(target=self._watch, name="cxrkit-peer-watch", daemon=True)

    @classmethod
    def connect(cls, ctx: DistContext) -> _FailureWatch | None:
        host, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
        if not host or not port:
            return None
        try:
            store = dist.TCPStore(
                host,
                int(port),
                is_master=False,
                timeout=timedelta(seconds=10),
                wait_for_workers=False,
            )
        except (RuntimeError, ValueError):  # no store there: nothing to share failures in
            return None
        return cls(store, ctx.rank)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()

    def report(self, exc: BaseException) -> None:
        """Record this rank's failure (kept if another rank's came first)."""
        with self._lock, contextlib.suppress(Exception):  # the store may be gone too
            self.store.compare_set(self.key, "", f"{self.rank}: {type(exc).__name__}")

    def other_failure(self) -> str | None:
        """What to say when another rank failed (or the store's host is gone), else None."""
        try:
            with self._lock:
                if not self.store.check([self.key]):
                    return None
                value = self.store.get(self.key).decode()
        except Exception:  # noqa: BLE001 - the store went away with the rank hosting it
            return (
                f"rank {self.rank} stopped: lost contact with the other ranks (one of "
                "them failed or was killed; see its output)"
            )
        rank, _, kind = value.partition(": ")
        if rank == str(self.rank):
            return None
        return (
            f"rank {self.rank} stopped because rank {rank} failed ({kind}: see that rank's error)"
        )

    def _watch(self) -> None:
        while not self._done.wait(_POLL_SECONDS):
            message = self.other_failure()
            if message is None:
                continue
            if self._done.wait(PEER_GRACE_SECONDS):  # the main thread stopped by itself
                return
            print(f"error: {message}", file=sys.stderr, flush=True)
            os._exit(1)  # the main thread is stuck in a collective that will never end
