"""Training loop: it learns, it resumes exactly, it stops cleanly, it refuses bad input.

Every run here is resnet18 at 32 px on the synthetic stripes (:mod:`._stripes`), a few
steps each, on the CPU with no loader workers.
"""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cxrembed.data.cache import prepare_cache
from cxrembed.data.dataset import LabeledImageDataset
from cxrembed.data.labels import LabelOptions
from cxrembed.errors import (
    CheckpointError,
    RunConfigError,
    TrainingDivergedError,
    TrainingMemoryError,
    WeightsError,
)
from cxrembed.evaluation.evaluate import retrieval_metrics
from cxrembed.train import config_hash, encode_dataset, eval_transform_for, load_run, train
from cxrembed.train import trainer as trainer_module
from cxrembed.train.checkpoint import read_weights
from cxrembed.train.config import RunConfig
from cxrembed.train.loop import StopSignal, is_out_of_memory
from cxrembed.train.trainer import build_loss, initial_model
from cxrlabel.errors import InputError

from .._stripes import FAST, train_fast, write_stripes

TIMING = ["train_seconds", "train_images_per_second", "val_seconds"]


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stripes")
    return folder, write_stripes(folder / "img", 24, val_every=4)


class _LossHook(torch.nn.Module):
    """Wrap the run's loss; call ``action(n)`` before the n-th batch's loss (1-based)."""

    def __init__(self, inner, action):
        super().__init__()
        self.inner, self.action, self.calls = inner, action, 0

    def forward(self, out, targets, known=None):
        self.calls += 1
        replaced = self.action(self.calls, out)
        return self.inner(out, targets, known=known) if replaced is None else replaced

    # Transparent to checkpoints: a loss with parameters (the ms+ce default's classifier)
    # saves and resumes its own state, hooked or not.
    def state_dict(self, *args, **kwargs):
        return self.inner.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return self.inner.load_state_dict(state_dict, strict=strict, assign=assign)


_BUILD_LOSS = trainer_module.build_loss


def _hook_loss(monkeypatch, action):
    monkeypatch.setattr(
        trainer_module,
        "build_loss",
        lambda config, names: _LossHook(_BUILD_LOSS(config, names), action),
    )


def _weights(path):
    return read_weights(path)[0]


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_overfits_tiny_set_loss_falls_and_precision_rises(tmp_path):
    table = write_stripes(tmp_path / "img", 24)  # every image in training
    result = train_fast(table, tmp_path / "run", tmp_path / "img", epochs=3, batches_per_epoch=6)
    assert result.status == "completed" and result.step == 18
    losses = [row["train_loss"] for row in result.metrics]
    assert losses[-1] < 0.25 * losses[0], losses

    model, config = load_run(tmp_path / "run")
    assert config.labels.names == ["a", "b", "c"] and not model.training
    images = LabeledImageDataset.from_table(
        table,
        tmp_path / "img",
        image_col="file",
        labels=LabelOptions(label_col="finding"),
        transform=eval_transform_for(config),
    )
    ids, after = encode_dataset(model, images, progress=False)
    _, before = encode_dataset(initial_model(config).eval(), images, progress=False)
    assert ids == table["file"].tolist() and after.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    p1_before = retrieval_metrics(before, table["finding"])["precision_at_1"]
    p1_after = retrieval_metrics(after, table["finding"])["precision_at_1"]
    assert p1_after >= 0.9 and p1_after > p1_before + 0.2, (p1_before, p1_after)


@pytest.mark.slow
def test_run_folder_contents(stripes):
    folder, table = stripes
    out = folder / "run_files"
    result = train_fast(table, out, folder / "img", epochs=2, batches_per_epoch=2)
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "excluded.csv",
        "last.pt",
        "last.safetensors",
        "metrics.csv",
        "model.safetensors",
        "split.csv",
        "training_curves.png",
    ]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["labels"]["names"] == ["a", "b", "c"]
    assert saved["model"] == {
        "backbone": "resnet18",
        "embedding_dim": 16,
        "attention": True,
        "num_classes": None,
        "in_channels": 1,
    }
    assert saved["preprocessing"]["image_size"] == 32
    assert {"torch", "torchvision", "python", "cxrkit"} <= set(saved["versions"])
    assert saved["config_hash"] == config_hash(RunConfig.from_yaml(out / "config.yaml"))
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2] and metrics["step"].tolist() == [2, 4]
    assert {
        "val_mean_average_precision_at_r",
        "val_precision_at_1",
        "val_precision_at_5",
        "train_images_per_second",
        "lr",
        "best",
    } <= set(metrics.columns)
    assert metrics["val_queries"].tolist() == [6.0, 6.0]  # every 4th of 24 images
    split = pd.read_csv(out / "split.csv")
    assert split["split"].value_counts().to_dict() == {"train": 18, "val": 6}
    best_epoch = int(metrics.loc[metrics["best"] == 1, "epoch"].max())
    _, meta = read_weights(out / "model.safetensors")
    assert int(meta["epoch"]) == best_epoch == result.best_epoch
    assert meta["metric"] == "mean_average_precision_at_r"
    # A second run into the same folder is refused, not mixed in.
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(table, out, images=folder / "img", progress=False, overrides=FAST)


