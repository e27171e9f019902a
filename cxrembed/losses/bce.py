r"""Masked multi-label binary cross-entropy: the "direct diagnostic model" baseline.

A classifier trained with per-label BCE is what retrieval models are compared against (its
penultimate layer doubles as an embedding). Unknown positions (uncertain ``-1``, ``NaN``,
or ``known=False``) carry no target, so they are left out of the loss rather than guessed:

.. math::

    L = \frac{\sum_i u_i \sum_c k_{ic}\, \mathrm{BCE}(z_{ic}, y_{ic})}
             {\sum_i u_i \sum_c k_{ic}}, \qquad
    \mathrm{BCE}(z, y) = -\big[\rho_c\, y \log\sigma(z) + (1 - y)\log(1 - \sigma(z))\big]

with logits :math:`z`, known-mask :math:`k`, per-exam weights :math:`u` (default 1) and
optional per-label positive weights :math:`\rho_c` (``pos_weight``, for rare findings).
A batch without one known position gives 0 (with a ``grad_fn``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cxrembed.errors import LossInputError
from cxrembed.losses.base import (
    as_label_sets,
    check_embeddings,
    check_sample_weights,
    miner_weights,
)
from cxrembed.losses.pairs import LabelSets

__all__ = ["MaskedBCEWithLogitsLoss"]


class MaskedBCEWithLogitsLoss(torch.nn.Module):
    """Per-label BCE on logits over known label positions only (formula above).

    Parameters
    ----------
    pos_weight : sequence of float, optional
        One weight > 0 per label column for the positive term (as in
        :class:`torch.nn.BCEWithLogitsLoss`).

    Examples
    --------
    >>> logits = torch.zeros(2, 3, requires_grad=True)
    >>> labels = torch.tensor([[1.0, 0.0, float("nan")], [-1.0, 1.0, 0.0]])
    >>> loss = MaskedBCEWithLogitsLoss()(logits, labels)
    >>> round(loss.item(), 4)  # log(2): four known positions, all at logit 0
    0.6931
    """

    def __init__(self, pos_weight: Sequence[float] | torch.Tensor | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor | Sequence,
        indices_tuple: Sequence[torch.Tensor] | None = None,
        known: torch.Tensor | None = None,
        weights: torch.Tensor | Sequence[float] | None = None,
    ) -> torch.Tensor:
        """Masked mean BCE; ``labels`` as for every loss (1-D ids must be < n columns)."""
        logits = check_embeddings(logits, what="logits")
        batch, n_cols = logits.shape
        sets = as_label_sets(labels, batch, logits.device, known)
        if sets.class_ids is not None:
            sets = _class_ids_to_columns(torch.as_tensor(labels, device=logits.device), n_cols)
        if sets.positive.shape[1] != n_cols:
            raise LossInputError(
                f"labels have {sets.positive.shape[1]} columns but the logits have {n_cols}; "
                "the classifier head needs one output per label column."
            )
        sample_weights = check_sample_weights(weights, batch, logits)
        mined = miner_weights(indices_tuple, batch, logits)
        pos_weight = self._pos_weight(n_cols, logits)
        per_entry = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, sets.positive.to(logits.dtype), reduction="none", pos_weight=pos_weight
        )
        if mined is not None:  # a miner's output scales each exam's loss, as in PML
            per_entry = per_entry * mined[:, None]
        mask = sets.known.to(logits.dtype)
        if sample_weights is not None:
            mask = mask * sample_weights[:, None]
        # No known position (or zero total weight) gives 0 / tiny = 0, still with a grad_fn.
        return (per_entry * mask).sum() / mask.sum().clamp_min(torch.finfo(logits.dtype).tiny)

    def _pos_weight(self, n_cols: int, like: torch.Tensor) -> torch.Tensor | None:
        if self.pos_weight is None:
            return None
        weight = torch.as_tensor(self.pos_weight, dtype=like.dtype, device=like.device)
        if weight.shape != (n_cols,) or not bool((torch.isfinite(weight) & (weight > 0)).all()):
            raise LossInputError(
                f"pos_weight must hold {n_cols} finite values > 0 (one per label column); got "
                f"{weight.tolist()}."
            )
        return weight


def _class_ids_to_columns(ids: torch.Tensor, n_cols: int) -> LabelSets:
    """One-hot over the logits' columns (ids are column numbers, not compacted)."""
    if bool(((ids < 0) | (ids >= n_cols)).any()):
        raise LossInputError(
            f"1-D class ids must lie in [0, {n_cols}) to index the {n_cols} logit columns; got "
            f"values from {int(ids.min())} to {int(ids.max())}."
        )
    positive = torch.nn.functional.one_hot(ids.long(), n_cols).bool()
    return LabelSets(positive=positive, known=torch.ones_like(positive))
