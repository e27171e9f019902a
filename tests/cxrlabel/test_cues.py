"""One test per assertion cue, each on a sentence plain NegEx gets wrong or cannot explain.

Every case checks the status AND the rule id of the cue that decided it, so a lexicon edit
that changes which rule fires shows up here. Sentences are written for these tests.
"""

from __future__ import annotations

import math

import pytest

from cxrlabel import Labeler
from cxrlabel.assertion import NEGATIVE, POSITIVE, UNCERTAIN, ActiveCue, active_cues, assert_span
from cxrlabel.lexicon import Cue
from cxrlabel.mentions import Match


@pytest.fixture(scope="module")
def lab() -> Labeler:
    return Labeler("chexpert")


@pytest.fixture(scope="module")
def lab14() -> Labeler:
    return Labeler("chestxray14")


CUES = [
    # (id, sentence, target, status, rule id)
    (
        "cannot exclude",
        "Cannot exclude a small left pleural effusion.",
        "pleural effusion",
        UNCERTAIN,
        "unc.pre.cannot_exclude",
    ),
    (
        "cannot be excluded",
        "A small apical pneumothorax cannot be excluded.",
        "pneumothorax",
        UNCERTAIN,
        "unc.post.cannot_be_excluded",
    ),
    (
        "not excluded",
        "Early pneumonia in the lingula is not excluded.",
        "pneumonia",
        UNCERTAIN,
        "unc.post.cannot_be_excluded",
    ),
    (
        "versus (left side)",
        "Right basilar atelectasis versus consolidation.",
        "atelectasis",
        UNCERTAIN,
        "unc.versus",
    ),
    (
        "versus (right side)",
        "Right basilar atelectasis versus consolidation.",
        "consolidation",
        UNCERTAIN,
        "unc.versus",
    ),
    (
        "may represent",
        "The hazy perihilar opacity may represent edema.",
        "edema",
        UNCERTAIN,
        "unc.pre.may_represent",
    ),
    (
        "suggestive of",
        "Streaky bibasilar densities suggestive of atelectasis.",
        "atelectasis",
        UNCERTAIN,
        "unc.pre.suggestive_of",
    ),
    (
        "concern for",
        "Dense left lower lobe opacity, concern for pneumonia.",
        "pneumonia",
        UNCERTAIN,
        "unc.pre.concern_for",
    ),
    (
        "question of",
        "Question of a tiny right apical pneumothorax.",
        "pneumothorax",
        UNCERTAIN,
        "unc.pre.question_of",
    ),
    ("no new", "No new focal consolidation.", "consolidation", NEGATIVE, "neg.pre.no_new"),
    (
        "no increase in",
        "No increase in the small right pleural effusion.",
        "pleural effusion",
        POSITIVE,
        "pseudo.no_increase",
    ),
    (
        "has resolved",
        "The left basilar atelectasis has resolved.",
        "atelectasis",
        NEGATIVE,
        "neg.post.has_resolved",
    ),
    (
        "resolution of",
        "Interval resolution of the right upper lobe pneumonia.",
        "pneumonia",
        NEGATIVE,
        "neg.pre.resolution_of",
    ),
    (
        "removed",
        "The right chest tube has been removed.",
        "chest tube",
        NEGATIVE,
        "neg.post.removed",
    ),
    (
        "without evidence of",
        "Clear lungs without evidence of pneumothorax.",
        "pneumothorax",
        NEGATIVE,
        "neg.pre.without_evidence_of",
    ),
    (
        "free of",
        "The pleural spaces are free of effusion.",
        "effusion",
        NEGATIVE,
        "neg.pre.free_of",
    ),
    (
        "clear of",
        "The lungs are clear of focal consolidation.",
        "consolidation",
        NEGATIVE,
        "neg.pre.clear_of",
    ),
    (
        "within normal limits",
        "Heart size is within normal limits.",
        "heart size",
        NEGATIVE,
        "neg.post.within_normal_limits",
    ),
    (
        "unremarkable",
        "The cardiac silhouette is unremarkable.",
        "cardiac silhouette",
        NEGATIVE,
        "neg.post.unremarkable",
    ),
    (
        "no significant",
        "No significant pleural effusion.",
        "pleural effusion",
        NEGATIVE,
        "neg.pre.no_significant",
    ),
    (
        "likely (before)",
        "Likely atelectasis at the left base.",
        "atelectasis",
        UNCERTAIN,
        "unc.pre.likely",
    ),
    (
        "likely (after)",
        "Left basilar atelectasis is likely.",
        "atelectasis",
        UNCERTAIN,
        "unc.post.likely",
    ),
    (
        "possible",
        "Possible small right pleural effusion.",
        "pleural effusion",
        UNCERTAIN,
        "unc.pre.possible",
    ),
    ("borderline", "Borderline cardiomegaly.", "cardiomegaly", UNCERTAIN, "unc.pre.borderline"),
    (
        "interval improvement",
        "Interval improvement of the left lower lobe pneumonia.",
        "pneumonia",
        POSITIVE,
        "pseudo.interval_improvement",
    ),
    (
        "stable",
        "Stable small left pleural effusion.",
        "pleural effusion",
        POSITIVE,
        "pseudo.stable",
    ),
    (
        "follow-up (before)",
        "Follow-up radiograph to exclude pneumonia.",
        "pneumonia",
        UNCERTAIN,
        "unc.pre.follow_up",
    ),
    (
        "follow-up (after)",
        "Small nodule in the right upper lobe, follow-up is recommended.",
        "nodule",
        UNCERTAIN,
        "unc.post.follow_up",
    ),
]


