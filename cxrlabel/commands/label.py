"""``cxr label``: label a table or folder of reports."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from cxrlabel.vocab import HEDGE

__all__ = ["register"]

#: How a graded hedge counts (``Labeler(borderline=..., probable=..., versus=...)``).
Hedge = Enum("Hedge", {word: word for word in HEDGE}, type=str)


def _hedge_option(flag: str, what: str) -> typer.models.OptionInfo:
    return typer.Option(
        flag,
        case_sensitive=False,
        help=f"How {what} counts: uncertain (-1, CheXpert) or positive (for a gold that codes it as present).",
    )


def label(
    input: Annotated[
        Path, typer.Argument(help="Reports: CSV, TSV, Parquet, JSONL, or a folder of .txt files.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Labels table to write (.csv or .parquet).")
    ],
    text_col: Annotated[
        list[str] | None,
        typer.Option(
            "--text-col", help="Text column; repeat to join several (e.g. findings, impression)."
        ),
    ] = None,
    id_col: Annotated[
        str | None,
        typer.Option("--id-col", help="Id column (default: id/uid if present, else row number)."),
    ] = None,
    sections: Annotated[
        str | None,
        typer.Option(
            "--sections",
            help="Comma-separated sections whose mentions count (default: all but indication/history/comparison/technique).",
        ),
    ] = None,
    schema: Annotated[
        str, typer.Option("--schema", help="chexpert, chestxray14, or a schema YAML path.")
    ] = "chexpert",
    lexicon: Annotated[
        Path | None,
        typer.Option("--lexicon", help="Folder of lexicon files overriding the packaged ones."),
    ] = None,
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", help="Write every mention with its rule id to this JSONL file."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 1,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Reports per chunk (bounds memory).")
    ] = 5000,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")
    ] = False,
    borderline: Annotated[
        Hedge, _hedge_option("--borderline", "a borderline finding ('borderline cardiomegaly')")
    ] = Hedge.uncertain,
    probable: Annotated[
        Hedge, _hedge_option("--probable", "a probable finding ('probable pneumonia', 'likely')")
    ] = Hedge.uncertain,
    versus: Annotated[
        Hedge, _hedge_option("--versus", "each alternative of 'X versus Y'")
    ] = Hedge.uncertain,
) -> None:
    """Label chest X-ray reports: one row per report, 1 / 0 / -1 / empty per observation."""
    from cxrlabel.cli import run_cli
    from cxrlabel.labelfile import label_file

    summary = run_cli(
        lambda: label_file(
            input,
            output,
            text_cols=text_col or None,
            id_col=id_col,
            schema=schema,
            lexicon_dir=lexicon,
            sections=[s.strip() for s in sections.split(",") if s.strip()] if sections else None,
            evidence_path=evidence,
            jobs=jobs,
            chunk_size=chunk_size,
            progress=not quiet,
            borderline=borderline.value,
            probable=probable.value,
            versus=versus.value,
        )
    )
    if not quiet:
        typer.echo(summary.text(), err=True)


def register(app: typer.Typer) -> None:
    app.command("label")(label)
