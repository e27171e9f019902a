"""Evaluate embeddings against labels: retrieval, diagnosis by retrieval, clustering, a map.

Two entry points:

- :func:`evaluate_embeddings` takes aligned arrays (embeddings, and one class per row or
  0/1 findings);
- :func:`evaluate_table` takes embedding ids + vectors and a labels table (``cxr label``
  output or a categorical column such as COVID ``finding``), joins them by id, resolves
  uncertain labels and the query / gallery split, then calls :func:`evaluate_embeddings`.
  Nothing is dropped silently: rows left out are listed in the result's ``excluded`` table.

The metric functions themselves live in :mod:`cxrembed.evaluation.metrics`; ``retrieval_metrics`` is
re-exported here.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = np.repeat(np.eye(3, 8), 4, axis=0) + 0.05 * rng.normal(size=(12, 8))
>>> result = evaluate_embeddings(x, np.repeat(["a", "b", "c"], 4), ks=[1, 3], diagnosis_k=3,
...                              map_method=None)
>>> result.metrics["precision_at_1"], result.metrics["map_at_3"]
(1.0, 1.0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from cxrembed._vectors import as_ids, check_table_ids
from cxrembed.data.exclusions import Exclusion, excluded_frame, exclusion
from cxrembed.data.labels import (
    NEGATIVE,
    POSITIVE,
    UNCERTAIN,
    LabelOptions,
    status_exclusions,
)
from cxrembed.data.table import row_ids, table_source
from cxrembed.errors import EvaluationInputError, VectorInputError
from cxrembed.evaluation.embedding_map import embedding_map
from cxrembed.evaluation.metrics.clustering import clustering_metrics
from cxrembed.evaluation.metrics.diagnosis import diagnosis_from
from cxrembed.evaluation.metrics.neighbours import Selection, query_gallery, scan_neighbours
from cxrembed.evaluation.metrics.relevance import RELEVANCE_RULE, label_sets
from cxrembed.evaluation.metrics.report import EvaluationResult
from cxrembed.evaluation.metrics.retrieval import (
    DEFAULT_KS,
    check_ks,
    fixed_k_from,
    graded_from,
    pml_metrics_from,
    retrieval_metrics,
)
from cxrlabel.vocab import Interval

__all__ = ["evaluate_embeddings", "evaluate_table", "retrieval_metrics"]

DEFAULT_DIAGNOSIS_K = 10


def evaluate_embeddings(
    embeddings: Any,
    labels: Any,
    *,
    names: Sequence[str] | None = None,
    query_mask: Any = None,
    gallery_mask: Any = None,
    groups: Any = None,
    exclude_same_group: bool = False,
    ks: Sequence[int] = DEFAULT_KS,
    diagnosis_k: int = DEFAULT_DIAGNOSIS_K,
    seed: int = 0,
    map_method: str | None = "auto",
    map_max_points: int = 3000,
    info: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Every metric of the evaluation on aligned arrays, from one exact ranking pass.

    Parameters
    ----------
    embeddings : array-like, shape (N, D)
        Compared by cosine similarity.
    labels : array-like, shape (N,) or (N, C)
        One class per row, or 0/1 findings (see :mod:`cxrembed.evaluation.metrics.relevance`).
    names : sequence of str, optional
        Finding names for N x C labels.
    query_mask, gallery_mask : bool array-like, shape (N,), optional
        Default: leave-one-out over all rows.
    groups : array-like, shape (N,), optional
        Patient ids; with ``exclude_same_group`` a query's own patient is left out of its
        gallery.
    exclude_same_group : bool
    ks : sequence of int
        Cut-offs of the fixed-k and graded metrics.
    diagnosis_k : int
        Neighbours voting in diagnosis by retrieval.
    seed : int
        Seeds k-means and the map.
    map_method : {"auto", "umap", "tsne", "pca"} or None
        2-D map drawn by :meth:`EvaluationResult.write`; None skips it.
    map_max_points : int
        Rows shown on the map (seeded subsample beyond that).
    info : mapping, optional
        Extra setting lines for the report (source files, config hash...).

    Returns
    -------
    EvaluationResult
    """
    ks = check_ks(ks)
    Interval(int, 1, None).check(diagnosis_k, "diagnosis_k", EvaluationInputError)
    where = Selection(query_mask, gallery_mask, groups, exclude_same_group)
    sets = label_sets(labels, None if names is None else list(names))
    qg = query_gallery(len(sets.sets), **where._asdict())
    nb = scan_neighbours(embeddings, sets, qg, depth=max(max(ks), int(diagnosis_k)))
    metrics = pml_metrics_from(nb)
    n_queries = int(metrics.pop("n_queries"))
    n_lone = int(metrics.pop("n_lone_queries"))
    metrics.update(fixed_k_from(nb, ks))
    if sets.multilabel:
        metrics.update(graded_from(nb, ks))
    in_queries = np.zeros(len(sets.sets), dtype=bool)
    in_queries[qg.queries] = True
    clusters = clustering_metrics(embeddings, sets.sets, query_mask=in_queries, seed=seed)
    metrics["NMI"], metrics["AMI"] = clusters["NMI"], clusters["AMI"]
    diagnosis = diagnosis_from(nb, int(diagnosis_k))
    metrics["diagnosis_macro_auroc"] = diagnosis.summary["macro_auroc"]
    metrics["diagnosis_macro_f1"] = diagnosis.summary["macro_f1"]
    if "accuracy" in diagnosis.summary:
        metrics["diagnosis_accuracy"] = diagnosis.summary["accuracy"]

    gallery = int(qg.gallery.sum())
    setting = {
        "rows evaluated": len(sets.sets),
        "labels": (
            f"multi-label, {len(sets.names)} findings"
            if sets.multilabel
            else f"single-label, {len(sets.names)} classes"
        ),
        "queries / gallery": (
            f"every row against every other: {n_queries:,} queries, each "
            "left out of its own gallery"
            if qg.leave_one_out
            else f"{n_queries} queries against a gallery of {gallery}"
        ),
        "same patient left out": "yes" if qg.exclude_same_group else "no",
        "queries": n_queries,
        "lone queries (no relevant row, left out of retrieval metrics)": n_lone,
        "relevance": RELEVANCE_RULE,
        "ks": ", ".join(str(k) for k in ks),
        "diagnosis k": int(diagnosis_k),
        "seed": seed,
    }
    setting.update(info or {})
    notes = _notes(n_lone, n_queries, clusters, diagnosis.per_finding)
    emap = labels_for_map = None
    if map_method is not None:
        emap = embedding_map(embeddings, method=map_method, max_points=map_max_points, seed=seed)
        labels_for_map = _map_labels(sets)
    return EvaluationResult(
        metrics, diagnosis, setting, notes, embedding_map=emap, map_labels=labels_for_map
    )


