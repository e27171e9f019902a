"""The CheXpert labeller's files: its headerless input and its output columns.

The CheXpert labeller (Irvin et al. 2019, ``stanfordmlgroup/chexpert-labeler``) reads a CSV
with no header, one report per line, each line a report that is quoted (CSV quoting, so it
may hold commas, ``""`` quotes and line breaks) or not (the whole line is the report). It
writes ``Reports`` (the report as read) and its 14 observations, in :data:`OBSERVATIONS`
order, as ``1.0`` / ``0.0`` / ``-1.0`` / blank. ``cxr label --format chexpert`` writes exactly
those columns; ``--headerless`` (or detection, :func:`looks_headerless`) reads that input.

Examples
--------
>>> list(headerless_reports(['"Mild edema, no effusion."\\n', '\\n', 'No pneumothorax\\n'], "r.csv"))
[(1, 'Mild edema, no effusion.'), (3, 'No pneumothorax')]
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from cxrlabel.errors import InputError

__all__ = [
    "REPORTS",
    "OBSERVATIONS",
    "COLUMNS",
    "OUTPUT_FORMATS",
    "headerless_reports",
    "looks_headerless",
    "observation_order",
]

#: The CheXpert labeller's report column (input and output).
REPORTS = "Reports"
#: Its observations in the order of its output header (``CATEGORIES`` in its constants).
OBSERVATIONS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
#: Its output header.
COLUMNS = (REPORTS, *OBSERVATIONS)
#: Formats of a labels table (``cxr label --format``): cxrkit's own, or the CheXpert
#: labeller's columns.
OUTPUT_FORMATS = ("cxrkit", "chexpert")
_QUOTE = '"'


def headerless_reports(lines: Iterable[str], where: object) -> Iterator[tuple[int, str]]:
    """``(line number, report)`` for each report of a headerless file, in order.

    A line that starts with ``"`` is one CSV-quoted report (``""`` is a quote; it may run
    over several lines); any other line is the report, whole (commas included). Empty lines
    are not reports. Raises :class:`InputError` naming the line for a quote that is never
    closed or text after a closing quote.
    """
    it = iter(enumerate(lines, 1))
    for number, line in it:
        if number == 1:
            line = line.removeprefix("\ufeff")  # a UTF-8 byte-order mark (Excel)
        body = line.rstrip("\r\n")
        if not body:
            continue
        if not body.startswith(_QUOTE):
            yield number, body
            continue
        pieces: list[str] = []
        rest, at = line[1:], number
        while True:
            text, closed, tail = _quoted_part(rest)
            pieces.append(text)
            if closed:
                break
            nxt = next(it, None)
            if nxt is None:
                raise InputError(
                    f"{where}:{number}: the quoted report that starts on line {number} is never "
                    "closed (a '\"' is missing). Fix: close the quote, or write a quote inside "
                    'a report as ""'
                )
            at, rest = nxt
        if tail.strip():
            raise InputError(
                f"{where}:{at}: text after the closing quote of a report ({tail.strip()[:40]!r}). "
                'Fix: write a quote inside a report as "", or leave the line unquoted'
            )
        yield number, "".join(pieces)


def _quoted_part(rest: str) -> tuple[str, bool, str]:
    """``(text, closed, tail)`` of a quoted report's line after its opening quote."""
    pieces: list[str] = []
    i = 0
    while True:
        j = rest.find(_QUOTE, i)
        if j < 0:
            pieces.append(rest[i:])
            return "".join(pieces), False, ""
        if rest.startswith(_QUOTE, j + 1):  # "" is one quote
            pieces.append(rest[i : j + 1])
            i = j + 2
            continue
        pieces.append(rest[i:j])
        return "".join(pieces), True, rest[j + 1 :].rstrip("\r\n")


def looks_headerless(path: str | Path, sep: str, known: Iterable[str]) -> bool:
    """Whether a delimited file's first line is a report rather than a header.

    It is when, read as a record, it has one field that is not a ``known`` column name and
    reads as prose: three words or more (separated by spaces), or a sentence ending in a
    full stop. (A header of one column is a single name: ``report``, ``Reports``, ``text``;
    a header of another separator, ``id<TAB>findings<TAB>impression``, has no spaces.)

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text('"No acute cardiopulmonary process."\\n')
    >>> looks_headerless(p, ",", ["report"])
    True
    >>> _ = p.write_text('report\\nNo effusion.\\n')
    >>> looks_headerless(p, ",", ["report"])
    False
    """
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        try:
            first = next(csv.reader(fh, delimiter=sep), [])
        except csv.Error:  # not a record at all: the table reader says what is wrong
            return False
    if len(first) != 1:
        return False
    field = first[0].strip()
    if not field or field in set(known):
        return False
    # words are split at spaces only: "id<TAB>findings<TAB>impression" is a TSV header
    return sum(1 for word in field.split(" ") if word) >= 3 or field.endswith(".")


def observation_order(names: Sequence[str], schema: object) -> list[int]:
    """Index in ``names`` (a schema's columns) of each CheXpert observation, in its order.

    Raises :class:`InputError` (one line) when the schema's observations are not CheXpert's.

    Examples
    --------
    >>> observation_order(["Atelectasis", "Cardiomegaly"], "chestxray14")
    Traceback (most recent call last):
    ...
    cxrlabel.errors.InputError: --format chexpert writes the CheXpert labeller's 14 observations, but schema 'chestxray14' has 2 observations of which 2 are CheXpert's (missing: No Finding, Enlarged Cardiomediastinum, Lung Lesion, ...). Fix: use --schema chexpert (or a schema with those 14 names), or leave out --format
    """
    position = {name: i for i, name in enumerate(names)}
    missing = [name for name in OBSERVATIONS if name not in position]
    extra = [name for name in names if name not in OBSERVATIONS]
    if missing or extra:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        details = [f"missing: {shown}"] if missing else []
        if extra:
            details.append(
                "not CheXpert's: " + ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
            )
        raise InputError(
            f"--format chexpert writes the CheXpert labeller's {len(OBSERVATIONS)} observations, "
            f"but schema {str(schema)!r} has {len(names)} observations of which "
            f"{len(names) - len(extra)} are CheXpert's ({'; '.join(details)}). Fix: use "
            f"--schema chexpert (or a schema with those {len(OBSERVATIONS)} names), or leave "
            "out --format"
        )
    return [position[name] for name in OBSERVATIONS]