@pytest.mark.slow
def test_interrupt_and_resume_equals_uninterrupted_run(stripes, monkeypatch):
    folder, table = stripes
    overrides = {**FAST, "epochs": 2, "batches_per_epoch": 3}
    straight = train(
        table, folder / "straight", images=folder / "img", progress=False, overrides=overrides
    )

    def sigterm_at(step):
        def action(call, out):
            if call == step:
                os.kill(os.getpid(), signal.SIGTERM)  # handled after this step finishes

        return action

    out = folder / "stopped"
    _hook_loss(monkeypatch, sigterm_at(2))  # mid-epoch 1
    first = train(table, out, images=folder / "img", progress=False, overrides=overrides)
    assert (first.status, first.step, first.signal) == ("interrupted", 2, signal.SIGTERM)
    assert not (out / "metrics.csv").exists() and (out / "last.pt").is_file()
    _hook_loss(monkeypatch, sigterm_at(3))  # the 3rd step after resuming: mid-epoch 2
    second = train(
        table, out, images=folder / "img", progress=False, overrides=overrides, resume=True
    )
    assert (second.status, second.step) == ("interrupted", 5)
    monkeypatch.undo()
    third = train(
        table, out, images=folder / "img", progress=False, overrides=overrides, resume=True
    )
    assert third.status == "completed" and third.step == straight.step == 6

    assert _same_weights(
        _weights(folder / "straight" / "last.safetensors"), _weights(out / "last.safetensors")
    )
    assert _same_weights(
        _weights(folder / "straight" / "model.safetensors"), _weights(out / "model.safetensors")
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(folder / "straight" / "metrics.csv").drop(columns=TIMING),
        pd.read_csv(out / "metrics.csv").drop(columns=TIMING),
    )
    # The signal handlers are restored after training.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_stop_signal_handler_restores_previous_handlers():
    before = signal.getsignal(signal.SIGINT)
    with StopSignal() as stop:
        assert signal.getsignal(signal.SIGINT) == stop.handle
        stop.handle(signal.SIGINT, None)  # first Ctrl-C: remembered...
        assert stop.received == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) == before  # ...a second one acts as usual
    assert signal.getsignal(signal.SIGINT) == before


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_last_good_checkpoint(stripes, monkeypatch):
    folder, table = stripes
    out = folder / "nan"
    _hook_loss(monkeypatch, lambda call, o: o.sum() * float("nan") if call == 4 else None)
    with pytest.raises(TrainingDivergedError) as info:
        train_fast(table, out, folder / "img", epochs=3, batches_per_epoch=3)
    message = str(info.value)
    assert "NaN" in message and "epoch 2, step 4" in message and "kept" in message
    assert "training.lr" in message
    _, meta = read_weights(out / "last.safetensors")
    assert meta["step"] == "3" and meta["epoch"] == "1"
    assert pd.read_csv(out / "metrics.csv")["epoch"].tolist() == [1]
    assert (out / "model.safetensors").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    # The kept checkpoint resumes (with the bad batch gone, training goes on).
    monkeypatch.undo()
    resumed = train_fast(table, out, folder / "img", resume=True, epochs=3, batches_per_epoch=3)
    assert resumed.status == "completed" and resumed.step == 9


@pytest.mark.slow
def test_out_of_memory_gives_advice_and_keeps_checkpoint(stripes, monkeypatch):
    folder, table = stripes
    out = folder / "oom"

    def oom(call, o):
        if call == 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    _hook_loss(monkeypatch, oom)
    with pytest.raises(TrainingMemoryError) as info:
        train_fast(table, out, folder / "img", epochs=2, batches_per_epoch=2)
    message = str(info.value)
    assert "--batch-size 8" in message and "--image-size" in message and "m=4" in message
    assert read_weights(out / "last.safetensors")[1]["epoch"] == "1"
    assert len(pd.read_csv(out / "metrics.csv")) == 1


def test_is_out_of_memory_recognises_cpu_and_cuda_messages():
    assert is_out_of_memory(
        RuntimeError(
            "[enforce fail] DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 1 bytes"
        )
    )
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


@pytest.mark.slow
def test_images_missing_from_cache_are_excluded_not_fatal(stripes):
    folder, table = stripes
    cache = folder / "cache"
    prepare_cache(table.iloc[:18], folder / "img", cache, image_col="file", size=32, progress=False)
    out = folder / "cached"
    result = train(
        table,
        out,
        cache=cache,
        progress=False,
        overrides={**FAST, "epochs": 1, "batches_per_epoch": 1},
    )
    assert result.status == "completed" and result.excluded == 6
    excluded = pd.read_csv(out / "excluded.csv")
    assert excluded["kind"].tolist() == ["not-cached"] * 6
    assert excluded["id"].tolist() == table["file"].tolist()[18:]
    assert len(pd.read_csv(out / "split.csv")) == 18
    saved = RunConfig.from_yaml(out / "config.yaml")
    assert saved.preprocessing.fit == "letterbox"  # recorded from the cache