# --------------------------------------------------------------------------- scopes


SCOPES = [
    # (id, sentence, target, status, rule id or None): where a cue reaches, and which one wins
    (
        "numbered items are separate statements",
        "1) Small left effusion 2) Normal heart size.",
        "effusion",
        POSITIVE,
        None,
    ),
    (
        "pseudo trigger no increase",
        "There is no increase in the left effusion.",
        "effusion",
        POSITIVE,
        "pseudo.no_increase",
    ),
    (
        "pseudo trigger not only",
        "There is not only cardiomegaly but also edema.",
        "cardiomegaly",
        POSITIVE,
        "pseudo.not_only",
    ),
    (
        "no other negates the others",
        "No other pulmonary nodules.",
        "nodules",
        NEGATIVE,
        "neg.pre.no_other",
    ),
    # plain NegEx negates: "not clearly seen" looks back at the pneumothorax
    (
        "uncertainty beats negation covering the same mention",
        "Cannot exclude a small pneumothorax, not clearly seen on this view.",
        "pneumothorax",
        UNCERTAIN,
        "unc.pre.cannot_exclude",
    ),
    (
        "negation governing the hedge wins",
        "No findings to suggest pneumonia.",
        "pneumonia",
        NEGATIVE,
        "neg.pre.no_evidence_of",
    ),
    # "no" covers the hedge "suggest" itself, so it governs the mention.
    (
        "negation governing the hedge word itself",
        "There are no features to suggest pneumonia.",
        "pneumonia",
        NEGATIVE,
        "neg.pre.no",
    ),
    (
        "negation nearer than hedge starts a new clause",
        "Possible small right effusion, without pneumothorax.",
        "pneumothorax",
        NEGATIVE,
        "neg.pre.without",
    ),
    (
        "hedge before a new clause still covers its own",
        "Possible small right effusion, without pneumothorax.",
        "effusion",
        UNCERTAIN,
        "unc.pre.possible",
    ),
    # "secondary to" alone terminates scopes; inside "may be secondary to" it does not.
    (
        "hedge ending in a causal phrase keeps its scope",
        "Basilar opacity which may be secondary to atelectasis.",
        "atelectasis",
        UNCERTAIN,
        "unc.pre.may_represent",
    ),
]


