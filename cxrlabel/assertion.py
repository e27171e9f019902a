"""Assertion status of a mention from the cues of its sentence (NegEx / ConText scopes).

Rules, in order:

1. Overlapping cues: the longest wins; a pseudo-trigger ("no increase") cancels every cue it
   overlaps.
2. A forward cue covers tokens after it, a backward cue tokens before it, up to the sentence
   edge, the cue's ``window`` or the first terminator ("but", ";") on that side. A cue that
   sits inside a gapped mention ("heart is *not* enlarged") covers that mention.
3. Uncertainty is checked before negation: "cannot exclude pneumonia" is uncertain. The one
   exception is a negation cue that itself covers the uncertainty cue ("no findings to
   *suggest* pneumonia", "not *likely*"): the negation governs and the mention is negative.
4. Otherwise the mention is positive. The nearest deciding cue gives the rule id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cxrlabel.lexicon import Cue
from cxrlabel.mentions import Match

__all__ = ["ActiveCue", "active_cues", "assert_span", "POSITIVE", "NEGATIVE", "UNCERTAIN"]

POSITIVE, NEGATIVE, UNCERTAIN = "positive", "negative", "uncertain"


@dataclass(frozen=True, slots=True)
class ActiveCue:
    """A cue left after overlap resolution, with its token span."""

    cue: Cue
    index: int
    start: int
    end: int


def active_cues(matches: Sequence[Match], cues: Sequence[Cue]) -> list[ActiveCue]:
    """Resolve overlapping cue matches of one sentence: longest first, pseudo cancels.

    Returns the surviving negation, uncertainty and terminator cues sorted by position.
    """
    ordered = sorted(matches, key=lambda m: (m.start - m.end, m.start))
    taken: list[Match] = []
    for m in ordered:
        if any(m.start < t.end and t.start < m.end for t in taken):
            if cues[m.index].category != "pseudo":
                continue
            # a pseudo-trigger also cancels longer cues it overlaps, e.g. "not resolved"
            taken = [t for t in taken if not (m.start < t.end and t.start < m.end)]
        taken.append(m)
    out = [ActiveCue(cues[m.index], m.index, m.start, m.end) for m in taken if cues[m.index].category != "pseudo"]
    out.sort(key=lambda c: c.start)
    return out


def _covers(cue: ActiveCue, start: int, end: int, terminators: Sequence[ActiveCue]) -> int | None:
    """Token distance from ``cue`` to the span [start, end) if the cue's scope reaches it."""
    direction = cue.cue.direction
    window = cue.cue.window
    if direction in ("forward", "both"):
        before = cue.end <= start
        inside = start < cue.start and cue.end < end
        if before or inside:
            gap_end = start if before else cue.start
            lo, hi = cue.end, (start if before else end)
            distance = max(0, gap_end - cue.end) if before else 0
            if (window is None or distance < window) and not any(lo <= t.start < hi for t in terminators):
                return distance
    if direction in ("backward", "both"):
        after = cue.start >= end
        inside = start < cue.start and cue.end < end
        if after or inside:
            lo = end if after else start
            distance = cue.start - end if after else 0
            if (window is None or distance < window) and not any(lo <= t.start < cue.start for t in terminators):
                return distance
    return None


def assert_span(start: int, end: int, cues: Sequence[ActiveCue]) -> tuple[str, ActiveCue | None]:
    """Status of the mention at tokens [start, end) given its sentence's active cues."""
    terminators = [c for c in cues if c.cue.category == "terminate"]
    best_unc: tuple[int, ActiveCue] | None = None
    best_neg: tuple[int, ActiveCue] | None = None
    for c in cues:
        category = c.cue.category
        if category == "terminate" or (c.start < end and start < c.end and not (start < c.start and c.end < end)):
            continue  # terminators decide nothing; a cue overlapping the mention's words is part of it
        d = _covers(c, start, end, terminators)
        if d is None:
            continue
        if category == "uncertainty" and (best_unc is None or d < best_unc[0]):
            best_unc = (d, c)
        elif category == "negation" and (best_neg is None or d < best_neg[0]):
            best_neg = (d, c)
    if best_unc is not None:
        unc = best_unc[1]
        if best_neg is not None and _covers(best_neg[1], unc.start, unc.end, terminators) is not None:
            return NEGATIVE, best_neg[1]
        return UNCERTAIN, unc
    if best_neg is not None:
        return NEGATIVE, best_neg[1]
    return POSITIVE, None
