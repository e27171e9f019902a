"""Phrase matching: every schema phrase and cue phrase found in one pass over the tokens.

All plain phrases go into one spaCy ``PhraseMatcher`` (on lower-cased tokens); phrases with
``...`` gaps go into a token ``Matcher``. One pass gives mentions, anchors, unmentions and
cues together, so a report costs one tokenisation plus two C-level scans.
"""

from __future__ import annotations

import bisect
from typing import Literal, NamedTuple

from spacy.attrs import ORTH
from spacy.language import Language
from spacy.matcher import PhraseMatcher
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
    """

    def __init__(self, nlp: Language, lexicon: Lexicon) -> None:
        self.nlp = nlp
        self.lexicon = lexicon
        self.cues: tuple[Cue, ...] = lexicon.cues
        self._phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._keys: dict[int, tuple[Kind, int]] = {}
        self._segment_keys: dict[int, str] = {}
        # first segment -> [(kind, index, gap, segments)]
        self._gapped: dict[str, list[tuple[Kind, int, int, tuple[str, ...]]]] = {}
        self._stop_orths = {nlp.vocab.strings.add(t) for t in _SENTENCE_END}
        for i, obs in enumerate(lexicon.schema.observations):
            self._add("mention", i, obs.mentions, obs.gap)
            self._add("anchor", i, obs.anchors, obs.gap)
            self._add("unmention", i, obs.unmentions, obs.gap)
        for i, cue in enumerate(self.cues):
            self._add("cue", i, cue.phrases, 0)

    def _add(self, kind: Kind, index: int, phrases: tuple[str, ...], gap: int) -> None:
        if not phrases:
            return
        key = f"{kind}|{index}"
        plain: list[Doc] = []
        for phrase in phrases:
            for segments in phrase_variants(phrase):
                if len(segments) == 1:
                    plain.append(self.nlp.make_doc(segments[0]))
                    continue
                for seg in segments:
                    self._add_segment(seg)
                self._gapped.setdefault(segments[0], []).append((kind, index, gap, tuple(segments)))
        if plain:
            self._keys[self.nlp.vocab.strings.add(key)] = (kind, index)
            self._phrases.add(key, plain)

    def _add_segment(self, segment: str) -> None:
        key = f"segment|{segment}"
        key_id = self.nlp.vocab.strings.add(key)
        if key_id not in self._segment_keys:
            self._segment_keys[key_id] = segment
            self._phrases.add(key, [self.nlp.make_doc(segment)])

    def find(self, doc: Doc) -> list[Match]:
        """All matches (mentions, anchors, unmentions, cues), overlapping ones included."""
        keys = self._keys
        out: list[Match] = []
        segments: dict[str, list[tuple[int, int]]] = {}
        for key, start, end in self._phrases(doc):
            hit = keys.get(key)
            if hit is not None:
                out.append(Match(hit[0], hit[1], start, end))
            else:
                segments.setdefault(self._segment_keys[key], []).append((start, end))
        if segments:
            out.extend(self._chain(doc, segments))
        return out

    def _chain(self, doc: Doc, segments: dict[str, list[tuple[int, int]]]) -> list[Match]:
        """Gapped phrases: each first segment followed by the rest, within ``gap`` tokens.

        The candidates for the next segment are found by bisection in its sorted starts and
        sentence ends by bisection in their sorted positions, so a long sentence full of
        segments costs time linear in its length.
        """
        out: list[Match] = []
        starts = {part: [s for s, _ in spans] for part, spans in segments.items()}
        stops: list[int] | None = None  # token positions of sentence ends (computed once, lazily)
        for first, spans in segments.items():
            for kind, index, gap, parts in self._gapped.get(first, ()):
                rest = parts[1:]
                if not all(p in segments for p in rest):
                    continue
                if stops is None:
                    stops = self._stops(doc)
                for start, end in spans:
                    stop = _follow(segments, starts, stops, rest, end, gap)
                    if stop is not None:
                        out.append(Match(kind, index, start, stop))
        return out

    def _stops(self, doc: Doc) -> list[int]:
        """Positions of the tokens that end a sentence for chaining (``.``, ``;``, ``?``, ``!``)."""
        orths = doc.to_array(ORTH).tolist()
        stop_orths = self._stop_orths
        return [i for i, orth in enumerate(orths) if orth in stop_orths]


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
