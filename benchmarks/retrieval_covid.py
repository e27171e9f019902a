"""Retrieval on the COVID-19 image data collection: metric learning with attention against
the cross-entropy baseline, untrained network features and raw pixels, in one run.

Data: ``../shared/data/cxr_dev`` (``covid_metadata.csv`` + 256 px PNGs; the public
repository's ``metadata.csv`` + ``images/`` layout also works), frontal X-rays only
(lateral views left out, listed). Split by patient: 25% of the patients are test queries,
stratified by COVID-19 vs other; no patient is on both sides.

Methods (all embed the same images at the same size, compared by cosine similarity):

``ms+attention``
    resnet18 with spatial attention pooling, multi-similarity loss, trained from scratch
    (no pretrained weights can be downloaded) on the training patients' ``finding``
    labels (multi-label: ``COVID-19, ARDS`` counts as both; ``todo`` masked);
``ce``
    the baseline: the same backbone with global average pooling and a linear classifier
    trained with (masked) binary cross-entropy on the same labels; its embedding is the
    normalised penultimate layer;
``untrained``
    the pooled 512-d features of the same resnet18 with its random initial weights;
``pixels``
    the image letterboxed to 32 x 32 px, standardised per image, as a 1024-d vector;
``random``
    seeded Gaussian vectors (128-d): the chance level of every metric on this split.

Metrics, test patients as queries against the training patients' gallery, labels COVID-19
vs other (unverified ``todo`` findings left out): MAP@R and P@1 (pytorch-metric-learning's
definitions), P@5, and the AUROC of the COVID-19 vote (share of the 10 nearest neighbours
that are COVID-19) against the query's label. Then intubation (``intubated`` Y/N, "Not
visible" = missing) predicted with patient-grouped 5-fold CV: each method's image features
alone (PCA to 16 inside the folds), the clinical columns alone (age, sex, temperature,
pO2 saturation) and both, logistic regression and gradient boosting, AUROC with a 95%
patient-bootstrap CI. The test set is small (tens of patients): differences of a few
points are noise.

Usage: python benchmarks/retrieval_covid.py [--epochs 10] [--image-size 128] [--threads 1]
       [--out DIR] [--bootstrap 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from cxrembed.collections.covid import CovidCollection
    from cxrembed.inference.encoder import Encoder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
import covid_retrieval  # noqa: E402  (the same chain, as a user runs it)
import realdata  # noqa: E402

DATA = common.CXR_DEV
#: each method's image ids and their embedding vectors, in the same order
Vectors = dict[str, tuple[list[str], np.ndarray]]


def main() -> int:
    args = _parse_args()
    print(common.command_line("retrieval_covid.py"))
    # the public layout (metadata.csv), else this project's cxr_dev copy (README.md)
    if not (DATA / "metadata.csv").is_file() and common.skipped(DATA / "README.md"):
        return 0

    import torch

    torch.set_num_threads(args.threads)
    print(
        f"cpu cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, "
        f"load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    out = args.out or Path(tempfile.mkdtemp(prefix="retrieval_covid_"))
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    collection, table, table_path = _collection(out, args.seed)
    vectors: Vectors = {}
    timing: dict[str, str] = {}
    for method, loss, attention in (("ms+attention", "ms", True), ("ce", "ce", False)):
        timing[method], vectors[method] = _train_and_embed(
            table, collection.root, table_path, out, args, loss=loss, attention=attention
        )
    ids = vectors["ms+attention"][0]
    vectors.update(_baselines(ids, collection.root, out / "run_ms", args.seed))

    print(
        f"\ntraining ({args.image_size} px, resnet18, batch 32, from scratch, "
        f"{args.threads} thread(s)):"
    )
    for method, line in timing.items():
        print(f"  {method}: {line}")
    _retrieval_section(table, vectors)
    print("\nintubation (patient-grouped 5-fold CV, AUROC [95% CI]):")
    print(_intubation(table, vectors, args).to_string(index=False))
    print(f"\nwall time: {time.perf_counter() - started:.0f} s; outputs in {out}")
    return 0


def _parse_args() -> argparse.Namespace:
    """The command line of the module docstring's usage line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep outputs here")
    return parser.parse_args()


def _collection(out: Path, seed: int) -> tuple[CovidCollection, pd.DataFrame, Path]:
    """The example's patient split, written to ``out/collection.csv`` (the listing every
    run embeds), and the images by label and split; returns the collection, the table and
    its path."""
    collection, table = covid_retrieval.read_split(DATA, seed=seed)
    table_path = out / "collection.csv"
    table.to_csv(table_path, index=False)
    counts = pd.crosstab(table["covid"].fillna("todo (not scored)"), table["split"])
    print(
        f"\ndata: {DATA} ({collection.layout} layout), {len(table)} frontal X-rays, "
        f"{table['patientid'].nunique()} patients; left out: "
        f"{collection.excluded['reason'].value_counts().to_dict()}"
    )
    print("images by label and split (patient-disjoint):")
    print(counts.to_string())
    return collection, table, table_path


