"""Transfer of image embeddings to a clinical prediction: image + tabular columns -> outcome.

The COVID paper's intubation task: does a radiograph's embedding predict an outcome
(intubation, ICU admission, survival), alone, compared with clinical columns (age,
temperature, oxygen saturation...), and combined with them?

:func:`predict_outcome` compares up to three feature sets on the *same* rows (rows with a
target and an embedding): ``image-only`` (the embedding, optionally PCA-reduced), ``tabular-only``
(the clinical columns) and ``combined``, each with two scikit-learn models:

- ``logistic``: standardised features, L2 logistic regression, ``class_weight="balanced"``;
  missing clinical values are imputed with the training fold's median plus a missing-indicator
  column;
- ``gradient_boosting``: ``HistGradientBoostingClassifier`` with balanced class weights; it
  handles missing values natively.

Every preprocessing step (imputation, scaling, PCA) is fitted inside the cross-validation
folds, so no test row informs it. Folds are patient-grouped when ``group_col`` is given: a
patient's images are never in the training and test part of one fold. The reported AUROC is
that of the pooled out-of-fold scores; its 95% CI is a percentile bootstrap over patients (or
rows without ``group_col``) of those scores, the same draws for every model, so differences
between feature sets are paired.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from cxrembed.data.table import read_table, row_ids, table_source
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.embeddings.join import MISSING_COLUMNS, join_embeddings
from cxrembed.errors import OutcomeInputError
from cxrembed.outcome.bootstrap import bootstrap_weights, percentile_ci, weighted_auroc
from cxrembed.outcome.columns import encode_features, encode_target
from cxrembed.outcome.report import OutcomeResult
from cxrlabel.vocab import Interval

__all__ = ["predict_outcome", "outcome_splits", "CvPlan", "MODELS", "FEATURE_SETS"]

#: Model names accepted by :func:`predict_outcome`.
MODELS: tuple[str, ...] = ("logistic", "gradient_boosting")
#: Feature sets, in report order.
FEATURE_SETS: tuple[str, ...] = ("image-only", "tabular-only", "combined")


@dataclass(frozen=True)
class CvPlan:
    """Cross-validation folds and how they were made.

    Attributes
    ----------
    splits : list of (numpy.ndarray, numpy.ndarray)
        (train rows, test rows) per fold; the test rows partition all rows.
    method : str
        ``StratifiedGroupKFold``, ``GroupKFold`` or ``StratifiedKFold``.
    notes : list of str
        Fewer folds than asked, folds whose test part holds one class...
    """

    splits: list[tuple[np.ndarray, np.ndarray]]
    method: str
    notes: list[str]


def outcome_splits(
    y: np.ndarray, groups: np.ndarray | None = None, n_splits: int = 5, seed: int = 0
) -> CvPlan:
    """Patient-grouped, stratified folds for a binary target.

    With ``groups``, ``StratifiedGroupKFold`` is used when every training part then holds
    both classes, else ``GroupKFold``; without, ``StratifiedKFold``. When fewer units
    (patients, or rows) than ``n_splits`` carry the rarer class, the number of folds is
    reduced to that count with a note; below 2 it is an error.

    Examples
    --------
    >>> y = np.array([0, 1] * 10); g = np.repeat(np.arange(10), 2)
    >>> plan = outcome_splits(y, g, n_splits=5)
    >>> plan.method, len(plan.splits)
    ('StratifiedGroupKFold', 5)
    >>> all(not set(g[tr]) & set(g[te]) for tr, te in plan.splits)
    True
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y).astype(int)
    Interval(int, 2, None).check(n_splits, "n_splits", OutcomeInputError)
    unit = "patients" if groups is not None else "rows"
    units = groups if groups is not None else np.arange(len(y))
    counts = {c: len(set(units[y == c].tolist())) for c in (0, 1)}
    fewest = min(counts.values())
    rarer = "positive" if counts[1] <= counts[0] else "negative"
    if fewest < 2:
        raise OutcomeInputError(
            f"only {fewest} {unit} with a {rarer} target; cross-validation needs at least 2 "
            "per class. Fix: add data, or choose a target with more events"
        )
    notes: list[str] = []
    k = int(n_splits)
    if fewest < k:
        notes.append(
            f"folds reduced from {k} to {fewest}: only {fewest} {unit} have a {rarer} target"
        )
        k = fewest
    index = np.zeros(len(y))
    if groups is None:
        splitter: Any = StratifiedKFold(k, shuffle=True, random_state=seed)
        splits = list(splitter.split(index, y))
        method = "StratifiedKFold"
    else:
        splits = list(
            StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(index, y, groups)
        )
        method = "StratifiedGroupKFold"
        if not _trainable(splits, y):
            splits = list(GroupKFold(k, shuffle=True, random_state=seed).split(index, y, groups))
            method = "GroupKFold"
            notes.append(
                "StratifiedGroupKFold left a training part with one class; used GroupKFold instead"
            )
    if not _trainable(splits, y):
        raise OutcomeInputError(
            f"no {k}-fold split of these {unit} gives every training part both classes. Fix: "
            "use fewer folds (--folds)"
        )
    one_class = sum(len(set(y[test].tolist())) < 2 for _, test in splits)
    if one_class:
        notes.append(
            f"{one_class} of {k} test folds hold one class: their per-fold AUROC is "
            "undefined (the pooled out-of-fold AUROC is not affected)"
        )
    return CvPlan([(np.asarray(tr), np.asarray(te)) for tr, te in splits], method, notes)


