"""noise.json: building from counts, atomic write, strict read."""

from __future__ import annotations

import json

import pytest

from cxrlabel.errors import InputError
from cxrlabel.validation.noise import build_noise, read_noise, write_noise


def _report():
    return build_noise(
        {
            # TP 3, FP 1, FN 1, TN 5
            "Edema": {"tp": 3, "fp": 1, "fn": 1, "tn": 5},
            # no gold positives: everything but the false-positive rate is undefined
            "Hernia": {"tp": 0, "fp": 2, "fn": 0, "tn": 8},
        },
        semantics="positive-only",
        uncertain_as="negative",
        schema="chestxray14",
        n_reports=10,
    )


def test_build_noise_hand_values():
    edema = _report().observations["Edema"]
    assert edema.support == 4
    assert edema.precision == pytest.approx(3 / 4)
    assert edema.recall == pytest.approx(3 / 4)
    assert edema.f1 == pytest.approx(6 / 8)
    assert edema.p_label1_given_truth0 == pytest.approx(1 / 6)
    assert edema.p_labelnot1_given_truth1 == pytest.approx(1 / 4)
    hernia = _report().observations["Hernia"]
    assert hernia.support == 0
    assert hernia.precision is hernia.recall is hernia.f1 is hernia.p_labelnot1_given_truth1 is None
    assert hernia.p_label1_given_truth0 == pytest.approx(0.2)


def test_round_trip_writes_null_for_undefined(tmp_path):
    path = write_noise(_report(), tmp_path / "noise.json")
    data = json.loads(path.read_text())
    assert data["semantics"] == "positive-only" and data["uncertain_as"] == "negative"
    assert data["schema"] == "chestxray14"
    assert data["observations"]["Hernia"]["f1"] is None
    assert set(data["observations"]["Edema"]) == {
        "support",
        "precision",
        "recall",
        "f1",
        "p_label1_given_truth0",
        "p_labelnot1_given_truth1",
    }
    assert read_noise(path) == _report()
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "invalid JSON"),
        ("[]", "expected an object"),
        ('{"semantics": "full"}', "missing key"),
        (
            '{"semantics": "odd", "uncertain_as": "positive", "schema": "x", "observations": {}}',
            "semantics",
        ),
        (
            '{"semantics": "full", "uncertain_as": "positive", "schema": "x", '
            '"observations": {"A": {"support": 1, "recall": 1.5}}}',
            "A.recall",
        ),
        (
            '{"semantics": "full", "uncertain_as": "positive", "schema": "x", "observations": {"A": 3}}',
            "'A'",
        ),
    ],
)
def test_read_rejects_bad_files_with_the_path(tmp_path, content, message):
    path = tmp_path / "noise.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_noise(path)
    assert str(path) in str(info.value)


def test_missing_file_and_bad_parameters(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_noise(tmp_path / "absent.json")
    with pytest.raises(InputError, match="semantics"):
        build_noise({}, semantics="partial", uncertain_as="positive", schema="x", n_reports=0)
