"""Find the unusable images of a table before training on it, and the degenerate ones.

``cxr prepare`` and ``cxr embed`` decode every image and list those that fail in
``excluded.csv``; training straight from the image files (``cxr train --images``) does the
same before its first step: :func:`usable_images` decodes each image once (in worker
processes, as ``prepare`` does) and moves the failures, with the reader's kind and reason,
from the dataset to its ``excluded`` rows. Without this check a bad file would only be a
warning at the step that reads it, while its row stayed in ``split.csv``.

Images that decode but have a degenerate shape (a side of a few pixels, or one side many
times the other, e.g. 1 x 1 or 3000 x 3) are kept, with a warning
(:func:`warn_degenerate`): fitted into a square they hold almost no picture.

Examples
--------
>>> degenerate(1, 1), degenerate(3000, 3), degenerate(2048, 2500)
(True, True, False)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any

import pandas as pd

from cxrembed.data.decode_pool import decode_in_order
from cxrembed.data.exclusions import excluded_frame, exclusion
from cxrembed.data.table import table_source
from cxrembed.errors import ImageReadError
from cxrembed.io.image import Window, read_image

__all__ = [
    "MIN_SIDE",
    "MAX_ASPECT",
    "degenerate",
    "warn_degenerate",
    "probe_image",
    "usable_images",
]

#: Images with a side shorter than this (pixels) are degenerate.
MIN_SIDE = 4
#: ...and so are images whose long side is more than this many times the short one.
MAX_ASPECT = 20.0

Problem = tuple[str, str]


def degenerate(rows: int, cols: int) -> bool:
    """True for an image too small or too elongated to hold a radiograph."""
    short, long = sorted((int(rows), int(cols)))
    return short < MIN_SIDE or long > MAX_ASPECT * short


def warn_degenerate(shapes: Sequence[tuple[str, int, int]], stacklevel: int = 2) -> None:
    """One warning for the ``(id, rows, cols)`` whose shape is degenerate (none: silent)."""
    odd = [(i, r, c) for i, r, c in shapes if degenerate(r, c)]
    if not odd:
        return
    image_id, rows, cols = odd[0]
    warnings.warn(
        f"{len(odd)} image(s) have a degenerate shape (e.g. {image_id!r}: {rows} x {cols} px, "
        f"a side under {MIN_SIDE} px or {MAX_ASPECT:g} times the other): fitted into a square "
        "they hold almost no picture. They are used as they are; check them",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


def probe_image(path: str, window: Window = "auto") -> tuple[Problem | None, tuple[int, int]]:
    """Decode one image: ``(None, (rows, cols))``, or ``((kind, reason), (0, 0))`` when it
    cannot be read. Never raises (it runs in worker processes)."""
    try:
        image, _ = read_image(path, window=window)
    except ImageReadError as exc:
        return (exc.kind, exc.reason), (0, 0)
    except Exception as exc:  # noqa: BLE001 - a decoder bug must cost one image, not the run
        return ("unexpected", f"{type(exc).__name__}: {exc}"), (0, 0)
    return None, (int(image.shape[0]), int(image.shape[1]))


def usable_images(dataset: Any, *, jobs: int = 1, progress: bool = False) -> Any:
    """The rows of a :class:`~cxrembed.data.dataset.LabeledImageDataset` whose image
    decodes; the others are added to its ``excluded`` rows with the reason.

    Raises :class:`~cxrlabel.errors.InputError` when no image is usable.
    """
    from cxrembed.data.dataset import LabeledImageDataset, no_usable_rows

    work = partial(probe_image, window=dataset.window)
    paths = [str(p) for p in dataset.paths]
    results = list(decode_in_order(work, paths, jobs=jobs, progress=progress, desc="check images"))
    keep = [i for i, (problem, _) in enumerate(results) if problem is None]
    bad = [
        exclusion(int(dataset.rows[i]), dataset.ids[i], paths[i], *problem)
        for i, (problem, _) in enumerate(results)
        if problem is not None
    ]
    warn_degenerate([(dataset.ids[i], *results[i][1]) for i in keep], stacklevel=3)
    excluded = excluded_frame(pd.concat([dataset.excluded, excluded_frame(bad)]))
    if not keep:  # every table row is used or excluded: all of them are excluded now
        whole = pd.DataFrame(index=range(len(excluded)))
        whole.attrs["source"] = table_source(dataset.table)
        no_usable_rows(whole, 0, excluded)
    return LabeledImageDataset(
        [dataset.paths[i] for i in keep],
        [dataset.ids[i] for i in keep],
        dataset.labels[keep],
        dataset.label_names,
        window=dataset.window,
        on_error=dataset.on_error,
        policy=dataset.policy,
        soft_value=dataset.soft_value,
        unmentioned=dataset.unmentioned,
        transform=dataset.transform,
        table=dataset.table.iloc[keep].reset_index(drop=True),
        rows=dataset.rows[keep],
        excluded=excluded,
    )
