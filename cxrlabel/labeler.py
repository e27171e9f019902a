"""The report labeller: text in, one 1 / 0 / -1 / blank value per observation out.

Pipeline per report: tokenise with ``spacy.blank("en")`` → find section titles and sentence
ends (character offsets) → one phrase-matching pass for mentions and cues → assertion status
of each mention from its sentence's cues → report-level aggregation. Every label is traceable
to the phrase that matched and the rule id of the cue that decided it (:meth:`Labeler.mentions`).
"""

from __future__ import annotations

import bisect
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import spacy
from spacy.attrs import IDX
from spacy.language import Language
from spacy.tokens import Doc

from cxrlabel.aggregate import NEGATIVE, POSITIVE, PRECEDENCE, UNCERTAIN, Precedence
from cxrlabel.assertion import HEDGES, ActiveCue, SentenceCues, active_cues
from cxrlabel.errors import InputError, ReplacedCharactersWarning
from cxrlabel.lexicon import Lexicon, load_lexicon
from cxrlabel.mentions import Match, PhraseIndex, phrase_variants
from cxrlabel.sections import SectionFinder
from cxrlabel.text import clean_text, tokenize
from cxrlabel.vocab import HEDGE

__all__ = ["Labeler", "MentionResult"]


_MEMO_SIZE = 20_000  # sentence structures remembered per Labeler (bounded memory)
_MEMO_MATCHES = 64  # sentences with more matches than this are long, rare and not memoised
_SENTENCE_END = re.compile(r"[.!?](?=[\s\"')\]]|$)|\n[ \t\r]*\n")
#: Evidence ``sentence`` field: a sentence longer than this many characters is shown as the
#: ``_SENTENCE_CONTEXT`` characters either side of the mention, so that evidence stays
#: linear in the report's length however long a sentence runs.
_SENTENCE_CHARS = 1000
_SENTENCE_CONTEXT = 500
_SPACES = " \n\t"


class MentionResult(NamedTuple):
    """One mention with its decision (token offsets into the analysed doc)."""

    observation: int
    start: int
    end: int
    status: str
    cue: ActiveCue | None
    section: str | None
    sentence: int
    excluded: str | None  # None, or why the mention does not set a label


class _Analysis:
    """One report's mention decisions, with what its evidence needs computed once: the
    sentence ends (character offsets) and each sentence's text, made on first use."""

    __slots__ = ("results", "text", "breaks", "_sentences")

    def __init__(self, results: list[MentionResult], text: str, breaks: list[int]) -> None:
        self.results = results
        self.text = text
        self.breaks = breaks
        self._sentences: dict[int, str] = {}

    def sentence(self, start: int, end: int) -> str:
        """The whitespace-normalised sentence around characters [start, end)."""
        text, breaks = self.text, self.breaks
        i = bisect.bisect_left(breaks, start)
        lo = breaks[i - 1] + 1 if i > 0 else 0
        hi = breaks[i] + 1 if i < len(breaks) else len(text)
        if hi - lo > _SENTENCE_CHARS:
            return _window(text, lo, hi, start, end)
        found = self._sentences.get(i)
        if found is None:
            found = self._sentences[i] = " ".join(text[lo:hi].split())
        return found


class Labeler:
    """Label chest X-ray reports with a schema's observations.

    Parameters
    ----------
    schema : str or path
        ``"chexpert"`` (default), ``"chestxray14"`` or a schema YAML path.
    lexicon_dir : path, optional
        A folder with the layout of ``lexicons/`` whose files replace the packaged ones.
    sections : sequence of str, optional
        Sections whose mentions count (e.g. ``["findings", "impression"]``). Text before any
        section title always counts. Default: every section except those the lexicon skips
        (indication, history, comparison, technique).
    precedence : sequence of str
        Order in which mention statuses win at report level; CheXpert's is
        ``("positive", "uncertain", "negative")``.
    borderline : {"uncertain", "positive"}
        How a finding qualified by a ``borderline`` cue counts ("borderline cardiomegaly").
        ``"uncertain"`` (default) is CheXpert's convention; ``"positive"`` matches a gold that
        codes borderline findings as present, as the Open-i MeSH coders do
        ("Cardiomegaly/borderline").
    probable : {"uncertain", "positive"}
        How a finding qualified by a ``probable`` cue counts ("probable pneumonia",
        "atelectasis is likely"): uncertain (default, CheXpert) or present, for a gold whose
        coders code probable findings. Low-likelihood hedges ("possible", "may represent")
        stay uncertain either way.
    versus : {"uncertain", "positive"}
        How the alternatives of "X versus Y" count: uncertain (default, CheXpert) or both
        present, for a gold whose coders code every alternative named.

    Examples
    --------
    >>> lab = Labeler()
    >>> row = lab.label(["Cannot exclude pneumonia. No pleural effusion."]).iloc[0]
    >>> float(row["Pneumonia"]), float(row["Pleural Effusion"])
    (-1.0, 0.0)
    """

    def __init__(
        self,
        schema: str | Path = "chexpert",
        lexicon_dir: str | Path | None = None,
        *,
        sections: Sequence[str] | None = None,
        precedence: Sequence[str] = PRECEDENCE,
        borderline: str = UNCERTAIN,
        probable: str = UNCERTAIN,
        versus: str = UNCERTAIN,
        nlp: Language | None = None,
    ) -> None:
        self.hedges = {
            name: HEDGE.check(value, name)
            for name, value in (("probable", probable), ("borderline", borderline), ("versus", versus))
        }
        self.borderline, self.probable, self.versus = (
            self.hedges[n] for n in ("borderline", "probable", "versus")
        )
        # graded hedge categories whose mentions count as present (gold-convention options)
        self._positive_hedges = {c for c, v in self.hedges.items() if v == POSITIVE}
        self.schema_name = schema
        self.lexicon_dir = lexicon_dir
        self.sections = tuple(sections) if sections is not None else None
        self.precedence = tuple(precedence)
        self.lexicon: Lexicon = load_lexicon(schema, lexicon_dir)
        try:
            self._precedence = Precedence(self.precedence)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if self.sections is not None:
            known = set(self.lexicon.sections.titles.values())
            unknown = [s for s in self.sections if s not in known]
            if unknown:
                raise InputError(f"unknown section(s) {unknown}; known sections: {sorted(known)}")
        self.nlp = nlp if nlp is not None else spacy.blank("en")
        self._index = PhraseIndex(self.nlp, self.lexicon)
        self._memo: dict[tuple, list[tuple]] = {}
        self._sections = SectionFinder(self.lexicon.sections)
        schema_ = self.lexicon.schema
        self.observations = [o.name for o in schema_.observations]
        self.names = schema_.names
        self._no_finding = schema_.no_finding
        self._nf_ignore = [self.observations.index(n) for n in schema_.no_finding_ignores]

    # ------------------------------------------------------------------ analysis core

    def _section_counts(self, section: str | None) -> bool:
        if section is None:
            return True
        if self.sections is not None:
            return section in self.sections
        return not self._sections.skipped(section)

    def _analyze(self, doc: Doc, text: str) -> _Analysis:
        matches = self._index.find(doc)
        if not matches:
            return _Analysis([], text, [])
        offsets = doc.to_array(IDX).tolist()  # plain ints: numpy scalars are slow to index and compare
        sections = self._sections(text)
        breaks = [m.start() for m in _SENTENCE_END.finditer(text)]
        ends = breaks
        if len(sections.starts) > 1:  # a section title also ends a sentence
            ends = sorted(breaks + [s - 1 for s in sections.starts[1:]])
        # Group matches by sentence; only sentences holding a mention are analysed further.
        by_sentence: dict[int, list[Match]] = {}
        with_mention: set[int] = set()
        for m in matches:
            s = bisect.bisect_left(ends, offsets[m.start])
            group = by_sentence.get(s)
            if group is None:
                by_sentence[s] = [m]
            else:
                group.append(m)
            if m.kind == "mention" or m.kind == "anchor":
                with_mention.add(s)
        results: list[MentionResult] = []
        for s in sorted(with_mention):
            ms = by_sentence[s]
            base = min(m.start for m in ms)
            for m_index, _kind, start, end, status, cue, excluded in self._decide(ms, base):
                section = sections.at(offsets[start])
                if excluded != "unmention" and not self._section_counts(section):
                    excluded = f"section:{section}"  # before historical / hypothetical
                results.append(
                    MentionResult(m_index, start, end, status, cue, section, s, excluded)
                )
        return _Analysis(results, text, breaks)

    def _decide(self, ms: list[Match], base: int) -> list[tuple]:
        """Decisions for the mentions of one sentence, memoised on the sentence's structure.

        The decision depends only on which phrases and cues matched and their relative token
        positions, and radiology sentences repeat their structure constantly ("No X.", "X is
        normal."), so the result is cached by that structure (positions relative to ``base``)
        and shifted back. The cache is bounded, and holds short sentences only.
        """
        if len(ms) > _MEMO_MATCHES:
            return self._decide_uncached(sorted(ms))
        key = tuple(sorted((m.kind, m.index, m.start - base, m.end - base) for m in ms))
        decided = self._memo.get(key)
        if decided is None:
            decided = self._decide_uncached([Match(*k) for k in key])
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = decided
        if not base:
            return decided
        return [
            (
                i,
                kind,
                st + base,
                en + base,
                status,
                cue._replace(start=cue.start + base, end=cue.end + base) if cue else None,
                excluded,
            )
            for i, kind, st, en, status, cue, excluded in decided
        ]

    def _decide_uncached(self, ms: list[Match]) -> list[tuple]:
        """(observation, kind, start, end, status, deciding cue, exclusion reason) per mention.

        ``ms`` are the matches of one sentence in (kind, index, start, end) order.
        """
        cue_matches = [m for m in ms if m.kind == "cue"]
        mentions = [m for m in ms if m.kind == "mention" or m.kind == "anchor"]
        # (observation, token) of every unmention: an overlapping mention of the same
        # observation is found from its own tokens
        unmentioned = {(m.index, t) for m in ms if m.kind == "unmention" for t in range(m.start, m.end)}
        scope = SentenceCues(active_cues(cue_matches, self._index.cues) if cue_matches else [])
        out = []
        for m in _longest_per_observation(mentions) if len(mentions) > 1 else mentions:
            excluded = None
            if unmentioned and any((m.index, t) in unmentioned for t in range(m.start, m.end)):
                excluded = "unmention"
            status, cue = self._status(m.start, m.end, scope)
            if excluded is not None or status == NEGATIVE:
                pass
            elif m.kind == "anchor" and status == POSITIVE and (
                cue is None or cue.cue.category not in HEDGES
            ):
                excluded = "anchor without cue"  # "heart size": only a cue makes it a label
            elif scope.cues:
                context = scope.context(m.start, m.end)
                if context is not None:  # historical or hypothetical: not a finding now
                    excluded, cue = context.cue.category, context
            out.append((m.index, m.kind, m.start, m.end, status, cue, excluded))
        return out

    def _status(
        self, start: int, end: int, scope: SentenceCues, literal: bool = False
    ) -> tuple[str, ActiveCue | None]:
        """Assertion status of a span, with the graded-hedge options applied."""
        status, cue = scope.status(start, end, literal)
        if status == UNCERTAIN and cue.cue.category in self._positive_hedges:
            status = POSITIVE
        return status, cue

    def _row(self, results: Iterable[MentionResult]) -> np.ndarray:
        """Aggregate mention statuses by the one rule (:class:`cxrlabel.aggregate.Precedence`)."""
        offset = 1 if self._no_finding else 0
        row = np.full(len(self.names), np.nan, dtype=np.float32)
        values = self._precedence.per_key(
            (r.observation, r.status) for r in results if r.excluded is None
        )
        for obs, value in values.items():
            row[obs + offset] = value
        if self._no_finding:
            abnormal = any(row[i + 1] != 0.0 for i in values if i not in self._nf_ignore)
            row[0] = np.nan if abnormal else 1.0
        return row

    # ------------------------------------------------------------------ public API

    def label_array(
        self, texts: Iterable[Any], batch_size: int = 256
    ) -> tuple[np.ndarray, list[str]]:
        """Labels as a float32 array (n × len(names)) and a status per text (``ok``/``empty``).

        The fast path used by file labelling: no DataFrame, no evidence records.
        """
        array, status, _ = self._label_many(texts, None, batch_size)
        return array, status

    def label_evidence(
        self, texts: Sequence[Any], ids: Sequence[Any], batch_size: int = 256
    ) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        """Like :meth:`label_array`, plus the evidence records of every report (one pass)."""
        if len(ids) != len(texts):
            raise InputError(f"got {len(texts)} texts but {len(ids)} ids")
        return self._label_many(texts, ids, batch_size)

    def _label_many(
        self, texts: Iterable[Any], ids: Sequence[Any] | None, batch_size: int
    ) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        rows: list[np.ndarray] = []
        status: list[str] = []
        records: list[dict[str, Any]] = []
        empty_row = np.full(len(self.names), np.nan, dtype=np.float32)
        cleaned = self._clean_all(texts)
        tokenizer = self.nlp.tokenizer
        for i, text in enumerate(cleaned):
            if not text:
                rows.append(empty_row)
                status.append("empty")
                continue
            doc = tokenize(tokenizer, text)
            analysis = self._analyze(doc, text)
            rows.append(self._row(analysis.results))
            status.append("ok")
            if ids is not None:
                records.extend(self._evidence(doc, analysis, r, ids[i]) for r in analysis.results)
        array = np.vstack(rows) if rows else np.empty((0, len(self.names)), dtype=np.float32)
        return array, status, records

    @staticmethod
    def _clean_all(texts: Iterable[Any]) -> list[str]:
        """Texts as clean ``str`` (:func:`cxrlabel.text.clean_text`), with one warning
        that counts the characters replaced, if any."""
        cleaned, replaced, rows = [], 0, 0
        for t in texts:
            text, n = clean_text(t)
            cleaned.append(text)
            if n:
                replaced, rows = replaced + n, rows + 1
        if replaced:
            _warn_replaced(replaced, rows)
        return cleaned

    def label(self, texts: Iterable[Any]) -> pd.DataFrame:
        """Label reports: one row per text, one column per observation (1 / 0 / -1 / NaN).

        Empty or missing texts give a row of NaN.
        """
        if isinstance(texts, str):
            raise InputError("label() takes a list of report texts; wrap a single report in a list")
        array, _ = self.label_array(texts)
        return pd.DataFrame(array.astype(np.float64), columns=self.names)

    def mentions(self, text: Any, report_id: Any = None) -> list[dict[str, Any]]:
        """Evidence records for one report: every mention with its decision and rule id.

        Each record: ``id``, ``observation``, ``text`` (matched), ``start``/``end`` (character
        offsets), ``sentence``, ``section``, ``assertion``, ``rule_id``, ``rule_source`` (the
        deciding cue's ``file:line``, e.g. ``cues/negation_pre.yaml:5``), ``category`` (the
        cue's ConText category: negation, uncertainty, historical, hypothetical or pseudo),
        ``cue`` (its matched words), ``excluded`` and ``reason`` (why an excluded mention
        does not count).
        """
        (text,) = self._clean_all([text])
        if not text:
            return []
        doc = tokenize(self.nlp.tokenizer, text)
        analysis = self._analyze(doc, text)
        return [self._evidence(doc, analysis, r, report_id) for r in analysis.results]

    def _evidence(
        self, doc: Doc, analysis: _Analysis, r: MentionResult, report_id: Any
    ) -> dict[str, Any]:
        span = doc[r.start : r.end]
        sentence = analysis.sentence(span.start_char, span.end_char)
        return {
            "id": report_id,
            "observation": self.observations[r.observation],
            "text": span.text,
            "start": span.start_char,
            "end": span.end_char,
            "sentence": sentence,
            "section": r.section,
            "assertion": r.status,
            "rule_id": r.cue.cue.rule_id if r.cue else None,
            "rule_source": r.cue.cue.source if r.cue else None,
            "category": r.cue.cue.category if r.cue else None,
            "cue": doc[r.cue.start : r.cue.end].text if r.cue else None,
            "excluded": r.excluded is not None,
            "reason": r.excluded,
        }

    def assertion(self, sentence: str, target: str) -> str:
        """Status of ``target`` in ``sentence``: ``"positive"``, ``"negative"`` or ``"uncertain"``.

        ConText-style: works for any phrase, in the lexicon or not.

        Examples
        --------
        >>> Labeler().assertion("Pneumonia cannot be excluded.", "pneumonia")
        'uncertain'
        """
        status, _ = self.explain_assertion(sentence, target)
        return status

    def explain_assertion(self, sentence: str, target: str) -> tuple[str, str | None]:
        """Like :meth:`assertion`, also returning the deciding rule id (or None)."""
        sentence, target = self._clean_all([sentence, target])
        if not sentence or not target:
            raise InputError("assertion() needs a non-empty sentence and target phrase")
        doc = tokenize(self.nlp.tokenizer, sentence)
        start, end = _locate(self.nlp, doc, target)
        ends = [m.start() for m in _SENTENCE_END.finditer(doc.text)]
        s = bisect.bisect_left(ends, doc[start].idx)
        cue_matches = [
            m
            for m in self._index.find(doc)
            if m.kind == "cue" and bisect.bisect_left(ends, doc[m.start].idx) == s
        ]
        scope = SentenceCues(active_cues(cue_matches, self._index.cues))
        status, cue = self._status(start, end, scope, literal=True)
        return status, (cue.cue.rule_id if cue else None)