def evaluate_table(
    vectors: Any,
    ids: Sequence[Any],
    table: pd.DataFrame,
    *,
    labels: LabelOptions,
    id_col: str | None = None,
    image_col: str | None = None,
    split_col: str | None = None,
    query_split: str | Sequence[str] | None = None,
    gallery_split: str | None = None,
    group_col: str | None = None,
    exclude_same_group: bool = False,
    missing: Literal["error", "exclude"] = "error",
    ks: Sequence[int] = DEFAULT_KS,
    diagnosis_k: int = DEFAULT_DIAGNOSIS_K,
    seed: int = 0,
    map_method: str | None = "auto",
    config_hash: str | None = None,
    info: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Join embeddings to a labels table by id and evaluate them.

    Parameters
    ----------
    vectors : array-like, shape (N, D)
        The embeddings.
    ids : sequence, length N
        Their ids (as written by ``cxr embed``), matched as text to the table's ids.
    table : pandas.DataFrame
        The labels table (see :func:`cxrembed.data.table.read_table`).
    labels : cxrembed.data.labels.LabelOptions
        Which labels to read (schema, columns or one categorical column) and the uncertain
        policy: ``ones`` counts -1 as positive, ``zeros`` and ``ignore`` as not positive
        (retrieval relevance needs a yes/no); ``soft`` is refused. Blank observation labels
        are "not mentioned" (negative); rows whose categorical label is unknown (blank,
        ``todo``) and rows whose labeller ``status`` is not ``ok`` are excluded.
    id_col, image_col : str, optional
        The table's id: ``id_col``, else the ``image_col`` path (as ``cxr embed`` names
        images).
    split_col, query_split, gallery_split : str, optional
        Queries are the rows whose ``split_col`` equals ``query_split`` (or one of its
        values, for a sequence), the gallery those equal to ``gallery_split`` (the same
        value: leave-one-out inside that split). Rows in neither are excluded. Default:
        leave-one-out over all rows. A query never scores against itself.
    group_col : str, optional
        Patient id column; with ``exclude_same_group`` a query's patient is left out of its
        gallery.
    missing : {"error", "exclude"}
        Table ids without an embedding: an error, or excluded (and listed).
    ks, diagnosis_k, seed, map_method
        As in :func:`evaluate_embeddings`.
    config_hash : str, optional
        The embeddings' run config hash, recorded in the report.
    info : mapping, optional
        Extra setting lines for the report (where the split comes from...).

    Returns
    -------
    EvaluationResult
        With ``excluded`` listing every embedding or table row left out, and why.
    """
    source = table_source(table)
    emb_ids = _embedding_ids(vectors, ids)
    if missing not in ("error", "exclude"):
        raise EvaluationInputError(f"missing must be 'error' or 'exclude'; got {missing!r}")
    picked = _pick_rows(
        table,
        emb_ids,
        labels,
        id_col=id_col,
        image_col=image_col,
        split=(split_col, query_split, gallery_split),
        missing=missing,
    )
    rows = picked.rows
    y_labels, multilabel = _evaluated_labels(picked)
    groups = (
        None
        if group_col is None
        else _column(table, group_col, source).iloc[rows].to_numpy(dtype=object)
    )
    setting = _table_setting(source, picked, labels, len(emb_ids), config_hash, info)
    if split_col is not None:
        values = _column(table, split_col, source).astype(str).to_numpy()[rows]
        setting["queries / gallery"] = describe_split(
            values, picked.query[rows], picked.gallery[rows], groups
        )
    result = evaluate_embeddings(
        _numpy(vectors)[picked.emb_rows],
        y_labels,
        names=picked.names if multilabel else None,
        query_mask=None if split_col is None else picked.query[rows],
        gallery_mask=None if split_col is None else picked.gallery[rows],
        groups=groups,
        exclude_same_group=exclude_same_group,
        ks=ks,
        diagnosis_k=diagnosis_k,
        seed=seed,
        map_method=map_method,
        info=setting,
    )
    return _with_exclusions(result, picked.excluded)


def _evaluated_labels(picked: _Picked) -> tuple[Any, bool]:
    """The labels as :func:`evaluate_embeddings` takes them, and whether they are
    multi-label: a categorical column stays one class per row unless a row holds several."""
    y = np.nan_to_num(picked.targets[picked.rows], nan=0.0)
    multilabel = bool(not picked.categorical or (y.sum(axis=1) > 1).any())
    if multilabel:
        return y, True
    return np.asarray(picked.names, dtype=object)[y.argmax(axis=1)], False


def _table_setting(
    source: str,
    picked: _Picked,
    labels: LabelOptions,
    n_embeddings: int,
    config_hash: str | None,
    info: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The report's setting lines about the labels table, before the split line (the
    order they are shown in)."""
    setting: dict[str, Any] = {
        "labels table": source,
        "label columns": ", ".join(picked.names)
        if not picked.categorical
        else f"{labels.label_col} (categorical)",
        "uncertain (-1)": "positive" if labels.policy == "ones" else "not positive",
        "embeddings given": n_embeddings,
        "rows excluded (see excluded.csv)": len(picked.excluded),
    }
    if config_hash is not None:
        setting["config hash"] = config_hash
    setting.update(info or {})
    return setting