def _trainable(splits: list[tuple[np.ndarray, np.ndarray]], y: np.ndarray) -> bool:
    return all(len(set(y[train].tolist())) == 2 for train, _ in splits)


def predict_outcome(
    embeddings: EmbeddingSet | str | os.PathLike[str] | None,
    table: pd.DataFrame | str | os.PathLike[str],
    target: str,
    features: Sequence[str] | None = None,
    id_col: str = "id",
    group_col: str | None = None,
    n_splits: int = 5,
    seed: int = 0,
    bootstrap: int = 1000,
    *,
    pca: int | None = None,
    models: Sequence[str] = MODELS,
    missing_values: Sequence[str] = (),
    missing_ids: Literal["exclude", "error"] = "exclude",
    ids_file: str | os.PathLike[str] | None = None,
    threads: int | None = 1,
) -> OutcomeResult:
    """Predict a yes/no outcome from embeddings, clinical columns and both, cross-validated.

    Parameters
    ----------
    embeddings : EmbeddingSet, path or None
        The image embeddings (a path is read with :meth:`EmbeddingSet.load`); None for a
        tabular-only run.
    table : pandas.DataFrame or path
        One row per image: the id, the target, the features, the patient id.
    target : str
        The outcome column (Y/N, yes/no, true/false, 1/0; blank = missing).
    features : sequence of str, optional
        Clinical columns (numbers, yes/no, or categories); None for an image-only run.
    id_col : str
        The table column holding the embedding ids.
    group_col : str, optional
        Patient id column: folds and the bootstrap are by patient. Without it rows are
        treated as independent (optimistic when patients have several images).
    n_splits : int
        Folds (reduced, with a note, when the rarer class has fewer patients).
    seed : int
        Seeds the folds, the models and the bootstrap.
    bootstrap : int
        Bootstrap draws for the 95% CIs (0: no CI).
    pca : int, optional
        Reduce the embedding to this many principal components inside each fold.
    models : sequence of str
        Among :data:`MODELS`.
    missing_values : sequence of str
        Text meaning "missing" in the target and features (case-insensitive), e.g.
        ``["Not visible"]``.
    missing_ids : {"exclude", "error"}
        Table rows without an embedding: excluded (and listed) or an error.
    ids_file : path-like, optional
        Ids file of a ``.npy`` ``embeddings`` path.
    threads : int, optional
        BLAS / OpenMP threads while fitting (None: the libraries' default). One thread is
        several times faster on the few hundred rows of a clinical table; raise it for large
        tables.

    Returns
    -------
    OutcomeResult
        Side-by-side AUROCs; ``excluded`` lists every table row left out, and why.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 120; x = rng.normal(size=(n, 4)).astype(np.float32)
    >>> y = (x[:, 0] + 0.3 * rng.normal(size=n) > 0)
    >>> emb = EmbeddingSet([f"i{i}" for i in range(n)], x)
    >>> t = pd.DataFrame({"id": emb.ids, "dead": np.where(y, "Y", "N"), "age": rng.normal(size=n)})
    >>> r = predict_outcome(emb, t, "dead", ["age"], models=["logistic"], bootstrap=100)
    >>> list(zip(r.table["features"], r.table["auroc"] > 0.8))
    [('image-only', True), ('tabular-only', False), ('combined', True)]
    """
    _check_request(embeddings, features, models, bootstrap)
    if embeddings is not None and not isinstance(embeddings, EmbeddingSet):
        embeddings = EmbeddingSet.load(embeddings, ids=ids_file)
    table = read_table(table, text_columns=[id_col, group_col])
    source = table_source(table)
    features = list(features or [])
    _check_columns(table, source, target, features, id_col, group_col)
    cohort = _cohort(embeddings, table, target, id_col, missing_ids, missing_values)
    rows, y = cohort.rows, cohort.y
    groups = None if group_col is None else _groups(table[group_col].iloc[rows], source, group_col)
    coded = (
        None
        if not features
        else encode_features(
            table.iloc[rows], features, source=source, missing_values=missing_values
        )
    )
    plan = outcome_splits(y, groups, n_splits, seed)
    _check_pca(pca, cohort.vectors, plan)
    tab = None if coded is None else coded.values
    scores, notes = _score_all(cohort.vectors, tab, y, plan, models, pca, seed, threads)
    units = groups if groups is not None else np.arange(len(y))
    table_out, comparisons, boot_note = _auroc_table(scores, y, units, bootstrap, seed, plan)
    setting = _Setting(source, target, group_col, groups, embeddings, pca, coded, bootstrap, seed)
    notes = list(plan.notes) + notes + ([boot_note] if boot_note else [])
    if group_col is None:
        notes.append(
            "no patient column: rows are treated as independent, which is optimistic "
            "when patients have several images (pass group_col / --group-col)"
        )
    if coded is not None:
        notes.append("tabular columns coded as: " + ", ".join(coded.names))
    return OutcomeResult(
        table_out,
        comparisons,
        setting.info(y, plan, cohort),
        notes,
        cohort.excluded,
        _predictions(cohort, groups, plan, scores),
        cohort.missing_ids,
    )


