"""The run configuration: every training setting, its default, and ``config.yaml``.

:class:`RunConfig` is the one place defaults live. It has six sections, which are also the
top-level keys of ``config.yaml``:

``model``
    exactly :meth:`cxrembed.models.EmbeddingNet.get_config` (``num_classes`` is set by the
    trainer: the number of labels when the loss is fed the model's logits, i.e. the
    classifier baseline, else null);
``preprocessing``
    what an image goes through before the model (size, fit, normalisation, DICOM window);
    with ``model`` it is all that is needed to embed new images, and it is what
    :func:`config_hash` hashes;
``augmentation``
    training-only image jitter, drawn once per batch from the run's seed;
``labels``
    which labels (``schema``, ``columns`` or one categorical ``label_col``), the uncertain
    policy, and ``names``: the label columns in order, written by the trainer;
``data``
    how rows find images and patients, the validation split, loader workers;
``training``
    loss, optimiser, schedule, epochs, batch, seed, device, noise weights.

A ``versions`` mapping (cxrkit, torch, torchvision, python) is written for the record and
ignored when read. Reading validates at the boundary: an unknown key is an error naming
the key, the closest valid key and the file; a value of the wrong type or out of range is
an error saying what was expected. Partial files are fine: missing keys keep defaults.

Examples
--------
>>> cfg = RunConfig.from_dict({"training": {"epochs": 3}, "model": {"embedding_dim": 64}})
>>> cfg.training.epochs, cfg.model.embedding_dim, cfg.training.loss
(3, 64, 'ms+ce')
>>> RunConfig.from_dict({"training": {"epoch": 3}})
Traceback (most recent call last):
...
cxrembed.errors.RunConfigError: config: unknown key 'training.epoch'; did you mean 'training.epochs'? ...
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import platform
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from cxrembed.errors import RunConfigError
from cxrembed.losses.registry import LOSS_SPECS, loss_spec
from cxrlabel.atomic import atomic_open
from cxrlabel.vocab import (
    FIT,
    NOISE_METRICS,
    UNCERTAIN_POLICIES,
    Interval,
    Options,
    check_window,
)

__all__ = [
    "RunConfig",
    "ModelSection",
    "PreprocessingSection",
    "AugmentationSection",
    "LabelsSection",
    "DataSection",
    "TrainingSection",
    "LOSSES",
    "RESUMABLE_KEYS",
    "config_hash",
]

#: Loss names, from the registry (:mod:`cxrembed.losses.registry`, one spec per name).
LOSSES: tuple[str, ...] = tuple(LOSS_SPECS)
#: Settings that may differ when a run is resumed (they do not change what is computed).
RESUMABLE_KEYS: frozenset[str] = frozenset(
    {"data.num_workers", "training.device", "training.tensorboard", "training.threads"}
)
_LABEL_SOURCES = ("schema", "columns", "label_col")
# "soft" targets (e.g. 0.5) are not label sets: no loss here can use them.
_LABEL_SET_POLICIES = Options(tuple(p for p in UNCERTAIN_POLICIES if p != "soft"))


@dataclass
class ModelSection:
    """The network (see :class:`cxrembed.models.EmbeddingNet`)."""

    backbone: str = "resnet18"
    embedding_dim: int = 128
    attention: bool = True
    num_classes: int | None = None
    in_channels: int = 1
    embedding_norm: str | None = None

    def check(self, where: str) -> None:
        _positive(self.embedding_dim, f"{where}.embedding_dim")
        if self.embedding_norm is not None:
            _choice(self.embedding_norm, ("batchnorm",), f"{where}.embedding_norm")
        if self.in_channels != 1:
            _bad(
                f"{where}.in_channels",
                "1 (radiographs are read as one gray channel)",
                self.in_channels,
            )
        if self.num_classes is not None:
            _positive(self.num_classes, f"{where}.num_classes")


@dataclass
class PreprocessingSection:
    """Image size, square fit and normalisation ``(x - mean) / std`` of [0, 1] pixels."""

    image_size: int = 224
    fit: str = "letterbox"
    mean: float = 0.5
    std: float = 0.25
    window: str | list[float] = "auto"

    def check(self, where: str) -> None:
        if self.image_size < 32:
            _bad(
                f"{where}.image_size",
                "an integer >= 32 (the backbone downsamples 32 times)",
                self.image_size,
            )
        self.fit = FIT.check(self.fit, f"{where}.fit", RunConfigError)
        if not self.std > 0:
            _bad(f"{where}.std", "a number > 0", self.std)
        window = check_window(self.window, f"{where}.window", RunConfigError)
        if isinstance(window, str):  # a [center, width] pair stays a list (YAML)
            self.window = window


@dataclass
class AugmentationSection:
    """Light training-time jitter, applied to each training batch at once by
    :class:`cxrembed.data.transforms.BatchAugment` (ranges and distributions there).

    ``rotation`` degrees (uniform in ±rotation), ``scale`` [low, high] (uniform),
    ``translate`` fraction of the image size (uniform in ±translate, whole pixels),
    ``brightness`` / ``contrast`` spreads (factor uniform in [max(0, 1 - b), 1 + b], as
    torchvision's ``ColorJitter``), ``hflip`` (off: anatomy is not symmetric). All 0 (scale
    [1, 1]) trains on the images exactly as validation sees them. The jitter of a batch
    depends on ``training.seed``, the epoch, the rank and the batch number only (see
    :mod:`cxrembed.train.data`).
    """

    rotation: float = 5.0
    scale: list[float] = field(default_factory=lambda: [0.95, 1.05])
    translate: float = 0.03
    brightness: float = 0.1
    contrast: float = 0.1
    hflip: bool = False

    def check(self, where: str) -> None:
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            _bad(f"{where}.scale", "[low, high] with 0 < low <= high", self.scale)
        for name in ("rotation", "translate", "brightness", "contrast"):
            if getattr(self, name) < 0:
                _bad(f"{where}.{name}", "a number >= 0", getattr(self, name))


@dataclass
class LabelsSection:
    """Which labels to learn and how uncertain (-1) and blank labels count."""

    schema: str | None = None
    columns: list[str] | None = None
    label_col: str | None = None
    separator: str | None = None
    unknown_values: list[str] = field(default_factory=lambda: ["todo"])
    uncertain_policy: str = "ignore"
    unmentioned: str | None = None
    names: list[str] | None = None

    def check(self, where: str) -> None:
        self.uncertain_policy = _LABEL_SET_POLICIES.check(
            self.uncertain_policy, f"{where}.uncertain_policy", RunConfigError
        )
        if self.unmentioned is not None:
            _choice(self.unmentioned, ("zeros", "ignore"), f"{where}.unmentioned")
        given = [k for k in _LABEL_SOURCES if getattr(self, k) is not None]
        if len(given) > 1:
            raise RunConfigError(
                f"{where}: choose the labels with one of schema, columns or label_col; got "
                f"{', '.join(given)}. Remove all but one"
            )
        if self.columns is not None and not self.columns:
            _bad(f"{where}.columns", "at least one column name", self.columns)

    @property
    def chosen(self) -> bool:
        """True when one label source is set."""
        return any(getattr(self, k) is not None for k in _LABEL_SOURCES)


#: DataLoader processes when ``data.num_workers`` is auto and images are decoded from source.
SOURCE_WORKERS = 2


@dataclass
class DataSection:
    """How rows find their image and patient, and the patient-level validation split.

    ``split_col`` (values ``train`` / ``val``; other values are excluded) replaces the
    random split by ``group_col``; ``stratify_col`` defaults to the categorical
    ``labels.label_col``.
    """

    image_col: str | None = None
    id_col: str | None = None
    group_col: str | None = None
    split_col: str | None = None
    stratify_col: str | None = None
    val_fraction: float = 0.2
    num_workers: int | None = None

    def loader_workers(self, cached: bool) -> int:
        """DataLoader processes: ``num_workers``, or when it is None (auto) none for a
        ``cxr prepare`` cache (reading it is cheap, and on a small machine worker processes
        take the cores the model needs: at 64 px, ``benchmarks/train_throughput.py``
        measured 55% of the model's own speed with two workers against 83% in this
        process when augmenting image by image, 92-95% since augmentation runs once per
        batch) and
        :data:`SOURCE_WORKERS` when images are decoded from source."""
        if self.num_workers is not None:
            return self.num_workers
        return 0 if cached else SOURCE_WORKERS

    def check(self, where: str) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            _bad(
                f"{where}.val_fraction", "a number in [0, 1) (0: no validation)", self.val_fraction
            )
        if self.num_workers is not None:
            Interval(int, 0, None).check(self.num_workers, f"{where}.num_workers", RunConfigError)


@dataclass
class TrainingSection:
    """Loss, optimisation and schedule (AdamW, linear warmup then cosine decay, per step)."""

    loss: str = "ms+ce"
    loss_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 32
    m: int = 4
    batches_per_epoch: int | None = None
    lr: float = 3e-4
    head_lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    noise: str | None = None
    noise_metric: str = "f1"
    weights: str | None = None
    init: str | None = None
    threads: int | None = None
    tensorboard: bool = False

    def check(self, where: str) -> None:
        _choice(self.loss, LOSSES, f"{where}.loss")
        spec = loss_spec(self.loss)
        for name in ("epochs", "batch_size", "m"):
            _positive(getattr(self, name), f"{where}.{name}")
        if self.batches_per_epoch is not None:
            _positive(self.batches_per_epoch, f"{where}.batches_per_epoch")
        if self.batch_size % self.m:
            low = self.batch_size - self.batch_size % self.m or self.m
            raise RunConfigError(
                f"{where}.batch_size must be a multiple of {where}.m (images per label in a "
                f"batch); got batch_size={self.batch_size}, m={self.m}. Try batch_size={low}"
            )
        if spec.pairs and self.batch_size // self.m < 2:
            raise RunConfigError(
                f"{where}: a metric loss needs at least two labels per batch (negative pairs); "
                f"got batch_size={self.batch_size}, m={self.m}. Use batch_size >= {2 * self.m}"
            )
        for name in ("lr", "head_lr"):
            if not getattr(self, name) > 0:
                _bad(f"{where}.{name}", "a number > 0", getattr(self, name))
        for name in ("weight_decay", "warmup_epochs", "grad_clip"):
            if getattr(self, name) < 0:
                _bad(f"{where}.{name}", "a number >= 0 (0: off)", getattr(self, name))
        Interval(int, 0, None).check(self.seed, f"{where}.seed", RunConfigError)
        self.noise_metric = NOISE_METRICS.check(
            self.noise_metric, f"{where}.noise_metric", RunConfigError
        )
        if self.weights is not None and self.init is not None:
            raise RunConfigError(
                f"{where}: give the starting backbone with one of weights (a weights file) or "
                f"init (a run folder); got both ({self.weights!r}, {self.init!r})"
            )
        if self.threads is not None:
            _positive(self.threads, f"{where}.threads")
        if self.noise is not None and not spec.noise:
            takes = ", ".join(s.name for s in LOSS_SPECS.values() if s.noise)
            raise RunConfigError(
                f"{where}.noise weights pairs of the metric losses and corrects the proxy "
                f"and classifier terms; loss {self.loss!r} has neither. Remove noise or "
                f"choose one of {takes}"
            )


_SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "preprocessing": PreprocessingSection,
    "augmentation": AugmentationSection,
    "labels": LabelsSection,
    "data": DataSection,
    "training": TrainingSection,
}


@dataclass
class RunConfig:
    """All settings of a training run, grouped in sections (see the module docstring).

    Build it with :meth:`from_dict` / :meth:`from_yaml` (which validate), change it with
    :meth:`with_overrides`, write it with :meth:`to_yaml`.
    """

    model: ModelSection = field(default_factory=ModelSection)
    preprocessing: PreprocessingSection = field(default_factory=PreprocessingSection)
    augmentation: AugmentationSection = field(default_factory=AugmentationSection)
    labels: LabelsSection = field(default_factory=LabelsSection)
    data: DataSection = field(default_factory=DataSection)
    training: TrainingSection = field(default_factory=TrainingSection)

    #: Top-level keys accepted on input and not stored (written for the record).
    RECORD_KEYS: ClassVar[tuple[str, ...]] = ("versions", "config_hash")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, source: str = "config") -> RunConfig:
        """Validate a (possibly partial) mapping and fill in defaults.

        Examples
        --------
        >>> RunConfig.from_dict({"labels": {"label_col": "finding"}}).labels.label_col
        'finding'
        """
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise RunConfigError(
                f"{source}: expected a mapping of sections ({', '.join(_SECTIONS)}); got "
                f"{type(data).__name__}"
            )
        sections = {}
        for key, value in data.items():
            if key in cls.RECORD_KEYS:
                continue
            if key not in _SECTIONS:
                _unknown(str(key), [*_SECTIONS, *cls.RECORD_KEYS], source)
            sections[key] = _section_from(_SECTIONS[key], value, f"{key}", source)
        config = cls(**sections)
        config.check(source)
        return config

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> RunConfig:
        """Read and validate a YAML file (a run's ``config.yaml`` or a partial one)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RunConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            from cxrlabel.lexicon import yaml_problem

            where, problem = yaml_problem(path, exc)
            raise RunConfigError(f"config file {where} is not valid YAML ({problem})") from None
        except UnicodeDecodeError:
            raise RunConfigError(
                f"config file {str(path)!r} is not UTF-8 text: give a YAML file of settings"
            ) from None
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, not tuples), section order as in ``config.yaml``.

        Keys added after runs already existed (:data:`_LISTED_WHEN_SET`) are left out while
        unset, so those runs keep their config hash.
        """
        data = {name: dataclasses.asdict(getattr(self, name)) for name in _SECTIONS}
        for section, key in _LISTED_WHEN_SET:
            if data[section].get(key) is None:
                del data[section][key]
        return data

    def to_yaml(self, path: str | os.PathLike[str], *, versions: bool = True) -> None:
        """Write ``config.yaml`` atomically (with the library versions for the record)."""
        data = self.to_dict()
        if versions:
            data["versions"] = library_versions()
        data["config_hash"] = config_hash(self)
        with atomic_open(path, "w") as fh:
            yaml.safe_dump(data, fh, sort_keys=False, default_flow_style=None, width=100)

    def check(self, source: str = "config") -> None:
        """Validate every value (types are checked when reading)."""
        for name in _SECTIONS:
            try:
                getattr(self, name).check(name)
            except RunConfigError as exc:
                raise RunConfigError(f"{source}: {exc}") from None

    def with_overrides(
        self, overrides: Mapping[str, Any] | None, *, source: str = "overrides"
    ) -> RunConfig:
        """A copy with ``{"section.key": value}`` (or a bare key unique to one section) set.

        Setting one label source (``schema``, ``columns``, ``label_col``) clears the others,
        so an option given on the command line replaces the one in a config file.

        Examples
        --------
        >>> cfg = RunConfig.from_dict({"labels": {"schema": "chexpert"}})
        >>> new = cfg.with_overrides({"epochs": 2, "labels.label_col": "finding"})
        >>> new.training.epochs, new.labels.schema, new.labels.label_col
        (2, None, 'finding')
        """
        data = self.to_dict()
        for key, value in (overrides or {}).items():
            section, name = resolve_key(key, source)
            if section == "labels" and name in _LABEL_SOURCES and value is not None:
                for other in _LABEL_SOURCES:
                    data["labels"][other] = None
            data[section][name] = value
        return type(self).from_dict(data, source=source)

    def differences(self, other: RunConfig) -> dict[str, tuple[Any, Any]]:
        """``{"section.key": (mine, other's)}`` for every setting that differs."""
        mine = {s: dataclasses.asdict(getattr(self, s)) for s in _SECTIONS}
        theirs = {s: dataclasses.asdict(getattr(other, s)) for s in _SECTIONS}
        return {
            f"{s}.{k}": (mine[s][k], theirs[s][k])
            for s in _SECTIONS
            for k in mine[s]
            if mine[s][k] != theirs[s][k]
        }


def resolve_key(key: str, source: str = "overrides") -> tuple[str, str]:
    """``"training.epochs"`` or ``"epochs"`` -> ``("training", "epochs")``.

    Examples
    --------
    >>> resolve_key("loss"), resolve_key("model.backbone")
    (('training', 'loss'), ('model', 'backbone'))
    """
    every = {f"{s}.{f.name}" for s, cls in _SECTIONS.items() for f in dataclasses.fields(cls)}
    if "." in key:
        if key not in every:
            _unknown(key, sorted(every), source)
        section, name = key.split(".", 1)
        return section, name
    owners = [s for s, cls in _SECTIONS.items() if key in {f.name for f in dataclasses.fields(cls)}]
    if not owners:
        _unknown(key, sorted(every | {k.split(".")[1] for k in every}), source)
    if len(owners) > 1:
        raise RunConfigError(
            f"{source}: key {key!r} is in several sections ({', '.join(owners)}); write it as "
            f"{' or '.join(f'{o}.{key}' for o in owners)}"
        )
    return owners[0], key


def config_hash(config: RunConfig | Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of the ``model`` and ``preprocessing`` sections.

    Two runs with the same hash build the same network and feed it the same pixels, so
    their embeddings are comparable in shape and scale; the weights themselves are not
    hashed. Key order, int/float spelling (``1`` vs ``1.0``) and tuples vs lists do not
    change it.

    Examples
    --------
    >>> config_hash(RunConfig()) == config_hash(RunConfig.from_dict({"model": {}}))
    True
    >>> config_hash(RunConfig()) == config_hash(RunConfig.from_dict(
    ...     {"preprocessing": {"image_size": 128}}))
    False
    """
    data = config.to_dict() if isinstance(config, RunConfig) else dict(config)
    part = {name: _canonical(data.get(name)) for name in ("model", "preprocessing")}
    text = json.dumps(part, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of what produced a run (for the record; never checked on load)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("cxrkit", "torch", "torchvision"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


# ----------------------------------------------------------------------------- helpers


#: (section, key) pairs written to ``config.yaml`` only when set (see RunConfig.to_dict).
_LISTED_WHEN_SET = (("model", "embedding_norm"),)


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _section_from(cls: type, value: Any, where: str, source: str) -> Any:
    if value is None:
        return cls()
    if not isinstance(value, Mapping):
        raise RunConfigError(f"{source}: {where!r} must be a mapping of settings; got {value!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, item in value.items():
        if key not in names:
            _unknown(f"{where}.{key}", [f"{where}.{n}" for n in names], source)
        kwargs[key] = _typed(item, hints[key], f"{where}.{key}", source)
    return cls(**kwargs)


def _typed(value: Any, hint: Any, where: str, source: str) -> Any:
    """Check ``value`` against a simple annotation; return it converted (int -> float)."""
    options = (
        typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else (hint,)
    )
    for option in options:
        ok, converted = _matches(value, option)
        if ok:
            return converted
    raise RunConfigError(
        f"{source}: {where} must be {_describe(hint)}; got {value!r} ({type(value).__name__})"
    )


_UnionType = type(int | None)


def _matches(value: Any, option: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(option)
    if option is type(None):
        return value is None, None
    if option is bool:
        return isinstance(value, bool), value
    if option is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if option is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number, float(value) if number else value
    if option is str:
        return isinstance(value, str), value
    if origin is list:
        (item,) = typing.get_args(option)
        if not isinstance(value, (list, tuple)):
            return False, value
        converted = []
        for v in value:
            ok, c = _matches(v, item)
            if not ok:
                return False, value
            converted.append(c)
        return True, converted
    if origin is dict:
        ok = isinstance(value, Mapping) and all(isinstance(k, str) for k in value)
        return ok, dict(value) if ok else value
    return False, value


def _describe(hint: Any) -> str:
    names = {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        type(None): "null",
    }
    options = (
        typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else (hint,)
    )
    parts = []
    for option in options:
        origin = typing.get_origin(option)
        if origin is list:
            parts.append(f"a list of {names[typing.get_args(option)[0]].removeprefix('a ')}s")
        elif origin is dict:
            parts.append("a mapping")
        else:
            parts.append(names.get(option, str(option)))
    return " or ".join(parts)


def _unknown(key: str, valid: list[str], source: str) -> typing.NoReturn:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    section = key.rsplit(".", 1)[0] if "." in key else None
    listed = [v for v in valid if section is None or v.startswith(f"{section}.")] or valid
    raise RunConfigError(
        f"{source}: unknown key {key!r}; {hint}Valid keys: {', '.join(sorted(listed))}"
    )


def _bad(where: str, expected: str, got: Any) -> typing.NoReturn:
    raise RunConfigError(f"{where} must be {expected}; got {got!r}")


def _positive(value: int, where: str) -> None:
    Interval(int, 1, None).check(value, where, RunConfigError)


def _choice(value: str, choices: tuple[str, ...], where: str) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RunConfigError(f"{where} must be one of {', '.join(choices)}; got {value!r}{hint}")
