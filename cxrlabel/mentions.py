"""Phrase matching: every schema phrase and cue phrase found in one pass over the tokens.

All plain phrases go into one spaCy ``PhraseMatcher`` (on lower-cased tokens); phrases with
``...`` gaps go into a token ``Matcher``. One pass gives mentions, anchors, unmentions and
cues together, so a report costs one tokenisation plus two C-level scans.
"""

from __future__ import annotations

import bisect
from typing import Literal, NamedTuple

from spacy.attrs import LOWER, ORTH
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from cxrlabel.lexicon import Cue, Lexicon

__all__ = ["Match", "PhraseIndex", "phrase_variants"]

Kind = Literal["mention", "anchor", "unmention", "cue"]
_KINDS: tuple[Kind, ...] = ("mention", "anchor", "unmention", "cue")
_SENTENCE_END = [".", ";", "?", "!"]


class Match(NamedTuple):
    """A matched phrase: ``kind``, the observation or cue index, token span [start, end)."""

    kind: Kind
    index: int
    start: int
    end: int


def _plural(word: str) -> str:
    if word.endswith("is"):
        return word[:-2] + "es"  # atelectasis -> atelectases, metastasis -> metastases
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "sh", "ch")):
        return word + "es"
    return word + "s"


def _segment_variants(segment: str) -> set[str]:
    out = {segment}
    if "-" in segment:
        out.add(" ".join(segment.replace("-", " ").split()))
        out.add(segment.replace("-", ""))
    words = segment.split()
    if 2 <= len(words) <= 3:
        for i in range(len(words) - 1):
            for joiner in ("-", ""):
                out.add(" ".join([*words[:i], words[i] + joiner + words[i + 1], *words[i + 2 :]]))
    return out


def phrase_variants(phrase: str) -> list[list[str]]:
    """All spellings of a phrase, as lists of segments (split at ``...`` gaps).

    Adds hyphen / space / joined variants of each segment and the plural of the last word.

    Examples
    --------
    >>> sorted(" ".join(v) for v in phrase_variants("air-space opacity"))[:3]
    ['air space opacities', 'air space opacity', 'air-space opacities']
    """
    segments = [" ".join(s.split()) for s in phrase.split("...")]
    segments = [s for s in segments if s]
    per_segment = [sorted(_segment_variants(s)) for s in segments]
    last = per_segment[-1]
    alphabetic = [v for v in last if v.split()[-1].isalpha() and len(v.split()[-1]) > 3]
    per_segment[-1] = sorted(
        set(last) | {" ".join([*v.split()[:-1], _plural(v.split()[-1])]) for v in alphabetic}
    )
    combos: list[list[str]] = [[]]
    for variants in per_segment:
        combos = [c + [v] for c in combos for v in variants]
    return combos


