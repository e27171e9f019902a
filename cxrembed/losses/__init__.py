"""Losses for chest radiograph embeddings, called PML-style as ``loss(embeddings, labels)``
or ``loss(embeddings, labels, indices_tuple)`` with a miner's output.

Labels are 1-D class ids or a ``(B, C)`` matrix (1 / 0 / -1 uncertain / NaN not mentioned)
with an optional ``known`` mask; pairs relate by label-set overlap
(:mod:`cxrembed.losses.pairs`). See each module for its formula.
"""

from cxrembed.losses.base import PairLoss
from cxrembed.losses.bce import MaskedBCEWithLogitsLoss
from cxrembed.losses.mining import MultiSimilarityMiner, ms_hard_pairs
from cxrembed.losses.ml2 import ML2Loss
from cxrembed.losses.multi_similarity import MultiSimilarityLoss
from cxrembed.losses.noise import (
    LabelReliability,
    drop_hardest_positives,
    read_label_reliability,
    reliability_pair_weights,
)
from cxrembed.losses.pairs import LabelSets, PairRelations, label_jaccard, pair_relations

__all__ = [
    "PairLoss",
    "MultiSimilarityLoss",
    "ML2Loss",
    "MaskedBCEWithLogitsLoss",
    "MultiSimilarityMiner",
    "ms_hard_pairs",
    "LabelSets",
    "PairRelations",
    "label_jaccard",
    "pair_relations",
    "LabelReliability",
    "read_label_reliability",
    "reliability_pair_weights",
    "drop_hardest_positives",
]
