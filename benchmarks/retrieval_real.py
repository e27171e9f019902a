"""Retrieval on real radiographs: the default recipe against ML2, the CE baseline, the
pytorch-metric-learning peer, an untrained network and raw pixels, in one run.

Collections (``--collection``, see :mod:`realdata`): ``kermany`` (pediatric CXRs, subtype
normal / bacteria / virus, 64 px, 8 epochs) or ``covid`` (COVID-19 image data collection,
frontal, COVID-19 vs other, 128 px, 10 epochs). 25% of the patients (stratified by label,
``--split-seed``) are the test queries, scored once at the end; the other patients are
the training gallery, and ``cxr train`` splits them itself into training and validation
(20% of patients) for its best-epoch choice.

Methods, all resnet18 trained from scratch (no pretrained weights exist here), every
``cxr train`` setting at its default except those named:

``default``   ``cxr train`` as it ships (``--image-size``, ``--epochs`` only)
``default-ce3`` the default with ``loss_options: {ce_weight: 3}`` (the tuning lead; not in
              the default ``--methods``)
``ml2``       ``--loss ml2``
``ce``        ``--loss ce``: the classifier baseline (its embedding: the penultimate layer)
``pml-ms``    the peer: pytorch-metric-learning's ``MultiSimilarityLoss`` +
              ``MultiSimilarityMiner`` in a plain loop with the same model, data, optimiser,
              schedule, epochs and best-epoch rule
``untrained`` the default network with its random initial weights
``pixels``    32 px letterboxed pixels, standardised per image

Metrics, test patients (queries) against the training patients' images (gallery), a
query's own patient never in its gallery: MAP@R, P@1, R-precision on the label, plurality
vote accuracy of the 10 nearest, and the AUROC of the share of the 10 nearest in the
positive group (pneumonia, or COVID-19); 95% intervals from a patient bootstrap (1,000
draws, shared by all methods). The default against ``ce``, the peer and ``ml2``: the MAP@R
ratio, whether the two intervals overlap, and the paired difference with its own interval
(the same draws score both methods, so it is the interval of the gap itself).

The patient bootstrap holds the trained networks fixed, so it leaves out the variance of
training itself (initial weights, batch order, augmentation). ``--seeds 0,1,2`` trains each
trained method once per seed: the table shows the first seed, and a seed summary follows:
MAP@R per seed with the mean and standard deviation across seeds, and the default's paired
gap to each baseline per seed, its mean, and in how many seeds the default is ahead.

Usage: python benchmarks/retrieval_real.py [--collection kermany] [--epochs N]
       [--image-size PX] [--threads 2] [--seeds 0] [--split-seed 0] [--bootstrap 1000]
       [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import realdata  # noqa: E402

TRAINED = {
    "default": {},
    "default-ce3": {"loss_options": {"ce_weight": 3.0}},
    "ml2": {"loss": "ml2"},
    "ce": {"loss": "ce"},
}


def main(argv: list[str] | None = None) -> int:
    args, seeds, methods = _parse_args(argv)
    spec = realdata.SPECS[args.collection]
    out = realdata.start("retrieval_real.py", argv, args)
    if realdata.skipped(spec):
        return 0
    started = time.perf_counter()
    table, root = realdata.load_split(spec, seed=args.split_seed)
    print(f"\ndata: {spec.data}\n{realdata.describe(table, spec)}")
    cache = realdata.prepare(table, root, out / f"cache{args.image_size}", args.image_size)
    by_seed, timing = _train_seeds(table, cache, spec, args, seeds, methods, out, started)
    vectors = {**by_seed[seeds[0]], **_floors(table, root, cache, methods, out)}
    scores = {m: realdata.score(v, table, spec, draws=args.bootstrap) for m, v in vectors.items()}
    _print_tables(table, spec, args, scores, vectors, timing)
    if len(seeds) > 1:
        print(f"\nacross training seeds {seeds} (MAP@R, {args.bootstrap} draws):\n")
        print(_seed_summary(by_seed, table, spec, args.bootstrap))
    _write(scores, spec, args, out)
    realdata.finish(started)
    return 0


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[int], list[str]]:
    """The usage line's options, the training seeds and the chosen methods (a typo stops
    before any work); ``--epochs`` and ``--image-size`` default to the collection's."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collection", choices=sorted(realdata.SPECS), default="kermany")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--methods", default="default,ml2,ce,pml-ms,untrained,pixels")
    parser.add_argument(
        "--seeds",
        default=None,
        help="comma-separated training seeds (default: --seed); more than one adds a seed summary",
    )
    realdata.add_common_args(parser)
    args = parser.parse_args(argv)
    seeds = _seeds(parser, args.seeds, args.seed)
    methods = realdata.chosen_names(
        parser, "--methods", args.methods, [*TRAINED, "pml-ms", "untrained", "pixels"]
    )
    spec = realdata.SPECS[args.collection]
    args.epochs = args.epochs or spec.epochs
    args.image_size = args.image_size or spec.image_size
    return args, seeds, methods