class PhraseIndex:
    """Compiled matchers for a lexicon; ``find(doc)`` returns every match in the doc.

    Gapped phrases (``heart ... enlarged``) are matched by finding each segment with the same
    PhraseMatcher and chaining segments that follow each other within ``gap`` tokens of the
    same sentence: much faster than spaCy's token Matcher with wildcard quantifiers.

    The labeller's hot path uses :meth:`find_keys`, which returns the matcher's own
    ``(key, start, end)`` tuples: one hashable key per (kind, index), so no object is made
    per match (:meth:`match` turns one into a :class:`Match`).
    """

    def __init__(self, nlp: Language | Tokenizer, lexicon: Lexicon, *, cache: bool = False) -> None:
        """``nlp``: a pipeline (its ``make_doc`` tokenises the phrases) or a tokenizer.

        ``cache``: the tokenizer is :func:`cxrlabel.text.english_tokenizer`'s, so the
        phrases' token hashes may be read from (and are written to) the on-disk cache of
        :mod:`cxrlabel.phrasecache` instead of tokenising every phrase.
        """
        self.nlp = nlp
        self.lexicon = lexicon
        self.cues: tuple[Cue, ...] = lexicon.cues
        vocab = nlp.vocab
        self._phrases = PhraseMatcher(vocab, attr="LOWER")
        self._keys: dict[int, tuple[Kind, int]] = {}  # match key -> (kind, index)
        self._key_of: dict[tuple[Kind, int], int] = {}
        self._segment_keys: dict[int, str] = {}
        # first segment -> second segment -> [(key, gap, segments after the first)]
        self._gapped: dict[str, dict[str, list[tuple[int, int, tuple[str, ...]]]]] = {}
        self._stop_orths = {vocab.strings.add(t) for t in _SENTENCE_END}
        # The matcher's rules, in the order they are added: (match key, phrase texts)
        rules: list[tuple[str, list[str]]] = []
        for i, obs in enumerate(lexicon.schema.observations):
            self._add(rules, "mention", i, obs.mentions, obs.gap)
            self._add(rules, "anchor", i, obs.anchors, obs.gap)
            self._add(rules, "unmention", i, obs.unmentions, obs.gap)
        for i, cue in enumerate(self.cues):
            self._add(rules, "cue", i, cue.phrases, 0)
        texts = list(dict.fromkeys(text for _, group in rules for text in group))
        lowers = dict(zip(texts, _lower_hashes(nlp, texts, cache), strict=True))
        for key, group in rules:
            # LOWER hash sequences: what the matcher keeps of a Doc (empty ones are skipped)
            self._phrases.add(key, [lowers[text] for text in group])
        #: keys of mentions and anchors: a sentence holding none needs no decision
        self.mention_keys = frozenset(
            k for k, (kind, _) in self._keys.items() if kind in ("mention", "anchor")
        )

    def _add(
        self,
        rules: list[tuple[str, list[str]]],
        kind: Kind,
        index: int,
        phrases: tuple[str, ...],
        gap: int,
    ) -> None:
        if not phrases:
            return
        key = f"{kind}|{index}"
        key_id = self.nlp.vocab.strings.add(key)  # the key of plain and gapped matches alike
        self._keys[key_id], self._key_of[(kind, index)] = (kind, index), key_id
        plain: list[str] = []
        for phrase in phrases:
            for segments in phrase_variants(phrase):
                if len(segments) == 1:
                    plain.append(segments[0])
                    continue
                for seg in segments:
                    self._add_segment(rules, seg)
                by_second = self._gapped.setdefault(segments[0], {})
                by_second.setdefault(segments[1], []).append((key_id, gap, tuple(segments[1:])))
        if plain:
            rules.append((key, plain))

    def _add_segment(self, rules: list[tuple[str, list[str]]], segment: str) -> None:
        key = f"segment|{segment}"
        key_id = self.nlp.vocab.strings.add(key)
        if key_id not in self._segment_keys:
            self._segment_keys[key_id] = segment
            rules.append((key, [segment]))

    def find(self, doc: Doc) -> list[Match]:
        """All matches (mentions, anchors, unmentions, cues), overlapping ones included:
        plain phrases in the matcher's order, then the gapped ones."""
        plain, gapped = self._find(doc)
        return [self.match(*hit) for hit in plain + gapped]

    def match(self, key: int, start: int, end: int) -> Match:
        """The :class:`Match` of a ``(key, start, end)`` tuple from :meth:`find_keys`."""
        kind, index = self._keys[key]
        return Match(kind, index, start, end)

    def find_keys(self, doc: Doc) -> list[tuple[int, int, int]]:
        """All matches as ``(key, start, end)``, in order of their first token (the
        matcher's order where it is the same)."""
        plain, gapped = self._find(doc)
        if gapped:
            plain = sorted(plain + gapped, key=_start)  # stable: nearly sorted, so linear
        return plain

    def _find(self, doc: Doc) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """(plain-phrase matches in start order, gapped-phrase matches)."""
        segment_keys = self._segment_keys
        plain: list[tuple[int, int, int]] = []
        segments: dict[str, list[tuple[int, int]]] = {}
        for hit in self._phrases(doc):
            segment = segment_keys.get(hit[0])
            if segment is None:
                plain.append(hit)
            else:
                segments.setdefault(segment, []).append((hit[1], hit[2]))
        return plain, (self._chain(doc, segments) if segments else [])

    def _chain(
        self, doc: Doc, segments: dict[str, list[tuple[int, int]]]
    ) -> list[tuple[int, int, int]]:
        """Gapped phrases: each first segment followed by the rest, within ``gap`` tokens.

        Only phrases whose first two segments both matched are tried (looked up by the
        pair). The candidates for the next segment are found by bisection in its sorted
        starts and sentence ends by bisection in their sorted positions, so a long sentence
        full of segments costs time linear in its length.
        """
        out: list[tuple[int, int, int]] = []
        starts: dict[str, list[int]] | None = None
        stops: list[int] | None = None  # token positions of sentence ends (computed once, lazily)
        for first, spans in segments.items():
            by_second = self._gapped.get(first)
            if by_second is None:
                continue
            for second in segments:
                for key, gap, rest in by_second.get(second, ()):
                    if len(rest) > 1 and not all(p in segments for p in rest):
                        continue
                    if stops is None:
                        starts = {part: [s for s, _ in found] for part, found in segments.items()}
                        stops = self._stops(doc)
                    for start, end in spans:
                        stop = _follow(segments, starts, stops, rest, end, gap)
                        if stop is not None:
                            out.append((key, start, stop))
        return out

    def _stops(self, doc: Doc) -> list[int]:
        """Positions of the tokens that end a sentence for chaining (``.``, ``;``, ``?``, ``!``)."""
        orths = doc.to_array(ORTH).tolist()
        stop_orths = self._stop_orths
        return [i for i, orth in enumerate(orths) if orth in stop_orths]


def _lower_hashes(nlp: Language | Tokenizer, texts: list[str], cache: bool) -> list[list[int]]:
    """The ``LOWER`` hash of each token of each text, tokenised by ``nlp`` (``make_doc``
    for a pipeline) or read from the phrase cache (``cache``: written when it was not)."""
    key = None
    if cache:
        from cxrlabel import phrasecache

        key = phrasecache.cache_key(texts)
        cached = phrasecache.load(key, len(texts))
        if cached is not None:
            return cached
    make_doc = getattr(nlp, "make_doc", nlp)
    lowers = [make_doc(text).to_array(LOWER).tolist() for text in texts]
    if key is not None:
        phrasecache.save(key, lowers)
    return lowers


def _start(hit: tuple[int, int, int]) -> int:
    return hit[1]


def _follow(
    segments: dict[str, list[tuple[int, int]]],
    starts: dict[str, list[int]],
    stops: list[int],
    rest: tuple[str, ...],
    pos: int,
    gap: int,
) -> int | None:
    """End of the chain of ``rest`` segments, each within ``gap`` tokens of the previous one
    and with no sentence end in between (the first such occurrence of each segment)."""
    for part in rest:
        i = bisect.bisect_left(starts[part], pos)
        spans = segments[part]
        if i == len(spans) or spans[i][0] > pos + gap:
            return None
        s, e = spans[i]
        # Only the nearest candidate needs checking: a sentence end before it also lies
        # before every later candidate.
        j = bisect.bisect_left(stops, pos)
        if j < len(stops) and stops[j] < s:
            return None
        pos = e
    return pos
