"""Tests for cxrembed.models.weights: local torchvision / torchxrayvision / cxrkit weights."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from cxrembed.errors import DownloadUnavailableError, ModelConfigError, WeightsError
from cxrembed.models import EmbeddingNet, LoadResult, build_backbone, load_pretrained
from cxrlabel.errors import CxrError


def _gray(size: int = 64) -> torch.Tensor:
    return torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(7))


@pytest.fixture(scope="module")
def tv_resnet18() -> nn.Module:
    torch.manual_seed(11)
    net = torchvision.models.resnet18(weights=None)
    _randomise_batchnorm(net)
    return net.eval()


@pytest.fixture(scope="module")
def tv_resnet18_file(tmp_path_factory: pytest.TempPathFactory, tv_resnet18: nn.Module) -> Path:
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save(tv_resnet18.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def r18_backbone() -> nn.Module:
    """A backbone for tests that must fail before loading anything into it."""
    return build_backbone("resnet18")


def _randomise_batchnorm(net: nn.Module) -> None:
    """Give batch norms non-trivial statistics, so a missed buffer changes the output."""
    gen = torch.Generator().manual_seed(5)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def _tv_pooled(tv_net: nn.Module, gray: torch.Tensor) -> torch.Tensor:
    """torchvision's own globally pooled features on the gray image copied to RGB."""
    head = "fc" if hasattr(tv_net, "fc") else "classifier"
    saved = getattr(tv_net, head)
    setattr(tv_net, head, nn.Identity())
    try:
        with torch.no_grad():
            return tv_net(gray.expand(-1, 3, -1, -1))
    finally:
        setattr(tv_net, head, saved)


def _our_pooled(net: EmbeddingNet, gray: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.eval().feature_map(gray).mean(dim=(2, 3))


def test_torchvision_resnet_file_loads_folded_and_matches_torchvision(
    tv_resnet18: nn.Module, tv_resnet18_file: Path
) -> None:
    net = EmbeddingNet("resnet18", embedding_dim=8, attention=False)
    result = load_pretrained(net, tv_resnet18_file)
    assert isinstance(result, LoadResult)
    assert (result.layout, result.arch) == ("torchvision", "resnet18")
    assert result.folded == "conv1: 3 -> 1 channels"
    assert result.ignored == ("fc.bias", "fc.weight")
    assert result.missing == result.unexpected == result.mismatched == ()
    assert len(result.loaded) == len(net.backbone.state_dict())
    torch.testing.assert_close(
        net.backbone.conv1.weight, tv_resnet18.conv1.weight.sum(dim=1, keepdim=True)
    )
    gray = _gray()
    torch.testing.assert_close(
        _our_pooled(net, gray), _tv_pooled(tv_resnet18, gray), rtol=1e-4, atol=1e-5
    )
    n_tensors = sum(not k.endswith("num_batches_tracked") for k in net.backbone.state_dict())
    assert result.summary().startswith(f"loaded {len(result.loaded)} tensors from resnet18.pth")
    assert len(result.loaded) >= n_tensors and "2 ignored" in result.summary()


def test_safetensors_and_checkpoint_wrappers_load_the_same_weights(
    tmp_path: Path, tv_resnet18: nn.Module, tv_resnet18_file: Path
) -> None:
    reference = build_backbone("resnet18")
    load_pretrained(reference, tv_resnet18_file)
    state = tv_resnet18.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "r18.safetensors")
    wrapped = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    for path in (tmp_path / "r18.safetensors", wrapped):
        backbone = build_backbone("resnet18")
        result = load_pretrained(backbone, path)
        assert result.missing == result.unexpected == ()
        loaded = backbone.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in reference.state_dict().items())


def test_torchvision_densenet_file_including_old_key_names(tmp_path: Path) -> None:
    torch.manual_seed(12)
    tv_net = torchvision.models.densenet121(weights=None)
    _randomise_batchnorm(tv_net)
    tv_net.eval()
    # torchvision's published DenseNet file still uses the pre-0.4 'norm.1' key names
    # (and, being that old, has no num_batches_tracked buffers)
    old_state = {
        k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v
        for k, v in tv_net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    assert any(".norm.1." in k for k in old_state)
    torch.save(old_state, tmp_path / "densenet121.pth")
    net = EmbeddingNet("densenet121", embedding_dim=8, attention=False)
    result = load_pretrained(net, tmp_path / "densenet121.pth")
    assert (result.layout, result.arch, result.folded) == (
        "torchvision",
        "densenet121",
        "conv0: 3 -> 1 channels",
    )
    assert result.ignored == ("classifier.bias", "classifier.weight")
    gray = _gray(32)
    torch.testing.assert_close(
        _our_pooled(net, gray), _tv_pooled(tv_net, gray), rtol=1e-4, atol=1e-5
    )


def _load_xrv_file(tmp_path: Path, state: dict, arch: str) -> tuple[EmbeddingNet, object]:
    """Save ``state`` as an XRV file (with its op_threshs buffer), load it into a new net."""
    state["op_threshs"] = torch.rand(18)
    torch.save(state, tmp_path / f"xrv-{arch}.pth")
    net = EmbeddingNet(arch, embedding_dim=8)
    result = load_pretrained(net, tmp_path / f"xrv-{arch}.pth")
    assert (result.layout, result.arch, result.folded) == ("torchxrayvision", arch, None)
    return net, result


def test_torchxrayvision_densenet_layout_is_detected_and_not_folded(tmp_path: Path) -> None:
    # XRV's DenseNet: torchvision keys, 1-channel conv0, 18 outputs, an op_threshs buffer
    torch.manual_seed(13)
    state = torchvision.models.densenet121(weights=None, num_classes=18).state_dict()
    state["features.conv0.weight"] = torch.randn(64, 1, 7, 7)
    net, result = _load_xrv_file(tmp_path, state, "densenet121")
    assert result.ignored == ("classifier.bias", "classifier.weight", "op_threshs")
    assert result.missing == result.unexpected == ()
    torch.testing.assert_close(net.backbone.conv0.weight, state["features.conv0.weight"])
    key = "denseblock4.denselayer16.conv2.weight"
    torch.testing.assert_close(net.backbone.state_dict()[key], state[f"features.{key}"])


def test_torchxrayvision_resnet_layout_strips_the_model_prefix(tmp_path: Path) -> None:
    # XRV's ResNet wraps torchvision's in `self.model` with a 1-channel conv1
    torch.manual_seed(14)
    tv_net = torchvision.models.resnet50(weights=None, num_classes=18)
    tv_net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    state = {f"model.{k}": v for k, v in tv_net.state_dict().items()}
    net, result = _load_xrv_file(tmp_path, state, "resnet50")
    assert result.ignored == ("fc.bias", "fc.weight", "op_threshs")
    for key in ("conv1.weight", "layer4.2.conv3.weight", "layer3.5.bn2.running_var"):
        torch.testing.assert_close(net.backbone.state_dict()[key], state[f"model.{key}"])


def test_cxrkit_model_file_gives_its_backbone_only(tmp_path: Path) -> None:
    torch.manual_seed(15)
    source = EmbeddingNet("resnet18", embedding_dim=8, num_classes=3)
    torch.save(source.state_dict(), tmp_path / "run.pth")
    target = EmbeddingNet("resnet18", embedding_dim=16)
    projection_before = target.projection.weight.clone()
    result = load_pretrained(target, tmp_path / "run.pth")
    assert result.layout == "cxrkit"
    assert all(
        k.split(".")[0] in {"attention_pool", "projection", "classifier"} for k in result.ignored
    )
    torch.testing.assert_close(
        target.backbone.layer4[1].conv2.weight, source.backbone.layer4[1].conv2.weight
    )
    torch.testing.assert_close(target.projection.weight, projection_before)


@pytest.mark.parametrize(
    ("factory", "arch"),
    [
        (torchvision.models.resnet50, "resnet50"),
        (torchvision.models.resnet34, "resnet34"),
        (torchvision.models.densenet121, "densenet121"),
    ],
)
def test_weights_for_another_architecture_are_refused_and_nothing_changes(
    tmp_path: Path, factory: object, arch: str
) -> None:
    torch.save(factory(weights=None).state_dict(), tmp_path / "other.pth")
    backbone = build_backbone("resnet18")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(WeightsError, match=rf"holds a {arch} backbone.*backbone={arch!r}"):
        load_pretrained(backbone, tmp_path / "other.pth")
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_non_strict_loading_takes_the_matching_tensors_and_reports_the_rest(
    tmp_path: Path,
) -> None:
    torch.manual_seed(16)
    r34 = torchvision.models.resnet34(weights=None)
    torch.save(r34.state_dict(), tmp_path / "r34.pth")
    backbone = build_backbone("resnet18")
    result = load_pretrained(backbone, tmp_path / "r34.pth", strict=False)
    assert result.arch == "resnet34" and result.missing == () and result.mismatched == ()
    assert "layer3.5.conv1.weight" in result.unexpected
    torch.testing.assert_close(backbone.layer1[1].conv2.weight, r34.layer1[1].conv2.weight)
    assert "unexpected" in result.summary()


def test_missing_and_corrupt_files_raise_weights_error(
    tmp_path: Path, tv_resnet18_file: Path, r18_backbone: nn.Module
) -> None:
    backbone = r18_backbone
    with pytest.raises(WeightsError, match="not found"):
        load_pretrained(backbone, tmp_path / "nowhere.pth")
    with pytest.raises(WeightsError, match="is a folder"):
        load_pretrained(backbone, tmp_path)
    (tmp_path / "noise.pth").write_bytes(b"\x00not a torch file" * 10)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(tv_resnet18_file.read_bytes()[:4000])
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 64)
    for path in ("noise.pth", "truncated.pth", "bad.safetensors"):
        with pytest.raises(WeightsError, match="not a readable weights file") as info:
            load_pretrained(backbone, tmp_path / path)
        assert str(tmp_path / path) in str(info.value)
        assert isinstance(info.value, CxrError)


