"""One contract for every loss, miner and sampler in cxrembed.

Losses: finite on random batches, gradient reaches the embeddings, a batch without a
usable pair gives 0 that can still be back-propagated, the value does not depend on the
order of the batch, and the result follows the embeddings' dtype (float32 and float64).
Miners: index tuples in range, only pairs of the right relation, order-equivariant.
Samplers: right batch size, indices in range, positives in every batch, deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrembed.data.samplers import MultiLabelBatchSampler
from cxrembed.losses import (
    MaskedBCEWithLogitsLoss,
    ML2Loss,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    pair_relations,
)
from cxrembed.losses.base import as_label_sets
from cxrembed.losses.ms_proxy import MultiSimilarityProxyLoss
from cxrembed.losses.proxy import NormalizedSoftmaxLoss

N_LABELS = 4
LOSSES = {
    "ms": lambda: MultiSimilarityLoss(),
    "ms-no-mining": lambda: MultiSimilarityLoss(mining=False),
    "ms-noise": lambda: MultiSimilarityLoss(
        overlap_weighting=True, reliability=[0.9, 0.6, 0.8, 0.7], drop_fraction=0.2
    ),
    "ml2": lambda: ML2Loss(),
    "ml2-noise": lambda: ML2Loss(
        reliability=[0.9, 0.6, 0.8, 0.7], reliability_combine="mean", drop_fraction=0.2
    ),
    "bce": lambda: MaskedBCEWithLogitsLoss(pos_weight=[1.0, 2.0, 1.0, 3.0]),
    "proxy-multilabel": lambda: NormalizedSoftmaxLoss(
        N_LABELS, N_LABELS, multilabel=True, drop_fraction=0.2
    ),
    "ms+proxy": lambda: MultiSimilarityProxyLoss(N_LABELS, N_LABELS, multilabel=True),
}
DTYPES = [torch.float32, torch.float64]


def _batch(dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """16 exams, 4 labels with uncertain / missing entries, embeddings tied to labels."""
    gen = np.random.default_rng(seed)
    labels = gen.choice([1.0, 0.0, -1.0, np.nan], size=(16, N_LABELS), p=[0.35, 0.45, 0.1, 0.1])
    emb = np.nan_to_num(labels) @ gen.normal(size=(N_LABELS, N_LABELS)) + gen.normal(
        size=(16, N_LABELS)
    )
    return torch.tensor(emb, dtype=dtype), torch.tensor(labels)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_is_finite_and_grad_flows(name: str, dtype: torch.dtype) -> None:
    emb, labels = _batch(dtype)
    emb.requires_grad_()
    loss = LOSSES[name]()(emb, labels)
    assert loss.ndim == 0 and loss.dtype == dtype
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_batch_without_valid_pairs_gives_zero_with_grad_fn(name: str, dtype: torch.dtype) -> None:
    emb, _ = _batch(dtype)
    emb.requires_grad_()
    labels = torch.full((16, N_LABELS), -1.0)  # every position uncertain: nothing known
    loss = LOSSES[name]()(emb, labels)
    assert loss.item() == 0.0 and loss.dtype == dtype
    assert loss.grad_fn is not None
    loss.backward()
    assert torch.equal(emb.grad, torch.zeros_like(emb))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_does_not_depend_on_batch_order(name: str, dtype: torch.dtype) -> None:
    emb, labels = _batch(dtype, seed=3)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    loss = LOSSES[name]()
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert loss(emb[perm], labels[perm]).item() == pytest.approx(
        loss(emb, labels).item(), rel=tol, abs=tol
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_miner_contract(dtype: torch.dtype) -> None:
    emb, labels = _batch(dtype, seed=5)
    miner = MultiSimilarityMiner()
    a1, p, a2, n = miner(emb, labels)
    rel = pair_relations(as_label_sets(labels, 16, torch.device("cpu")), 0.5, 0.0)
    assert len(a1) == len(p) and len(a2) == len(n) and len(a1) > 0 and len(a2) > 0
    assert rel.positive[a1, p].all() and rel.negative[a2, n].all()
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    b1, q, b2, m = miner(emb[perm], labels[perm])
    pairs = {(int(perm[i]), int(perm[j])) for i, j in zip(b1, q, strict=True)}
    assert pairs == set(zip(a1.tolist(), p.tolist(), strict=True))
    negs = {(int(perm[i]), int(perm[j])) for i, j in zip(b2, m, strict=True)}
    assert negs == set(zip(a2.tolist(), n.tolist(), strict=True))


SAMPLERS = {
    "multi-label": lambda y: MultiLabelBatchSampler(y, m=4, batch_size=16, seed=3),
    "class-ids": lambda y: MultiLabelBatchSampler(
        np.nanargmax(np.nan_to_num(y, nan=-2), axis=1), m=2, batch_size=8, seed=3
    ),
    "sharded": lambda y: MultiLabelBatchSampler(
        y, m=2, batch_size=8, seed=3, num_replicas=3, rank=1, batches_per_epoch=10
    ),
}


def _sampler_labels() -> np.ndarray:
    gen = np.random.default_rng(0)
    return gen.choice([1.0, 0.0, -1.0, np.nan], size=(120, 5), p=[0.2, 0.6, 0.1, 0.1])


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_contract(name: str) -> None:
    labels = _sampler_labels()
    sampler = SAMPLERS[name](labels)
    sampler.set_epoch(2)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    rel_labels = (
        labels if name != "class-ids" else np.nanargmax(np.nan_to_num(labels, nan=-2), axis=1)
    )
    for batch in batches:
        assert len(batch) == sampler.batch_size
        assert all(isinstance(i, int) and 0 <= i < len(labels) for i in batch)
        sets = as_label_sets(torch.as_tensor(rel_labels[batch]), len(batch), torch.device("cpu"))
        assert pair_relations(sets, 1e-3, 0.0).positive.any()  # two exams share a label
    again = SAMPLERS[name](labels)
    again.set_epoch(2)
    assert list(again) == batches
    again.set_epoch(3)
    assert list(again) != batches
