"""Load pretrained backbone weights from a local file (torchvision or torchxrayvision layout).

cxrkit never downloads at run time: the machine it runs on may have no internet, and a
silent download makes results depend on what a server returned that day. Asking for weights
by name (``"imagenet"``, ``"DEFAULT"``, a torchvision ``Weights`` enum, a torchxrayvision
weight name, a URL) fails at once with the file to fetch and how to pass it.

Accepted files (``.pth`` / ``.pt`` read with ``torch.load(weights_only=True)``, or
``.safetensors``), layout detected from the keys:

- torchvision state dicts: ResNet keys ``conv1.weight``, ``layer1.0...``, ``fc.*``; DenseNet
  keys ``features.conv0.weight``, ... (old ``norm.1``-style DenseNet keys are renamed);
- torchxrayvision state dicts: DenseNet-121 has torchvision's ``features.*`` keys with a
  1-channel ``conv0`` and an ``op_threshs`` buffer; ResNet keys carry a ``model.`` prefix;
- a cxrkit :class:`~cxrembed.models.EmbeddingNet` state dict (``backbone.*``; only the
  backbone is taken);
- any of these wrapped in a checkpoint dict (``state_dict``/``model``/``model_state_dict``)
  or saved from ``nn.DataParallel`` (``module.`` prefix).

Classifier keys (``fc``, ``classifier``, ``op_threshs``) are skipped on purpose and listed in
the result. A 3-channel first convolution is folded to the model's channel count.
"""

from __future__ import annotations

import enum
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cxrembed.errors import DownloadUnavailableError, ModelConfigError, WeightsError
from cxrembed.models.backbone import Backbone, fold_conv_weight

__all__ = ["LoadResult", "load_pretrained"]

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_HEAD_KEYS = ("fc", "classifier", "op_threshs", "attention_pool", "projection")
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
    r"((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)
