"""The run folder on disk: every file a training run writes, each one atomically.

Layout of a run folder::

    config.yaml         RunConfig (model, preprocessing, labels + names, data, training,
                        versions, config_hash): enough to rebuild the model and its inputs
    model.safetensors   the best weights by the validation retrieval metric (the last
                        weights when there is no validation); metadata: epoch, metric, value
    last.safetensors    the weights at the last checkpoint (end of an epoch, or the step
                        where SIGINT/SIGTERM stopped the run)
    last.pt             what resuming needs besides the weights: optimizer, scheduler,
                        sampler position, AMP scaler, RNG states, best-so-far, step; plain
                        types and tensors only, read with ``torch.load(weights_only=True)``
    metrics.csv         one row per finished epoch
    training_curves.png train loss and validation MAP@R / P@1 by epoch
    split.csv           id, split (train / val), group: the patient-level split
    excluded.csv        table rows not used, with the reason (row, id, path, kind, reason)
    tensorboard/        optional event files

``last.safetensors`` and ``last.pt`` carry the same ``step``; they are written to temporary
files and renamed one right after the other, and :func:`load_last` refuses a pair whose
steps differ, so a crash between the renames cannot resume from mixed states. Only the
main process (rank 0) creates a :class:`RunFolder`.

Integrity: each weights file records in its own metadata the fingerprint of its tensors
(``sha256``, :func:`weights_sha256`) and the run's ``config_hash``; ``last.safetensors``
also records the SHA-256 of ``last.pt`` (``state_sha256``). :func:`read_weights` and
:func:`load_last` check them, so a damaged or edited file, or weights copied from a run with
other settings, are refused with the file named (no crash window: nothing outside the file
has to be updated with it). The fingerprint of ``model.safetensors`` is the run's weights
identity, carried into embeddings and indexes (:mod:`cxrembed.embeddings.config_hash`).
Weights saved before fingerprints existed load with a note.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from cxrembed.data.exclusions import EXCLUDED_FILE
from cxrembed.errors import CheckpointError
from cxrembed.train.config import RunConfig, config_hash
from cxrlabel.atomic import atomic_open, atomic_path, writing
from cxrlabel.checksums import ALGORITHM, check_sha256, file_sha256

__all__ = [
    "CONFIG_FILE",
    "EXCLUDED_FILE",
    "BEST_WEIGHTS",
    "LAST_WEIGHTS",
    "LAST_STATE",
    "METRICS_FILE",
    "CURVES_FILE",
    "STATE_FORMAT",
    "RunFolder",
    "read_run_config",
    "load_last",
    "read_weights",
    "weights_sha256",
    "rng_state",
    "set_rng_state",
]

CONFIG_FILE = "config.yaml"
BEST_WEIGHTS = "model.safetensors"
LAST_WEIGHTS = "last.safetensors"
LAST_STATE = "last.pt"
CURVES_FILE = "training_curves.png"
METRICS_FILE = "metrics.csv"
SPLIT_FILE = "split.csv"
STATE_FORMAT = 1


class RunFolder:
    """Writes a run folder (see the module docstring); the only writer of its files."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.config_hash: str | None = None  # recorded in the weights once the config is

    def check(self, *, resume: bool) -> None:
        """Refuse to start a new run over an existing one, or to resume nothing."""
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(f"run folder {str(self.path)!r} is a file; choose a folder")
        # A folder whose run failed before its first checkpoint holds nothing to lose.
        has_run = (self.path / LAST_STATE).is_file()
        if resume and not has_run:
            raise CheckpointError(
                f"cannot resume: {str(self.path / LAST_STATE)!r} not found (no checkpoint was "
                "saved yet). Start the run without --resume"
            )
        if not resume and has_run:
            raise CheckpointError(
                f"{str(self.path)!r} already holds a run (last.pt); continue it "
                "with --resume, or choose another --output folder"
            )

    def write_config(self, config: RunConfig) -> None:
        """Write ``config.yaml`` (creates the folder: the first file of a run)."""
        with writing(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
        config.to_yaml(self.path / CONFIG_FILE)
        self.config_hash = config_hash(config)

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        with atomic_open(self.path / name, "w") as fh:
            table.to_csv(fh, index=False)

    def write_metrics(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.write_table(METRICS_FILE, pd.DataFrame(list(rows)))

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / METRICS_FILE
        if not path.is_file():
            return []
        return pd.read_csv(path).to_dict("records")

    def save_last(self, model: nn.Module, state: Mapping[str, Any]) -> None:
        """Weights and training state of the same ``state["step"]``, renamed together."""
        meta = {"step": str(int(state["step"])), "epoch": str(int(state["epoch"]))}
        with ExitStack() as stack:
            weights_tmp = stack.enter_context(atomic_path(self.path / LAST_WEIGHTS))
            state_tmp = stack.enter_context(atomic_path(self.path / LAST_STATE))
            torch.save(dict(state), state_tmp)
            meta["state_sha256"] = file_sha256(state_tmp)
            self._save_weights(model, weights_tmp, meta)

    def save_best(self, model: nn.Module, metadata: Mapping[str, Any]) -> None:
        with atomic_path(self.path / BEST_WEIGHTS) as tmp:
            self._save_weights(model, tmp, {str(k): str(v) for k, v in metadata.items()})

    def _save_weights(self, model: nn.Module, tmp: Path, meta: dict[str, str]) -> None:
        """A safetensors file whose metadata carries its tensors' fingerprint and the run's
        config hash (checked by :func:`read_weights`)."""
        tensors = _cpu_state(model)
        meta[ALGORITHM] = weights_sha256(tensors)
        if self.config_hash is not None:
            meta["config_hash"] = self.config_hash
        save_file(tensors, str(tmp), metadata=meta)


def read_run_config(run_dir: str | os.PathLike[str]) -> RunConfig:
    """The validated ``config.yaml`` of a run folder (resuming and inference both read it)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{str(run_dir)!r} is not a run folder: {CONFIG_FILE} not found. Give the --output "
            "folder of `cxr train`"
        )
    return RunConfig.from_yaml(path)


def load_last(run_dir: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``last.safetensors`` + ``last.pt``; check they belong to the same step (and,
    when recorded, that ``last.pt`` is the file saved with those weights)."""
    run_dir = Path(run_dir)
    weights, meta = read_weights(run_dir / LAST_WEIGHTS)
    path = run_dir / LAST_STATE
    if "state_sha256" in meta and path.is_file():
        check_sha256(
            path,
            meta["state_sha256"],
            error=CheckpointError,
            fix=f"restore it, or start a new run from {BEST_WEIGHTS} with --weights "
            "(resuming needs the state saved with the last weights)",
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint state {str(path)!r} not found") from None
    except Exception as exc:  # noqa: BLE001  (unpickling raises many types)
        raise CheckpointError(
            f"cannot read checkpoint state {str(path)!r} ({type(exc).__name__}: {exc}); the file "
            "is corrupt or was not written by cxrkit. Start a new run"
        ) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a cxrkit checkpoint of format {STATE_FORMAT}; start a new run"
        )
    if str(state.get("step")) != meta.get("step"):
        raise CheckpointError(
            f"{LAST_WEIGHTS} (step {meta.get('step')}) and {LAST_STATE} (step "
            f"{state.get('step')}) in {str(run_dir)!r} are from different steps (the run stopped "
            "while saving). Resuming would mix states; start a new run from "
            f"{BEST_WEIGHTS} with --weights, or a new folder"
        )
    return weights, state


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors and metadata, with a clear error when unreadable or
    when its tensors are not the ones it recorded (``sha256`` metadata, when present)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {str(path)!r} not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot read weights file {str(path)!r} ({exc}); it is truncated or not a "
            "safetensors file"
        ) from None
    recorded = meta.get(ALGORITHM)
    if recorded is not None and weights_sha256(tensors) != recorded:
        raise CheckpointError(
            f"weights file {str(path)!r} does not match the fingerprint recorded when it was "
            f"saved (sha256 {recorded[:12]}...): its tensors were changed or damaged since. "
            "Fix: restore the file from a copy of the run folder, or train again"
        )
    return tensors, meta


def weights_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """Fingerprint of a state dict: SHA-256 over each tensor's name, dtype, shape and bytes,
    in name order (the same for the same weights, whatever the file layout).

    Examples
    --------
    >>> a = {"w": torch.ones(2, 3), "b": torch.zeros(3)}
    >>> weights_sha256(a) == weights_sha256(dict(reversed(list(a.items()))))
    True
    >>> weights_sha256(a) == weights_sha256({**a, "w": torch.ones(3, 2)})
    False
    """
    digest = hashlib.new(ALGORITHM)
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def rng_state() -> dict[str, Any]:
    """Torch's global CPU and CUDA generator states, as tensors (``weights_only``-safe)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only when the devices match)."""
    torch.set_rng_state(state["cpu"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous tensors that do not share memory.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