def _train_labels(tmp_path, table, **extra):
    return train(
        table,
        tmp_path / "run",
        images=tmp_path / "img",
        progress=False,
        overrides={**FAST, "epochs": 1, "batches_per_epoch": 1, **extra},
    )


def test_labels_without_positive_pairs_are_refused(tmp_path):
    table = write_stripes(tmp_path / "img", 6)
    table["finding"] = [f"class{i}" for i in range(6)]  # every label once
    with pytest.raises(InputError, match="no two training images share a label"):
        _train_labels(tmp_path, table)
    assert not (tmp_path / "run").exists()  # nothing written


def test_single_label_set_is_refused(tmp_path):
    table = write_stripes(tmp_path / "img", 6)
    table["finding"] = "COVID-19"
    with pytest.raises(InputError, match="same labels \\(COVID-19\\)"):
        _train_labels(tmp_path, table)


def test_empty_label_columns_are_refused(tmp_path):
    table = write_stripes(tmp_path / "img", 6)
    table["Edema"] = np.nan
    table["Effusion"] = ""
    with pytest.raises(InputError, match="blank or unknown"):
        _train_labels(
            tmp_path,
            table,
            **{
                "labels.label_col": None,
                "labels.columns": ["Edema", "Effusion"],
                "unmentioned": "ignore",
            },
        )


def test_unknown_config_key_names_key_and_closest(tmp_path):
    table = write_stripes(tmp_path / "img", 6)
    with pytest.raises(RunConfigError, match="'training.epoch'; did you mean 'training.epochs'"):
        _train_labels(tmp_path, table, **{"training.epoch": 2})
    (tmp_path / "c.yaml").write_text("training:\n  lerning_rate: 0.1\n")
    with pytest.raises(RunConfigError, match="c.yaml: unknown key 'training.lerning_rate'"):
        train(table, tmp_path / "run", images=tmp_path / "img", config=tmp_path / "c.yaml")


def test_resume_without_checkpoint_is_refused(stripes):
    folder, table = stripes
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(table, folder / "never", images=folder / "img", overrides=FAST, resume=True)


@pytest.mark.slow
def test_resume_refuses_changed_settings(stripes):
    folder, table = stripes
    out = folder / "changed"
    train_fast(table, out, folder / "img", epochs=1, batches_per_epoch=1)
    with pytest.raises(RunConfigError, match="training.lr: saved 0.001, given 0.5"):
        train(table, out, images=folder / "img", overrides={**FAST, "lr": 0.5}, resume=True)
    # Settings that do not change the computation may differ.
    done = train_fast(
        table, out, folder / "img", resume=True, epochs=1, batches_per_epoch=1, num_workers=0
    )
    assert done.status == "completed" and done.step == 1 and math.isfinite(done.metrics[0]["lr"])


@pytest.mark.slow
def test_failure_before_the_first_checkpoint_leaves_the_folder_reusable(stripes, monkeypatch):
    folder, table = stripes
    out = folder / "early"
    _hook_loss(monkeypatch, lambda call, o: o.sum() * float("inf") if call == 1 else None)
    with pytest.raises(TrainingDivergedError, match="no checkpoint had been saved yet"):
        train_fast(table, out, folder / "img", epochs=1, batches_per_epoch=1)
    monkeypatch.undo()
    again = train_fast(table, out, folder / "img", epochs=1, batches_per_epoch=1)
    assert again.status == "completed"


def test_loss_options_and_noise_weights_reach_the_loss(tmp_path):
    (tmp_path / "noise.json").write_text(
        json.dumps(
            {
                "semantics": "full",
                "uncertain_as": "ignore",
                "schema": "chexpert",
                "observations": {
                    "Edema": {"support": 10, "f1": 0.8, "precision": 0.9, "recall": 0.7}
                },
            }
        )
    )
    config = RunConfig.from_dict(
        {
            "training": {
                "loss": "ml2",
                "loss_options": {"pos_margin": 0.5},
                "noise": str(tmp_path / "noise.json"),
                "noise_metric": "precision",
            }
        }
    )
    loss = build_loss(config, ["Edema", "Fracture"])
    assert loss.pos_margin == 0.5 and list(loss.reliability) == [0.9, 1.0]
    bad = config.with_overrides({"loss_options": {"pos_margn": 0.5}})
    with pytest.raises(RunConfigError, match="no option 'pos_margn'; did you mean 'pos_margin'"):
        build_loss(bad, ["Edema"])
    out_of_range = config.with_overrides({"loss_options": {"pos_margin": -1.0}})
    with pytest.raises(RunConfigError, match="loss_options for loss 'ml2'"):
        build_loss(out_of_range, ["Edema"])


def test_missing_weights_file_and_tensorboard_fail_before_training(tmp_path):
    table = write_stripes(tmp_path / "img", 6)
    with pytest.raises(WeightsError, match="nowhere.pth"):
        _train_labels(tmp_path, table, weights=str(tmp_path / "nowhere.pth"))
    assert not (tmp_path / "run" / "last.pt").exists()
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(RunConfigError, match="pip install tensorboard"):
            _train_labels(tmp_path, table, tensorboard=True)
