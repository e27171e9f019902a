"""Parsing of comma-separated command-line values, shared by the cxrembed commands."""

from __future__ import annotations

from cxrlabel.errors import InputError

__all__ = ["split_names", "parse_ints"]


def split_names(text: str | None, option: str) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None stays None; an empty item is an error.

    Examples
    --------
    >>> split_names("age, pO2_saturation", "--features")
    ['age', 'pO2_saturation']
    """
    if text is None:
        return None
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise InputError(
            f"{option} must be names separated by commas (e.g. a,b); got {text!r} with an "
            "empty item"
        )
    return names


def parse_ints(text: str, option: str) -> list[int]:
    """``"1,5,10"`` -> ``[1, 5, 10]``; anything but positive integers is an error.

    Examples
    --------
    >>> parse_ints("1, 5,10", "--k")
    [1, 5, 10]
    """
    try:
        values = [int(part) for part in (split_names(text, option) or [])]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise InputError(
            f"{option} must be positive integers separated by commas (e.g. 1,5,10); got {text!r}"
        )
    return values
