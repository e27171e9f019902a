"""One report from several text columns, and where each column's text sits in it.

A row's text columns are joined into the one text the labeller reads ("FINDINGS: ...
IMPRESSION: ..."): a column named like a report section keeps its title, so that section
rules apply, and columns are separated by a blank line, which ends a sentence. Evidence
offsets found in that joined text are mapped back to the column they came from by a
:class:`ColumnSpans`, so that ``table[column][row][column_start:column_end]`` is the matched
text, whatever the other columns held.

Examples
--------
>>> text, spans = join_with_spans(["Clear lungs.", None, "Small effusion."],
...                               ["findings", "notes", "impression"])
>>> text
'FINDINGS: Clear lungs.\\n\\nIMPRESSION: Small effusion.'
>>> start = text.index("effusion")
>>> spans.locate(start, start + len("effusion"))
('impression', 6, 14)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

__all__ = ["SECTION_COLUMNS", "ColumnSpans", "join_text_columns", "join_with_spans", "whole_column"]

#: Column names (any case) that are report sections: their text is prefixed with the title.
SECTION_COLUMNS = frozenset(
    {"findings", "impression", "indication", "history", "comparison", "technique", "conclusion"}
)
_SEPARATOR = "\n\n"


class ColumnSpans(NamedTuple):
    """Where each column's text starts and ends in a joined report (character offsets).

    A plain tuple of tuples, so that a chunk's spans cost little to send to a worker.
    """

    columns: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def locate(self, start: int, end: int) -> tuple[str | None, int | None, int | None]:
        """``(column, column_start, column_end)`` of the joined text's ``[start, end)``;
        ``(None, None, None)`` when it is not inside one column's text (a section title
        that the join added, or a span across two columns)."""
        for column, lo, hi in zip(self.columns, self.starts, self.ends, strict=True):
            if lo <= start and end <= hi:
                return column, start - lo, end - lo
        return None, None, None

    def annotate(self, records: Sequence[dict[str, Any]]) -> None:
        """Set ``column``, ``column_start`` and ``column_end`` of evidence records from
        their ``start`` / ``end`` (in place)."""
        if len(self.columns) == 1 and self.starts[0] == 0:  # one column, unchanged text
            column, end = self.columns[0], self.ends[0]
            for record in records:
                if record["end"] <= end:
                    record["column"] = column  # the offsets are start / end already
                else:
                    record["column"] = record["column_start"] = record["column_end"] = None
            return
        locate = self.locate
        for record in records:
            record["column"], record["column_start"], record["column_end"] = locate(
                record["start"], record["end"]
            )


def whole_column(name: str) -> ColumnSpans:
    """The spans of a report that is one column's text, unchanged (offsets are the same).

    Examples
    --------
    >>> whole_column("text").locate(3, 9)
    ('text', 3, 9)
    """
    return ColumnSpans((name,), (0,), (sys.maxsize,))


def join_with_spans(
    parts: Sequence[str | None], names: Sequence[str]
) -> tuple[str | None, ColumnSpans]:
    """Join the text cells of one row (see the module docstring); blank cells are left out.

    Returns the joined text (None when every cell is blank) and where each column's text
    sits in it.
    """
    pieces: list[str] = []
    columns: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    length = 0
    for name, text in zip(names, parts, strict=True):
        if not isinstance(text, str) or not text.strip():  # None, NaN or blank
            continue
        if pieces:
            length += len(_SEPARATOR)
        prefix = _title(name)
        columns.append(name)
        starts.append(length + len(prefix))
        length += len(prefix) + len(text)
        ends.append(length)
        pieces.append(prefix + text)
    text = _SEPARATOR.join(pieces) if pieces else None
    return text, ColumnSpans(tuple(columns), tuple(starts), tuple(ends))


def join_text_columns(parts: Sequence[str | None], names: Sequence[str]) -> str | None:
    """The joined text of :func:`join_with_spans` alone (the labelling path: no spans).

    Examples
    --------
    >>> join_text_columns(["Clear lungs.", None], ["findings", "impression"])
    'FINDINGS: Clear lungs.'
    """
    pieces = [
        _title(name) + text
        for name, text in zip(names, parts, strict=True)
        if isinstance(text, str) and text.strip()
    ]
    return _SEPARATOR.join(pieces) if pieces else None


@lru_cache(maxsize=256)
def _title(name: str) -> str:
    """``"FINDINGS: "`` for a section column (:data:`SECTION_COLUMNS`), else ``""``."""
    title = name.strip().lower()
    return f"{title.upper()}: " if title in SECTION_COLUMNS else ""
