"""The one config-hash check: vectors made by one run are never mixed with another run's.

A run's config hash (:func:`cxrembed.train.config.config_hash`) travels with everything it
embeds: the embeddings manifest, the index folder. So does the fingerprint of its weights
(``weights_sha256``, :func:`cxrembed.train.checkpoint.weights_sha256`): two runs with the
same settings share a config hash, but not their weights. Loading embeddings, appending to
them, loading an index and searching it with a run all compare both here, with one message.
A folder written before weights were fingerprinted is accepted with a note.

Examples
--------
>>> check_config_hash("abc", "abc", what="index 'i'", fix="rebuild it")
>>> check_config_hash("abc", None, what="index 'i'", fix="rebuild it")  # nothing asked
>>> check_config_hash("abc", "def", what="index 'i'", fix="rebuild it")
Traceback (most recent call last):
...
cxrembed.errors.ConfigHashMismatchError: index 'i' holds embeddings of a run with config hash 'abc', not 'def': the two runs' vectors are not comparable. Fix: rebuild it
>>> check_config_hash("abc", "abc", what="index 'i'", fix="rebuild it",
...                   found_weights="1f2e" * 16, expected_weights="9a8b" * 16)
Traceback (most recent call last):
...
cxrembed.errors.ConfigHashMismatchError: index 'i' holds embeddings made with other weights (weights sha256 1f2e1f2e1f2e..., not 9a8b9a8b9a8b...) by a run with the same settings (config hash 'abc'): the run was trained further, or its model.safetensors comes from another run. Fix: rebuild it
"""

from __future__ import annotations

import warnings

from cxrembed.errors import ConfigHashMismatchError

__all__ = ["check_config_hash"]

_SHOWN = 12  # hex digits of a weights fingerprint shown in messages


def check_config_hash(
    found: str | None,
    expected: str | None,
    *,
    what: str,
    fix: str,
    compare_none: bool = False,
    found_weights: str | None = None,
    expected_weights: str | None = None,
) -> None:
    """Raise :class:`ConfigHashMismatchError` when ``found`` is not the ``expected`` hash,
    or when both weights fingerprints are known and differ.

    ``expected=None`` asks for nothing (no check) unless ``compare_none``: appending vectors
    without a hash to a folder that has one mixes runs too. ``expected_weights`` with no
    ``found_weights`` (a folder from an older cxrkit) passes with a warning.
    """
    if found != expected and (expected is not None or compare_none):
        made_by = (
            "vectors without a run config hash (not made by cxr embed)"
            if found is None
            else f"embeddings of a run with config hash {found!r}"
        )
        raise ConfigHashMismatchError(
            f"{what} holds {made_by}, not {expected!r}: the two runs' vectors are not "
            f"comparable. Fix: {fix}"
        )
    if expected_weights is None:
        return
    if found_weights is None:
        if expected is not None:
            warnings.warn(
                f"{what} records no weights fingerprint (written by an older cxrkit): it "
                "cannot be checked against the run's weights, only its config hash",
                UserWarning,
                stacklevel=3,
            )
        return
    if found_weights != expected_weights:
        raise ConfigHashMismatchError(
            f"{what} holds embeddings made with other weights (weights sha256 "
            f"{found_weights[:_SHOWN]}..., not {expected_weights[:_SHOWN]}...) by a run with "
            f"the same settings (config hash {found!r}): the run was trained further, or its "
            f"model.safetensors comes from another run. Fix: {fix}"
        )
