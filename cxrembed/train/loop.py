"""The training loop: epochs of steps, validation, checkpoints, and stopping cleanly.

One step: forward, loss (metric loss on the embeddings, or masked BCE on the logits for
the ``ce`` baseline), backward, gradient clipping, AdamW, scheduler (per step). Mixed
precision (float16 autocast + gradient scaling) on CUDA when ``training.amp``.

After each epoch: validation retrieval (:mod:`cxrembed.train.validation`), a row of
``metrics.csv``, the ``last`` checkpoint, and ``model.safetensors`` when MAP@R improved.

Stopping:

* SIGINT / SIGTERM: the current step is finished, then the state is saved as the
  ``last`` checkpoint (mid-epoch, exact: resuming replays the remaining batches with the
  same augmentation) and :func:`fit` returns with ``status="interrupted"``. A
  second Ctrl-C aborts at once (files on disk stay whole: every write is atomic).
* A NaN/inf embedding, loss or gradient norm raises :class:`TrainingDivergedError` before
  the optimizer step; nothing is saved, so the ``last`` checkpoint is the last good one.
* Out of memory raises :class:`TrainingMemoryError` with the settings to lower; nothing
  of the failed epoch is written.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from cxrembed.errors import RunConfigError, TrainingDivergedError, TrainingMemoryError
from cxrembed.losses.registry import loss_spec
from cxrembed.models.encode import encode_dataset
from cxrembed.train.checkpoint import (
    BEST_WEIGHTS,
    CURVES_FILE,
    LAST_STATE,
    STATE_FORMAT,
    RunFolder,
    rng_state,
    set_rng_state,
)
from cxrembed.train.config import RunConfig
from cxrembed.train.data import SeededBatches, TrainData, make_sampler
from cxrembed.train.distributed import DistContext, any_rank, gather_rows, sync_buffers, wrap
from cxrembed.train.schedule import build_optimizer, build_scheduler
from cxrembed.train.validation import BEST_METRIC, VALIDATION_KEYS, validation_metrics
from cxrlabel.figures import FigureStyle

__all__ = [
    "TrainResult",
    "StopSignal",
    "fit",
    "is_out_of_memory",
    "check_tensorboard",
    "epoch_line",
    "write_curves",
    "curves_path",
]


@dataclass
class TrainResult:
    """What a call to :func:`fit` (or :func:`cxrembed.train.train`) did.

    Attributes
    ----------
    run_dir : pathlib.Path or None
        The run folder (None on ranks other than 0, which write nothing).
    status : {"completed", "interrupted"}
    epochs_done : int
        Finished epochs (an interrupted epoch is not counted).
    step : int
        Optimizer steps taken in all.
    best_epoch, best_value : int or None, float or None
        Epoch (1-based) of ``model.safetensors`` and its validation MAP@R.
    metrics : list of dict
        The rows of ``metrics.csv``.
    config : RunConfig
        The configuration as run (label names, model head...).
    excluded : int
        Table rows not used (listed in ``excluded.csv``).
    signal : int or None
        The signal that interrupted the run.
    """

    run_dir: Path | None
    status: str
    epochs_done: int
    step: int
    best_epoch: int | None
    best_value: float | None
    metrics: list[dict[str, Any]] = field(repr=False)
    config: RunConfig = field(repr=False)
    excluded: int = 0
    signal: int | None = None


class StopSignal:
    """Context manager: SIGINT/SIGTERM set :attr:`received` instead of killing the process.

    The first signal restores the previous handlers, so a second Ctrl-C stops at once.
    Outside the main thread (where Python cannot install handlers) it does nothing.

    Examples
    --------
    >>> with StopSignal() as stop:
    ...     stop.handle(signal.SIGTERM, None)
    >>> stop.received == signal.SIGTERM
    True
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: remember the signal, let the next one act normally."""
        self.received = signum
        self._restore()

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


@dataclass
class _Position:
    """Where training is; saved in ``last.pt``."""

    epoch: int = 0
    batches_done: int = 0
    step: int = 0
    loss_sum: float = 0.0
    images: int = 0
    seconds: float = 0.0
    best_epoch: int | None = None
    best_value: float | None = None


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    data: TrainData,
    config: RunConfig,
    run: RunFolder | None,
    *,
    ctx: DistContext | None = None,
    device: torch.device | None = None,
    resume: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None,
    progress: bool = True,
    figures: FigureStyle | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` for ``config.training.epochs`` epochs.

    Parameters
    ----------
    model : EmbeddingNet
        Not wrapped; :func:`fit` moves it to ``device`` and wraps it for DDP itself.
    loss_fn : torch.nn.Module
        Called as ``loss_fn(output, targets, known=mask)``: the embeddings, or the logits
        for the ``ce`` loss.
    data : TrainData
    config : RunConfig
    run : RunFolder or None
        Where to write (None on ranks other than 0).
    ctx : DistContext, optional
        Rank and world size (default: a single process).
    device : torch.device, optional
        Default: the CPU.
    resume : (weights, state), optional
        From :func:`cxrembed.train.checkpoint.load_last`.
    progress : bool
        Progress bars on stderr (rank 0).
    figures : FigureStyle, optional
        Format and dpi of the training curves (default ``training_curves.png``).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDivergedError, TrainingMemoryError
    """
    ctx = ctx or DistContext()
    device = device or torch.device("cpu")
    t = config.training
    sampler = make_sampler(data, config, rank=ctx.rank, world_size=ctx.world_size)
    steps_per_epoch = len(sampler)
    parts = _build_parts(model, loss_fn, sampler, config, ctx, device, steps_per_epoch)
    pos, rows = _restore(parts, resume, run) if resume is not None else (_Position(), [])
    loader = _train_loader(data, sampler, config, device)
    board = _tensorboard(run, t.tensorboard)
    shared = _Shared(loader, data, config, run, ctx, device, steps_per_epoch, progress, board)
    try:
        with StopSignal() as stop:
            for epoch in range(pos.epoch, t.epochs):
                sampler.set_epoch(epoch)
                val = _epoch(shared, parts, pos, stop)
                if val is None:
                    return _result(
                        run, "interrupted", pos.epoch, pos, rows, config, data, stop.received
                    )
                pos = _end_epoch(parts, pos, val, rows, run, ctx, board)
                _report_epoch(run, rows, t.epochs, progress, figures)
    finally:
        if board is not None:
            board.close()
    if run is not None:
        _warn_first_best(pos, rows)
    return _result(run, "completed", t.epochs, pos, rows, config, data, None)


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """One line per finished epoch: train loss, validation retrieval, speed.

    Examples
    --------
    >>> epoch_line({"epoch": 2, "train_loss": 0.51234, "val_mean_average_precision_at_r": 0.6,
    ...             "val_precision_at_1": 0.75, "best": 1, "train_images_per_second": 50.2,
    ...             "train_seconds": 40.0}, 8)
    'epoch 2/8: train loss 0.5123 | val MAP@R 0.600 P@1 0.750 (best so far) | 50.2 img/s, 40 s'
    """

    def fmt(value: Any) -> str:
        return "n/a" if value is None or not math.isfinite(float(value)) else f"{value:.3f}"

    best = " (best so far)" if row.get("best") else ""
    return (
        f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f} | val MAP@R "
        f"{fmt(row['val_mean_average_precision_at_r'])} P@1 "
        f"{fmt(row['val_precision_at_1'])}{best} | "
        f"{row['train_images_per_second']:.1f} img/s, {row['train_seconds']:.0f} s"
    )


