"""``cxr predict-outcome``: image embeddings + clinical columns -> a yes/no outcome."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cxrembed.commands._options import MISSING, Embeddings, Ids, Missing
from cxrlabel.columns import check_table_header
from cxrlabel.commands.options import (
    Bootstrap,
    GroupCol,
    IdCol,
    Output,
    Quiet,
    Threads,
    argument,
    cxr_command,
    option,
    split_names,
    text_option,
)
from cxrlabel.commands.output import closing_lines, counted, print_result

if TYPE_CHECKING:
    from cxrembed.outcome.report import OutcomeResult

__all__ = ["register", "predict_outcome", "format_result"]


Table = argument(Path, help="Table (CSV or Parquet): id, target, clinical columns.")
Target = option(str, "--target", help="Outcome column (Y/N, yes/no, 1/0).")
ReportOutput = Output("Folder for the report.")
Features = text_option(
    "--features", "Clinical columns, comma-separated.", show_default="none: image only"
)
TableIdCol = IdCol("id")
Folds = option(int, "--folds", min=2, help="Cross-validation folds.")
Pca = option(int | None, "--pca", min=1, help="Reduce the embeddings to N components in each fold.")
Models = option(str, "--models", help="logistic and/or gradient_boosting, comma-separated.")
MissingValues = text_option(
    "--missing-values", "Values meaning 'missing' in target and features (e.g. 'Not visible')."
)
NoImage = option(bool, "--no-image", help="Ignore EMBEDDINGS: tabular-only (give '-' for it).")
Seed = option(int, "--seed", help="Seeds folds, models and bootstrap.")


@cxr_command()
def predict_outcome(
    embeddings: Embeddings,
    table: Table,
    target: Target,
    output: ReportOutput,
    features: Features = None,
    id_col: TableIdCol = "id",
    group_col: GroupCol = None,
    ids: Ids = None,
    folds: Folds = 5,
    bootstrap: Bootstrap = 1000,
    pca: Pca = None,
    models: Models = "logistic,gradient_boosting",
    missing_values: MissingValues = None,
    missing: Missing = "exclude",
    no_image: NoImage = False,
    seed: Seed = 0,
    threads: Threads = 1,
    quiet: Quiet = False,
) -> None:
    """Predict a yes/no outcome from image embeddings, clinical columns and both, with
    patient-grouped cross-validation; AUROC with 95% CI side by side."""
    from cxrembed.outcome.predict import predict_outcome as predict

    check_table_header(table, {"--id-col": id_col, "--group-col": group_col, "--target": target})
    result = predict(
        None if no_image else embeddings,
        table,
        target,
        split_names(features, "--features"),
        id_col=id_col,
        group_col=group_col,
        n_splits=folds,
        seed=seed,
        bootstrap=bootstrap,
        pca=pca,
        models=split_names(models, "--models") or [],
        missing_values=split_names(missing_values, "--missing-values") or [],
        missing_ids=MISSING.check(missing, "--missing"),  # type: ignore[arg-type]
        ids_file=ids,
        threads=threads or None,
    )
    paths = result.write(output)
    print_result(
        format_result(result, paths, notes=False),
        [f"note: {note}" for note in result.notes],
        quiet=quiet,
    )


def format_result(result: OutcomeResult, paths: dict[str, Path], *, notes: bool = True) -> str:
    """Plain-text summary: setting, the side-by-side table, paired differences, notes (unless
    ``notes`` is False), files."""
    lines = [
        f"{key}: {value}"
        for key, value in result.info.items()
        if key
        in (
            "target",
            "positives / rows",
            "patients",
            "cross-validation",
            "95% CI",
            "rows excluded (see excluded.csv)",
            "embeddings without a table row (see missing_ids.csv)",
        )
    ]
    lines += ["", result.summary_table()]
    if len(result.comparisons):
        lines += ["", "paired differences:", result.comparisons_table()]
    if len(result.excluded):
        reasons = result.excluded["reason"].str.split(" \\(").str[0]
        lines += counted(f"excluded rows ({paths.get('excluded')}):", reasons)
    lines += closing_lines(result.notes if notes else [], paths.values())
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``cxr predict-outcome`` to ``app``."""
    app.command("predict-outcome")(predict_outcome)
