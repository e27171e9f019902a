r"""Multi-similarity loss (Wang et al., CVPR 2019) for multi-label exams, hard mining built in.

For anchor :math:`i` with cosine similarities :math:`S_{ij}`, its kept positive pairs
:math:`\mathcal{P}_i` and negative pairs :math:`\mathcal{N}_i` (label-set relations, then
MS hard mining, :mod:`cxrembed.losses.mining`), and pair weights :math:`w_{ij}` (1 unless
overlap weighting or label reliability is on):

.. math::

    \ell_i = \frac{1}{\alpha}\log\Big(1 + \sum_{p \in \mathcal{P}_i}
                w_{ip}\, e^{-\alpha (S_{ip} - \lambda)}\Big)
           + \frac{1}{\beta}\log\Big(1 + \sum_{n \in \mathcal{N}_i}
                w_{in}\, e^{\beta (S_{in} - \lambda)}\Big),
    \qquad L = \frac{1}{B}\sum_i \ell_i

An anchor without kept pairs has :math:`\ell_i = 0`. Everything comes from one ``B x B``
similarity matrix: mining is two masked row-max/min, the sums are masked, max-shifted
exponentials (no overflow for any :math:`\beta`), and nothing loops over anchors.

On 1-D class ids with the defaults this is the value of PML's
``MultiSimilarityLoss(alpha=2, beta=50, base=0.5)`` applied to the pairs of
``MultiSimilarityMiner(epsilon=0.1)``. Given a miner's output, ``loss(embeddings, labels,
indices_tuple)`` uses exactly its pairs, with no mining of its own: the value of PML's
``MultiSimilarityLoss()(embeddings, labels, indices_tuple)``. One deliberate difference: PML returns 0 when the
miner keeps at most one positive *and* at most one negative pair in the whole batch (its
``GenericPairLoss`` treats that as empty); here those pairs still count.
"""

from __future__ import annotations

from typing import Any

import torch

from cxrembed.losses.base import PairLoss, check_number, with_pair_options
from cxrembed.losses.mining import cosine_similarity_matrix, ms_hard_pairs
from cxrembed.losses.pairs import PairRelations

__all__ = ["MultiSimilarityLoss"]

# Exponents are clamped to this floor before exp(): CPU exp() takes a slow path (10-80x)
# for -inf and near-underflow inputs. After the shift the largest term in each row is >= 1,
# so a term below e^-50 changes a row's log-sum by under B * 2e-22: nothing in float64.
_EXP_FLOOR = -50.0


def _log1p_sum_exp(
    sim: torch.Tensor,
    mask: torch.Tensor,
    scale: float,
    offset: float,
    weights: torch.Tensor | None,
) -> torch.Tensor:
    r"""Row-wise :math:`\log(1 + \sum_{j \in mask} w_j e^{scale (S_j - offset)})`, stable.

    Entries outside ``mask`` are set to the similarity whose exponent is the floor, so they
    add at most ``B * e^-50`` (nothing, even in float64) and receive no gradient; rows
    without any entry give exactly 0.
    """
    x = scale * (torch.where(mask, sim, offset + _EXP_FLOOR / scale) - offset)
    # The shift keeps exp() in range; detaching it leaves the value and gradient exact.
    shift = x.amax(dim=1, keepdim=True).clamp_min(0.0).detach()
    terms = torch.exp((x - shift).clamp_min(_EXP_FLOOR))
    if weights is not None:
        terms = terms * weights
    total = terms.sum(dim=1, keepdim=True) + torch.exp(-shift)
    return (shift + torch.log(total)).squeeze(1)


class MultiSimilarityLoss(PairLoss):
    """MS loss with MS hard mining on label-set pairs (formula in the module docstring).

    Parameters
    ----------
    alpha : float
        Scale of the positive term (PML ``alpha``).
    beta : float
        Scale of the negative term (PML ``beta``).
    base : float
        The similarity offset :math:`\\lambda` (PML ``base``).
    epsilon : float
        Mining slack (PML ``MultiSimilarityMiner(epsilon)``).
    mining : bool
        Use MS hard mining (default). Off: every positive / negative pair counts.
    tau_pos, tau_neg, overlap_weighting, reliability, reliability_combine, drop_fraction
        Pair relations and noise handling, see :class:`~cxrembed.losses.base.PairLoss`.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> emb = torch.randn(8, 4, requires_grad=True)
    >>> labels = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 1], [0, 0], [0, 0]])
    >>> loss = MultiSimilarityLoss()(emb, labels)
    >>> loss.backward()
    >>> bool(loss > 0), emb.grad.shape
    (True, torch.Size([8, 4]))
    """

    @with_pair_options
    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        epsilon: float = 0.1,
        mining: bool = True,
        **pair_options: Any,
    ) -> None:
        super().__init__(**pair_options)
        self.alpha = alpha
        self.beta = beta
        self.base = base
        self.epsilon = epsilon
        self.mining = mining

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        check_number(self.alpha, "alpha", owner)
        check_number(self.beta, "beta", owner)
        check_number(self.base, "base", owner, -1.0, 1.0, closed="both")
        check_number(self.epsilon, "epsilon", owner, closed="left")

    def _pair_matrix(self, embeddings: torch.Tensor) -> torch.Tensor:
        return cosine_similarity_matrix(embeddings)

    def _positive_pair_losses(self, mat: torch.Tensor, relations: PairRelations) -> torch.Tensor:
        # A positive pair's own term grows with exp(-alpha * S): rank by low similarity.
        return -mat

    def _mine(self, mat: torch.Tensor, relations: PairRelations) -> PairRelations:
        if not self.mining:
            return relations
        positive, negative = ms_hard_pairs(
            mat, relations.positive, relations.negative, self.epsilon
        )
        return PairRelations(
            similarity=relations.similarity,
            valid=relations.valid,
            positive=positive,
            negative=negative,
        )

    def _compute(
        self, mat: torch.Tensor, relations: PairRelations, pair_weights: torch.Tensor | None
    ) -> torch.Tensor:
        positive, negative = relations.positive, relations.negative
        pos_term = _log1p_sum_exp(mat, positive, -self.alpha, self.base, pair_weights)
        neg_term = _log1p_sum_exp(mat, negative, self.beta, self.base, pair_weights)
        return pos_term / self.alpha + neg_term / self.beta
