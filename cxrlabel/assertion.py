"""Assertion status of a mention from the cues of its sentence (NegEx / ConText scopes).

Rules, in order:

1. Overlapping cues: the longest wins. Cues of equal length that overlap all stay active
   ("lungs *are clear of* effusion": backward "are clear" and forward "clear of" both
   negate), except that a pseudo-trigger ("no increase") wins a tie and cancels every
   cue it overlaps that is not longer than itself.
2. A forward cue covers tokens after it, a backward cue tokens before it, up to the sentence
   edge, the cue's ``window`` or the first terminator ("but", ";") on that side. A
   terminator's own direction says which scopes it stops: "with" stops only backward cues
   ("cardiomegaly *with* normal vasculature"), so "may represent changes *with* fibrosis"
   stays uncertain. A cue that sits inside a gapped mention ("heart is *not* enlarged")
   covers that mention.
3. Uncertainty is checked before negation: "cannot exclude pneumonia" is uncertain. Two
   exceptions make the negation govern: a negation cue before the uncertainty cue that
   covers it ("no findings to *suggest* pneumonia", "not *likely*"), and a negation cue
   between the uncertainty cue and the mention, which starts a new clause ("*possible*
   effusion, *without* pneumothorax").
4. Otherwise the mention is positive. The nearest deciding cue gives the rule id; a positive
   mention reports the nearest pseudo-trigger of its clause ("*no increase* in effusion"), so
   the evidence says why a cue word did not negate it.

Hedges come in five categories, all of which make the status uncertain: ``uncertainty``
("possible", "may represent"), three graded ones that a labeller option may count as
present for a gold that codes them (``probable``: "likely", "probably"; ``borderline``: a
size at the limit of normal; ``versus``: the alternatives of "X versus Y"), and
``hypothetical`` (a finding named as something to look for: "to evaluate for", "if
clinically indicated"). When several cover a mention, a plain uncertainty cue names the
rule before a graded one, and a hypothetical cue comes last; the nearest wins within a
rank.

Temporality and hypotheticals are a second, independent dimension (ConText's): a
``historical`` ("history of") or ``hypothetical`` cue covering a mention that is not
negated says the mention is not a finding of this image (:func:`context_cue`). A statement
of persistence or change in the same clause (a pseudo-trigger: "unchanged", "again seen",
"improved") cancels a historical cue, since it describes the finding as it is now.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

from cxrlabel.aggregate import NEGATIVE, POSITIVE, UNCERTAIN
from cxrlabel.lexicon import Cue
from cxrlabel.mentions import Match

__all__ = [
    "ActiveCue",
    "SentenceCues",
    "active_cues",
    "assert_span",
    "context_cue",
    "HEDGES",
    "CONTEXTS",
    "MAX_SCOPE",
    "POSITIVE",
    "NEGATIVE",
    "UNCERTAIN",
]

#: Cue categories that make a mention uncertain.
HEDGES = ("uncertainty", "probable", "borderline", "versus", "hypothetical")
#: Which hedge names the rule when several cover a mention (lower first, then the nearest):
#: a plain hedge beats a graded one, so "possible X versus Y" stays uncertain whatever the
#: graded hedges count as, and a hypothetical cue names the rule last.
_HEDGE_RANK = {"uncertainty": 0, "probable": 1, "borderline": 1, "versus": 1, "hypothetical": 2}
#: Cue categories that make a mention not a current finding (unless it is negated).
CONTEXTS = ("historical", "hypothetical")
#: The farthest any cue reaches, in tokens between the cue and the mention (a cue's own
#: ``window`` may be shorter). It bounds the work per mention, so that a pathological
#: sentence (100 KB without a full stop) costs time linear in its length instead of
#: mentions x cues. Real sentences do not come near it: the IU dev reports and the engine
#: test corpus get the same labels and evidence with a bound of 30 as with none.
MAX_SCOPE = 60


class ActiveCue(NamedTuple):
    """A cue left after overlap resolution, with its token span."""

    cue: Cue
    index: int
    start: int
    end: int


def active_cues(matches: Sequence[Match], cues: Sequence[Cue]) -> list[ActiveCue]:
    """Resolve overlapping cue matches of one sentence (rule 1 of the module docstring).

    Returns the surviving negation, uncertainty, pseudo and terminator cues sorted by
    position. Pseudo cues decide nothing; they are kept so the evidence can name them.

    Examples
    --------
    >>> from cxrlabel.lexicon import Cue
    >>> cues = [Cue("neg.post.x", "negation", "backward", ("are clear",)),
    ...         Cue("neg.pre.x", "negation", "forward", ("clear of",))]
    >>> [c.cue.rule_id for c in active_cues([Match("cue", 0, 1, 3), Match("cue", 1, 2, 4)], cues)]
    ['neg.post.x', 'neg.pre.x']
    """
    if len(matches) == 1 or _disjoint(matches):
        out = [ActiveCue(cues[m.index], m.index, m.start, m.end) for m in matches]
        out.sort(key=lambda c: c.start)
        return out
    ordered = sorted(
        matches, key=lambda m: (m.start - m.end, cues[m.index].category != "pseudo", m.start)
    )
    taken: list[Match] = []
    alive: list[bool] = []
    # token -> positions in ``taken`` of the cues that cover it: the cues a new one overlaps
    # are found from its own tokens, not by comparing it with every cue taken so far.
    covering: dict[int, list[int]] = {}
    for m in ordered:
        length = m.end - m.start
        overlapping = {
            i for tok in range(m.start, m.end) for i in covering.get(tok, ()) if alive[i]
        }
        if any(taken[i].end - taken[i].start > length for i in overlapping):
            continue  # a longer cue already owns these words
        if any(cues[taken[i].index].category == "pseudo" for i in overlapping):
            continue  # an equal-length pseudo-trigger wins the tie
        if overlapping and cues[m.index].category == "pseudo":
            for i in overlapping:
                alive[i] = False
        for tok in range(m.start, m.end):
            covering.setdefault(tok, []).append(len(taken))
        taken.append(m)
        alive.append(True)
    out = [
        ActiveCue(cues[m.index], m.index, m.start, m.end)
        for m, a in zip(taken, alive, strict=True)
        if a
    ]
    out.sort(key=lambda c: c.start)
    return out


def _disjoint(matches: Sequence[Match]) -> bool:
    """Whether no two matches share a token (the common case: nothing to resolve)."""
    spans = sorted((m.start, m.end) for m in matches)
    return all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


class SentenceCues:
    """The active cues of one sentence, indexed by position, and the scope rules over them.

    Every rule looks only at the cues within :data:`MAX_SCOPE` tokens of the mention and at
    the terminators between, both found by bisection: the cost per mention does not grow
    with the length of the sentence.

    Examples
    --------
    >>> from cxrlabel.lexicon import Cue
    >>> no = ActiveCue(Cue("neg.pre.no", "negation", "forward", ("no",)), 0, 0, 1)
    >>> SentenceCues([no]).status(1, 2)[0]  # "no effusion"
    'negative'
    """

    __slots__ = ("cues", "_starts", "_longest", "_terminators", "_term_starts")

    def __init__(self, cues: Sequence[ActiveCue]) -> None:
        self.cues = sorted(cues, key=lambda c: c.start)  # stable: equal starts keep their order
        self._starts = [c.start for c in self.cues]
        self._longest = max((c.end - c.start for c in self.cues), default=0)
        self._terminators = [c for c in self.cues if c.cue.category == "terminate"]
        self._term_starts = [t.start for t in self._terminators]

    def near(self, start: int, end: int) -> list[ActiveCue]:
        """Cues that end after ``start - MAX_SCOPE`` and start before ``end + MAX_SCOPE``:
        the only ones whose scope can reach tokens [start, end)."""
        lo = bisect.bisect_left(self._starts, start - MAX_SCOPE - self._longest + 1)
        hi = bisect.bisect_left(self._starts, end + MAX_SCOPE)
        reach = start - MAX_SCOPE
        return [c for c in self.cues[lo:hi] if c.end > reach]

    def blocked(self, lo: int, hi: int, direction: str = "both") -> bool:
        """Whether a terminator that stops ``direction`` scopes starts in tokens [lo, hi)."""
        first = bisect.bisect_left(self._term_starts, lo)
        last = bisect.bisect_left(self._term_starts, hi)
        return any(t.cue.direction in (direction, "both") for t in self._terminators[first:last])

    def covers(self, cue: ActiveCue, start: int, end: int, literal: bool = False) -> int | None:
        """Token distance from ``cue`` to the span [start, end) if the cue's scope reaches it.

        A cue that starts before the span (even if it overlaps the span's first words, as
        "no acute" does in "no acute fracture") can cover it forward; a cue that ends after
        the span can cover it backward. A cue strictly inside the span covers it (the gap of
        "heart is not enlarged"); a cue touching the span's edge from inside is part of the
        phrase ("normal" in "normal heart size") and covers nothing. With ``literal``, every
        cue that starts inside the span is part of it ("were *normal* in appearance" for the
        target "mucosa was normal").
        """
        if literal and start <= cue.start < end:
            return None
        direction = cue.cue.direction
        window = MAX_SCOPE if cue.cue.window is None else min(cue.cue.window, MAX_SCOPE)
        inside = start < cue.start and cue.end < end
        if direction in ("forward", "both") and (cue.start < start or inside):
            distance = 0 if inside else max(0, start - cue.end)
            if distance < window and (inside or not self.blocked(cue.end, start, "forward")):
                return distance
        if direction in ("backward", "both") and (cue.end > end or inside):
            distance = 0 if inside else max(0, cue.start - end)
            if distance < window and (inside or not self.blocked(end, cue.start, "backward")):
                return distance
        return None

    def nearest_pseudo(
        self, start: int, end: int, near: Sequence[ActiveCue] | None = None
    ) -> ActiveCue | None:
        """The closest pseudo-trigger in the mention's clause (no terminator in between)."""
        best: tuple[int, ActiveCue] | None = None
        for c in self.near(start, end) if near is None else near:
            if c.cue.category != "pseudo" or (c.start < end and start < c.end):
                continue  # a pseudo-trigger inside the mention is part of its words
            if c.end <= start:
                distance, lo, hi = start - c.end, c.end, start
            else:
                distance, lo, hi = c.start - end, end, c.start
            if (
                distance < MAX_SCOPE
                and (best is None or distance < best[0])
                and not self.blocked(lo, hi)
            ):
                best = (distance, c)
        return best[1] if best else None

    def _governs(self, neg: ActiveCue, unc: ActiveCue) -> bool:
        """Whether a negation placed before a hedge covers it ("no findings to *suggest*")."""
        return neg.end <= unc.start and self.covers(neg, unc.start, unc.end) is not None

    def status(self, start: int, end: int, literal: bool = False) -> tuple[str, ActiveCue | None]:
        """Status of the mention at tokens [start, end) (rules 2-4): see :func:`assert_span`."""
        near = self.near(start, end)
        best_unc: tuple[tuple[int, int], ActiveCue] | None = None
        best_neg: tuple[int, ActiveCue] | None = None
        for c in near:
            category = c.cue.category
            if category != "negation" and category not in HEDGES:
                continue  # terminators, pseudo-triggers and historical cues decide no status
            d = self.covers(c, start, end, literal)
            if d is None:
                continue
            if category == "negation":
                if best_neg is None or d < best_neg[0]:
                    best_neg = (d, c)
                continue
            key = (_HEDGE_RANK[category], d)
            if best_unc is None or key < best_unc[0]:
                best_unc = (key, c)
        if best_unc is not None:
            unc, neg = best_unc[1], best_neg
            if neg is not None and (
                _between(neg[1], unc, start, end) or self._governs(neg[1], unc)
            ):
                return NEGATIVE, neg[1]
            return UNCERTAIN, unc
        if best_neg is not None:
            return NEGATIVE, best_neg[1]
        return POSITIVE, self.nearest_pseudo(start, end, near)

    def context(self, start: int, end: int) -> ActiveCue | None:
        """The nearest historical or hypothetical cue reaching [start, end): see :func:`context_cue`."""
        near = self.near(start, end)
        best: tuple[int, ActiveCue] | None = None
        described_now: bool | None = None  # is there a pseudo-trigger in the clause? (lazy)
        for c in near:
            if c.cue.category not in CONTEXTS:
                continue
            d = self.covers(c, start, end)
            if d is None or (best is not None and d >= best[0]):
                continue
            if c.cue.category == "historical":
                if described_now is None:
                    described_now = self.nearest_pseudo(start, end, near) is not None
                if described_now:
                    continue
            best = (d, c)
        return best[1] if best else None


