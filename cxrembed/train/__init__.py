"""Training: the run configuration, the training loop, checkpoints, distributed runs.

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

Training never imports :mod:`cxrembed.inference`; ``load_run`` is re-exported lazily here
for old imports (it lives in :mod:`cxrembed.inference.run`).
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.train.config": ["RunConfig", "config_hash"],
        "cxrembed.train.trainer": ["train"],
        "cxrembed.train.loop": ["TrainResult", "fit"],
        "cxrembed.inference.run": ["load_run"],  # for old imports: inference owns it
        "cxrembed.models.encode": ["encode_dataset"],
        "cxrembed.data.transforms": ["eval_transform_for"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.train", _LAZY)
