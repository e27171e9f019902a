"""Training: the run configuration, the training loop, checkpoints, distributed runs, and
loading a finished run for inference.

Names are imported lazily, so ``from cxrembed.train.config import RunConfig`` does not
import torch.

Modules
-------
config
    :class:`RunConfig` <-> ``config.yaml``: every setting and its default.
trainer
    :func:`train`: labels table + images (or cache) -> run folder. The Python entry point
    of ``cxr train``.
loop
    :func:`fit`: epochs, steps, validation, checkpoints, signals, NaN and out-of-memory.
data
    Datasets, patient-level split, batch sampler and label checks for a run.
schedule
    AdamW parameter groups and the warmup + cosine learning-rate schedule.
validation
    The per-epoch validation retrieval metrics (MAP@R, P@1, P@5).
checkpoint
    The run folder on disk; atomic checkpoints.
distributed
    torchrun detection, process group, DDP wrapping, rank-0-only writing.
run
    :func:`load_run`, :func:`config_hash`, :func:`encode_dataset`.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "RunConfig",
    "config_hash",
    "train",
    "TrainResult",
    "fit",
    "load_run",
    "encode_dataset",
    "eval_transform_for",
]

_LAZY = {
    "RunConfig": "cxrembed.train.config",
    "config_hash": "cxrembed.train.config",
    "train": "cxrembed.train.trainer",
    "TrainResult": "cxrembed.train.loop",
    "fit": "cxrembed.train.loop",
    "load_run": "cxrembed.inference.run",
    "encode_dataset": "cxrembed.inference.run",
    "eval_transform_for": "cxrembed.inference.run",
}

__getattr__, __dir__ = lazy_exports("cxrembed.train", _LAZY)
