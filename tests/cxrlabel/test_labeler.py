"""Labeler API: report-level labels, aggregation, No Finding, evidence, assertion, factory."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import spacy

from cxrlabel import InputError, Labeler
from cxrlabel.aggregate import aggregate


@pytest.fixture(scope="module")
def lab() -> Labeler:
    return Labeler()


def test_label_returns_one_row_per_text_with_schema_columns(lab: Labeler) -> None:
    out = lab.label(["No pneumothorax.", "", None, "Small left pleural effusion."])
    assert list(out.columns) == lab.names
    assert len(out) == 4
    assert out.loc[0, "Pneumothorax"] == 0
    assert out.loc[1].isna().all() and out.loc[2].isna().all()
    assert out.loc[3, "Pleural Effusion"] == 1


def test_label_rejects_a_bare_string(lab: Labeler) -> None:
    with pytest.raises(InputError, match="list of report texts"):
        lab.label("No pneumothorax.")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["negative", "positive", "uncertain"], 1.0),
        (["negative", "uncertain"], -1.0),
        (["negative", "negative"], 0.0),
    ],
)
def test_chexpert_aggregation_rule(statuses: list[str], expected: float) -> None:
    assert aggregate(statuses) == expected


def test_report_level_any_positive_wins(lab: Labeler) -> None:
    row = lab.label(["No pleural effusion on the left. Small right pleural effusion."]).iloc[0]
    assert row["Pleural Effusion"] == 1


def test_precedence_is_configurable() -> None:
    text = ["Possible pneumonia. Right lower lobe pneumonia."]
    assert Labeler().label(text).iloc[0]["Pneumonia"] == 1
    cautious = Labeler(precedence=("uncertain", "positive", "negative"))
    assert cautious.label(text).iloc[0]["Pneumonia"] == -1


def test_bad_precedence_and_unknown_section_are_clear_errors() -> None:
    with pytest.raises(InputError, match="precedence"):
        Labeler(precedence=("positive", "negative"))
    with pytest.raises(InputError, match="unknown section"):
        Labeler(sections=["findngs"])


def test_no_finding_rule(lab: Labeler) -> None:
    out = lab.label(
        [
            "No acute cardiopulmonary process. No pneumothorax.",
            "Right IJ central line in place. No pneumothorax.",
            "Possible left lower lobe pneumonia.",
            "Mild cardiomegaly.",
        ]
    )
    assert out.loc[0, "No Finding"] == 1
    assert out.loc[1, "No Finding"] == 1  # Support Devices does not count
    assert out.loc[1, "Support Devices"] == 1
    assert math.isnan(out.loc[2, "No Finding"])  # uncertain counts as abnormal
    assert math.isnan(out.loc[3, "No Finding"])


def test_chestxray14_schema_columns() -> None:
    lab = Labeler("chestxray14")
    assert "Effusion" in lab.names and "Pleural Effusion" not in lab.names
    assert lab.label(["Small right effusion."]).iloc[0]["Effusion"] == 1


def test_mentions_are_traceable_evidence(lab: Labeler) -> None:
    text = "FINDINGS: Pneumonia cannot be excluded. No pleural effusion."
    records = lab.mentions(text, report_id="r1")
    by_obs = {r["observation"]: r for r in records}
    pna = by_obs["Pneumonia"]
    assert pna["id"] == "r1"
    assert text[pna["start"] : pna["end"]] == pna["text"] == "Pneumonia"
    assert pna["assertion"] == "uncertain"
    assert pna["rule_id"].startswith("unc.")
    assert pna["section"] == "findings"
    assert "cannot be excluded" in pna["sentence"]
    eff = by_obs["Pleural Effusion"]
    assert eff["assertion"] == "negative" and eff["rule_id"].startswith("neg.")
    assert set(pna) >= {
        "id",
        "observation",
        "text",
        "start",
        "end",
        "sentence",
        "section",
        "assertion",
        "rule_id",
        "cue",
        "excluded",
        "reason",
    }


def test_indication_mentions_are_kept_as_excluded_evidence(lab: Labeler) -> None:
    text = "INDICATION: Evaluate for pneumonia.\nFINDINGS: Lungs are clear."
    assert math.isnan(lab.label([text]).iloc[0]["Pneumonia"])
    ev = [r for r in lab.mentions(text) if r["observation"] == "Pneumonia"]
    assert ev and ev[0]["excluded"] and ev[0]["reason"] == "section:indication"


def test_sections_option_limits_counted_sections() -> None:
    text = "FINDINGS: Small left effusion.\n\nIMPRESSION: No acute disease."
    assert Labeler().label([text]).iloc[0]["Pleural Effusion"] == 1
    only_impression = Labeler(sections=["impression"])
    assert math.isnan(only_impression.label([text]).iloc[0]["Pleural Effusion"])


def test_assertion_on_phrases_outside_the_lexicon(lab: Labeler) -> None:
    assert lab.assertion("There is no evidence of osteomyelitis.", "osteomyelitis") == "negative"
    assert lab.assertion("Findings may represent sarcoidosis.", "sarcoidosis") == "uncertain"
    assert lab.assertion("Known sarcoidosis.", "Sarcoidosis") == "positive"
    with pytest.raises(InputError, match="not found"):
        lab.assertion("No effusion.", "fracture")


def test_spacy_factory_registered_by_name() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("cxr_labeler", config={"schema": "chestxray14"})
    doc = nlp("Mild cardiomegaly. No pneumothorax.")
    assert doc._.cxr_labels == {"Cardiomegaly": 1.0, "Pneumothorax": 0.0}
    assert {m["observation"] for m in doc._.cxr_mentions} == {"Cardiomegaly", "Pneumothorax"}


def test_one_megabyte_report_is_processed(lab: Labeler) -> None:
    sentence = "The lungs are well expanded and there is no pleural effusion. "
    text = sentence * (1_000_000 // len(sentence) + 1) + "Large right pneumothorax."
    assert len(text) > 1_000_000
    row = lab.label([text]).iloc[0]
    assert row["Pleural Effusion"] == 0 and row["Pneumothorax"] == 1


def test_label_frame_is_float_with_nan_for_not_mentioned(lab: Labeler) -> None:
    out = lab.label(["Cardiomegaly."])
    assert isinstance(out, pd.DataFrame)
    assert out.dtypes.map(lambda d: d.kind == "f").all()
    assert math.isnan(out.loc[0, "Edema"])


def test_spacy_factory_takes_the_graded_hedge_options() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("cxr_labeler", config={"borderline": "positive"})
    assert nlp("Borderline cardiomegaly.")._.cxr_labels == {"Cardiomegaly": 1.0}
    default = spacy.blank("en")
    default.add_pipe("cxr_labeler")
    assert default("Borderline cardiomegaly.")._.cxr_labels == {"Cardiomegaly": -1.0}
