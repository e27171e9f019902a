"""Losses for chest radiograph embeddings, called PML-style as ``loss(embeddings, labels)``
or ``loss(embeddings, labels, indices_tuple)`` with a miner's output.

Labels are 1-D class ids or a ``(B, C)`` matrix (1 / 0 / -1 uncertain / NaN not mentioned)
with an optional ``known`` mask; pairs relate by label-set overlap
(:mod:`cxrembed.losses.pairs`). See each module for its formula, and
:mod:`cxrembed.losses.registry` for the ``training.loss`` names.

Names are imported lazily, so ``from cxrembed.losses.registry import LOSS_SPECS`` (used by
the run configuration) does not import torch.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.losses.base": ["PairLoss"],
        "cxrembed.losses.multi_similarity": ["MultiSimilarityLoss"],
        "cxrembed.losses.ml2": ["ML2Loss"],
        "cxrembed.losses.bce": ["MaskedBCEWithLogitsLoss"],
        "cxrembed.losses.mining": ["MultiSimilarityMiner", "ms_hard_pairs"],
        "cxrembed.losses.pairs": ["LabelSets", "PairRelations", "label_jaccard", "pair_relations"],
        "cxrembed.losses.noise": [
            "LabelReliability",
            "read_label_reliability",
            "reliability_pair_weights",
            "drop_hardest_positives",
        ],
        "cxrembed.losses.registry": ["LossSpec", "LOSS_SPECS", "loss_spec"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.losses", _LAZY)
