"""``cxr evaluate``: retrieval, diagnosis-by-retrieval and clustering metrics of embeddings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cxrembed.commands._options import (
    MISSING,
    Embeddings,
    Ids,
    LabelCol,
    LabelCols,
    LabelSchema,
    Missing,
)
from cxrlabel.columns import check_table_header
from cxrlabel.commands.options import (
    Dpi,
    FigureFormat,
    GroupCol,
    IdCol,
    Output,
    Quiet,
    Renamed,
    Uncertain,
    argument,
    cxr_command,
    figure_options,
    option,
    parse_ints,
    split_names,
    text_option,
    uncertain_word,
)
from cxrlabel.commands.output import closing_lines, counted, frame_text, print_result
from cxrlabel.figures import DEFAULT_DPI
from cxrlabel.vocab import Options, policy_for

if TYPE_CHECKING:
    from cxrembed.data.labels import LabelOptions
    from cxrembed.evaluation.files import EvaluationRun

__all__ = ["register", "evaluate", "label_options", "format_run"]

#: 2-D projections of the embedding map (``--projection``).
PROJECTIONS = Options(("auto", "umap", "tsne", "pca"))

LabelsTable = argument(Path, help="Labels table (CSV or Parquet) with an id column.")
ReportOutput = Output(
    "Folder for the report: metrics.md/.csv/.json, roc, pr and embedding_map figures."
)
LabelsIdCol = IdCol("id")
ImageCol = text_option("--image-col", "Use this image-path column as the id instead.")
UnknownValues = option(
    str, "--unknown-values", help="Categorical values meaning 'unknown', comma-sep."
)
Separator = text_option("--separator", "Split categorical values into several labels on this.")
StatusCol = text_option("--status-col", "cxr label status column; rows not 'ok' are excluded.")
ExcludeSameGroup = option(
    bool, "--exclude-same-group", help="Leave a query's own patient out of its gallery."
)
SplitCol = text_option(
    "--split-col",
    "Split column (with --query-split and --gallery-split).",
    show_default="the run's split.csv",
)
AllRows = option(
    bool,
    "--all-rows",
    help="Score every row against every other (the query itself left out), ignoring the "
    "run's split: training images included.",
)
QuerySplit = text_option("--query-split", "Split value of the queries (e.g. test).")
GallerySplit = text_option("--gallery-split", "Split value of the gallery (e.g. train).")
K = option(str, "--k", help="Cut-offs of the fixed-k metrics.")
DiagnosisK = option(int, "--diagnosis-k", min=1, help="Neighbours voting in diagnosis.")
Projection = option(
    str,
    "--projection",
    help="2-D map of the embeddings: auto (UMAP if installed, else t-SNE), umap, tsne or pca.",
)
NoProjection = option(bool, "--no-projection", help="Skip the 2-D map.")
ConfigHash = text_option("--config-hash", "Refuse embeddings made by a run with another hash.")
Seed = option(int, "--seed", help="Seeds k-means and the map.")


@cxr_command(Renamed("--map", "projection"), Renamed("--no-map", "no_projection", flag=True))
def evaluate(
    embeddings: Embeddings,
    labels: LabelsTable,
    output: ReportOutput,
    id_col: LabelsIdCol = None,
    image_col: ImageCol = None,
    ids: Ids = None,
    label_col: LabelCol = None,
    label_cols: LabelCols = None,
    schema: LabelSchema = None,
    uncertain: Uncertain = "ignore",
    unknown_values: UnknownValues = "todo",
    separator: Separator = None,
    status_col: StatusCol = "status",
    group_col: GroupCol = None,
    exclude_same_group: ExcludeSameGroup = False,
    split_col: SplitCol = None,
    query_split: QuerySplit = None,
    gallery_split: GallerySplit = None,
    all_rows: AllRows = False,
    k: K = "1,5,10",
    diagnosis_k: DiagnosisK = 10,
    projection: Projection = "auto",
    no_projection: NoProjection = False,
    missing: Missing = "exclude",
    config_hash: ConfigHash = None,
    seed: Seed = 0,
    format: FigureFormat = None,
    dpi: Dpi = DEFAULT_DPI,
    quiet: Quiet = False,
) -> None:
    """Score embeddings against labels: P@1, R-precision, MAP@R, P@k, nDCG@k, diagnosis by
    retrieval (F1, AUROC, AP per finding; ROC and PR curves), NMI/AMI, and a 2-D map; by
    default on the run's split (held-out queries vs its training images), a query never
    scored against itself."""
    from cxrembed.evaluation.files import evaluate_files

    id_col = "id" if id_col is None and image_col is None else id_col
    split = _split_options(split_col, query_split, gallery_split, all_rows)
    figures = figure_options(format, dpi)  # checked before any work
    _check_header(labels, id_col, image_col, label_col, label_cols, group_col, split_col)
    run = evaluate_files(
        embeddings,
        labels,
        output,
        labels=label_options(
            label_col, label_cols, schema, uncertain, unknown_values, separator, status_col
        ),
        id_col=id_col,
        image_col=image_col,
        ids_file=ids,
        **split,
        group_col=group_col,
        exclude_same_group=exclude_same_group,
        missing=MISSING.check(missing, "--missing"),  # type: ignore[arg-type]
        ks=parse_ints(k, "--k"),
        diagnosis_k=diagnosis_k,
        seed=seed,
        map_method=None if no_projection else PROJECTIONS.check(projection, "--projection"),
        expect_config_hash=config_hash,
        **figures,
    )
    notes = [f"note: {n}" for n in run.result.notes]
    print_result(format_run(run, notes=False), notes, quiet=quiet)


def _split_options(
    split_col: str | None, query_split: str | None, gallery_split: str | None, all_rows: bool
) -> dict[str, object]:
    """The query / gallery choice for :func:`evaluate_files`; refuses two at once."""
    if all_rows and split_col is not None:
        from cxrembed.evaluation.run_split import ALL_ROWS_CONFLICT
        from cxrlabel.errors import InputError

        raise InputError(ALL_ROWS_CONFLICT)
    return {
        "split_col": split_col,
        "query_split": query_split,
        "gallery_split": gallery_split,
        "all_rows": all_rows,
    }


def _check_header(
    labels: Path,
    id_col: str | None,
    image_col: str | None,
    label_col: str | None,
    label_cols: str | None,
    group_col: str | None,
    split_col: str | None,
) -> None:
    """The columns named on the command line are in the labels table (before the embeddings
    are loaded)."""
    columns = {
        "--id-col": id_col,
        "--image-col": image_col,
        "--label-col": label_col,
        "--group-col": group_col,
        "--split-col": split_col,
    }
    check_table_header(labels, {**columns, "--label-cols": split_names(label_cols, "--label-cols")})


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
    from cxrembed.data.labels import LabelOptions
    from cxrlabel.errors import InputError

    given = [
        name
        for name, value in (
            ("--label-col", label_col),
            ("--label-cols", label_cols),
            ("--schema", schema),
        )
        if value
    ]
    if len(given) != 1:
        raise InputError(
            "choose the labels with exactly one of --label-col (one categorical column), "
            "--label-cols A,B (1/0/-1 columns) or --schema NAME (cxr label output); got "
            f"{', '.join(given) or 'none'}"
        )
    policy = policy_for(uncertain_word(uncertain), "--uncertain")
    columns = split_names(label_cols, "--label-cols")
    return LabelOptions(
        schema=schema,
        columns=None if columns is None else tuple(columns),
        label_col=label_col,
        unknown_values=tuple(split_names(unknown_values, "--unknown-values") or ()),
        separator=separator,
        policy=policy,  # type: ignore[arg-type]  # one of ignore, zeros, ones
        status_col=status_col or None,
    )


def format_run(run: EvaluationRun, *, notes: bool = True) -> str:
    """Plain-text summary: the metrics table, diagnosis per finding, exclusions, files (and
    the notes, unless ``notes`` is False)."""
    import pandas as pd

    from cxrembed.evaluation.metrics.report import display_name

    result = run.result
    shown = ("embeddings", "labels", "split", "rows evaluated", "same patient left out")
    lines = [f"{key}: {value}" for key, value in result.info.items() if key in shown]
    lines.append(str(result.info.get("queries / gallery", "")))
    metrics = pd.DataFrame(
        {
            "metric": [display_name(key) for key in result.metrics],
            "value": [_number(v) for v in result.metrics.values()],
        }
    )
    summary = result.diagnosis.summary
    lines += [
        "",
        frame_text(metrics),
        "",
        f"diagnosis by retrieval (k = {summary.get('k')}):",
        frame_text(result.diagnosis.per_finding),
    ]
    if len(result.excluded):
        heading = f"excluded: {len(result.excluded)} (listed in {run.paths.get('excluded')})"
        lines += counted(heading, result.excluded["reason"].str.split(":").str[0])
    lines += closing_lines(result.notes if notes else [], run.paths.values())
    return "\n".join(lines)


def _number(value: float) -> str:
    return "undefined" if value is None or math.isnan(value) else f"{value:.4f}"


def register(app: typer.Typer) -> None:
    """Add ``cxr evaluate`` to ``app``."""
    app.command("evaluate")(evaluate)