def _check_request(
    embeddings: Any, features: Sequence[str] | None, models: Sequence[str], bootstrap: int
) -> None:
    bad_models = [m for m in models if m not in MODELS]
    if bad_models or not models:
        raise OutcomeInputError(f"models must be among {list(MODELS)}; got {list(models)}")
    Interval(int, 0, None).check(bootstrap, "bootstrap (0: no interval)", OutcomeInputError)
    if embeddings is None and not features:
        raise OutcomeInputError(
            "nothing to predict from: give embeddings, feature columns (--features), or both"
        )


@dataclass(frozen=True)
class _Setting:
    """What a run used, for the report's setting lines."""

    source: str
    target: str
    group_col: str | None
    groups: np.ndarray | None
    embeddings: EmbeddingSet | None
    pca: int | None
    coded: Any
    bootstrap: int
    seed: int

    def info(self, y: np.ndarray, plan: CvPlan, cohort: _Cohort) -> dict[str, Any]:
        emb, coded, groups = self.embeddings, self.coded, self.groups
        return {
            "table": self.source,
            "target": self.target,
            "positives / rows": f"{int(y.sum())} / {len(y)}",
            "patients": len(set(groups.tolist()))
            if groups is not None
            else "not given (rows independent)",
            "image features": "none"
            if emb is None
            else (
                f"{emb.dim}-dimensional embeddings"
                + (f", PCA to {self.pca} inside each fold" if self.pca else "")
            ),
            "embeddings config hash": None if emb is None else emb.config_hash,
            "tabular features": "none"
            if coded is None
            else ", ".join(f"{f} ({kind})" for f, kind in coded.kinds.items()),
            "cross-validation": f"{plan.method}, {len(plan.splits)} folds"
            + (f" grouped by {self.group_col}" if self.group_col else ""),
            "AUROC": "of the pooled out-of-fold scores",
            "95% CI": (
                f"percentile bootstrap, {self.bootstrap} draws of "
                f"{'patients' if groups is not None else 'rows'} (models not refitted)"
                if self.bootstrap
                else "not computed"
            ),
            "seed": self.seed,
            "rows excluded (see excluded.csv)": len(cohort.excluded),
            "embeddings without a table row (see missing_ids.csv)": int(
                (cohort.missing_ids["side"] == "embeddings").sum()
            ),
        }


