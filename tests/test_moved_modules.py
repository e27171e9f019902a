"""Modules that moved when the packages were laid out by concept still import by their old
name, as the same module object (never a second copy), with a DeprecationWarning."""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from pathlib import Path

import pytest

import cxrembed  # noqa: F401  (installs its aliases)
import cxrlabel  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def _aliases(init: Path) -> dict[str, str]:
    text = init.read_text(encoding="utf-8")
    block = text[text.index("alias_moved_modules(\n") :]
    return dict(re.findall(r'"([\w.]+)": "([\w.]+)"', block))


MOVED = {
    **_aliases(ROOT / "cxrembed" / "__init__.py"),
    **_aliases(ROOT / "cxrlabel" / "__init__.py"),
}


def test_alias_table_is_read() -> None:
    assert MOVED["cxrembed.index"] == "cxrembed.search.index"
    assert MOVED["cxrlabel.validate"] == "cxrlabel.validation.labels"


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_old_name_gives_the_new_module(old: str, new: str) -> None:
    if old.startswith("cxrembed") and importlib.util.find_spec("torch") is None:
        pytest.skip("image side not installed")
    assert not (ROOT / (old.replace(".", "/") + ".py")).exists(), f"{old} still has a file"
    sys.modules.pop(old, None)  # an earlier import would hide the warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert sys.modules[old] is sys.modules[new]
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)


def test_submodule_of_a_moved_package_is_not_loaded_twice() -> None:
    report = importlib.import_module("cxrembed.metrics.report")
    assert report is importlib.import_module("cxrembed.evaluation.metrics.report")


def test_public_imports_from_the_readme_still_work() -> None:
    from cxrlabel.validate import validate

    from cxrlabel.validation import validate as validate_new

    assert validate is validate_new
    assert callable(validate)