def test_pickled_models_non_state_dicts_and_nan_weights_explain_the_fix(
    tmp_path: Path, r18_backbone: nn.Module
) -> None:
    backbone = r18_backbone
    torch.save(nn.Linear(2, 2), tmp_path / "whole-model.pt")  # like torchxrayvision's .pt
    with pytest.raises(WeightsError, match=r"weights_only=True.*state_dict\(\)"):
        load_pretrained(backbone, tmp_path / "whole-model.pt")
    state = dict(r18_backbone.state_dict())
    state["layer2.0.conv1.weight"] = torch.full_like(state["layer2.0.conv1.weight"], torch.nan)
    torch.save(state, tmp_path / "nan.pth")
    before = r18_backbone.conv1.weight.clone()
    with pytest.raises(WeightsError, match="NaN.*layer2.0.conv1.weight"):
        load_pretrained(backbone, tmp_path / "nan.pth")
    assert torch.equal(r18_backbone.conv1.weight, before)  # nothing half-loaded
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="expected a state dict.*found list"):
        load_pretrained(backbone, tmp_path / "list.pth")


@pytest.mark.parametrize(
    "request_",
    [
        "imagenet",
        "DEFAULT",
        "IMAGENET1K_V1",
        "densenet121-res224-all",
        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        torchvision.models.ResNet18_Weights.DEFAULT,
        True,
    ],
)
def test_download_requests_fail_at_once_without_touching_the_network(
    monkeypatch: pytest.MonkeyPatch, request_: object, r18_backbone: nn.Module
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_pretrained tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(DownloadUnavailableError, match="never downloads.*local path") as info:
        load_pretrained(r18_backbone, request_)
    assert "resnet18-f37072fd.pth" in str(info.value)  # where to get the file
    assert isinstance(info.value, WeightsError)


def test_only_models_with_a_backbone_are_accepted(tv_resnet18_file: Path) -> None:
    with pytest.raises(ModelConfigError, match="EmbeddingNet or a Backbone"):
        load_pretrained(nn.Linear(2, 2), tv_resnet18_file)