@pytest.mark.parametrize(
    ("sentence", "target", "status", "rule"),
    [c[1:] for c in CUES + SCOPES],
    ids=[c[0] for c in CUES + SCOPES],
)
def test_cue_decides_status_and_rule(lab: Labeler, sentence, target, status, rule) -> None:
    assert lab.explain_assertion(sentence, target) == (status, rule)


@pytest.mark.parametrize(
    "sentence",
    [
        "No pneumothorax but a small left effusion.",
        "No pneumothorax, however there is a small left effusion.",
        "No pneumothorax; small left effusion.",
    ],
    ids=["but", "however", "semicolon"],
)
def test_terminator_ends_negation_scope(lab: Labeler, sentence: str) -> None:
    assert lab.explain_assertion(sentence, "pneumothorax") == (NEGATIVE, "neg.pre.no")
    assert lab.explain_assertion(sentence, "effusion")[0] == POSITIVE


def test_with_stops_only_backward_cues(lab: Labeler, lab14: Labeler) -> None:
    # "normal" after "with" does not reach back to the cardiomegaly ...
    row = lab.label(["Mild cardiomegaly with normal pulmonary vasculature."]).iloc[0]
    assert row["Cardiomegaly"] == 1.0
    # ... but a hedge before "with" still reaches the fibrosis after it.
    row = lab14.label(["Coarse markings may represent changes associated with fibrosis."]).iloc[0]
    assert row["Fibrosis"] == -1.0


def test_uncertainty_checked_before_negation_at_equal_distance() -> None:
    possible = ActiveCue(_cue("unc.pre.possible", "uncertainty"), 0, 0, 1)
    not_seen = ActiveCue(_cue("neg.post.not_seen", "negation", "backward"), 1, 2, 3)
    # tokens: [possible] pneumothorax [not seen]: both cover at distance 0
    assert assert_span(1, 2, [possible, not_seen]) == (UNCERTAIN, possible)


def test_cue_overlapping_the_first_words_of_a_mention(lab: Labeler) -> None:
    # "no acute" overlaps the mention "acute fracture" and still negates it
    assert lab.label(["No acute fracture."]).iloc[0]["Fracture"] == 0.0


def test_equal_length_cues_both_stay(lab: Labeler) -> None:
    # "are clear" (backward) and "clear of" (forward) overlap with the same length
    row = lab.label(["The lungs are clear of pneumothorax."]).iloc[0]
    assert row["Pneumothorax"] == 0.0


def test_upper_limit_of_normal_is_normal(lab: Labeler) -> None:
    assert (
        lab.label(["Heart size is at the upper limits of normal."]).iloc[0]["Cardiomegaly"] == 0.0
    )


# --------------------------------------------------------------------------- mentions


def test_anchor_with_negation_is_negative(lab: Labeler) -> None:
    assert lab.label(["Heart size is normal."]).iloc[0]["Cardiomegaly"] == 0.0


def test_anchor_without_cue_is_not_mentioned(lab: Labeler) -> None:
    assert math.isnan(lab.label(["Heart size is stable."]).iloc[0]["Cardiomegaly"])
    (record,) = [
        m for m in lab.mentions("Heart size is stable.") if m["observation"] == "Cardiomegaly"
    ]
    assert record["excluded"] and record["reason"] == "anchor without cue"


def test_gapped_mention_with_negation_in_the_gap(lab: Labeler) -> None:
    (record,) = [
        m for m in lab.mentions("The heart is not enlarged.") if m["observation"] == "Cardiomegaly"
    ]
    assert (record["text"], record["assertion"], record["rule_id"]) == (
        "heart is not enlarged",
        NEGATIVE,
        "neg.pre.no",
    )
    assert lab.label(["The heart is mildly enlarged."]).iloc[0]["Cardiomegaly"] == 1.0


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("Bilateral pleural effusions.", "Pleural Effusion"),
        ("Small bilateral pneumothoraces.", "Pneumothorax"),
        ("Patchy air-space disease at the right base.", "Lung Opacity"),
        ("Patchy air space disease at the right base.", "Lung Opacity"),
        ("Plate like atelectasis at the left base.", "Atelectasis"),
    ],
    ids=["plural", "plural-is-es", "hyphen", "space", "joined-to-space"],
)
def test_plural_and_hyphen_variants(lab: Labeler, text: str, column: str) -> None:
    assert lab.label([text]).iloc[0][column] == 1.0


