"""What commands print: results on stdout, progress and notes on stderr, tables that fit.

Every command prints its results (tables, counts, where files went) on **stdout** and
everything else (progress bars, notes, warnings, errors) on **stderr**, so
``cxr ... > result.txt`` keeps the results alone. On a terminal, Markdown tables in a result
are drawn as tables that fit the terminal's width (cells wrap instead of lines running off
screen); piped or redirected output keeps the Markdown as it is, for files and diffs.
Missing values print as "—", never ``NaN``.

Examples
--------
>>> import pandas as pd
>>> print(frame_text(pd.DataFrame({"id": ["a", "b"], "age": [61.0, None]}), whole=True))
id  age
a    61
b     —
"""

from __future__ import annotations

import io
import math
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MISSING", "print_result", "render", "frame_text", "cell", "counted", "closing_lines"]

#: How a missing value prints.
MISSING = "—"
#: Widest table drawn (columns), even on a wider terminal.
MAX_WIDTH = 100


def print_result(
    result: str,
    notes: Iterable[str] = (),
    *,
    warnings: Iterable[str] = (),
    quiet: bool = False,
    terminal: bool | None = None,
) -> None:
    """``result`` on stdout (tables drawn on a terminal); ``notes`` on stderr unless
    ``quiet``; ``warnings`` on stderr always."""
    if result:
        tty = sys.stdout.isatty() if terminal is None else terminal
        typer.echo(render(result, width=_width()) if tty else result)
    for line in [*warnings, *(() if quiet else notes)]:
        typer.echo(line, err=True)


def _width() -> int:
    return min(shutil.get_terminal_size((MAX_WIDTH, 24)).columns, MAX_WIDTH)


def render(text: str, width: int = MAX_WIDTH) -> str:
    """``text`` with each Markdown table drawn as a table at most ``width`` columns wide.

    Examples
    --------
    >>> print(render("counts:\\n| name | n |\\n|---|---:|\\n| Edema | 3 |", width=40))
    counts:
    ┏━━━━━━━┳━━━┓
    ┃ name  ┃ n ┃
    ┡━━━━━━━╇━━━┩
    │ Edema │ 3 │
    └───────┴───┘
    """
    out: list[str] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|") and line.rstrip().endswith("|"):
            block.append(line)
            continue
        if block:
            out.append(_draw(block, width))
            block = []
        out.append(line)
    return "\n".join(out[:-1])


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _draw(block: list[str], width: int) -> str:
    from rich import box
    from rich.table import Table

    header, *rows = block
    align = None
    if rows and set(rows[0].replace("|", "").replace(":", "").strip()) <= {"-"}:
        align = ["right" if c.endswith(":") else "left" for c in _cells(rows[0])]
        rows = rows[1:]
    names = _cells(header)
    table = Table(box=box.HEAVY_HEAD)
    for i, name in enumerate(names):
        justify = align[i] if align and i < len(align) else "left"
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        cells = _cells(row)
        table.add_row(*(cells + [""] * (len(names) - len(cells)))[: len(names)])
    return _to_text(table, width)


def _to_text(renderable: Any, width: int) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(
        renderable, crop=False
    )
    return buffer.getvalue().rstrip("\n")


def cell(value: Any, digits: int = 3) -> str:
    """One value as text: missing -> "—", floats to ``digits`` decimals.

    Examples
    --------
    >>> cell(float("nan")), cell(0.98765), cell(None), cell("x")
    ('—', '0.988', '—', 'x')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return MISSING
    except ImportError:  # pragma: no cover - pandas is a base dependency
        pass
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return f"{float(value):.{digits}f}"
    return str(value)


def _column(values: Sequence[Any], digits: int, whole: bool) -> list[str]:
    floats = [v for v in values if isinstance(v, float) and not math.isnan(v)]
    integral = whole and bool(floats) and all(v.is_integer() for v in floats)
    return [
        str(int(v)) if integral and isinstance(v, float) and not math.isnan(v) else cell(v, digits)
        for v in values
    ]


def frame_text(
    frame: pd.DataFrame, width: int = MAX_WIDTH, digits: int = 3, *, whole: bool = False
) -> str:
    """A DataFrame as plain aligned columns at most ``width`` wide (long cells wrap).

    Floats print with ``digits`` decimals; with ``whole``, a float column holding whole
    numbers only (an age with blanks) prints as integers.
    """
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style=None)
    columns = [_column(frame[c].astype(object).tolist(), digits, whole) for c in frame.columns]
    for name, values in zip(frame.columns, columns, strict=True):
        numeric = all(v == MISSING or _is_number(v) for v in values)
        table.add_column(str(name), justify="right" if numeric else "left", overflow="fold")
    for row in zip(*columns, strict=True):
        table.add_row(*row)
    lines = _to_text(table, width).splitlines()
    return "\n".join(line.rstrip() for line in lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def counted(heading: str, reasons: pd.Series) -> list[str]:
    """A blank line, ``heading`` and one ``  reason: count`` line per distinct reason (most
    frequent first): how a command's summary lists its excluded rows."""
    return ["", heading] + [
        f"  {reason}: {count}" for reason, count in reasons.value_counts().items()
    ]


def closing_lines(notes: Sequence[str], paths: Iterable[Any]) -> list[str]:
    """The end of a command's summary: its notes (when any) and the files it wrote."""
    lines = ["", "notes:"] + [f"  - {note}" for note in notes] if notes else []
    return [*lines, "", "wrote: " + ", ".join(str(p) for p in paths)]
