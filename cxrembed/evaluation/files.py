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

from cxrembed.data.labels import LabelOptions
from cxrembed.data.table import read_table
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.evaluation.evaluate import DEFAULT_DIAGNOSIS_K, evaluate_table
from cxrembed.evaluation.metrics.report import EvaluationResult
from cxrembed.evaluation.metrics.retrieval import DEFAULT_KS
from cxrlabel.figures import FigureStyle

__all__ = ["EvaluationRun", "evaluate_files"]


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
    query_split: str | None = None,
    gallery_split: str | None = None,
    group_col: str | None = None,
    exclude_same_group: bool = False,
    missing: Literal["error", "exclude"] = "exclude",
    ks: Sequence[int] = DEFAULT_KS,
    diagnosis_k: int = DEFAULT_DIAGNOSIS_K,
    seed: int = 0,
    map_method: str | None = "auto",
    expect_config_hash: str | None = None,
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
    figures : FigureStyle, optional
        Format and dpi of ``embedding_map``, ``roc`` and ``pr`` (default PNG, 150 dpi).
    id_col, image_col, split_col, query_split, gallery_split, group_col, exclude_same_group,
    ks, diagnosis_k, seed, map_method
        As in :func:`cxrembed.evaluation.evaluate.evaluate_table` (``map_method=None``: no map).

    Returns
    -------
    EvaluationRun
    """
    emb = EmbeddingSet.load(embeddings, ids=ids_file, expect_config_hash=expect_config_hash)
    table = read_table(labels_table, text_columns=[id_col, image_col, group_col, split_col])
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
    )
    return EvaluationRun(result, result.write(out_dir, figures))
