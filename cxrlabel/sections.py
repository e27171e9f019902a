"""Report sections: find titles such as ``FINDINGS:`` and give each character its section.

Radiology reports put the reason for the exam (indication, history) next to the findings;
a finding named in the indication ("rule out pneumonia") is not a finding of the exam, so
the labeller needs to know where each mention sits.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from cxrlabel.lexicon import SectionRules

__all__ = ["SectionFinder", "Sections"]


@dataclass(frozen=True)
class Sections:
    """Section starts (character offsets, ascending) and names; ``None`` before any title."""

    starts: tuple[int, ...]
    names: tuple[str | None, ...]

    def at(self, char: int) -> str | None:
        """Section name of the character at offset ``char``."""
        i = bisect.bisect_right(self.starts, char) - 1
        return self.names[i] if i >= 0 else None


class SectionFinder:
    """Find section titles: a known title at a line start or after a sentence end, then ``:``.

    Examples
    --------
    >>> from cxrlabel.lexicon import load_sections
    >>> finder = SectionFinder(load_sections())
    >>> s = finder("INDICATION: cough. FINDINGS: No effusion.")
    >>> s.at(13), s.at(30)
    ('indication', 'findings')
    """

    def __init__(self, rules: SectionRules) -> None:
        self.rules = rules
        self._longest = max((len(t) for t in rules.titles), default=1) + 8

    def __call__(self, text: str) -> Sections:
        starts: list[int] = [0]
        names: list[str | None] = [None]
        titles = self.rules.titles
        pos = text.find(":")
        while pos >= 0:
            # The title runs from the previous line start / sentence end to the colon.
            window = max(0, pos - self._longest)
            lo = max(
                text.rfind(".", window, pos),
                text.rfind("\n", window, pos),
                text.rfind(";", window, pos),
            )
            if lo >= 0 or window == 0:
                raw = text[lo + 1 : pos]
                name = titles.get(" ".join(raw.lower().split()))
                if name is not None:
                    starts.append(lo + 1 + len(raw) - len(raw.lstrip()))
                    names.append(name)
            pos = text.find(":", pos + 1)
        return Sections(tuple(starts), tuple(names))

    def skipped(self, section: str | None) -> bool:
        """Whether mentions in ``section`` are excluded by default."""
        return section in self.rules.skip
