"""The demo's image chain on real radiographs: the shipped Kermany 64 px subset.

``data/kermany_demo/`` (made by ``benchmarks/make_demo_subset.py``; CC BY 4.0, see
``NOTICE``) holds about 1,200 pediatric chest X-rays graded normal / bacterial / viral
pneumonia, split by patient into training and test images. The chain is the one a user
runs:

1. ``cxr train`` with the default recipe on the training patients;
2. ``cxr embed`` + index of every image;
3. ``cxr search`` for two test images (neighbours with their grade, a PNG grid);
4. ``cxr evaluate``: test patients (queries) against the training patients (gallery), next
   to the same network untrained and to raw pixels, with patient-bootstrap 95% intervals.

:func:`find_demo_data` looks for the subset in ``$CXRKIT_DEMO_DATA``, then in the source
tree next to the package (a clone or an editable install); a wheel does not carry it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["DEMO_DATA_ENV", "RealDemoSettings", "RealDemoResult", "find_demo_data", "run_real_demo"]

Echo = Callable[[str], None]
#: Environment variable naming another folder with the demo subset's layout.
DEMO_DATA_ENV = "CXRKIT_DEMO_DATA"
_IN_TREE = Path(__file__).resolve().parents[2] / "data" / "kermany_demo"
ATTRIBUTION = (
    "Kermany, Zhang, Goldbaum, Cell 2018; Mendeley Data v2, "
    "doi:10.17632/rscbjbr9sj.2; CC BY 4.0; downscaled to 64 px grayscale"
)


@dataclass(frozen=True)
class RealDemoSettings:
    """Sizes of the real-image demo; the defaults take about 3 minutes on two CPU cores."""

    data: Path | None = None
    image_size: int = 64
    epochs: int = 8
    k: int = 5
    seed: int = 0
    bootstrap: int = 1000
    progress: bool = True


@dataclass
class RealDemoResult:
    """Paths and headline figures of one run of the real-image chain."""

    out_dir: Path
    data: Path
    run_dir: Path
    embeddings: Path
    index: Path
    searches: list[pd.DataFrame] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)


def find_demo_data() -> Path | None:
    """The demo subset's folder, or None when neither place holds a ``labels.csv``."""
    for candidate in (os.environ.get(DEMO_DATA_ENV), _IN_TREE):
        if candidate and (Path(candidate) / "labels.csv").is_file():
            return Path(candidate)
    return None


