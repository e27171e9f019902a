"""The loss registry: one spec per ``training.loss`` name, consulted instead of name tests."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cxrembed.errors import RunConfigError
from cxrembed.losses.base import PairLoss
from cxrembed.losses.registry import LOSS_SPECS, LossSpec, loss_help, loss_names, loss_spec
from cxrembed.train.config import LOSSES, RunConfig

PACKAGE = Path(__file__).resolve().parents[3] / "cxrembed"


def test_registry_lists_every_loss_once_with_its_traits():
    assert loss_names() == LOSSES == ("ms", "ml2", "ce", "proxy", "ms+proxy", "ms+ce")
    traits = {
        n: (s.pairs, s.output, s.parameters, s.noise, s.mining) for n, s in LOSS_SPECS.items()
    }
    assert traits == {
        "ms": (True, "embedding", False, ("reliability",), True),
        "ml2": (True, "embedding", False, ("reliability",), False),
        "ce": (False, "logits", False, (), False),
        "proxy": (False, "embedding", True, ("transition",), False),
        "ms+proxy": (True, "embedding", True, ("reliability", "transition"), True),
        "ms+ce": (True, "projection", True, ("reliability", "transition"), True),
    }
    assert [n for n, s in LOSS_SPECS.items() if s.model_classifier] == ["ce"]


@pytest.mark.parametrize("name", LOSSES)
def test_spec_agrees_with_its_class(name):
    spec = LOSS_SPECS[name]
    cls = spec.loss_class()
    assert issubclass(cls, torch.nn.Module)
    params = inspect.signature(cls).parameters
    # The trainer passes class-sized arguments exactly to losses with parameters ...
    assert ("num_classes" in params) == spec.parameters
    # ... and noise.json as what the class accepts.
    assert {k for k in ("reliability", "transition") if k in params} == set(spec.noise)
    assert ("mining" in params) == spec.mining
    # A class that declares what it is fed agrees with the spec.
    assert getattr(cls, "input_key", spec.output) == spec.output


@pytest.mark.parametrize("name", ["ms", "ms+proxy", "ms+ce"])
def test_pair_options_stay_in_the_signature(name):
    """Losses that take ``**pair_options`` still list each one, with PairLoss's default."""
    cls = LOSS_SPECS[name].loss_class()
    params = list(inspect.signature(cls).parameters.values())
    shared = list(inspect.signature(PairLoss).parameters.values())
    assert params[-len(shared) :] == shared
    assert all(p.kind is not p.VAR_KEYWORD for p in params)
    sized = {"num_classes": 2, "embedding_dim": 4} if LOSS_SPECS[name].parameters else {}
    assert cls(**sized, tau_pos=0.3).tau_pos == 0.3
    with pytest.raises(TypeError):
        cls(**sized, tau_poss=0.3)


def test_unknown_loss_errors_list_the_registry_names():
    with pytest.raises(RunConfigError) as info:
        RunConfig.from_dict({"training": {"loss": "triplet"}})
    for name in LOSSES:
        assert name in str(info.value)
    with pytest.raises(RunConfigError, match=r"unknown loss 'ms-ce'.*did you mean 'ms\+ce'"):
        loss_spec("ms-ce")


@pytest.mark.parametrize("name", LOSSES)
def test_config_checks_follow_the_spec(name):
    spec = LOSS_SPECS[name]
    one_label = {"training": {"loss": name, "batch_size": 4, "m": 4}}
    if spec.pairs:
        with pytest.raises(RunConfigError, match="at least two labels per batch"):
            RunConfig.from_dict(one_label)
    else:
        assert RunConfig.from_dict(one_label).training.loss == name
    noisy = {"training": {"loss": name, "noise": "noise.json"}}
    if spec.noise:
        assert RunConfig.from_dict(noisy).training.noise == "noise.json"
    else:
        with pytest.raises(RunConfigError, match=r"choose one of ms, ml2, proxy, ms\+proxy"):
            RunConfig.from_dict(noisy)


def test_help_text_comes_from_the_registry():
    text = loss_help("ms+ce")
    assert [line.split(":")[0] for line in text.splitlines()] == list(LOSSES)
    assert "ms+ce: multi-similarity + a linear classification term (default)." in text
    assert text.count("(default)") == 1


def test_spec_rejects_unknown_traits():
    with pytest.raises(ValueError, match="output must be one of"):
        LossSpec("x", "m:C", "x", pairs=True, output="features")
    with pytest.raises(ValueError, match="noise must be a subset"):
        LossSpec("x", "m:C", "x", pairs=True, noise=("weights",))


def test_registry_imports_no_torch():
    code = (
        "import sys; import cxrembed.losses.registry, cxrembed.train.config; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_module_tests_a_loss_by_name():
    """The trainer consults specs: no ``loss == "ce"`` / ``loss in ("ce", ...)`` anywhere,
    and the baseline's name is written only in the registry."""
    names = "|".join(re.escape(n) for n in LOSSES)
    compared = re.compile(rf"""loss\)?\s*(?:==|!=|\bin\b|\bnot in\b)\s*\(?["'](?:{names})["']""")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "registry.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if compared.search(line) or re.search(r"""["']ce["']""", line):
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []
