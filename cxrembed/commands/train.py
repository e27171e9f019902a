"""``cxr train``: train an embedding model on a labels table and its images.

Options left out keep the value of ``--config`` (or the :class:`RunConfig` default); the
options given are passed on as overrides. Under ``torchrun`` every process runs this
command; rank 0 writes the run folder and prints the summary.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from cxrembed.train.loop import TrainResult

__all__ = ["register", "train_command", "collect_overrides", "format_result"]


def train_command(
    labels: Annotated[
        Path, typer.Option("--labels", help="Labels table (CSV/Parquet), e.g. `cxr label` output.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create (or resume).")],
    images: Annotated[
        Path | None, typer.Option("--images", help="Images folder (paths in --image-col).")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Image cache made by `cxr prepare` (faster).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML settings (see config.yaml of a run).")
    ] = None,
    image_col: Annotated[
        str | None, typer.Option("--image-col", help="Column of image paths, relative to --images.")
    ] = None,
    id_col: Annotated[
        str | None, typer.Option("--id-col", help="Id column (images <images>/<id>.<ext>).")
    ] = None,
    label_col: Annotated[
        str | None,
        typer.Option("--label-col", help="One categorical label column (one-hot), e.g. finding."),
    ] = None,
    label_cols: Annotated[
        str | None,
        typer.Option("--label-cols", help="Comma-separated label columns holding 1/0/-1/blank."),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option("--schema", help="Label schema whose columns `cxr label` wrote (chexpert...)."),
    ] = None,
    group_col: Annotated[
        str | None,
        typer.Option("--group-col", help="Patient id column: the validation split keeps "
                                         "each patient on one side."),
    ] = None,
    separator: Annotated[
        str | None,
        typer.Option("--separator", help="Split --label-col values into several labels at "
                                         "this separator, e.g. ',' for 'COVID-19, ARDS'."),
    ] = None,
    loss: Annotated[
        str | None,
        typer.Option("--loss", help="ms+proxy (default), ms, ml2, proxy or ce (baseline)."),
    ] = None,
    backbone: Annotated[
        str | None, typer.Option("--backbone", help="resnet18, resnet34, resnet50, densenet121.")
    ] = None,
    embedding_dim: Annotated[
        int | None, typer.Option("--embedding-dim", min=1, help="Embedding size.")
    ] = None,
    image_size: Annotated[
        int | None, typer.Option("--image-size", min=32, help="Side of the square input (px).")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Per process; a multiple of m.")
    ] = None,
    m: Annotated[
        int | None, typer.Option("--m", min=1, help="Images per label in a batch.")
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", min=0.0, help="Backbone learning rate (AdamW).")
    ] = None,
    head_lr: Annotated[
        float | None,
        typer.Option("--head-lr", min=0.0, help="Learning rate of the head and loss proxies."),
    ] = None,
    noise: Annotated[
        Path | None,
        typer.Option("--noise", help="noise.json from `cxr validate`: weight pairs by label "
                                     "reliability."),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Local pretrained backbone weights file.")
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option("--init", help="Start from the backbone of this run folder (new head)."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="Torch CPU threads (default: torch's choice)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N, mps.")
    ] = None,
    num_workers: Annotated[
        int | None, typer.Option("--num-workers", min=0, help="Image loading processes.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0)] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train image embeddings for retrieval; write a run folder (model, config, metrics)."""
    from cxrlabel.cli import run_cli

    overrides = collect_overrides(
        image_col=image_col, id_col=id_col, label_col=label_col, label_cols=label_cols,
        schema=schema, group_col=group_col, separator=separator, loss=loss,
        backbone=backbone, embedding_dim=embedding_dim, image_size=image_size, epochs=epochs,
        batch_size=batch_size, m=m, lr=lr, head_lr=head_lr, noise=noise, weights=weights,
        init=init, threads=threads, device=device, num_workers=num_workers, seed=seed,
    )

    def run() -> TrainResult:
        from cxrembed._deps import require

        require("torch")
        from cxrembed.train import trainer

        return trainer.train(
            labels, out, images=images, cache=cache, config=config, overrides=overrides,
            resume=resume, progress=not quiet,
        )

    result = run_cli(run)
    if result.run_dir is None:  # not rank 0: the main process reports
        return
    typer.echo(format_result(result))
    if result.status == "interrupted":
        raise typer.Exit(code=128 + int(result.signal or 2))


def collect_overrides(**options: Any) -> dict[str, Any]:
    """Config overrides (``section.key`` -> value) for the options that were given.

    Examples
    --------
    >>> collect_overrides(epochs=3, loss=None, label_cols="Edema, Atelectasis")
    {'training.epochs': 3, 'labels.columns': ['Edema', 'Atelectasis']}
    """
    keys = {
        "image_col": "data.image_col", "id_col": "data.id_col", "group_col": "data.group_col",
        "label_col": "labels.label_col", "label_cols": "labels.columns",
        "schema": "labels.schema", "separator": "labels.separator", "loss": "training.loss",
        "backbone": "model.backbone", "embedding_dim": "model.embedding_dim",
        "image_size": "preprocessing.image_size", "epochs": "training.epochs",
        "batch_size": "training.batch_size", "m": "training.m", "lr": "training.lr",
        "head_lr": "training.head_lr", "noise": "training.noise",
        "weights": "training.weights", "init": "training.init",
        "threads": "training.threads", "device": "training.device",
        "num_workers": "data.num_workers", "seed": "training.seed",
    }
    out: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name == "label_cols":
            value = [part.strip() for part in str(value).split(",") if part.strip()]
        elif isinstance(value, Path):
            value = str(value)
        out[keys[name]] = value
    return out


def format_result(result: TrainResult) -> str:
    """Plain-text summary of a run: status, best epoch and metric, files."""
    lines = [f"run: {result.run_dir}"]
    if result.status == "interrupted":
        lines.append(
            f"interrupted by signal {result.signal} after {result.step} steps; the checkpoint "
            f"is saved: continue with the same command and --resume"
        )
    else:
        lines.append(f"finished {result.epochs_done} epochs ({result.step} steps)")
    if result.metrics:
        last = result.metrics[-1]
        lines.append(
            f"last epoch: train loss {last['train_loss']:.4f}, val MAP@R "
            f"{_fmt(last['val_mean_average_precision_at_r'])}, P@1 "
            f"{_fmt(last['val_precision_at_1'])}, P@5 {_fmt(last['val_precision_at_5'])}, "
            f"{last['train_images_per_second']:.1f} images/s"
        )
    if result.best_epoch is not None:
        lines.append(f"best: epoch {result.best_epoch}, val MAP@R {_fmt(result.best_value)} "
                     "-> model.safetensors")
        if result.best_epoch == 1 and result.epochs_done > 1 and result.best_value is not None:
            lines.append(f"warning: the best epoch is the first of {result.epochs_done}; later "
                         "epochs did not improve validation retrieval (see "
                         "training_curves.png; try a lower --lr)")
    if result.run_dir is not None and (result.run_dir / "training_curves.png").is_file():
        lines.append(f"curves: {result.run_dir / 'training_curves.png'}")
    if result.excluded:
        lines.append(f"{result.excluded} table rows not used (reasons in excluded.csv)")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    """Add ``cxr train`` to ``app``."""
    app.command("train")(train_command)