def curves_path(folder: Path, figures: FigureStyle | None = None) -> Path:
    """``training_curves.<format>`` in the run folder (:data:`CURVES_FILE` by default)."""
    if figures is None or figures.kind == "png":
        return folder / CURVES_FILE
    return figures.path(folder, Path(CURVES_FILE).stem)


def write_curves(
    path: Path, rows: list[dict[str, Any]], figures: FigureStyle | None = None
) -> Path:
    """Draw train loss and validation MAP@R / P@1 by epoch into a figure (atomically)."""
    from cxrlabel.figures import new_figure, save_figure

    epochs = [r["epoch"] for r in rows]
    fig = new_figure(9, 3.4)
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    left.set(xlabel="epoch", ylabel="train loss", title="training loss")
    for key, name in (("val_mean_average_precision_at_r", "MAP@R"), ("val_precision_at_1", "P@1")):
        right.plot(epochs, [r[key] for r in rows], marker="o", label=name)
    best = [r["epoch"] for r in rows if r.get("best")]
    if best:
        right.axvline(best[-1], color="grey", linestyle=":", label=f"best (epoch {best[-1]})")
    right.set(xlabel="epoch", ylabel="validation", title="validation retrieval")
    right.legend(fontsize=8)
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return save_figure(fig, path, figures)


