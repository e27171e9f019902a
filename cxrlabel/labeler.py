"""The report labeller: text in, one 1 / 0 / -1 / blank value per observation out.

Pipeline per report: tokenise as ``spacy.blank("en")`` does → find section titles and sentence
ends (character offsets) → one phrase-matching pass for mentions and cues → assertion status
of each mention from its sentence's cues → report-level aggregation. Every label is traceable
to the phrase that matched and the rule id of the cue that decided it (:meth:`Labeler.mentions`).
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from spacy.attrs import IDX
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, Span

from cxrlabel.aggregate import POSITIVE, PRECEDENCE, UNCERTAIN, VALUE, Precedence
from cxrlabel.assertion import ActiveCue, SentenceCues, active_cues
from cxrlabel.decisions import Decided, SentenceDecider
from cxrlabel.errors import InputError, ReplacedCharactersWarning
from cxrlabel.joined import ColumnSpans, join_with_spans
from cxrlabel.lexicon import Lexicon, load_lexicon
from cxrlabel.mentions import PhraseIndex, phrase_variants
from cxrlabel.sections import SectionFinder, Sections
from cxrlabel.sentences import SentenceTexts, sentence_ends
from cxrlabel.text import clean_text, english_tokenizer, tokenize
from cxrlabel.vocab import HEDGE

__all__ = ["Labeler", "MentionResult"]


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
    """One report analysed: its decided sentences and the best label rank per column.

    ``sentences`` holds ``(sentence number, first matched token, Decided)`` for each
    sentence with a mention; the evidence's :class:`MentionResult` records are made from
    them only when asked for (:meth:`Labeler._mention_results`).
    """

    __slots__ = ("doc", "text", "breaks", "sections", "offsets", "sentences", "best")

    def __init__(
        self,
        doc: Doc,
        text: str,
        breaks: list[int] | None = None,
        sections: Sections | None = None,
        offsets: np.ndarray | None = None,
        sentences: list[tuple[int, int, Decided]] | None = None,
        best: dict[int, int] | None = None,
    ) -> None:
        self.doc, self.text, self.breaks = doc, text, breaks or []
        self.sections, self.offsets = sections, offsets
        self.sentences = sentences or []
        self.best = best or {}


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
            for name, value in (
                ("probable", probable),
                ("borderline", borderline),
                ("versus", versus),
            )
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
        # Without a pipeline of the caller's, the tokenizer of spacy.blank("en") is built
        # directly (no Language: see english_tokenizer); ``nlp`` makes one when asked for.
        self._nlp = nlp
        self._tokenizer = english_tokenizer() if nlp is None else None
        self._index = PhraseIndex(
            nlp if nlp is not None else self._tokenizer, self.lexicon, cache=nlp is None
        )
        self._sections = SectionFinder(self.lexicon.sections)
        schema_ = self.lexicon.schema
        self.observations = [o.name for o in schema_.observations]
        self.names = schema_.names
        self._no_finding = schema_.no_finding
        offset = 1 if self._no_finding else 0
        self._decide = SentenceDecider(
            self._index, self._positive_hedges, self._precedence.rank, offset
        )
        # label value of each precedence rank; No Finding ignores these columns
        self._value_of_rank = [VALUE[status] for status in self._precedence.order]
        self._nf_ignore = frozenset(
            self.observations.index(n) + offset for n in schema_.no_finding_ignores
        )
        self._counting: dict[tuple[str | None, ...], bool] = {}  # section names -> all count?

    @property
    def nlp(self) -> Language:
        """The spaCy pipeline whose tokenizer the labeller uses: the one given, else an
        English ``Language`` around the labeller's own tokenizer (made on first use)."""
        if self._nlp is None:
            from spacy.lang.en import English

            tokenizer = self._tokenizer
            self._nlp = English(vocab=tokenizer.vocab, create_tokenizer=lambda _: tokenizer)
        return self._nlp

    @property
    def tokenizer(self) -> Any:
        """The tokenizer reports go through (the pipeline's, when one was given)."""
        return self._nlp.tokenizer if self._nlp is not None else self._tokenizer

    # ------------------------------------------------------------------ analysis core

    def _section_counts(self, section: str | None) -> bool:
        if section is None:
            return True
        if self.sections is not None:
            return section in self.sections
        return not self._sections.skipped(section)

    def _all_sections_count(self, sections: Sections) -> bool:
        """Whether every section of a report counts (most reports: no per-mention lookup)."""
        found = self._counting.get(sections.names)
        if found is None:
            found = self._counting[sections.names] = all(map(self._section_counts, sections.names))
        return found

    def _analyze(self, doc: Doc, text: str) -> _Analysis:
        """Match, split into sentences, decide each sentence holding a mention, and keep
        the best label rank per column."""
        hits = self._index.find_keys(doc)
        if not hits:
            return _Analysis(doc, text)
        sections = self._sections(text)
        breaks = sentence_ends(text)
        ends = breaks
        if len(sections.starts) > 1:  # a section title also ends a sentence
            ends = sorted(breaks + [s - 1 for s in sections.starts[1:]])
        offsets = doc.to_array(IDX).view(np.int64)
        # The first token after each sentence end: a match's sentence number is how many of
        # these are at or before its first token (one bisection per match, no offsets).
        firsts = np.searchsorted(offsets, np.asarray(ends, dtype=np.int64), "right").tolist()
        # Matches come in order of their first token, so each sentence's are consecutive.
        groups: list[tuple[int, list[tuple[int, int, int]]]] = []  # (sentence, matches)
        with_mention: set[int] = set()
        mention_keys = self._index.mention_keys
        last = -1
        for hit in hits:
            s = bisect.bisect_right(firsts, hit[1])
            if s != last:
                groups.append((s, []))
                last = s
            groups[-1][1].append(hit)
            if hit[0] in mention_keys:
                with_mention.add(s)
        sentences: list[tuple[int, int, Decided]] = []
        best: dict[int, int] = {}
        every_section = self._all_sections_count(sections)
        for s, group in groups:
            if s not in with_mention:
                continue
            base = group[0][1]
            decided = self._decide(group, base)
            sentences.append((s, base, decided))
            for column, rank, start in decided.labels:
                if rank < best.get(column, 3) and (
                    every_section or self._section_counts(sections.at(int(offsets[start + base])))
                ):
                    best[column] = rank
        return _Analysis(doc, text, breaks, sections, offsets, sentences, best)

    def _mentions(
        self, analysis: _Analysis, sections_wanted: bool = True
    ) -> Iterator[tuple[Any, ...]]:
        """``(sentence, start, end, observation, status, cue, base, section, excluded)`` for
        every mention of an analysed report: absolute token positions, but the cue's are
        relative to the sentence's first matched token ``base`` (plain tuples: the spaCy
        component makes a span of each without the records' objects). Without
        ``sections_wanted``, ``section`` is None where every section of the report counts
        (no lookup needed to decide exclusions)."""
        sections, offsets = analysis.sections, analysis.offsets
        if not analysis.sentences:
            return
        lookup = sections_wanted or not self._all_sections_count(sections)
        section = None
        for s, base, decided in analysis.sentences:
            for m_index, _kind, start, end, status, cue, excluded in decided.decisions:
                start += base
                if lookup:
                    section = sections.at(int(offsets[start]))
                    if excluded != "unmention" and not self._section_counts(section):
                        excluded = f"section:{section}"  # before historical / hypothetical
                yield s, start, end + base, m_index, status, cue, base, section, excluded

    def _mention_results(self, analysis: _Analysis) -> list[MentionResult]:
        """Every mention of an analysed report with its decision, in absolute positions."""
        results: list[MentionResult] = []
        for s, start, end, m_index, status, cue, base, section, excluded in self._mentions(
            analysis
        ):
            if cue is not None and base:  # (faster than NamedTuple._replace)
                cue = ActiveCue(cue.cue, cue.index, cue.start + base, cue.end + base)
            results.append(MentionResult(m_index, start, end, status, cue, section, s, excluded))
        return results

    def _fill_row(self, array: np.ndarray, i: int, best: dict[int, int]) -> None:
        """Row ``i`` of ``array`` (all NaN) from a report's best rank per column; No Finding
        is 1 unless an observation it does not ignore is positive or uncertain."""
        values, ignore = self._value_of_rank, self._nf_ignore
        abnormal = False
        for column, rank in best.items():
            value = array[i, column] = values[rank]
            if value != 0.0 and column not in ignore:
                abnormal = True
        if self._no_finding:
            array[i, 0] = math.nan if abnormal else 1.0

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
        self,
        texts: Sequence[Any],
        ids: Sequence[Any],
        batch_size: int = 256,
        sources: Sequence[ColumnSpans | None] | None = None,
    ) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        """Like :meth:`label_array`, plus the evidence records of every report (one pass).

        ``sources`` (one per text, from :func:`cxrlabel.joined.join_with_spans`) say where
        each column's text sits in a joined report; each record's ``column``,
        ``column_start`` and ``column_end`` then point into that column's own text.
        """
        if len(ids) != len(texts) or (sources is not None and len(sources) != len(texts)):
            given = f"{len(ids)} ids" + (
                f" and {len(sources)} sources" if sources is not None else ""
            )
            raise InputError(f"got {len(texts)} texts but {given}")
        return self._label_many(texts, ids, batch_size, sources)

    def _label_many(
        self,
        texts: Iterable[Any],
        ids: Sequence[Any] | None,
        batch_size: int,
        sources: Sequence[ColumnSpans | None] | None = None,
    ) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        cleaned = self._clean_all(texts)
        array = np.full((len(cleaned), len(self.names)), np.nan, dtype=np.float32)
        status: list[str] = []
        records: list[dict[str, Any]] = []
        tokenizer = self.tokenizer
        for i, text in enumerate(cleaned):
            if not text:
                status.append("empty")
                continue
            analysis = self._analyze(tokenize(tokenizer, text), text)
            self._fill_row(array, i, analysis.best)
            status.append("ok")
            if ids is not None:
                found = self._records(analysis, ids[i])
                if sources is not None and sources[i] is not None:
                    sources[i].annotate(found)
                records.extend(found)
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

        ``text`` is the report, or a mapping of column name to text (``{"findings": ...,
        "impression": ...}``), joined as ``cxr label`` joins text columns.

        Each record: ``id``, ``observation``, ``text`` (matched), ``start``/``end`` (character
        offsets into the report the labeller read: the joined text for a mapping),
        ``column``, ``column_start``/``column_end`` (the column the mention is in and offsets
        into that column's own text, so ``text[column][column_start:column_end]`` is the
        matched text; ``None`` and the same offsets as ``start``/``end`` for a plain
        string), ``sentence``, ``section``, ``assertion``, ``rule_id``, ``rule_source`` (the
        deciding cue's ``file:line``, e.g. ``cues/negation_pre.yaml:5``), ``category`` (the
        cue's ConText category: negation, uncertainty, historical, hypothetical or pseudo),
        ``cue`` (its matched words), ``excluded`` and ``reason`` (why an excluded mention
        does not count).

        Examples
        --------
        >>> r = Labeler().mentions({"findings": "Clear lungs.", "impression": "Small effusion."})
        >>> [(m["observation"], m["column"], m["column_start"], m["column_end"]) for m in r]
        [('Pleural Effusion', 'impression', 6, 14)]
        """
        spans: ColumnSpans | None = None
        if isinstance(text, Mapping):
            parts = [v if isinstance(v, str) else clean_text(v)[0] for v in text.values()]
            text, spans = join_with_spans(parts, [str(k) for k in text])
        (text,) = self._clean_all([text])
        if not text:
            return []
        records = self._records(self._analyze(tokenize(self.tokenizer, text), text), report_id)
        if spans is not None:
            spans.annotate(records)
        return records

    def _records(
        self,
        analysis: _Analysis,
        report_id: Any,
        results: list[MentionResult] | None = None,
        spans: Sequence[Span] | None = None,
    ) -> list[dict[str, Any]]:
        """Evidence records of an analysed report (``results``: its mentions, and ``spans``
        theirs, when already made)."""
        if results is None:
            results = self._mention_results(analysis)
        if not results:
            return []
        doc = analysis.doc
        if spans is None:
            spans = [doc[r.start : r.end] for r in results]
        sentences = SentenceTexts(analysis.text, analysis.breaks)
        return [
            self._evidence(doc, sentences, r, span, report_id)
            for r, span in zip(results, spans, strict=True)
        ]

    def _evidence(
        self, doc: Doc, sentences: SentenceTexts, r: MentionResult, span: Span, report_id: Any
    ) -> dict[str, Any]:
        # Texts are sliced from the report by character offsets: Span.text would make a
        # Token object per word.
        text, start, end = sentences.text, span.start_char, span.end_char
        cue = r.cue
        if cue is not None:
            cue_span = doc[cue.start : cue.end]
            cue_text = text[cue_span.start_char : cue_span.end_char]
        return {
            "id": report_id,
            "observation": self.observations[r.observation],
            "text": text[start:end],
            "start": start,
            "end": end,
            "column": None,  # set from the report's ColumnSpans, when it was joined
            "column_start": start,
            "column_end": end,
            "sentence": sentences.around(start, end),
            "section": r.section,
            "assertion": r.status,
            "rule_id": cue.cue.rule_id if cue else None,
            "rule_source": cue.cue.source if cue else None,
            "category": cue.cue.category if cue else None,
            "cue": cue_text if cue else None,
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
        doc = tokenize(self.tokenizer, sentence)
        start, end = _locate(self.tokenizer, doc, target)
        ends = sentence_ends(doc.text)
        s = bisect.bisect_left(ends, doc[start].idx)
        cue_matches = [
            m
            for m in self._index.find(doc)
            if m.kind == "cue" and bisect.bisect_left(ends, doc[m.start].idx) == s
        ]
        scope = SentenceCues(active_cues(cue_matches, self._index.cues))
        status, cue = self._decide.status(start, end, scope, literal=True)
        return status, (cue.cue.rule_id if cue else None)


def _warn_replaced(characters: int, texts: int) -> None:
    warnings.warn(
        f"{characters} character(s) that UTF-8 cannot encode (unpaired UTF-16 surrogates) in "
        f"{texts} text(s) were replaced by U+FFFD",
        ReplacedCharactersWarning,
        stacklevel=4,
    )


def _locate(nlp: Language | Tokenizer, doc: Doc, target: str) -> tuple[int, int]:
    """Token span of ``target`` in ``doc``, found robustly (``nlp``: a pipeline, whose
    ``make_doc`` tokenises the target, or a tokenizer).

    Tries, in order: the words of the target (case-insensitive, any spacing, plural /
    singular and hyphen variants of the phrase), then the same ignoring punctuation tokens,
    then a character search, then a target that runs over the sentence edge (the sentence
    ends with the target's first words or starts with its last ones, at least two words).
    Where the target occurs more than once, an occurrence that is not a heading ("ALLERGIES:")
    is preferred.
    """

    make_doc = getattr(nlp, "make_doc", nlp)

    def words(text: str) -> list[str]:
        return [t.lower_ for t in make_doc(text) if not t.is_space]

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