def test_finding_only_in_indication_is_not_labelled(lab: Labeler) -> None:
    text = "INDICATION: Fever, rule out pneumonia.\nFINDINGS: The lungs are clear."
    assert math.isnan(lab.label([text]).iloc[0]["Pneumonia"])
    (record,) = [m for m in lab.mentions(text) if m["observation"] == "Pneumonia"]
    assert record["excluded"] and record["reason"] == "section:indication"


def test_granuloma_is_not_a_nodule(lab14: Labeler) -> None:
    row = lab14.label(
        ["Calcified granuloma in the right upper lobe. Small left lung nodule."]
    ).iloc[0]
    assert row["Nodule"] == 1.0
    assert math.isnan(
        lab14.label(["Calcified granuloma in the right upper lobe."]).iloc[0]["Nodule"]
    )


# --------------------------------------------------------------------------- units


def _cue(rule: str, category: str, direction: str = "forward", window: int | None = None) -> Cue:
    return Cue(rule, category, direction, ("x",), window)


def test_active_cues_longest_wins_and_pseudo_wins_ties() -> None:
    cues = [_cue("neg.a", "negation"), _cue("neg.b", "negation"), _cue("pseudo.c", "pseudo")]
    # neg.a (0-1) inside neg.b (0-2): the longer one stays
    assert [
        c.cue.rule_id for c in active_cues([Match("cue", 0, 0, 1), Match("cue", 1, 0, 2)], cues)
    ] == ["neg.b"]
    # equal-length neg.b and pseudo.c overlap: the pseudo-trigger wins the tie
    kept = active_cues([Match("cue", 1, 0, 2), Match("cue", 2, 1, 3)], cues)
    assert [c.cue.rule_id for c in kept] == ["pseudo.c"]


def test_window_limits_the_scope() -> None:
    cue = ActiveCue(_cue("neg.w", "negation", "backward", window=2), 0, 5, 6)
    assert assert_span(3, 4, [cue])[0] == NEGATIVE  # 1 token away
    assert assert_span(0, 1, [cue])[0] == POSITIVE  # 4 tokens away


def test_literal_target_owns_its_cue_words() -> None:
    no = ActiveCue(_cue("neg.pre.no", "negation"), 0, 3, 4)
    # tokens 0..6 = "mucosa is moist [no] erythema or exudates": a gap cue decides a mention
    assert assert_span(0, 7, [no])[0] == NEGATIVE
    # but a free-text target containing the cue is affirmed as a whole
    assert assert_span(0, 7, [no], literal=True) == (POSITIVE, None)


# --------------------------------------------------------------------------- assertion API


@pytest.mark.parametrize(
    ("sentence", "target", "found"),
    [
        ("NO PLEURAL EFFUSION.", "pleural effusion", "PLEURAL EFFUSION"),
        ("No pleural   effusion.", "pleural  effusion", "pleural   effusion"),
        ("No pleural effusions.", "pleural effusion", "pleural effusions"),
        ("No pleural effusion.", "pleural effusions", "pleural effusion"),
        ("No left-sided effusion.", "left sided effusion", "left-sided effusion"),
        ("No effusion, left or right.", "effusion left or right", "effusion, left or right"),
        ("EFFUSION: none seen on the left; small effusion on the right.", "effusion", "effusion"),
        ("Lungs: clear.", "lungs: clear. no effusion", "Lungs: clear."),
    ],
    ids=["case", "spaces", "plural", "singular", "hyphen", "punctuation", "heading", "edge"],
)
def test_locate_finds_the_target(lab: Labeler, sentence: str, target: str, found: str) -> None:
    from cxrlabel.labeler import _locate

    doc = lab.nlp.make_doc(sentence)
    start, end = _locate(lab.nlp, doc, target)
    assert doc[start:end].text == found


