"""``make demo``: the whole cxrkit chain in a few minutes on a CPU.

By default (``--images real``) the image part runs on **real radiographs**: the Kermany
64 px subset that ships in ``data/kermany_demo/`` (:mod:`cxrembed.demo.real`: train,
embed, search, evaluate against an untrained network and raw pixels). ``--images
synthetic`` (or a copy without the subset) runs the synthetic chain below, which also
exercises label mining from reports:

1. ``cxr label`` + ``cxr validate`` on the 3,955 real Open-i reports (:mod:`cxrlabel.demo`);
2. a **synthetic** image set (:mod:`cxrembed.collections.synthetic`): drawn images with
   visible findings (enlarged heart, pleural fluid level, nodule) and a short report each;
3. ``cxr label`` on those reports: the training labels are *mined from text*, with the
   reports' label noise, and compared with the truth the images were drawn from;
4. ``cxr train``: a small metric-learning model (multi-similarity loss, attention pooling)
   on the training patients, with the mined labels;
5. ``cxr embed`` + index of every image;
6. ``cxr search`` for two test images: neighbours with their truth and report sentences,
   and a PNG grid with attention overlays;
7. ``cxr evaluate``: test patients as queries against the training patients' gallery, with
   the truth labels, next to the same network untrained.

Run: ``python -m cxrembed.demo [OUT_DIR] [--images real|synthetic] [--no-openi]
[--threads N]`` (default ``demo_out/``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from cxrembed.collections.synthetic import FINDINGS, TRUTH_COLUMNS, SyntheticSet, make_synthetic_set

__all__ = ["CURVE_COLUMNS", "TEST_AGAINST_TRAIN", "DemoSettings", "DemoResult", "run_demo", "main"]

Echo = Callable[[str], None]

#: ``evaluate_table`` options of a demo table (``id``, ``split``): the test patients as
#: queries against the training patients' gallery, so no patient is on both sides.
TEST_AGAINST_TRAIN: Mapping[str, Any] = MappingProxyType(
    {
        "id_col": "id",
        "split_col": "split",
        "query_split": "test",
        "gallery_split": "train",
        "ks": (1, 5, 10),
        "diagnosis_k": 10,
    }
)
#: The columns of ``cxr train``'s per-epoch metrics that show how training went.
CURVE_COLUMNS = (
    "epoch",
    "train_loss",
    "val_mean_average_precision_at_r",
    "val_precision_at_1",
    "val_precision_at_5",
    "train_images_per_second",
)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults run in a few minutes on two CPU cores."""

    n_images: int = 300
    file_size: int = 128
    image_size: int = 64
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    head_lr: float = 1e-2
    embedding_dim: int = 64
    k: int = 5
    seed: int = 0
    openi: bool = True
    progress: bool = True


