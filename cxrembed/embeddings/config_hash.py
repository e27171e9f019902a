"""The one config-hash check: vectors made by one run are never mixed with another run's.

A run's config hash (:func:`cxrembed.train.config.config_hash`) travels with everything it
embeds: the embeddings manifest, the index folder. Loading embeddings, appending to them,
loading an index and searching it with a run all compare hashes here, with one message.

Examples
--------
>>> check_config_hash("abc", "abc", what="index 'i'", fix="rebuild it")
>>> check_config_hash("abc", None, what="index 'i'", fix="rebuild it")  # nothing asked
>>> check_config_hash("abc", "def", what="index 'i'", fix="rebuild it")
Traceback (most recent call last):
...
cxrembed.errors.ConfigHashMismatchError: index 'i' holds embeddings of a run with config hash 'abc', not 'def': the two runs' vectors are not comparable. Fix: rebuild it
"""

from __future__ import annotations

from cxrembed.errors import ConfigHashMismatchError

__all__ = ["check_config_hash"]


def check_config_hash(
    found: str | None,
    expected: str | None,
    *,
    what: str,
    fix: str,
    compare_none: bool = False,
) -> None:
    """Raise :class:`ConfigHashMismatchError` when ``found`` is not the ``expected`` hash.

    ``expected=None`` asks for nothing (no check) unless ``compare_none``: appending vectors
    without a hash to a folder that has one mixes runs too.
    """
    if found == expected or (expected is None and not compare_none):
        return
    made_by = (
        "vectors without a run config hash (not made by cxr embed)"
        if found is None
        else f"embeddings of a run with config hash {found!r}"
    )
    raise ConfigHashMismatchError(
        f"{what} holds {made_by}, not {expected!r}: the two runs' vectors are not "
        f"comparable. Fix: {fix}"
    )