def _longest_per_observation(mentions: list[Match]) -> list[Match]:
    """Keep the longest of overlapping mentions of the same observation (mentions beat anchors)."""
    ordered = sorted(mentions, key=lambda m: (m.kind != "mention", m.start - m.end, m.start))
    kept: list[Match] = []
    taken: set[tuple[int, int]] = set()  # (observation, token) of the mentions kept
    for m in ordered:
        cells = [(m.index, t) for t in range(m.start, m.end)]
        if not any(c in taken for c in cells):
            kept.append(m)
            taken.update(cells)
    return kept


def _window(text: str, lo: int, hi: int, start: int, end: int) -> str:
    """The words of sentence text[lo:hi] within ``_SENTENCE_CONTEXT`` characters of the
    mention text[start:end], with ``…`` where the sentence was cut."""
    a, b = max(lo, start - _SENTENCE_CONTEXT), min(hi, end + _SENTENCE_CONTEXT)
    if a > lo and not text[a - 1].isspace():  # cut inside a word: begin at the next one
        spaces = [i for i in (text.find(c, a, start) for c in _SPACES) if i >= 0]
        a = min(spaces, default=a)
    if b < hi and not text[b].isspace():  # cut inside a word: end before it
        b = max((text.rfind(c, end, b) for c in _SPACES), default=-1)
        b = b if b >= end else min(hi, end + _SENTENCE_CONTEXT)
    words = " ".join(text[a:b].split())
    return ("… " if a > lo else "") + words + (" …" if b < hi else "")