def _predictions(
    cohort: _Cohort,
    groups: np.ndarray | None,
    plan: CvPlan,
    scores: dict[tuple[str, str], np.ndarray],
) -> pd.DataFrame:
    predictions = pd.DataFrame({"id": cohort.ids, "row": cohort.rows, "target": cohort.y})
    if groups is not None:
        predictions["group"] = groups
    predictions["fold"] = _fold_of(plan, len(cohort.y))
    for (name, model), values in scores.items():
        predictions[f"{name}/{model}"] = values
    return predictions


@dataclass(frozen=True)
class _Cohort:
    """The rows used: with an embedding (when given) and a known target."""

    rows: np.ndarray
    ids: list[str]
    y: np.ndarray
    vectors: np.ndarray | None
    excluded: pd.DataFrame
    missing_ids: pd.DataFrame


def _cohort(
    embeddings: EmbeddingSet | None,
    table: pd.DataFrame,
    target: str,
    id_col: str,
    missing_ids: Literal["exclude", "error"],
    missing_values: Sequence[str],
) -> _Cohort:
    source = table_source(table)
    excluded: list[tuple[str, int, str]] = []
    rows = np.arange(len(table))
    ids = [v or "" for v in row_ids(table, image_col=None, id_col=id_col)]
    vectors = None
    id_report = pd.DataFrame(columns=MISSING_COLUMNS)
    if embeddings is not None:
        joined = join_embeddings(embeddings, table, id_col, missing=missing_ids)
        lost = joined.missing[joined.missing["side"] == "table"]
        excluded += [
            (i, int(r), "no embedding for this id")
            for i, r in zip(lost["id"], lost["row"], strict=True)
        ]
        id_report = joined.missing
        rows, ids = joined.rows, list(joined.ids)
        vectors = embeddings.vectors[joined.vector_rows].astype(np.float64)
    values = table[target].iloc[rows]
    y = encode_target(values, source=source, missing_values=missing_values)
    known = ~np.isnan(y)
    excluded += [
        (ids[i], int(rows[i]), f"target {target!r} missing (value {_shown(values.iloc[i])})")
        for i in np.flatnonzero(~known)
    ]
    y = y[known].astype(int)
    if len(set(y.tolist())) < 2:
        raise OutcomeInputError(
            f"{source}: target {target!r} has one class only ({len(y)} rows with a target, all "
            f"{'positive' if len(y) and y[0] == 1 else 'negative'}); an outcome needs both. "
            "Fix: check the column and the missing values"
        )
    return _Cohort(
        rows[known],
        [ids[i] for i in np.flatnonzero(known)],
        y,
        None if vectors is None else vectors[known],
        pd.DataFrame(excluded, columns=["id", "row", "reason"]),
        id_report,
    )


