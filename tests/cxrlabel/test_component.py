"""The ``cxr_labeler`` spaCy component: labels, mention spans with assertion attributes
(negspacy's ``._.negex`` included), evidence, any string, serialisation."""

from __future__ import annotations

import math
import pickle
import warnings

import pytest
import spacy
from spacy.tokens import Doc, DocBin

import cxrlabel.component  # noqa: F401  (registers the factory and the extensions)
from cxrlabel import Labeler
from cxrlabel.component import SPANS_KEY
from cxrlabel.errors import ReplacedCharactersWarning

from .engine_reference import load_reference


@pytest.fixture(scope="module")
def nlp() -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("cxr_labeler")
    return nlp


def test_mentions_are_spans_with_status_rule_and_negex(nlp) -> None:
    doc = nlp(
        "INDICATION: Evaluate for pneumonia.\nFINDINGS: No pneumothorax. Possible small effusion."
    )
    spans = doc.spans[SPANS_KEY]
    got = [
        (
            s.text,
            s.label_,
            s._.cxr_observation,
            s._.cxr_status,
            s._.cxr_rule,
            s._.cxr_excluded,
            s._.negex,
        )
        for s in spans
    ]
    assert got == [
        (
            "pneumonia",
            "Pneumonia",
            "Pneumonia",
            "uncertain",
            "hyp.pre.evaluate_for",
            "section:indication",
            False,
        ),
        ("pneumothorax", "Pneumothorax", "Pneumothorax", "negative", "neg.pre.no", None, True),
        (
            "effusion",
            "Pleural Effusion",
            "Pleural Effusion",
            "uncertain",
            "unc.pre.possible",
            None,
            False,
        ),
    ]
    assert doc._.cxr_labels == {"Pneumothorax": 0.0, "Pleural Effusion": -1.0}


def test_component_equals_labeler_on_the_reference_corpus(nlp) -> None:
    lab = Labeler()
    texts = load_reference()["texts"]
    frame = lab.label(texts)
    for text, row, doc in zip(texts, frame.to_dict("records"), nlp.pipe(texts), strict=True):
        labels = {k: v for k, v in row.items() if not math.isnan(v)}
        assert doc._.cxr_labels == labels, text[:80]
        assert doc._.cxr_mentions == lab.mentions(text), text[:80]
        spans = doc.spans[SPANS_KEY]
        assert [(s.start_char, s.end_char, s._.cxr_status) for s in spans] == [
            (r["start"], r["end"], r["assertion"]) for r in doc._.cxr_mentions
        ]


def test_blank_text_has_no_labels_and_no_spans(nlp) -> None:
    for text in ("", "   \n"):
        doc = nlp(text)
        assert (
            doc._.cxr_labels == {} and doc._.cxr_mentions == [] and len(doc.spans[SPANS_KEY]) == 0
        )


def test_nlp_takes_any_string(nlp) -> None:
    with pytest.warns(ReplacedCharactersWarning, match="2 character"):
        doc = nlp("No pneumothorax \ud800. Small effusion \udfff.")
    assert doc._.cxr_labels == {"Pneumothorax": 0.0, "Pleural Effusion": 1.0}
    assert doc.text == "No pneumothorax \ufffd. Small effusion \ufffd."
    long_run = nlp("Small effusion. " + "§" * 20_000)  # linear-time tokenisation of the run
    assert long_run._.cxr_labels["Pleural Effusion"] == 1.0


def test_docs_and_pipeline_serialise(nlp) -> None:
    doc = nlp("No pneumothorax. Mild edema.")
    docs = list(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))
    again = docs[0]
    assert [(s.text, s._.cxr_status, s._.negex) for s in again.spans[SPANS_KEY]] == [
        ("pneumothorax", "negative", True),
        ("edema", "positive", False),
    ]
    tokenizer = pickle.loads(pickle.dumps(nlp.tokenizer))
    assert [t.text for t in tokenizer("No effusion.")] == ["No", "effusion", "."]
    fresh = spacy.blank("en").from_bytes(
        nlp.to_bytes(exclude=["cxr_labeler"]), exclude=["cxr_labeler"]
    )
    assert isinstance(fresh("x"), Doc)


def test_negex_is_shared_with_negspacy(nlp) -> None:
    import negspacy.negation  # noqa: F401  (registers negex and its own Span._.negex)
    from negspacy.termsets import termset

    both = spacy.blank("en")
    both.add_pipe("sentencizer")
    ruler = both.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "FINDING", "pattern": "effusion"}])
    both.add_pipe("negex", config={"neg_termset": termset("en_clinical").get_patterns()})
    both.add_pipe("cxr_labeler")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = both("No effusion.")
    assert [e._.negex for e in doc.ents] == [True]
    assert [s._.negex for s in doc.spans[SPANS_KEY]] == [True]


def _span_values(doc: Doc) -> list[tuple]:
    return [
        (s.text, s._.cxr_observation, s._.cxr_status, s._.cxr_rule, s._.cxr_excluded, s._.negex)
        for s in doc.spans[SPANS_KEY]
    ]


def test_evidence_is_made_on_first_access_and_then_serialised(nlp) -> None:
    import gc

    import cxrlabel.component as component

    text = "INDICATION: pneumonia. FINDINGS: No pneumothorax. Mild edema."
    doc = nlp(text)
    assert doc in component._PENDING  # not made yet
    records = doc._.cxr_mentions
    assert records == Labeler().mentions(text) and doc not in component._PENDING
    again = list(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))[0]
    assert list(again._.cxr_mentions) == records  # (msgpack gives the list back as a tuple)
    doc._.cxr_mentions = []  # the setter replaces them
    assert doc._.cxr_mentions == []
    unread = nlp("No effusion.")
    assert unread in component._PENDING
    del unread
    gc.collect()
    assert len(component._PENDING) == 0  # a pending Doc is not kept alive


def test_relabelling_a_doc_rewrites_every_span_value(nlp) -> None:
    doc = nlp.make_doc("No pleural effusion.")
    nlp.get_pipe("cxr_labeler")(doc)
    assert [(v[2], v[5]) for v in _span_values(doc)] == [("negative", True)]
    # labelled again (e.g. by a second pipeline): a value left from before must not
    # survive where the new one is the default, which the first labelling does not write
    span = doc.spans[SPANS_KEY][0]
    doc.user_data["._.", "cxr_excluded", span.start_char, span.end_char] = "stale"
    nlp.get_pipe("cxr_labeler")(doc)
    assert [(v[2], v[4], v[5]) for v in _span_values(doc)] == [("negative", None, True)]


def test_re_registered_extensions_are_honoured(nlp) -> None:
    from spacy.tokens import Span

    labels: list[dict] = []
    Doc.set_extension(
        "cxr_labels", setter=lambda doc, v: labels.append(v), getter=lambda d: 0, force=True
    )
    try:
        nlp("Mild cardiomegaly.")
    finally:
        Doc.set_extension("cxr_labels", default=None, force=True)
    assert labels == [{"Cardiomegaly": 1.0}]
    seen: list[str] = []
    original = Span.get_extension("cxr_status")
    Span.set_extension(
        "cxr_status", setter=lambda span, v: seen.append(v), getter=lambda s: 0, force=True
    )
    try:
        nlp("Mild cardiomegaly. No pneumothorax.")
    finally:
        Span.set_extension("cxr_status", default=original[0], force=True)
    assert seen == ["positive", "negative"]
    doc = nlp("Mild cardiomegaly. No pneumothorax.")
    assert [v[1:3] for v in _span_values(doc)] == [
        ("Cardiomegaly", "positive"),
        ("Pneumothorax", "negative"),
    ]
