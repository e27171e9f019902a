"""``cxr validate``: score a labels table against curated labels (or assertions on sentences)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


class GoldSemantics(str, Enum):
    positive_only = "positive-only"
    full = "full"


class UncertainAs(str, Enum):
    positive = "positive"
    negative = "negative"
    ignore = "ignore"


def validate(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Folder for metrics.md/.csv/.json, noise.json, errors.csv, f1.png.",
        ),
    ],
    pred: Annotated[
        Path | None,
        typer.Argument(help="Labels table from `cxr label` (CSV, TSV or Parquet)."),
    ] = None,
    gold: Annotated[
        Path | None,
        typer.Argument(help="Curated labels: id column + one column per observation."),
    ] = None,
    id_col: Annotated[str, typer.Option("--id-col", help="Id column of the predictions.")] = "id",
    gold_id_col: Annotated[
        str | None,
        typer.Option("--gold-id-col", help="Id column of the gold table (default: --id-col)."),
    ] = None,
    label_map: Annotated[
        str | None,
        typer.Option("--map", help="Label map name (e.g. chestxray14_to_chexpert) or YAML path."),
    ] = None,
    gold_semantics: Annotated[
        GoldSemantics,
        typer.Option(
            "--gold-semantics",
            help="full: gold is 1/0/-1/blank; positive-only: 1 = present, 0/blank = not coded.",
        ),
    ] = GoldSemantics.positive_only,
    uncertain_as: Annotated[
        UncertainAs,
        typer.Option(
            "--uncertain-as",
            help="How -1 counts in positive-vs-rest scores (both choices are summarised).",
        ),
    ] = UncertainAs.positive,
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap", min=0, help="Bootstrap resamples for 95% intervals; 0 disables."
        ),
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    evidence: Annotated[
        Path | None,
        typer.Option(
            "--evidence", help="Evidence JSONL from `cxr label --evidence`, for errors.csv."
        ),
    ] = None,
    gold_prefix: Annotated[
        str | None,
        typer.Option(
            "--gold-prefix", help="Only gold columns with this prefix are labels (e.g. gold_)."
        ),
    ] = None,
    observations: Annotated[
        str | None,
        typer.Option(
            "--observations",
            help="Comma-separated observations to score (default: every gold label).",
        ),
    ] = None,
    assertions: Annotated[
        Path | None,
        typer.Option(
            "--assertions",
            help="Assertion mode: a table of sentence / target / status, scored through the "
            "labeller's assertion step (PRED and GOLD are then not given).",
        ),
    ] = None,
    schema: Annotated[
        str, typer.Option("--schema", help="Assertion mode: schema of the labeller.")
    ] = "chexpert",
    lexicon: Annotated[
        Path | None,
        typer.Option("--lexicon", help="Assertion mode: folder overriding the lexicons."),
    ] = None,
    sentence_col: Annotated[
        str, typer.Option("--sentence-col", help="Assertion mode: sentence column.")
    ] = "sentence",
    target_col: Annotated[
        str, typer.Option("--target-col", help="Assertion mode: target phrase column.")
    ] = "target",
    status_col: Annotated[
        str,
        typer.Option(
            "--status-col",
            help="Assertion mode: gold status column (positive/negative/uncertain, Affirmed/Negated/Possible or 1/0/-1).",
        ),
    ] = "status",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print the table.")] = False,
) -> None:
    """Score labels against curated labels: per-observation P/R/F1 with 95% CIs, kappa, noise.json.

    Label mode: cxr validate PRED GOLD -o DIR. Assertion mode: cxr validate --assertions TABLE -o DIR.
    """
    from cxrlabel.cli import run_cli
    from cxrlabel.errors import InputError

    def run() -> str:
        if assertions is not None:
            if pred is not None or gold is not None:
                raise InputError(
                    "--assertions scores a sentence table on its own; do not also give PRED and GOLD"
                )
            from cxrlabel.validation.assertions import validate_assertions

            result = validate_assertions(
                assertions,
                output,
                schema=schema,
                lexicon_dir=lexicon,
                sentence_col=sentence_col,
                target_col=target_col,
                status_col=status_col,
                progress=not quiet,
            )
            return result.to_markdown()
        if pred is None or gold is None:
            raise InputError(
                "give PRED and GOLD tables (or --assertions TABLE); see `cxr validate --help`"
            )
        from cxrlabel.validation.labels import validate as run_validation

        result = run_validation(
            pred,
            gold,
            output,
            id_col=id_col,
            gold_id_col=gold_id_col,
            label_map=label_map,
            gold_semantics=gold_semantics.value,
            uncertain_as=uncertain_as.value,
            bootstrap=bootstrap,
            evidence=evidence,
            seed=seed,
            gold_prefix=gold_prefix,
            observations=[o.strip() for o in observations.split(",") if o.strip()]
            if observations
            else None,
        )
        return result.to_markdown()

    text = run_cli(run)
    if not quiet:
        typer.echo(text)
    typer.echo(f"wrote {output}", err=True)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
