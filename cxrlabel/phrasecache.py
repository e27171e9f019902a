"""The tokenised lexicon phrases of the labeller's matcher, kept on disk between processes.

Compiling the labeller's phrase matcher tokenises every spelling of every lexicon phrase
(about 4,900 for the packaged lexicon): a tenth of a second at each start, most of a short
``cxr label`` run's own work. What the matcher keeps of a phrase is the ``LOWER`` hash of
each of its tokens (spaCy's ``PhraseMatcher`` takes such hash sequences in place of Docs,
as when it is unpickled), so those are what is cached: one JSON file per set of phrases in
``$XDG_CACHE_HOME/cxrkit`` (``~/.cache/cxrkit`` when unset), never a pickle.

A file is named by a SHA-256 of everything its content depends on (:func:`cache_key`): the
phrases themselves (so an edited lexicon, packaged or ``--lexicon``, has another file), the
tokenizer's settings (English's exceptions, prefixes, suffixes, infixes, URL pattern), the
versions of spaCy and cxrkit and the file format. The key is stored in the file too, and a
file whose key, length or values do not fit is ignored. A missing, unreadable or malformed
file means the phrases are tokenised as before; a cache folder that cannot be created or
written is skipped silently (the next run tokenises again). Writes are atomic (a temporary
file renamed), so worker processes starting together never read half a file; at most
:data:`KEEP` files are kept (the oldest others are removed).

Only the labeller's own tokenizer (:func:`cxrlabel.text.english_tokenizer`) uses the cache:
a pipeline given by the caller may tokenise differently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["cache_dir", "cache_key", "load", "save", "KEEP", "FORMAT"]

#: Version of the file layout (part of the key).
FORMAT = 1
#: Phrase files kept in the cache folder (one per lexicon in use).
KEEP = 8
_PREFIX = "phrases-"


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/cxrkit``, or ``~/.cache/cxrkit`` when it is unset or relative;
    None when there is no home folder either."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if base and os.path.isabs(base):
        return Path(base) / "cxrkit"
    home = os.path.expanduser("~")
    return Path(home) / ".cache" / "cxrkit" if os.path.isabs(home) else None


def _tokenizer_settings() -> str:
    """What the English tokenizer's output depends on, as text (cheap: no tokenizer built)."""
    import spacy
    from spacy.lang.en import English

    defaults = English.Defaults
    url = defaults.url_match
    token = defaults.token_match
    return repr(
        (
            spacy.__version__,
            list(defaults.prefixes or ()),
            list(defaults.suffixes or ()),
            list(defaults.infixes or ()),
            getattr(getattr(url, "__self__", None), "pattern", repr(url)),
            getattr(getattr(token, "__self__", None), "pattern", repr(token)),
            sorted(defaults.tokenizer_exceptions.items()),
        )
    )


def cache_key(phrases: Sequence[str]) -> str:
    """SHA-256 (hex) of the phrases, the tokenizer's settings and the versions."""
    from cxrlabel import __version__

    digest = hashlib.sha256()
    digest.update(f"cxrkit phrase cache {FORMAT} {__version__}\n".encode())
    digest.update(_tokenizer_settings().encode("utf-8", "surrogatepass"))
    for phrase in phrases:
        digest.update(b"\n" + phrase.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _path(folder: Path, key: str) -> Path:
    return folder / f"{_PREFIX}{key[:32]}.json"


def load(key: str, count: int) -> list[list[int]] | None:
    """The cached hash sequences of ``count`` phrases under ``key``; None when absent or unfit."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        with open(_path(folder, key), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    lowers = data.get("lowers")
    if not isinstance(lowers, list) or len(lowers) != count:
        return None
    for hashes in lowers:
        if not isinstance(hashes, list) or not all(
            type(h) is int and 0 <= h < 1 << 64 for h in hashes
        ):
            return None
    return lowers


def save(key: str, lowers: Sequence[Sequence[int]]) -> bool:
    """Write the hash sequences under ``key`` atomically; False (nothing raised) on failure."""
    folder = cache_dir()
    if folder is None:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".phrases-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"key": key, "lowers": [list(h) for h in lowers]}, handle)
            os.replace(tmp, _path(folder, key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return False
    _prune(folder)
    return True


def _prune(folder: Path) -> None:
    """Remove all but the :data:`KEEP` newest phrase files (best effort)."""
    with contextlib.suppress(OSError):
        files = sorted(folder.glob(f"{_PREFIX}*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[:-KEEP]:
            with contextlib.suppress(OSError):
                old.unlink()
