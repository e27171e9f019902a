"""Shared steps of the real-image benchmarks (retrieval_real, label_noise, transfer_covid,
retrieval_covid).

Every benchmark here runs the same chain a user runs, through the library functions behind
the CLI: ``cxr prepare`` (:func:`prepare_cache`) -> ``cxr train`` (:func:`train`) -> ``cxr
embed`` (:func:`embed_images`) -> retrieval of held-out (test) patients against the
training patients' gallery, with patient-bootstrap 95% intervals
(:func:`cxrembed.evaluation.metrics.intervals.retrieval_with_intervals`).

Collections (read from ``../shared/data`` by path, never copied):

``kermany``
    ``kermany_dev``: 3,522 pediatric chest X-rays, 1,870 patients, subtype normal /
    bacteria / virus; the binary group for the vote AUROC is pneumonia (bacteria or virus).
``covid``
    ``cxr_dev``'s COVID-19 image data collection, frontal views, COVID-19 vs other
    (unverified ``todo`` findings are neither trained on nor scored).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import common
import numpy as np
import pandas as pd
from common import CXR_DEV
from common import KERMANY_DEV as KERMANY

if TYPE_CHECKING:
    from torch import nn, optim
    from torch.utils.data import DataLoader

    from cxrembed.data.samplers import MultiLabelBatchSampler
    from cxrembed.train.checkpoint import RunFolder
    from cxrembed.train.config import RunConfig
    from cxrembed.train.data import TrainData


@dataclass(frozen=True)
class Spec:
    """How a collection is trained and scored."""

    name: str
    data: Path
    label: str
    group: str
    positive: tuple[str, ...]
    positive_name: str
    image_size: int
    epochs: int


SPECS = {
    "kermany": Spec(
        "kermany", KERMANY, "subtype", "patient_id", ("bacteria", "virus"), "pneumonia", 64, 8
    ),
    "covid": Spec("covid", CXR_DEV, "covid", "patientid", ("COVID-19",), "COVID-19", 128, 10),
}


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The options every real-image benchmark takes."""
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--split-seed", type=int, default=0, help="test-patient split seed")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws")
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs here")