def _between(neg: ActiveCue, unc: ActiveCue, start: int, end: int) -> bool:
    """Whether a negation sits between a hedge and the mention ("*possible* X, *without* Y")."""
    return (unc.end <= neg.start and neg.end <= start) or (
        end <= neg.start and neg.end <= unc.start
    )


def assert_span(
    start: int, end: int, cues: Sequence[ActiveCue], *, literal: bool = False
) -> tuple[str, ActiveCue | None]:
    """Status of the mention at tokens [start, end) given its sentence's active cues.

    ``literal=True`` treats the span as a free-text target whose own words are never cues
    of it: "mucosa is moist with no erythema" is affirmed as a whole (NegEx's convention for
    annotated conditions). Lexicon mentions need the default, where a cue in the gap of
    "heart is not enlarged" or the "no acute" of "no acute fracture" decides. Of cues at
    equal distance, the first by position names the rule.

    Examples
    --------
    >>> from cxrlabel.lexicon import Cue
    >>> no = ActiveCue(Cue("neg.pre.no", "negation", "forward", ("no",)), 0, 0, 1)
    >>> status, cue = assert_span(1, 2, [no])  # "no effusion"
    >>> status, cue.cue.rule_id
    ('negative', 'neg.pre.no')
    """
    return SentenceCues(cues).status(start, end, literal)


def context_cue(start: int, end: int, cues: Sequence[ActiveCue]) -> ActiveCue | None:
    """The nearest historical or hypothetical cue whose scope reaches [start, end), or None.

    Call it for mentions that are not negated: a negated finding is absent now whatever its
    time. A historical cue does not count when a pseudo-trigger of the mention's clause
    ("unchanged", "again seen", "improved") says how the finding is now.

    Examples
    --------
    >>> from cxrlabel.lexicon import Cue
    >>> hx = ActiveCue(Cue("hist.pre.history_of", "historical", "forward", ("history of",)), 0, 0, 2)
    >>> context_cue(2, 3, [hx]).cue.rule_id  # "history of pneumonia"
    'hist.pre.history_of'
    """
    return SentenceCues(cues).context(start, end)
