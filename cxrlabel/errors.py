"""One exception hierarchy for all of cxrkit.

Every error a user can cause derives from :class:`CxrError`, so the CLI catches one type,
prints its message on one line and exits 1. Messages name the file and row (or rule id),
what was expected, what was found and, where possible, the fix. The classes also subclass
the matching builtin so ``except ValueError`` in user code keeps working.
"""

from __future__ import annotations

__all__ = [
    "CxrError",
    "LexiconError",
    "InputError",
    "GoldError",
    "MissingExtraError",
    "OutputError",
    "ReplacedCharactersWarning",
]


class CxrError(Exception):
    """Root of every error cxrkit raises on purpose."""


class LexiconError(CxrError, ValueError):
    """A schema, cue list or label map file is malformed (names the file and line)."""


class InputError(CxrError, ValueError):
    """An input table, folder or argument cannot be used as given."""


class GoldError(CxrError, ValueError):
    """A curated (gold) label table cannot be scored as given."""


class MissingExtraError(CxrError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str = "embed") -> None:
        super().__init__(
            f"this command needs the optional dependency '{module}', which is not installed. "
            f'Install it with: pip install "cxrkit[{extra}]"'
        )
        self.module = module
        self.extra = extra


class OutputError(CxrError, OSError):
    """An output cannot be written: the disk is full, the folder is read-only or not writable.

    The message names the path and the problem (with the free space for a full disk); no
    partial file is left behind (:mod:`cxrlabel.atomic`).
    """


class ReplacedCharactersWarning(UserWarning):
    """Characters UTF-8 cannot encode (unpaired UTF-16 surrogates) were replaced by U+FFFD."""
