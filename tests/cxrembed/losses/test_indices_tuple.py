"""Losses take a miner's output as pytorch-metric-learning's do: ``loss(emb, labels, indices_tuple)``.

Values and gradients are compared with PML itself (skipped when it is not installed) on the
same embeddings, labels and index tuples: pairs from PML's MultiSimilarityMiner, triplets from
its TripletMarginMiner, and hand-made tuples.
"""

from __future__ import annotations

import pytest
import torch

from cxrembed.errors import LossInputError
from cxrembed.losses import (
    MaskedBCEWithLogitsLoss,
    ML2Loss,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
)
from cxrembed.losses.base import check_indices_tuple, miner_weights
from cxrembed.losses.ms_proxy import MultiSimilarityProxyLoss
from cxrembed.losses.proxy import NormalizedSoftmaxLoss


def _pml():
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import losses, miners

    return losses, miners


def _batch(seed: int, batch: int = 32, classes: int = 4, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(batch, 12, generator=gen, dtype=dtype)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    return emb, labels


def _compare(ours, theirs, emb, labels, tuple_of, atol=1e-5):
    """Loss and gradient of ``ours`` and ``theirs`` on the same tuple; returns the value."""
    e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    mined = tuple_of(e1, labels)
    expected = theirs(e1, labels, mined)
    got = ours(e2, labels, mined)
    expected.backward()
    got.backward()
    assert got.dtype == emb.dtype
    assert got.item() == pytest.approx(expected.item(), abs=atol)
    torch.testing.assert_close(e2.grad, e1.grad, atol=atol, rtol=0)
    return got.item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(4))
def test_ms_loss_on_pml_miner_pairs_equals_pml(seed: int, dtype) -> None:
    losses, miners = _pml()
    emb, labels = _batch(seed, dtype=dtype)
    value = _compare(
        MultiSimilarityLoss(),
        losses.MultiSimilarityLoss(),
        emb,
        labels,
        miners.MultiSimilarityMiner(epsilon=0.1),
    )
    assert value > 0


@pytest.mark.parametrize("seed", range(3))
def test_ms_loss_on_pml_triplets_equals_pml(seed: int) -> None:
    losses, miners = _pml()
    emb, labels = _batch(seed, batch=24, classes=3, dtype=torch.float64)
    miner = miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    _compare(
        MultiSimilarityLoss(alpha=1.0, beta=20.0, base=0.3),
        losses.MultiSimilarityLoss(alpha=1.0, beta=20.0, base=0.3),
        emb,
        labels,
        miner,
    )


def test_ms_loss_on_a_hand_made_tuple_equals_pml_and_ignores_its_own_mining() -> None:
    losses, _ = _pml()
    emb, labels = _batch(3, batch=10, classes=2, dtype=torch.float64)
    same = [(i, j) for i in range(10) for j in range(10) if i != j and labels[i] == labels[j]]
    other = [(i, j) for i in range(10) for j in range(10) if labels[i] != labels[j]]
    # every positive and negative pair (no mining): PML with all pairs, ours with mining on
    pairs = (
        torch.tensor([a for a, _ in same]),
        torch.tensor([b for _, b in same]),
        torch.tensor([a for a, _ in other]),
        torch.tensor([b for _, b in other]),
    )
    value = _compare(
        MultiSimilarityLoss(), losses.MultiSimilarityLoss(), emb, labels, lambda e, y: pairs
    )
    assert value == pytest.approx(MultiSimilarityLoss(mining=False)(emb, labels).item(), rel=1e-12)
    assert value != pytest.approx(MultiSimilarityLoss()(emb, labels).item(), rel=1e-6)


def test_our_miner_output_gives_the_built_in_mining_value() -> None:
    # the confusing error of issue 11: a miner's output as third argument went to known=
    emb, labels = _batch(5, batch=40)
    mined = MultiSimilarityMiner()(emb, labels)
    assert MultiSimilarityLoss()(emb, labels, mined).item() == pytest.approx(
        MultiSimilarityLoss()(emb, labels).item(), rel=1e-6
    )


