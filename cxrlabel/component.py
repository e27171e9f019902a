"""The ``cxr_labeler`` spaCy factory, so any spaCy pipeline can label reports.

The component analyses the Doc it is given (no second tokenisation) and sets:

* ``doc._.cxr_labels``: the report-level labels, observation → 1 / 0 / -1 (observations
  not mentioned are left out);
* ``doc.spans["cxr_mentions"]``: one span per mention, labelled with its observation, with
  ``span._.cxr_observation``, ``span._.cxr_status`` (``positive``, ``negative`` or
  ``uncertain``), ``span._.cxr_rule`` (the deciding cue's rule id, or None),
  ``span._.cxr_excluded`` (why the mention sets no label, e.g. ``section:indication``,
  or None) and negspacy's ``span._.negex`` (True when negated);
* ``doc._.cxr_mentions``: the evidence records of :meth:`~cxrlabel.labeler.Labeler.mentions`,
  made on first access (most pipelines never read them, and they cost as much as the spans);
  a Doc serialised with its user data after that access keeps them.

Its config takes the :class:`~cxrlabel.labeler.Labeler` options (``schema``,
``lexicon_dir``, ``sections``, and ``borderline`` / ``probable`` / ``versus``: ``uncertain``
or ``positive``). Adding it also puts :func:`cxrlabel.text.tokenize` behind the pipeline's
tokenizer, so that ``nlp(text)`` accepts any string (UTF-16 surrogates become U+FFFD, one
for one) and tokenises very long symbol runs in linear time; the tokens are otherwise the
tokenizer's own.

Examples
--------
>>> import spacy, cxrlabel.component
>>> nlp = spacy.blank("en")
>>> _ = nlp.add_pipe("cxr_labeler", config={"schema": "chexpert"})
>>> doc = nlp("Mild cardiomegaly. No pneumothorax.")
>>> doc._.cxr_labels
{'Cardiomegaly': 1.0, 'Pneumothorax': 0.0}
>>> [(s.text, s._.cxr_status, s._.negex) for s in doc.spans["cxr_mentions"]]
[('cardiomegaly', 'positive', False), ('pneumothorax', 'negative', True)]
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.tokens.underscore import Underscore

from cxrlabel.aggregate import NEGATIVE
from cxrlabel.errors import ReplacedCharactersWarning
from cxrlabel.labeler import Labeler, _Analysis
from cxrlabel.text import has_surrogates, repair_surrogates, tokenize

__all__ = ["CxrLabelerComponent", "SPANS_KEY"]

#: The ``doc.spans`` key of the mentions.
SPANS_KEY = "cxr_mentions"

#: What a Doc's evidence records are made from on first access (held weakly: gone with the
#: Doc; the values hold no reference to the Doc, so they do not keep it alive).
_PENDING: weakref.WeakKeyDictionary[Doc, tuple[Labeler, _Analysis]] = weakref.WeakKeyDictionary()
#: Where spaCy keeps a Doc extension's value (``doc.user_data``): serialised with the Doc.
_MENTIONS_KEY = ("._.", "cxr_mentions", None, None)


def _get_mentions(doc: Doc) -> list[dict[str, Any]] | None:
    found = doc.user_data.get(_MENTIONS_KEY)
    if found is None and doc in _PENDING:
        labeler, analysis = _PENDING.pop(doc)
        analysis.doc = doc
        found = labeler._records(analysis, None)
        doc.user_data[_MENTIONS_KEY] = found
    return found


def _set_mentions(doc: Doc, value: list[dict[str, Any]] | None) -> None:
    _PENDING.pop(doc, None)
    doc.user_data[_MENTIONS_KEY] = value


if not Doc.has_extension("cxr_labels"):
    Doc.set_extension("cxr_labels", default=None)
_LABELS_KEY = ("._.", "cxr_labels", None, None)


def _stored_plainly(extensions: dict[str, Any], name: str, default: Any) -> bool:
    """Whether an extension is still a plain stored value with this default (someone may
    re-register it with a getter, setter or other default): then it can be written to
    ``doc.user_data`` under spaCy's own key, without an ``._`` object per write, and a
    value equal to the default needs no write at all."""
    return extensions.get(name) == (default, None, None, None)


Doc.set_extension("cxr_mentions", getter=_get_mentions, setter=_set_mentions, force=True)
#: The span extensions the component writes and their defaults (negspacy registers ``negex``
#: too: same meaning, same default).
_SPAN_DEFAULTS = {
    "cxr_status": None,
    "cxr_rule": None,
    "cxr_excluded": None,
    "negex": False,
}
_SPAN_ATTRS = tuple(_SPAN_DEFAULTS)
for _attr, _default in _SPAN_DEFAULTS.items():
    if not Span.has_extension(_attr):
        Span.set_extension(_attr, default=_default)


def _observation(span: Span) -> str:
    """A mention's observation: its span label (stored once, serialised with the span)."""
    return span.label_


Span.set_extension("cxr_observation", getter=_observation, force=True)


def _plain_span_extensions() -> bool:
    """Whether every span extension the component writes is stored plainly."""
    return all(
        _stored_plainly(Underscore.span_extensions, name, default)
        for name, default in _SPAN_DEFAULTS.items()
    )