def _train_and_embed(
    table: pd.DataFrame,
    images: Path,
    table_path: Path,
    out: Path,
    args: argparse.Namespace,
    *,
    loss: str,
    attention: bool,
) -> tuple[str, tuple[list[str], np.ndarray]]:
    """Train one method afresh in ``out/run_LOSS`` and embed every image with it; returns
    its training line (time, speed, best epoch) and its (ids, vectors)."""
    run = out / f"run_{loss}"
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    result = covid_retrieval.train_covid(
        table,
        images,
        run,
        image_size=args.image_size,
        epochs=args.epochs,
        loss=loss,
        attention=attention,
        seed=args.seed,
    )
    seconds = time.perf_counter() - start
    rate = float(pd.DataFrame(result.metrics)["train_images_per_second"].median())
    timing = (
        f"trained {result.epochs_done} epochs in {seconds:.0f} s "
        f"({rate:.1f} images/s), best epoch {result.best_epoch} by "
        f"validation MAP@R {result.best_value:.3f}"
    )
    return timing, _embed_run(run, table_path, images, out / f"emb_{loss}")


def _baselines(ids: list[str], images: Path, run: Path, seed: int) -> Vectors:
    """The untrained network, raw pixels and seeded random vectors for the same ``ids``;
    ``run``'s encoder reads the images the way the trained methods did."""
    from cxrembed.evaluation.baselines import pixel_vectors

    encoder = _encoder(run)
    chance = np.random.default_rng(seed).standard_normal((len(ids), 128))
    return {
        "untrained": (ids, _untrained_features(encoder, images, ids, seed)),
        "pixels": (ids, pixel_vectors(images / i for i in ids)),
        "random": (ids, _unit(chance.astype(np.float32))),
    }


def _retrieval_section(table: pd.DataFrame, vectors: Vectors) -> None:
    """Every method's retrieval figures, and ms+attention's against the ce baseline."""
    rows = [_retrieval_row(method, table, *vectors[method]) for method in vectors]
    retrieval = pd.DataFrame(rows).set_index("method")
    print("\nretrieval, test patients -> training patients' gallery, COVID-19 vs other:")
    print(retrieval.to_string(float_format="{:.3f}".format))
    ms, ce = retrieval.loc["ms+attention"], retrieval.loc["ce"]
    print(
        "ratio ms+attention / ce: "
        + ", ".join(
            f"{k} {ms[k] / ce[k]:.2f}" for k in ("MAP@R", "P@1", "P@5", "COVID-19 vote AUROC")
        )
    )


def _encoder(run: Path) -> Encoder:
    from cxrembed.inference.encoder import Encoder

    return Encoder.from_run(run, device="cpu")


def _embed_run(
    run: Path, table_path: Path, images: Path, out: Path
) -> tuple[list[str], np.ndarray]:
    from cxrembed.embeddings.embedding_set import EmbeddingSet
    from cxrembed.evaluation.baselines import embed_listing

    summary = embed_listing(run, table_path, images, out)
    if len(summary.excluded):
        print(f"  {run.name}: {len(summary.excluded)} images not embedded: {summary.reasons}")
    emb = EmbeddingSet.load(out)
    return emb.ids, emb.vectors


def _untrained_features(encoder: Encoder, images: Path, ids: list[str], seed: int) -> np.ndarray:
    import torch

    from cxrembed.models import EmbeddingNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = EmbeddingNet("resnet18", embedding_dim=128, attention=False).eval()
    parts = []
    for start in range(0, len(ids), 32):
        batch = torch.stack(
            [encoder.prepare(encoder.read(images / i)) for i in ids[start : start + 32]]
        )
        with torch.no_grad():
            parts.append(net.forward_features(batch)["pooled"].numpy())
    return _unit(np.concatenate(parts))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _retrieval_row(
    method: str, table: pd.DataFrame, ids: list[str], x: np.ndarray
) -> dict[str, object]:
    result = covid_retrieval.evaluate_covid(x, ids, table, map_method=None)
    per = result.diagnosis.per_finding.set_index("finding")
    m = result.metrics
    return {
        "method": method,
        "dim": x.shape[1],
        "MAP@R": m["mean_average_precision_at_r"],
        "P@1": m["precision_at_1"],
        "P@5": m["precision_at_5"],
        "COVID-19 vote AUROC": per.loc["COVID-19", "auroc"],
        "queries": int(result.diagnosis.summary["n_queries"]),
    }


def _intubation(table: pd.DataFrame, vectors: Vectors, args: argparse.Namespace) -> pd.DataFrame:
    joined = realdata.intubation(table, vectors, seed=args.seed, bootstrap=args.bootstrap)
    return joined[["image features", "features", "model", "n", "positives", "AUROC [95% CI]"]]


if __name__ == "__main__":
    sys.exit(main())
