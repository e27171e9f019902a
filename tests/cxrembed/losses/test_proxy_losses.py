"""Proxy losses: normalised softmax, MS + proxy, forward correction, small-loss dropping,
and the noise transition matrix read from noise.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cxrembed.errors import LossInputError, NoiseFileError
from cxrembed.losses import MultiSimilarityLoss
from cxrembed.losses.ms_proxy import MultiSimilarityProxyLoss
from cxrembed.losses.proxy import NormalizedSoftmaxLoss
from cxrembed.losses.transition import read_transition


def _emb(n: int = 9, d: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _manual_logits(loss: NormalizedSoftmaxLoss, emb: torch.Tensor) -> torch.Tensor:
    unit = emb / emb.norm(dim=1, keepdim=True)
    proxies = loss.proxies.detach().double()
    proxies = proxies / proxies.norm(dim=1, keepdim=True)
    return unit @ proxies.T / loss.temperature


def test_softmax_value_is_cross_entropy_of_scaled_cosines():
    loss = NormalizedSoftmaxLoss(3, 5, temperature=0.1)
    emb, ids = _emb(), torch.tensor([0, 1, 2] * 3)
    expected = torch.nn.functional.cross_entropy(_manual_logits(loss, emb), ids)
    assert loss(emb, ids).item() == pytest.approx(expected.item(), rel=1e-9)
    one_hot = torch.nn.functional.one_hot(ids, 3).double()
    assert loss(emb, one_hot).item() == pytest.approx(expected.item(), rel=1e-9)


def test_rows_without_one_known_positive_are_left_out_of_the_mean():
    loss = NormalizedSoftmaxLoss(3, 5)
    emb = _emb(4)
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 1, 0], [float("nan"), 0, 1]])
    kept = loss(emb[:2], labels[:2]).item()
    assert loss(emb, labels).item() == pytest.approx(kept, rel=1e-9)


def test_multilabel_mode_is_masked_bce_with_a_bias():
    loss = NormalizedSoftmaxLoss(3, 5, multilabel=True)
    with torch.no_grad():
        loss.bias.copy_(torch.tensor([0.5, -1.0, 0.0]))
    emb = _emb(3)
    labels = torch.tensor([[1.0, float("nan"), 0], [0, 1, 1], [-1.0, 0, 1]])
    z = _manual_logits(loss, emb) + torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)
    known = ~torch.isnan(labels) & (labels != -1)
    target = (labels == 1).double()
    per = torch.nn.functional.binary_cross_entropy_with_logits(z, target, reduction="none")
    expected = ((per * known).sum(1) / known.sum(1)).mean()
    assert loss(emb, labels).item() == pytest.approx(expected.item(), rel=1e-9)


def test_forward_correction_uses_the_transition_matrix():
    t = [[1.0, 0.0, 0.0], [0.4, 0.6, 0.0], [0.4, 0.0, 0.6]]
    loss = NormalizedSoftmaxLoss(3, 5, transition=t)
    emb, ids = _emb(), torch.tensor([0, 1, 2] * 3)
    p = torch.softmax(_manual_logits(loss, emb), dim=1) @ torch.tensor(t, dtype=torch.float64)
    expected = -torch.log(p[torch.arange(9), ids]).mean()
    assert loss(emb, ids).item() == pytest.approx(expected.item(), rel=1e-6)
    # identity transition = no correction
    plain = NormalizedSoftmaxLoss(3, 5)
    same = NormalizedSoftmaxLoss(3, 5, transition=np.eye(3).tolist())
    assert same(emb, ids).item() == pytest.approx(plain(emb, ids).item(), rel=1e-6)


def test_drop_fraction_leaves_out_the_largest_losses():
    loss = NormalizedSoftmaxLoss(3, 5)
    dropping = NormalizedSoftmaxLoss(3, 5, drop_fraction=0.34)
    emb, ids = _emb(), torch.tensor([0, 1, 2] * 3)
    per = torch.nn.functional.cross_entropy(_manual_logits(loss, emb), ids, reduction="none")
    keep = torch.argsort(per)[:6]  # floor(0.34 * 9) = 3 dropped
    assert dropping(emb, ids).item() == pytest.approx(per[keep].mean().item(), rel=1e-9)
    assert dropping(emb, ids).item() < loss(emb, ids).item()


def test_gradient_reaches_embeddings_and_proxies_and_dtype_follows():
    loss = NormalizedSoftmaxLoss(3, 5)
    emb = _emb().requires_grad_()
    value = loss(emb, torch.tensor([0, 1, 2] * 3))
    value.backward()
    assert value.dtype == torch.float64
    assert emb.grad.abs().sum() > 0 and loss.proxies.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0, "embedding_dim": 4}, "num_classes"),
        ({"num_classes": 2, "embedding_dim": 4, "temperature": 0.0}, "temperature"),
        ({"num_classes": 2, "embedding_dim": 4, "transition": [[0.5, 0.4], [0, 1]]}, "sum to 1"),
        (
            {
                "num_classes": 2,
                "embedding_dim": 4,
                "multilabel": True,
                "transition": [[1, 0], [0, 1]],
            },
            "single-label",
        ),
        ({"num_classes": 2, "embedding_dim": 4, "drop_fraction": 1.0}, "drop_fraction"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(LossInputError, match=match):
        NormalizedSoftmaxLoss(**kwargs)


def test_bad_inputs_name_the_problem():
    loss = NormalizedSoftmaxLoss(3, 5)
    with pytest.raises(LossInputError, match="5 dimensions|embedding_dim"):
        loss(torch.randn(4, 6), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match=r"\[0, 3\)"):
        loss(torch.randn(4, 5), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(LossInputError, match="columns"):
        loss(torch.randn(2, 5), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


def test_ms_proxy_is_ms_plus_weighted_proxy_term():
    emb = _emb(8, 4)
    labels = torch.tensor([[1, 0]] * 4 + [[0, 1]] * 4)
    combined = MultiSimilarityProxyLoss(2, 4, proxy_weight=0.5)
    ms = MultiSimilarityLoss()(emb, labels).item()
    proxy = combined.proxy(emb, labels).item()
    assert combined(emb, labels).item() == pytest.approx(ms + 0.5 * proxy, rel=1e-9)
    assert MultiSimilarityProxyLoss(2, 4, proxy_weight=0.0)(emb, labels).item() == pytest.approx(
        ms, rel=1e-12
    )
    assert [n for n, _ in combined.named_parameters()] == ["proxy.proxies"]


def _noise(path, observations, n):
    for obs in observations.values():
        obs.setdefault("precision", None)
        obs.setdefault("f1", None)
        obs["p_labelnot1_given_truth1"] = None if obs["recall"] is None else 1 - obs["recall"]
    path.write_text(
        json.dumps(
            {
                "semantics": "full",
                "uncertain_as": "ignore",
                "schema": "x",
                "n_reports": n,
                "observations": observations,
            }
        )
    )
    return path


def test_transition_from_symmetric_and_one_way_noise(tmp_path):
    names = ["normal", "bacteria", "virus"]
    # 30 of each class, 40% of each flipped evenly to the two others: 12 wrong per column
    sym = _noise(
        tmp_path / "sym.json",
        {n: {"support": 30, "recall": 0.6, "p_label1_given_truth0": 12 / 60} for n in names},
        90,
    )
    t = np.array(read_transition(sym, names).matrix)
    np.testing.assert_allclose(t, [[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]])
    one_way = _noise(
        tmp_path / "miss.json",
        {
            "normal": {"support": 20, "recall": 1.0, "p_label1_given_truth0": 0.4},
            "bacteria": {"support": 30, "recall": 0.6, "p_label1_given_truth0": 0.0},
            "virus": {"support": 20, "recall": 0.6, "p_label1_given_truth0": 0.0},
        },
        70,
    )
    t = np.array(read_transition(one_way, names).matrix)
    np.testing.assert_allclose(t, [[1, 0, 0], [0.4, 0.6, 0], [0.4, 0, 0.6]])
    np.testing.assert_allclose(t.sum(1), 1.0)


def test_transition_rows_without_figures_are_identity_and_unknown_names_fail(tmp_path):
    path = _noise(
        tmp_path / "n.json",
        {
            "a": {"support": 0, "recall": None, "p_label1_given_truth0": 0.1},
            "b": {"support": 5, "recall": 0.8, "p_label1_given_truth0": 0.0},
        },
        5,
    )
    t = read_transition(path, ["a", "b"]).matrix
    assert t == [[1.0, 0.0], [0.2, 0.8]]
    with pytest.raises(NoiseFileError, match="not label columns"):
        read_transition(path, ["b", "c"])


def test_label_smoothing_matches_torch_cross_entropy():
    loss = NormalizedSoftmaxLoss(3, 5, label_smoothing=0.1)
    emb, ids = _emb(), torch.tensor([0, 1, 2] * 3)
    expected = torch.nn.functional.cross_entropy(
        _manual_logits(loss, emb), ids, label_smoothing=0.1
    )
    assert loss(emb, ids).item() == pytest.approx(expected.item(), rel=1e-9)


def test_ms_plus_classifier_is_ms_plus_weighted_bce_of_its_linear_head():
    from cxrembed.losses import MaskedBCEWithLogitsLoss
    from cxrembed.losses.ms_classifier import MultiSimilarityClassifierLoss

    projection = 3.0 * _emb(8, 4)  # not unit norm: the head sees the raw projection
    labels = torch.tensor([[1, 0]] * 4 + [[0, 1]] * 4)
    loss = MultiSimilarityClassifierLoss(2, 4, ce_weight=0.5)
    logits = loss.classifier(projection.float()).double()
    expected = MultiSimilarityLoss()(projection, labels) + 0.5 * MaskedBCEWithLogitsLoss()(
        logits, labels
    )
    assert loss(projection, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.input_key == "projection"
    assert sorted(n for n, _ in loss.named_parameters()) == ["classifier.bias", "classifier.weight"]


def test_ms_plus_classifier_softmax_head_smoothing_and_correction():
    from cxrembed.losses.ms_classifier import MultiSimilarityClassifierLoss

    projection = 2.0 * _emb(9, 4)
    ids = torch.tensor([0, 1, 2] * 3)
    loss = MultiSimilarityClassifierLoss(3, 4, head="softmax", label_smoothing=0.1)
    logits = loss.classifier(projection.float()).double()
    expected = MultiSimilarityLoss()(projection, ids) + torch.nn.functional.cross_entropy(
        logits, ids, label_smoothing=0.1
    )
    assert loss(projection, ids).item() == pytest.approx(expected.item(), rel=1e-6)
    corrected = MultiSimilarityClassifierLoss(3, 4, transition=np.eye(3).tolist())
    assert corrected.head == "softmax"
    assert MultiSimilarityClassifierLoss(3, 4, multilabel=True, head="softmax").head == "bce"
    with pytest.raises(LossInputError, match="head"):
        MultiSimilarityClassifierLoss(3, 4, head="hinge")
