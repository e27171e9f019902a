"""``train``: the Python entry point of ``cxr train`` (labels table + images -> run folder).

It resolves the configuration (defaults < config file < overrides), joins the data, builds
the model (seeded, optionally from local pretrained weights) and the loss, joins the
process group under ``torchrun``, writes the run folder's description (rank 0) and calls
:func:`cxrembed.train.loop.fit`.

Resuming (``resume=True``) reads the run's own ``config.yaml``; options given again must
agree with it, except :data:`~cxrembed.train.config.RESUMABLE_KEYS` (workers, device,
TensorBoard), so the continued run computes exactly what the uninterrupted one would.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from torch import nn

from cxrembed.errors import LossInputError, RunConfigError
from cxrembed.losses.noise import read_label_reliability
from cxrembed.losses.registry import LOSS_SPECS, LossSpec, loss_spec
from cxrembed.losses.transition import read_transition
from cxrembed.models import EmbeddingNet, build_model, load_pretrained, resolve_device
from cxrembed.train import distributed
from cxrembed.train.checkpoint import (
    BEST_WEIGHTS,
    EXCLUDED_FILE,
    SPLIT_FILE,
    RunFolder,
    load_last,
    read_run_config,
)
from cxrembed.train.config import RESUMABLE_KEYS, RunConfig, resolve_key
from cxrembed.train.data import TrainData, build_train_data
from cxrembed.train.loop import TrainResult, check_tensorboard, fit
from cxrlabel.errors import InputError
from cxrlabel.figures import FigureStyle

__all__ = ["train", "build_loss", "initial_model", "LOSS_CLASSES"]

#: Loss class by name (from the registry, :mod:`cxrembed.losses.registry`).
LOSS_CLASSES: dict[str, type[nn.Module]] = {
    name: spec.loss_class() for name, spec in LOSS_SPECS.items()
}
# Loss arguments the trainer fills in from the run (never loss_options).
_DERIVED_OPTIONS = ("reliability", "transition", "num_classes", "embedding_dim", "multilabel")
# Filled in from the data, never compared on resume.
_DERIVED_KEYS = frozenset({"labels.names", "model.num_classes"})


def train(
    labels: str | os.PathLike[str] | pd.DataFrame,
    out: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    config: RunConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    allow_outside_images: bool = False,
    figures: FigureStyle | None = None,
) -> TrainResult:
    """Train an embedding model on a labels table and its images; write a run folder.

    Parameters
    ----------
    labels : path or DataFrame
        Labels table (CSV/Parquet): ``cxr label`` output or any table with label columns.
    out : path
        Run folder to create (or to continue with ``resume``).
    images, cache : path
        Exactly one: the images folder (paths in ``data.image_col`` are relative to it), or
        a ``cxr prepare`` cache (faster).
    config : RunConfig, mapping or YAML path, optional
        Settings; missing keys keep the defaults of :class:`RunConfig`.
    overrides : mapping, optional
        ``{"training.epochs": 5, "loss": "ml2", ...}``: applied last (what the CLI options
        set). Keys are ``section.key`` or a key unique to one section.
    resume : bool
        Continue the run in ``out`` from its ``last`` checkpoint.
    progress : bool
        Progress bars on stderr.
    allow_outside_images : bool
        Read image paths that leave ``images`` (excluded by default).
    figures : FigureStyle, optional
        Format and dpi of the training curves (default ``training_curves.png``, 150 dpi).

    Returns
    -------
    TrainResult

    Raises
    ------
    RunConfigError, InputError, CheckpointError, TrainingDivergedError, TrainingMemoryError

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for i in range(8):
    ...     Image.fromarray(np.full((32, 32), 60 * (i % 2), np.uint8)).save(root / f"{i}.png")
    >>> table = pd.DataFrame({"file": [f"{i}.png" for i in range(8)],
    ...                       "finding": ["dark", "bright"] * 4, "patient": range(8)})
    >>> result = train(table, root / "run", images=root, progress=False, overrides={
    ...     "image_col": "file", "label_col": "finding", "group_col": "patient",
    ...     "epochs": 1, "batch_size": 4, "m": 2, "image_size": 32, "embedding_dim": 8,
    ...     "num_workers": 0, "val_fraction": 0.25})
    >>> result.status, result.epochs_done, sorted(p.name for p in (root / "run").iterdir())
    ... # doctest: +NORMALIZE_WHITESPACE
    ('completed', 1, ['config.yaml', 'excluded.csv', 'last.pt', 'last.safetensors',
                      'metrics.csv', 'model.safetensors', 'split.csv', 'training_curves.png'])
    """
    run = RunFolder(out)
    run.check(resume=resume)
    requested = _requested(config, overrides, out, resume)
    check_tensorboard(requested.training.tensorboard)
    if requested.training.init is not None and not resume:
        check_init_run(requested.training.init, requested)
    device = resolve_device(requested.training.device)
    threads = torch.get_num_threads()
    if requested.training.threads is not None:
        torch.set_num_threads(requested.training.threads)
    ctx = distributed.setup(device.type)
    try:
        device = distributed.device_for(ctx, device)
        data, requested = build_train_data(
            labels,
            requested,
            images=images,
            cache=cache,
            allow_outside_images=allow_outside_images,
            progress=progress and ctx.is_main,
        )
        if resume:
            _check_same_split(run, data)
        model = initial_model(requested)
        if requested.training.weights and not resume:
            load_pretrained(model, requested.training.weights)
        if requested.training.init and not resume:
            load_pretrained(model, Path(requested.training.init) / BEST_WEIGHTS)
        loss_fn = build_loss(requested, data.names)
        state = load_last(out) if resume else None
        if ctx.is_main:
            run.write_config(requested)
            run.write_table(SPLIT_FILE, data.split)
            run.write_table(EXCLUDED_FILE, data.excluded)
        distributed.barrier(ctx)
        return fit(
            model,
            loss_fn,
            data,
            requested,
            run if ctx.is_main else None,
            ctx=ctx,
            device=device,
            resume=state,
            progress=progress,
            figures=figures,
        )
    except Exception as exc:  # on one rank only: tell the others, or learn that one failed
        peer = distributed.peer_failure(ctx, exc)
        if peer is not None:
            raise peer from None
        raise
    finally:
        distributed.teardown(ctx)
        torch.set_num_threads(threads)


def check_init_run(run_dir: str | os.PathLike[str], config: RunConfig) -> None:
    """Check that ``run_dir`` is a finished run whose backbone fits ``config``'s model.

    ``--init RUN`` starts from that run's backbone (read from its ``model.safetensors``,
    a safetensors file: no pickle is loaded) with a new head (attention, projection,
    classifier), so the new run may change the embedding size, the loss or the labels,
    but not the backbone architecture.
    """
    path = Path(run_dir)
    source = read_run_config(path)
    if not (path / BEST_WEIGHTS).is_file():
        raise RunConfigError(
            f"training.init: {str(path)!r} has no {BEST_WEIGHTS} (no finished epoch); give a "
            "run folder written by `cxr train`"
        )
    if source.model.backbone != config.model.backbone:
        raise RunConfigError(
            f"training.init: {str(path)!r} trained a {source.model.backbone} backbone but this "
            f"run builds a {config.model.backbone}; use --backbone {source.model.backbone}"
        )


def initial_model(config: RunConfig) -> EmbeddingNet:
    """The untrained model, initialised from ``training.seed`` (global RNG left as found).

    Examples
    --------
    >>> cfg = RunConfig.from_dict({"model": {"embedding_dim": 8}})
    >>> a, b = initial_model(cfg), initial_model(cfg)
    >>> bool(torch.equal(a.projection.weight, b.projection.weight))
    True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.training.seed)
        return build_model(config.to_dict()["model"], source="the run config's model section")