def run_real_demo(
    out_dir: str | Path, settings: RealDemoSettings = RealDemoSettings(), echo: Echo = print
) -> RealDemoResult:
    """Train, embed, search and evaluate on the real subset; print each step with ``echo``."""
    from cxrembed.collections.kermany import read_kermany_collection
    from cxrlabel.errors import InputError

    data = settings.data or find_demo_data()
    if data is None:
        raise InputError(
            f"the real-image demo subset was not found (looked in ${DEMO_DATA_ENV} and "
            f"{_IN_TREE}); run from a clone of cxrkit, or make it with "
            "benchmarks/make_demo_subset.py"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    collection = read_kermany_collection(data)
    table = collection.table
    if "split" not in table.columns:
        raise InputError(f"{data / 'labels.csv'} has no split column (train / test)")
    listing = out / "kermany_demo.csv"
    table.to_csv(listing, index=False)
    echo(f"\n== real radiographs: {len(table)} pediatric chest X-rays in {data} ==")
    echo(f"({ATTRIBUTION})")
    echo(pd.crosstab(table["subtype"], table["split"]).to_string())

    echo(
        f"\n== cxr train: default recipe, {settings.image_size} px, {settings.epochs} epochs, "
        "training patients only =="
    )
    run_dir = out / "run_real"
    result = _train(table, data, run_dir, settings)
    echo(
        f"run: {run_dir} (best epoch {result.best_epoch} of {result.epochs_done}, validation "
        f"MAP@R {result.best_value:.3f})"
    )

    echo("\n== cxr embed + index: every image ==")
    from cxrembed.commands.embed import format_embed_summary
    from cxrembed.search.gallery import embed_and_index

    embeddings, index = out / "embeddings_real", out / "index_real"
    embedded, built = embed_and_index(
        run_dir,
        listing,
        embeddings,
        images_root=data,
        image_col="image",
        id_col="id",
        index=index,
        device="cpu",
        show_cols=["subtype", "patient_id", "split"],
        progress=settings.progress,
        resume=False,
    )
    echo(format_embed_summary(embedded, built))

    echo(f"\n== cxr search: two test images, {settings.k} nearest neighbours ==")
    searches, grids = _search(run_dir, index, table, data, out, settings, echo)

    echo("\n== cxr evaluate: test patients (queries) against training patients (gallery) ==")
    scores = _evaluate(run_dir, embeddings, table, data, settings, echo)
    return RealDemoResult(out, data, run_dir, embeddings, index, searches, grids, scores)


def _train(table: pd.DataFrame, data: Path, run_dir: Path, settings: RealDemoSettings) -> Any:
    from cxrembed.train import train

    shutil.rmtree(run_dir, ignore_errors=True)  # the demo always starts afresh
    return train(
        table[table["split"] == "train"],
        run_dir,
        images=data,
        progress=settings.progress,
        overrides={
            "image_col": "image",
            "id_col": "id",
            "label_col": "subtype",
            "group_col": "patient_id",
            "image_size": settings.image_size,
            "epochs": settings.epochs,
            "seed": settings.seed,
            "device": "cpu",
            "num_workers": 0,
        },
    )


def _search(
    run_dir: Path,
    index: Path,
    table: pd.DataFrame,
    data: Path,
    out: Path,
    settings: RealDemoSettings,
    echo: Echo,
) -> tuple[list[pd.DataFrame], list[Path]]:
    from cxrembed.search.retriever import Retriever

    test = table[table["split"] == "test"]
    queries = [
        test[test["subtype"] == s].iloc[0]
        for s in ("bacteria", "virus")
        if (test["subtype"] == s).any()
    ]
    retriever = Retriever(run_dir, index, show=["subtype", "patient_id", "split"], device="cpu")
    paths = [data / q["image"] for q in queries]
    results = retriever.search(paths, k=settings.k + 1)
    frames, grids = [], []
    for n, (query, path, frame) in enumerate(zip(queries, paths, results, strict=True), 1):
        frame = frame[frame["id"] != query["id"]].head(settings.k)  # leave the query out
        echo(f"\nquery {n}: {query['id']} (patient {query['patient_id']}, {query['subtype']})")
        with pd.option_context("display.max_colwidth", 40, "display.width", 120):
            echo(
                frame.drop(columns=[c for c in frame.columns if c == "image_path"]).to_string(
                    index=False
                )
            )
        grid = retriever.grid_png(out / f"search_real_{n}.png", path, frame, label_cols=["subtype"])
        echo(f"grid: {grid}")
        frames.append(frame)
        grids.append(grid)
    return frames, grids


def _evaluate(
    run_dir: Path,
    embeddings: Path,
    table: pd.DataFrame,
    data: Path,
    settings: RealDemoSettings,
    echo: Echo,
) -> dict[str, pd.DataFrame]:
    from cxrembed.embeddings import EmbeddingSet
    from cxrembed.evaluation.baselines import embed_listing, pixel_vectors, untrained_encoder
    from cxrembed.evaluation.metrics.intervals import format_interval, retrieval_with_intervals

    def aligned(folder: Path) -> Any:
        return EmbeddingSet.load(folder).vectors_for(table["id"])

    listing = embeddings.parent / "kermany_demo.csv"
    untrained = embeddings.parent / "embeddings_real_untrained"
    embed_listing(untrained_encoder(run_dir), listing, data, untrained)
    vectors = {
        "trained (cxr train defaults)": aligned(embeddings),
        "same network, untrained": aligned(untrained),
        "raw pixels (32 px)": pixel_vectors(data / p for p in table["image"]),
    }
    query = (table["split"] == "test").to_numpy()
    scores = {
        name: retrieval_with_intervals(
            x,
            table["subtype"].to_numpy(),
            query,
            ~query,
            groups=table["patient_id"].to_numpy(),
            positive=("bacteria", "virus"),
            k=10,
            draws=settings.bootstrap,
            seed=settings.seed,
        )
        for name, x in vectors.items()
    }
    names = {
        "MAP@R": "MAP@R",
        "P@1": "P@1",
        "R-precision": "R-precision",
        "vote accuracy": "3-class vote accuracy (k=10)",
        "vote AUROC": "pneumonia vote AUROC (k=10)",
    }
    echo(
        f"{int(query.sum())} test images against {int((~query).sum())} training images, "
        "95% patient-bootstrap intervals:"
    )
    echo("| metric | " + " | ".join(scores) + " |\n|---|" + "---:|" * len(scores))
    for key, label in names.items():
        echo(
            f"| {label} | "
            + " | ".join(format_interval(s.loc[key]) for s in scores.values())
            + " |"
        )
    return scores
