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

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.inference.run": ["load_run"],
        "cxrembed.train.checkpoint": ["read_run_config"],
        "cxrembed.models.encode": ["encode_dataset"],
        "cxrembed.data.transforms": ["eval_transform_for"],
        "cxrembed.inference.encoder": ["Encoder"],
        "cxrembed.inference.embed": ["embed_images", "EmbedSummary"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.inference", _LAZY)
