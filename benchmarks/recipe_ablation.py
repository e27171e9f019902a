"""Why multi-similarity trailed cross-entropy on real radiographs, and what the default is.

Each row is one ``cxr train`` run on the **tuning** patients of ``kermany_dev`` (the
benchmark's test patients are never used here), 64 px, 8 epochs, resnet18 from scratch,
with every setting at the default except those named. ``cxr train`` splits the tuning
patients itself (20% validation patients, seeded); a row is scored on those validation
patients as queries against the training patients' images (its own patient left out),
with 95% patient-bootstrap intervals.

Rows (``--rows``, comma-separated names; ``all`` by default):

=================  =======================================================================
``ms``             multi-similarity + mining alone (the old default)
``ms gap``          the same without attention pooling (global average pooling)
``ms lr-x3``       ``lr 1e-3, head_lr 1e-2`` instead of ``3e-4, 3e-3``
``ms m-8``         8 images per label in a batch (4 label draws for 3 labels) instead of 4
``ce``             the classifier baseline (BCE on a linear head, penultimate features)
``proxy``          normalised-softmax proxies on the embedding alone
``ms+proxy``       MS plus the proxy term
``ms+ce``          MS plus a linear classification term on the projection: the default
``ms+ce ce-x3``    the same with ``ce_weight 3`` instead of 1
``ms+ce softmax``  the same with a softmax cross-entropy head instead of BCE
``ms+ce lr-x2``    the same with ``lr 6e-4, head_lr 6e-3``
``ms+ce b64``      the same with 64 images a batch (16 label draws of ``m`` = 4) instead of 32:
                   the same images per epoch in half the steps, 4x the pairs per batch
``ce b64``         the baseline with 64 images a batch
``ms+ce bn``       the default with a BatchNorm neck before the L2 normalisation
                   (``embedding_norm: batchnorm``), both terms on the normalised features
``ce bn``          the baseline with the same neck
``ms+ce no-mine``  the default without multi-similarity hard mining (every pair weighted)
``ms+ce aug-x2``   the default with twice the jitter (rotation 10, scale [0.9, 1.1],
                   translate 0.06, brightness and contrast 0.2)
``ce aug-x2``      the baseline with the same jitter
``ms+ce d512``     the default with a 512-d embedding instead of 128
``ms+ce ls-0.1``   the default with a softmax head and label smoothing 0.1
``ms+ce gap``      the default without attention pooling (global average pooling)
``ms+ce warm-0``   the default without the one-epoch linear warm-up
=================  =======================================================================

Every row trains with the same seed, so ``cxr train`` draws the same validation patients for
each: after the table, each row's MAP@R minus the ``--against`` row's (default ``ms+ce``,
when chosen) with a **paired** interval (both scored on the same bootstrap draws). The
separate intervals above are about four times wider than the held-out gaps this protocol
has to find; the paired one is the figure to read.

Usage: python benchmarks/recipe_ablation.py [--rows all] [--against ms+ce] [--split-seed 0]
       [--seed 0] [--threads 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import realdata  # noqa: E402

from cxrembed.evaluation.metrics.intervals import format_interval  # noqa: E402

_STRONGER_JITTER = {
    "augmentation.rotation": 10.0,
    "augmentation.scale": [0.9, 1.1],
    "augmentation.translate": 0.06,
    "augmentation.brightness": 0.2,
    "augmentation.contrast": 0.2,
}

ROWS = {
    "ms": {"loss": "ms"},
    "ms gap": {"loss": "ms", "attention": False},
    "ms lr-x3": {"loss": "ms", "lr": 1e-3, "head_lr": 1e-2},
    "ms m-8": {"loss": "ms", "m": 8},
    "ce": {"loss": "ce"},
    "proxy": {"loss": "proxy"},
    "ms+proxy": {"loss": "ms+proxy"},
    "ms+ce": {"loss": "ms+ce"},
    "ms+ce ce-x3": {"loss": "ms+ce", "loss_options": {"ce_weight": 3.0}},
    "ms+ce softmax": {"loss": "ms+ce", "loss_options": {"head": "softmax"}},
    "ms+ce lr-x2": {"loss": "ms+ce", "lr": 6e-4, "head_lr": 6e-3},
    "ms+ce b64": {"loss": "ms+ce", "batch_size": 64},
    "ce b64": {"loss": "ce", "batch_size": 64},
    "ms+ce bn": {"loss": "ms+ce", "embedding_norm": "batchnorm"},
    "ce bn": {"loss": "ce", "embedding_norm": "batchnorm"},
    "ms+ce no-mine": {"loss": "ms+ce", "loss_options": {"mining": False}},
    "ms+ce aug-x2": {"loss": "ms+ce", **_STRONGER_JITTER},
    "ce aug-x2": {"loss": "ce", **_STRONGER_JITTER},
    "ms+ce d512": {"loss": "ms+ce", "embedding_dim": 512},
    "ms+ce ls-0.1": {"loss": "ms+ce", "loss_options": {"head": "softmax", "label_smoothing": 0.1}},
    "ms+ce gap": {"loss": "ms+ce", "attention": False},
    "ms+ce warm-0": {"loss": "ms+ce", "warmup_epochs": 0.0},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="all")
    parser.add_argument(
        "--against", default="ms+ce", help="reference row of the paired gaps ('' for none)"
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    realdata.add_common_args(parser)
    args = parser.parse_args(argv)
    spec = realdata.SPECS["kermany"]
    out = realdata.start("recipe_ablation.py", argv, args)
    if realdata.skipped(spec):
        return 0
    names = realdata.chosen_names(parser, "--rows", args.rows, ROWS)
    if args.against and args.against not in ROWS:
        parser.error(f"--against {args.against!r} is not a row; rows: {', '.join(ROWS)}")
    started = time.perf_counter()
    table, root = realdata.load_split(spec, seed=args.split_seed)
    tuning = table[table["split"] == "train"].reset_index(drop=True)
    cache = realdata.prepare(table, root, out / f"cache{args.image_size}", args.image_size)
    base = realdata.base_overrides(spec, args)
    scores, extra, embedded = {}, {}, {}
    for name in names:
        run = out / f"run_{''.join(c if c.isalnum() else '_' for c in name)}"
        timing = realdata.train_run(tuning, run, cache, {**base, **ROWS[name]})
        split = pd.read_csv(run / "split.csv", dtype=str)
        side = dict(zip(split["id"], split["split"], strict=True))
        scored = tuning.assign(split=tuning["id"].map(side))
        vectors = realdata.embed_run(run, scored, cache, out / f"emb_{run.name}")
        scores[name] = realdata.score(
            vectors, scored, spec, draws=args.bootstrap, query="val", gallery="train"
        )
        embedded[name] = (vectors, scored)
        extra[name] = {
            "best epoch": str(timing["best_epoch"]),
            "train s": f"{timing['train_seconds']:.0f}",
        }
        print(
            f"  {name}: validation MAP@R {scores[name].loc['MAP@R', 'value']:.3f}, curve "
            f"{timing['val_curve']} [{time.perf_counter() - started:.0f} s elapsed]",
            flush=True,
        )
    print(
        f"\nvalidation patients of the tuning split (split seed {args.split_seed}, training "
        f"seed {args.seed}) against its training patients, {args.image_size} px, "
        f"{args.epochs} epochs:\n"
    )
    print(realdata.results_table(scores, spec, extra))
    if args.against in embedded:
        print(gap_lines(embedded, args.against, spec, args.bootstrap))
    realdata.finish(started)
    return 0


def gap_lines(
    embedded: dict[str, tuple[np.ndarray, pd.DataFrame]], against: str, spec: Any, draws: int
) -> str:
    """Each row's validation MAP@R minus ``against``'s, paired on the same bootstrap draws.

    Rows are paired only when their runs held out the same validation patients (the same
    training seed and split); a row whose split differs says so instead.
    """
    reference, table = embedded[against]
    lines = [f"\npaired validation MAP@R gap to {against} (95% paired interval):"]
    for name, (vectors, scored) in embedded.items():
        if name == against:
            continue
        if not scored["split"].equals(table["split"]):
            lines.append(f"  {name}: not paired (its run held out other validation patients)")
            continue
        gap = realdata.paired_gap(
            vectors, reference, table, spec, draws=draws, query="val", gallery="train"
        )
        lines.append(f"  {name} - {against}: {format_interval(pd.Series(gap))}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