def _with_exclusions(result: EvaluationResult, excluded: list[Exclusion]) -> EvaluationResult:
    """``result`` with the left-out rows: counted by kind in a note, listed one per row in
    its ``excluded`` table, so nothing is dropped silently."""
    notes = list(result.notes)
    if excluded:
        counts = Counter(e.kind for e in excluded)
        notes.append(
            "excluded: "
            + ", ".join(f"{n} {kind}" for kind, n in counts.items())
            + " (one row each in excluded.csv)"
        )
    return EvaluationResult(
        result.metrics,
        result.diagnosis,
        result.info,
        notes,
        excluded_frame(excluded),
        result.embedding_map,
        result.map_labels,
    )


@dataclass
class _Picked:
    """The labels-table rows evaluated (in embedding order) and every row left out."""

    rows: np.ndarray
    emb_rows: np.ndarray
    targets: np.ndarray
    names: list[str]
    categorical: bool
    query: np.ndarray
    gallery: np.ndarray
    excluded: list[Exclusion]


def _embedding_ids(vectors: Any, ids: Sequence[Any]) -> np.ndarray:
    emb_ids = as_ids(ids, source="embedding ids")
    n_vectors = len(_numpy(vectors))
    if n_vectors != len(emb_ids):
        raise VectorInputError(
            f"{len(emb_ids)} embedding ids were given for {n_vectors} vectors; expected one id "
            "per vector row"
        )
    return emb_ids


