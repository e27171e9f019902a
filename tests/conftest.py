"""Shared fixtures. Real data lives outside the project and is opt-in: tests that need it
take the ``cxr_dev`` fixture, which skips cleanly when the folder is absent."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

# Tests share two cores with each other and with whatever else runs: one BLAS/OpenMP thread
# per process is faster than two competing ones (set before torch is first imported).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The labeller caches its tokenised lexicon phrases in $XDG_CACHE_HOME/cxrkit
# (cxrlabel.phrasecache): the tests and the processes they start use a folder of their own.
_CACHE = tempfile.mkdtemp(prefix="cxrkit-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

try:  # property-based tests: the same examples on every run, so CI cannot flake
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("cxrkit", derandomize=True, deadline=None)
    _hypothesis_settings.load_profile("cxrkit")
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass

ROOT = Path(__file__).resolve().parents[1]
CXR_DEV = Path(os.environ.get("CXR_DEV", ROOT.parent / "shared" / "data" / "cxr_dev"))


KERMANY_DEV = Path(os.environ.get("KERMANY_DEV", ROOT.parent / "shared" / "data" / "kermany_dev"))


@pytest.fixture(scope="session")
def kermany_dev() -> Path:
    """Path of ../shared/data/kermany_dev (real pediatric CXRs); skips when it is absent."""
    if not (KERMANY_DEV / "labels.csv").is_file():
        pytest.skip(f"real data folder not found at {KERMANY_DEV} (set KERMANY_DEV to it)")
    return KERMANY_DEV


@pytest.fixture(scope="session")
def cxr_dev() -> Path:
    """Path of ../shared/data/cxr_dev (real public data); skips when it is absent."""
    if not (CXR_DEV / "README.md").is_file():
        pytest.skip(f"real data folder not found at {CXR_DEV} (set CXR_DEV to point at it)")
    return CXR_DEV


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict]:
    """Replace the library call behind a command: ``seen = stand_in(module, "name", result)``
    makes ``module.name`` return ``result`` and record its call in ``seen`` (``"args"``,
    ``"kwargs"``), so a CLI test checks what the command passed on without doing the work."""

    def install(module: object, name: str, result: object = None) -> dict:
        seen: dict = {}

        def call(*args: object, **kwargs: object) -> object:
            seen["args"], seen["kwargs"] = args, kwargs
            return result

        monkeypatch.setattr(module, name, call)
        return seen

    return install
