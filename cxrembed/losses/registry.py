"""The loss registry: every ``training.loss`` name and what the trainer needs to know about it.

One :class:`LossSpec` per name says which class implements the loss and how the rest of
training treats it, so the config check, the model, the data checks, the optimiser and the
training loop read the spec instead of testing loss names:

``pairs``
    the loss compares images of a batch, so a batch needs at least two labels (negative
    pairs) and the training labels at least one positive pair;
``output``
    what the loop feeds it: the unit-norm ``embedding``, the raw ``projection`` (losses
    with their own classifier) or the model's ``logits`` (the model then has a
    classification layer with one output per label);
``parameters``
    the loss owns learnable class proxies or a classifier (trained in the optimiser's
    ``loss`` group); the trainer passes ``num_classes``, ``embedding_dim`` and
    ``multilabel``;
``noise``
    what ``--noise noise.json`` feeds it: per-label ``reliability`` (pair weights) and/or a
    ``transition`` matrix (forward correction); empty: ``--noise`` is refused;
``mining``
    multi-similarity hard mining of the batch's pairs is built in.

This module imports no torch: the class is named by its import path and loaded by
:meth:`LossSpec.loss_class` when a run builds it.

Examples
--------
>>> LOSS_SPECS["ce"].output, LOSS_SPECS["ce"].pairs
('logits', False)
>>> loss_spec("ms+ce").loss_class().__name__
'MultiSimilarityClassifierLoss'
>>> loss_spec("triplet")
Traceback (most recent call last):
...
cxrembed.errors.RunConfigError: unknown loss 'triplet'; choose one of ms, ml2, ce, proxy, ms+proxy, ms+ce
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

from cxrembed.errors import RunConfigError

__all__ = ["LossSpec", "LOSS_SPECS", "loss_names", "loss_spec", "loss_help"]

_OUTPUTS = ("embedding", "projection", "logits")
_NOISE = ("reliability", "transition")


@dataclass(frozen=True)
class LossSpec:
    """How training treats one loss name (see the module docstring for each field)."""

    name: str
    target: str
    summary: str
    pairs: bool
    output: str = "embedding"
    parameters: bool = False
    noise: tuple[str, ...] = ()
    mining: bool = False

    def __post_init__(self) -> None:
        if self.output not in _OUTPUTS:
            raise ValueError(f"loss {self.name!r}: output must be one of {_OUTPUTS}")
        if not set(self.noise) <= set(_NOISE):
            raise ValueError(f"loss {self.name!r}: noise must be a subset of {_NOISE}")

    @property
    def model_classifier(self) -> bool:
        """True when the model itself ends in a classification layer (fed to the loss)."""
        return self.output == "logits"

    def loss_class(self) -> Any:
        """The implementing class (imports torch)."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


_SPECS = (
    LossSpec(
        "ms",
        "cxrembed.losses.multi_similarity:MultiSimilarityLoss",
        "multi-similarity with hard mining",
        pairs=True,
        noise=("reliability",),
        mining=True,
    ),
    LossSpec(
        "ml2",
        "cxrembed.losses.ml2:ML2Loss",
        "ML2 (partial matches by label overlap)",
        pairs=True,
        noise=("reliability",),
    ),
    LossSpec(
        "ce",
        "cxrembed.losses.bce:MaskedBCEWithLogitsLoss",
        "classifier baseline (penultimate layer as embedding)",
        pairs=False,
        output="logits",
    ),
    LossSpec(
        "proxy",
        "cxrembed.losses.proxy:NormalizedSoftmaxLoss",
        "normalised-softmax class proxies",
        pairs=False,
        parameters=True,
        noise=("transition",),
    ),
    LossSpec(
        "ms+proxy",
        "cxrembed.losses.ms_proxy:MultiSimilarityProxyLoss",
        "multi-similarity + a proxy term",
        pairs=True,
        parameters=True,
        noise=("reliability", "transition"),
        mining=True,
    ),
    LossSpec(
        "ms+ce",
        "cxrembed.losses.ms_classifier:MultiSimilarityClassifierLoss",
        "multi-similarity + a linear classification term",
        pairs=True,
        output="projection",
        parameters=True,
        noise=("reliability", "transition"),
        mining=True,
    ),
)

#: Every loss by name, in the order help texts list them.
LOSS_SPECS: dict[str, LossSpec] = {spec.name: spec for spec in _SPECS}


def loss_names() -> tuple[str, ...]:
    """The valid ``training.loss`` values.

    Examples
    --------
    >>> loss_names()
    ('ms', 'ml2', 'ce', 'proxy', 'ms+proxy', 'ms+ce')
    """
    return tuple(LOSS_SPECS)


def loss_spec(name: str) -> LossSpec:
    """The spec of ``name``; an unknown name is a :class:`RunConfigError` listing them all."""
    try:
        return LOSS_SPECS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(LOSS_SPECS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RunConfigError(
            f"unknown loss {name!r}; choose one of {', '.join(LOSS_SPECS)}{hint}"
        ) from None


def loss_help(default: str | None = None) -> str:
    """One line per loss for ``--help`` and the docs, the default marked.

    Examples
    --------
    >>> loss_help("ms").splitlines()[0]
    'ms: multi-similarity with hard mining (default);'
    """
    lines = [f"{s.name}: {s.summary}{' (default)' if s.name == default else ''};" for s in _SPECS]
    lines[-1] = lines[-1].rstrip(";") + "."
    return "\n".join(lines)
