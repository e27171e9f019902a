r"""Multi-similarity hard mining (Wang et al., CVPR 2019), on label-set pair relations.

For anchor :math:`i` with cosine similarities :math:`S_{ij}`, a positive pair is kept if it
is less similar than the anchor's most similar negative plus a slack, and a negative pair
if it is more similar than the anchor's least similar positive minus the slack:

.. math::

    S_{ip} - \epsilon < \max_{n \in N_i} S_{in}, \qquad
    S_{in} + \epsilon > \min_{p \in P_i} S_{ip}

An anchor without negatives keeps no positives and an anchor without positives keeps no
negatives (the max / min over an empty set is :math:`-\infty` / :math:`+\infty`). These are
the comparisons of PML's ``MultiSimilarityMiner``, done on masks over one similarity
matrix instead of two sorts, so the pairs kept are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cxrembed.losses.base import as_label_sets, check_embeddings, check_number, check_taus
from cxrembed.losses.pairs import pair_relations

__all__ = ["MultiSimilarityMiner", "ms_hard_pairs", "cosine_similarity_matrix"]


def cosine_similarity_matrix(embeddings: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` cosine similarities (same operations as PML's ``CosineSimilarity``)."""
    unit = torch.nn.functional.normalize(embeddings, p=2, dim=1)
    return torch.matmul(unit, unit.transpose(-1, -2))


def ms_hard_pairs(
    sim: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard positive and negative masks by the MS mining rule (see the module docstring).

    Parameters
    ----------
    sim : torch.Tensor
        ``(B, B)`` similarities (no gradient needed).
    positive, negative : torch.Tensor
        ``(B, B)`` bool candidate masks.
    epsilon : float
        Mining slack.

    Returns
    -------
    tuple of torch.Tensor
        ``(hard_positive, hard_negative)`` bool masks, subsets of the inputs.

    Examples
    --------
    >>> sim = torch.tensor([[1.0, 0.9, 0.2, 0.85], [0.9, 1.0, 0.1, 0.3],
    ...                     [0.2, 0.1, 1.0, 0.0], [0.85, 0.3, 0.0, 1.0]])
    >>> pos = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]).bool()
    >>> neg = ~pos & ~torch.eye(4, dtype=torch.bool)
    >>> hp, hn = ms_hard_pairs(sim, pos, neg, 0.1)
    >>> hp.int().tolist()[0], hn.int().tolist()[0]
    ([0, 1, 0, 0], [0, 0, 0, 1])
    """
    with torch.no_grad():
        neg_inf = torch.tensor(float("-inf"), dtype=sim.dtype, device=sim.device)
        pos_inf = torch.tensor(float("inf"), dtype=sim.dtype, device=sim.device)
        hardest_neg = torch.where(negative, sim, neg_inf).amax(dim=1, keepdim=True)
        easiest_pos = torch.where(positive, sim, pos_inf).amin(dim=1, keepdim=True)
        hard_positive = positive & (sim - epsilon < hardest_neg)
        hard_negative = negative & (sim + epsilon > easiest_pos)
    return hard_positive, hard_negative


class MultiSimilarityMiner:
    """Standalone MS miner: ``miner(embeddings, labels) -> (a1, p, a2, n)`` like PML's.

    Parameters
    ----------
    epsilon : float
        Mining slack (PML default 0.1).
    tau_pos, tau_neg : float
        Label-set Jaccard thresholds for positive / negative pairs.

    Examples
    --------
    >>> emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    >>> a1, p, a2, n = MultiSimilarityMiner()(emb, torch.tensor([0, 1, 1, 0]))
    >>> list(zip(a1.tolist(), p.tolist()))  # every positive lies beyond a negative
    [(0, 3), (1, 2), (2, 1), (3, 0)]
    >>> list(zip(a2.tolist(), n.tolist()))
    [(0, 2), (1, 3), (2, 0), (2, 3), (3, 1), (3, 2)]
    """

    def __init__(self, epsilon: float = 0.1, tau_pos: float = 0.5, tau_neg: float = 0.0) -> None:
        self.epsilon = epsilon
        self.tau_pos = tau_pos
        self.tau_neg = tau_neg

    def __call__(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor | Sequence,
        known: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Index tuples of the hard positive and negative pairs (row-major order)."""
        owner = type(self).__name__
        check_number(self.epsilon, "epsilon", owner, closed="left")
        check_taus(self.tau_pos, self.tau_neg, owner)
        embeddings = check_embeddings(embeddings)
        with torch.no_grad():
            sets = as_label_sets(labels, embeddings.shape[0], embeddings.device, known)
            rel = pair_relations(sets, self.tau_pos, self.tau_neg, embeddings.dtype)
            sim = cosine_similarity_matrix(embeddings)
            hard_pos, hard_neg = ms_hard_pairs(sim, rel.positive, rel.negative, self.epsilon)
        a1, p = torch.nonzero(hard_pos, as_tuple=True)
        a2, n = torch.nonzero(hard_neg, as_tuple=True)
        return a1, p, a2, n
