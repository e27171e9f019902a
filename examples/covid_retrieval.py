"""Content-based retrieval on the COVID-19 image data collection, end to end.

Label the clinical notes, train a retrieval model on the training patients, embed and index
every image, search with two test images, evaluate COVID-19 vs other findings on unseen
patients, and predict intubation from image features and clinical columns.

Data: the public repository's layout (``metadata.csv`` + ``images/``, from
github.com/ieee8023/covid-chestxray-dataset) or this project's development copy
(``covid_metadata.csv`` + ``covid_images_256/``)::

    python examples/covid_retrieval.py ../shared/data/cxr_dev --out covid_out

Lateral views are left out (retrieval compares frontal images). About 3-4 minutes on two
CPU cores at the defaults (128 px, 8 epochs, one thread).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cxrembed.collections.covid import CLINICAL_FEATURES, CovidCollection, read_covid_collection
from cxrembed.commands.embed import format_embed_summary
from cxrembed.data.labels import LabelOptions
from cxrembed.data.split import split_by_group
from cxrembed.demo import CURVE_COLUMNS, TEST_AGAINST_TRAIN
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.evaluation.evaluate import evaluate_table
from cxrembed.evaluation.metrics.report import EvaluationResult
from cxrembed.outcome.predict import predict_outcome
from cxrembed.search.embed_and_index import embed_and_index
from cxrembed.search.retriever import Retriever
from cxrembed.train import TrainResult, train
from cxrlabel.labelfile import label_file

ROOT = Path(__file__).resolve().parents[1]
SHOW = ["finding", "survival", "intubated", "went_icu", "patientid", "view"]
# the headline figures the evaluate step prints
EVALUATION_KEYS = (
    "precision_at_1",
    "mean_average_precision_at_r",
    "precision_at_5",
    "diagnosis_macro_auroc",
    "diagnosis_accuracy",
)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if not args.data.is_dir():
        print(f"data folder {args.data} not found: nothing to run (see the docstring)")
        return 0
    torch.set_num_threads(max(1, args.threads))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    collection, table, table_path = _collection_step(args.data, out)
    evidence = _label_step(table_path, out)
    run = _train_step(table, collection.root, out, image_size=args.image_size, epochs=args.epochs)
    _embed_step(run, table_path, collection.root, out)
    _search_step(run, table, collection.root, out, evidence)
    emb = _evaluate_step(table, out)
    _outcome_step(emb, table, out)
    print(f"\nfinished in {time.perf_counter() - start:.0f} s; outputs in {out}/")
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; the data folder defaults to the development copy next to the repo."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "data",
        nargs="?",
        default=ROOT.parent / "shared" / "data" / "cxr_dev",
        type=Path,
        help="collection folder (default: ../shared/data/cxr_dev)",
    )
    parser.add_argument("--out", type=Path, default=Path("covid_out"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args(argv)


def _collection_step(data: Path, out: Path) -> tuple[CovidCollection, pd.DataFrame, Path]:
    """Read and split the collection, say what was kept, and write the table every later
    step reads (``collection.csv``); returns the collection, the table and its path."""
    print("== the collection ==")
    collection, table = read_split(data)
    print(
        f"{collection.layout} layout: {len(table)} frontal X-rays of "
        f"{table['patientid'].nunique()} patients ({len(collection.excluded)} rows left out: "
        f"{collection.excluded['reason'].value_counts().to_dict()})"
    )
    print(pd.crosstab(table["covid"].fillna("unverified (todo)"), table["split"]).to_string())
    table_path = out / "collection.csv"
    table.to_csv(table_path, index=False)
    return collection, table, table_path


def _label_step(table_path: Path, out: Path) -> Path:
    """``cxr label`` on the clinical notes; returns the evidence file the search shows."""
    print("\n== cxr label: the clinical notes (CheXpert schema) ==")
    evidence = out / "notes_evidence.jsonl"
    summary = label_file(
        table_path,
        out / "notes_labels.csv",
        text_cols=["clinical_notes"],
        id_col="id",
        evidence_path=evidence,
        progress=False,
    )
    print(summary.text())
    return evidence


def _train_step(
    table: pd.DataFrame, images: Path, out: Path, *, image_size: int, epochs: int
) -> Path:
    """Train afresh in ``out/run`` and print the learning curve; returns the run folder."""
    print(
        f"\n== cxr train: resnet18 + attention, multi-similarity loss on `finding`, "
        f"{image_size} px, {epochs} epochs, training patients =="
    )
    run = out / "run"
    shutil.rmtree(run, ignore_errors=True)  # the example always trains afresh
    result = train_covid(table, images, run, image_size=image_size, epochs=epochs)
    frame = pd.DataFrame(result.metrics)
    print(frame[list(CURVE_COLUMNS)].round(3).to_string(index=False))
    return run


def _embed_step(run: Path, table_path: Path, images: Path, out: Path) -> None:
    """``cxr embed`` + ``cxr index`` of every image into ``out/embeddings`` and ``out/index``."""
    print("\n== cxr embed + index: every image ==")
    embedded, built = embed_and_index(
        run,
        table_path,
        out / "embeddings",
        images_root=images,
        image_col="image",
        id_col="id",
        index=out / "index",
        show_cols=SHOW,
        resume=False,
        device="cpu",
        progress=False,
    )
    print(format_embed_summary(embedded, built))


def _search_step(run: Path, table: pd.DataFrame, images: Path, out: Path, evidence: Path) -> None:
    """``cxr search`` with the first COVID-19 and the first other test image: the 5 nearest
    as a table and as a grid (``search_1.png``, ``search_2.png``)."""
    print("\n== cxr search: two test images, 5 nearest (the query itself comes first) ==")
    retriever = Retriever(run, out / "index", evidence=evidence, show=SHOW, device="cpu")
    tested = table[table["split"] == "test"]
    for n, label in enumerate(("COVID-19", "other"), start=1):
        query = tested[tested["covid"] == label].iloc[0]
        (found,) = retriever.search([images / query["image"]], k=5, include_self=True)
        print(f"\nquery {n}: {query['id']} (finding: {query['finding']})")
        with pd.option_context("display.max_colwidth", 60, "display.width", 250):
            print(found.to_string(index=False))
        grid = retriever.grid_png(out / f"search_{n}.png", images / query["image"], found)
        print(f"grid: {grid}")


def _evaluate_step(table: pd.DataFrame, out: Path) -> EmbeddingSet:
    """``cxr evaluate`` into ``out/evaluation``, printing the headline figures; returns the
    embeddings so the outcome step does not load them again."""
    print(
        "\n== cxr evaluate: test patients against the training patients' gallery, "
        "COVID-19 vs other (unverified findings left out) =="
    )
    emb = EmbeddingSet.load(out / "embeddings")
    evaluation = evaluate_covid(emb.vectors, emb.ids, table, config_hash=emb.config_hash)
    evaluation.write(out / "evaluation")
    print("\n".join(f"{k}: {evaluation.metrics[k]:.3f}" for k in EVALUATION_KEYS))
    print(evaluation.diagnosis.per_finding.round(3).to_string(index=False))
    print(f"full report: {out / 'evaluation' / 'metrics.md'}")
    return emb


def _outcome_step(emb: EmbeddingSet, table: pd.DataFrame, out: Path) -> None:
    """``cxr predict-outcome``: intubation from image features and clinical columns."""
    print("\n== cxr predict-outcome: intubation, patient-grouped 5-fold CV ==")
    outcome = predict_outcome(
        emb,
        table,
        "intubated",
        list(CLINICAL_FEATURES),
        id_col="id",
        group_col="patientid",
        missing_values=["Not visible"],
        pca=16,
    )
    outcome.write(out / "intubation")
    print(outcome.to_markdown())


def read_split(data: Path, seed: int = 0) -> tuple[CovidCollection, pd.DataFrame]:
    """The frontal X-rays with a ``split`` column: a quarter of the patients, stratified by
    COVID-19 vs other, are ``test``, the rest ``train``, so no patient is on both sides."""
    collection = read_covid_collection(data, frontal_only=True)
    table = collection.table
    test = split_by_group(
        table, "patientid", val_fraction=0.25, seed=seed, stratify_col="covid"
    ).val
    table["split"] = "train"
    table.loc[test, "split"] = "test"
    return collection, table


def train_covid(
    table: pd.DataFrame,
    images: Path,
    run: Path,
    *,
    image_size: int,
    epochs: int,
    loss: str = "ms",
    attention: bool = True,
    seed: int = 0,
) -> TrainResult:
    """``cxr train`` of resnet18 from scratch on the training patients' ``finding`` labels.

    ``finding`` is comma-separated (``COVID-19, ARDS`` counts as both); batches of 32 hold
    4 images of a label; the head learns 10 times faster than the backbone.
    """
    return train(
        table[table["split"] == "train"],
        run,
        images=images,
        progress=False,
        overrides={
            "image_col": "image",
            "id_col": "id",
            "group_col": "patientid",
            "label_col": "finding",
            "separator": ",",
            "loss": loss,
            "attention": attention,
            "backbone": "resnet18",
            "embedding_dim": 128,
            "image_size": image_size,
            "epochs": epochs,
            "batch_size": 32,
            "m": 4,
            "lr": 1e-3,
            "head_lr": 1e-2,
            "num_workers": 0,
            "device": "cpu",
            "seed": seed,
        },
    )


def evaluate_covid(
    vectors: np.ndarray, ids: list[str], table: pd.DataFrame, **options: Any
) -> EvaluationResult:
    """``cxr evaluate``: test patients against the training patients' gallery, COVID-19 vs
    other (unverified ``todo`` findings left out); ``options`` go to ``evaluate_table``."""
    return evaluate_table(
        vectors, ids, table, labels=LabelOptions(label_col="covid"), **TEST_AGAINST_TRAIN, **options
    )


if __name__ == "__main__":
    sys.exit(main())