def build_loss(config: RunConfig, names: list[str]) -> nn.Module:
    """The configured loss with its ``loss_options`` (checked now, not at the first step).

    Class proxies and classifiers are initialised from ``training.seed`` (like the model),
    so a run is reproducible whatever the process drew from torch's RNG before.

    Examples
    --------
    >>> cfg = RunConfig.from_dict({"training": {"loss": "ms", "loss_options": {"alpha": 1.0}}})
    >>> build_loss(cfg, ["a", "b"]).alpha
    1.0
    >>> cfg = RunConfig.from_dict({"training": {"loss": "ms+ce"}})
    >>> a, b = build_loss(cfg, ["a", "b"]), build_loss(cfg, ["a", "b"])
    >>> bool((a.classifier.weight == b.classifier.weight).all())
    True
    """
    t = config.training
    spec = loss_spec(t.loss)
    cls = spec.loss_class()
    options = dict(t.loss_options)
    parameters = inspect.signature(cls).parameters
    accepted = [n for n in parameters if n not in _DERIVED_OPTIONS]
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise RunConfigError(
                f"training.loss_options: {cls.__name__} (loss {t.loss!r}) has no option "
                f"{key!r}; {hint}valid options: {', '.join(accepted) or 'none'}"
            )
    if spec.parameters:  # class proxies or a classifier: one per label column
        options.update(
            num_classes=len(names),
            embedding_dim=config.model.embedding_dim,
            multilabel=not single_label(config),
        )
    if t.noise is not None and "reliability" in spec.noise:
        options["reliability"] = list(
            read_label_reliability(t.noise, names, metric=t.noise_metric).values
        )
    if t.noise is not None and "transition" in spec.noise and single_label(config):
        options["transition"] = read_transition(t.noise, names).matrix
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(t.seed)
            loss = cls(**options)
        _probe(loss, spec, len(names), config.model.embedding_dim)
    except (LossInputError, TypeError) as exc:
        raise RunConfigError(f"training.loss_options for loss {t.loss!r}: {exc}") from None
    return loss


