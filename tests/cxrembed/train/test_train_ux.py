"""Training UX: per-epoch lines, training curves, best-first warning, threads, --init, the
proxy losses in a real run (proxies saved, resumed exactly) and the new CLI options."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import cxrembed.train.loop as loop_module
import cxrembed.train.trainer as trainer_module
from cxrembed.errors import CheckpointError, RunConfigError
from cxrembed.train import train
from cxrembed.train.checkpoint import load_last, read_weights
from cxrembed.train.config import RunConfig
from cxrembed.train.data import build_train_data
from cxrembed.train.loop import TrainResult, epoch_line
from cxrembed.train.trainer import build_loss, initial_model
from cxrlabel.cli import app

from .._stripes import FAST, train_fast, write_stripes

runner = CliRunner()


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ux")
    return folder, write_stripes(folder / "img", 24, val_every=4)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_epoch_lines_curves_png_and_proxies_in_the_checkpoint(stripes, capsys):
    folder, table = stripes
    out = folder / "lines"
    result = train_fast(
        table, out, folder / "img", progress=True, loss="ms+proxy", epochs=2, batches_per_epoch=2
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("epoch ") and "val MAP@R" in line]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], err[-2000:]
    assert "train loss" in lines[0] and "(best so far)" in lines[0]
    png = out / "training_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.config.training.loss == "ms+proxy"
    _, state = load_last(out)
    assert set(state["loss"]) == {"proxy.proxies"}
    assert state["loss"]["proxy.proxies"].shape == (3, FAST["embedding_dim"])


def test_epoch_line_reports_missing_validation_as_na():
    row = {
        "epoch": 1,
        "train_loss": 1.0,
        "val_mean_average_precision_at_r": float("nan"),
        "val_precision_at_1": float("nan"),
        "best": 1,
        "train_images_per_second": 3.0,
        "train_seconds": 2.0,
    }
    assert "val MAP@R n/a P@1 n/a" in epoch_line(row, 3)


@pytest.mark.slow
def test_warning_when_the_best_epoch_is_the_first(stripes, monkeypatch):
    folder, table = stripes
    values = iter([0.9, 0.5, 0.4])
    real = loop_module.validation_metrics

    def falling(*args, **kwargs):
        out = real(*args, **kwargs)
        out["mean_average_precision_at_r"] = next(values)
        return out

    monkeypatch.setattr(loop_module, "validation_metrics", falling)
    with pytest.warns(UserWarning, match="best validation MAP@R was at epoch 1 of 3"):
        result = train_fast(table, folder / "first", folder / "img", epochs=3, batches_per_epoch=1)
    assert result.best_epoch == 1
    from cxrembed.commands.train import format_result

    assert "warning: the best epoch is the first of 3" in format_result(result)


def _capture_fit(monkeypatch, seen):
    def fake_fit(model, loss_fn, data, config, run, **kwargs):
        seen["model"] = {k: v.clone() for k, v in model.state_dict().items()}
        seen["threads"] = torch.get_num_threads()
        seen["config"] = config
        return "done"

    monkeypatch.setattr(trainer_module, "fit", fake_fit)


@pytest.mark.slow
def test_init_starts_from_another_runs_backbone_with_a_new_head(stripes, monkeypatch):
    folder, table = stripes
    source = folder / "source"
    train_fast(table, source, folder / "img", epochs=1, batches_per_epoch=2)
    trained = read_weights(source / "model.safetensors")[0]
    seen: dict = {}
    _capture_fit(monkeypatch, seen)
    overrides = {**FAST, "embedding_dim": 8, "loss": "ce", "init": str(source)}
    train(table, folder / "init", images=folder / "img", progress=False, overrides=overrides)
    start = seen["model"]
    backbone = [k for k in trained if k.startswith("backbone.")]
    assert backbone and all(torch.equal(start[k], trained[k]) for k in backbone)
    fresh = initial_model(seen["config"]).state_dict()
    assert torch.equal(start["projection.weight"], fresh["projection.weight"])
    assert start["projection.weight"].shape == (8, 512)  # a new head, another size
    assert seen["config"].training.init == str(source)


def test_init_refuses_other_backbones_missing_runs_and_weights_together(stripes, tmp_path):
    folder, table = stripes
    cfg = RunConfig.from_dict({"model": {"backbone": "resnet34"}})
    run = tmp_path / "r18"
    run.mkdir()
    RunConfig().to_yaml(run / "config.yaml")
    with pytest.raises(RunConfigError, match="no model.safetensors"):
        trainer_module.check_init_run(run, RunConfig())
    (run / "model.safetensors").write_bytes(b"")
    with pytest.raises(RunConfigError, match="resnet18 backbone.*--backbone resnet18"):
        trainer_module.check_init_run(run, cfg)
    with pytest.raises(CheckpointError, match="not a run folder"):
        trainer_module.check_init_run(tmp_path / "nothing", RunConfig())
    with pytest.raises(RunConfigError, match="one of weights .* or init"):
        RunConfig.from_dict({"training": {"weights": "w.pth", "init": str(run)}})


@pytest.mark.slow
def test_threads_are_set_for_training_and_restored(stripes, monkeypatch):
    folder, table = stripes
    seen: dict = {}
    _capture_fit(monkeypatch, seen)
    before = torch.get_num_threads()
    train_fast(table, folder / "threads", folder / "img", threads=1)
    assert seen["threads"] == 1 and torch.get_num_threads() == before
    with pytest.raises(RunConfigError, match="threads"):
        RunConfig.from_dict({"training": {"threads": 0}})


def test_separator_splits_a_categorical_column(stripes):
    folder, table = stripes
    table = table.assign(finding=np.where(table.index % 3 == 0, "a, b", table["finding"]))
    config = RunConfig().with_overrides({**FAST, "separator": ","})
    data, config = build_train_data(table, config, images=folder / "img")
    assert data.names == ["a", "b", "c"]
    assert (data.train_targets.sum(axis=1) == 2).any()
    assert trainer_module.single_label(config) is False


@pytest.mark.slow
def test_ms_proxy_run_resumes_exactly_with_its_proxies(stripes, monkeypatch):
    folder, table = stripes
    overrides = {**FAST, "loss": "ms+proxy", "epochs": 2, "batches_per_epoch": 2}
    straight = train(
        table, folder / "p_straight", images=folder / "img", progress=False, overrides=overrides
    )
    real = loop_module._forward
    calls = {"n": 0}

    def stop_at_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # handled after this step
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_module, "_forward", stop_at_3)
    out = folder / "p_stopped"
    first = train(table, out, images=folder / "img", progress=False, overrides=overrides)
    assert (first.status, first.step) == ("interrupted", 3)
    monkeypatch.undo()
    again = train(
        table, out, images=folder / "img", progress=False, overrides=overrides, resume=True
    )
    assert again.status == "completed" and again.step == straight.step == 4
    a, b = load_last(folder / "p_straight"), load_last(out)
    assert _same(a[0], b[0]) and _same(a[1]["loss"], b[1]["loss"])


def test_build_loss_fills_in_classes_dimension_and_label_kind():
    cfg = RunConfig.from_dict(
        {
            "training": {"loss": "ms+proxy", "loss_options": {"proxy_weight": 0.5}},
            "model": {"embedding_dim": 32},
            "labels": {"label_col": "finding"},
        }
    )
    loss = build_loss(cfg, ["a", "b", "c"])
    assert loss.proxy.proxies.shape == (3, 32) and loss.proxy.multilabel is False
    assert loss.proxy_weight == 0.5
    multi = cfg.with_overrides({"labels.schema": "chexpert"})
    assert build_loss(multi, ["x", "y"]).proxy.multilabel is True
    with pytest.raises(RunConfigError, match="has no option 'num_classes'"):
        build_loss(cfg.with_overrides({"loss_options": {"num_classes": 4}}), ["a", "b"])


def test_cli_passes_the_new_training_options(tmp_path, stand_in):
    done = TrainResult(None, "completed", 1, 1, 1, 0.5, [], RunConfig())
    seen = stand_in(trainer_module, "train", done)
    result = runner.invoke(
        app,
        [
            "train",
            "--labels",
            "t.csv",
            "--out",
            str(tmp_path / "run"),
            "--images",
            "i",
            "--label-col",
            "finding",
            "--separator",
            ",",
            "--loss",
            "ms+proxy",
            "--lr",
            "0.002",
            "--head-lr",
            "0.02",
            "--m",
            "8",
            "--threads",
            "1",
            "--init",
            str(tmp_path / "src"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen["kwargs"]["overrides"] == {
        "labels.label_col": "finding",
        "labels.separator": ",",
        "training.loss": "ms+proxy",
        "training.lr": 0.002,
        "training.head_lr": 0.02,
        "training.m": 8,
        "training.threads": 1,
        "training.init": str(tmp_path / "src"),
    }
    config = RunConfig().with_overrides(seen["kwargs"]["overrides"])
    assert (config.training.m, config.labels.separator) == (8, ",")


@pytest.mark.slow
def test_ms_plus_ce_is_fed_the_raw_projection(stripes, monkeypatch):
    folder, table = stripes
    norms = []
    real = trainer_module.build_loss

    def spy(config, names):
        loss = real(config, names)
        inner = loss.forward

        def forward(out, targets, indices_tuple=None, known=None, weights=None):
            norms.append(float(out.detach().norm(dim=1).mean()))
            return inner(out, targets, indices_tuple, known=known, weights=weights)

        loss.forward = forward
        return loss

    monkeypatch.setattr(trainer_module, "build_loss", spy)
    result = train_fast(
        table, folder / "msce", folder / "img", loss="ms+ce", epochs=1, batches_per_epoch=2
    )
    assert result.status == "completed" and len(norms) == 2
    assert all(abs(n - 1.0) > 1e-3 for n in norms)  # not the unit-norm embedding
    _, state = load_last(folder / "msce")
    assert set(state["loss"]) == {"classifier.weight", "classifier.bias"}


def test_loader_workers_default_to_none_from_a_cache_and_two_from_source(stripes, tmp_path):
    from cxrembed.data.cache import prepare_cache

    folder, table = stripes
    auto = {k: v for k, v in FAST.items() if k != "num_workers"}
    config = RunConfig().with_overrides(auto)
    assert config.data.num_workers is None  # auto until the data decides
    _, from_source = build_train_data(table, config, images=folder / "img")
    assert from_source.data.num_workers == 2
    cache = tmp_path / "cache"
    prepare_cache(table, folder / "img", cache, image_col="file", size=32, progress=False)
    _, from_cache = build_train_data(table, config, cache=cache)
    assert from_cache.data.num_workers == 0
    chosen = RunConfig().with_overrides({**auto, "num_workers": 3})
    _, kept = build_train_data(table, chosen, cache=cache)
    assert kept.data.num_workers == 3
