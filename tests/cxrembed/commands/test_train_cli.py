"""``cxr train``: options reach cxrembed.train.trainer.train as overrides; output; exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import cxrembed.train.trainer as trainer_module
from cxrembed.commands.train import collect_overrides, format_result
from cxrembed.train.config import RunConfig
from cxrembed.train.loop import TrainResult
from cxrlabel.cli import app

runner = CliRunner()


def _result(tmp_path: Path, status: str = "completed", signal: int | None = None) -> TrainResult:
    row = {
        "train_loss": 0.5,
        "val_mean_average_precision_at_r": 0.25,
        "val_precision_at_1": 0.5,
        "val_precision_at_5": float("nan"),
        "train_images_per_second": 12.0,
    }
    return TrainResult(
        tmp_path / "run", status, 2, 8, 1, 0.25, [row, row], RunConfig(), excluded=3, signal=signal
    )


def _train_cli(*options: str, labels: str = "t.csv", out: object = "run"):
    """``cxr train --labels LABELS -o OUT`` plus ``options``."""
    return runner.invoke(app, ["train", "--labels", labels, "-o", str(out), *options])


@pytest.fixture
def seen(tmp_path, stand_in) -> dict:
    """What a faked ``train`` (one finished run) was called with, once the test calls it."""
    return stand_in(trainer_module, "train", _result(tmp_path))


def test_options_are_passed_as_overrides(seen, tmp_path):
    result = runner.invoke(
        app,
        [
            "train",
            "--labels",
            str(tmp_path / "t.csv"),
            "--output",
            str(tmp_path / "run"),
            "--cache",
            str(tmp_path / "cache"),
            "--config",
            str(tmp_path / "c.yaml"),
            "--image-col",
            "small_image",
            "--label-cols",
            "Edema, Atelectasis",
            "--group-col",
            "patientid",
            "--loss",
            "ml2",
            "--backbone",
            "resnet34",
            "--embedding-dim",
            "64",
            "--image-size",
            "128",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--noise",
            str(tmp_path / "noise.json"),
            "--weights",
            str(tmp_path / "w.pth"),
            "--device",
            "cpu",
            "--jobs",
            "1",
            "--seed",
            "7",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen["args"] == (tmp_path / "t.csv", tmp_path / "run")
    assert seen["kwargs"] == {
        "images": None,
        "cache": tmp_path / "cache",
        "config": tmp_path / "c.yaml",
        "resume": False,
        "progress": False,
        "overrides": {
            "data.image_col": "small_image",
            "labels.columns": ["Edema", "Atelectasis"],
            "data.group_col": "patientid",
            "training.loss": "ml2",
            "model.backbone": "resnet34",
            "model.embedding_dim": 64,
            "preprocessing.image_size": 128,
            "training.epochs": 3,
            "training.batch_size": 16,
            "training.noise": str(tmp_path / "noise.json"),
            "training.weights": str(tmp_path / "w.pth"),
            "training.device": "cpu",
            "data.num_workers": 0,
            "training.seed": 7,
        },
    }
    assert "finished 2 epochs (8 steps)" in result.output
    assert "best: epoch 1, val MAP@R 0.250" in result.output and "P@5 n/a" in result.output
    assert "3 table rows not used" in result.output


def test_options_left_out_use_the_config(seen):
    result = _train_cli("--images", "imgs", "--label-col", "finding", "--resume")
    assert result.exit_code == 0, result.output
    assert seen["kwargs"]["overrides"] == {"labels.label_col": "finding"}
    assert seen["kwargs"]["resume"] is True and seen["kwargs"]["progress"] is True
    assert seen["kwargs"]["images"] == Path("imgs") and seen["kwargs"]["config"] is None


def test_interrupted_run_exits_128_plus_signal(tmp_path, stand_in):
    stand_in(trainer_module, "train", _result(tmp_path, "interrupted", signal=15))
    result = _train_cli("--images", "i")
    assert result.exit_code == 143
    assert "interrupted by signal 15" in result.output and "--resume" in result.output


def test_library_errors_are_one_line_exit_1(tmp_path):
    images = ["--images", str(tmp_path)]
    missing = str(tmp_path / "missing.csv")
    result = _train_cli(*images, "--label-col", "finding", labels=missing, out=tmp_path / "run")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: labels table")
    bad_key = tmp_path / "c.yaml"
    bad_key.write_text("training:\n  epoch: 2\n")
    result = _train_cli(*images, "--config", str(bad_key), out=tmp_path / "r")
    assert result.exit_code == 1 and "did you mean 'training.epochs'" in result.output


def test_out_and_num_workers_are_deprecated_aliases(seen):
    result = runner.invoke(
        app,
        ["train", "--labels", "t.csv", "--out", "run", "--images", "i", "--num-workers", "3", "-q"],
    )
    assert result.exit_code == 0, result.output
    assert seen["args"] == (Path("t.csv"), Path("run"))
    assert seen["kwargs"]["overrides"] == {"data.num_workers": 3}
    assert "warning: --out is deprecated; use --output / -o" in result.stderr
    assert "warning: --num-workers is deprecated; use --jobs / -j" in result.stderr
    missing = runner.invoke(app, ["train", "--labels", "t.csv", "--images", "i"])
    assert missing.exit_code == 2 and "--output" in missing.output
    both = runner.invoke(app, ["train", "--labels", "t.csv", "-o", "a", "--out", "b"])
    assert both.exit_code == 2 and "not both" in both.output


def test_help_shows_the_config_defaults():
    from cxrembed.train.config import RunConfig

    defaults = RunConfig()
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for value in (
        defaults.training.epochs,
        defaults.training.loss,
        defaults.model.backbone,
        defaults.preprocessing.image_size,
        defaults.training.batch_size,
    ):
        assert f"[default: ({value})]" in text


def test_collect_overrides_and_summary(tmp_path):
    assert collect_overrides(schema="chexpert", loss=None) == {"labels.schema": "chexpert"}
    text = format_result(_result(tmp_path))
    assert text.splitlines()[0] == f"run: {tmp_path / 'run'}"


def test_columns_named_on_the_command_line_are_checked_before_training(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("training started before the column check")

    monkeypatch.setattr(trainer_module, "train", never)
    table = tmp_path / "t.csv"
    table.write_text("file,finding,patient\na.png,x,p1\n")
    base = ["train", "--labels", str(table), "-o", str(tmp_path / "run"), "--images", "i"]
    for extra, flag in (
        (["--label-col", "findings"], "--label-col"),
        (["--label-cols", "finding,Edema"], "--label-cols"),
        (["--label-col", "finding", "--image-col", "path"], "--image-col"),
        (["--label-col", "finding", "--group-col", "patientid"], "--group-col"),
    ):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 1, result.output
        assert f"not found ({flag})" in result.output and result.output.count("\n") == 1