def test_multilabel_batch_with_known_mask_and_a_miner_output() -> None:
    gen = torch.Generator().manual_seed(1)
    emb = torch.randn(16, 8, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 2, (16, 3), generator=gen).double()
    labels[0, 1] = -1
    known = torch.ones(16, 3, dtype=torch.bool)
    known[2, 0] = False
    mined = MultiSimilarityMiner()(emb, labels, known)
    got = MultiSimilarityLoss()(emb, labels, mined, known=known)
    assert got.item() == pytest.approx(
        MultiSimilarityLoss()(emb, labels, known=known).item(), rel=1e-9
    )
    assert ML2Loss()(emb, labels, mined, known=known).item() >= 0


def test_normalized_softmax_miner_weights_equal_pml() -> None:
    losses, miners = _pml()
    emb, labels = _batch(2, batch=20, classes=4, dtype=torch.float64)
    ours = NormalizedSoftmaxLoss(4, 12).double()
    theirs = losses.NormalizedSoftmaxLoss(4, 12)
    with torch.no_grad():
        theirs.W.copy_(ours.proxies.T)
    miner = miners.MultiSimilarityMiner(epsilon=0.1)
    value = _compare(ours, theirs, emb, labels, miner, atol=1e-9)
    assert value != pytest.approx(ours(emb, labels).item(), rel=1e-6)  # the weights act
    _compare(ours, theirs, emb, labels, lambda e, y: None, atol=1e-9)


def test_per_exam_losses_scale_by_the_miner_weights() -> None:
    logits = torch.randn(4, 3, dtype=torch.float64)
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]]).double()
    pairs = (torch.tensor([0, 0]), torch.tensor([1, 2]), torch.tensor([0]), torch.tensor([3]))
    w = miner_weights(pairs, 4, logits)
    assert w.tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])
    per_entry = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, labels, reduction="none"
    )
    expected = (per_entry * w[:, None]).sum() / labels.numel()
    got = MaskedBCEWithLogitsLoss()(logits, labels, pairs)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    assert MaskedBCEWithLogitsLoss()(
        logits, labels, (torch.tensor([], dtype=torch.long),) * 4
    ).item() == pytest.approx(per_entry.mean().item())


def test_combined_loss_passes_the_tuple_to_both_terms() -> None:
    emb, labels = _batch(4, batch=16, classes=3, dtype=torch.float64)
    mined = MultiSimilarityMiner()(emb, labels)
    both = MultiSimilarityProxyLoss(3, 12, proxy_weight=1.0).double()
    expected = MultiSimilarityLoss()(emb, labels, mined) + both.proxy(emb, labels, mined)
    assert both(emb, labels, mined).item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize(
    ("tuple_", "match"),
    [
        (torch.ones(4, 2, dtype=torch.bool), "third argument is indices_tuple.*known="),
        ((torch.tensor([0]), torch.tensor([1])), "4 index tensors.*got 2"),
        ((torch.tensor([0]), torch.tensor([9]), torch.tensor([1])), "p holds indices from 9"),
        ((torch.tensor([0.0]), torch.tensor([1]), torch.tensor([2])), "a must be a 1-D tensor"),
        (
            (torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([0]), torch.tensor([2])),
            "equal halves",
        ),
        (
            (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([1])),
            r"pair \(0, 1\) as both positive and negative",
        ),
    ],
)
def test_bad_indices_tuple_gets_a_clear_error(tuple_, match: str) -> None:
    emb, labels = _batch(0, batch=4)
    with pytest.raises(LossInputError, match=match):
        MultiSimilarityLoss()(emb, labels, tuple_)


def test_triplets_read_as_pairs() -> None:
    a1, p, a2, n = check_indices_tuple(
        (torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])), 6, torch.device("cpu")
    )
    assert (a1.tolist(), p.tolist(), a2.tolist(), n.tolist()) == ([0, 1], [2, 3], [0, 1], [4, 5])