class CxrLabelerComponent:
    """spaCy component around :class:`~cxrlabel.labeler.Labeler`."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        schema: str,
        lexicon_dir: str | None,
        sections: list[str] | None,
        borderline: str = "uncertain",
        probable: str = "uncertain",
        versus: str = "uncertain",
    ) -> None:
        self.name = name
        self.labeler = Labeler(
            schema,
            lexicon_dir,
            sections=sections,
            borderline=borderline,
            probable=probable,
            versus=versus,
            nlp=nlp,
        )
        self._row = np.empty((1, len(self.labeler.names)), dtype=np.float32)
        # span labels as StringStore ids: a str label costs a store lookup per Span (9 us)
        self._label_ids = [nlp.vocab.strings.add(o) for o in self.labeler.observations]
        if not isinstance(nlp.tokenizer, AnyTextTokenizer):
            nlp.tokenizer = AnyTextTokenizer(nlp.tokenizer)
        self._nlp = nlp

    def _text(self, doc: Doc) -> str:
        """The Doc's text: the string the pipeline's tokenizer was given, when it was ours
        (``doc.text`` joins a Token object per word, a third of the component's time)."""
        tokenizer = self._nlp.tokenizer
        text = tokenizer.texts.get(doc) if isinstance(tokenizer, AnyTextTokenizer) else None
        return doc.text if text is None else text

    def __call__(self, doc: Doc) -> Doc:
        lab = self.labeler
        text = self._text(doc)
        if not text or text.isspace():  # no report: nothing labelled (Labeler.label: NaN)
            doc._.cxr_labels, doc._.cxr_mentions = {}, []
            doc.spans[SPANS_KEY] = []
            return doc
        analysis = lab._analyze(doc, text)
        row = self._row
        row.fill(np.nan)
        lab._fill_row(row, 0, analysis.best)
        labels = {
            name: v for name, v in zip(lab.names, row[0].tolist(), strict=True) if v == v
        }  # (v == v: not NaN)
        if _stored_plainly(Underscore.doc_extensions, "cxr_labels", None):
            doc.user_data[_LABELS_KEY] = labels
        else:
            doc._.cxr_labels = labels
        doc.spans[SPANS_KEY] = self._spans(doc, lab._mentions(analysis, sections_wanted=False))
        doc.user_data.pop(_MENTIONS_KEY, None)
        _PENDING[doc] = (lab, analysis)
        analysis.doc = None  # the pending analysis must not keep the Doc alive
        return doc

    def _spans(self, doc: Doc, mentions: Iterable[tuple[Any, ...]]) -> list[Span]:
        """One span per mention, its extensions written where ``span._`` would write them.

        On a Doc this component has not labelled before, with spaCy's plain extensions, the
        values are written to ``doc.user_data`` directly and a default value (None, False)
        is not written at all (unwritten reads as the default): a third of the component's
        time otherwise. Two mentions over the same characters share spaCy's keys, so the
        second writes every value, as ``span._`` would.
        """
        label_ids, data = self._label_ids, doc.user_data
        direct = SPANS_KEY not in doc.spans and _plain_span_extensions()
        seen: set[tuple[int, int]] = set()
        spans = []
        for _s, start, end, m_index, status, cue, _base, _section, excluded in mentions:
            span = Span(doc, start, end, label=label_ids[m_index])
            first, last = chars = span.start_char, span.end_char
            if direct and chars not in seen:
                seen.add(chars)
                data["._.", "cxr_status", first, last] = status
                if cue is not None:
                    data["._.", "cxr_rule", first, last] = cue.cue.rule_id
                if excluded is not None:
                    data["._.", "cxr_excluded", first, last] = excluded
                if status == NEGATIVE:
                    data["._.", "negex", first, last] = True
            else:
                values = (
                    status,
                    cue.cue.rule_id if cue else None,
                    excluded,
                    status == NEGATIVE,
                )
                for name, value in zip(_SPAN_ATTRS, values, strict=True):
                    span._.set(name, value)
            spans.append(span)
        return spans

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        for doc in stream:
            yield self(doc)


class AnyTextTokenizer:
    """A pipeline's tokenizer that accepts any ``str`` and splits long runs in linear time.

    Surrogates are replaced by U+FFFD one for one (counted in a
    :class:`~cxrlabel.errors.ReplacedCharactersWarning`), then
    :func:`cxrlabel.text.tokenize` runs the wrapped tokenizer. Everything else (its
    settings, serialisation) is the wrapped tokenizer's.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        #: Doc -> the text it was made from (held weakly: gone with the Doc)
        self.texts: weakref.WeakKeyDictionary[Doc, str] = weakref.WeakKeyDictionary()

    def __call__(self, text: str) -> Doc:
        if has_surrogates(text):
            text, replaced = repair_surrogates(text)
            warnings.warn(
                f"{replaced} character(s) that UTF-8 cannot encode (unpaired UTF-16 "
                "surrogates) were replaced by U+FFFD",
                ReplacedCharactersWarning,
                stacklevel=3,
            )
        doc = tokenize(self.tokenizer, text)
        self.texts[doc] = text
        return doc

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        for text in texts:
            yield self(text)

    def __getattr__(self, name: str) -> Any:
        if name in ("tokenizer", "texts"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.tokenizer, name)

    def __reduce__(self) -> tuple[type, tuple[Any]]:
        return (AnyTextTokenizer, (self.tokenizer,))


@Language.factory(
    "cxr_labeler",
    default_config={
        "schema": "chexpert",
        "lexicon_dir": None,
        "sections": None,
        "borderline": "uncertain",
        "probable": "uncertain",
        "versus": "uncertain",
    },
    assigns=["doc._.cxr_labels", "doc._.cxr_mentions", "doc.spans"],
)
def make_cxr_labeler(
    nlp: Language,
    name: str,
    schema: str,
    lexicon_dir: str | None,
    sections: list[str] | None,
    borderline: str,
    probable: str,
    versus: str,
) -> CxrLabelerComponent:
    return CxrLabelerComponent(
        nlp,
        name,
        schema=schema,
        lexicon_dir=lexicon_dir,
        sections=sections,
        borderline=borderline,
        probable=probable,
        versus=versus,
    )
