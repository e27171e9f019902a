"""``cxr evaluate``: retrieval, diagnosis-by-retrieval and clustering metrics of embeddings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cxrembed.data.labels import LabelOptions
    from cxrembed.evaluation.files import EvaluationRun

__all__ = ["register", "evaluate", "label_options", "format_run"]

_MAP_METHODS = ("auto", "umap", "tsne", "pca")


def evaluate(
    embeddings: Annotated[
        Path,
        typer.Argument(help="Embeddings folder (cxr embed), .npy file (with --ids) or .parquet."),
    ],
    labels: Annotated[Path, typer.Argument(help="Labels table (CSV or Parquet) with an id column.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the report.")],
    id_col: Annotated[
        str | None,
        typer.Option("--id-col", help="Labels-table column holding the image ids [default: id]."),
    ] = None,
    image_col: Annotated[
        str | None,
        typer.Option("--image-col", help="Use this image-path column as the id instead."),
    ] = None,
    ids: Annotated[
        Path | None, typer.Option("--ids", help="Ids file (one per line) for .npy embeddings.")
    ] = None,
    label_col: Annotated[
        str | None,
        typer.Option("--label-col", help="One categorical label column (e.g. finding)."),
    ] = None,
    label_cols: Annotated[
        str | None,
        typer.Option("--label-cols", help="Label columns holding 1/0/-1/blank, comma-separated."),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option("--schema", help="Label schema whose observation columns cxr label wrote."),
    ] = None,
    uncertain: Annotated[
        str, typer.Option("--uncertain", help="Uncertain (-1) labels: ignore, zeros or ones.")
    ] = "ignore",
    unknown_values: Annotated[
        str,
        typer.Option("--unknown-values", help="Categorical values meaning 'unknown', comma-sep."),
    ] = "todo",
    separator: Annotated[
        str | None,
        typer.Option("--separator", help="Split categorical values into several labels on this."),
    ] = None,
    status_col: Annotated[
        str | None,
        typer.Option("--status-col", help="cxr label status column; rows not 'ok' are excluded."),
    ] = "status",
    group_col: Annotated[
        str | None, typer.Option("--group-col", help="Patient id column.")
    ] = None,
    exclude_same_group: Annotated[
        bool,
        typer.Option("--exclude-same-group", help="Leave a query's own patient out of its gallery."),
    ] = False,
    split_col: Annotated[
        str | None, typer.Option("--split-col", help="Split column (default: leave-one-out).")
    ] = None,
    query_split: Annotated[
        str | None, typer.Option("--query-split", help="Split value of the queries (e.g. test).")
    ] = None,
    gallery_split: Annotated[
        str | None,
        typer.Option("--gallery-split", help="Split value of the gallery (e.g. train)."),
    ] = None,
    k: Annotated[str, typer.Option("--k", help="Cut-offs of the fixed-k metrics.")] = "1,5,10",
    diagnosis_k: Annotated[
        int, typer.Option("--diagnosis-k", min=1, help="Neighbours voting in diagnosis.")
    ] = 10,
    map_method: Annotated[
        str, typer.Option("--map", help="2-D map: auto (UMAP if installed, else t-SNE), umap, "
                                        "tsne or pca.")
    ] = "auto",
    no_map: Annotated[bool, typer.Option("--no-map", help="Skip the 2-D map.")] = False,
    missing: Annotated[
        str,
        typer.Option("--missing", help="Labelled rows without an embedding: exclude (listed in "
                                       "excluded.csv) or error."),
    ] = "exclude",
    config_hash: Annotated[
        str | None,
        typer.Option("--config-hash", help="Refuse embeddings made by a run with another hash."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds k-means and the map.")] = 0,
) -> None:
    """Score embeddings against labels: P@1, R-precision, MAP@R, P@k, nDCG@k, diagnosis by
    retrieval (F1, AUROC per finding), NMI/AMI, and a 2-D map."""
    from cxrlabel.cli import run_cli

    def run() -> EvaluationRun:
        from cxrembed.commands._options import parse_ints
        from cxrembed.evaluation.files import evaluate_files
        from cxrlabel.errors import InputError

        options = label_options(label_col, label_cols, schema, uncertain, unknown_values,
                                separator, status_col)
        if map_method not in _MAP_METHODS:
            raise InputError(f"--map must be one of {', '.join(_MAP_METHODS)}; got {map_method!r}")
        if missing not in ("exclude", "error"):
            raise InputError(f"--missing must be exclude or error; got {missing!r}")
        return evaluate_files(
            embeddings,
            labels,
            output,
            labels=options,
            id_col="id" if id_col is None and image_col is None else id_col,
            image_col=image_col,
            ids_file=ids,
            split_col=split_col,
            query_split=query_split,
            gallery_split=gallery_split,
            group_col=group_col,
            exclude_same_group=exclude_same_group,
            missing=missing,  # type: ignore[arg-type]  # checked above
            ks=parse_ints(k, "--k"),
            diagnosis_k=diagnosis_k,
            seed=seed,
            map_method=None if no_map else map_method,
            expect_config_hash=config_hash,
        )

    typer.echo(format_run(run_cli(run)))


def label_options(
    label_col: str | None,
    label_cols: str | None,
    schema: str | None,
    uncertain: str,
    unknown_values: str,
    separator: str | None,
    status_col: str | None,
) -> LabelOptions:
    """The :class:`~cxrembed.data.labels.LabelOptions` of the label options, checked.

    Examples
    --------
    >>> label_options("finding", None, None, "ignore", "todo", None, "status").label_col
    'finding'
    """
    from cxrembed.commands._options import split_names
    from cxrembed.data.labels import LabelOptions
    from cxrlabel.errors import InputError

    given = [name for name, value in (("--label-col", label_col), ("--label-cols", label_cols),
                                      ("--schema", schema)) if value]
    if len(given) != 1:
        raise InputError(
            "choose the labels with exactly one of --label-col (one categorical column), "
            "--label-cols A,B (1/0/-1 columns) or --schema NAME (cxr label output); got "
            f"{', '.join(given) or 'none'}"
        )
    if uncertain not in ("ignore", "zeros", "ones"):
        raise InputError(f"--uncertain must be ignore, zeros or ones; got {uncertain!r}")
    columns = split_names(label_cols, "--label-cols")
    return LabelOptions(
        schema=schema,
        columns=None if columns is None else tuple(columns),
        label_col=label_col,
        unknown_values=tuple(split_names(unknown_values, "--unknown-values") or ()),
        separator=separator,
        policy=uncertain,  # type: ignore[arg-type]  # checked above
        status_col=status_col or None,
    )


def format_run(run: EvaluationRun) -> str:
    """Plain-text summary: the metrics table, diagnosis per finding, exclusions, files."""
    from cxrembed.evaluation.metrics.report import display_name

    result = run.result
    lines = [f"{key}: {value}" for key, value in result.info.items()
             if key in ("embeddings", "labels", "queries / gallery", "queries",
                        "rows evaluated", "same patient left out")]
    width = max(len(display_name(key)) for key in result.metrics)
    lines += ["", f"{'metric':<{width}}  value"]
    lines += [f"{display_name(key):<{width}}  {_number(value)}"
              for key, value in result.metrics.items()]
    summary = result.diagnosis.summary
    lines += ["", f"diagnosis by retrieval (k = {summary.get('k')}):",
              result.diagnosis.per_finding.to_string(index=False, float_format="%.3f")]
    if len(result.excluded):
        counts = result.excluded["reason"].str.split(":").str[0].value_counts()
        lines += ["", f"excluded: {len(result.excluded)} (listed in "
                      f"{run.paths.get('excluded')})"]
        lines += [f"  {reason}: {count}" for reason, count in counts.items()]
    if result.notes:
        lines += ["", "notes:"] + [f"  - {note}" for note in result.notes]
    lines += ["", "wrote: " + ", ".join(str(p) for p in run.paths.values())]
    return "\n".join(lines)


def _number(value: float) -> str:
    return "undefined" if value is None or math.isnan(value) else f"{value:.4f}"


def register(app: typer.Typer) -> None:
    """Add ``cxr evaluate`` to ``app``."""
    app.command("evaluate")(evaluate)
