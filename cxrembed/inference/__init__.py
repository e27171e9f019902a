"""Use a trained run: rebuild its model and preprocessing, and embed images.

Modules
-------
run
    :func:`load_run` (model + config from a run folder), the run's eval transform,
    :func:`encode_dataset`.
encoder
    :class:`Encoder`: images in [0, 1] -> unit-norm embeddings with the run's preprocessing.
embed
    :func:`embed_images`: batched, resumable embedding of many images (``cxr embed``).
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "load_run",
    "read_run_config",
    "encode_dataset",
    "eval_transform_for",
    "Encoder",
    "embed_images",
    "EmbedSummary",
]

_LAZY = {
    "load_run": "cxrembed.inference.run",
    "read_run_config": "cxrembed.inference.run",
    "encode_dataset": "cxrembed.inference.run",
    "eval_transform_for": "cxrembed.inference.run",
    "Encoder": "cxrembed.inference.encoder",
    "embed_images": "cxrembed.inference.embed",
    "EmbedSummary": "cxrembed.inference.embed",
}

__getattr__, __dir__ = lazy_exports("cxrembed.inference", _LAZY)
