"""``cxr label``: label a table or folder of reports."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from cxrlabel.chexpert_format import OUTPUT_FORMATS
from cxrlabel.commands.options import (
    IdCol,
    Jobs,
    Lexicon,
    Output,
    Quiet,
    argument,
    cxr_command,
    option,
    path_option,
    resolve_jobs,
    split_names,
)
from cxrlabel.commands.output import print_result
from cxrlabel.vocab import HEDGE

__all__ = ["register", "label"]

Input = argument(
    Path,
    help="Reports: CSV, TSV, Parquet, JSONL, a folder of .txt files, or the CheXpert "
    "labeller's headerless CSV (one report per line).",
)
LabelsOutput = Output("Labels table to write (.csv, .tsv or .parquet).")
LabelIdCol = IdCol("the first of id, uid, report_id, study_id present, else the row number")
TextCols = option(
    list[str] | None,
    "--text-col",
    help="Text column; repeat to join several (e.g. findings, impression).",
    show_default="report, text, report_text or Reports; else findings + impression",
)
#: What the labels table holds (``LabelsWriter(output_format=...)``).
LabelFormat = Enum("LabelFormat", {name: name for name in OUTPUT_FORMATS}, type=str)
Format = option(
    LabelFormat,
    "--format",
    case_sensitive=False,
    help="cxrkit: id column, observations as 1/0/-1/empty, status. chexpert: exactly the "
    "CheXpert labeller's columns (Reports + its 14 observations as 1.0/0.0/-1.0/empty).",
)
Headerless = option(
    bool | None,
    "--headerless/--no-headerless",
    help="Read a CSV with no header, one report per line (the CheXpert labeller's input), "
    "or read the first line as a header.",
    show_default="detected from the first line",
)
Sections = option(
    str | None,
    "--sections",
    help="Comma-separated sections whose mentions count.",
    show_default="all but indication, history, comparison, technique",
)
Schema = option(str, "--schema", help="chexpert, chestxray14, or a schema YAML.")
Evidence = path_option("--evidence", "Write every mention with its rule id to this JSONL file.")
ChunkSize = option(int, "--chunk-size", min=1, help="Reports per chunk (bounds memory).")
#: How a graded hedge counts (``Labeler(borderline=..., probable=..., versus=...)``).
Hedge = Enum("Hedge", {word: word for word in HEDGE}, type=str)


def _hedge_option(flag: str, what: str) -> typer.models.OptionInfo:
    return typer.Option(
        flag,
        case_sensitive=False,
        help=f"How {what} counts: uncertain (-1, CheXpert) or positive (for a gold that codes "
        "it as present).",
    )


Borderline = Annotated[
    Hedge, _hedge_option("--borderline", "a borderline finding ('borderline cardiomegaly')")
]
Probable = Annotated[
    Hedge, _hedge_option("--probable", "a probable finding ('probable pneumonia', 'likely')")
]
Versus = Annotated[Hedge, _hedge_option("--versus", "each alternative of 'X versus Y'")]


@cxr_command(writes=("output", "evidence"))
def label(
    input: Input,
    output: LabelsOutput,
    text_col: TextCols = None,
    id_col: LabelIdCol = None,
    sections: Sections = None,
    schema: Schema = "chexpert",
    lexicon: Lexicon = None,
    evidence: Evidence = None,
    jobs: Jobs = 1,
    chunk_size: ChunkSize = 5000,
    quiet: Quiet = False,
    borderline: Borderline = Hedge.uncertain,
    probable: Probable = Hedge.uncertain,
    versus: Versus = Hedge.uncertain,
    output_format: Format = LabelFormat.cxrkit,
    headerless: Headerless = None,
) -> None:
    """Label chest X-ray reports: one row per report, 1 / 0 / -1 / empty per observation."""
    from cxrlabel.labelfile import label_file

    summary = label_file(
        input,
        output,
        text_cols=text_col or None,
        id_col=id_col,
        schema=schema,
        lexicon_dir=lexicon,
        sections=split_names(sections, "--sections"),
        evidence_path=evidence,
        jobs=resolve_jobs(jobs),
        chunk_size=chunk_size,
        progress=not quiet,
        borderline=borderline.value,
        probable=probable.value,
        versus=versus.value,
        output_format=output_format.value,
        headerless=headerless,
    )
    print_result(summary.text(warnings=False), warnings=summary.warnings(), quiet=quiet)


def register(app: typer.Typer) -> None:
    app.command("label")(label)
