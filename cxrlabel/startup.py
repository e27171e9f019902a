"""Fast start-up of ``cxr label``: import spaCy without thinc importing torch.

``import spacy`` imports ``thinc``, whose ``thinc.compat`` tries ``import torch`` to learn
whether PyTorch interop is available. With the ``embed`` extra installed that import alone
costs seconds, and the labeller never uses it: it needs spaCy's tokenizer and
``PhraseMatcher`` only. thinc has no switch for this, so :func:`hide_torch_from_thinc`
installs an import hook that refuses ``torch`` *only while* ``thinc.compat`` is being
executed (thinc then records ``has_torch = False``, its documented behaviour when torch is
not installed). Every other import of torch, before or after, works as usual; the hook
removes itself once thinc has decided.

Used by the ``cxr`` entry point for the labeller's commands only (a process that labels
reports and exits), never on library import: in a user's own process spaCy keeps its
PyTorch interop.

Examples
--------
>>> import subprocess, sys
>>> code = ("from cxrlabel.startup import hide_torch_from_thinc; hide_torch_from_thinc(); "
...         "import spacy, sys; print('torch' in sys.modules)")
>>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
'False\\n'
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["hide_torch_from_thinc"]


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
