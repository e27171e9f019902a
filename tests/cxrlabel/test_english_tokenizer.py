"""The labeller's own English tokenizer (:func:`cxrlabel.text.english_tokenizer`, built without
a ``Language``) gives the tokens, lexical attributes and labels of ``spacy.blank("en")``."""

from __future__ import annotations

import pytest
import spacy

from cxrlabel.labeler import Labeler
from cxrlabel.text import english_tokenizer

SENTENCES = [
    "No pneumothorax.",
    "Mild cardiomegaly, e.g. as seen on the prior study (see Dr. Smith's note).",
    "A 3.5 cm nodule in the RUL; a 4mm nodule at the left base.",
    "Degenerative change at L5-S1 and T11-T12, C5/C6 fusion.",
    "Comparison: 01/02/2023, 3/4/21 and 2023-01-02 at 10:30 a.m.",
    "See https://www.example.org/cxr?id=12&view=PA or www.radiology.com/foo.",
    "Contact radiology@example.com re: the NG-tube (tip at T10).",
    "Heart size is upper-normal; well-defined opacity, ill-defined margins.",
    "ET tube 5.0 cm above the carina... stable.",
    "Lungs: clear.  No effusion!  Pneumonia?  Can't exclude; don't see it.",
    "Pt. is s/p CABG w/ sternotomy wires; approx. 2-3 mm, i.e. tiny.",
    "Vs. prior: unchanged. Mr. Jones, St. Mary's, Inc., etc.",
    '"Quoted" findings [bracketed] {braced} <angled> -- dashes - and — em dash.',
    "Values 1,000 and 1.000 and -3 and +4 and 50% and 3x and 10^3 and ±2.",
    "NO ACUTE CARDIOPULMONARY PROCESS. IMPRESSION:\n\n1. Stable.\n2. Clear.",
    "Tabs\tand\nnewlines\r\n and   spaces.",
    "Émphysème, naïve café, Ångström, 10 µm, 5 °C.",
    "Cannot exclude pneumonia vs. atelectasis; cannot rule out effusion.",
    "It's the pt's 2nd CXR; it'll be fine, they'd've said :) ;-)",
    "xxxx xxxx. XXXX-XXXX. 1. 2) a) (b) #3 @4 $5 &6 *7",
]


def _tokens(doc):
    return [
        (
            t.text,
            t.whitespace_,
            t.idx,
            t.orth,
            t.lower_,
            t.norm_,
            t.shape_,
            t.prefix_,
            t.suffix_,
            t.is_alpha,
            t.is_digit,
            t.is_punct,
            t.is_space,
            t.is_stop,
            t.like_num,
            t.like_url,
            t.like_email,
            t.lang_,
        )
        for t in doc
    ]


@pytest.fixture(scope="module")
def blank():
    return spacy.blank("en")


def test_same_tokens_and_lexical_attributes_as_spacy_blank(blank):
    tokenizer = english_tokenizer()
    for text in SENTENCES:
        assert _tokens(tokenizer(text)) == _tokens(blank.tokenizer(text)), text
    # the explanation (which rule made each token) too
    for text in SENTENCES:
        assert tokenizer.explain(text) == blank.tokenizer.explain(text), text
    assert tokenizer.rules == blank.tokenizer.rules


def test_labeller_default_tokenizer_gives_the_labels_of_spacy_blank(blank):
    own, theirs = Labeler(), Labeler(nlp=blank)
    texts = [*SENTENCES, " ".join(SENTENCES), "FINDINGS: " + " ".join(SENTENCES[::2])]
    assert own.label(texts).equals(theirs.label(texts))
    for text in texts:
        assert own.mentions(text) == theirs.mentions(text)
    # the Language a user may ask for is built on the labeller's tokenizer, on demand
    assert own.nlp.tokenizer is own.tokenizer and own.nlp.lang == "en"
    assert [t.text for t in own.nlp("Dr. Smith's 3.5 cm.")] == [
        "Dr.",
        "Smith",
        "'s",
        "3.5",
        "cm",
        ".",
    ]
