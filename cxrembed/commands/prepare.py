"""``cxr prepare``: decode every image of a table once into a compact cache for training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cxrembed.commands._options import AllowOutsideImages, ImageTableIdCol, non_default
from cxrlabel.commands.options import (
    Jobs,
    Output,
    Quiet,
    argument,
    cxr_command,
    option,
    path_option,
    resolve_jobs,
    text_option,
)
from cxrlabel.commands.output import print_result

if TYPE_CHECKING:
    from cxrembed.data.cache import PrepareSummary

__all__ = ["register", "prepare", "parse_window", "format_summary"]


Table = argument(Path, help="Labels table (CSV or Parquet) with an image or id column.")
CacheOutput = Output("Cache folder to create or resume.")
Images = path_option("--images", "Images folder.", show_default="the table's folder")
ImageCol = text_option("--image-col", "Column of image paths (relative to --images).")
Size = option(int, "--size", min=8, help="Side of the stored square (px).")
Dtype = option(str, "--dtype", help="uint8 or uint16.")
Fit = option(str, "--fit", help="letterbox (pad, keep all) or crop (centre crop).")
Window = option(str, "--window", help="DICOM intensity: auto, none, minmax or CENTER,WIDTH.")
Overwrite = option(bool, "--overwrite", help="Replace a cache made with other settings.")


@cxr_command()
def prepare(
    table: Table,
    output: CacheOutput,
    images: Images = None,
    image_col: ImageCol = None,
    id_col: ImageTableIdCol = None,
    size: Size = 256,
    dtype: Dtype = "uint8",
    fit: Fit = "letterbox",
    window: Window = "auto",
    jobs: Jobs = 0,
    overwrite: Overwrite = False,
    allow_outside_images: AllowOutsideImages = False,
    quiet: Quiet = False,
) -> None:
    """Decode, resize and store every image once; a second run skips what is done."""
    from cxrembed.data.cache import prepare_cache

    summary = prepare_cache(
        table,
        images,
        output,
        image_col=image_col,
        id_col=id_col,
        size=size,
        dtype=dtype,
        fit=fit,  # type: ignore[arg-type]  # validated by prepare_cache
        window=parse_window(window),
        jobs=resolve_jobs(jobs),
        overwrite=overwrite,
        progress=not quiet,
        **non_default(allow_outside_images=allow_outside_images),
    )
    print_result(format_summary(summary), quiet=quiet)


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
