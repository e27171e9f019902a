"""Transfer to COVID-19: features learnt on pediatric radiographs, applied to the COVID-19
image data collection without further training, fine-tuned from them, and trained there
from scratch; against an untrained network and raw pixels.

Source: a ``cxr train`` default run on ``kermany_dev`` (all its patients: none of them is
in the COVID collection). Target: ``cxr_dev``'s COVID-19 collection, frontal views,
patient-disjoint test split (25% of patients, as ``retrieval_real.py --collection covid``).

Methods (all at ``--image-size``, every other ``cxr train`` setting at its default):

``kermany -> covid (embed only)``   ``cxr embed`` with the Kermany run: no COVID training
``kermany -> covid (fine-tuned)``   ``cxr train --init KERMANY_RUN`` on the COVID training
                                    patients (new head)
``covid from scratch``              ``cxr train`` on the COVID training patients
``covid from scratch, ce``          ``--loss ce``
``untrained``, ``pixels``           the floors

Scores: retrieval of COVID-19 vs other (test patients against the training gallery, 95%
patient-bootstrap intervals), and intubation (``cxr predict-outcome``: patient-grouped
5-fold CV on every frontal image with a known outcome, image features reduced to 16
principal components inside the folds, logistic regression; AUROC with a 95% patient-
bootstrap interval), image features alone and with the clinical columns.

Usage: python benchmarks/transfer_covid.py [--image-size 64] [--kermany-epochs 8]
       [--covid-epochs 10] [--threads 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import realdata  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    kermany, covid = realdata.SPECS["kermany"], realdata.SPECS["covid"]
    out = realdata.start("transfer_covid.py", argv, args)
    if realdata.skipped(kermany, covid):
        return 0
    started = time.perf_counter()

    source = _kermany_source(args, out) if args.kermany_run is None else args.kermany_run
    table, root = realdata.load_split(covid, seed=args.split_seed)
    print(f"\ncovid: {realdata.describe(table, covid)}")
    cache = realdata.prepare(table, root, out / "cache_covid", args.image_size)
    vectors = {
        "kermany -> covid (embed only)": realdata.embed_run(
            source, table, cache, out / "emb_transfer"
        )
    }
    vectors.update(_covid_trained(table, cache, source, args, out))
    vectors.update(_floors(table, root, cache, source, out))
    _report(table, vectors, args, out)
    realdata.finish(started)
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of the module docstring's usage line, plus realdata's common flags."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--kermany-epochs", type=int, default=8)
    parser.add_argument("--covid-epochs", type=int, default=10)
    parser.add_argument(
        "--kermany-run",
        type=Path,
        default=None,
        help="reuse this Kermany run instead of training one",
    )
    realdata.add_common_args(parser)
    return parser.parse_args(argv)


def _run_args(args: argparse.Namespace, epochs: int) -> argparse.Namespace:
    """What ``realdata.base_overrides`` reads, with one side's number of epochs."""
    return argparse.Namespace(
        image_size=args.image_size, epochs=epochs, seed=args.seed, threads=args.threads
    )


def _kermany_source(args: argparse.Namespace, out: Path) -> Path:
    """Train the source run on every Kermany patient (the COVID set is its test), in
    ``out/run_kermany``; used when no ``--kermany-run`` is given."""
    kermany = realdata.SPECS["kermany"]
    table_k, root_k = realdata.load_split(kermany, test_fraction=0.25, seed=args.split_seed)
    table_k["split"] = "train"  # every Kermany patient: the COVID set is the test
    cache_k = realdata.prepare(table_k, root_k, out / "cache_kermany", args.image_size)
    source = out / "run_kermany"
    overrides = realdata.base_overrides(kermany, _run_args(args, args.kermany_epochs))
    t = realdata.train_run(table_k, source, cache_k, overrides)
    print(
        f"kermany source run: {len(table_k)} images, {t['train_seconds']:.0f} s, best "
        f"epoch {t['best_epoch']}, validation MAP@R {t['val_curve']}",
        flush=True,
    )
    return source


def _covid_trained(
    table: pd.DataFrame, cache: Path, source: Path, args: argparse.Namespace, out: Path
) -> dict[str, np.ndarray]:
    """Fine-tune from ``source`` and train from scratch (ms and ce) on the COVID training
    patients, one run each in ``out/run_SLUG``; returns every run's embeddings."""
    base = realdata.base_overrides(realdata.SPECS["covid"], _run_args(args, args.covid_epochs))
    trained = {
        "kermany -> covid (fine-tuned)": {"init": str(source)},
        "covid from scratch": {},
        "covid from scratch, ce": {"loss": "ce"},
    }
    vectors = {}
    for method, extra in trained.items():
        run = out / f"run_{_slug(method)}"
        t = realdata.train_run(table, run, cache, {**base, **extra})
        print(
            f"  {method}: {t['train_seconds']:.0f} s, best epoch {t['best_epoch']}, "
            f"validation MAP@R {t['val_curve']}",
            flush=True,
        )
        vectors[method] = realdata.embed_run(run, table, cache, out / f"emb_{_slug(method)}")
    return vectors


def _floors(
    table: pd.DataFrame, root: Path, cache: Path, source: Path, out: Path
) -> dict[str, np.ndarray]:
    """The untrained network (``source``'s architecture) and raw pixels: what any learnt
    feature has to beat."""
    from cxrembed.evaluation.baselines import pixel_vectors, untrained_encoder

    return {
        "untrained": realdata.embed_run(
            untrained_encoder(source), table, cache, out / "emb_untrained"
        ),
        "pixels": pixel_vectors(root / p for p in table["image"]),
    }


def _report(
    table: pd.DataFrame, vectors: dict[str, np.ndarray], args: argparse.Namespace, out: Path
) -> None:
    """The retrieval and intubation tables, and the retrieval figure ``out/transfer.png``."""
    covid = realdata.SPECS["covid"]
    scores = {m: realdata.score(v, table, covid, draws=args.bootstrap) for m, v in vectors.items()}
    print(
        "\nCOVID-19 vs other, test patients against the training gallery (95% patient-"
        "bootstrap intervals):\n"
    )
    print(realdata.results_table(scores, covid))
    print(
        "\nintubation (cxr predict-outcome, patient-grouped 5-fold CV, logistic regression, "
        "AUROC [95% CI]):\n"
    )
    print(_markdown(intubation(table, vectors, args)))
    realdata.plot_scores(scores, out / "transfer.png", f"COVID-19 vs other, {args.image_size} px")
    print(f"\nwritten: {out / 'transfer.png'}")


def intubation(
    table: pd.DataFrame, vectors: dict[str, np.ndarray], args: argparse.Namespace
) -> pd.DataFrame:
    """``cxr predict-outcome`` for every method's features (image-only and with clinical)."""
    ids = table["id"].tolist()
    joined = realdata.intubation(
        table,
        {method: (ids, x) for method, x in vectors.items()},
        seed=args.seed,
        bootstrap=args.bootstrap,
        models=["logistic"],
    )
    # this table has always listed image features only: no tabular-only row
    joined = joined[joined["features"] != "tabular-only"].reset_index(drop=True)
    return joined[["image features", "features", "n", "AUROC [95% CI]"]]


def _markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


if __name__ == "__main__":
    sys.exit(main())
