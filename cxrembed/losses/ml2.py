r"""ML2: a contrastive loss whose target distance follows the label-set overlap.

After Annarumma & Montana, "Deep metric learning for multi-labelled radiographs" (arXiv
2017, ACM SAC 2018): in multi-label data two exams can match partly, so they should be
closer than exams with nothing in common but not as close as exams with the same findings.
Our reading of their idea, on L2-normalised embeddings with distance :math:`d_{ij}` and
label-set Jaccard :math:`s_{ij}` (:mod:`cxrembed.losses.pairs`):

.. math::

    \ell_{ij} =
    \begin{cases}
      s_{ij}\, \big[d_{ij} - m_{pos}(1 - s_{ij})\big]_+^2
          & \text{positive pair: } s_{ij} \ge \tau_{pos} \\
      \big[m_{neg} - d_{ij}\big]_+^2 & \text{negative pair: } s_{ij} \le \tau_{neg}
    \end{cases}

so identical label sets (:math:`s = 1`) are pulled all the way together with full weight,
and a partial match is pulled only to within :math:`m_{pos}(1 - s)` and with weight
:math:`s`: both its equilibrium distance is larger and its gradient smaller. Pair weights
from label reliability multiply :math:`\ell_{ij}`. Each exam's loss is the mean over its
pairs, :math:`\ell_i = \frac{1}{|\mathcal{P}_i| + |\mathcal{N}_i|}\sum_j w_{ij}\ell_{ij}`
(0 without pairs), and the batch loss is the mean over exams.
"""

from __future__ import annotations

import torch

from cxrembed.losses.base import Numbers, PairLoss, check_number
from cxrembed.losses.pairs import PairRelations

__all__ = ["ML2Loss"]

# Squared distances are clamped to this before the square root: the gradient of sqrt at 0
# is infinite, and an exam's distance to itself (or a duplicate) is exactly 0.
_MIN_SQUARED_DISTANCE = 1e-12


class ML2Loss(PairLoss):
    """Overlap-aware contrastive loss (formula in the module docstring).

    Parameters
    ----------
    pos_margin : float
        :math:`m_{pos}`: a pair with overlap :math:`s` is pulled to within
        :math:`m_{pos}(1 - s)`.
    neg_margin : float
        :math:`m_{neg}`: negatives are pushed beyond this distance (on unit vectors
        1.0 is a cosine of 0.5, :math:`\\sqrt{2}` orthogonal).
    normalize : bool
        L2-normalise the embeddings first (default), so distances lie in [0, 2].
    tau_pos, tau_neg, reliability, reliability_combine, drop_fraction
        Pair relations and noise handling, see :class:`~cxrembed.losses.base.PairLoss`.
        ``tau_pos`` defaults to 0.1, so any real overlap pulls (with weight :math:`s`).

    Examples
    --------
    >>> emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8]], requires_grad=True)
    >>> labels = torch.tensor([[1, 1], [1, 1], [1, 0]])
    >>> loss = ML2Loss(pos_margin=1.0)(emb, labels)
    >>> loss.backward()
    >>> # the identical exam (row 1) is pulled harder than the partial match (row 2)
    >>> bool(emb.grad[1].norm() > emb.grad[2].norm())
    True
    """

    def __init__(
        self,
        pos_margin: float = 0.7,
        neg_margin: float = 1.0,
        normalize: bool = True,
        *,
        tau_pos: float = 0.1,
        tau_neg: float = 0.0,
        reliability: Numbers = None,
        reliability_combine: str = "product",
        drop_fraction: float = 0.0,
    ) -> None:
        super().__init__(
            tau_pos=tau_pos,
            tau_neg=tau_neg,
            overlap_weighting=False,
            reliability=reliability,
            reliability_combine=reliability_combine,
            drop_fraction=drop_fraction,
        )
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin
        self.normalize = normalize

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        check_number(self.pos_margin, "pos_margin", owner, closed="left")
        check_number(self.neg_margin, "neg_margin", owner)

    def _pair_matrix(self, embeddings: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
        sq_norm = (embeddings * embeddings).sum(dim=1)
        squared = sq_norm[:, None] + sq_norm[None, :] - 2.0 * (embeddings @ embeddings.T)
        return torch.sqrt(squared.clamp_min(_MIN_SQUARED_DISTANCE))

    def _pair_terms(self, dist: torch.Tensor, relations: PairRelations) -> torch.Tensor:
        """(B, B) unweighted pair losses, zero outside positive and negative pairs."""
        overlap = torch.nan_to_num(relations.similarity, nan=0.0)
        target = self.pos_margin * (1.0 - overlap)
        pull = overlap * torch.relu(dist - target).square()
        push = torch.relu(self.neg_margin - dist).square()
        zero = torch.zeros((), dtype=dist.dtype, device=dist.device)
        return torch.where(relations.positive, pull, torch.where(relations.negative, push, zero))

    def _positive_pair_losses(self, mat: torch.Tensor, relations: PairRelations) -> torch.Tensor:
        return self._pair_terms(mat, relations)

    def _compute(
        self, mat: torch.Tensor, relations: PairRelations, pair_weights: torch.Tensor | None
    ) -> torch.Tensor:
        terms = self._pair_terms(mat, relations)
        if pair_weights is not None:
            terms = terms * pair_weights
        n_pairs = (relations.positive | relations.negative).sum(dim=1).to(mat.dtype)
        return terms.sum(dim=1) / n_pairs.clamp_min(1.0)