def test_locate_names_the_sentence_when_the_target_is_absent(lab: Labeler) -> None:
    from cxrlabel.errors import InputError

    with pytest.raises(InputError, match="'pneumothorax' not found in the sentence 'No effusion.'"):
        lab.assertion("No effusion.", "pneumothorax")


# --------------------------------------------------------------------------- temporality


CONTEXT_CUES = [
    # (id, report, observation, label value (nan = not a finding), rule id, category)
    (
        "history of",
        "Patient with a history of right lower lobe pneumonia.",
        "Pneumonia",
        math.nan,
        "hist.pre.history_of",
        "historical",
    ),
    (
        "treated for",
        "Treated for pneumonia last spring.",
        "Pneumonia",
        math.nan,
        "hist.pre.previous_episode",
        "historical",
    ),
    (
        "years ago",
        "Right pneumothorax several years ago.",
        "Pneumothorax",
        math.nan,
        "hist.post.in_the_past",
        "historical",
    ),
    (
        "on the prior CT",
        "A small nodule was seen on the prior CT.",
        "Lung Lesion",
        math.nan,
        "hist.post.other_study",
        "historical",
    ),
    (
        "evaluate for",
        "Recommend CT to evaluate for a pulmonary nodule.",
        "Lung Lesion",
        math.nan,
        "hyp.pre.evaluate_for",
        "hypothetical",
    ),
    (
        "follow-up to exclude",
        "Follow-up radiograph to exclude pneumonia.",
        "Pneumonia",
        math.nan,
        "hyp.pre.to_exclude",
        "hypothetical",
    ),
    (
        "if clinically indicated",
        "If clinically indicated, CT could exclude a small nodule.",
        "Lung Lesion",
        math.nan,
        "hyp.pre.if",
        "hypothetical",
    ),
    (
        "if there is concern for",
        "If there is concern for a rib fracture, dedicated rib views are suggested.",
        "Fracture",
        math.nan,
        "hyp.pre.if",
        "hypothetical",
    ),
    (
        "previously seen ... no longer visible",
        "The previously seen left lower lobe nodule is no longer visible.",
        "Lung Lesion",
        0.0,
        "neg.post.has_resolved",
        "negation",
    ),
    (
        "prior ... now resolved",
        "The prior right pneumothorax is now resolved.",
        "Pneumothorax",
        0.0,
        "neg.post.has_resolved",
        "negation",
    ),
    (
        "no history of (negation wins)",
        "No history of pneumothorax.",
        "Pneumothorax",
        0.0,
        "neg.pre.denies",
        "negation",
    ),
    (
        "seen on the prior CT, again seen (current)",
        "The small nodule seen on the prior CT is again seen.",
        "Lung Lesion",
        1.0,
        "pseudo.stable",
        "pseudo",
    ),
]


@pytest.mark.parametrize(
    ("text", "observation", "value", "rule", "category"),
    [c[1:] for c in CONTEXT_CUES],
    ids=[c[0] for c in CONTEXT_CUES],
)
def test_context_cue_decides_label_rule_and_category(
    lab: Labeler, text, observation, value, rule, category
) -> None:
    got = lab.label([text]).iloc[0][observation]
    assert (math.isnan(value) and math.isnan(got)) or got == value
    (record,) = [m for m in lab.mentions(text) if m["observation"] == observation]
    assert (record["rule_id"], record["category"]) == (rule, category)
    assert record["rule_source"].startswith("cues/") and ".yaml:" in record["rule_source"]
    if category in ("historical", "hypothetical"):  # kept as evidence, not counted
        assert record["excluded"] and record["reason"] == category
    else:
        assert not record["excluded"]


def test_hypothetical_mention_is_uncertain_for_the_assertion_api(lab: Labeler) -> None:
    sentence = "Second view to evaluate for a pulmonary nodule."
    assert lab.explain_assertion(sentence, "nodule") == (UNCERTAIN, "hyp.pre.evaluate_for")
    # a plain hedge names the rule before a hypothetical one (the follow-up is the hedge)
    assert lab.explain_assertion("Follow-up radiograph to exclude pneumonia.", "pneumonia") == (
        UNCERTAIN,
        "unc.pre.follow_up",
    )


