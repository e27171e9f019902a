r"""Multi-similarity pairs plus a linear classification term on the same projection.

.. math::

    L = L_{MS}(e, y) + \lambda\, L_{BCE}(W p + b, y)

where :math:`p` is the model's projection before L2 normalisation and :math:`e = p/\|p\|`
its embedding (MS compares cosines, so it sees :math:`e`). The classifier
:math:`(W, b)` belongs to the loss (like a PML loss with parameters): the model stays a
pure embedding network, and the BCE term (:class:`~cxrembed.losses.MaskedBCEWithLogitsLoss`,
unknown labels masked) is the ``ce`` baseline's, trained jointly with the pairs. The
training loop feeds this loss the ``projection`` (its ``input_key``).

``head="softmax"`` (single-label data only) replaces BCE by a softmax cross-entropy, which
takes ``label_smoothing`` and, for label noise, a ``transition`` matrix (forward
correction, as in :mod:`cxrembed.losses.proxy`).
"""

from __future__ import annotations

from typing import Any

import torch

from cxrembed.errors import LossInputError
from cxrembed.losses.base import LossInputs, check_number, with_pair_options
from cxrembed.losses.bce import MaskedBCEWithLogitsLoss
from cxrembed.losses.multi_similarity import MultiSimilarityLoss
from cxrembed.losses.proxy import SoftmaxLoss, Transition

__all__ = ["MultiSimilarityClassifierLoss"]


class MultiSimilarityClassifierLoss(MultiSimilarityLoss):
    """MS loss with mining + ``ce_weight`` times masked BCE of a linear head.

    Parameters
    ----------
    num_classes, embedding_dim : int
        Label columns and projection size (the trainer sets them).
    alpha, beta, base, epsilon, mining
        The MS term.
    ce_weight : float
        :math:`\\lambda` (0 turns the classification term off).
    multilabel : bool
        Set by the trainer from the labels; multi-label data always use the BCE head.
    head : {"bce", "softmax"}
        The classification term for single-label data.
    label_smoothing : float
        Softmax head only.
    transition : (C, C) matrix, optional
        Forward correction for label noise (single-label); it implies the softmax head.
    tau_pos, tau_neg, overlap_weighting, reliability, reliability_combine, drop_fraction
        As for :class:`~cxrembed.losses.base.PairLoss`.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> loss_fn = MultiSimilarityClassifierLoss(2, 4)
    >>> projection = torch.randn(8, 4, requires_grad=True)
    >>> labels = torch.tensor([[1, 0]] * 4 + [[0, 1]] * 4)
    >>> total = loss_fn(projection, labels)
    >>> bool(total > MultiSimilarityLoss()(projection, labels))
    True
    """

    input_key = "projection"

    @with_pair_options
    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        epsilon: float = 0.1,
        mining: bool = True,
        ce_weight: float = 1.0,
        multilabel: bool = False,
        head: str = "bce",
        label_smoothing: float = 0.0,
        transition: Transition = None,
        **pair_options: Any,
    ) -> None:
        super().__init__(alpha, beta, base, epsilon, mining, **pair_options)
        check_number(ce_weight, "ce_weight", type(self).__name__, 0.0, closed="left")
        self.ce_weight = ce_weight
        if head not in ("bce", "softmax"):
            raise LossInputError(f"head must be 'bce' or 'softmax'; got {head!r}")
        # Forward correction needs a distribution over classes: with a transition matrix
        # the single-label head is the corrected softmax.
        self.head = "bce" if multilabel else "softmax" if transition is not None else head
        self.classifier = torch.nn.Linear(embedding_dim, num_classes)
        self.bce = MaskedBCEWithLogitsLoss()
        self.softmax = SoftmaxLoss(
            num_classes,
            label_smoothing=label_smoothing,
            transition=transition,
            multilabel=multilabel,
        )

    def batch_loss(self, inputs: LossInputs) -> torch.Tensor:
        """MS loss of the batch plus ``ce_weight`` times the BCE of the linear head."""
        pairs = super().batch_loss(inputs)
        if self.ce_weight == 0:
            return pairs
        projection = inputs.embeddings
        logits = self.classifier(projection.to(self.classifier.weight.dtype)).to(projection.dtype)
        term = self.bce if self.head == "bce" else self.softmax
        return pairs + self.ce_weight * term(*inputs._replace(embeddings=logits))
