"""``cxr embed``: embed images with a trained run (batched, resumable), optionally index them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cxrembed.inference.embed import EmbedSummary
    from cxrembed.search.gallery import IndexSummary

__all__ = ["register", "embed", "format_embed_summary"]


def embed(
    run: Annotated[Path, typer.Argument(help="Run folder written by `cxr train`.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Embeddings folder to create or resume.")
    ],
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Images folder (alone: every DICOM/PNG/JPEG below it; "
                                       "with --labels: the folder the table's paths start from)."),
    ] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Image cache folder from `cxr prepare`.")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Table (CSV/Parquet) naming the images to embed."),
    ] = None,
    image_col: Annotated[
        str | None, typer.Option("--image-col", help="Table column of image paths.")
    ] = None,
    id_col: Annotated[
        str | None, typer.Option("--id-col", help="Table id column (images <images>/<id>.<ext>).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")] = 32,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Image-decoding worker processes.")
    ] = 0,
    no_resume: Annotated[
        bool, typer.Option("--no-resume", help="Start again: replace the embeddings in OUT.")
    ] = False,
    shard_size: Annotated[
        int, typer.Option("--shard-size", min=1, help="Embeddings per shard file.")
    ] = 100_000,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1...")] = "auto",
    index: Annotated[
        Path | None,
        typer.Option("--index", help="Also build a search index in this folder."),
    ] = None,
    meta: Annotated[
        Path | None,
        typer.Option("--meta", help="Table of columns to show in search results (default: "
                                    "the --labels table)."),
    ] = None,
    meta_id_col: Annotated[
        str | None, typer.Option("--meta-id-col", help="Id column of --meta.")
    ] = None,
    meta_image_col: Annotated[
        str | None, typer.Option("--meta-image-col", help="Image path column of --meta.")
    ] = None,
    show_cols: Annotated[
        str | None,
        typer.Option("--show-cols", help="Comma-separated --meta columns to store (default: all)."),
    ] = None,
    index_kind: Annotated[
        str, typer.Option("--index-kind", help="auto, exact, ivf or hnsw.")
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Embed every image of a folder, table or cache; a second run resumes where it stopped."""
    from cxrlabel.cli import run_cli

    def run_embed() -> tuple[EmbedSummary, IndexSummary | None]:
        from cxrembed.commands._options import split_names
        from cxrembed.search import gallery

        source, kind = _source(images, cache, labels)
        return gallery.embed_and_index(
            run,
            source,
            output,
            kind=kind,
            images_root=images if labels is not None else None,
            image_col=image_col,
            id_col=id_col,
            batch_size=batch_size,
            num_workers=workers,
            resume=not no_resume,
            shard_size=shard_size,
            device=device,
            progress=not quiet,
            index=index,
            metadata=meta,
            meta_id_col=meta_id_col,
            meta_image_col=meta_image_col,
            show_cols=split_names(show_cols, "--show-cols"),
            index_kind=index_kind,
        )

    summary, built = run_cli(run_embed)
    typer.echo(format_embed_summary(summary, built))


def _source(images: Path | None, cache: Path | None, labels: Path | None) -> tuple[Path, str]:
    from cxrlabel.errors import InputError

    if labels is not None:
        if cache is not None:
            raise InputError("give --labels (with --images) or --cache, not both")
        return labels, "table"
    if (images is None) == (cache is None):
        raise InputError(
            "say what to embed: --images DIR (a folder of images), --labels TABLE (with "
            "--images for the folder its paths start from) or --cache DIR (from cxr prepare)"
        )
    return (images, "images") if images is not None else (cache, "cache")  # type: ignore[return-value]


def format_embed_summary(summary: EmbedSummary, built: IndexSummary | None = None) -> str:
    """Plain-text summary: counts, speed, excluded images by reason, the index."""
    lines = [
        f"embeddings: {summary.out}  (config hash {summary.config_hash})",
        f"images: {summary.candidates}  embedded now: {summary.embedded}  already done: "
        f"{summary.already}  excluded: {len(summary.excluded)}  total in folder: {summary.total}",
    ]
    if summary.embedded:
        lines.append(f"speed: {summary.seconds:.1f} s ({summary.images_per_second:.1f} images/s)")
    if len(summary.excluded):
        lines.append(f"excluded images by reason (details in {summary.out / 'excluded.csv'}):")
        lines += [f"  {kind}: {count}" for kind, count in summary.reasons.items()]
    if built is not None:
        lines.append(f"index: {built.path}  ({built.kind}, {built.count} vectors, columns: "
                     f"{', '.join(built.columns) or 'none'})")
        if built.unmatched:
            lines.append(f"  {len(built.unmatched)} embeddings have no metadata row "
                         f"(e.g. {built.unmatched[0]!r}): their columns are blank")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``cxr embed`` to ``app``."""
    app.command("embed")(embed)
