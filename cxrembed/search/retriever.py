"""Search a gallery with query images: the Python side of ``cxr search``.

:class:`Retriever` joins a trained run (to embed the queries exactly as the gallery was
embedded) and an index folder (``cxr embed --index``), and refuses the pair when the index
was built by another run (config hashes differ). For each query it returns the top-k
neighbours with their cosine similarity and the chosen metadata columns, optionally the
positive / uncertain mention sentences of each neighbour's report (the evidence file of
``cxr label``), and draws a PNG grid of the query and its neighbours with attention
overlays.

``k`` larger than the gallery is clamped to the gallery size with a warning (a small
gallery is a normal situation, not an error); the returned frames then have fewer rows.

Examples
--------
See :class:`Retriever`; ``python -m cxrembed.demo`` runs a whole search.
"""

from __future__ import annotations

import math
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

from cxrembed.errors import ConfigHashMismatchError, ImageReadError
from cxrembed.inference.encoder import Encoder
from cxrembed.search.gallery import IMAGE_PATH_COLUMN, join_metadata
from cxrlabel.atomic import atomic_path
from cxrlabel.errors import InputError

__all__ = ["Retriever", "SearchReport", "search_images", "Query", "EVIDENCE_COLUMN"]

#: A query: an image file (DICOM/PNG/JPEG), or pixels (2-D array/tensor in [0, 1]).
Query = str | os.PathLike[str] | np.ndarray | torch.Tensor
#: Result column holding the neighbour's report sentences (when evidence is given).
EVIDENCE_COLUMN = "evidence"
_ASSERTIONS = ("positive", "uncertain")
_GRID_COLUMNS = 6


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
    ) -> None:
        self.run_dir = run_dir
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
        return Encoder.from_run(self.run_dir, device=self.device)

    @cached_property
    def index(self) -> Any:
        """The :class:`~cxrembed.search.index.VectorIndex`, checked against the run."""
        from cxrembed.search.index import VectorIndex

        index = VectorIndex.load(self.index_dir)
        expected = self.encoder.config_hash
        if expected is not None and index.config_hash != expected:
            made_by = ("vectors without a run config hash (not made by cxr embed)"
                       if index.config_hash is None
                       else f"the run with config hash {index.config_hash!r}")
            raise ConfigHashMismatchError(
                f"index {str(self.index_dir)!r} holds {made_by}, but run "
                f"{self.encoder.source!r} has config hash {expected!r}: its embeddings are "
                "not comparable with the queries. Fix: search with the run that built the "
                "index, or rebuild the index with `cxr embed RUN ... --index DIR`"
            )
        return index

    @cached_property
    def table(self) -> pd.DataFrame:
        """Display columns aligned with the index ids (``id`` first)."""
        ids = [str(i) for i in self.index.ids.tolist()]
        stored = self.index.metadata
        frame = stored.reset_index(drop=True) if stored is not None else pd.DataFrame(
            index=range(len(ids)))
        if self.metadata is not None:
            joined, _ = join_metadata(ids, self.metadata, id_col=self.id_col,
                                      image_col=self.image_col)
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

        Returns
        -------
        list of pandas.DataFrame
            One per query: ``rank`` (1..k), ``id``, ``similarity`` (cosine), then
            :attr:`columns`; ``attrs["query"]`` names the query.
        """
        if on_error not in ("raise", "empty"):
            raise InputError(f"on_error must be 'raise' or 'empty'; got {on_error!r}")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InputError(f"k must be a positive whole number of neighbours; got {k!r}")
        items = _as_list(queries)
        size = len(self.index)
        if k > size:
            warnings.warn(
                f"k={k} is larger than the gallery ({size} images); returning all {size}",
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
            scores, ids = self.index.search(vectors, depth)
            for i, row_scores, row_ids in zip(order, scores, ids, strict=True):
                results[i] = self._frame(row_ids, row_scores, columns, _name(items[i], i))
        return results

    def grid_png(
        self,
        path: str | os.PathLike[str],
        query: Query,
        results: pd.DataFrame,
        *,
        label_cols: Sequence[str] | None = None,
        alpha: float = 0.45,
    ) -> Path:
        """Draw the query and its neighbours (``results`` of :meth:`search`) with attention
        overlays; write a PNG atomically and return its path.

        Neighbour images are read from the index's ``image_path`` column; one that cannot
        be read gets a blank tile saying so. ``label_cols`` (default: the first two shown
        columns) are printed under each neighbour.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from cxrembed.models.explain import overlay

        path = Path(path)
        if path.suffix.lower() != ".png":
            raise InputError(f"the grid is written as PNG; got {str(path)!r}. Use a .png name")
        if len(results) == 0:
            raise InputError("no neighbours to draw: the results frame is empty")
        tensors = [self._prepare(query)[0]]
        missing: list[bool] = [False]
        where = dict(zip(self.table["id"], self.table.get(IMAGE_PATH_COLUMN,
                                                            pd.Series([""] * len(self.table))),
                         strict=True))
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
        shown = list(label_cols) if label_cols is not None else \
            [c for c in self.columns if c != EVIDENCE_COLUMN][:2]
        tiles = len(batch)
        ncols = min(tiles, _GRID_COLUMNS)
        nrows = math.ceil(tiles / ncols)
        figure = Figure(figsize=(2.3 * ncols, 2.75 * nrows), dpi=100)
        FigureCanvasAgg(figure)
        for t in range(nrows * ncols):
            axis = figure.add_subplot(nrows, ncols, t + 1)
            axis.set_axis_off()
            if t >= tiles:
                continue
            pixels = self.encoder.normalization.inverse(batch[t, 0]).clamp(0, 1).numpy()
            if missing[t]:
                axis.imshow(np.full(pixels.shape, 0.85), cmap="gray", vmin=0, vmax=1)
                axis.text(0.5, 0.5, "image\nunavailable", ha="center", va="center",
                          transform=axis.transAxes, fontsize=8)
            else:
                axis.imshow(overlay(pixels, maps[t], alpha=alpha))
            axis.set_title(_tile_title(t, query, results, shown), fontsize=7)
        figure.suptitle("query and nearest neighbours (overlay: where the model looks)",
                        fontsize=9)
        figure.tight_layout(rect=(0, 0, 1, 0.95))
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png")
        return path

    # ------------------------------------------------------------------ helpers
    def _prepare(self, query: Query) -> tuple[torch.Tensor, str]:
        if isinstance(query, str | os.PathLike):
            if not str(query):
                raise ImageReadError("", "no image file recorded", "missing")
            return self.encoder.prepare(self.encoder.read(query)), str(query)
        return self.encoder.prepare(query), "<pixels>"

    def _frame(self, ids: np.ndarray, scores: np.ndarray, columns: list[str],
               name: str) -> pd.DataFrame:
        position = self._positions
        rows = [position[str(i)] for i in ids.tolist()]
        frame = pd.DataFrame({"rank": np.arange(1, len(rows) + 1), "id": [str(i) for i in ids],
                              "similarity": np.round(scores.astype(np.float64), 4)})
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
) -> SearchReport:
    """Search every query, keep going past unreadable ones, and draw the grids.

    With one query the grid is written to ``grid``; with several, to ``<stem>-<n>.png``
    (n = the query's 1-based position). Unreadable queries get an empty result with the
    reason (see :attr:`SearchReport.errors`); a run / index mismatch raises before any
    search.
    """
    retriever = Retriever(run_dir, index_dir, metadata, evidence, id_col=id_col,
                          image_col=image_col, show=show, evidence_key=evidence_key,
                          device=device).check()
    if not queries:
        raise InputError("give at least one query image")
    notes = []
    size = len(retriever.index)
    if isinstance(k, int) and k > size:
        notes.append(f"k={k} is larger than the gallery ({size} images): showing all {size}")
        k = size
    results = retriever.search(list(queries), k, on_error="empty")
    grids: list[Path] = []
    if grid is not None:
        grid = Path(grid)
        for n, (query, frame) in enumerate(zip(queries, results, strict=True), start=1):
            if "error" in frame.attrs:
                continue
            target = grid if len(queries) == 1 else grid.with_name(f"{grid.stem}-{n}.png")
            grids.append(retriever.grid_png(target, query, frame))
    return SearchReport(results, grids, notes)


def _as_list(queries: Query | Sequence[Query]) -> list[Query]:
    if isinstance(queries, str | os.PathLike | np.ndarray | torch.Tensor):
        return [queries]
    return list(queries)


def _name(query: Query, position: int) -> str:
    if isinstance(query, str | os.PathLike):
        return str(query)
    return f"<pixels #{position + 1}>"


def _tile_title(tile: int, query: Query, results: pd.DataFrame, shown: list[str]) -> str:
    if tile == 0:
        return "query\n" + _short(Path(str(query)).name if isinstance(query, str | os.PathLike)
                                  else "<pixels>")
    row = results.iloc[tile - 1]
    name = Path(str(row["id"])).name or str(row["id"])  # a path id: its file name
    lines = [f"#{row['rank']} {_short(name)}", f"similarity {row['similarity']:.3f}"]
    lines += [_short(f"{c}: {row[c]}") for c in shown if c in row.index]
    return "\n".join(lines)


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None or value is pd.NA else str(value).strip()