def single_label(config: RunConfig) -> bool:
    """True when every row has exactly one label: one categorical column, no separator.

    Examples
    --------
    >>> single_label(RunConfig.from_dict({"labels": {"label_col": "subtype"}}))
    True
    >>> single_label(RunConfig.from_dict({"labels": {"schema": "chexpert"}}))
    False
    """
    return config.labels.label_col is not None and config.labels.separator is None


def _probe(loss: nn.Module, spec: LossSpec, columns: int, embedding_dim: int) -> None:
    """One tiny forward so bad loss settings fail before training starts."""
    labels = torch.zeros(2, columns)
    labels[0, 0] = 1.0
    if spec.model_classifier:  # fed the model's logits, one per label column
        loss(torch.zeros(2, columns), labels)
    else:
        loss(torch.eye(2, embedding_dim), labels)


def _requested(
    config: Any, overrides: Mapping[str, Any] | None, out: Any, resume: bool
) -> RunConfig:
    """Defaults < config < overrides; on resume, the saved config with checked changes."""
    if not resume:
        return _as_config(config).with_overrides(overrides)
    saved = read_run_config(out)
    given = dict(_explicit_keys(config))
    given.update(overrides or {})
    given = {k: v for k, v in given.items() if _full_key(k) not in _DERIVED_KEYS}
    wanted = saved.with_overrides(given, source="resume")
    changed = {k: v for k, v in saved.differences(wanted).items() if k not in RESUMABLE_KEYS}
    if changed:
        listed = "; ".join(
            f"{k}: saved {a!r}, given {b!r}" for k, a, b in ((k, *v) for k, v in changed.items())
        )
        raise RunConfigError(
            f"--resume continues the run in {str(out)!r} with its own settings, but these differ "
            f"({listed}). Drop them to resume, or start a new run folder"
        )
    return wanted


def _as_config(config: Any) -> RunConfig:
    if config is None:
        return RunConfig()
    if isinstance(config, RunConfig):
        config.check()
        return config
    if isinstance(config, Mapping):
        return RunConfig.from_dict(config)
    return RunConfig.from_yaml(config)


def _explicit_keys(config: Any) -> list[tuple[str, Any]]:
    """``(section.key, value)`` for every key a config argument sets explicitly."""
    if config is None:
        return []
    if isinstance(config, RunConfig):
        data: Mapping[str, Any] = config.to_dict()
    elif isinstance(config, Mapping):
        RunConfig.from_dict(config)  # validates
        data = config
    else:
        RunConfig.from_yaml(config)  # validates, with the file named in errors
        data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    return [
        (f"{s}.{k}", v)
        for s, section in data.items()
        if s not in RunConfig.RECORD_KEYS and isinstance(section, Mapping)
        for k, v in section.items()
    ]


def _full_key(key: str) -> str:
    return ".".join(resolve_key(key))


def _check_same_split(run: RunFolder, data: TrainData) -> None:
    path = run.path / SPLIT_FILE
    if not path.is_file():
        return
    saved = pd.read_csv(path, dtype={"id": "string", "split": "string"}, keep_default_na=False)
    before = set(zip(saved["id"].tolist(), saved["split"].tolist(), strict=True))
    now = set(zip(data.split["id"].tolist(), data.split["split"].tolist(), strict=True))
    if before != now:
        changed = sorted(before ^ now)[:3]
        raise InputError(
            f"cannot resume: the training/validation rows differ from {str(path)!r} "
            f"({len(before ^ now)} changes, e.g. {changed}); the labels table or images "
            "changed since the run started. Use the same data, or start a new run folder"
        )