def _score_all(
    vectors: np.ndarray | None,
    tab: np.ndarray | None,
    y: np.ndarray,
    plan: CvPlan,
    models: Sequence[str],
    pca: int | None,
    seed: int,
    threads: int | None,
) -> tuple[dict[tuple[str, str], np.ndarray], list[str]]:
    """Out-of-fold scores of every available (feature set, model), and fitting notes."""
    blocks = {
        "image-only": (vectors, None),
        "tabular-only": (None, tab),
        "combined": (vectors, tab),
    }
    needs = {"image-only": (vectors,), "tabular-only": (tab,), "combined": (vectors, tab)}
    scores: dict[tuple[str, str], np.ndarray] = {}
    notes: list[str] = []
    for name in FEATURE_SETS:
        if any(part is None for part in needs[name]):
            continue
        image, tabular = blocks[name]
        for model in models:
            with threadpool_limits(threads):
                scores[(name, model)], fit_notes = _out_of_fold(
                    image, tabular, y, plan, model, pca, seed
                )
            notes += [f"{name} / {model}: {n}" for n in fit_notes]
    return scores, notes


def _check_columns(
    table: pd.DataFrame,
    source: str,
    target: str,
    features: list[str],
    id_col: str,
    group_col: str | None,
) -> None:
    for role, col in (("target", target), ("id", id_col), ("group", group_col)):
        if col is not None and col not in table.columns:
            raise OutcomeInputError(
                f"{source} has no {role} column {col!r}; found columns {list(table.columns)}"
            )
    for role, col in (("target", target), ("id", id_col)):
        if col in features:
            raise OutcomeInputError(
                f"the {role} column {col!r} cannot also be a feature; remove it from the features"
            )


