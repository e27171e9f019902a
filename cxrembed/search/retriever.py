"""Search a gallery with query images: the Python side of ``cxr search``.

:class:`Retriever` joins a trained run (to embed the queries exactly as the gallery was
embedded) and an index folder (``cxr embed --index``), and refuses the pair when the index
was built by another run (config hashes differ). For each query it returns the top-k
neighbours with their cosine similarity and the chosen metadata columns, optionally the
positive / uncertain mention sentences of each neighbour's report (the evidence file of
``cxr label``), and draws a PNG grid of the query and its neighbours with attention
overlays (:mod:`cxrembed.search.grid`; PNG, SVG or PDF).

A query that is itself in the gallery (the same image file as a gallery entry's
``image_path``, or a query path equal to a gallery id) is left out of its own neighbours,
and the list refilled to ``k``; ``include_self=True`` (``cxr search --include-self``)
keeps it. Pixel queries have no file, so nothing is left out for them.

``k`` larger than the gallery is clamped to the gallery size with a warning (a small
gallery is a normal situation, not an error); the returned frames then have fewer rows.

Examples
--------
See :class:`Retriever`; ``python -m cxrembed.demo`` runs a whole search.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from cxrembed.errors import ImageReadError
from cxrembed.inference.encoder import Encoder
from cxrembed.search.gallery import IMAGE_PATH_COLUMN
from cxrembed.search.metadata import join_metadata
from cxrlabel.errors import InputError
from cxrlabel.figures import FigureStyle
from cxrlabel.vocab import STATUSES, Interval

__all__ = ["Retriever", "SearchReport", "search_images", "Query", "EVIDENCE_COLUMN"]

#: A query: an image file (DICOM/PNG/JPEG), or pixels (2-D array/tensor in [0, 1]).
Query = str | os.PathLike[str] | np.ndarray | torch.Tensor
#: Result column holding the neighbour's report sentences (when evidence is given).
EVIDENCE_COLUMN = "evidence"
# Evidence shows the sentences that assert a finding: every status but a negation.
_ASSERTIONS = tuple(s for s in STATUSES if s != "negative")


class Retriever:
    """Find the gallery images most similar to query images.

    Parameters
    ----------
    run_dir : path-like or Encoder
        The ``cxr train`` run that embedded the gallery.
    index_dir : path-like
        The index folder (``cxr embed ... --index DIR`` or :func:`cxrembed.search.gallery.build_index`).
    metadata : path-like or DataFrame, optional
        A table of columns to show, joined to the neighbours by id (added to, and taking
        precedence over, the columns stored in the index).
    evidence : path-like, optional
        Evidence JSON Lines from ``cxr label --evidence``: each neighbour gets the sentences
        of its report's positive and uncertain mentions.
    id_col, image_col : str, optional
        The id of the ``metadata`` table (see :func:`cxrembed.search.gallery.join_metadata`).
    show : sequence of str, optional
        Metadata columns in the results (default: all but the image path).
    evidence_key : str, optional
        Metadata column holding each neighbour's report id (default: the neighbour id).
    device : str
        Where the model runs (``auto``: CUDA when present).
    checkpoint : {"best", "last"}
        The run's weights: ``model.safetensors`` or the latest checkpoint (the index must
        have been embedded with the same).

    Nothing is loaded until first used; :meth:`check` loads and validates at once.

    Examples
    --------
    >>> r = Retriever("runs/covid", "index/covid", show=["finding"])  # doctest: +SKIP
    >>> results = r.search(["query.png"], k=5)  # doctest: +SKIP
    >>> results[0][["rank", "id", "similarity", "finding"]]  # doctest: +SKIP
    >>> r.grid_png("neighbours.png", "query.png", results[0])  # doctest: +SKIP
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str] | Encoder,
        index_dir: str | os.PathLike[str],
        metadata: str | os.PathLike[str] | pd.DataFrame | None = None,
        evidence: str | os.PathLike[str] | None = None,
        *,
        id_col: str | None = None,
        image_col: str | None = None,
        show: Sequence[str] | None = None,
        evidence_key: str | None = None,
        device: str | None = "auto",
        checkpoint: str = "best",
    ) -> None:
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.index_dir = index_dir
        self.metadata = metadata
        self.evidence = evidence
        self.id_col = id_col
        self.image_col = image_col
        self.show = show
        self.evidence_key = evidence_key
        self.device = device

    # ------------------------------------------------------------------ loading
    @cached_property
    def encoder(self) -> Encoder:
        """The run's model and preprocessing."""
        if isinstance(self.run_dir, Encoder):
            return self.run_dir
        return Encoder.from_run(self.run_dir, device=self.device, which=self.checkpoint)

    @cached_property
    def index(self) -> Any:
        """The :class:`~cxrembed.search.index.VectorIndex`, checked against the run."""
        from cxrembed.search.index import VectorIndex

        return VectorIndex.load(
            self.index_dir,
            config_hash=self.encoder.config_hash,
            weights_sha256=self.encoder.weights_sha256,
        )

    @cached_property
    def table(self) -> pd.DataFrame:
        """Display columns aligned with the index ids (``id`` first)."""
        ids = [str(i) for i in self.index.ids.tolist()]
        stored = self.index.metadata
        frame = (
            stored.reset_index(drop=True)
            if stored is not None
            else pd.DataFrame(index=range(len(ids)))
        )
        if self.metadata is not None:
            joined, _ = join_metadata(
                ids, self.metadata, id_col=self.id_col, image_col=self.image_col
            )
            frame = frame.drop(columns=[c for c in joined.columns if c in frame.columns])
            frame = pd.concat([frame, joined], axis=1)
        frame.insert(0, "id", ids)
        if self.evidence is not None:
            frame[EVIDENCE_COLUMN] = self._evidence_column(frame)
        return frame

    def check(self) -> Retriever:
        """Load the run, the index and the tables now; raise on any mismatch. Returns self."""
        _ = self.table, self.columns
        return self

    @property
    def columns(self) -> list[str]:
        """The metadata columns each result shows."""
        available = [c for c in self.table.columns if c not in ("id", IMAGE_PATH_COLUMN)]
        if self.show is None:
            return available
        wanted = list(self.show)
        missing = [c for c in wanted if c not in self.table.columns]
        if missing:
            raise InputError(
                f"cannot show column(s) {missing}: the index {str(self.index_dir)!r} and "
                f"metadata hold {available or 'no columns'}. Fix the names, or give a metadata "
                "table with them (--meta TABLE)"
            )
        if self.evidence is not None and EVIDENCE_COLUMN not in wanted:
            wanted.append(EVIDENCE_COLUMN)
        return wanted

    # ------------------------------------------------------------------ search
    def embed(self, queries: Sequence[Query]) -> np.ndarray:
        """Embed query images (files or pixels) with the run; ``(Q, D)`` float32."""
        return self.encoder.encode(torch.stack([self._prepare(q)[0] for q in queries]))

    def search(
        self,
        queries: Query | Sequence[Query],
        k: int = 10,
        *,
        on_error: Literal["raise", "empty"] = "raise",
        include_self: bool = False,
    ) -> list[pd.DataFrame]:
        """Top-``k`` neighbours of each query, most similar first.

        Parameters
        ----------
        queries : image file, pixels, or a sequence of them
        k : int
            Neighbours per query; clamped to the gallery size with a warning.
        on_error : {"raise", "empty"}
            An unreadable query raises :class:`~cxrembed.errors.ImageReadError` (or
            ``InputError`` for bad pixels), or gives an empty frame whose
            ``attrs["error"]`` says why.
        include_self : bool
            Keep a query that is in the gallery among its own neighbours (by default it is
            left out: same image file or same id, see the module notes).

        Returns
        -------
        list of pandas.DataFrame
            One per query: ``rank`` (1..k), ``id``, ``similarity`` (cosine), then
            :attr:`columns`; ``attrs["query"]`` names the query.
        """
        if on_error not in ("raise", "empty"):
            raise InputError(f"on_error must be 'raise' or 'empty'; got {on_error!r}")
        Interval(int, 1, None).check(k, "k")
        items = _as_list(queries)
        size = len(self.index)
        if k > size:
            warnings.warn(
                f"k={k} is larger than the gallery ({size} images); returning all {size}"
                + ("" if include_self else ", less the query itself where it is one of them"),
                stacklevel=2,
            )
        depth = min(int(k), size)
        columns = self.columns
        prepared: dict[int, torch.Tensor] = {}
        errors: dict[int, str] = {}
        for i, query in enumerate(items):
            try:
                prepared[i] = self._prepare(query)[0]
            except (ImageReadError, InputError) as exc:
                if on_error == "raise":
                    raise
                errors[i] = str(exc)
        results = [self._empty(columns, _name(q, i), errors.get(i)) for i, q in enumerate(items)]
        if prepared:
            order = sorted(prepared)
            vectors = self.encoder.encode(torch.stack([prepared[i] for i in order]))
            found = self._neighbours(vectors, [items[i] for i in order], depth, include_self)
            for i, (row_scores, row_ids) in zip(order, found, strict=True):
                results[i] = self._frame(row_ids, row_scores, columns, _name(items[i], i))
        return results

    def _neighbours(
        self, vectors: np.ndarray, queries: list[Query], depth: int, include_self: bool
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(scores, ids) of each query; its own gallery entries left out unless asked."""
        if include_self:
            return list(zip(*self.index.search(vectors, depth), strict=True))
        own = [self._own_rows(q) for q in queries]
        ids = self.index.ids
        out: list[tuple[np.ndarray, np.ndarray]] = [None] * len(queries)  # type: ignore[list-item]
        size = len(self.index)
        for n in sorted({len(r) for r in own}):  # queries leaving the same gallery size
            picked = [i for i, r in enumerate(own) if len(r) == n]
            scores, found = self.index.search(
                vectors[picked],
                min(depth, size - n),
                exclude_ids=[ids[own[i]] if n else None for i in picked],
            )
            for i, row_scores, row_ids in zip(picked, scores, found, strict=True):
                out[i] = (row_scores, row_ids)
        return out

    def _own_rows(self, query: Query) -> list[int]:
        """Gallery rows that are ``query`` itself: the same file, or an id equal to its path."""
        if not isinstance(query, str | os.PathLike):
            return []
        text = os.fspath(query)
        names = {text, os.path.normpath(os.path.abspath(text))}
        with contextlib.suppress(OSError, RuntimeError):
            names.add(str(Path(text).resolve()))
        return sorted({r for name in names for r in self._rows_by_name.get(name, [])})

    @cached_property
    def _rows_by_name(self) -> dict[str, list[int]]:
        """Gallery rows by id and by normalised image path."""
        names: dict[str, list[int]] = {}
        for row, image_id in enumerate(self.table["id"].tolist()):
            names.setdefault(image_id, []).append(row)
        if IMAGE_PATH_COLUMN in self.table.columns:
            for row, path in enumerate(self.table[IMAGE_PATH_COLUMN].tolist()):
                if isinstance(path, str) and path:
                    name = os.path.normpath(os.path.abspath(path))
                    if row not in names.get(name, []):
                        names.setdefault(name, []).append(row)
        return names

    def grid_png(
        self,
        path: str | os.PathLike[str],
        query: Query,
        results: pd.DataFrame,
        *,
        label_cols: Sequence[str] | None = None,
        alpha: float = 0.45,
        style: FigureStyle | None = None,
    ) -> Path:
        """Draw the query and its neighbours (``results`` of :meth:`search`) with the model's
        heatmaps (:mod:`cxrembed.search.grid`); write the figure atomically; return its path.

        The format is ``style``'s or the suffix of ``path`` (``.png``, ``.svg`` or ``.pdf``; no
        suffix: ``style``'s, PNG by default). Neighbour images are read from the index's
        ``image_path`` column; one that cannot be read gets a blank tile saying so.
        ``label_cols`` (default: the first two shown columns) are printed under each
        neighbour.
        """
        from cxrembed.models.explain import overlay
        from cxrembed.search.grid import (
            Tile,
            grid_figure,
            neighbour_caption,
            path_lines,
            short_ids,
        )
        from cxrlabel.figures import save_figure

        style = style or FigureStyle()
        path = style.target(path)
        if len(results) == 0:
            raise InputError("no neighbours to draw: the results frame is empty")
        tensors = [self._prepare(query)[0]]
        missing: list[bool] = [False]
        where = dict(
            zip(
                self.table["id"],
                self.table.get(IMAGE_PATH_COLUMN, pd.Series([""] * len(self.table))),
                strict=True,
            )
        )
        for neighbour in results["id"].astype(str):
            try:
                tensors.append(self._prepare(str(where.get(neighbour) or ""))[0])
                missing.append(False)
            except (ImageReadError, InputError, OSError):
                tensors.append(torch.zeros_like(tensors[0]))
                missing.append(True)
        batch = torch.stack(tensors)
        reference = self.encoder.encode(batch[:1])[0]
        maps = self.encoder.heatmaps(batch, reference=reference)
        shown = (
            list(label_cols)
            if label_cols is not None
            else [c for c in self.columns if c != EVIDENCE_COLUMN][:2]
        )
        names = short_ids(results["id"].astype(str).tolist())
        captions = [["QUERY", *path_lines(_query_name(query))]]
        for (_, row), name in zip(results.iterrows(), names, strict=True):
            captions.append(
                neighbour_caption(
                    row["rank"],
                    row["similarity"],
                    name,
                    {c: row[c] for c in shown if c in row.index},
                )
            )
        tiles = []
        for t, lines in enumerate(captions):
            pixels = self.encoder.normalization.inverse(batch[t, 0]).clamp(0, 1).numpy()
            rgb = None if missing[t] else overlay(pixels, maps[t], alpha=alpha)
            tiles.append(Tile(pixels, rgb, lines, query=t == 0))
        kind = "attention" if self.encoder.has_attention else "Grad-CAM"
        figure = grid_figure(
            tiles,
            heat_label=f"{kind} (1 = each image's peak)",
            title=f"Query and its {len(results)} nearest neighbours (cosine similarity); "
            f"overlay: where the model looks ({kind})",
        )
        return save_figure(figure, path, style)

    # ------------------------------------------------------------------ helpers
    def _prepare(self, query: Query) -> tuple[torch.Tensor, str]:
        if isinstance(query, str | os.PathLike):
            if not str(query):
                raise ImageReadError("", "no image file recorded", "missing")
            return self.encoder.prepare(self.encoder.read(query)), str(query)
        return self.encoder.prepare(query), "<pixels>"

    def _frame(
        self, ids: np.ndarray, scores: np.ndarray, columns: list[str], name: str
    ) -> pd.DataFrame:
        position = self._positions
        rows = [position[str(i)] for i in ids.tolist()]
        frame = pd.DataFrame(
            {
                "rank": np.arange(1, len(rows) + 1),
                "id": [str(i) for i in ids],
                "similarity": np.round(scores.astype(np.float64), 4),
            }
        )
        picked = self.table.iloc[rows][columns].reset_index(drop=True)
        frame = pd.concat([frame, picked], axis=1)
        frame.attrs["query"] = name
        return frame

    def _empty(self, columns: list[str], name: str, error: str | None) -> pd.DataFrame:
        frame = pd.DataFrame(columns=["rank", "id", "similarity", *columns])
        frame.attrs["query"] = name
        if error is not None:
            frame.attrs["error"] = error
        return frame

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {str(i): r for r, i in enumerate(self.table["id"].tolist())}

    def _evidence_column(self, frame: pd.DataFrame) -> list[str]:
        from cxrlabel.validation.evidence_lookup import load_evidence

        if self.evidence_key is not None and self.evidence_key not in frame.columns:
            raise InputError(
                f"evidence_key {self.evidence_key!r} is not a metadata column; found "
                f"{[c for c in frame.columns if c != IMAGE_PATH_COLUMN]}. Give the column "
                "holding each image's report id (as in the evidence file)"
            )
        records = load_evidence(self.evidence).records
        sentences: dict[str, list[str]] = {}
        for (report, observation), found in records.items():
            for record in found:
                if record.get("excluded") or record.get("assertion") not in _ASSERTIONS:
                    continue
                flag = " (uncertain)" if record["assertion"] == "uncertain" else ""
                text = f"{observation}{flag}: {str(record.get('sentence') or '').strip()}"
                if text not in sentences.setdefault(report, []):
                    sentences[report].append(text)
        keys = frame["id"] if self.evidence_key is None else frame[self.evidence_key]
        return [" | ".join(sentences.get(_key_text(v), [])) for v in keys.tolist()]


@dataclass
class SearchReport:
    """What :func:`search_images` found.

    Attributes
    ----------
    results : list of pandas.DataFrame
        One per query, in order (empty, with ``attrs["error"]``, for unreadable queries).
    grids : list of pathlib.Path
        PNG grids written.
    notes : list of str
        E.g. ``k`` clamped to the gallery size.
    """

    results: list[pd.DataFrame]
    grids: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> dict[str, str]:
        """Query name -> why it could not be searched."""
        return {r.attrs["query"]: r.attrs["error"] for r in self.results if "error" in r.attrs}


def search_images(
    run_dir: str | os.PathLike[str],
    index_dir: str | os.PathLike[str],
    queries: Sequence[Query],
    *,
    k: int = 10,
    show: Sequence[str] | None = None,
    grid: str | os.PathLike[str] | None = None,
    metadata: str | os.PathLike[str] | None = None,
    id_col: str | None = None,
    image_col: str | None = None,
    evidence: str | os.PathLike[str] | None = None,
    evidence_key: str | None = None,
    device: str | None = "auto",
    checkpoint: str = "best",
    include_self: bool = False,
    figures: FigureStyle | None = None,
) -> SearchReport:
    """Search every query, keep going past unreadable ones, and draw the grids.

    With one query the grid is written to ``grid``; with several, to ``<stem>-<n>.<format>``
    (n = the query's 1-based position). ``figures`` sets the format (else ``grid``'s suffix,
    else PNG) and resolution; a bad grid name is refused before anything is loaded. Unreadable queries get an empty result with the
    reason (see :attr:`SearchReport.errors`); a run / index mismatch raises before any
    search. A query that is in the gallery is left out of its own neighbours unless
    ``include_self`` (see :meth:`Retriever.search`).
    """
    figures = figures or FigureStyle()
    grid = None if grid is None else figures.target(grid)
    retriever = Retriever(
        run_dir,
        index_dir,
        metadata,
        evidence,
        id_col=id_col,
        image_col=image_col,
        show=show,
        evidence_key=evidence_key,
        device=device,
        checkpoint=checkpoint,
    ).check()
    if not queries:
        raise InputError("give at least one query image")
    notes = []
    size = len(retriever.index)
    if isinstance(k, int) and k > size:
        notes.append(
            f"k={k} is larger than the gallery ({size} images): showing all {size}"
            + ("" if include_self else ", less the query itself where it is one")
        )
        k = size
    results = retriever.search(list(queries), k, on_error="empty", include_self=include_self)
    grids: list[Path] = []
    if grid is not None:
        for n, (query, frame) in enumerate(zip(queries, results, strict=True), start=1):
            if "error" in frame.attrs:
                continue
            target = grid if len(queries) == 1 else grid.with_name(f"{grid.stem}-{n}{grid.suffix}")
            grids.append(retriever.grid_png(target, query, frame, style=figures))
    return SearchReport(results, grids, notes)


def _as_list(queries: Query | Sequence[Query]) -> list[Query]:
    if isinstance(queries, str | os.PathLike | np.ndarray | torch.Tensor):
        return [queries]
    return list(queries)


def _name(query: Query, position: int) -> str:
    if isinstance(query, str | os.PathLike):
        return str(query)
    return f"<pixels #{position + 1}>"


def _query_name(query: Query) -> str:
    """The query's file with two parent folders for its caption (``<pixels>`` for pixels)."""
    if not isinstance(query, str | os.PathLike):
        return "<pixels>"
    return "/".join(Path(query).parts[-3:])


def _key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None or value is pd.NA else str(value).strip()
