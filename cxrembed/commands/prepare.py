"""``cxr prepare``: decode every image of a table once into a compact cache for training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cxrembed.data.cache import PrepareSummary

__all__ = ["register", "prepare", "parse_window", "format_summary"]


def prepare(
    table: Annotated[
        Path, typer.Argument(help="Labels table (CSV or Parquet) with an image or id column.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Cache folder to create/resume.")],
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Images folder (default: the table's folder)."),
    ] = None,
    image_col: Annotated[
        str | None, typer.Option("--image-col", help="Column of image paths (relative to --images).")
    ] = None,
    id_col: Annotated[
        str | None,
        typer.Option("--id-col", help="Id column; alone, images are <images>/<id>.<ext>."),
    ] = None,
    size: Annotated[int, typer.Option("--size", min=8, help="Side of the stored square (px).")] = 256,
    dtype: Annotated[str, typer.Option("--dtype", help="uint8 or uint16.")] = "uint8",
    fit: Annotated[
        str, typer.Option("--fit", help="letterbox (pad, keep all) or crop (centre crop).")
    ] = "letterbox",
    window: Annotated[
        str,
        typer.Option("--window", help="DICOM intensity: auto, none, minmax or CENTER,WIDTH."),
    ] = "auto",
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: all cores).")
    ] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a cache made with other settings.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Decode, resize and store every image once; a second run skips what is done."""
    from cxrlabel.cli import run_cli

    def run() -> PrepareSummary:
        from cxrembed.data.cache import prepare_cache

        return prepare_cache(
            table,
            images,
            output,
            image_col=image_col,
            id_col=id_col,
            size=size,
            dtype=dtype,
            fit=fit,  # type: ignore[arg-type]  # validated by prepare_cache
            window=parse_window(window),
            jobs=jobs,
            overwrite=overwrite,
            progress=not quiet,
        )

    summary = run_cli(run)
    typer.echo(format_summary(summary))


def parse_window(text: str) -> str | tuple[float, float]:
    """``auto``/``none``/``minmax`` or ``CENTER,WIDTH`` -> the ``window`` argument.

    Examples
    --------
    >>> parse_window("40, 400"), parse_window("auto")
    ((40.0, 400.0), 'auto')
    """
    from cxrlabel.errors import InputError
    from cxrlabel.vocab import WINDOWS, check_window

    if text in WINDOWS:
        return check_window(text, "--window")
    try:
        center, width = (float(part) for part in text.split(","))
    except ValueError:
        raise InputError(
            f"--window must be auto, none, minmax or CENTER,WIDTH (e.g. 2048,4096); got {text!r}"
        ) from None
    return center, width


def format_summary(summary: PrepareSummary) -> str:
    """Plain-text summary: counts, and excluded rows by reason."""
    lines = [
        f"cache: {summary.cache_dir}",
        f"rows: {summary.rows}  decoded: {summary.decoded}  already cached: {summary.already}"
        f"  excluded: {len(summary.excluded)}",
    ]
    if summary.decoded:
        rate = summary.decoded / max(summary.seconds, 1e-9)
        lines.append(f"decoding: {summary.seconds:.1f} s ({rate:.0f} images/s)")
    if len(summary.excluded):
        lines.append(f"excluded rows by reason (details in {summary.cache_dir / 'excluded.csv'}):")
        lines += [f"  {kind}: {count}" for kind, count in summary.reasons.items()]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``cxr prepare`` to ``app``."""
    app.command("prepare")(prepare)
