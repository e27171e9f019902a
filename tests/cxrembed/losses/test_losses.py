"""Tests for cxrembed.losses: each loss against a slow loop of its formula, MS against PML.

The reference functions below use plain Python floats and sets, one pair at a time, so
they share no code (and no vectorisation trick) with the library.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from cxrembed.errors import LossInputError, NoiseFileError
from cxrembed.losses import (
    LabelSets,
    MaskedBCEWithLogitsLoss,
    ML2Loss,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    drop_hardest_positives,
    label_jaccard,
    pair_relations,
    read_label_reliability,
    reliability_pair_weights,
)
from cxrembed.losses.base import as_label_sets
from cxrlabel.errors import CxrError, InputError

NAN = float("nan")


# --------------------------------------------------------------------------- references


def _sets(row: list[float], known_row: list[bool] | None) -> tuple[set[int], set[int]]:
    known = {
        c
        for c, v in enumerate(row)
        if not math.isnan(v) and v != -1 and (known_row is None or known_row[c])
    }
    return {c for c in known if row[c] == 1}, known


def ref_jaccard(a: tuple[set[int], set[int]], b: tuple[set[int], set[int]]) -> float | None:
    """Masked Jaccard of two (positive, known) sets; None when nothing is shared."""
    shared = a[1] & b[1]
    if not shared:
        return None
    pa, pb = a[0] & shared, b[0] & shared
    union = pa | pb
    return 1.0 if not union else len(pa & pb) / len(union)


def ref_cosine(emb: list[list[float]]) -> list[list[float]]:
    units = [[x / max(math.sqrt(sum(v * v for v in row)), 1e-12) for x in row] for row in emb]
    return [[sum(p * q for p, q in zip(u, v, strict=True)) for v in units] for u in units]


def ref_reliability(a, b, rel: list[float], combine: str) -> float:
    deciding = (a[0] & b[1]) | (b[0] & a[1])
    if not deciding:
        return 1.0
    values = [rel[c] for c in deciding]
    return math.prod(values) if combine == "product" else sum(values) / len(values)


def ref_relations(rows, known, tau_pos, tau_neg):
    sets = [_sets(r, None if known is None else known[i]) for i, r in enumerate(rows)]
    n = len(rows)
    jac = [[ref_jaccard(sets[i], sets[j]) for j in range(n)] for i in range(n)]
    pos = [
        [i != j and jac[i][j] is not None and jac[i][j] >= tau_pos for j in range(n)]
        for i in range(n)
    ]
    neg = [
        [
            i != j and jac[i][j] is not None and not pos[i][j] and jac[i][j] <= tau_neg
            for j in range(n)
        ]
        for i in range(n)
    ]
    return sets, jac, pos, neg


def ref_ms(
    emb,
    rows,
    known=None,
    *,
    alpha=2.0,
    beta=50.0,
    base=0.5,
    eps=0.1,
    tau_pos=0.5,
    tau_neg=0.0,
    mining=True,
    overlap=False,
    rel=None,
    combine="product",
    exclude=(),
) -> float:
    """The MS loss of Wang et al. 2019, anchor by anchor, on label-set pairs."""
    sim = ref_cosine(emb)
    sets, jac, pos, neg = ref_relations(rows, known, tau_pos, tau_neg)
    n = len(rows)
    total = 0.0
    for i in range(n):
        p_idx = [j for j in range(n) if pos[i][j] and frozenset((i, j)) not in exclude]
        n_idx = [j for j in range(n) if neg[i][j]]
        if mining:
            hardest_neg = max((sim[i][j] for j in n_idx), default=-math.inf)
            easiest_pos = min((sim[i][j] for j in p_idx), default=math.inf)
            p_idx = [j for j in p_idx if sim[i][j] - eps < hardest_neg]
            n_idx = [j for j in n_idx if sim[i][j] + eps > easiest_pos]

        def weight(i: int, j: int, positive: bool) -> float:
            w = 1.0
            if overlap:
                w *= jac[i][j] if positive else 1.0 - jac[i][j]
            if rel is not None:
                w *= ref_reliability(sets[i], sets[j], rel, combine)
            return w

        pos_sum = sum(weight(i, j, True) * math.exp(-alpha * (sim[i][j] - base)) for j in p_idx)
        neg_sum = sum(weight(i, j, False) * math.exp(beta * (sim[i][j] - base)) for j in n_idx)
        total += math.log1p(pos_sum) / alpha + math.log1p(neg_sum) / beta
    return total / n


def ref_ml2(emb, rows, *, m_pos=0.7, m_neg=1.0, tau_pos=0.1, tau_neg=0.0) -> float:
    """ML2 as documented: overlap-weighted pull to m_pos (1 - s), push beyond m_neg."""
    units = [[x / math.sqrt(sum(v * v for v in row)) for x in row] for row in emb]
    _, jac, pos, neg = ref_relations(rows, None, tau_pos, tau_neg)
    n = len(rows)
    total = 0.0
    for i in range(n):
        terms = []
        for j in range(n):
            d = math.dist(units[i], units[j])
            if pos[i][j]:
                s = jac[i][j]
                terms.append(s * max(d - m_pos * (1 - s), 0.0) ** 2)
            elif neg[i][j]:
                terms.append(max(m_neg - d, 0.0) ** 2)
        total += sum(terms) / len(terms) if terms else 0.0
    return total / n


def random_rows(gen: np.random.Generator, n: int, c: int) -> list[list[float]]:
    """Multi-label rows with positives, negatives, uncertain (-1) and missing (NaN)."""
    choice = gen.choice([1.0, 0.0, -1.0, NAN], size=(n, c), p=[0.3, 0.5, 0.1, 0.1])
    return choice.tolist()


def as_tensor(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# --------------------------------------------------------------------------- pairs


def test_jaccard_hand_computed_with_uncertain_missing_and_no_finding() -> None:
    rows = [
        [1, 1, 0],  # A, B
        [1, 0, 0],  # A
        [0, 0, 0],  # no finding
        [0, 0, 0],  # no finding
        [1, -1, NAN],  # A, B uncertain, C missing
        [NAN, NAN, NAN],  # nothing known
    ]
    sets = as_label_sets(as_tensor(rows), 6, torch.device("cpu"))
    jac = label_jaccard(sets, torch.float64)
    assert jac[0, 1] == 0.5
    assert jac[2, 3] == 1.0  # two "no finding" exams match
    assert jac[0, 2] == 0.0 and jac[1, 2] == 0.0
    assert jac[0, 4] == 1.0  # B is not known for row 4, so only A decides: both have it
    assert jac[2, 4] == 0.0
    assert torch.isnan(jac[5]).all() and torch.isnan(jac[:, 5]).all()
    rel = pair_relations(sets, tau_pos=0.5, tau_neg=0.0)
    assert not rel.positive[5].any() and not rel.negative[5].any()
    assert not rel.positive.diagonal().any() and not rel.negative.diagonal().any()


@pytest.mark.parametrize("seed", range(5))
def test_jaccard_and_masks_match_pair_by_pair_loop(seed: int) -> None:
    gen = np.random.default_rng(seed)
    rows = random_rows(gen, 12, 4)
    known = (gen.random((12, 4)) > 0.2).tolist()
    sets = as_label_sets(as_tensor(rows), 12, torch.device("cpu"), torch.tensor(known))
    rel = pair_relations(sets, tau_pos=0.5, tau_neg=0.2, dtype=torch.float64)
    _, jac, pos, neg = ref_relations(rows, known, 0.5, 0.2)
    for i, j in itertools.product(range(12), repeat=2):
        if jac[i][j] is None:
            assert math.isnan(rel.similarity[i, j])
        else:
            assert rel.similarity[i, j].item() == pytest.approx(jac[i][j], abs=1e-12)
        assert bool(rel.positive[i, j]) == pos[i][j]
        assert bool(rel.negative[i, j]) == neg[i][j]


def test_class_ids_give_the_same_relations_as_their_one_hot_matrix() -> None:
    ids = torch.tensor([3, 1, 3, 7, 1, 1])
    fast = pair_relations(as_label_sets(ids, 6, torch.device("cpu")), 0.5, 0.0)
    one_hot = torch.nn.functional.one_hot(ids).double()
    slow = pair_relations(as_label_sets(one_hot, 6, torch.device("cpu")), 0.5, 0.0)
    assert torch.equal(fast.positive, slow.positive)
    assert torch.equal(fast.negative, slow.negative)


# --------------------------------------------------------------------------- MS vs PML


def _pml():
    pml = pytest.importorskip("pytorch_metric_learning")
    del pml
    from pytorch_metric_learning import losses, miners

    return (
        losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5),
        miners.MultiSimilarityMiner(epsilon=0.1),
    )


CASES = [(b, k, dt) for b in (8, 32, 96) for k in (2, 5, 24) for dt in ("float32", "float64")]


@pytest.mark.parametrize(("batch", "classes", "dtype"), CASES)
def test_ms_equals_pml_loss_and_miner_on_single_label(batch: int, classes: int, dtype: str) -> None:
    pml_loss, pml_miner = _pml()
    ours = MultiSimilarityLoss()
    dt = getattr(torch, dtype)
    compared = 0
    for seed in range(6):
        gen = torch.Generator().manual_seed(seed * 1000 + batch + classes)
        emb = torch.randn(batch, 16, generator=gen, dtype=dt)
        labels = torch.randint(0, classes, (batch,), generator=gen)
        e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
        mined = pml_miner(e1, labels)
        if len(mined[0]) <= 1 and len(mined[2]) <= 1:
            continue  # PML's GenericPairLoss returns 0 here; see test_pml_tiny_batch_quirk
        expected = pml_loss(e1, labels, mined)
        got = ours(e2, labels)
        expected.backward()
        got.backward()
        assert got.dtype == dt
        assert got.item() == pytest.approx(expected.item(), abs=1e-5)
        torch.testing.assert_close(e2.grad, e1.grad, atol=1e-5, rtol=0)
        compared += 1
    assert compared >= 4


def test_miner_keeps_the_same_pairs_as_pml() -> None:
    _, pml_miner = _pml()
    gen = torch.Generator().manual_seed(7)
    for _ in range(5):
        emb = torch.randn(40, 8, generator=gen)
        labels = torch.randint(0, 4, (40,), generator=gen)
        theirs = pml_miner(emb, labels)
        ours = MultiSimilarityMiner(epsilon=0.1)(emb, labels)
        for k in (0, 2):
            assert set(zip(ours[k].tolist(), ours[k + 1].tolist(), strict=True)) == set(
                zip(theirs[k].tolist(), theirs[k + 1].tolist(), strict=True)
            )


def test_pml_tiny_batch_quirk_is_documented_difference() -> None:
    # 3 exams: PML keeps 1 positive + 1 negative pair per direction at most and returns 0;
    # cxrembed computes the formula on those pairs (the reference loop agrees).
    emb = [[1.0, 0.0], [0.2, 1.0], [0.9, 0.3]]
    ids = [0, 0, 1]
    rows = torch.nn.functional.one_hot(torch.tensor(ids)).double().tolist()
    got = MultiSimilarityLoss()(torch.tensor(emb, dtype=torch.float64), torch.tensor(ids))
    assert got.item() == pytest.approx(ref_ms(emb, rows), rel=1e-9)
    assert got.item() > 0


# --------------------------------------------------------------------------- MS multi-label


MS_CONFIGS = [
    {},
    {"mining": False},
    {"tau_pos": 0.3, "tau_neg": 0.2},
    {"overlap_weighting": True, "tau_pos": 0.25, "mining": False},
    {"alpha": 1.0, "beta": 20.0, "base": 0.2, "epsilon": 0.3},
]


@pytest.mark.parametrize("config", MS_CONFIGS, ids=lambda c: ",".join(c) or "defaults")
@pytest.mark.parametrize("seed", range(3))
def test_ms_multilabel_matches_reference_loop(config: dict, seed: int) -> None:
    gen = np.random.default_rng(seed)
    rows = random_rows(gen, 20, 5)
    known = (gen.random((20, 5)) > 0.1).tolist()
    # Embeddings loosely tied to the labels, so mining keeps some pairs and drops others.
    emb = np.nan_to_num(np.array(rows)) @ gen.normal(size=(5, 6)) + gen.normal(size=(20, 6))
    loss = MultiSimilarityLoss(**config)
    got = loss(torch.tensor(emb), as_tensor(rows), known=torch.tensor(known))
    ref_kwargs = {
        "alpha": config.get("alpha", 2.0),
        "beta": config.get("beta", 50.0),
        "base": config.get("base", 0.5),
        "eps": config.get("epsilon", 0.1),
        "tau_pos": config.get("tau_pos", 0.5),
        "tau_neg": config.get("tau_neg", 0.0),
        "mining": config.get("mining", True),
        "overlap": config.get("overlap_weighting", False),
    }
    expected = ref_ms(emb.tolist(), rows, known, **ref_kwargs)
    assert got.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("combine", ["product", "mean"])
def test_ms_reliability_weights_match_reference_loop(combine: str) -> None:
    gen = np.random.default_rng(11)
    rows = random_rows(gen, 16, 4)
    emb = gen.normal(size=(16, 5))
    rel = [0.9, 0.5, 0.75, 0.2]
    got = MultiSimilarityLoss(reliability=rel, reliability_combine=combine, mining=False)(
        torch.tensor(emb), as_tensor(rows)
    )
    expected = ref_ms(emb.tolist(), rows, rel=rel, combine=combine, mining=False)
    assert got.item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("combine", ["product", "mean"])
def test_reliability_pair_weights_match_loop(combine: str) -> None:
    gen = np.random.default_rng(3)
    rows = random_rows(gen, 10, 4)
    rel = [0.9, 0.0, 0.6, 1.0]
    sets = as_label_sets(as_tensor(rows), 10, torch.device("cpu"))
    got = reliability_pair_weights(sets, torch.tensor(rel, dtype=torch.float64), combine)
    ref_sets = [_sets(r, None) for r in rows]
    for i, j in itertools.product(range(10), repeat=2):
        expected = ref_reliability(ref_sets[i], ref_sets[j], rel, combine)
        assert got[i, j].item() == pytest.approx(expected, abs=1e-5)  # r = 0 floored at 1e-6
    assert torch.isfinite(got).all()


def test_anchor_without_positives_or_negatives_adds_nothing_and_no_nan() -> None:
    emb = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    emb.requires_grad_()
    ids = torch.tensor([0, 0, 1, 1, 2])  # exam 4 has no positive: its term is 0
    loss = MultiSimilarityLoss(mining=False)(emb, ids)
    rows = torch.nn.functional.one_hot(ids).double().tolist()
    assert loss.item() == pytest.approx(ref_ms(emb.tolist(), rows, mining=False), rel=1e-9)
    loss.backward()
    assert torch.isfinite(emb.grad).all()


@pytest.mark.parametrize(
    "labels",
    [
        torch.zeros(6, dtype=torch.long),  # a single class: no negatives
        torch.arange(6),  # all distinct: no positives
        torch.full((6, 3), NAN),  # all masked: no valid pair
        torch.zeros(6, 3),  # all "no finding": positives only
        torch.tensor([[1, 0, 0]] * 3 + [[0, 1, 0]] * 3, dtype=torch.float32)[:, [2]],  # empty col
    ],
    ids=["single-class", "all-distinct", "all-masked", "all-no-finding", "all-zero-column"],
)
def test_ms_degenerate_batches_give_zero_with_grad_fn(labels: torch.Tensor) -> None:
    # MS needs both a positive and a negative pair per anchor; ML2 (contrastive) still
    # pulls positives or pushes negatives alone, so it gets finite, non-zero values here.
    emb = torch.randn(6, 4, requires_grad=True, generator=torch.Generator().manual_seed(1))
    loss = MultiSimilarityLoss()(emb, labels)
    assert loss.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()
    assert torch.equal(emb.grad, torch.zeros_like(emb))
    emb.grad = None
    ml2 = ML2Loss()(emb, labels)
    ml2.backward()
    assert torch.isfinite(ml2) and torch.isfinite(emb.grad).all()


@pytest.mark.parametrize("make", [MultiSimilarityLoss, ML2Loss, MaskedBCEWithLogitsLoss])
def test_a_single_exam_batch_is_not_an_error(make) -> None:
    emb = torch.randn(1, 3, requires_grad=True)
    loss = make()(emb, torch.tensor([[1.0, 0.0, 1.0]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()


def test_sample_weights_give_a_weighted_mean_over_exams() -> None:
    gen = torch.Generator().manual_seed(2)
    emb = torch.randn(8, 4, dtype=torch.float64, generator=gen)
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = MultiSimilarityLoss(mining=False)
    weights = torch.tensor([1.0, 0, 2, 0, 1, 1, 0, 3], dtype=torch.float64)
    per_exam = torch.stack(
        [loss(emb, ids, weights=torch.eye(8, dtype=torch.float64)[i]) for i in range(8)]
    )
    assert per_exam.mean().item() == pytest.approx(loss(emb, ids).item(), rel=1e-12)
    expected = (per_exam * weights).sum() / weights.sum()
    assert loss(emb, ids, weights=weights).item() == pytest.approx(expected.item(), rel=1e-12)


# --------------------------------------------------------------------------- robust option


def test_drop_hardest_positives_hand_example() -> None:
    scores = torch.tensor(
        [[0.0, 3.0, 1.0, 9.0], [3.0, 0, 2.0, 0], [1.0, 2.0, 0, 0], [9.0, 0, 0, 0]]
    )
    pos = torch.tensor([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]]).bool()
    kept = drop_hardest_positives(scores, pos, 0.34)  # 3 pairs -> drop 1: {0, 1}
    assert kept.int().tolist() == [[0, 0, 1, 0], [0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    assert torch.equal(drop_hardest_positives(scores, pos, 0.0), pos)
    assert torch.equal(drop_hardest_positives(scores, pos, 0.3), pos)  # floor(0.9) = 0


def test_drop_fraction_ignores_planted_flipped_pairs() -> None:
    # Four tight clusters of 6 exams on orthogonal axes; exams 0 and 6 get swapped labels.
    gen = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 6)
    emb = np.eye(8)[truth] * 3 + gen.normal(scale=0.05, size=(24, 8))
    flipped = truth.copy()
    flipped[0], flipped[6] = 1, 0
    rows = np.eye(4)[flipped].tolist()
    # Bad positive pairs: exam 0 with cluster 1 and exam 6 with cluster 0 (5 each).
    planted = {frozenset((0, j)) for j in range(7, 12)} | {frozenset((6, j)) for j in range(1, 6)}
    n_pos = sum(1 for i, j in itertools.combinations(range(24), 2) if flipped[i] == flipped[j])
    fraction = len(planted) / n_pos + 1e-9
    labels = torch.tensor(flipped)
    dropped = MultiSimilarityLoss(mining=False, drop_fraction=fraction)(torch.tensor(emb), labels)
    clean_ref = ref_ms(emb.tolist(), rows, mining=False, exclude=planted)
    assert dropped.item() == pytest.approx(clean_ref, rel=1e-9)
    plain = MultiSimilarityLoss(mining=False)(torch.tensor(emb), labels)
    assert plain.item() > dropped.item()
    # ML2 ranks by its own pair loss and finds the same pairs.
    dist = torch.cdist(torch.tensor(emb), torch.tensor(emb))
    rel = pair_relations(as_label_sets(labels, 24, torch.device("cpu")), 0.5, 0.0)
    kept = drop_hardest_positives(dist, rel.positive, fraction)
    removed = {frozenset(pair) for pair in torch.nonzero(rel.positive & ~kept).tolist()}
    assert removed == planted


# --------------------------------------------------------------------------- ML2


@pytest.mark.parametrize("seed", range(3))
def test_ml2_matches_reference_loop(seed: int) -> None:
    gen = np.random.default_rng(seed)
    rows = gen.choice([0.0, 1.0], size=(14, 4), p=[0.6, 0.4]).tolist()
    emb = gen.normal(size=(14, 5))
    got = ML2Loss()(torch.tensor(emb), as_tensor(rows))
    assert got.item() == pytest.approx(ref_ml2(emb.tolist(), rows), rel=1e-9)


def test_ml2_pulls_partial_matches_less_than_identical_ones() -> None:
    # Anchor {A, B}; an identical exam and a partial match {A} at the same distance.
    anchor = [1.0, 0.0]
    other = [math.cos(1.0), math.sin(1.0)]
    emb = torch.tensor([anchor, other, other], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[1, 1], [1, 1], [1, 0]], dtype=torch.float64)
    loss = ML2Loss(pos_margin=0.7)
    loss(emb[[0, 1]], labels[[0, 1]]).backward()
    grad_identical = emb.grad[1].norm().item()
    emb.grad = None
    loss(emb[[0, 2]], labels[[0, 2]]).backward()
    grad_partial = emb.grad[2].norm().item()
    assert 0 < grad_partial < grad_identical

    # Equilibrium: the partial match (s = 1/2) feels no pull within 0.7 * 1/2 = 0.35;
    # the identical one is pulled at any distance > 0.
    def at(distance: float, row: list[float]) -> float:
        angle = 2 * math.asin(distance / 2)
        pair = torch.tensor([anchor, [math.cos(angle), math.sin(angle)]], dtype=torch.float64)
        return loss(pair, torch.tensor([[1.0, 1.0], row])).item()

    assert at(0.34, [1.0, 0.0]) == 0.0 and at(0.36, [1.0, 0.0]) > 0.0
    assert at(0.05, [1.0, 1.0]) > 0.0


def test_ml2_pushes_negatives_only_inside_the_margin() -> None:
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    far = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # distance 2 > margin 1
    near = torch.tensor([[1.0, 0.0], [0.8, 0.6]])  # distance ~0.63
    assert ML2Loss()(far, labels).item() == 0.0
    assert ML2Loss()(near, labels).item() == pytest.approx((1 - math.sqrt(0.4)) ** 2, rel=1e-5)


# --------------------------------------------------------------------------- BCE


def test_masked_bce_equals_loop_over_known_entries() -> None:
    gen = np.random.default_rng(5)
    rows = random_rows(gen, 7, 3)
    logits = torch.tensor(gen.normal(size=(7, 3)), requires_grad=True)
    known = torch.tensor(gen.random((7, 3)) > 0.2)
    pos_weight = [2.0, 1.0, 0.5]
    got = MaskedBCEWithLogitsLoss(pos_weight=pos_weight)(logits, as_tensor(rows), known=known)
    terms = []
    for i, j in itertools.product(range(7), range(3)):
        y = rows[i][j]
        if math.isnan(y) or y == -1 or not known[i, j]:
            continue
        p = 1 / (1 + math.exp(-logits[i, j].item()))
        terms.append(-(pos_weight[j] * y * math.log(p) + (1 - y) * math.log(1 - p)))
    assert got.item() == pytest.approx(sum(terms) / len(terms), rel=1e-9)
    got.backward()
    masked = ~known | torch.isnan(as_tensor(rows)) | (as_tensor(rows) == -1)
    assert (logits.grad[masked] == 0).all()


def test_masked_bce_takes_class_ids_as_columns() -> None:
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([2, 0, 2, 1])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.nn.functional.one_hot(ids, 3).float()
    )
    assert MaskedBCEWithLogitsLoss()(logits, ids).item() == pytest.approx(expected.item())
    with pytest.raises(LossInputError, match=r"\[0, 3\)"):
        MaskedBCEWithLogitsLoss()(logits, torch.tensor([0, 1, 2, 3]))


# --------------------------------------------------------------------------- noise.json


def _write_noise(tmp_path, observations: dict) -> str:
    from cxrlabel.validation.noise import build_noise, write_noise

    report = build_noise(
        observations,
        semantics="positive-only",
        uncertain_as="positive",
        schema="chexpert",
        n_reports=100,
    )
    return str(write_noise(report, tmp_path / "noise.json"))


def test_read_label_reliability_from_a_file_written_by_cxr_validate(tmp_path) -> None:
    path = _write_noise(
        tmp_path,
        {
            "Edema": {"tp": 8, "fp": 2, "fn": 0, "tn": 90},  # precision 0.8, f1 8/9
            "Fracture": {"tp": 0, "fp": 3, "fn": 0, "tn": 97},  # no positives: f1 null
        },
    )
    rel = read_label_reliability(path, ["Cardiomegaly", "Edema", "Fracture"])
    assert rel.values == pytest.approx((1.0, 16 / 18, 1.0))
    assert rel.defaulted == ("Cardiomegaly", "Fracture")
    prec = read_label_reliability(path, ["Edema", "Fracture"], metric="precision", default=0.5)
    assert prec.values == pytest.approx((0.8, 0.5))


def test_read_label_reliability_errors(tmp_path) -> None:
    path = _write_noise(tmp_path, {"Effusion": {"tp": 1, "fp": 0, "fn": 0, "tn": 9}})
    with pytest.raises(NoiseFileError, match=r"Effusion.*Known columns: \['Pleural Effusion'\]"):
        read_label_reliability(path, ["Pleural Effusion"])
    with pytest.raises(NoiseFileError, match="metric"):
        read_label_reliability(path, ["Effusion"], metric="auc")
    with pytest.raises(InputError, match="not found"):
        read_label_reliability(tmp_path / "missing.json", ["Effusion"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"observations": []}))
    with pytest.raises(CxrError):
        read_label_reliability(bad, ["Effusion"])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda loss: loss(torch.randn(4, 3), torch.tensor([0, 1, 0])), r"shape \(4,\)"),
        (lambda loss: loss(torch.randn(4), torch.tensor([0, 1, 0, 1])), "batch, dim"),
        (lambda loss: loss(torch.randn(4, 3).long(), torch.tensor([0, 1, 0, 1])), "floating"),
        (
            lambda loss: loss(torch.tensor([[0.0, 1.0], [NAN, 1.0]]), torch.tensor([0, 1])),
            r"NaN or inf in batch rows \[1\]",
        ),
        (lambda loss: loss(torch.randn(2, 3), torch.tensor([[0.5], [1.0]])), r"labels\[0, 0\]"),
        (lambda loss: loss(torch.randn(2, 3), torch.tensor([0.0, 1.0])), "integer class ids"),
        (lambda loss: loss(torch.randn(2, 3), torch.zeros(2, 1, 1)), "shape"),
        (
            lambda loss: loss(torch.randn(2, 3), torch.zeros(2, 2), known=torch.ones(2, 3).bool()),
            "known must be",
        ),
        (
            lambda loss: loss(torch.randn(2, 3), torch.tensor([0, 1]), known=torch.ones(2).bool()),
            "known= is only",
        ),
        (lambda loss: loss(torch.randn(2, 3), [[1, None], [0, 1]]), "cannot convert"),
        (lambda loss: loss(torch.randn(2, 3), torch.tensor([0, 1]), weights=[1.0]), "weights"),
        (lambda loss: loss(torch.randn(2, 3), torch.tensor([0, 1]), weights=[1.0, -1]), ">= 0"),
    ],
)
def test_bad_input_raises_a_clear_loss_input_error(call, match: str) -> None:
    with pytest.raises(LossInputError, match=match) as info:
        call(MultiSimilarityLoss())
    assert isinstance(info.value, CxrError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("loss", "labels", "match"),
    [
        (MultiSimilarityLoss(tau_pos=0.2, tau_neg=0.2), torch.tensor([0, 1]), "tau_neg < tau_pos"),
        (MultiSimilarityLoss(alpha=0), torch.tensor([0, 1]), "'alpha'"),
        (MultiSimilarityLoss(drop_fraction=1.0), torch.tensor([0, 1]), "'drop_fraction'"),
        (MultiSimilarityLoss(reliability=[0.5]), torch.zeros(2, 3), "one reliability per"),
        (MultiSimilarityLoss(reliability=[0.5]), torch.tensor([0, 1]), "class ids"),
        (MultiSimilarityLoss(reliability=[1.5]), torch.zeros(2, 1), r"\[0, 1\]"),
        (MultiSimilarityLoss(reliability_combine="max"), torch.tensor([0, 1]), "'product'"),
        (ML2Loss(neg_margin=0), torch.tensor([0, 1]), "'neg_margin'"),
        (MaskedBCEWithLogitsLoss(), torch.zeros(2, 2), "2 columns but the logits have 3"),
        (MaskedBCEWithLogitsLoss(pos_weight=[1, 0, 1]), torch.zeros(2, 3), "pos_weight"),
    ],
)
def test_bad_settings_raise_a_clear_loss_input_error(loss, labels, match: str) -> None:
    with pytest.raises(LossInputError, match=match):
        loss(torch.randn(2, 3), labels)


def test_losses_follow_the_embeddings_dtype_and_accept_numpy_labels() -> None:
    emb = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [NAN, 1], [0, 0]])
    for loss in (MultiSimilarityLoss(), ML2Loss(), MaskedBCEWithLogitsLoss()):
        inputs = emb[:, :2] if isinstance(loss, MaskedBCEWithLogitsLoss) else emb
        out = loss(inputs, labels)
        assert out.dtype == torch.float64 and torch.isfinite(out)
    sets = as_label_sets(labels, 6, torch.device("cpu"))
    assert isinstance(sets, LabelSets) and sets.known.sum() == 11
