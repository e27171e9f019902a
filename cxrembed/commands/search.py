"""``cxr search``: the nearest gallery images of query images, with clinical columns and a grid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cxrembed.commands._options import split_names

if TYPE_CHECKING:
    import pandas as pd

    from cxrembed.search.retriever import SearchReport

__all__ = ["register", "search", "format_results"]


def search(
    run: Annotated[Path, typer.Argument(help="Run folder written by `cxr train`.")],
    index: Annotated[Path, typer.Argument(help="Index folder (`cxr embed ... --index DIR`).")],
    queries: Annotated[
        list[Path], typer.Argument(help="Query images (DICOM, PNG, JPEG).", show_default=False)
    ],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Neighbours per query.")] = 10,
    show: Annotated[
        str | None,
        typer.Option("--show", help="Comma-separated metadata columns to show (default: all)."),
    ] = None,
    grid: Annotated[
        Path | None,
        typer.Option("--grid", help="PNG of the query and its neighbours with attention "
                                    "overlays (several queries: NAME-1.png, NAME-2.png...)."),
    ] = None,
    meta: Annotated[
        Path | None, typer.Option("--meta", help="Extra table of columns, joined by id.")
    ] = None,
    id_col: Annotated[str | None, typer.Option("--id-col", help="Id column of --meta.")] = None,
    image_col: Annotated[
        str | None, typer.Option("--image-col", help="Image path column of --meta.")
    ] = None,
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", help="Evidence JSONL of `cxr label`: show each neighbour's "
                                        "positive/uncertain report sentences."),
    ] = None,
    evidence_key: Annotated[
        str | None,
        typer.Option("--evidence-key", help="Metadata column holding the report id "
                                            "(default: the image id)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write all results to this CSV."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda...")] = "auto",
) -> None:
    """Find the K most similar gallery images of each query image."""
    from cxrlabel.cli import run_cli

    def run_search() -> SearchReport:
        from cxrembed.search import retriever as retrieval

        return retrieval.search_images(
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
        )

    report = run_cli(run_search)
    typer.echo(format_results(report))
    if output is not None:
        run_cli(lambda: _write_csv(report.results, output))
        typer.echo(f"results: {output}")
    for query, reason in report.errors.items():
        typer.echo(f"error: query {query!r} skipped: {reason}", err=True)
    if report.errors:
        raise typer.Exit(code=1)


def format_results(report: SearchReport, width: int = 60) -> str:
    """Each query's neighbours as a plain-text table, then notes and grid paths."""
    import pandas as pd

    blocks = []
    for frame in report.results:
        head = f"query: {frame.attrs.get('query')}"
        if "error" in frame.attrs:
            blocks.append(f"{head}\n  not searched: {frame.attrs['error']}")
            continue
        with pd.option_context("display.max_colwidth", width, "display.width", 200):
            blocks.append(f"{head}\n{frame.to_string(index=False)}")
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
