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

import torch

from cxrembed.errors import LossInputError
from cxrembed.losses.base import (
    BatchLoss,
    LossInputs,
    Numbers,
    check_inputs,
    label_columns,
    miner_weights,
)

__all__ = ["MaskedBCEWithLogitsLoss"]

_LOGITS_MISMATCH = "the logits have {n}; the classifier head needs one output per label column."


class MaskedBCEWithLogitsLoss(BatchLoss):
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

    def __init__(self, pos_weight: Numbers = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def batch_loss(self, inputs: LossInputs) -> torch.Tensor:
        """Masked mean BCE; ``labels`` as for every loss (1-D ids must be < n columns)."""
        logits, _, sets, sample_weights = check_inputs(inputs, what="logits")
        batch, n_cols = logits.shape
        sets = label_columns(sets, inputs.labels, n_cols, expected=_LOGITS_MISMATCH)
        mined = miner_weights(inputs.indices_tuple, batch, logits)
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
