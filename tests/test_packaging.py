"""Packaging: every package folder is installed, lexicons ship, imports stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("cxrlabel", "cxrembed")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), (
        f"add these packages to pyproject.toml: {sorted(found - listed)}"
    )


def test_lexicons_are_found_as_package_data() -> None:
    from cxrlabel.lexicon import available_schemas, default_lexicon_dir

    assert (default_lexicon_dir() / "cues").is_dir()
    assert {"chexpert", "chestxray14"} <= set(available_schemas())


def test_errors_import_does_not_pull_spacy_or_torch() -> None:
    code = "import sys, cxrlabel.errors, cxrembed.errors; print('spacy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_spacy_factory_is_found_without_importing_cxrlabel() -> None:
    code = "import spacy; nlp = spacy.blank('en'); nlp.add_pipe('cxr_labeler'); print(nlp('No effusion.')._.cxr_labels)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'Pleural Effusion': 0.0" in out.stdout
