"""``cxr predict-outcome``: image embeddings + clinical columns -> a yes/no outcome."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cxrembed.outcome.report import OutcomeResult

__all__ = ["register", "predict_outcome", "format_result"]


def predict_outcome(
    embeddings: Annotated[
        Path,
        typer.Argument(help="Embeddings folder (cxr embed), .npy file (with --ids) or .parquet."),
    ],
    table: Annotated[
        Path, typer.Argument(help="Table (CSV or Parquet): id, target, clinical columns.")
    ],
    target: Annotated[str, typer.Option("--target", help="Outcome column (Y/N, yes/no, 1/0).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the report.")],
    features: Annotated[
        str | None,
        typer.Option("--features", help="Clinical columns, comma-separated (none: image only)."),
    ] = None,
    id_col: Annotated[
        str, typer.Option("--id-col", help="Table column holding the embedding ids.")
    ] = "id",
    group_col: Annotated[
        str | None,
        typer.Option("--group-col", help="Patient id column: folds and bootstrap by patient."),
    ] = None,
    ids: Annotated[
        Path | None, typer.Option("--ids", help="Ids file (one per line) for .npy embeddings.")
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-validation folds.")] = 5,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap draws for the 95% CIs.")
    ] = 1000,
    pca: Annotated[
        int | None,
        typer.Option("--pca", min=1, help="Reduce the embeddings to N components in each fold."),
    ] = None,
    models: Annotated[
        str, typer.Option("--models", help="logistic and/or gradient_boosting, comma-separated.")
    ] = "logistic,gradient_boosting",
    missing_values: Annotated[
        str | None,
        typer.Option("--missing-values",
                     help="Values meaning 'missing' in target and features (e.g. 'Not visible')."),
    ] = None,
    missing: Annotated[
        str,
        typer.Option("--missing", help="Table rows without an embedding: exclude (listed in "
                                       "excluded.csv) or error."),
    ] = "exclude",
    no_image: Annotated[
        bool,
        typer.Option("--no-image", help="Ignore EMBEDDINGS: tabular-only (give '-' for it)."),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seeds folds, models and bootstrap.")] = 0,
    threads: Annotated[
        int, typer.Option("--threads", min=0, help="Threads while fitting (0: library default).")
    ] = 1,
) -> None:
    """Predict a yes/no outcome from image embeddings, clinical columns and both, with
    patient-grouped cross-validation; AUROC with 95% CI side by side."""
    from cxrlabel.cli import run_cli

    def run() -> tuple[OutcomeResult, dict[str, Path]]:
        from cxrembed.commands._options import split_names
        from cxrembed.outcome.predict import predict_outcome as predict
        from cxrlabel.errors import InputError

        if missing not in ("exclude", "error"):
            raise InputError(f"--missing must be exclude or error; got {missing!r}")
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
            missing_ids=missing,  # type: ignore[arg-type]  # checked above
            ids_file=ids,
            threads=threads or None,
        )
        return result, result.write(output)

    typer.echo(format_result(*run_cli(run)))


def format_result(result: OutcomeResult, paths: dict[str, Path]) -> str:
    """Plain-text summary: setting, the side-by-side table, paired differences, notes, files."""
    lines = [f"{key}: {value}" for key, value in result.info.items()
             if key in ("target", "positives / rows", "patients", "cross-validation", "95% CI",
                        "rows excluded (see excluded.csv)",
                        "embeddings without a table row (see missing_ids.csv)")]
    lines += ["", result.summary_table()]
    if len(result.comparisons):
        lines += ["", "paired differences:", result.comparisons_table()]
    if len(result.excluded):
        counts = result.excluded["reason"].str.split(" \\(").str[0].value_counts()
        lines += ["", f"excluded rows ({paths.get('excluded')}):"]
        lines += [f"  {reason}: {count}" for reason, count in counts.items()]
    if result.notes:
        lines += ["", "notes:"] + [f"  - {note}" for note in result.notes]
    lines += ["", "wrote: " + ", ".join(str(p) for p in paths.values())]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``cxr predict-outcome`` to ``app``."""
    app.command("predict-outcome")(predict_outcome)
