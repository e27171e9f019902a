"""Every closed vocabulary of cxrkit and the validators that check values against them.

One place for the words a user can type (``--uncertain positive``, ``fit: letterbox``,
``window: auto``) and for numeric ranges, in the style of scikit-learn's ``StrOptions`` and
``Interval``: one message shape everywhere, "<name> must be <expected>; got <value>", with
the closest valid word when the value looks like a typo. Both packages use it (cxrembed
depends on cxrlabel, never the other way), so the image vocabularies live here too; this
module imports nothing heavy.

Examples
--------
>>> UNCERTAIN.check("Positive", "--uncertain")
'positive'
>>> UNCERTAIN.check("ones", "--uncertain")      # CheXpert's U-Ones is an alias
'positive'
>>> FIT.check("leterbox", "preprocessing.fit")
Traceback (most recent call last):
...
cxrlabel.errors.InputError: preprocessing.fit must be one of letterbox, crop; got 'leterbox' (did you mean 'letterbox'?)
>>> Interval(int, 1, None).check(0, "--jobs")
Traceback (most recent call last):
...
cxrlabel.errors.InputError: --jobs must be an integer >= 1; got 0
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cxrlabel.errors import CxrError, InputError

__all__ = [
    "Options",
    "Interval",
    "check_window",
    "UNCERTAIN",
    "UNCERTAIN_POLICIES",
    "policy_for",
    "SEMANTICS",
    "NOISE_METRICS",
    "FIT",
    "WINDOWS",
    "STATUSES",
    "HEDGE",
]


@dataclass(frozen=True)
class Options:
    """A closed set of words, with aliases, matched case-insensitively.

    Examples
    --------
    >>> Options(("a", "b"), aliases={"x": "a"}).check("X", "letter")
    'a'
    >>> "b" in Options(("a", "b"))
    True
    """

    values: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and self._canonical(value) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def _canonical(self, value: str) -> str | None:
        key = value.strip().lower()
        for word in self.values:
            if word.lower() == key:
                return word
        return self.aliases.get(key)

    def describe(self) -> str:
        """``"a, b or c"``-style list of the canonical words (for help texts)."""
        return ", ".join(self.values)

    def check(self, value: Any, name: str, error: type[CxrError] = InputError) -> str:
        """The canonical word for ``value``; anything else raises ``error`` naming ``name``."""
        found = self._canonical(value) if isinstance(value, str) else None
        if found is not None:
            return found
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value.lower(), [*self.values, *self.aliases], 1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        raise error(f"{name} must be one of {self.describe()}; got {value!r}{hint}")


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``None`` leaves a side open. ``kind`` is ``int`` or ``float``.

    Examples
    --------
    >>> Interval(float, 0, 1, closed="left").check(0.2, "val_fraction")
    0.2
    >>> Interval(float, 0, None, closed="neither").describe()
    'a number > 0'
    """

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"  # "both", "left", "right" or "neither"

    def describe(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            lb, rb = ("[" if left else "("), ("]" if right else ")")
            return f"{noun} in {lb}{self.low:g}, {self.high:g}{rb}"
        if self.low is not None:
            return f"{noun} {'>=' if left else '>'} {self.low:g}"
        if self.high is not None:
            return f"{noun} {'<=' if right else '<'} {self.high:g}"
        return noun

    def contains(self, value: Any) -> bool:
        """True when ``value`` is a number of the right kind inside the range."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return not (
            self.high is not None and (value > self.high or (value == self.high and not right))
        )

    def check(self, value: Any, name: str, error: type[CxrError] = InputError) -> Any:
        """``value`` when inside the range; otherwise ``error`` naming ``name``."""
        if not self.contains(value):
            raise error(f"{name} must be {self.describe()}; got {value!r}")
        return value


#: How uncertain (-1) labels count when scoring, mining pairs or training: as positive, as
#: negative, or left out. CheXpert's policy names (U-Ones, U-Zeros) are accepted as aliases.
UNCERTAIN = Options(
    ("positive", "negative", "ignore"),
    aliases={
        "ones": "positive",
        "zeros": "negative",
        "u-ones": "positive",
        "u-zeros": "negative",
        "u-ignore": "ignore",
    },
)
#: The label-matrix policies of :mod:`cxrembed.data.labels` (``soft``: CheXpert's
#: label-smoothing value, Python API only).
UNCERTAIN_POLICIES = Options(("ignore", "zeros", "ones", "soft"))
_POLICY_OF = {"positive": "ones", "negative": "zeros", "ignore": "ignore"}


def policy_for(uncertain: str, name: str = "uncertain") -> str:
    """The label-matrix policy for an :data:`UNCERTAIN` word (``positive`` -> ``ones``).

    Examples
    --------
    >>> policy_for("negative"), policy_for("ignore"), policy_for("zeros")
    ('zeros', 'ignore', 'zeros')
    """
    if uncertain in UNCERTAIN_POLICIES and uncertain != "soft":
        return UNCERTAIN_POLICIES.check(uncertain, name)
    return _POLICY_OF[UNCERTAIN.check(uncertain, name)]


#: What a 0 means in a curated label set: "not coded" (positive-only) or "negated" (full).
SEMANTICS = Options(("positive-only", "full"))
#: Which per-label reliability from ``noise.json`` weights training pairs.
NOISE_METRICS = Options(("f1", "precision", "recall"))
#: How a radiograph is made square: padded (letterbox) or centre-cropped.
FIT = Options(("letterbox", "crop"))
#: Named DICOM windows; a ``(center, width)`` pair is the other form (:func:`check_window`).
WINDOWS = Options(("auto", "none", "minmax"))
#: Mention assertion statuses, in report-aggregation precedence order.
STATUSES = ("positive", "uncertain", "negative")
#: How a graded hedge (probable, borderline, "X versus Y") counts in the labeller:
#: uncertain (CheXpert's convention) or positive (a gold that codes it as present).
HEDGE = Options(("uncertain", "positive"))


def check_window(
    value: Any, name: str = "window", error: type[CxrError] = InputError
) -> str | tuple[float, float]:
    """A named window (:data:`WINDOWS`) or a ``(center, width)`` pair with width > 0.

    Examples
    --------
    >>> check_window("AUTO"), check_window([40, 400])
    ('auto', (40.0, 400.0))
    >>> check_window((40, 0))
    Traceback (most recent call last):
    ...
    cxrlabel.errors.InputError: window must be auto, none, minmax or [center, width] with width > 0; got (40, 0)
    """
    if isinstance(value, str):
        return WINDOWS.check(value, name, error)
    pair = list(value) if isinstance(value, Iterable) else []
    if (
        len(pair) == 2
        and all(Interval(float, None, None).contains(v) for v in pair)
        and pair[1] > 0
    ):
        return (float(pair[0]), float(pair[1]))
    raise error(
        f"{name} must be {WINDOWS.describe()} or [center, width] with width > 0; got {value!r}"
    )
