"""``cxr evaluate`` as one library call: read the embeddings and the labels table, evaluate,
write the report.

The evaluation itself is :func:`cxrembed.evaluation.evaluate.evaluate_table`; this module only adds the
file formats (an embeddings folder, ``.npy`` + ids file or Parquet; a CSV or Parquet labels
table) and the output folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from cxrembed.data.labels import LabelOptions
from cxrembed.data.table import read_table, row_ids, table_source
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.errors import EvaluationInputError
from cxrembed.evaluation.evaluate import DEFAULT_DIAGNOSIS_K, evaluate_table
from cxrembed.evaluation.metrics.report import EvaluationResult
from cxrembed.evaluation.metrics.retrieval import DEFAULT_KS
from cxrembed.evaluation.run_split import (
    ALL_ROWS_CONFLICT,
    GALLERY,
    QUERIES,
    RunSplit,
    run_split_of,
)
from cxrlabel.figures import FigureStyle

__all__ = ["EvaluationRun", "evaluate_files"]

# Columns added to the labels table for the run's split (names no table of a user's has).
_SPLIT_COLUMN = "cxr evaluate: run split"
_GROUP_COLUMN = "cxr evaluate: run patient"


@dataclass(frozen=True)
class EvaluationRun:
    """An evaluation and the files it wrote.

    Attributes
    ----------
    result : EvaluationResult
    paths : dict
        ``markdown``, ``csv``, ``json``, ``roc``, ``pr`` and, when present, ``map`` and
        ``excluded`` paths.
    """

    result: EvaluationResult
    paths: dict[str, Path]


def evaluate_files(
    embeddings: str | os.PathLike[str],
    labels_table: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    labels: LabelOptions,
    id_col: str | None = "id",
    image_col: str | None = None,
    ids_file: str | os.PathLike[str] | None = None,
    split_col: str | None = None,
    query_split: str | Sequence[str] | None = None,
    gallery_split: str | None = None,
    group_col: str | None = None,
    exclude_same_group: bool = False,
    missing: Literal["error", "exclude"] = "exclude",
    ks: Sequence[int] = DEFAULT_KS,
    diagnosis_k: int = DEFAULT_DIAGNOSIS_K,
    seed: int = 0,
    map_method: str | None = "auto",
    expect_config_hash: str | None = None,
    all_rows: bool = False,
    figures: FigureStyle | None = None,
) -> EvaluationRun:
    """Evaluate the embeddings at ``embeddings`` against ``labels_table``; write to ``out_dir``.

    Parameters
    ----------
    embeddings : path-like
        An embeddings folder, a ``.npy`` file (with ``ids_file``) or a ``.parquet`` file
        (see :meth:`cxrembed.embeddings.embedding_set.EmbeddingSet.load`).
    labels_table : path-like
        CSV or Parquet: ``cxr label`` output, or any table with label columns.
    out_dir : path-like
        Gets ``metrics.md``, ``metrics.csv``, ``metrics.json``, ``embedding_map.png``,
        ``roc.png`` and ``pr.png`` (diagnosis-by-retrieval curves) and,
        when rows were left out, ``excluded.csv``.
    labels : LabelOptions
        Which labels (schema, columns or one categorical column) and the uncertain policy.
    missing : {"exclude", "error"}
        Labelled rows without an embedding: left out and listed in ``excluded.csv``, or an
        error.
    expect_config_hash : str, optional
        Refuse embeddings made by another run.
    all_rows : bool
        Score every row against every other (leave-one-out), ignoring the run's split.
        By default, embeddings made by ``cxr embed RUN`` are evaluated on the run's split
        (:mod:`cxrembed.evaluation.run_split`): the images it did not train on are the
        queries, its training images the gallery; the run's patient ids are the groups
        unless ``group_col`` is given. Foreign vectors (no run recorded) and an explicit
        ``split_col`` are not affected.
    figures : FigureStyle, optional
        Format and dpi of ``embedding_map``, ``roc`` and ``pr`` (default PNG, 150 dpi).
    id_col, image_col, split_col, query_split, gallery_split, group_col, exclude_same_group,
    ks, diagnosis_k, seed, map_method
        As in :func:`cxrembed.evaluation.evaluate.evaluate_table` (``map_method=None``: no map).

    Returns
    -------
    EvaluationRun
    """
    if all_rows and split_col is not None:
        raise EvaluationInputError(ALL_ROWS_CONFLICT)
    emb = EmbeddingSet.load(embeddings, ids=ids_file, expect_config_hash=expect_config_hash)
    table = read_table(labels_table, text_columns=[id_col, image_col, group_col, split_col])
    split_info = "every row against every other (--all-rows)" if all_rows else "none"
    if split_col is not None:
        split_info = f"column {split_col!r}: {query_split} vs {gallery_split}"
    elif not all_rows:
        run_split = run_split_of(emb, embeddings)
        if run_split is not None:
            table, split_col, group_col = _with_run_split(
                table, run_split, id_col=id_col, image_col=image_col, group_col=group_col
            )
            query_split, gallery_split = QUERIES, GALLERY
            split_info = f"the run's {run_split.path}"
        else:
            split_info = "none known: every row against every other (--split-col to choose)"
    result = evaluate_table(
        emb.vectors,
        emb.ids,
        table,
        labels=labels,
        id_col=id_col,
        image_col=image_col,
        split_col=split_col,
        query_split=query_split,
        gallery_split=gallery_split,
        group_col=group_col,
        exclude_same_group=exclude_same_group,
        missing=missing,
        ks=ks,
        diagnosis_k=diagnosis_k,
        seed=seed,
        map_method=map_method,
        config_hash=emb.config_hash,
        info={"split": split_info},
    )
    return EvaluationRun(result, result.write(out_dir, figures))


def _with_run_split(
    table: pd.DataFrame,
    split: RunSplit,
    *,
    id_col: str | None,
    image_col: str | None,
    group_col: str | None,
) -> tuple[pd.DataFrame, str, str | None]:
    """``table`` with the run's split (and, without ``group_col``, its patients) as columns."""
    ids = row_ids(table, image_col=image_col, id_col=id_col)
    sides = split.side_of(ids)
    if GALLERY not in sides:
        example = next(iter(split.split), None)
        raise EvaluationInputError(
            f"no id of {table_source(table)} (column {id_col or image_col!r}, e.g. "
            f"{ids[0]!r}) is a training image of {str(split.path)!r} (ids like {example!r}): "
            "the run was trained with another id column or on another table. Fix: name the "
            "id column cxr train used (--id-col / --image-col), or score every row against "
            "every other with --all-rows"
        )
    extra = {_SPLIT_COLUMN: sides}
    if group_col is None and split.groups:
        extra[_GROUP_COLUMN] = split.group_of(ids)
        group_col = _GROUP_COLUMN
    out = table.assign(**extra)
    out.attrs = dict(table.attrs)
    return out, _SPLIT_COLUMN, group_col
