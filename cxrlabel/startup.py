"""Fast start-up of ``cxr label``: import spaCy without thinc importing torch.

``import spacy`` imports ``thinc``, whose ``thinc.compat`` tries ``import torch`` to learn
whether PyTorch interop is available. With the ``embed`` extra installed that import alone
costs seconds, and the labeller never uses it: it needs spaCy's tokenizer and
``PhraseMatcher`` only. thinc has no switch for this, so :func:`hide_torch_from_thinc`
installs an import hook that refuses ``torch`` *only while* ``thinc.compat`` is being
executed (thinc then records ``has_torch = False``, its documented behaviour when torch is
not installed). Every other import of torch, before or after, works as usual; the hook
removes itself once thinc has decided.

``import spacy`` also imports ``spacy.cli`` (every spaCy command, with requests, httpx,
weasel and typer's CLI stack: about half of spaCy's import time) for one name,
``spacy.info``. :func:`skip_spacy_cli` lets that import take a stand-in whose ``info``
imports the real ``spacy.cli.info`` when called; the stand-in is gone from ``sys.modules``
once spaCy is imported, so a later ``import spacy.cli`` loads the real package.

When the command has finished, :func:`exit_now` ends the process without tearing the
interpreter down: freeing every module and object one by one (spaCy's vocabulary, tokenizer
and matcher, pandas, numpy…) costs a labeller process about 0.15 s of CPU, a fifth of a
short run, for memory the operating system reclaims at once anyway. The exit handlers
(``atexit``: logging, multiprocessing, ``weakref.finalize``) still run and the standard
streams are flushed; a process with a non-daemon thread still running exits as usual.

All of these, and a higher garbage-collection threshold, are used by the ``cxr`` entry point
for the labeller's commands only (a process that labels reports and exits), never on
library import: in a user's own process spaCy keeps its PyTorch interop and its CLI.

Examples
--------
>>> import subprocess, sys
>>> code = ("from cxrlabel.startup import hide_torch_from_thinc; hide_torch_from_thinc(); "
...         "import spacy, sys; print('torch' in sys.modules)")
>>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
'False\\n'
"""

from __future__ import annotations

import atexit
import gc
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

__all__ = ["hide_torch_from_thinc", "skip_spacy_cli", "fast_labeller_start", "exit_now"]


class _TorchHiddenFromThinc(importlib.abc.MetaPathFinder):
    """Refuse ``torch`` while ``thinc.compat`` is importing; stand aside otherwise."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] != "torch":
            return None
        compat = sys.modules.get("thinc.compat")
        if compat is not None and hasattr(compat, "has_torch"):
            _remove(self)  # thinc has decided: nothing left to hide
            return None
        if compat is None:
            return None  # torch imported by someone else, before thinc: leave it alone
        raise ModuleNotFoundError(
            f"{fullname} hidden from thinc by cxrlabel.startup (the labeller does not use it)",
            name=fullname,
        )


def _remove(finder: importlib.abc.MetaPathFinder) -> None:
    try:
        sys.meta_path.remove(finder)
    except ValueError:
        pass


def hide_torch_from_thinc() -> bool:
    """Make the coming ``import spacy`` skip torch; False when it is too late (or moot).

    Nothing changes when spaCy (thinc) or torch is already imported.
    """
    if "thinc.compat" in sys.modules or "torch" in sys.modules:
        return False
    if not any(isinstance(f, _TorchHiddenFromThinc) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchHiddenFromThinc())
    return True


_STAND_INS = ("spacy.cli", "spacy.cli.info")


def _spacy_info(*args: Any, **kwargs: Any) -> Any:
    """``spacy.info``, imported on first call (the stand-in of :func:`skip_spacy_cli`)."""
    from spacy.cli.info import info

    return info(*args, **kwargs)


class _DropStandIns(importlib.abc.MetaPathFinder):
    """Remove the ``spacy.cli`` stand-ins as soon as spaCy's own import has finished."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spacy = sys.modules.get("spacy")
        if spacy is not None and hasattr(spacy, "Vocab"):  # the last name spacy/__init__ binds
            _drop_stand_ins()
            _remove(self)
        return None


def _drop_stand_ins() -> None:
    for name in _STAND_INS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__cxr_stand_in__", False):
            del sys.modules[name]


class _StandIn(ModuleType):
    """Stands in for a ``spacy.cli`` module; any other name loads and gives the real one."""

    __cxr_stand_in__ = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        _drop_stand_ins()
        return getattr(importlib.import_module(self.__name__), name)


def skip_spacy_cli() -> bool:
    """Make the coming ``import spacy`` skip ``spacy.cli``; False when spaCy is imported."""
    if "spacy" in sys.modules or "spacy.cli" in sys.modules:
        return False
    package = _StandIn("spacy.cli")
    package.__path__ = []  # a package with no files: nothing loads through it
    info = _StandIn("spacy.cli.info")
    info.info = _spacy_info  # type: ignore[attr-defined]
    sys.modules.update({"spacy.cli": package, "spacy.cli.info": info})
    sys.meta_path.insert(0, _DropStandIns())
    return True


#: Allocations between two young-generation collections in a labeller process (Python's
#: default is 700). Start-up (imports, the tokenizer's special cases, the phrase matcher)
#: makes hundreds of thousands of long-lived objects, and every default-threshold
#: collection walks them again: 0.16 s of the phrase matcher's 0.29 s here. The labeller's
#: own garbage is freed by reference counting, so rarer collections cost nothing.
LABELLER_GC_THRESHOLD = 100_000


def fast_labeller_start() -> None:
    """What ``cxr label`` and ``cxr validate`` call before parsing: both of the above, and
    rarer garbage collections (:data:`LABELLER_GC_THRESHOLD`)."""
    hide_torch_from_thinc()
    skip_spacy_cli()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(LABELLER_GC_THRESHOLD, older, oldest)


def exit_now(code: object = None) -> NoReturn:
    """``sys.exit(code)`` without the interpreter's teardown (see the module docstring).

    The exit status is the one ``sys.exit`` gives (None: 0, an int: itself, anything else
    printed to stderr: 1; 120 when flushing stdout or stderr fails, as Python does). Exit
    handlers run first. With a non-daemon thread still alive, ``SystemExit(code)`` is raised
    instead, so that the interpreter waits for it as usual.
    """
    main = threading.main_thread()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None or any(
        t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()
    ):
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a closed pipe: what the interpreter's own exit reports
            status = status or 120
    os._exit(status)
