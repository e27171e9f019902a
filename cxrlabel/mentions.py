"""Phrase matching: every schema phrase and cue phrase found in one pass over the tokens.

All plain phrases go into one spaCy ``PhraseMatcher`` (on lower-cased tokens); phrases with
``...`` gaps go into a token ``Matcher``. One pass gives mentions, anchors, unmentions and
cues together, so a report costs one tokenisation plus two C-level scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from cxrlabel.lexicon import Cue, Lexicon

__all__ = ["Match", "PhraseIndex", "phrase_variants"]

Kind = Literal["mention", "anchor", "unmention", "cue"]
_KINDS: tuple[Kind, ...] = ("mention", "anchor", "unmention", "cue")
_SENTENCE_END = [".", ";", "?", "!"]


@dataclass(frozen=True, slots=True)
class Match:
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
    per_segment[-1] = sorted(set(last) | {" ".join([*v.split()[:-1], _plural(v.split()[-1])]) for v in alphabetic})
    combos: list[list[str]] = [[]]
    for variants in per_segment:
        combos = [c + [v] for c in combos for v in variants]
    return combos


class PhraseIndex:
    """Compiled matchers for a lexicon; ``find(doc)`` returns every match in the doc."""

    def __init__(self, nlp: Language, lexicon: Lexicon) -> None:
        self.nlp = nlp
        self.lexicon = lexicon
        self.cues: tuple[Cue, ...] = lexicon.cues
        self._phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._gapped = Matcher(nlp.vocab)
        self._n_gapped = 0
        self._keys: dict[int, tuple[Kind, int]] = {}
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
        self._keys[self.nlp.vocab.strings.add(key)] = (kind, index)
        plain: list[Doc] = []
        gapped: list[list[dict]] = []
        for phrase in phrases:
            for segments in phrase_variants(phrase):
                if len(segments) == 1:
                    plain.append(self.nlp.make_doc(segments[0]))
                    continue
                pattern: list[dict] = []
                for j, seg in enumerate(segments):
                    if j:
                        pattern.append({"ORTH": {"NOT_IN": _SENTENCE_END}, "OP": f"{{0,{gap}}}"})
                    pattern.extend({"LOWER": t.text} for t in self.nlp.make_doc(seg))
                gapped.append(pattern)
        if plain:
            self._phrases.add(key, plain)
        if gapped:
            self._gapped.add(key, gapped)
            self._n_gapped += len(gapped)

    def find(self, doc: Doc) -> list[Match]:
        """All matches (mentions, anchors, unmentions, cues), overlapping ones included."""
        keys = self._keys
        raw = self._phrases(doc)
        if self._n_gapped:
            raw = raw + self._gapped(doc)
        return [Match(*keys[key], start, end) for key, start, end in raw]
