"""The shared vocabularies and validators (cxrlabel.vocab)."""

from __future__ import annotations

import re

import pytest

from cxrembed.errors import RunConfigError
from cxrlabel.errors import InputError
from cxrlabel.vocab import (
    FIT,
    SEMANTICS,
    UNCERTAIN,
    Interval,
    Options,
    check_window,
    policy_for,
)


@pytest.mark.parametrize(
    "word,canonical",
    [
        ("positive", "positive"),
        ("NEGATIVE", "negative"),
        (" ignore ", "ignore"),
        ("ones", "positive"),
        ("zeros", "negative"),
        ("U-Ones", "positive"),
    ],
)
def test_uncertain_words_and_aliases(word: str, canonical: str) -> None:
    assert UNCERTAIN.check(word, "--uncertain") == canonical


def test_unknown_word_names_option_choices_and_closest() -> None:
    with pytest.raises(InputError) as err:
        SEMANTICS.check("positive_only", "--gold-semantics")
    message = str(err.value)
    assert "--gold-semantics must be one of positive-only, full" in message
    assert "did you mean 'positive-only'" in message


def test_error_class_is_the_callers() -> None:
    with pytest.raises(RunConfigError, match="preprocessing.fit"):
        FIT.check("pad", "preprocessing.fit", RunConfigError)


@pytest.mark.parametrize("value", [None, 3, ["letterbox"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InputError, match="got"):
        FIT.check(value, "fit")


def test_membership_and_iteration() -> None:
    opts = Options(("a", "b"), aliases={"c": "a"})
    assert "A" in opts and "c" in opts and "d" not in opts and 1 not in opts
    assert list(opts) == ["a", "b"]


@pytest.mark.parametrize(
    "interval,good,bad",
    [
        (Interval(int, 1, None), [1, 5, 10**9], [0, -1, 1.5, True, "2", None]),
        (Interval(float, 0, 1, closed="left"), [0, 0.5, 0.999], [1, -0.1, float("nan")]),
        (Interval(float, 0, None, closed="neither"), [1e-9, 3], [0, -1]),
        (Interval(int, None, 10, closed="right"), [10, -5], [11]),
    ],
)
def test_interval(interval: Interval, good: list, bad: list) -> None:
    for value in good:
        assert interval.check(value, "x") == value
    for value in bad:
        with pytest.raises(InputError, match=re.escape(f"x must be {interval.describe()}")):
            interval.check(value, "x")


def test_interval_descriptions() -> None:
    assert Interval(int, 1, None).describe() == "an integer >= 1"
    assert Interval(float, 0, 1, closed="left").describe() == "a number in [0, 1)"
    assert Interval(float, None, 2, closed="neither").describe() == "a number < 2"


def test_policy_for_maps_both_vocabularies() -> None:
    assert [policy_for(w) for w in ("positive", "negative", "ignore")] == [
        "ones",
        "zeros",
        "ignore",
    ]
    assert [policy_for(w) for w in ("ones", "zeros")] == ["ones", "zeros"]
    with pytest.raises(InputError, match="uncertain must be one of"):
        policy_for("maybe")


@pytest.mark.parametrize("bad", [(1,), (1, 0), (1, -2), ("a", 3), "window", 5])
def test_bad_windows(bad: object) -> None:
    with pytest.raises(InputError, match="window must be (one of )?auto, none, minmax"):
        check_window(bad)


def test_good_windows() -> None:
    assert check_window("MinMax") == "minmax"
    assert check_window((40, 400.5)) == (40.0, 400.5)
