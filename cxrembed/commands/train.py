"""``cxr train``: train an embedding model on a labels table and its images.

Options left out keep the value of ``--config`` (or the :class:`RunConfig` default, shown
in ``--help``); the options given are passed on as overrides. Under ``torchrun --no-python
cxr train ...`` every process runs this command; rank 0 writes the run folder and prints the
summary.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cxrembed.commands._options import (
    AllowOutsideImages,
    Cache,
    ImageTableIdCol,
    LabelCol,
    LabelCols,
    LabelSchema,
    non_default,
)
from cxrlabel.commands.options import (
    DEVICE_HELP,
    JOBS_HELP,
    Dpi,
    FigureFormat,
    GroupCol,
    Output,
    Quiet,
    Renamed,
    cxr_command,
    figure_options,
    loader_workers,
    option,
    path_option,
    split_names,
)
from cxrlabel.commands.output import print_result
from cxrlabel.figures import DEFAULT_DPI

if TYPE_CHECKING:
    from cxrembed.train.loop import TrainResult

__all__ = ["register", "train_command", "check_table_columns", "collect_overrides", "format_result"]

#: Option (parameter name) -> the ``config.yaml`` key it overrides.
CONFIG_KEYS = {
    "image_col": "data.image_col",
    "id_col": "data.id_col",
    "group_col": "data.group_col",
    "label_col": "labels.label_col",
    "label_cols": "labels.columns",
    "schema": "labels.schema",
    "separator": "labels.separator",
    "loss": "training.loss",
    "backbone": "model.backbone",
    "embedding_dim": "model.embedding_dim",
    "image_size": "preprocessing.image_size",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "m": "training.m",
    "lr": "training.lr",
    "head_lr": "training.head_lr",
    "noise": "training.noise",
    "weights": "training.weights",
    "init": "training.init",
    "threads": "training.threads",
    "device": "training.device",
    "num_workers": "data.num_workers",
    "seed": "training.seed",
}


def _default(name: str) -> str | None:
    """The RunConfig default of an option, for ``--help`` (``--config`` values win)."""
    from cxrembed.train.config import RunConfig

    section, key = CONFIG_KEYS[name].split(".")
    value = getattr(getattr(RunConfig(), section), key)
    return None if value is None else str(value)


def _loss_help() -> str:
    """The loss names and summaries, from the registry (one place lists them)."""
    from cxrembed.losses.registry import loss_help

    return loss_help().replace("\n", " ")


def _option(name: str, *decls: str, help: str = "", **kwargs: Any) -> Any:
    return typer.Option(*decls, help=help, show_default=_default(name) or False, **kwargs)


Labels = option(Path, "--labels", help="Labels table (CSV/Parquet), e.g. `cxr label` output.")
RunOutput = Output("Run folder to create (or resume). Required.", required=False)
Images = path_option("--images", "Images folder (paths in --image-col).")
Config = path_option("--config", "YAML settings (see config.yaml of a run).")
ImageCol = Annotated[
    str | None,
    _option("image_col", "--image-col", help="Column of image paths, relative to --images."),
]
Separator = Annotated[
    str | None,
    _option(
        "separator",
        "--separator",
        help="Split --label-col values into several labels at this separator, e.g. ',' for "
        "'COVID-19, ARDS'.",
    ),
]
Loss = Annotated[
    str | None,
    _option("loss", "--loss", help=_loss_help()),
]
Backbone = Annotated[
    str | None,
    _option("backbone", "--backbone", help="resnet18, resnet34, resnet50, densenet121."),
]
EmbeddingDim = Annotated[
    int | None, _option("embedding_dim", "--embedding-dim", min=1, help="Embedding size.")
]
ImageSize = Annotated[
    int | None,
    _option("image_size", "--image-size", min=32, help="Side of the square input (px)."),
]
Epochs = Annotated[int | None, _option("epochs", "--epochs", min=1, help="Training epochs.")]
BatchSize = Annotated[
    int | None,
    _option("batch_size", "--batch-size", min=1, help="Per process; a multiple of m."),
]
M = Annotated[int | None, _option("m", "--m", min=1, help="Images per label in a batch.")]
Lr = Annotated[float | None, _option("lr", "--lr", min=0.0, help="Backbone learning rate (AdamW).")]
HeadLr = Annotated[
    float | None,
    _option("head_lr", "--head-lr", min=0.0, help="Learning rate of the head and loss proxies."),
]
Init = path_option("--init", "Start from the backbone of this run folder (new head).")
Threads = Annotated[
    int | None,
    _option("threads", "--threads", min=1, help="Torch CPU threads (default: torch's choice)."),
]
Noise = path_option("--noise", "noise.json from `cxr validate`: weight pairs by label reliability.")
Weights = path_option("--weights", "Local pretrained backbone weights file.")
Device = Annotated[str | None, _option("device", "--device", help=DEVICE_HELP)]
Jobs = option(
    int | None,
    "--jobs",
    "-j",
    min=0,
    help=JOBS_HELP,
    show_default="auto: in this process from --cache, 2 loading processes from --images",
)
Seed = Annotated[int | None, _option("seed", "--seed", min=0, help="Seed of everything random.")]
Resume = option(bool, "--resume", help="Continue the run in --output from its last checkpoint.")


@cxr_command(
    Renamed("--out", "output", Path, required=True),
    Renamed("--num-workers", "jobs", int, convert=lambda n: max(n, 1)),
)
def train_command(
    labels: Labels,
    output: RunOutput = None,
    images: Images = None,
    cache: Cache = None,
    config: Config = None,
    image_col: ImageCol = None,
    id_col: ImageTableIdCol = None,
    label_col: LabelCol = None,
    label_cols: LabelCols = None,
    schema: LabelSchema = None,
    group_col: GroupCol = None,
    separator: Separator = None,
    loss: Loss = None,
    backbone: Backbone = None,
    embedding_dim: EmbeddingDim = None,
    image_size: ImageSize = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    m: M = None,
    lr: Lr = None,
    head_lr: HeadLr = None,
    noise: Noise = None,
    weights: Weights = None,
    init: Init = None,
    threads: Threads = None,
    device: Device = None,
    jobs: Jobs = None,
    seed: Seed = None,
    resume: Resume = False,
    allow_outside_images: AllowOutsideImages = False,
    format: FigureFormat = None,
    dpi: Dpi = DEFAULT_DPI,
    quiet: Quiet = False,
) -> None:
    """Train image embeddings for retrieval; write a run folder (model, config, metrics).

    Options left out keep the value in --config, else the default shown.
    """
    given = {name: value for name, value in locals().items() if name in CONFIG_KEYS}
    given["num_workers"] = None if jobs is None else loader_workers(jobs)
    check_table_columns(labels, given)  # before torch is imported (seconds)
    options = {"images": images, "cache": cache, "config": config, "resume": resume}
    options.update(non_default(allow_outside_images=allow_outside_images))
    options.update(figure_options(format, dpi))  # training_curves.<format>
    result = _train(labels, output, collect_overrides(**given), progress=not quiet, **options)
    if result.run_dir is None:  # not rank 0: the main process reports
        return
    print_result(format_result(result), quiet=quiet)
    if result.status == "interrupted":
        raise typer.Exit(code=128 + int(result.signal or 2))


def _train(labels: Path, output: Path, overrides: dict[str, Any], **options: Any) -> TrainResult:
    """Import torch (after every argument check) and train."""
    from cxrembed._deps import require

    require("torch")
    from cxrembed.train import trainer

    return trainer.train(labels, output, overrides=overrides, **options)


def check_table_columns(labels: Path, options: dict[str, Any]) -> None:
    """The columns named on the command line are in the labels table's header.

    Examples
    --------
    >>> import tempfile
    >>> table = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = table.write_text("file,finding\\n")
    >>> check_table_columns(table, {"image_col": "file", "label_col": "findings"})
    Traceback (most recent call last):
    ...
    cxrlabel.errors.InputError: ...: column 'findings' (did you mean 'finding'?) not found (--label-col); columns present: ['file', 'finding']
    """
    from cxrlabel.columns import check_table_header

    flags = {
        "image_col": "--image-col",
        "id_col": "--id-col",
        "label_col": "--label-col",
        "group_col": "--group-col",
    }
    wanted: dict[str, Any] = {flag: options.get(key) for key, flag in flags.items()}
    wanted["--label-cols"] = split_names(options.get("label_cols"), "--label-cols")
    check_table_header(labels, wanted)


def collect_overrides(**options: Any) -> dict[str, Any]:
    """Config overrides (``section.key`` -> value) for the options that were given.

    Examples
    --------
    >>> collect_overrides(epochs=3, loss=None, label_cols="Edema, Atelectasis")
    {'training.epochs': 3, 'labels.columns': ['Edema', 'Atelectasis']}
    """
    out: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name == "label_cols":
            value = [part.strip() for part in str(value).split(",") if part.strip()]
        elif isinstance(value, Path):
            value = str(value)
        out[CONFIG_KEYS[name]] = value
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
        lines.append(
            f"best: epoch {result.best_epoch}, val MAP@R {_fmt(result.best_value)} "
            "-> model.safetensors"
        )
        if result.best_epoch == 1 and result.epochs_done > 1 and result.best_value is not None:
            lines.append(
                f"warning: the best epoch is the first of {result.epochs_done}; later "
                "epochs did not improve validation retrieval (see "
                "training_curves.png; try a lower --lr)"
            )
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
