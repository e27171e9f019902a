"""``cxr embed``: embed images with a trained run (batched, resumable), optionally index them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cxrembed.commands._options import (
    CHECKPOINT,
    AllowOutsideImages,
    Cache,
    Checkpoint,
    Run,
    non_default,
)
from cxrlabel.commands.options import (
    Device,
    IdCol,
    Jobs,
    Output,
    Quiet,
    Renamed,
    Show,
    cxr_command,
    loader_workers,
    option,
    path_option,
    split_names,
    text_option,
)
from cxrlabel.commands.output import print_result

if TYPE_CHECKING:
    from cxrembed.inference.embed import EmbedSummary
    from cxrembed.search.gallery import IndexSummary

__all__ = ["register", "embed", "format_embed_summary"]

EmbeddingsOutput = Output("Embeddings folder to create or resume.")
Images = path_option(
    "--images",
    "Images folder (alone: every DICOM/PNG/JPEG below it; with --labels: the folder the table's paths start from).",
)
Labels = path_option("--labels", "Table (CSV/Parquet) naming the images to embed.")
ImageCol = text_option("--image-col", "Table column of image paths.")
TableIdCol = IdCol("none: the image path is the id")
BatchSize = option(int, "--batch-size", min=1, help="Images per batch.")
NoResume = option(bool, "--no-resume", help="Start again: replace the embeddings in --output.")
ShardSize = option(int, "--shard-size", min=1, help="Embeddings per shard file.")
Index = path_option("--index", "Also build a search index in this folder.")
Meta = path_option(
    "--meta", "Table of columns to show in search results.", show_default="the --labels table"
)
MetaIdCol = text_option(
    "--meta-id-col",
    "Id column of --meta.",
    show_default="--id-col / --image-col if --meta has them, else its id column",
)
MetaImageCol = text_option("--meta-image-col", "Image path column of --meta.")
IndexKind = option(str, "--index-kind", help="auto, exact, ivf, hnsw or ivfpq.")
MaxMemory = text_option(
    "--max-memory",
    "Memory budget of the index, e.g. 4GB: auto compresses the vectors (IVF-PQ) to fit.",
    show_default="no budget",
)


@cxr_command(
    Renamed("--workers", "jobs", int, convert=lambda n: max(n, 1)),
    Renamed("--show-cols", "show"),
    writes=("output", "index"),
)
def embed(
    run: Run,
    output: EmbeddingsOutput,
    images: Images = None,
    cache: Cache = None,
    labels: Labels = None,
    image_col: ImageCol = None,
    id_col: TableIdCol = None,
    batch_size: BatchSize = 32,
    jobs: Jobs = 1,
    no_resume: NoResume = False,
    shard_size: ShardSize = 100_000,
    device: Device = "auto",
    index: Index = None,
    meta: Meta = None,
    meta_id_col: MetaIdCol = None,
    meta_image_col: MetaImageCol = None,
    show: Show = None,
    index_kind: IndexKind = "auto",
    max_memory: MaxMemory = None,
    checkpoint: Checkpoint = "best",
    allow_outside_images: AllowOutsideImages = False,
    quiet: Quiet = False,
) -> None:
    """Embed every image of a folder, table or cache; a second run resumes where it stopped."""
    from cxrembed.search import gallery

    checkpoint = CHECKPOINT.check(checkpoint, "--checkpoint")

    source, kind = _source(images, cache, labels)
    summary, built = gallery.embed_and_index(
        run,
        source,
        output,
        kind=kind,
        images_root=images if labels is not None else None,
        image_col=image_col,
        id_col=id_col,
        batch_size=batch_size,
        num_workers=loader_workers(jobs),
        resume=not no_resume,
        shard_size=shard_size,
        device=device,
        progress=not quiet,
        index=index,
        metadata=meta,
        meta_id_col=meta_id_col,
        meta_image_col=meta_image_col,
        show_cols=split_names(show, "--show"),
        index_kind=index_kind,
        max_memory=max_memory,
        **non_default(checkpoint=checkpoint, allow_outside_images=allow_outside_images),
    )
    print_result(format_embed_summary(summary, built), quiet=quiet)


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
        lines.append(
            f"index: {built.path}  ({built.kind}, {built.count} vectors, columns: "
            f"{', '.join(built.columns) or 'none'})"
        )
        if built.unmatched:
            lines.append(
                f"  {len(built.unmatched)} embeddings have no metadata row "
                f"(e.g. {built.unmatched[0]!r}): their columns are blank"
            )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``cxr embed`` to ``app``."""
    app.command("embed")(embed)
