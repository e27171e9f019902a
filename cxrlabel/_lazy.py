"""Lazy public names for package ``__init__`` modules, and aliases for moved modules.

Packages re-export their public names without importing heavy modules (spaCy, torch,
faiss) until a name is first used, so ``import cxrlabel.errors`` stays light and the light
install can import ``cxrembed``. Modules that moved to a new place keep working under their
old dotted name (:func:`alias_moved_modules`), so users' imports do not break.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

__all__ = ["lazy_exports", "names_by_module", "alias_moved_modules"]


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` resolving ``names`` (name -> module).

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("demo", {"sqrt": "math"})
    >>> getattr_("sqrt")(9.0), dir_()
    (3.0, ['sqrt'])
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__


def names_by_module(modules: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``{module: [names]}`` -> ``{name: module}``, the form :func:`lazy_exports` takes.

    A package lists each defining module once; a name listed twice is a mistake.

    Examples
    --------
    >>> names_by_module({"math": ["sqrt", "pi"], "os.path": ["join"]})
    {'sqrt': 'math', 'pi': 'math', 'join': 'os.path'}
    """
    out: dict[str, str] = {}
    for module, names in modules.items():
        for name in names:
            if name in out:
                raise ValueError(f"{name!r} is exported by {out[name]} and {module}")
            out[name] = module
    return out


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve an old module name (or anything below an old package) to its new module."""

    def __init__(self, moved: Mapping[str, str]) -> None:
        self.moved = dict(moved)

    def _target(self, fullname: str) -> str | None:
        for old, new in self.moved.items():
            if fullname == old or fullname.startswith(old + "."):
                return new + fullname[len(old) :]
        return None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if self._target(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = self._target(spec.name)
        assert new is not None
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The new module is already executed."""


def alias_moved_modules(moved: Mapping[str, str]) -> None:
    """Make ``import old.name`` give the module now at ``new.name`` (old -> new).

    Installed once per mapping, ahead of the path finder, so an old name never loads a
    second copy of a module.

    Examples
    --------
    >>> alias_moved_modules({"cxrlabel._old_lazy_name": "cxrlabel._lazy"})
    >>> import importlib, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     importlib.import_module("cxrlabel._old_lazy_name") is sys.modules["cxrlabel._lazy"]
    True
    """
    for finder in sys.meta_path:
        if isinstance(finder, _MovedModules):
            finder.moved.update(moved)
            return
    sys.meta_path.insert(0, _MovedModules(moved))
