"""``cxr search``: the nearest gallery images of query images, with clinical columns and a grid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cxrembed.commands._options import CHECKPOINT, Checkpoint, Run, non_default
from cxrlabel.commands.options import (
    Device,
    Dpi,
    FigureFormat,
    IdCol,
    Output,
    Quiet,
    Show,
    argument,
    cxr_command,
    figure_options,
    option,
    path_option,
    split_names,
    text_option,
)
from cxrlabel.commands.output import MAX_WIDTH, frame_text, print_result
from cxrlabel.figures import DEFAULT_DPI

if TYPE_CHECKING:
    import pandas as pd

    from cxrembed.search.retriever import SearchReport

__all__ = ["register", "search", "format_results"]


IndexDir = argument(Path, help="Index folder (`cxr embed ... --index DIR`).")
Queries = argument(list[Path], help="Query images (DICOM, PNG, JPEG).", show_default=False)
K = option(int, "--k", "-k", min=1, help="Neighbours per query.")
Grid = path_option(
    "--grid",
    "Figure of the query and its neighbours with attention overlays: .png, .svg or .pdf "
    "(several queries: NAME-1.png, NAME-2.png...).",
)
Meta = path_option("--meta", "Extra table of columns, joined by id.")
MetaIdCol = IdCol("the first of id, uid, report_id, study_id in --meta")
ImageCol = text_option("--image-col", "Image path column of --meta.")
Evidence = path_option(
    "--evidence",
    "Evidence JSONL of `cxr label`: show each neighbour's positive/uncertain report sentences.",
)
EvidenceKey = text_option(
    "--evidence-key", "Metadata column holding the report id.", show_default="the image id"
)
ResultsCsv = Output("Also write all results to this CSV.", required=False)
IncludeSelf = option(
    bool,
    "--include-self",
    help="Keep a query that is in the gallery among its own neighbours (default: left out).",
)


@cxr_command(writes=("output", "grid"))
def search(
    run: Run,
    index: IndexDir,
    queries: Queries,
    k: K = 10,
    show: Show = None,
    grid: Grid = None,
    meta: Meta = None,
    id_col: MetaIdCol = None,
    image_col: ImageCol = None,
    evidence: Evidence = None,
    evidence_key: EvidenceKey = None,
    output: ResultsCsv = None,
    device: Device = "auto",
    checkpoint: Checkpoint = "best",
    include_self: IncludeSelf = False,
    format: FigureFormat = None,
    dpi: Dpi = DEFAULT_DPI,
    quiet: Quiet = False,
) -> None:
    """Find the K most similar gallery images of each query image."""
    from cxrembed.search import retriever as retrieval

    checkpoint = CHECKPOINT.check(checkpoint, "--checkpoint")
    figures = figure_options(format, dpi)  # checked before any work

    report = retrieval.search_images(
        run,
        index,
        [str(q) for q in queries],
        k=k,
        show=split_names(show, "--show"),
        grid=grid,
        metadata=meta,
        id_col=id_col,
        image_col=image_col,
        evidence=evidence,
        evidence_key=evidence_key,
        device=device,
        include_self=include_self,
        **non_default(checkpoint=checkpoint),
        **figures,
    )
    if output is not None:
        _write_csv(report.results, output)
    written = [f"results: {output}"] if output is not None else []
    print_result(
        "\n\n".join([format_results(report, notes=False), *written]),
        [f"note: {note}" for note in report.notes],
        quiet=quiet,
    )
    for query, reason in report.errors.items():
        typer.echo(f"error: query {query!r} skipped: {reason}", err=True)
    if report.errors:
        raise typer.Exit(code=1)


def format_results(report: SearchReport, width: int = MAX_WIDTH, *, notes: bool = True) -> str:
    """Each query's neighbours as a table at most ``width`` columns wide (long cells wrap,
    missing values "—"), then notes (unless ``notes`` is False) and grid paths."""
    blocks = []
    for frame in report.results:
        head = f"query: {frame.attrs.get('query')}"
        if "error" in frame.attrs:
            blocks.append(f"{head}\n  not searched: {frame.attrs['error']}")
            continue
        blocks.append(f"{head}\n{frame_text(frame, width, whole=True)}")
    if notes:
        blocks += [f"note: {note}" for note in report.notes]
    blocks += [f"grid: {path}" for path in report.grids]
    return "\n\n".join(blocks)


def _write_csv(results: list[pd.DataFrame], path: Path) -> None:
    import pandas as pd

    from cxrlabel.atomic import atomic_path

    frames = [f.assign(query=f.attrs.get("query")) for f in results if "error" not in f.attrs]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    columns = ["query", *[c for c in table.columns if c != "query"]]
    with atomic_path(path) as tmp:
        table.reindex(columns=columns).to_csv(tmp, index=False)


def register(app: typer.Typer) -> None:
    """Add ``cxr search`` to ``app``."""
    app.command("search")(search)
