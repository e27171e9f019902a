"""SHA-256 checksums: how a folder proves that its files are the ones it wrote.

Run, embeddings and index folders record the SHA-256 of each file they write (in their
manifest, or in the file's own header) and check it when they are read, so a damaged,
truncated, edited or swapped file is refused with a message naming it instead of giving
wrong results. SHA-256 is what ``sha256sum`` prints, so a user can check a file by hand.
Hashing is streamed (bounded memory) and runs at disk / page-cache speed (see
``benchmarks/checksums.py``).

Folders written before checksums existed still load: :func:`unverified` says so once per
folder, and only sizes and shapes are checked.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ids.txt"
>>> _ = path.write_text("a\\n")
>>> file_sha256(path)[:16]
'87428fc522803d31'
>>> check_sha256(path, file_sha256(path), fix="rebuild it")
>>> _ = path.write_text("b\\n")
>>> check_sha256(path, "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7",
...              fix="rebuild it")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
cxrlabel.errors.InputError: .../ids.txt does not match the checksum recorded when it was written (sha256 ..., recorded 87428fc52280...): the file was changed, damaged or replaced since. Fix: rebuild it
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from cxrlabel.errors import CxrError, InputError

__all__ = ["ALGORITHM", "file_sha256", "check_sha256", "unverified"]

#: The checksum every cxrkit manifest records.
ALGORITHM = "sha256"
_SHOWN = 12  # hex digits shown in messages


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, ALGORITHM).hexdigest()


def check_sha256(
    path: str | os.PathLike[str],
    expected: str,
    *,
    fix: str,
    error: type[CxrError] = InputError,
) -> None:
    """Raise ``error`` naming ``path`` when its SHA-256 is not ``expected``."""
    actual = file_sha256(path)
    if actual != expected:
        raise error(
            f"{Path(path)} does not match the checksum recorded when it was written (sha256 "
            f"{actual[:_SHOWN]}..., recorded {expected[:_SHOWN]}...): the file was changed, "
            f"damaged or replaced since. Fix: {fix}"
        )


def unverified(what: str, fix: str) -> None:
    """Warn that ``what`` records no checksums (an older cxrkit wrote it) and still loads."""
    warnings.warn(
        f"{what} records no checksums (written by an older cxrkit): only sizes and shapes "
        f"are checked. {fix} to add them",
        UserWarning,
        stacklevel=3,
    )
