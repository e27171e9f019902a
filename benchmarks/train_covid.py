"""Train retrieval embeddings on the COVID-19 image collection: MS vs ML2 vs the CE baseline,
with curated labels and with labels mined from the clinical notes by ``cxr label``.

Data: ``../shared/data/cxr_dev/covid_metadata.csv`` (398 X-ray images, ~205 patients,
image path column ``small_image``, 256 px PNGs). One patient-level split (20 % of patients
for validation, seed 0, stratified by finding) is shared by every run, so all runs are
scored on the same validation images.

Two label settings, three losses each (6 runs):

* ``curated``: the ``finding`` column (the source publication's diagnosis), split on ","
  (``COVID-19, ARDS`` -> both); ``todo`` (unverified) rows are masked out of training.
* ``mined``: the 14 CheXpert observations labelled from ``clinical_notes`` by
  :class:`cxrlabel.Labeler` (the noisy-label setting of Wang et al., 2017); rows with
  empty notes are excluded by the labeller status.

Scoring (the same for all runs): every validation image with a known curated finding
queries the others, its own patient left out; relevant = shares a curated finding. MAP@R,
P@1, P@5 of the best checkpoint (by the run's own validation MAP@R), and the untrained
network as a floor. Speed: training images/s (median over epochs).

CPU budget: resnet18 at 128 px (cache at 128 px), batch 32 (m = 4), few epochs, random
initialisation (no pretrained weights can be downloaded here): expect modest numbers; the
point is the comparison in one run, on one machine. Must finish within 30 min on 2 cores
(measured: 8.6 min for 6 epochs at load average 2.4, about 20 training images/s).

Usage::

    python benchmarks/train_covid.py [--epochs 6] [--image-size 128] [--threads 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import common
import numpy as np
import pandas as pd

DATA = common.CXR_DEV
LOSSES = ("ms", "ml2", "ce")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest on a shared 2-core machine)",
    )
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args()
    print(common.command_line("train_covid.py", python=Path(sys.executable).name))
    if common.skipped(DATA / "covid_metadata.csv"):
        return 0

    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, torch "
        f"{torch.__version__}, {args.threads} torch thread(s)"
    )
    work = args.out or Path(tempfile.mkdtemp(prefix="train_covid_"))
    work.mkdir(parents=True, exist_ok=True)
    table = _table_with_split()
    mined = _mined_labels(table)
    cache = _cache(table, work / "cache", args.image_size)

    results = []
    for setting, labels in (("curated", table), ("mined", mined)):
        for loss in LOSSES:
            results.append(_run(setting, loss, labels, table, cache, work, args))
            print(f"  [{time.perf_counter() - started:.0f} s elapsed]", flush=True)
    floor = _score_untrained(table, cache, work, args)
    _report(results, floor)
    print(f"total time: {time.perf_counter() - started:.0f} s; runs kept in {work}")
    return 0


def _table_with_split() -> pd.DataFrame:
    from cxrembed.data.split import split_by_group

    table = pd.read_csv(DATA / "covid_metadata.csv")
    train, val = split_by_group(
        table, "patientid", val_fraction=0.2, seed=0, stratify_col="finding"
    )
    table["split"] = "train"
    table.loc[table.index[val], "split"] = "val"
    known = table["finding"].str.lower() != "todo"
    print(
        f"images: {len(table)} ({table['patientid'].nunique()} patients); validation: "
        f"{len(val)} images of {table.loc[val, 'patientid'].nunique()} patients, "
        f"{int((known & (table['split'] == 'val')).sum())} with a known finding (scored)"
    )
    return table


def _mined_labels(table: pd.DataFrame) -> pd.DataFrame:
    from cxrlabel import Labeler

    labeler = Labeler("chexpert")
    started = time.perf_counter()
    values, status = labeler.label_array(table["clinical_notes"].tolist())
    seconds = time.perf_counter() - started
    mined = table.drop(columns=["finding"]).copy()
    for j, name in enumerate(labeler.names):
        mined[name] = values[:, j]
    mined["status"] = status
    positives = {n: int((values[:, j] == 1).sum()) for j, n in enumerate(labeler.names)}
    print(
        f"cxr label on clinical_notes: {len(table)} notes in {seconds:.1f} s, "
        f"{status.count('ok')} labelled, {status.count('empty')} empty"
    )
    print("  positives: " + ", ".join(f"{n} {c}" for n, c in positives.items() if c))
    return mined


def _cache(table: pd.DataFrame, folder: Path, size: int) -> Path:
    from cxrembed.data.cache import prepare_cache

    summary = prepare_cache(table, DATA, folder, image_col="small_image", size=size, progress=False)
    print(
        f"cache: {summary.usable} images at {size} px ({summary.decoded} decoded in "
        f"{summary.seconds:.1f} s), {len(summary.excluded)} unreadable"
    )
    return folder


def _overrides(loss: str, setting: str, args: argparse.Namespace) -> dict:
    labels = (
        {"labels.label_col": "finding", "labels.separator": ","}
        if setting == "curated"
        else {"labels.schema": "chexpert"}
    )
    return {
        **labels,
        "image_col": "small_image",
        "split_col": "split",
        "group_col": "patientid",
        "loss": loss,
        "backbone": "resnet18",
        "embedding_dim": 128,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "m": 4,
        "num_workers": 0,
        "warmup_epochs": 1.0,
    }


def _run(
    setting: str,
    loss: str,
    labels: pd.DataFrame,
    table: pd.DataFrame,
    cache: Path,
    work: Path,
    args: argparse.Namespace,
) -> dict:
    from cxrembed.train import load_run, train

    out = work / f"{setting}-{loss}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    print(f"training {setting} labels, loss {loss} ...", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # cache/labeller notes, counted below
        result = train(
            labels, out, cache=cache, progress=False, overrides=_overrides(loss, setting, args)
        )
    model, config = load_run(out)
    scores = _score(model, config, table, cache)
    metrics = pd.DataFrame(result.metrics)
    row = {
        "labels": setting,
        "loss": loss,
        "epochs": result.epochs_done,
        "best_epoch": result.best_epoch,
        "train_rows": int((pd.read_csv(out / "split.csv")["split"] == "train").sum()),
        "images_per_s": float(metrics["train_images_per_second"].median()),
        "train_minutes": float(metrics["train_seconds"].sum()) / 60,
        "own_val_map_at_r": float(result.best_value)
        if result.best_value is not None
        else float("nan"),
        **scores,
    }
    print(f"  loss by epoch: {', '.join(f'{v:.3f}' for v in metrics['train_loss'])}")
    print(
        f"  own-label val MAP@R by epoch: "
        f"{', '.join(f'{v:.3f}' for v in metrics['val_mean_average_precision_at_r'])}"
    )
    return row


def _scored_view(table: pd.DataFrame, cache: Path, transform: object):
    from cxrembed.data.cache import CachedImageDataset
    from cxrembed.data.labels import LabelOptions

    val = table[table["split"] == "val"].reset_index(drop=True)
    return CachedImageDataset.from_table(
        cache,
        val,
        labels=LabelOptions(label_col="finding", separator=","),
        image_col="small_image",
        transform=transform,
    )


def _score(model: object, config: object, table: pd.DataFrame, cache: Path) -> dict:
    from cxrembed.train import encode_dataset, eval_transform_for
    from cxrembed.train.validation import validation_metrics

    dataset = _scored_view(table, cache, eval_transform_for(config))
    known = dataset.mask.any(axis=1)
    ids, vectors = encode_dataset(model, dataset, progress=False)
    relevance = (dataset.targets > 0.5).astype(np.float32)
    groups = dataset.table["patientid"].astype(str).to_numpy()
    m = validation_metrics(vectors[known], relevance[known], groups[known])
    return {
        "MAP@R": m["mean_average_precision_at_r"],
        "P@1": m["precision_at_1"],
        "P@5": m["precision_at_5"],
        "queries": int(m["queries"]),
        "lone": int(m["lone_queries"]),
    }


def _score_untrained(
    table: pd.DataFrame, cache: Path, work: Path, args: argparse.Namespace
) -> dict:
    from cxrembed.train.config import RunConfig
    from cxrembed.train.trainer import initial_model

    config = RunConfig().with_overrides(_overrides("ms", "curated", args))
    return _score(initial_model(config).eval(), config, table, cache)


def _report(results: list[dict], floor: dict) -> None:
    frame = pd.DataFrame(results)
    print()
    print("Validation retrieval on curated findings (same patient left out), best checkpoint:")
    cols = [
        "labels",
        "loss",
        "epochs",
        "best_epoch",
        "train_rows",
        "MAP@R",
        "P@1",
        "P@5",
        "queries",
        "lone",
        "own_val_map_at_r",
        "images_per_s",
        "train_minutes",
    ]
    print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"untrained resnet18 (floor): MAP@R {floor['MAP@R']:.3f}, P@1 {floor['P@1']:.3f}, "
        f"P@5 {floor['P@5']:.3f}"
    )
    print()
    print("Ratios to the CE baseline with the same labels (peer: loss ce):")
    for setting, group in frame.groupby("labels", sort=False):
        ce = group[group["loss"] == "ce"].iloc[0]
        for _, row in group[group["loss"] != "ce"].iterrows():
            print(
                f"  {setting:8s} {row['loss']:4s}: MAP@R x{_ratio(row['MAP@R'], ce['MAP@R'])}, "
                f"P@1 x{_ratio(row['P@1'], ce['P@1'])}, P@5 x{_ratio(row['P@5'], ce['P@5'])}, "
                f"images/s x{_ratio(row['images_per_s'], ce['images_per_s'])}"
            )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and np.isfinite(a) and np.isfinite(b) else "n/a"


if __name__ == "__main__":
    sys.exit(main())