def _warn_replaced(characters: int, texts: int) -> None:
    warnings.warn(
        f"{characters} character(s) that UTF-8 cannot encode (unpaired UTF-16 surrogates) in "
        f"{texts} text(s) were replaced by U+FFFD",
        ReplacedCharactersWarning,
        stacklevel=4,
    )


def _locate(nlp: Language, doc: Doc, target: str) -> tuple[int, int]:
    """Token span of ``target`` in ``doc``, found robustly.

    Tries, in order: the words of the target (case-insensitive, any spacing, plural /
    singular and hyphen variants of the phrase), then the same ignoring punctuation tokens,
    then a character search, then a target that runs over the sentence edge (the sentence
    ends with the target's first words or starts with its last ones, at least two words).
    Where the target occurs more than once, an occurrence that is not a heading ("ALLERGIES:")
    is preferred.
    """

    def words(text: str) -> list[str]:
        return [t.lower_ for t in nlp.make_doc(text) if not t.is_space]

    def variants() -> list[list[str]]:
        base = " ".join(target.lower().replace("...", " ").split())
        out = [words(" ".join(v)) for v in phrase_variants(base)]
        last = base.split()[-1] if base.split() else ""
        for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
            if last.endswith(suffix) and len(last) > len(suffix) + 2:
                out.append(words(base[: len(base) - len(suffix)] + repl))
                break
        return [v for v in out if v]

    def search(tokens: list[tuple[int, str]], phrases: list[list[str]]) -> tuple[int, int] | None:
        found: list[tuple[int, int]] = []
        for phrase in phrases:
            n = len(phrase)
            for i in range(len(tokens) - n + 1):
                if [w for _, w in tokens[i : i + n]] == phrase:
                    found.append((tokens[i][0], tokens[i + n - 1][0] + 1))
        if not found:
            return None
        found.sort()
        body = [f for f in found if f[1] >= len(doc) or doc[f[1]].text != ":"]
        return (body or found)[0]

    phrases = variants()
    all_tokens = [(t.i, t.lower_) for t in doc if not t.is_space]
    hit = search(all_tokens, phrases)
    if hit is None:
        bare = [[w for w in p if any(ch.isalnum() for ch in w)] for p in phrases]
        word_tokens = [(i, w) for i, w in all_tokens if any(ch.isalnum() for ch in w)]
        hit = search(word_tokens, [p for p in bare if p])
    if hit is not None:
        return hit
    pos = doc.text.lower().find(target.lower())
    if pos >= 0:
        span = doc.char_span(pos, pos + len(target), alignment_mode="expand")
        if span is not None:
            return span.start, span.end
    tokens = [w for _, w in all_tokens]
    target_words = phrases[0] if phrases else []
    for n in range(min(len(tokens), len(target_words) - 1), 1, -1):
        if tokens[-n:] == target_words[:n] and sum(w.isalnum() for w in tokens[-n:]) >= 2:
            return all_tokens[-n][0], all_tokens[-1][0] + 1
        if tokens[:n] == target_words[-n:] and sum(w.isalnum() for w in tokens[:n]) >= 2:
            return all_tokens[0][0], all_tokens[n - 1][0] + 1
    raise InputError(
        f"target phrase {target!r} not found in the sentence {doc.text[:80]!r}; pass words that "
        "occur in the sentence (case, spacing and plurals do not matter)"
    )