_TORCHVISION_FILES = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
    "densenet121": "https://download.pytorch.org/models/densenet121-a639ec97.pth",
}
_RESNET_DEPTHS = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
    ((3, 8, 36, 3), True): "resnet152",
}
_DENSENET_DEPTHS = {
    (6, 12, 24, 16): "densenet121",
    (6, 12, 32, 32): "densenet169",
    (6, 12, 48, 32): "densenet201",
    (6, 12, 36, 24): "densenet161",
}


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_pretrained` did, so callers can log it or check it.

    Attributes
    ----------
    path : Path
        The weights file.
    layout : str
        ``"torchvision"``, ``"torchxrayvision"`` or ``"cxrkit"``.
    arch : str
        The architecture the file's keys describe (e.g. ``"resnet50"``), or ``"unknown"``.
    loaded : tuple of str
        Backbone tensors filled from the file.
    missing : tuple of str
        Backbone tensors the file lacks (left as initialised).
    unexpected : tuple of str
        File tensors with no place in the backbone.
    mismatched : tuple of str
        Tensors present in both with different shapes (not loaded).
    ignored : tuple of str
        File entries skipped on purpose (classifier heads, non-tensor values).
    folded : str or None
        e.g. ``"conv1: 3 -> 1 channels"`` when the first convolution was folded.
    """

    path: Path
    layout: str
    arch: str
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]
    ignored: tuple[str, ...]
    folded: str | None

    def summary(self) -> str:
        """One line for logs, e.g. ``loaded 120 tensors from r18.pth (torchvision layout, ...``."""
        parts = [
            f"loaded {len(self.loaded)} tensors from {self.path.name} "
            f"({self.layout} layout, {self.arch})"
        ]
        if self.folded:
            parts.append(f"folded {self.folded}")
        for name in ("ignored", "missing", "unexpected", "mismatched"):
            if getattr(self, name):
                parts.append(f"{len(getattr(self, name))} {name}")
        return "; ".join(parts)


def load_pretrained(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = True
) -> LoadResult:
    """Load backbone weights from a local file into ``model`` (in place).

    Parameters
    ----------
    model : EmbeddingNet or Backbone
        The network whose backbone receives the weights.
    path : path-like
        A ``.pth``/``.pt`` state dict or a ``.safetensors`` file. Names and URLs (e.g.
        ``"imagenet"``) raise :class:`DownloadUnavailableError`: nothing is downloaded.
    strict : bool
        When True (default), any missing, unexpected or mis-shaped backbone tensor raises
        :class:`WeightsError` (the file is for another architecture) and nothing is loaded.
        When False, the matching tensors are loaded and the rest reported in the result.

    Returns
    -------
    LoadResult

    Examples
    --------
    >>> import tempfile, pathlib, torch, torchvision
    >>> from cxrembed.models import EmbeddingNet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "resnet18.pth"
    >>> torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    >>> result = load_pretrained(EmbeddingNet("resnet18"), path)
    >>> result.layout, result.folded, result.ignored
    ('torchvision', 'conv1: 3 -> 1 channels', ('fc.bias', 'fc.weight'))
    """
    backbone = _target_backbone(model)
    _reject_download(path, backbone.arch)
    path = Path(path)
    state, ignored = _unwrap(_read(path), path)
    state, layout, dropped = _to_backbone_keys(state)
    ignored = ignored + dropped
    arch = _guess_arch(state)

    expected = backbone.state_dict()
    folded, layout = _fold_first_conv(state, expected, backbone, layout, path)
    missing = tuple(
        sorted(k for k in expected if k not in state and not k.endswith("num_batches_tracked"))
    )
    unexpected = tuple(sorted(k for k in state if k not in expected))
    mismatched = tuple(
        sorted(k for k in state if k in expected and state[k].shape != expected[k].shape)
    )
    if strict and (missing or unexpected or mismatched):
        raise WeightsError(
            _mismatch_message(
                path, layout, arch, backbone, state, expected, missing, unexpected, mismatched
            )
        )
    loadable = {k: v for k, v in state.items() if k in expected and k not in mismatched}
    _check_finite(loadable, path)
    backbone.load_state_dict(loadable, strict=False)
    return LoadResult(
        path=path,
        layout=layout,
        arch=arch,
        loaded=tuple(sorted(loadable)),
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
        ignored=tuple(sorted(ignored)),
        folded=folded,
    )


def _fold_first_conv(
    state: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
    backbone: Backbone,
    layout: str,
    path: Path,
) -> tuple[str | None, str]:
    """Fold the file's first convolution to the model's input channels (RGB -> gray);
    return what was folded and the layout (1-channel torchvision files are XRV's)."""
    conv_key = f"{backbone.first_conv}.weight"
    folded = None
    if conv_key in state and conv_key in expected:
        found, wanted = state[conv_key].shape[1], expected[conv_key].shape[1]
        if found != wanted:
            try:
                state[conv_key] = fold_conv_weight(state[conv_key], wanted)
            except ModelConfigError as exc:
                raise WeightsError(f"{path}: {exc}") from exc
            folded = f"{backbone.first_conv}: {found} -> {wanted} channels"
        if layout == "torchvision" and found == 1:  # XRV's files are the 1-channel ones
            layout = "torchxrayvision"
    return folded, layout


def _check_finite(loadable: dict[str, torch.Tensor], path: Path) -> None:
    broken = sorted(
        k
        for k, v in loadable.items()
        if v.is_floating_point() and not bool(torch.isfinite(v).all())
    )
    if broken:
        raise WeightsError(
            f"{path}: {len(broken)} tensor(s) hold NaN or infinite values (e.g. {broken[0]!r}); "
            "the file is damaged or comes from a diverged training run. Use another file."
        )


def _target_backbone(model: nn.Module) -> Backbone:
    if isinstance(model, Backbone):
        return model
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, Backbone):
        return backbone
    raise ModelConfigError(
        f"load_pretrained expects an EmbeddingNet or a Backbone from build_backbone; "
        f"got {type(model).__name__}."
    )


def _reject_download(spec: object, arch: str) -> None:
    """Raise when ``spec`` asks for weights by name or URL instead of naming a local file."""
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec).strip()
        is_url = "://" in text
        is_name = (
            not is_url
            and not Path(text).exists()
            and "/" not in text
            and os.sep not in text
            and Path(text).suffix == ""
        )
        if not (is_url or is_name):
            return
        asked = repr(text)
    elif isinstance(spec, (bool, enum.Enum)):
        asked = f"pretrained={spec!r}"
    else:
        raise WeightsError(
            f"weights must be given as a path to a local file; got {type(spec).__name__}."
        )
    url = _TORCHVISION_FILES.get(arch)
    where = f" torchvision's ImageNet weights for {arch} are {url}." if url else ""
    raise DownloadUnavailableError(
        f"cannot fetch pretrained weights {asked}: cxrkit never downloads at run time (this "
        "machine may be offline). Download the file once on a machine with internet and pass "
        "its local path, e.g. load_pretrained(model, 'weights/backbone.pth')."
        + where
        + " torchxrayvision .pt files hold whole pickled models: re-save them first with "
        "torch.save(xrv_model.state_dict(), 'xrv.pth')."
    )


def _read(path: Path) -> object:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise WeightsError(
            f"weights file {what}: {path}. Expected a .pth/.pt state dict or a "
            ".safetensors file; check the path."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # garbage, not a pickled object
            raise _unreadable(path, exc) from exc
        raise WeightsError(
            f"{path}: cannot be read safely (torch.load with weights_only=True refused it: "
            "the file holds pickled Python objects, e.g. a whole model as torchxrayvision's "
            ".pt files do). Re-save it once, in an environment you trust, as a state dict: "
            "torch.save(torch.load(f, weights_only=False).state_dict(), 'weights.pth')."
        ) from exc
    except Exception as exc:  # corrupt zip, truncated file, bad safetensors header, ...
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: BaseException) -> WeightsError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"
    return WeightsError(
        f"{path}: not a readable weights file ({type(exc).__name__}: {detail}). Expected a "
        ".pth/.pt state dict saved with torch.save or a .safetensors file; the file may be "
        "truncated or corrupt: download it again."
    )


def _unwrap(obj: object, path: Path) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Find the state dict inside a checkpoint; return it and the non-tensor keys skipped."""
    while isinstance(obj, Mapping) and not _has_tensors(obj):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not _has_tensors(obj):
        found = type(obj).__name__ if not isinstance(obj, Mapping) else "a mapping without tensors"
        raise WeightsError(
            f"{path}: expected a state dict (parameter names -> tensors), possibly under "
            f"'state_dict' or 'model'; found {found}. Save weights with "
            "torch.save(model.state_dict(), path)."
        )
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    skipped = tuple(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    return state, skipped


def _has_tensors(obj: Mapping) -> bool:
    return any(isinstance(v, torch.Tensor) for v in obj.values())


def _to_backbone_keys(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], str, tuple[str, ...]]:
    """Rename keys to :class:`Backbone`'s; return (state, layout, head keys dropped)."""
    layout = "torchvision"
    state = _strip_common(state, "module.")
    if all(k.startswith("model.") or k == "op_threshs" for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
        layout = "torchxrayvision"
    if any(k.startswith("backbone.") for k in state):
        layout = "cxrkit"
        dropped = tuple(k for k in state if not k.startswith("backbone."))
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k not in dropped}
        return state, layout, dropped
    if "op_threshs" in state:
        layout = "torchxrayvision"
    dropped = tuple(k for k in state if k.split(".")[0] in _HEAD_KEYS)
    state = {k.removeprefix("features."): v for k, v in state.items() if k not in dropped}
    state = {_OLD_DENSENET_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    return state, layout, dropped


def _strip_common(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def _guess_arch(state: Mapping[str, torch.Tensor]) -> str:
    """Name the architecture a backbone state dict describes, from its block counts."""
    blocks = re.compile(r"^(layer|denseblock)(\d)\.(?:denselayer)?(\d+)\.")
    counts: dict[tuple[str, int], set[int]] = {}
    for key in state:
        match = blocks.match(key)
        if match:
            counts.setdefault((match[1], int(match[2])), set()).add(int(match[3]))
    for kind, depths in (("layer", _RESNET_DEPTHS), ("denseblock", _DENSENET_DEPTHS)):
        sizes = tuple(len(counts.get((kind, i), ())) for i in range(1, 5))
        if not any(sizes):
            continue
        if kind == "layer":
            return depths.get((sizes, "layer1.0.conv3.weight" in state), "unknown")
        return depths.get(sizes, "unknown")
    return "unknown"


def _mismatch_message(
    path: Path,
    layout: str,
    arch: str,
    backbone: Backbone,
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    missing: tuple[str, ...],
    unexpected: tuple[str, ...],
    mismatched: tuple[str, ...],
) -> str:
    if arch == backbone.arch:
        found, fix = f"{arch} weights whose names do not match", "check the file's origin"
    elif arch != "unknown":
        found, fix = f"a {arch} backbone", f"build the model with backbone={arch!r}"
    else:
        found, fix = "weights of an unrecognised network", "check the file"
    details = [
        f"{len(missing)} missing, {len(unexpected)} unexpected, "
        f"{len(mismatched)} with another shape"
    ]
    if mismatched:
        key = mismatched[0]
        details.append(
            f"e.g. {key!r} is {tuple(state[key].shape)} in the file but "
            f"{tuple(expected[key].shape)} in the model"
        )
    elif missing:
        details.append(f"e.g. {missing[0]!r} is not in the file")
    elif unexpected:
        details.append(f"e.g. {unexpected[0]!r} has no place in the model")
    return (
        f"{path}: holds {found} ({layout} layout) but the model's backbone is "
        f"{backbone.arch}: {'; '.join(details)}. Either {fix}, pass weights made for "
        f"{backbone.arch}, or use strict=False to load only the matching tensors."
    )
