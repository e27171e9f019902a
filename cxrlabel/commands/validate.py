"""``cxr validate``: score a labels table against curated labels (or assertions on sentences)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from cxrlabel.commands.options import (
    Bootstrap,
    Dpi,
    FigureFormat,
    IdCol,
    Lexicon,
    Output,
    Quiet,
    Renamed,
    Uncertain,
    argument,
    cxr_command,
    figure_options,
    option,
    path_option,
    split_names,
    text_option,
    uncertain_word,
)
from cxrlabel.commands.output import print_result
from cxrlabel.figures import DEFAULT_DPI

__all__ = ["register", "validate"]


class GoldSemantics(str, Enum):
    positive_only = "positive-only"
    full = "full"


class UncertainAs(str, Enum):
    """Values of the former ``--uncertain-as`` (now ``--uncertain``)."""

    positive = "positive"
    negative = "negative"
    ignore = "ignore"


ValidationOutput = Output(
    "Folder for metrics.md/.csv/.json, noise.json, errors.csv, f1.png (or .svg/.pdf)."
)
Pred = argument(Path | None, help="Labels table from `cxr label` (CSV, TSV or Parquet).")
Gold = argument(Path | None, help="Curated labels: id column + one column per observation.")
PredIdCol = IdCol("the first of id, uid, report_id, study_id present")
GoldIdCol = text_option(
    "--gold-id-col",
    "Id column of the gold table.",
    show_default="--id-col's name if the gold has it, else found as for --id-col",
)
LabelMap = text_option("--map", "Label map name (e.g. chestxray14_to_chexpert) or YAML path.")
Semantics = option(
    GoldSemantics,
    "--gold-semantics",
    help="full: gold is 1/0/-1/blank; positive-only: 1 = present, 0/blank = not coded.",
)
Seed = option(int, "--seed", help="Bootstrap seed.")
Evidence = path_option("--evidence", "Evidence JSONL from `cxr label --evidence`, for errors.csv.")
GoldPrefix = text_option(
    "--gold-prefix", "Only gold columns with this prefix are labels (e.g. gold_)."
)
Observations = text_option(
    "--observations", "Comma-separated observations to score.", show_default="every gold label"
)
Assertions = path_option(
    "--assertions",
    "Assertion mode: a table of sentence / target / status, scored through the labeller's assertion step (no PRED and GOLD).",
)
Schema = option(str, "--schema", help="Assertion mode: schema of the labeller.")
SentenceCol = option(str, "--sentence-col", help="Assertion mode: sentence column.")
TargetCol = option(str, "--target-col", help="Assertion mode: target phrase column.")
StatusCol = option(
    str,
    "--status-col",
    help="Assertion mode: gold status column (positive/negative/uncertain, "
    "Affirmed/Negated/Possible or 1/0/-1).",
)

_LABEL_MODE = (
    "id_col",
    "gold_id_col",
    "label_map",
    "gold_semantics",
    "uncertain",
    "renamed_uncertain_as",
    "bootstrap",
    "seed",
    "evidence",
    "gold_prefix",
    "observations",
    "format",
    "dpi",
)
_ASSERTION_MODE = ("schema", "lexicon", "sentence_col", "target_col", "status_col")


@cxr_command(Renamed("--uncertain-as", "uncertain", UncertainAs, convert=lambda v: v.value))
def validate(
    ctx: typer.Context,
    output: ValidationOutput,
    pred: Pred = None,
    gold: Gold = None,
    id_col: PredIdCol = None,
    gold_id_col: GoldIdCol = None,
    label_map: LabelMap = None,
    gold_semantics: Semantics = GoldSemantics.positive_only,
    uncertain: Uncertain = "positive",
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
    evidence: Evidence = None,
    gold_prefix: GoldPrefix = None,
    observations: Observations = None,
    assertions: Assertions = None,
    schema: Schema = "chexpert",
    lexicon: Lexicon = None,
    sentence_col: SentenceCol = "sentence",
    target_col: TargetCol = "target",
    status_col: StatusCol = "status",
    format: FigureFormat = None,
    dpi: Dpi = DEFAULT_DPI,
    quiet: Quiet = False,
) -> None:
    """Score labels against curated labels: per-observation P/R/F1 with 95% CIs, kappa, noise.json.

    Label mode: cxr validate PRED GOLD -o DIR. Assertion mode: --assertions TABLE -o DIR."""
    _check_mode(ctx, pred, gold, assertions)
    figures = figure_options(format, dpi)  # checked before any work
    if assertions is not None:
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
    else:
        from cxrlabel.validation.labels import validate as run_validation

        result = run_validation(
            pred,
            gold,
            output,
            id_col=id_col,
            gold_id_col=gold_id_col,
            label_map=label_map,
            gold_semantics=gold_semantics.value,
            uncertain_as=uncertain_word(uncertain),
            bootstrap=bootstrap,
            evidence=evidence,
            seed=seed,
            gold_prefix=gold_prefix,
            observations=split_names(observations, "--observations"),
            **figures,
        )
    print_result(f"{result.to_markdown().rstrip()}\n\nwrote: {output}", quiet=quiet)


def _check_mode(
    ctx: typer.Context, pred: Path | None, gold: Path | None, assertions: Path | None
) -> None:
    """One mode at a time, and no option of the other mode (it would be ignored)."""
    from cxrlabel.errors import InputError

    if assertions is not None and (pred is not None or gold is not None):
        raise InputError(
            "--assertions scores a sentence table on its own; do not also give PRED and GOLD"
        )
    if assertions is None and (pred is None or gold is None):
        raise InputError(
            "give PRED and GOLD tables (or --assertions TABLE); see `cxr validate --help`"
        )
    other = _LABEL_MODE if assertions is not None else _ASSERTION_MODE
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name in other and _given(ctx, param.name)
    ]
    if given:
        mode = "assertion mode (--assertions)" if assertions is not None else "label mode"
        raise InputError(f"{', '.join(given)} does not apply in {mode}; remove it")


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