def _pick_rows(
    table: pd.DataFrame,
    emb_ids: np.ndarray,
    labels: LabelOptions,
    *,
    id_col: str | None,
    image_col: str | None,
    split: tuple[str | None, str | None, str | None],
    missing: str,
) -> _Picked:
    """Match table rows to embeddings; leave out (and list) every row that cannot be scored."""
    source = table_source(table)
    table_ids = _table_ids(table, id_col, image_col, source)
    emb_row = {str(v): i for i, v in enumerate(emb_ids.tolist())}
    absent = [r for r, t in enumerate(table_ids) if t not in emb_row]
    if absent and missing == "error":
        raise EvaluationInputError(
            f"{len(absent)} ids of {source} have no embedding, e.g. {table_ids[absent[0]]!r} "
            f"(row {absent[0]}); expected every labelled row to be embedded. Fix: embed those "
            "images, drop the rows (e.g. images cxr embed excluded), or pass missing='exclude' "
            "to leave them out (they are listed in excluded.csv)"
        )
    excluded = [
        exclusion(r, table_ids[r], None, "no-embedding", "no embedding for this labels-table id")
        for r in absent
    ]
    keep = np.ones(len(table), dtype=bool)
    keep[absent] = False

    def leave_out(mask: np.ndarray, kind: str, reason: Callable[[int], str]) -> None:
        excluded.extend(
            exclusion(r, table_ids[r], None, kind, reason(r)) for r in np.flatnonzero(keep & mask)
        )
        keep[mask] = False

    for record in status_exclusions(table, table_ids, labels.status_col):
        if keep[record.row]:
            keep[record.row] = False
            excluded.append(record)
    targets, names, categorical = _resolve_labels(table, labels, source)
    if categorical:
        leave_out(
            np.isnan(targets).all(axis=1),
            "unknown-label",
            lambda r: "label unknown (blank or one of the unknown values)",
        )
    split_col = split[0]
    query, gallery, in_split = _split(table, *split, source)
    leave_out(
        ~in_split,
        "outside-split",
        lambda r: f"split {table[split_col].iloc[r]!r} is neither the query nor the gallery split",
    )
    in_table = set(table_ids)
    excluded += [
        exclusion(None, i, None, "no-label-row", "no row in the labels table")
        for i in emb_row
        if i not in in_table
    ]
    rows = np.flatnonzero(keep)
    if len(rows) < 2:
        raise EvaluationInputError(
            f"only {len(rows)} labelled rows of {source} match the embeddings; expected at "
            "least 2. Check the id column and that the embeddings come from these images"
        )
    rows = rows[np.argsort([emb_row[table_ids[r]] for r in rows], kind="stable")]
    emb_rows = np.array([emb_row[table_ids[r]] for r in rows], dtype=np.int64)
    return _Picked(rows, emb_rows, targets, names, categorical, query, gallery, excluded)


def _numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _table_ids(
    table: pd.DataFrame, id_col: str | None, image_col: str | None, source: str
) -> list[str]:
    if id_col is None and image_col is None:
        raise EvaluationInputError(f"name the id column of {source} with id_col= (or image_col=)")
    try:
        values = row_ids(table, image_col=image_col, id_col=id_col)
    except (KeyError, ValueError) as exc:
        raise EvaluationInputError(str(exc)) from exc
    check_table_ids(
        values,
        column=f"{source} column {id_col or image_col!r}",
        error=EvaluationInputError,
        repeated="has id",
    )
    return [str(v) for v in values]


