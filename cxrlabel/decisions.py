"""The decision for each mention of one sentence, memoised on the sentence's structure.

A decision depends only on which phrases and cues matched in the sentence and on their
token positions relative to each other, and radiology sentences repeat their structure
constantly ("No X.", "X is normal."). :class:`SentenceDecider` therefore keys a bounded
cache on that structure: the sorted ``(match key, start - base, end - base)`` tuples of the
sentence, where ``base`` is its first matched token. The text never enters the key, so
repeated input still costs its tokenising and matching.

A cached entry (:class:`Decided`) holds the decisions themselves, in positions relative to
``base``, for the evidence, and what they contribute to the report's labels, ready for the
fast path that writes labels only: ``(column, rank, start)`` per counting mention.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from cxrlabel.aggregate import NEGATIVE, POSITIVE, UNCERTAIN
from cxrlabel.assertion import HEDGES, ActiveCue, SentenceCues, active_cues
from cxrlabel.mentions import Match, PhraseIndex

__all__ = ["Decision", "Decided", "SentenceDecider", "MEMO_SIZE", "MEMO_MATCHES"]

MEMO_SIZE = 20_000  # sentence structures remembered per labeller (bounded memory)
MEMO_MATCHES = 64  # sentences with more matches than this are long, rare and not memoised


class Decision(NamedTuple):
    """One mention's decision, token positions relative to the sentence's first match."""

    observation: int
    kind: str
    start: int
    end: int
    status: str
    cue: ActiveCue | None
    excluded: str | None  # None, or why the mention does not set a label


class Decided(NamedTuple):
    """A sentence's decisions, and ``(column, rank, start)`` of those that set a label."""

    decisions: list[Decision]
    labels: tuple[tuple[int, int, int], ...]


class SentenceDecider:
    """Decide the mentions of one sentence from its matches (memoised).

    Parameters
    ----------
    index : the phrase index whose match keys the sentences carry.
    positive_hedges : graded-hedge cue categories whose mentions count as present.
    rank : status -> precedence rank (0 wins), for the labels contributed.
    column_offset : label column of observation 0 (1 when the schema has No Finding).
    """

    def __init__(
        self,
        index: PhraseIndex,
        positive_hedges: Collection[str],
        rank: Mapping[str, int],
        column_offset: int,
    ) -> None:
        self.index = index
        self.positive_hedges = frozenset(positive_hedges)
        self.rank = dict(rank)
        self.column_offset = column_offset
        self._memo: dict[tuple, Decided] = {}

    def __call__(self, hits: Sequence[tuple[int, int, int]], base: int) -> Decided:
        """The decisions of a sentence's ``(key, start, end)`` matches; ``base`` is the
        smallest start.

        The matches come in the matcher's order, which is the same for the same structure,
        so they key the cache unsorted (a different order would only cost a second entry).
        """
        relative = [(key, start - base, end - base) for key, start, end in hits]
        if len(relative) > MEMO_MATCHES:
            return self._decided(relative)
        key = tuple(relative)
        found = self._memo.get(key)
        if found is None:
            found = self._decided(relative)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _decided(self, relative: Sequence[tuple[int, int, int]]) -> Decided:
        # Decide on Match objects in (kind, index, start, end) order: ties between cues at
        # equal distance go to the first, so the order is part of the rules.
        decisions = self.decide(sorted(self.index.match(*hit) for hit in relative))
        rank, offset = self.rank, self.column_offset
        labels = tuple(
            (d.observation + offset, rank[d.status], d.start)
            for d in decisions
            if d.excluded is None
        )
        return Decided(decisions, labels)

    def decide(self, ms: Sequence[Match]) -> list[Decision]:
        """Decisions of the mentions among one sentence's matches (in Match order)."""
        cue_matches = [m for m in ms if m.kind == "cue"]
        mentions = [m for m in ms if m.kind == "mention" or m.kind == "anchor"]
        # (observation, token) of every unmention: an overlapping mention of the same
        # observation is found from its own tokens
        unmentioned = {
            (m.index, t) for m in ms if m.kind == "unmention" for t in range(m.start, m.end)
        }
        scope = SentenceCues(active_cues(cue_matches, self.index.cues) if cue_matches else [])
        out = []
        for m in _longest_per_observation(mentions) if len(mentions) > 1 else mentions:
            excluded = None
            if unmentioned and any((m.index, t) in unmentioned for t in range(m.start, m.end)):
                excluded = "unmention"
            status, cue = self.status(m.start, m.end, scope)
            if excluded is not None or status == NEGATIVE:
                pass
            elif (
                m.kind == "anchor"
                and status == POSITIVE
                and (cue is None or cue.cue.category not in HEDGES)
            ):
                excluded = "anchor without cue"  # "heart size": only a cue makes it a label
            elif scope.cues:
                context = scope.context(m.start, m.end)
                if context is not None:  # historical or hypothetical: not a finding now
                    excluded, cue = context.cue.category, context
            out.append(Decision(m.index, m.kind, m.start, m.end, status, cue, excluded))
        return out

    def status(
        self, start: int, end: int, scope: SentenceCues, literal: bool = False
    ) -> tuple[str, ActiveCue | None]:
        """Assertion status of a span, with the graded-hedge options applied."""
        status, cue = scope.status(start, end, literal)
        if status == UNCERTAIN and cue.cue.category in self.positive_hedges:
            status = POSITIVE
        return status, cue


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