@dataclass
class DemoResult:
    """Paths and headline figures of one demo run."""

    out_dir: Path
    synthetic: SyntheticSet
    mined_labels: Path
    run_dir: Path
    embeddings: Path
    index: Path
    searches: list[pd.DataFrame] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)
    trained: dict[str, float] = field(default_factory=dict)
    untrained: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    out_dir: str | Path, settings: DemoSettings = DemoSettings(), echo: Echo = print
) -> DemoResult:
    """Run every step, print each step's table with ``echo``, return the outputs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clock: dict[str, float] = {}

    if settings.openi:
        with _timed(clock, "open-i"):
            from cxrlabel import demo as label_demo

            label_demo.main([str(out)])

    synthetic, truth = _draw(out, settings, clock, echo)
    mined_path, evidence, mined = _label(out, synthetic, truth, settings, clock, echo)

    echo(
        f"\n== cxr train: resnet18 + attention, multi-similarity loss, {settings.image_size} px, "
        f"{settings.epochs} epochs, mined labels, training patients only =="
    )
    run_dir = out / "run"
    with _timed(clock, "train"):
        result = _train(truth, mined, synthetic, run_dir, settings)
    echo(_metrics_text(result))

    embeddings, index = _embed(out, run_dir, synthetic, settings, clock, echo)

    echo(
        f"\n== cxr search: two test images, {settings.k} nearest neighbours (the query is in "
        "the gallery, so it finds itself first) =="
    )
    with _timed(clock, "search"):
        searches, grids = _search(run_dir, index, evidence, truth, synthetic, out, settings, echo)

    echo(
        "\n== cxr evaluate: test patients (queries) against training patients (gallery), "
        "truth labels =="
    )
    with _timed(clock, "evaluate"):
        trained, untrained = _evaluate(out, truth, result, synthetic, settings, echo)

    demo = DemoResult(
        out,
        synthetic,
        mined_path,
        run_dir,
        embeddings,
        index,
        searches,
        grids,
        trained,
        untrained,
        clock,
    )
    echo("\n== time per step (s) ==")
    echo("  ".join(f"{name} {seconds:.0f}" for name, seconds in clock.items()))
    echo(
        "\nThe images above are synthetic drawings with visible findings, not radiographs; "
        "the figures show that the chain works end to end, not clinical performance."
    )
    return demo


def main(argv: list[str] | None = None) -> int:
    """``python -m cxrembed.demo [OUT_DIR] [--images real|synthetic] [--no-openi] [--threads N]``.

    The demo trains with one CPU thread unless ``--threads`` says otherwise: its batches
    are small, and on a busy machine two competing threads were measured four times slower
    than one.
    """
    import argparse

    import torch

    parser = argparse.ArgumentParser(
        prog="python -m cxrembed.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", nargs="?", default="demo_out", help="output folder")
    parser.add_argument(
        "--images",
        choices=("real", "synthetic"),
        default="real",
        help="real: the shipped Kermany subset (default); synthetic: drawings",
    )
    parser.add_argument("--no-openi", action="store_true", help="skip the Open-i reports step")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    openi = not args.no_openi
    start = time.perf_counter()
    from cxrembed.demo.real import find_demo_data, run_real_demo

    if args.images == "real" and find_demo_data() is not None:
        if openi:
            from cxrlabel import demo as label_demo

            label_demo.main([str(out)])
        images_started = time.perf_counter()
        run_real_demo(out)
        print(f"\nimage part: {time.perf_counter() - images_started:.0f} s")
    else:
        if args.images == "real":
            print(
                "note: the real-image subset (data/kermany_demo) was not found; running the "
                "synthetic image chain instead"
            )
        run_demo(out, DemoSettings(openi=openi))
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; outputs in {out}/")
    return 0


# ----------------------------------------------------------------------------- steps


def _draw(
    out: Path, settings: DemoSettings, clock: dict[str, float], echo: Echo
) -> tuple[SyntheticSet, pd.DataFrame]:
    """Step 2: the synthetic image set and its truth table."""
    echo("\n== synthetic images (NOT real radiographs: drawn by cxrembed.collections.synthetic) ==")
    with _timed(clock, "synthetic"):
        synthetic = make_synthetic_set(
            out / "synthetic",
            settings.n_images,
            size=settings.file_size,
            seed=settings.seed,
            progress=settings.progress,
        )
    truth = pd.read_csv(synthetic.table, dtype={"id": str})
    echo(_synthetic_text(synthetic, truth))
    return synthetic, truth


def _label(
    out: Path,
    synthetic: SyntheticSet,
    truth: pd.DataFrame,
    settings: DemoSettings,
    clock: dict[str, float],
    echo: Echo,
) -> tuple[Path, Path, pd.DataFrame]:
    """Step 3: labels mined from the synthetic reports, against the drawn truth; returns the
    labels file, the evidence file and the labels."""
    echo("\n== cxr label: the synthetic reports (CheXpert schema) ==")
    mined_path = out / "synthetic_labels.csv"
    evidence = out / "synthetic_evidence.jsonl"
    with _timed(clock, "label"):
        from cxrlabel.labelfile import label_file

        summary = label_file(
            synthetic.table,
            mined_path,
            text_cols=["report"],
            id_col="id",
            schema="chexpert",
            evidence_path=evidence,
            progress=settings.progress,
        )
    mined = pd.read_csv(mined_path, dtype={"id": str})
    echo(summary.text())
    echo("\nmined labels against the truth the images were drawn from (1 = positive):")
    echo(_agreement(truth, mined))
    return mined_path, evidence, mined


def _train(
    truth: pd.DataFrame,
    mined: pd.DataFrame,
    synthetic: SyntheticSet,
    run_dir: Path,
    settings: DemoSettings,
) -> Any:
    from cxrembed.train import train

    table = truth[["id", "patient_id", "image", "split"]].merge(
        mined[["id", "status", *TRUTH_COLUMNS]], on="id", how="left", validate="one_to_one"
    )
    table = table[table["split"] == "train"].reset_index(drop=True)
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)  # the demo always starts afresh
    return train(
        table,
        run_dir,
        images=synthetic.root,
        progress=settings.progress,
        overrides={
            "image_col": "image",
            "id_col": "id",
            "group_col": "patient_id",
            "labels.columns": list(TRUTH_COLUMNS),
            "loss": "ms",
            "backbone": "resnet18",
            "attention": True,
            "embedding_dim": settings.embedding_dim,
            "image_size": settings.image_size,
            "epochs": settings.epochs,
            "batch_size": settings.batch_size,
            "m": 4,
            "lr": settings.lr,
            "head_lr": settings.head_lr,
            "num_workers": 0,
            "val_fraction": 0.2,
            "seed": settings.seed,
            "device": "cpu",
            "warmup_epochs": 0.5,
        },
    )


def _embed(
    out: Path,
    run_dir: Path,
    synthetic: SyntheticSet,
    settings: DemoSettings,
    clock: dict[str, float],
    echo: Echo,
) -> tuple[Path, Path]:
    """Step 5: embed and index every synthetic image; returns both folders."""
    echo("\n== cxr embed + index: every synthetic image ==")
    embeddings, index = out / "embeddings", out / "index"
    with _timed(clock, "embed"):
        from cxrembed.commands.embed import format_embed_summary
        from cxrembed.search.embed_and_index import embed_and_index

        embedded, built = embed_and_index(
            run_dir,
            synthetic.table,
            embeddings,
            images_root=synthetic.root,
            image_col="image",
            id_col="id",
            index=index,
            device="cpu",
            show_cols=["patient_id", "split", *TRUTH_COLUMNS],
            progress=settings.progress,
            resume=False,
        )
    echo(format_embed_summary(embedded, built))
    return embeddings, index


def _search(
    run_dir: Path,
    index: Path,
    evidence: Path,
    truth: pd.DataFrame,
    synthetic: SyntheticSet,
    out: Path,
    settings: DemoSettings,
    echo: Echo,
) -> tuple[list[pd.DataFrame], list[Path]]:
    from cxrembed.search.retriever import Retriever

    test = truth[truth["split"] == "test"]
    test = test if len(test) else truth
    wanted = [
        test[(test["Cardiomegaly"] == 1) & (test["Pleural Effusion"] == 1)],
        test[(test["Lung Lesion"] == 1) & (test["Cardiomegaly"] == 0)],
    ]
    queries = [
        rows.iloc[0] if len(rows) else test.iloc[i % len(test)] for i, rows in enumerate(wanted)
    ]
    retriever = Retriever(
        run_dir, index, evidence=evidence, show=[*TRUTH_COLUMNS, "patient_id"], device="cpu"
    )
    paths = [synthetic.root / q["image"] for q in queries]
    results = retriever.search(paths, k=settings.k, include_self=True)  # shown first
    grids = []
    for n, (query, path, frame) in enumerate(zip(queries, paths, results, strict=True), 1):
        found = ", ".join(c for c in FINDINGS if query[c] == 1) or "no finding"
        echo(f"\nquery {n}: {query['id']} (patient {query['patient_id']}; truth: {found})")
        echo(f"report: {query['report']}")
        with pd.option_context("display.max_colwidth", 70, "display.width", 250):
            echo(frame.to_string(index=False))
        grid = retriever.grid_png(out / f"search_{n}.png", path, frame, label_cols=FINDINGS)
        grids.append(grid)
        echo(f"grid: {grid}")
    return results, grids


def _evaluate(
    out: Path,
    truth: pd.DataFrame,
    result: Any,
    synthetic: SyntheticSet,
    settings: DemoSettings,
    echo: Echo,
) -> tuple[dict[str, float], dict[str, float]]:
    from cxrembed.data.labels import LabelOptions
    from cxrembed.embeddings.embedding_set import EmbeddingSet
    from cxrembed.evaluation.baselines import untrained_encoder
    from cxrembed.evaluation.evaluate import evaluate_table
    from cxrembed.inference.embed import embed_images

    options = dict(
        labels=LabelOptions(columns=TRUTH_COLUMNS, status_col=None),
        **TEST_AGAINST_TRAIN,
        seed=settings.seed,
    )
    emb = EmbeddingSet.load(out / "embeddings")
    evaluation = evaluate_table(emb.vectors, emb.ids, truth, config_hash=emb.config_hash, **options)
    paths = evaluation.write(out / "evaluation")
    echo(evaluation.to_markdown())
    echo(f"written: {', '.join(str(p) for p in paths.values())}")

    embed_images(
        untrained_encoder(result.run_dir),
        synthetic.table,
        out / "embeddings_untrained",
        images_root=synthetic.root,
        image_col="image",
        id_col="id",
        resume=False,
        progress=False,
    )
    raw = EmbeddingSet.load(out / "embeddings_untrained")
    baseline = evaluate_table(raw.vectors, raw.ids, truth, map_method=None, **options)
    keys = {
        "mean_average_precision_at_r": "MAP@R",
        "precision_at_1": "P@1",
        "precision_at_5": "P@5",
        "ndcg_at_10": "nDCG@10",
        "diagnosis_macro_auroc": "diagnosis macro AUROC (k=10)",
    }
    trained = {label: float(evaluation.metrics[key]) for key, label in keys.items()}
    untrained = {label: float(baseline.metrics[key]) for key, label in keys.items()}
    echo("\ntrained vs the same network untrained (random weights), same queries and gallery:")
    echo("| metric | trained | untrained |\n|---|---:|---:|")
    echo("\n".join(f"| {k} | {trained[k]:.3f} | {untrained[k]:.3f} |" for k in trained))
    return trained, untrained


# ----------------------------------------------------------------------------- text


def _synthetic_text(synthetic: SyntheticSet, truth: pd.DataFrame) -> str:
    split = truth.groupby("split")["patient_id"].nunique()
    lines = [
        f"{synthetic.n_images} images of {synthetic.n_patients} synthetic patients in "
        f"{synthetic.images} (train: {split.get('train', 0)} patients, test: "
        f"{split.get('test', 0)} patients)",
        "| finding (truth) | images |",
        "|---|---:|",
        *[f"| {name} | {count} |" for name, count in synthetic.prevalence.items()],
        f"example report: {truth['report'].iloc[0]!r}",
    ]
    return "\n".join(lines)


def _agreement(truth: pd.DataFrame, mined: pd.DataFrame) -> str:
    from cxrembed.data.labels import POSITIVE, UNCERTAIN

    joined = truth.merge(mined, on="id", suffixes=("_truth", "_mined"))
    lines = [
        "| finding | truth positive | mined positive | mined uncertain | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in TRUTH_COLUMNS:
        real = joined[f"{name}_truth"] == POSITIVE
        said = joined[f"{name}_mined"] == POSITIVE
        hits = int((real & said).sum())
        precision = hits / said.sum() if said.sum() else float("nan")
        recall = hits / real.sum() if real.sum() else float("nan")
        lines.append(
            f"| {name} | {int(real.sum())} | {int(said.sum())} | "
            f"{int((joined[f'{name}_mined'] == UNCERTAIN).sum())} | {precision:.3f} | "
            f"{recall:.3f} |"
        )
    return "\n".join(lines)


def _metrics_text(result: Any) -> str:
    frame = pd.DataFrame(result.metrics)
    keep = [c for c in (*CURVE_COLUMNS, "train_seconds") if c in frame.columns]
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        table = frame[keep].to_string(index=False) if keep else frame.to_string(index=False)
    return (
        f"{table}\nrun: {result.run_dir} ({result.status}, best epoch {result.best_epoch}, "
        f"{result.excluded} rows excluded)"
    )


class _timed:
    """Context manager adding the elapsed seconds to ``clock[name]``."""

    def __init__(self, clock: dict[str, float], name: str) -> None:
        self.clock = clock
        self.name = name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.clock[self.name] = time.perf_counter() - self.start