def _train_seeds(
    table: pd.DataFrame,
    cache: Path,
    spec: realdata.Spec,
    args: argparse.Namespace,
    seeds: list[int],
    methods: list[str],
    out: Path,
    started: float,
) -> tuple[dict[int, dict[str, object]], dict[str, dict]]:
    """Train and embed every trained method once per seed (``out/run_METHOD[_seedN]``);
    returns the embeddings by seed and method, and each method's first-seed timing."""
    base = realdata.base_overrides(spec, args)
    by_seed: dict[int, dict[str, object]] = {}
    timing: dict[str, dict] = {}
    for seed in seeds:
        by_seed[seed] = {}
        tag = "" if seed == seeds[0] else f"_seed{seed}"
        seeded = {**base, "seed": seed}
        for method in methods:
            run = out / f"run_{method}{tag}"
            if method in TRAINED:
                t = realdata.train_run(table, run, cache, {**seeded, **TRAINED[method]})
            elif method == "pml-ms":
                t = realdata.pml_peer_run(table, run, cache, seeded)
            else:
                continue
            timing.setdefault(method, t)
            by_seed[seed][method] = realdata.embed_run(
                run, table, cache, out / f"emb_{method}{tag}"
            )
            print(
                f"  {method} (seed {seed}): trained in {t['train_seconds']:.0f} s "
                f"({t['images_per_second']:.1f} img/s; {t['seconds']:.0f} s with validation), "
                f"best epoch {t['best_epoch']}, validation MAP@R by epoch {t['val_curve']}  "
                f"[{time.perf_counter() - started:.0f} s elapsed]",
                flush=True,
            )
    return by_seed, timing


def _floors(
    table: pd.DataFrame, root: Path, cache: Path, methods: list[str], out: Path
) -> dict[str, object]:
    """The untrained network (the first trained run's architecture) and raw pixels, when
    chosen: what any learnt embedding has to beat."""
    floors: dict[str, object] = {}
    reference = next(
        (out / f"run_{m}" for m in ("default", *TRAINED, "pml-ms") if (out / f"run_{m}").is_dir()),
        None,
    )
    if "untrained" in methods and reference is not None:
        from cxrembed.evaluation.baselines import untrained_encoder

        floors["untrained"] = realdata.embed_run(
            untrained_encoder(reference), table, cache, out / "emb_untrained"
        )
    if "pixels" in methods:
        from cxrembed.evaluation.baselines import pixel_vectors

        floors["pixels"] = pixel_vectors(root / p for p in table["image"])
    return floors


def _print_tables(
    table: pd.DataFrame,
    spec: realdata.Spec,
    args: argparse.Namespace,
    scores: dict[str, pd.DataFrame],
    vectors: dict[str, object],
    timing: dict[str, dict],
) -> None:
    """The results table (first seed) with training times, and the default's comparisons."""
    extra = {
        m: {"train s (img/s)": f"{t['train_seconds']:.0f} ({t['images_per_second']:.0f})"}
        for m, t in timing.items()
    }
    queries = int((table["split"] == "test").sum())
    patients = table.loc[table["split"] == "test", spec.group].nunique()
    print(
        f"\n{spec.name}: {queries} test images ({patients} patients) against "
        f"{int((table['split'] == 'train').sum())} training "
        f"images, {args.image_size} px, {args.epochs} epochs, 95% patient-bootstrap "
        f"intervals ({args.bootstrap} draws):\n"
    )
    print(realdata.results_table(scores, spec, extra))
    _comparisons(scores, vectors, table, spec, args.bootstrap)


