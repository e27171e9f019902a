r"""Multi-similarity pairs plus a normalised-softmax proxy term on the same embedding.

.. math::

    L = L_{MS}(e, y) + \lambda\, L_{proxy}(e, y)

:math:`L_{MS}` (:mod:`cxrembed.losses.multi_similarity`) shapes the neighbourhoods of a
batch from its hardest pairs; :math:`L_{proxy}` (:mod:`cxrembed.losses.proxy`) pulls every
embedding to its class proxy, which sees every image (not only the mined pairs) and gives
compact, well-separated classes. Many retrieval systems train with such a pair + class
combination; on real radiographs with few classes it beat each term alone (see the
README's training section and ``benchmarks/recipe_ablation.py``).

The noise options of the MS term (pair reliability, dropping largest-loss pairs) apply to
the pairs; the proxy term takes a noise ``transition`` matrix for forward correction and
drops the same fraction of its largest per-image losses when ``drop_fraction`` is set.
"""

from __future__ import annotations

from typing import Any

import torch

from cxrembed.losses.base import LossInputs, check_number, with_pair_options
from cxrembed.losses.multi_similarity import MultiSimilarityLoss
from cxrembed.losses.proxy import NormalizedSoftmaxLoss, Transition

__all__ = ["MultiSimilarityProxyLoss"]


class MultiSimilarityProxyLoss(MultiSimilarityLoss):
    """MS loss with mining + ``proxy_weight`` times a normalised-softmax proxy loss.

    Parameters
    ----------
    num_classes, embedding_dim : int
        Label columns and embedding size (the trainer sets them).
    alpha, beta, base, epsilon, mining
        The MS term (:class:`~cxrembed.losses.MultiSimilarityLoss`).
    proxy_weight : float
        :math:`\\lambda`, weight of the proxy term (0 turns it off).
    temperature : float
        Cosine temperature of the proxy term.
    multilabel : bool
        Per-class BCE proxies instead of one softmax (the trainer sets it from the labels).
    transition : (C, C) matrix, optional
        Noise transition for forward correction of the proxy term.
    label_smoothing : float
        Label smoothing of the proxy term (single-label).
    tau_pos, tau_neg, overlap_weighting, reliability, reliability_combine, drop_fraction
        As for :class:`~cxrembed.losses.base.PairLoss`.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> loss_fn = MultiSimilarityProxyLoss(2, 4)
    >>> emb = torch.randn(8, 4, requires_grad=True)
    >>> labels = torch.tensor([[1, 0]] * 4 + [[0, 1]] * 4)
    >>> total = loss_fn(emb, labels)
    >>> ms_only = MultiSimilarityLoss()(emb, labels)
    >>> bool(total > ms_only)
    True
    """

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
        proxy_weight: float = 1.0,
        temperature: float = 0.05,
        multilabel: bool = False,
        transition: Transition = None,
        label_smoothing: float = 0.0,
        **pair_options: Any,
    ) -> None:
        super().__init__(alpha, beta, base, epsilon, mining, **pair_options)
        check_number(proxy_weight, "proxy_weight", type(self).__name__, 0.0, closed="left")
        self.proxy_weight = proxy_weight
        self.proxy = NormalizedSoftmaxLoss(
            num_classes,
            embedding_dim,
            temperature=temperature,
            multilabel=multilabel,
            transition=transition,
            drop_fraction=self.drop_fraction,
            label_smoothing=label_smoothing,
        )

    def batch_loss(self, inputs: LossInputs) -> torch.Tensor:
        """MS loss of the batch plus ``proxy_weight`` times its proxy loss."""
        pairs = super().batch_loss(inputs)
        if self.proxy_weight == 0:
            return pairs
        return pairs + self.proxy_weight * self.proxy(*inputs)