def test_historical_mention_is_affirmed_for_the_assertion_api(lab: Labeler) -> None:
    # ConText: temporality is its own dimension; NegEx would call it affirmed
    assert lab.assertion("History of pneumonia.", "pneumonia") == POSITIVE


def test_post_hedge_possible(lab: Labeler) -> None:
    sentence = "A small left pleural effusion is suspected."
    assert lab.explain_assertion(sentence, "effusion") == (UNCERTAIN, "unc.post.possible")


# --------------------------------------------------------------------------- graded hedges


GRADED = [
    # (id, report, observation, option, rule id)
    (
        "borderline (before)",
        "Borderline cardiomegaly.",
        "Cardiomegaly",
        "borderline",
        "unc.pre.borderline",
    ),
    (
        "borderline anchor",
        "Borderline heart size.",
        "Cardiomegaly",
        "borderline",
        "unc.pre.borderline",
    ),
    (
        "borderline (after)",
        "The heart is borderline in size.",
        "Cardiomegaly",
        "borderline",
        "unc.post.borderline",
    ),
    (
        "probable",
        "Probable right lower lobe pneumonia.",
        "Pneumonia",
        "probable",
        "unc.pre.probable",
    ),
    (
        "likely (before)",
        "Likely atelectasis at the left base.",
        "Atelectasis",
        "probable",
        "unc.pre.likely",
    ),
    (
        "likely (after)",
        "Left basilar atelectasis is likely.",
        "Atelectasis",
        "probable",
        "unc.post.likely",
    ),
    (
        "versus",
        "Right basilar atelectasis versus consolidation.",
        "Consolidation",
        "versus",
        "unc.versus",
    ),
]


@pytest.mark.parametrize(
    ("text", "observation", "option", "rule"), [g[1:] for g in GRADED], ids=[g[0] for g in GRADED]
)
def test_graded_hedge_is_uncertain_unless_the_option_says_positive(
    lab: Labeler, text, observation, option, rule
) -> None:
    positive = Labeler("chexpert", **{option: "positive"})
    for labeler, value, status in ((lab, -1.0, UNCERTAIN), (positive, 1.0, POSITIVE)):
        assert labeler.label([text]).iloc[0][observation] == value
        (record,) = [m for m in labeler.mentions(text) if m["observation"] == observation]
        assert (record["assertion"], record["rule_id"], record["excluded"]) == (status, rule, False)
    others = {"probable", "borderline", "versus"} - {option}
    assert (
        Labeler("chexpert", **dict.fromkeys(others, "positive")).label([text]).iloc[0][observation]
        == -1.0
    )  # each option moves its own hedges only


def test_plain_hedge_keeps_a_graded_one_uncertain() -> None:
    lab = Labeler("chexpert", versus="positive", probable="positive")
    text = "Possible atelectasis versus scarring at the right base."
    assert lab.explain_assertion(text, "atelectasis") == (UNCERTAIN, "unc.pre.possible")
    assert lab.label([text]).iloc[0]["Atelectasis"] == -1.0


def test_graded_hedge_option_is_checked() -> None:
    from cxrlabel.errors import InputError

    with pytest.raises(
        InputError, match="borderline must be one of uncertain, positive; got 'yes'"
    ):
        Labeler(borderline="yes")
    assert Labeler(probable="Positive").probable == "positive"  # case-insensitive, as every option


def test_every_temporal_and_graded_cue_has_a_test() -> None:
    from cxrlabel.lexicon import load_cues

    tested = {c[4] for c in CONTEXT_CUES} | {g[4] for g in GRADED} | {"unc.post.possible"}
    new = {
        c.rule_id
        for c in load_cues()
        if c.category in ("historical", "hypothetical", "probable", "borderline", "versus")
    }
    assert new and new <= tested, sorted(new - tested)