def _write(
    scores: dict[str, pd.DataFrame], spec: realdata.Spec, args: argparse.Namespace, out: Path
) -> None:
    """``out/results.csv`` (every metric of every method) and ``out/results.png``."""
    frame = pd.concat({m: s for m, s in scores.items()}, names=["method", "metric"])
    frame.to_csv(out / "results.csv")
    png = realdata.plot_scores(
        scores,
        out / "results.png",
        f"{spec.name}: test patients vs training gallery "
        f"({args.image_size} px, {args.epochs} epochs)",
    )
    print(f"\nwritten: {out / 'results.csv'}, {png}")


def _seeds(parser: argparse.ArgumentParser, value: str | None, seed: int) -> list[int]:
    """``--seeds 0,1,2`` as distinct ints in order (default: ``[--seed]``)."""
    if value is None:
        return [seed]
    try:
        seeds = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {value!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        parser.error(f"--seeds needs one or more distinct integers, got {value!r}")
    return seeds


def _seed_summary(
    by_seed: dict[int, dict[str, object]],
    table: pd.DataFrame,
    spec: realdata.Spec,
    draws: int,
) -> str:
    """Markdown: each trained method's MAP@R per seed with the mean and standard deviation
    across seeds; then the default's paired gap to each baseline per seed, its mean, and in
    how many seeds the default is ahead with an interval above zero."""
    import numpy as np

    from cxrembed.evaluation.metrics.intervals import format_interval

    seeds = list(by_seed)
    methods = list(by_seed[seeds[0]])
    heads = [f"seed {s}" for s in seeds]
    lines = [
        "| method | " + " | ".join(heads) + " | mean ± sd |",
        "|---|" + "---:|" * (len(seeds) + 1),
    ]
    for method in methods:
        values = [
            realdata.score(by_seed[s][method], table, spec, draws=draws).loc["MAP@R"] for s in seeds
        ]
        means = np.array([v["value"] for v in values])
        cells = [format_interval(v) for v in values]
        lines.append(
            f"| {method} | "
            + " | ".join(cells)
            + f" | {means.mean():.3f} ± {means.std(ddof=1):.3f} |"
        )
    if "default" not in methods:
        return "\n".join(lines)
    lines += ["", "| default − | " + " | ".join(heads) + " | mean gap | default ahead |"]
    lines.append("|---|" + "---:|" * (len(seeds) + 2))
    for other in (m for m in methods if m != "default"):
        gaps = [
            realdata.paired_gap(by_seed[s]["default"], by_seed[s][other], table, spec, draws=draws)
            for s in seeds
        ]
        ahead = sum(g["low"] > 0 for g in gaps)
        behind = sum(g["high"] < 0 for g in gaps)
        mean = float(np.mean([g["value"] for g in gaps]))
        cells = [format_interval(pd.Series(g)) for g in gaps]
        lines.append(
            f"| {other} | " + " | ".join(cells) + f" | {mean:+.3f} | "
            f"{ahead} of {len(seeds)} seeds (behind in {behind}) |"
        )
    return "\n".join(lines)


def _comparisons(
    scores: dict[str, pd.DataFrame],
    vectors: dict[str, object],
    table: pd.DataFrame,
    spec: realdata.Spec,
    draws: int,
) -> None:
    """The default against each baseline: MAP@R ratio, whether the two intervals overlap, and
    the paired difference (same bootstrap draws for both: the interval of the gap itself)."""
    if "default" not in scores:
        return
    from cxrembed.evaluation.metrics.intervals import format_interval

    mine = scores["default"]
    for other in ("ce", "pml-ms", "ml2"):
        if other not in scores:
            continue
        theirs = scores[other]
        ratio = mine.loc["MAP@R", "value"] / theirs.loc["MAP@R", "value"]
        verdict = "overlap" if realdata.overlap(mine, theirs) else "do not overlap"
        gap = realdata.paired_gap(vectors["default"], vectors[other], table, spec, draws=draws)
        print(
            f"default / {other}: MAP@R x{ratio:.3f}; 95% intervals {verdict}; paired "
            f"difference {format_interval(pd.Series(gap))}"
        )


if __name__ == "__main__":
    sys.exit(main())
