"""Tests for cxrembed.models: backbones, attention pooling, EmbeddingNet, build_model, device."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
import yaml

from cxrembed.errors import ModelConfigError
from cxrembed.models import (
    BACKBONES,
    EmbeddingNet,
    SpatialAttentionPool,
    build_backbone,
    build_model,
    resolve_device,
)
from cxrembed.models.backbone import fold_conv_weight, set_in_channels
from cxrlabel.errors import CxrError, InputError


@pytest.fixture()
def images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(2, 1, 64, 64, generator=gen)


@pytest.fixture(scope="module")
def classifier_net() -> EmbeddingNet:
    """One small attention + classifier model shared by the read-only tests."""
    torch.manual_seed(0)
    return EmbeddingNet("resnet18", embedding_dim=16, num_classes=14).eval()


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_builds_one_channel_and_embeds(name: str) -> None:
    torch.manual_seed(0)
    net = EmbeddingNet(name, embedding_dim=8).eval()
    assert net.backbone.in_channels == 1 and net.backbone.arch == name
    with torch.no_grad():
        fmap = net.feature_map(torch.rand(1, 1, 64, 32))
        feats = net.forward_head(fmap)
    assert fmap.shape == (1, BACKBONES[name], 2, 1)  # 32x downsampling
    assert (fmap >= 0).all()  # ends with a ReLU, DenseNet included
    assert feats["pooled"].shape == (1, BACKBONES[name])
    torch.testing.assert_close(feats["embedding"].norm(dim=1), torch.ones(1))


def test_unknown_backbone_names_the_choices() -> None:
    with pytest.raises(ModelConfigError, match="resnet18") as info:
        build_backbone("vgg16")
    assert isinstance(info.value, CxrError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_folded_first_conv_matches_rgb_model_on_replicated_gray(name: str) -> None:
    torch.manual_seed(1)
    rgb = build_backbone(name, in_channels=3).eval()
    gray_net = set_in_channels(copy.deepcopy(rgb), 1).eval()
    gray = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = rgb(gray.expand(-1, 3, -1, -1))
        got = gray_net(gray)
    assert gray_net.in_channels == 1
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_fold_conv_weight_sums_and_repeats_exactly() -> None:
    weight = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2)
    folded = fold_conv_weight(weight, 1)
    assert folded.shape == (2, 1, 2, 2)
    assert folded[1, 0, 1, 0] == weight[1, 0, 1, 0] + weight[1, 1, 1, 0] + weight[1, 2, 1, 0]
    spread = fold_conv_weight(folded, 3)
    torch.testing.assert_close(spread.sum(dim=1, keepdim=True), folded)
    with pytest.raises(ModelConfigError, match="3 -> 1"):
        fold_conv_weight(torch.zeros(2, 3, 1, 1), 2)


@pytest.mark.parametrize("attention", [True, False])
def test_embeddings_have_unit_norm_and_the_requested_size(
    images: torch.Tensor, attention: bool
) -> None:
    torch.manual_seed(0)
    net = EmbeddingNet("resnet18", embedding_dim=24, attention=attention).eval()  # no classifier
    with torch.no_grad():
        emb = net(images)
        feats = net.forward_features(images)
    assert emb.shape == (2, 24)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(feats["embedding"], emb)
    torch.testing.assert_close(feats["embedding"], F.normalize(feats["projection"], dim=1))
    assert feats["pooled"].shape == (2, 512)
    assert feats["logits"] is None
    if attention:
        assert feats["attention"].shape == (2, 1, 2, 2)
    else:
        assert feats["attention"] is None


def test_classifier_baseline_logits_come_from_the_projection(
    images: torch.Tensor, classifier_net: EmbeddingNet
) -> None:
    net = classifier_net
    with torch.no_grad():
        feats = net.forward_features(images)
    assert feats["logits"].shape == (2, 14)
    expected = feats["projection"] @ net.classifier.weight.T + net.classifier.bias
    torch.testing.assert_close(feats["logits"], expected)
    torch.testing.assert_close(feats["embedding"].norm(dim=1), torch.ones(2))


def _reference_pool(features: torch.Tensor, amap: torch.Tensor, gate: str) -> torch.Tensor:
    """Slow loop of pooled[b, c] = sum_ij a_ij f_cij / sum_ij a_ij (sigmoid) or sum a f."""
    batch, channels, height, width = features.shape
    out = torch.zeros(batch, channels, dtype=torch.float64)
    for b in range(batch):
        total = sum(float(amap[b, 0, i, j]) for i in range(height) for j in range(width))
        for c in range(channels):
            acc = 0.0
            for i in range(height):
                for j in range(width):
                    acc += float(amap[b, 0, i, j]) * float(features[b, c, i, j])
            out[b, c] = acc / total if gate == "sigmoid" else acc
    return out.float()


@pytest.mark.parametrize("gate", ["sigmoid", "softmax"])
def test_attention_pool_matches_the_weighted_average_loop(gate: str) -> None:
    torch.manual_seed(3)
    pool = SpatialAttentionPool(6, hidden_channels=4, gate=gate)
    torch.nn.init.normal_(pool.score[2].weight, std=10.0)  # leave the uniform start
    features = torch.rand(2, 6, 3, 5)
    pooled, amap = pool(features)
    assert amap.shape == (2, 1, 3, 5)
    assert ((amap > 0) & (amap < 1)).all()
    if gate == "softmax":
        torch.testing.assert_close(amap.sum(dim=(1, 2, 3)), torch.ones(2))
    assert (amap.max() - amap.min()) / amap.mean() > 0.1  # not flat: the check below is real
    torch.testing.assert_close(pooled, _reference_pool(features, amap.detach(), gate))


@pytest.mark.parametrize("gate", ["sigmoid", "softmax"])
def test_new_attention_pool_equals_global_average_pooling(gate: str) -> None:
    torch.manual_seed(0)
    pool = SpatialAttentionPool(8, gate=gate)
    features = torch.rand(3, 8, 4, 4)
    pooled, _ = pool(features)
    torch.testing.assert_close(pooled, features.mean(dim=(2, 3)))


def test_sigmoid_pool_stays_finite_when_every_gate_is_nearly_closed() -> None:
    pool = SpatialAttentionPool(4)
    torch.nn.init.constant_(pool.score[2].bias, -1000.0)  # sigmoid underflows to 0
    features = torch.rand(2, 4, 3, 3)
    pooled, amap = pool(features)
    assert (amap == 0).all()  # the naive sum(a f) / sum(a) would be 0/0 here
    torch.testing.assert_close(pooled, features.mean(dim=(2, 3)))


def test_every_part_gets_a_gradient(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = EmbeddingNet("resnet18", embedding_dim=8, num_classes=3)
    feats = net.forward_features(images)
    (feats["embedding"][:, 0].sum() + feats["logits"].sum()).backward()
    for name in (
        "backbone.conv1.weight",
        "attention_pool.score.2.weight",
        "projection.weight",
        "classifier.weight",
    ):
        grad = net.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_config_round_trips_through_yaml_and_rebuilds_the_same_model(
    images: torch.Tensor,
) -> None:
    torch.manual_seed(0)
    net = EmbeddingNet("resnet18", embedding_dim=32, attention=False, num_classes=5).eval()
    config = yaml.safe_load(yaml.safe_dump({"model": net.get_config(), "seed": 1}["model"]))
    assert config == {
        "backbone": "resnet18",
        "embedding_dim": 32,
        "attention": False,
        "num_classes": 5,
        "in_channels": 1,
    }
    rebuilt = EmbeddingNet.from_config({"model": config})
    rebuilt.load_state_dict(net.state_dict())  # strict: same parameter names and shapes
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(images), net(images))


def test_build_model_defaults_and_unknown_keys() -> None:
    assert build_model({}).get_config() == {
        "backbone": "resnet18",
        "embedding_dim": 128,
        "attention": True,
        "num_classes": None,
        "in_channels": 1,
    }
    with pytest.raises(ModelConfigError, match=r"run/config.yaml.*embeding_dim"):
        build_model({"model": {"embeding_dim": 64}}, source="run/config.yaml")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("backbone", "vgg16"),
        ("embedding_dim", 0),
        ("embedding_dim", True),
        ("attention", "yes"),
        ("num_classes", 0),
        ("in_channels", 2.0),
    ],
)
def test_bad_model_options_name_the_option_and_value(option: str, value: object) -> None:
    with pytest.raises(ModelConfigError, match=f"'{option}'.*Got {value!r}"):
        build_model({option: value}, source="cfg.yaml")


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (torch.rand(2, 64, 64), "unsqueeze"),
        (torch.rand(2, 3, 64, 64), r"\(B, 1, H, W\)"),
        (torch.zeros(2, 1, 64, 64, dtype=torch.uint8), "255"),
        (torch.rand(2, 1, 16, 64), "at least 32"),
        ([[0.0]], "torch.Tensor"),
    ],
)
def test_bad_image_batches_are_rejected_with_the_fix(
    batch: object, message: str, classifier_net: EmbeddingNet
) -> None:
    with pytest.raises(InputError, match=message):
        classifier_net(batch)


def test_resolve_device_falls_back_to_cpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in {"cpu", "cuda"}
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="not available"):
            assert resolve_device("cuda") == torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_device("auto")  # no warning for the automatic choice
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("gpu-please")
