"""What commands print: Markdown kept when piped, tables drawn on a terminal, no NaN, 100 cols."""

from __future__ import annotations

import numpy as np
import pandas as pd
import typer
from typer.testing import CliRunner

from cxrlabel.commands.output import MISSING, frame_text, print_result, render

MARKDOWN = "summary line\n\n| observation | n | F1 |\n|---|---:|---:|\n| Edema | 3 | — |\n"


def test_piped_output_keeps_the_markdown():
    app = typer.Typer()

    @app.command()
    def show() -> None:
        print_result(MARKDOWN.rstrip(), ["note: a note"])

    result = CliRunner().invoke(app, [])
    assert result.stdout == MARKDOWN.rstrip() + "\n"
    assert result.stderr == "note: a note\n"


def test_quiet_drops_notes_not_results():
    app = typer.Typer()

    @app.command()
    def show() -> None:
        print_result("result", ["note"], quiet=True)

    result = CliRunner().invoke(app, [])
    assert result.stdout == "result\n" and result.stderr == ""


def test_a_terminal_gets_a_drawn_table_within_its_width():
    wide = "| a | b |\n|---|---|\n| " + "word " * 60 + "| x |"
    drawn = render(f"{MARKDOWN}\n{wide}", width=80)
    lines = drawn.splitlines()
    assert lines[0] == "summary line"
    assert "│ Edema       │ 3 │  — │" in drawn  # right-aligned as the Markdown says
    assert max(len(line) for line in lines) <= 80  # the long cell wraps
    assert "|---|" not in drawn


def test_frame_text_blanks_missing_values_and_wraps():
    frame = pd.DataFrame(
        {
            "rank": [1, 2],
            "id": ["a.png", "b.png"],
            "similarity": [0.98765, np.nan],
            "age": [61.0, np.nan],
            "sentence": ["a long sentence " * 12, None],
        }
    )
    text = frame_text(frame, width=100, whole=True)
    assert "NaN" not in text and "None" not in text and MISSING in text
    assert max(len(line) for line in text.splitlines()) <= 100
    header, first = text.splitlines()[:2]
    assert header.split()[:4] == ["rank", "id", "similarity", "age"]
    assert first.split()[:4] == ["1", "a.png", "0.988", "61"]
    assert frame_text(pd.DataFrame({"auroc": [1.0]})).split() == ["auroc", "1.000"]
