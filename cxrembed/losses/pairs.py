r"""Which exams in a batch count as similar: label-set similarity and pair masks.

Metric learning on single-label data calls two exams positive when their class ids match.
Chest radiographs carry *sets* of findings, so here the relation of a pair comes from the
overlap of its two label sets, measured on the labels known for both exams:

.. math::

    K_{ij} = \{c : c \text{ known in } i \text{ and } j\},\quad
    A = P_i \cap K_{ij},\quad B = P_j \cap K_{ij},\quad
    J_{ij} = \frac{|A \cap B|}{|A \cup B|}

where :math:`P_i` is the set of positive labels of exam :math:`i`. Uncertain (``-1``) and
missing (``NaN`` or masked) positions are not in :math:`K`, so they never decide a pair.
Two exams with no positive label on their shared known labels are both "no finding": that
is a label of its own, and :math:`J_{ij} = 1`. A pair with no shared known label has no
defined similarity (``NaN``) and is neither positive nor negative.

A pair is **positive** if :math:`J_{ij} \ge \tau_{pos}`, **negative** if
:math:`J_{ij} \le \tau_{neg}`; pairs in between are ignored. An exam is never paired with
itself. For one-hot (single-label) rows every :math:`J` is 0 or 1, so any
:math:`0 \le \tau_{neg} < \tau_{pos} \le 1` gives the usual same-class relation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["LabelSets", "PairRelations", "label_jaccard", "pair_relations"]

# Jaccard values are ratios of small integer counts; this slack makes ``J >= 1/3`` hold
# for a threshold typed as 0.3333333 and for float32 rounding of 1/3.
_TAU_SLACK = 1e-6


@dataclass(frozen=True)
class LabelSets:
    """A batch's labels as boolean sets: what is positive and what is known.

    Attributes
    ----------
    positive : torch.Tensor
        ``(B, C)`` bool, True where the label is 1 and known.
    known : torch.Tensor
        ``(B, C)`` bool, True where the label is 0 or 1 and not masked.
    class_ids : torch.Tensor or None
        ``(B,)`` integer class ids when the batch came as 1-D single-label input (then
        ``positive`` is their one-hot form); lets pair relations use a plain equality.
    """

    positive: torch.Tensor
    known: torch.Tensor
    class_ids: torch.Tensor | None = None


@dataclass(frozen=True)
class PairRelations:
    """How every ordered pair of a batch relates, computed once per batch.

    Attributes
    ----------
    similarity : torch.Tensor
        ``(B, B)`` masked Jaccard :math:`J_{ij}` in [0, 1]; NaN where undefined.
    valid : torch.Tensor
        ``(B, B)`` bool, pair has at least one shared known label (diagonal False).
    positive, negative : torch.Tensor
        ``(B, B)`` bool masks (disjoint, diagonal False).
    """

    similarity: torch.Tensor
    valid: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor


def label_jaccard(sets: LabelSets, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Masked Jaccard similarity of every pair of label sets (see the module docstring).

    Three ``(B, C) @ (C, B)`` products give the counts, so the cost is one small matmul
    per batch. The diagonal is left as computed (1 where the row has a known label).

    Parameters
    ----------
    sets : LabelSets
        Positive and known masks of the batch.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    torch.Tensor
        ``(B, B)``, NaN where the two rows share no known label.

    Examples
    --------
    >>> pos = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    >>> label_jaccard(LabelSets(pos, torch.ones_like(pos)))
    tensor([[1.0000, 0.5000, 0.0000],
            [0.5000, 1.0000, 0.0000],
            [0.0000, 0.0000, 1.0000]])
    """
    if sets.class_ids is not None:
        ids = sets.class_ids
        return (ids[:, None] == ids[None, :]).to(dtype)
    pos = sets.positive.to(dtype)
    known = sets.known.to(dtype)
    inter = pos @ pos.T
    # |A|: positives of i among the labels j knows; |B| is its transpose.
    size_a = pos @ known.T
    union = size_a + size_a.T - inter
    shared = known @ known.T
    jac = inter / union.clamp_min(1.0)
    no_finding = torch.ones((), dtype=dtype, device=jac.device)
    nan = torch.full((), float("nan"), dtype=dtype, device=jac.device)
    return torch.where(union > 0, jac, torch.where(shared > 0, no_finding, nan))


def pair_relations(
    sets: LabelSets, tau_pos: float, tau_neg: float, dtype: torch.dtype = torch.float32
) -> PairRelations:
    """Positive / negative / ignored pair masks from the label sets.

    Parameters
    ----------
    sets : LabelSets
        Positive and known masks of the batch.
    tau_pos, tau_neg : float
        A pair is positive if its Jaccard is at least ``tau_pos`` and negative if it is at
        most ``tau_neg`` (``0 <= tau_neg < tau_pos <= 1``).
    dtype : torch.dtype
        Floating dtype of ``similarity``.

    Returns
    -------
    PairRelations

    Examples
    --------
    >>> pos = torch.tensor([[1, 1], [1, 0], [0, 1], [0, 0]], dtype=torch.bool)
    >>> rel = pair_relations(LabelSets(pos, torch.ones_like(pos)), tau_pos=0.5, tau_neg=0.0)
    >>> rel.positive.int()
    tensor([[0, 1, 1, 0],
            [1, 0, 0, 0],
            [1, 0, 0, 0],
            [0, 0, 0, 0]], dtype=torch.int32)
    >>> rel.negative.int()
    tensor([[0, 0, 0, 1],
            [0, 0, 1, 1],
            [0, 1, 0, 1],
            [1, 1, 1, 0]], dtype=torch.int32)
    """
    sim = label_jaccard(sets, dtype)
    batch = sim.shape[0]
    off_diag = ~torch.eye(batch, dtype=torch.bool, device=sim.device)
    if sets.class_ids is not None:  # one-hot rows: J is 0 or 1, no NaN, no threshold needed
        same = sets.class_ids[:, None] == sets.class_ids[None, :]
        return PairRelations(
            similarity=sim, valid=off_diag, positive=same & off_diag, negative=~same
        )
    valid = ~torch.isnan(sim) & off_diag
    positive = valid & (sim >= tau_pos - _TAU_SLACK)
    negative = valid & ~positive & (sim <= tau_neg + _TAU_SLACK)
    return PairRelations(similarity=sim, valid=valid, positive=positive, negative=negative)