def _groups(column: pd.Series, source: str, group_col: str) -> np.ndarray:
    blank = column.isna().to_numpy() | (column.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        raise OutcomeInputError(
            f"{source}: group column {group_col!r} is blank at {int(blank.sum())} rows with a "
            "target; expected a patient id on every row. Fix: fill them (a unique id per "
            "unknown patient keeps them apart)"
        )
    return column.astype(str).to_numpy(dtype=object)


def _check_pca(pca: int | None, vectors: np.ndarray | None, plan: CvPlan) -> None:
    if pca is None:
        return
    if vectors is None:
        raise OutcomeInputError("pca= reduces the embeddings, but no embeddings were given")
    smallest = min(len(train) for train, _ in plan.splits)
    limit = min(vectors.shape[1], smallest)
    if not Interval(int, 1, limit).contains(pca):
        raise OutcomeInputError(
            f"pca must be an int from 1 to {limit} (the embedding dimension, {vectors.shape[1]}, "
            f"and the smallest training fold, {smallest} rows); got {pca!r}"
        )


def _model(model: str, n_image: int, n_tab: int, pca: int | None, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logistic = model == "logistic"
    parts = []
    if n_image:
        steps = ([StandardScaler()] if logistic else []) + (
            [PCA(pca, random_state=seed)] if pca else []
        )
        parts.append(
            ("image", make_pipeline(*steps) if steps else "passthrough", list(range(n_image)))
        )
    if n_tab:
        steps = (
            [
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                StandardScaler(),
            ]
            if logistic
            else []
        )
        parts.append(
            (
                "tabular",
                make_pipeline(*steps) if steps else "passthrough",
                list(range(n_image, n_image + n_tab)),
            )
        )
    classifier = (
        LogisticRegression(class_weight="balanced", max_iter=5000)
        if logistic
        else HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
    )
    return make_pipeline(ColumnTransformer(parts), classifier)


def _out_of_fold(
    image: np.ndarray | None,
    tabular: np.ndarray | None,
    y: np.ndarray,
    plan: CvPlan,
    model: str,
    pca: int | None,
    seed: int,
) -> tuple[np.ndarray, list[str]]:
    from sklearn.base import clone

    blocks = [b for b in (image, tabular) if b is not None]
    x = np.concatenate(blocks, axis=1)
    template = _model(
        model,
        0 if image is None else image.shape[1],
        0 if tabular is None else tabular.shape[1],
        pca,
        seed,
    )
    scores = np.full(len(y), np.nan)
    notes: set[str] = set()
    for train, test in plan.splits:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # local: collected into the report's notes
            fitted = clone(template).fit(x[train], y[train])
            scores[test] = fitted.predict_proba(x[test])[:, 1]
        notes.update(f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught)
    return scores, sorted(notes)


def _fold_of(plan: CvPlan, n: int) -> np.ndarray:
    fold = np.full(n, -1, dtype=np.int64)
    for k, (_, test) in enumerate(plan.splits):
        fold[test] = k
    return fold


def _shown(value: Any) -> str:
    return "blank" if pd.isna(value) or not str(value).strip() else repr(str(value))


def _auroc_table(
    scores: dict[tuple[str, str], np.ndarray],
    y: np.ndarray,
    units: np.ndarray,
    bootstrap: int,
    seed: int,
    plan: CvPlan,
) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """One row per (feature set, model), and paired differences between feature sets."""
    weights = bootstrap_weights(units, bootstrap, seed) if bootstrap else None
    n_units = len(set(units.tolist()))
    records, boot = [], {}
    for (name, model), s in scores.items():
        auroc = float(weighted_auroc(s, y)[0])
        low = high = float("nan")
        if weights is not None:
            boot[(name, model)] = weighted_auroc(s, y, weights)
            low, high, _ = percentile_ci(boot[(name, model)])
        folds = [float(weighted_auroc(s[test], y[test])[0]) for _, test in plan.splits]
        defined = [f for f in folds if np.isfinite(f)]
        records.append(
            {
                "features": name,
                "model": model,
                "n": len(y),
                "positives": int(y.sum()),
                "units": n_units,
                "auroc": auroc,
                "ci_low": low,
                "ci_high": high,
                "fold_auroc_mean": float(np.mean(defined)) if defined else float("nan"),
                "fold_auroc_sd": float(np.std(defined, ddof=1))
                if len(defined) > 1
                else float("nan"),
                "folds": len(folds),
            }
        )
    pairs = []
    for model in dict.fromkeys(m for _, m in scores):
        present = [f for f in FEATURE_SETS if (f, model) in scores]
        for i, a in enumerate(present):
            for b in present[i + 1 :]:
                first, second = (b, a) if b == "combined" else (a, b)
                delta = _record_auroc(records, first, model) - _record_auroc(records, second, model)
                low = high = float("nan")
                if weights is not None:
                    low, high, _ = percentile_ci(boot[(first, model)] - boot[(second, model)])
                pairs.append(
                    {
                        "model": model,
                        "comparison": f"{first} - {second}",
                        "delta_auroc": delta,
                        "ci_low": low,
                        "ci_high": high,
                    }
                )
    note = None
    if weights is not None:
        one_class = int(np.isnan(next(iter(boot.values()))).sum())
        if one_class:
            note = (
                f"{one_class} of {bootstrap} bootstrap draws held one class and were left "
                "out of the CIs"
            )
    comparisons = pd.DataFrame(
        pairs, columns=["model", "comparison", "delta_auroc", "ci_low", "ci_high"]
    )
    return pd.DataFrame(records), comparisons, note


def _record_auroc(records: list[dict[str, Any]], features: str, model: str) -> float:
    """The AUROC of one (feature set, model) row of the records."""
    return next(r["auroc"] for r in records if r["features"] == features and r["model"] == model)