def _report_epoch(
    run: RunFolder | None,
    rows: list[dict[str, Any]],
    epochs: int,
    progress: bool,
    figures: FigureStyle | None,
) -> None:
    """Redraw the curves and print the epoch's line (rank 0 only: the others write nothing)."""
    if run is None:
        return
    write_curves(curves_path(run.path, figures), rows, figures)
    if progress:
        tqdm.write(epoch_line(rows[-1], epochs), file=sys.stderr)


def _warn_first_best(pos: _Position, rows: list[dict[str, Any]]) -> None:
    """Warn when the kept model is the first epoch's although later epochs ran."""
    validated = [r for r in rows if math.isfinite(float(r.get("val_queries", float("nan"))))]
    if pos.best_epoch == 1 and len(validated) > 1:
        warnings.warn(
            f"the best validation MAP@R was at epoch 1 of {len(rows)}: training did not "
            "improve retrieval after the first epoch, so model.safetensors holds the epoch-1 "
            "weights. Try a lower learning rate (--lr), more data per label, or check the "
            "labels (see training_curves.png)",
            UserWarning,
            stacklevel=3,
        )


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures surfaced as RuntimeError.

    Examples
    --------
    >>> is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    True
    >>> is_out_of_memory(RuntimeError("shape mismatch"))
    False
    """
    text = str(exc).lower()
    return (
        isinstance(exc, MemoryError)
        or "out of memory" in text
        or "can't allocate memory" in text
        or "failed to allocate" in text
    )


# ----------------------------------------------------------------------------- steps


@dataclass
class _Parts:
    """What a step changes and a checkpoint saves."""

    model: nn.Module
    net: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    sampler: Any
    use_amp: bool
    grad_clip: float


@dataclass
class _Shared:
    """What every epoch of one :func:`fit` call uses and none changes, bundled so the
    epoch steps take one argument instead of nine."""

    loader: DataLoader
    data: TrainData
    config: RunConfig
    run: RunFolder | None
    ctx: DistContext
    device: torch.device
    steps_per_epoch: int
    progress: bool
    board: Any


def _build_parts(
    model: nn.Module,
    loss_fn: nn.Module,
    sampler: Any,
    config: RunConfig,
    ctx: DistContext,
    device: torch.device,
    steps_per_epoch: int,
) -> _Parts:
    """Move model and loss to ``device`` and build what a step changes and a checkpoint
    saves: the (DDP-)wrapped network, AdamW over model and loss, the per-step schedule and
    the AMP scaler."""
    t = config.training
    model.to(device)
    loss_fn.to(device)
    optimizer = build_optimizer(
        model, lr=t.lr, head_lr=t.head_lr, weight_decay=t.weight_decay, extra=loss_fn
    )
    use_amp = bool(t.amp and device.type == "cuda")
    return _Parts(
        model=model,
        net=wrap(_Output(model, _input_key(t.loss), loss_fn), ctx, device),
        loss_fn=loss_fn,
        optimizer=optimizer,
        scheduler=build_scheduler(
            optimizer,
            warmup_steps=round(t.warmup_epochs * steps_per_epoch),
            total_steps=t.epochs * steps_per_epoch,
        ),
        scaler=torch.amp.GradScaler("cuda", enabled=use_amp),
        sampler=sampler,
        use_amp=use_amp,
        grad_clip=t.grad_clip,
    )


def _train_loader(
    data: TrainData, sampler: Any, config: RunConfig, device: torch.device
) -> DataLoader:
    """The training batches, seeded per batch (:class:`SeededBatches`) so a resumed epoch
    replays the remaining batches with the same augmentation."""
    t = config.training
    return DataLoader(
        data.train,
        batch_sampler=SeededBatches(sampler, t.seed),
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(t.seed),
    )


def _epoch(
    shared: _Shared, parts: _Parts, pos: _Position, stop: StopSignal
) -> dict[str, float] | None:
    """Train one epoch, then validate; None when a stop signal ended it early (the
    ``last`` checkpoint is then saved). Out of memory anywhere in the epoch becomes a
    :class:`TrainingMemoryError` naming the settings to lower."""
    try:
        stopped = _train_epoch(shared, parts, pos, stop)
        sync_buffers(parts.model, shared.ctx)
        if stopped:
            _save_last(shared.run, parts, pos, shared.ctx)
            return None
        return _validate(
            parts.model, shared.data, shared.config, shared.ctx, shared.device, shared.progress
        )
    except (RuntimeError, MemoryError) as exc:
        if is_out_of_memory(exc):
            raise _memory_error(exc, shared.config, shared.device, shared.run, pos) from None
        raise


def _restore(
    parts: _Parts, resume: tuple[dict[str, torch.Tensor], dict[str, Any]], run: RunFolder | None
) -> tuple[_Position, list[dict[str, Any]]]:
    """Load a ``last`` checkpoint into the parts; the position and the finished rows."""
    weights, state = resume
    parts.model.load_state_dict(weights)
    if "loss" in state:
        parts.loss_fn.load_state_dict(state["loss"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    parts.scaler.load_state_dict(state["scaler"])
    parts.sampler.load_state_dict(state["sampler"])
    set_rng_state(state["rng"])
    pos = _Position(**state["position"])
    if pos.best_epoch is not None and pos.best_epoch < 0:
        pos.best_epoch = None
    rows = [r for r in (run.read_metrics() if run else []) if r["epoch"] <= pos.epoch]
    return pos, rows


def _end_epoch(
    parts: _Parts,
    pos: _Position,
    val: dict[str, float],
    rows: list[dict[str, Any]],
    run: RunFolder | None,
    ctx: DistContext,
    board: Any,
) -> _Position:
    """Record the epoch: metrics row, best weights, ``last`` checkpoint; the next position."""
    row = _metrics_row(pos, val, parts.optimizer, ctx)
    improved = _improved(val, pos)
    row["best"] = int(improved)
    rows.append(row)
    best_epoch, best_value = (
        (pos.epoch + 1, _value(val)) if improved else (pos.best_epoch, pos.best_value)
    )
    after = _Position(
        epoch=pos.epoch + 1, step=pos.step, best_epoch=best_epoch, best_value=best_value
    )
    if run is not None:
        if improved:
            run.save_best(
                parts.model,
                {
                    "epoch": pos.epoch + 1,
                    "step": pos.step,
                    "metric": BEST_METRIC,
                    "value": row[f"val_{BEST_METRIC}"],
                },
            )
        _save_last(run, parts, after, ctx)
        run.write_metrics(rows)
    if board is not None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, float) and math.isfinite(value):
                board.add_scalar(f"epoch/{key}", value, pos.epoch + 1)
    return after


def _train_epoch(shared: _Shared, parts: _Parts, pos: _Position, stop: StopSignal) -> bool:
    """Run the rest of one epoch; True when a stop signal ended it early."""
    loader, ctx, device = shared.loader, shared.ctx, shared.device
    config, board, run = shared.config, shared.board, shared.run
    parts.net.train()
    bar = tqdm(
        total=shared.steps_per_epoch,
        initial=pos.batches_done,
        file=sys.stderr,
        desc=f"epoch {pos.epoch + 1}/{config.training.epochs}",
        unit="step",
        disable=not (shared.progress and ctx.is_main),
        dynamic_ncols=True,
    )
    started = time.perf_counter()
    try:
        for images, targets, mask, ids in loader:
            loss = _forward(parts, images, targets, mask, device)
            (bad,) = any_rank([loss is None], ctx, device)
            if bad:
                raise _diverged(pos, ids, "the embeddings or the loss", config, run)
            norm = _backward_and_step(parts, loss)
            if norm is not None and not math.isfinite(norm):
                raise _diverged(pos, ids, "the gradient norm", config, run)
            value = float(loss.detach())
            pos.step += 1
            pos.batches_done += 1
            pos.loss_sum += value * len(ids)
            pos.images += len(ids)
            if board is not None:
                board.add_scalar("step/loss", value, pos.step)
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            bar.update()
            # After the step, so the checkpoint holds whole steps (a forward pass alone
            # already moves BatchNorm statistics).
            (stopping,) = any_rank([stop.received is not None], ctx, device)
            if stopping:
                return True
        return False
    finally:
        pos.seconds += time.perf_counter() - started
        bar.close()


def _forward(
    parts: _Parts,
    images: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    device: torch.device,
) -> torch.Tensor | None:
    """The loss of one batch, or None when the output or the loss is not finite."""
    images = images.to(device, non_blocking=True)
    targets = targets.to(device, non_blocking=True)
    known = mask.to(device, non_blocking=True) > 0
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=parts.use_amp):
        out = parts.net(images)
    out = out.float()
    if not bool(torch.isfinite(out).all()):
        return None
    loss = parts.loss_fn(out, targets, known=known)
    return loss if bool(torch.isfinite(loss)) else None


def _input_key(loss: str) -> str:
    """What the loss is fed (its registry spec's ``output``): the model's logits (the
    classifier baseline), the raw projection (losses with their own classifier) or the
    unit-norm embedding."""
    return loss_spec(loss).output


class _Output(nn.Module):
    """The model with the one output of ``forward_features`` that its loss is fed.

    DDP wraps this module, so its gradient hooks see whichever output the loss uses. A
    loss with parameters (class proxies) is registered here too, so DDP broadcasts them
    from rank 0 and averages their gradients like the model's, and gradient clipping
    covers them.
    """

    def __init__(self, model: nn.Module, key: str, loss_fn: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.key = key
        if loss_fn is not None and any(True for _ in loss_fn.parameters()):
            self.loss_fn = loss_fn

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(images)[self.key]


def _backward_and_step(parts: _Parts, loss: torch.Tensor) -> float | None:
    """Backward, clip, step; the gradient norm (None when AMP handles inf itself)."""
    parts.scaler.scale(loss).backward()
    norm = None
    if parts.grad_clip > 0:
        parts.scaler.unscale_(parts.optimizer)
        total = torch.nn.utils.clip_grad_norm_(parts.net.parameters(), parts.grad_clip)
        norm = None if parts.use_amp else float(total)
    if norm is not None and not math.isfinite(norm):
        parts.optimizer.zero_grad(set_to_none=True)
        return norm
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    parts.optimizer.zero_grad(set_to_none=True)
    parts.scheduler.step()
    return norm


def _validate(
    model: nn.Module,
    data: TrainData,
    config: RunConfig,
    ctx: DistContext,
    device: torch.device,
    progress: bool,
) -> dict[str, float]:
    """Validation metrics; each rank embeds a share of the images, all get the result."""
    started = time.perf_counter()
    n = len(data.val)
    if n == 0:
        out = dict.fromkeys(VALIDATION_KEYS, float("nan"))
        out["seconds"] = 0.0
        return out
    positions = np.arange(ctx.rank, n, ctx.world_size)
    loader = DataLoader(
        Subset(data.val, positions.tolist()),
        batch_size=config.training.batch_size,
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
    )
    _, vectors = encode_dataset(model, loader, device=device, progress=progress and ctx.is_main)
    vectors = gather_rows(positions, vectors, ctx)
    out = validation_metrics(vectors, data.val_relevance, data.val_groups, data.names)
    out["seconds"] = time.perf_counter() - started
    return out


# ----------------------------------------------------------------------------- records


def _metrics_row(
    pos: _Position, val: dict[str, float], optimizer: torch.optim.Optimizer, ctx: DistContext
) -> dict[str, Any]:
    images = pos.images * ctx.world_size
    return {
        "epoch": pos.epoch + 1,
        "step": pos.step,
        "train_loss": pos.loss_sum / pos.images if pos.images else float("nan"),
        "lr": float(optimizer.param_groups[0]["lr"]),
        "train_images": images,
        "train_seconds": round(pos.seconds, 3),
        "train_images_per_second": images / pos.seconds if pos.seconds > 0 else float("nan"),
        **{f"val_{k}": float(val[k]) for k in VALIDATION_KEYS},
        "val_seconds": round(val["seconds"], 3),
    }


def _value(val: dict[str, float]) -> float:
    value = float(val[BEST_METRIC])
    return value if math.isfinite(value) else float("-inf")


def _improved(val: dict[str, float], pos: _Position) -> bool:
    """First epoch, or a better MAP@R (NaN counts as worst; no validation: always)."""
    if pos.best_epoch is None or math.isnan(val["queries"]):
        return True
    return _value(val) > (pos.best_value if pos.best_value is not None else float("-inf"))


def _save_last(run: RunFolder | None, parts: _Parts, pos: _Position, ctx: DistContext) -> None:
    if run is None:
        return
    sampler_state = {
        **parts.sampler.state_dict(),
        "epoch": pos.epoch,
        "batches_done": pos.batches_done,
    }
    position = {**pos.__dict__, "best_epoch": -1 if pos.best_epoch is None else pos.best_epoch}
    state = {
        "format": STATE_FORMAT,
        "step": pos.step,
        "epoch": pos.epoch,
        "world_size": ctx.world_size,
        "position": position,
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "sampler": sampler_state,
        "rng": rng_state(),
    }
    if parts.loss_fn.state_dict():  # class proxies: resuming needs them too
        state["loss"] = parts.loss_fn.state_dict()
    run.save_last(parts.model, state)


def _result(
    run: RunFolder | None,
    status: str,
    epochs_done: int,
    pos: _Position,
    rows: list[dict[str, Any]],
    config: RunConfig,
    data: TrainData,
    received: int | None,
) -> TrainResult:
    return TrainResult(
        run_dir=None if run is None else run.path,
        status=status,
        epochs_done=epochs_done,
        step=pos.step,
        best_epoch=pos.best_epoch,
        best_value=None
        if pos.best_value is None or not math.isfinite(pos.best_value)
        else pos.best_value,
        metrics=rows,
        config=config,
        excluded=len(data.excluded),
        signal=received,
    )


def check_tensorboard(enabled: bool) -> None:
    """Fail before training when TensorBoard logging is asked for but not installed."""
    if not enabled:
        return
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise RunConfigError(
            "training.tensorboard is true but the tensorboard package is not installed; "
            "install it (pip install tensorboard) or set tensorboard: false"
        ) from None


def _tensorboard(run: RunFolder | None, enabled: bool) -> Any:
    if not enabled or run is None:
        return None
    check_tensorboard(enabled)
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run.path / "tensorboard"))


def _diverged(
    pos: _Position, ids: list[str], what: str, config: RunConfig, run: RunFolder | None
) -> Exception:
    if run is None or (run.path / LAST_STATE).is_file():
        kept = f"the last good checkpoint ({LAST_STATE}) and {BEST_WEIGHTS} are kept"
    else:
        kept = "no checkpoint had been saved yet (it failed in the first epoch)"
    return TrainingDivergedError(
        f"{what} became NaN or infinite at epoch {pos.epoch + 1}, step {pos.step + 1} "
        f"(batch images {list(ids)[:5]}{'...' if len(ids) > 5 else ''}); training stopped "
        f"and {kept}. Lower the learning rate (training.lr={config.training.lr}, "
        f"head_lr={config.training.head_lr}), keep gradient clipping on "
        f"(grad_clip={config.training.grad_clip}), check those images; then --resume"
    )


def _memory_error(
    exc: BaseException,
    config: RunConfig,
    device: torch.device,
    run: RunFolder | None,
    pos: _Position,
) -> TrainingMemoryError:
    t, size = config.training, config.preprocessing.image_size
    smaller = max(t.m * 2, (t.batch_size // 2) // t.m * t.m)
    where = f"in {run.path}" if run is not None else ""
    return TrainingMemoryError(
        f"out of memory on {device} at epoch {pos.epoch + 1} with batch_size={t.batch_size} "
        f"and image_size={size} ({str(exc).splitlines()[0][:160]}). Try --batch-size "
        f"{smaller} (a multiple of m={t.m}) or --image-size {max(32, size * 3 // 4 // 32 * 32)}"
        f", or fewer loader processes (--jobs); nothing of this epoch was written and the last checkpoint "
        f"{where} is kept (--resume continues from it)"
    )
