"""Which weights to search with: the best validation epoch or the last epoch, on held-out patients.

``cxr train`` keeps two sets of weights: ``model.safetensors`` (the epoch with the best
validation MAP@R, what ``cxr embed`` uses by default) and the latest checkpoint
(``cxr embed --checkpoint last``). The validation patients are a fifth of the training
patients, so the best-epoch choice is noisy, while the learning rate decays to zero over the
last epochs (cosine schedule): this benchmark measures what the choice costs.

It reads the ``cxr train`` runs that ``retrieval_real.py --out DIR`` left in ``DIR``
(``run_METHOD[_seedN]``; the peer loop keeps no last checkpoint and is skipped), embeds the
collection's images with both sets of weights (reusing the best-weight embeddings that
retrieval_real.py wrote when their weights fingerprint matches), and scores the test
patients against the training gallery exactly as ``retrieval_real.py`` does (same split,
same bootstrap draws):
per run the best epoch, MAP@R and pneumonia-vote AUROC of both, and the paired difference
last − best; then per method the mean over its seeds.

Usage: python benchmarks/checkpoint_choice.py DIR [--collection kermany] [--split-seed 0]
       [--bootstrap 1000] [--threads 2]
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

CHOICES = ("best", "last")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    spec = realdata.SPECS[args.collection]
    realdata.start("checkpoint_choice.py", argv, args)
    if realdata.skipped(spec):
        return 0
    runs = _runs(args.runs)
    if not runs:
        print(f"no cxr train runs (run_*/last.safetensors) in {args.runs}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    table, _ = realdata.load_split(spec, seed=args.split_seed)
    cache = _cache(args.runs)
    rows = [_compare(run, table, cache, spec, args) for run in runs]
    frame = pd.DataFrame(rows)
    print(f"\n{spec.name}: test patients against the training gallery, {args.bootstrap} draws\n")
    print(_run_table(frame))
    print("\nmean over each method's seeds:\n")
    print(_method_table(frame))
    frame.to_csv(args.runs / "checkpoint_choice.csv", index=False)
    print(f"\nwritten: {args.runs / 'checkpoint_choice.csv'}")
    realdata.finish(started)
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The usage line's options (the real-data benchmarks' common ones where they apply)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=Path, help="a retrieval_real.py --out folder")
    parser.add_argument("--collection", choices=sorted(realdata.SPECS), default="kermany")
    parser.add_argument("--split-seed", type=int, default=0, help="test-patient split seed")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        parser.error(f"{args.runs} is not a folder (give a retrieval_real.py --out folder)")
    args.out = args.runs  # what realdata.start reads
    return args


def _runs(folder: Path) -> list[Path]:
    """The ``cxr train`` runs of a retrieval_real folder, in name order."""
    return sorted(p for p in folder.glob("run_*") if (p / "last.safetensors").is_file())


def _cache(folder: Path) -> Path:
    """The image cache retrieval_real prepared in the folder (the pixels the runs saw)."""
    caches = sorted(folder.glob("cache*"))
    if not caches:
        raise SystemExit(f"no cache* folder in {folder}: run retrieval_real.py --out {folder}")
    return caches[0]


def _compare(
    run: Path, table: pd.DataFrame, cache: Path, spec: realdata.Spec, args: argparse.Namespace
) -> dict[str, object]:
    """One run: both weights embedded and scored, and the paired gap last − best."""
    vectors, scores = {}, {}
    for which in CHOICES:
        vectors[which] = _vectors(run, which, table, cache)
        scores[which] = realdata.score(vectors[which], table, spec, draws=args.bootstrap)
    gap = realdata.paired_gap(vectors["last"], vectors["best"], table, spec, draws=args.bootstrap)
    metrics = pd.read_csv(run / "metrics.csv")
    best_epochs = metrics.loc[metrics["best"] == 1, "epoch"]
    method, _, seed = run.name.removeprefix("run_").partition("_seed")
    row: dict[str, object] = {
        "run": run.name,
        "method": method,
        "seed": int(seed) if seed else 0,
        "best epoch": int(best_epochs.iloc[-1]) if len(best_epochs) else None,
        "epochs": int(metrics["epoch"].max()),
    }
    for which in CHOICES:
        row[f"MAP@R {which}"] = scores[which].loc["MAP@R", "value"]
        row[f"AUROC {which}"] = scores[which].loc["vote AUROC", "value"]
    row.update({"last - best": gap["value"], "low": gap["low"], "high": gap["high"]})
    print(
        f"  {run.name}: best epoch {row['best epoch']}/{row['epochs']}, MAP@R best "
        f"{row['MAP@R best']:.3f}, last {row['MAP@R last']:.3f}",
        flush=True,
    )
    return row


def _vectors(run: Path, which: str, table: pd.DataFrame, cache: Path) -> object:
    """The run's embeddings with its ``which`` weights, in table order: the ones
    retrieval_real.py wrote next to the run (``emb_NAME``, best weights) when their weights
    fingerprint is this run's, else embedded now into ``_WHICH_run_NAME``."""
    from cxrembed.embeddings import EmbeddingSet
    from cxrembed.inference.encoder import Encoder

    encoder = Encoder.from_run(run, device="cpu", which=which)
    written = run.parent / f"emb_{run.name.removeprefix('run_')}"
    if written.is_dir():
        embeddings = EmbeddingSet.load(written)
        if embeddings.weights_sha256 == encoder.weights_sha256:
            return embeddings.vectors_for(table["id"])
    return realdata.embed_run(encoder, table, cache, run.parent / f"_{which}_{run.name}")


def _run_table(frame: pd.DataFrame) -> str:
    """Markdown, one row per run."""
    lines = [
        "| run | best epoch | MAP@R best | MAP@R last | last − best [95% CI] | AUROC best | AUROC last |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in frame.iterrows():
        lines.append(
            f"| {r['run']} | {r['best epoch']}/{r['epochs']} | {r['MAP@R best']:.3f} | "
            f"{r['MAP@R last']:.3f} | {r['last - best']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] "
            f"| {r['AUROC best']:.3f} | {r['AUROC last']:.3f} |"
        )
    return "\n".join(lines)


def _method_table(frame: pd.DataFrame) -> str:
    """Markdown, one row per method: means over its seeds, and in how many the last is ahead."""
    lines = [
        "| method | seeds | MAP@R best | MAP@R last | mean last − best | last ahead (CI above 0) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method, group in frame.groupby("method", sort=False):
        ahead = int((group["low"] > 0).sum())
        behind = int((group["high"] < 0).sum())
        lines.append(
            f"| {method} | {len(group)} | {group['MAP@R best'].mean():.3f} | "
            f"{group['MAP@R last'].mean():.3f} | {group['last - best'].mean():+.3f} | "
            f"{ahead} of {len(group)} (behind in {behind}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