def _resolve_labels(
    table: pd.DataFrame, labels: LabelOptions, source: str
) -> tuple[np.ndarray, list[str], bool]:
    """float N x C: 1 / 0 after the uncertain policy, NaN rows = unknown categorical label."""
    matrix = labels.matrix(table, source=source)
    values = matrix.values.astype(np.float32).copy()
    if labels.policy == "soft":
        raise EvaluationInputError(
            "the 'soft' uncertain policy gives fractional labels, but retrieval relevance "
            "needs yes/no; evaluate with policy 'zeros', 'ones' or 'ignore'"
        )
    values[values == UNCERTAIN] = POSITIVE if labels.policy == "ones" else NEGATIVE
    if not matrix.categorical:
        values = np.nan_to_num(values, nan=0.0)
    return values, list(matrix.names), matrix.categorical


def _split(
    table: pd.DataFrame,
    split_col: str | None,
    query_split: str | None,
    gallery_split: str | None,
    source: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(table)
    if split_col is None:
        if query_split is not None or gallery_split is not None:
            raise EvaluationInputError("query_split / gallery_split need split_col=")
        everything = np.ones(n, dtype=bool)
        return everything, everything, everything
    if query_split is None or gallery_split is None:
        raise EvaluationInputError(
            f"split_col={split_col!r} needs both query_split= and gallery_split= (the same "
            "value for leave-one-out inside one split)"
        )
    split = _column(table, split_col, source).astype(str).to_numpy()
    query = np.isin(split, _values(query_split))
    gallery = split == str(gallery_split)
    for name, mask, value in (("query", query, query_split), ("gallery", gallery, gallery_split)):
        if not mask.any():
            raise EvaluationInputError(
                f"no row of {source} has {split_col} = {value!r} (the {name} split); found "
                f"values {sorted(set(split.tolist()))[:10]}"
            )
    return query, gallery, query | gallery


def _values(split: str | Sequence[str]) -> list[str]:
    return [split] if isinstance(split, str) else [str(v) for v in split]


def describe_split(values: Any, query: Any, gallery: Any, groups: Any = None) -> str:
    """One line naming the queries and the gallery by split value, with their patients.

    Examples
    --------
    >>> describe_split(np.array(["test", "test", "train", "train", "train"]),
    ...                np.array([1, 1, 0, 0, 0], bool), np.array([0, 0, 1, 1, 1], bool),
    ...                np.array(["p1", "p1", "p2", "p3", "p3"], object))
    'queries: 2 test images of 1 patient vs gallery: 3 train images of 2 patients'
    """
    values = np.asarray(values, dtype=object)

    def side(mask: Any) -> str:
        mask = np.asarray(mask, dtype=bool)
        counts = Counter(values[mask].tolist())
        n = int(mask.sum())
        if len(counts) == 1:
            text = f"{n:,} {next(iter(counts))} image{'s' if n != 1 else ''}"
        else:
            parts = ", ".join(f"{c:,} {v}" for v, c in sorted(counts.items()))
            text = f"{n:,} images ({parts})"
        if groups is not None:
            given = [
                g
                for g in np.asarray(groups, dtype=object)[mask].tolist()
                if g is not None and not (isinstance(g, float) and np.isnan(g))
            ]
            known = len(set(given))
            text += f" of {known:,} patient{'s' if known != 1 else ''}"
            if len(given) < n:
                text += f" (+ {n - len(given):,} without a patient id)"
        return text

    return f"queries: {side(query)} vs gallery: {side(gallery)}"


def _column(table: pd.DataFrame, name: str, source: str) -> pd.Series:
    if name not in table.columns:
        raise EvaluationInputError(
            f"{source} has no column {name!r}; found columns {list(table.columns)}"
        )
    return table[name]


def _map_labels(sets: Any) -> list[str]:
    """One colour label per row: the class, or the single finding / "no finding" /
    "several findings"."""
    targets = sets.targets > 0.5
    out = []
    for row in targets:
        found = [sets.names[i] for i in np.flatnonzero(row)]
        if not sets.multilabel or len(found) == 1:
            out.append(found[0])
        else:
            out.append("no finding" if not found else "several findings")
    return out


def _notes(
    n_lone: int, n_queries: int, clusters: Mapping[str, float], per_finding: pd.DataFrame
) -> list[str]:
    notes = []
    if n_lone:
        notes.append(
            f"{n_lone} of {n_queries} queries have no relevant row in their gallery "
            "and are left out of the retrieval metrics"
        )
    if np.isnan(clusters["NMI"]):
        notes.append("NMI / AMI undefined: the queries hold a single class")
    for record in per_finding.itertuples(index=False):
        if record.note:
            notes.append(f"{record.finding}: {record.note}")
    return notes