def chosen_names(
    parser: argparse.ArgumentParser, flag: str, value: str, known: Iterable[str]
) -> list[str]:
    """The comma-separated names of ``flag`` (``all``: every known one), in order.

    An unknown name stops the benchmark before any training, naming the known ones, so a
    typo is not silently skipped an hour into a run.
    """
    known = list(known)
    names = known if value == "all" else [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown {flag} {unknown}; choose from {known} or 'all'")
    return names


def start(script: str, argv: list[str] | None, args: argparse.Namespace) -> Path:
    """Print the command and the machine (cores, load, torch); return the output folder."""
    import torch

    print(common.command_line(script, argv))
    print(
        f"machine: {os.cpu_count()} CPUs, {load_average()}; torch {torch.__version__}, "
        f"{args.threads} thread(s)"
    )
    out = args.out or Path(tempfile.mkdtemp(prefix=f"{Path(script).stem}_"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def load_average() -> str:
    """``load average 1.02, 0.80, 0.55`` (1, 5 and 15 minutes)."""
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def finish(started: float) -> None:
    """The wall time and the load at the end."""
    print(f"wall time: {time.perf_counter() - started:.0f} s; {load_average()} at the end")


def marker(spec: Spec) -> Path:
    """The file that shows the collection's folder is on this machine."""
    return spec.data / ("labels.csv" if spec.name == "kermany" else "covid_metadata.csv")


def skipped(*specs: Spec) -> bool:
    """True, after saying which, when a collection the benchmark needs is absent."""
    return common.skipped(*(marker(spec) for spec in specs))


def load_split(
    spec: Spec, *, test_fraction: float = 0.25, seed: int = 0
) -> tuple[pd.DataFrame, Path]:
    """The collection's table (scored rows only) with a patient-disjoint ``split`` column."""
    from cxrembed.collections.kermany import patient_split

    if spec.name == "kermany":
        from cxrembed.collections.kermany import read_kermany_collection

        collection = read_kermany_collection(spec.data)
    else:
        from cxrembed.collections.covid import read_covid_collection

        collection = read_covid_collection(spec.data, frontal_only=True)
    table = collection.table
    table = table[table[spec.label].notna()].reset_index(drop=True)
    table["split"] = patient_split(
        table, test_fraction=test_fraction, seed=seed, group_col=spec.group, stratify_col=spec.label
    )
    return table, collection.root


def describe(table: pd.DataFrame, spec: Spec) -> str:
    """Counts of images and patients by label and side."""
    counts = pd.crosstab(table[spec.label], table["split"])
    patients = table.groupby("split")[spec.group].nunique()
    return (
        f"{len(table)} images of {table[spec.group].nunique()} patients; patients: "
        f"train {patients.get('train', 0)}, test {patients.get('test', 0)}\n"
        f"{counts.to_string()}"
    )


def prepare(table: pd.DataFrame, root: Path, folder: Path, size: int) -> Path:
    """``cxr prepare`` of every image at ``size`` px (resumes when already there)."""
    from cxrembed.data.cache import prepare_cache

    prepare_cache(
        table, root, folder, image_col="image", id_col="id", size=size, jobs=1, progress=False
    )
    return folder


def base_overrides(spec: Spec, args: Any) -> dict[str, Any]:
    """What every run of a benchmark sets; everything else keeps ``cxr train``'s default."""
    return {
        "image_col": "image",
        "id_col": "id",
        "label_col": spec.label,
        "group_col": spec.group,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "seed": args.seed,
        "num_workers": 0,
        "device": "cpu",
        "threads": args.threads,
    }


def train_run(
    table: pd.DataFrame, run: Path, cache: Path, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """``cxr train`` on the training rows; returns timing and the validation curve."""
    from cxrembed.train import train

    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = train(
            table[table["split"] == "train"],
            run,
            cache=cache,
            progress=False,
            overrides=dict(overrides),
        )
    metrics = pd.DataFrame(result.metrics)
    return {
        "seconds": time.perf_counter() - start,
        "train_seconds": float(metrics["train_seconds"].sum()),
        "images_per_second": float(metrics["train_images_per_second"].median()),
        "best_epoch": result.best_epoch,
        "val_curve": [round(float(v), 3) for v in metrics["val_mean_average_precision_at_r"]],
    }


def pml_peer_run(
    table: pd.DataFrame, run: Path, cache: Path, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The reference: pytorch-metric-learning's MultiSimilarityLoss + MultiSimilarityMiner.

    Same data (rows, split, augmentation, batch sampler), same model and initial weights,
    same optimiser, schedule, clipping and epochs as ``cxr train``, and the best epoch by
    the same validation MAP@R; only the loss differs. Written as a run folder so it is
    embedded by the same code.
    """
    import torch

    from cxrembed.train.config import RunConfig
    from cxrembed.train.data import build_train_data
    from cxrembed.train.trainer import initial_model
    from cxrembed.train.validation import BEST_METRIC

    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    config = RunConfig().with_overrides({**overrides, "loss": "ms"})
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        data, config = build_train_data(table[table["split"] == "train"], config, cache=cache)
    t = config.training
    model = initial_model(config)
    peer = _peer_training(model, data, config)
    folder = _peer_folder(run, config, data)
    best, best_epoch, curve, seen, train_seconds = -np.inf, None, [], 0, 0.0
    for epoch in range(t.epochs):
        peer.sampler.set_epoch(epoch)
        model.train()
        epoch_start = time.perf_counter()
        seen += _peer_epoch(model, peer)
        train_seconds += time.perf_counter() - epoch_start
        value = _peer_validation(model, data, t.batch_size)
        curve.append(round(float(value), 3))
        if value > best:
            best, best_epoch = value, epoch + 1
            folder.save_best(
                model, {"epoch": epoch + 1, "metric": BEST_METRIC, "value": float(value)}
            )
    torch.set_num_threads(threads)
    return {
        "seconds": time.perf_counter() - start,
        "train_seconds": train_seconds,
        "images_per_second": seen / train_seconds,
        "best_epoch": best_epoch,
        "val_curve": curve,
    }


@dataclass
class _PeerTraining:
    """What one step of :func:`pml_peer_run` uses: ``cxr train``'s sampler, loader,
    optimiser and schedule, with pytorch-metric-learning's loss and miner."""

    sampler: MultiLabelBatchSampler
    loader: DataLoader
    optimizer: optim.Optimizer
    scheduler: optim.lr_scheduler.LRScheduler
    loss_fn: nn.Module
    miner: nn.Module
    grad_clip: float


def _peer_training(model: nn.Module, data: TrainData, config: RunConfig) -> _PeerTraining:
    """Build them as ``cxr train`` does, so only the loss differs from the compared run."""
    from pytorch_metric_learning import losses, miners
    from torch.utils.data import DataLoader

    from cxrembed.train.data import SeededBatches, make_sampler
    from cxrembed.train.schedule import build_optimizer, build_scheduler

    t = config.training
    sampler = make_sampler(data, config)
    loader = DataLoader(
        data.train,
        batch_sampler=SeededBatches(sampler, t.seed),
        num_workers=config.data.num_workers,
    )
    optimizer = build_optimizer(model, lr=t.lr, head_lr=t.head_lr, weight_decay=t.weight_decay)
    scheduler = build_scheduler(
        optimizer,
        warmup_steps=round(t.warmup_epochs * len(sampler)),
        total_steps=t.epochs * len(sampler),
    )
    loss_fn = losses.MultiSimilarityLoss(alpha=2.0, beta=50.0, base=0.5)
    miner = miners.MultiSimilarityMiner(epsilon=0.1)
    return _PeerTraining(sampler, loader, optimizer, scheduler, loss_fn, miner, t.grad_clip)


def _peer_folder(run: Path, config: RunConfig, data: TrainData) -> RunFolder:
    """A new run folder with the config and split, so the peer is embedded like a run."""
    from cxrembed.train.checkpoint import SPLIT_FILE, RunFolder

    folder = RunFolder(run)
    folder.check(resume=False)
    folder.write_config(config)
    folder.write_table(SPLIT_FILE, data.split)
    return folder


def _peer_epoch(model: nn.Module, peer: _PeerTraining) -> int:
    """One epoch of the peer loss on the sampler's batches; the number of images seen."""
    import torch

    seen = 0
    for images, targets, _, _ in peer.loader:
        classes = targets.argmax(dim=1)
        embeddings = model(images)
        loss = peer.loss_fn(embeddings, classes, peer.miner(embeddings, classes))
        peer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), peer.grad_clip)
        peer.optimizer.step()
        peer.scheduler.step()
        seen += len(images)
    return seen


def _peer_validation(model: nn.Module, data: TrainData, batch_size: int) -> float:
    """The validation MAP@R that ``cxr train`` keeps its best epoch by, computed by the
    same code, so the peer's best epoch is picked the same way."""
    from torch.utils.data import DataLoader

    from cxrembed.inference.run import encode_dataset
    from cxrembed.train.validation import BEST_METRIC, validation_metrics

    _, vectors = encode_dataset(model, DataLoader(data.val, batch_size=batch_size), progress=False)
    return validation_metrics(vectors, data.val_relevance, data.val_groups, data.names)[BEST_METRIC]


def embed_run(run_or_encoder: Any, table: pd.DataFrame, cache: Path, out: Path) -> np.ndarray:
    """``cxr embed RUN CACHE`` of every row of ``table`` (the cached pixels the run was
    trained on, so no JPEG is decoded again), in table order."""
    from cxrembed.embeddings import EmbeddingSet
    from cxrembed.inference.embed import embed_images

    summary = embed_images(
        run_or_encoder, cache, out, kind="cache", resume=False, device="cpu", progress=False
    )
    if len(summary.excluded):
        raise RuntimeError(f"{len(summary.excluded)} images not embedded: {summary.reasons}")
    return EmbeddingSet.load(out).vectors_for(table["id"])


def score(
    vectors: np.ndarray,
    table: pd.DataFrame,
    spec: Spec,
    *,
    draws: int,
    seed: int = 0,
    query: str = "test",
    gallery: str = "train",
) -> pd.DataFrame:
    """Metrics of ``query`` rows against ``gallery`` rows, with patient-bootstrap CIs."""
    from cxrembed.evaluation.metrics.intervals import retrieval_with_intervals

    return retrieval_with_intervals(
        vectors,
        **_scoring(table, spec, query, gallery),
        positive=spec.positive,
        k=10,
        draws=draws,
        seed=seed,
    )


def paired_gap(
    a: np.ndarray,
    b: np.ndarray,
    table: pd.DataFrame,
    spec: Spec,
    *,
    draws: int,
    seed: int = 0,
    query: str = "test",
    gallery: str = "train",
) -> dict[str, float]:
    """MAP@R of ``a`` minus ``b`` on the queries of :func:`score`, with the paired interval
    (the same draws as :func:`score` with the same seed)."""
    from cxrembed.evaluation.metrics.intervals import paired_difference

    return paired_difference(
        a, b, **_scoring(table, spec, query, gallery), k=10, draws=draws, seed=seed
    )


def _scoring(table: pd.DataFrame, spec: Spec, query: str, gallery: str) -> dict[str, Any]:
    return {
        "classes": table[spec.label].to_numpy(),
        "query_mask": (table["split"] == query).to_numpy(),
        "gallery_mask": (table["split"] == gallery).to_numpy(),
        "groups": table[spec.group].to_numpy(),
    }


def intubation(
    table: pd.DataFrame,
    vectors: Mapping[str, tuple[list[str], np.ndarray]],
    *,
    seed: int,
    bootstrap: int,
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``cxr predict-outcome`` of COVID intubation for each method's ``(ids, vectors)``.

    One frame, ``image features`` naming the method: the tabular-only rows do not depend on
    the images, so they stand once, as ``-``. ``models`` None: predict_outcome's default.
    """
    from cxrembed.collections.covid import CLINICAL_FEATURES
    from cxrembed.embeddings import EmbeddingSet
    from cxrembed.outcome.predict import MODELS, predict_outcome

    frames = []
    for method, (ids, x) in vectors.items():
        result = predict_outcome(
            EmbeddingSet(ids, x),
            table,
            "intubated",
            list(CLINICAL_FEATURES),
            id_col="id",
            group_col="patientid",
            seed=seed,
            bootstrap=bootstrap,
            pca=16,
            models=MODELS if models is None else models,
            missing_values=["Not visible"],
        )
        frame = result.table.copy()
        if frames:
            frame = frame[frame["features"] != "tabular-only"]
        frame.insert(
            0, "image features", np.where(frame["features"] == "tabular-only", "-", method)
        )
        frames.append(frame)
    joined = pd.concat(frames, ignore_index=True)
    joined["AUROC [95% CI]"] = [
        f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
        for a, lo, hi in zip(joined["auroc"], joined["ci_low"], joined["ci_high"], strict=True)
    ]
    return joined


def results_table(
    scores: Mapping[str, pd.DataFrame],
    spec: Spec,
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """Markdown: one row per method, each metric with its 95% interval."""
    from cxrembed.evaluation.metrics.intervals import format_interval

    n_classes = "3-class" if spec.name == "kermany" else "2-class"
    heads = [
        "MAP@R",
        "P@1",
        "R-precision",
        f"{n_classes} vote accuracy",
        f"{spec.positive_name} vote AUROC",
    ]
    extra_cols = sorted({k for v in (extra or {}).values() for k in v})
    lines = [
        "| method | " + " | ".join(heads + extra_cols) + " |",
        "|---|" + "---:|" * (len(heads) + len(extra_cols)),
    ]
    for method, frame in scores.items():
        cells = [format_interval(frame.loc[name]) for name in frame.index]
        cells += [(extra or {}).get(method, {}).get(c, "") for c in extra_cols]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overlap(a: pd.DataFrame, b: pd.DataFrame, metric: str = "MAP@R") -> bool:
    """True when the two methods' 95% intervals of ``metric`` overlap."""
    return bool(
        a.loc[metric, "low"] <= b.loc[metric, "high"]
        and b.loc[metric, "low"] <= a.loc[metric, "high"]
    )


def plot_scores(
    scores: Mapping[str, pd.DataFrame],
    path: Path,
    title: str,
    metrics: tuple[str, ...] = ("MAP@R", "P@1", "vote AUROC"),
) -> Path:
    """Point estimates with 95% intervals, one panel per metric (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(scores)
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(4.2 * len(metrics), 0.45 * len(methods) + 1.4),
        dpi=110,
        sharey=True,
    )
    for axis, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for i, method in enumerate(methods):
            row = scores[method].loc[metric]
            axis.errorbar(
                row["value"],
                i,
                xerr=[[row["value"] - row["low"]], [row["high"] - row["value"]]],
                fmt="o",
                capsize=3,
                color="C0" if i else "C3",
            )
        axis.set_title(metric)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(methods)), methods)
    axes[0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
