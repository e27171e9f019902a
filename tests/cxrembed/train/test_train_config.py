"""RunConfig <-> config.yaml: defaults, validation at the boundary, overrides, the hash."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from cxrembed.errors import RunConfigError
from cxrembed.train.config import (
    LOSSES,
    RESUMABLE_KEYS,
    RunConfig,
    config_hash,
    library_versions,
    resolve_key,
)


def test_defaults_are_the_documented_ones():
    cfg = RunConfig()
    assert (cfg.training.loss, cfg.model.backbone, cfg.model.embedding_dim) == (
        "ms+ce",
        "resnet18",
        128,
    )
    assert (cfg.preprocessing.image_size, cfg.training.batch_size, cfg.training.m) == (224, 32, 4)
    assert (cfg.training.epochs, cfg.training.lr, cfg.training.weight_decay) == (10, 3e-4, 1e-4)
    assert (cfg.training.warmup_epochs, cfg.training.grad_clip, cfg.training.seed) == (1.0, 5.0, 0)
    assert cfg.labels.uncertain_policy == "ignore" and cfg.data.val_fraction == 0.2
    assert cfg.data.num_workers is None and cfg.training.head_lr > cfg.training.lr  # auto
    assert set(LOSSES) == {"ms", "ml2", "ce", "proxy", "ms+proxy", "ms+ce"}
    # Every resumable key exists.
    for key in RESUMABLE_KEYS:
        assert resolve_key(key) == tuple(key.split("."))


def test_partial_mapping_keeps_defaults_and_converts_ints_to_floats():
    cfg = RunConfig.from_dict({"training": {"lr": 1, "epochs": 3}, "model": None})
    assert cfg.training.lr == 1.0 and isinstance(cfg.training.lr, float)
    assert cfg.training.epochs == 3 and cfg.model == RunConfig().model


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (
            {"training": {"epoch": 3}},
            r"unknown key 'training.epoch'; did you mean 'training.epochs'",
        ),
        ({"trainig": {}}, r"unknown key 'trainig'; did you mean 'training'"),
        ({"model": {"backbon": "resnet50"}}, r"'model.backbon'; did you mean 'model.backbone'"),
        ({"labels": {"xyz_qqq": 1}}, r"unknown key 'labels.xyz_qqq'; Valid keys: labels\.columns"),
    ],
)
def test_unknown_keys_name_the_key_and_the_closest_valid_one(data, pattern):
    with pytest.raises(RunConfigError, match=pattern):
        RunConfig.from_dict(data)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"training": {"epochs": "ten"}}, r"training.epochs must be an integer; got 'ten'"),
        ({"training": {"epochs": 2.5}}, r"training.epochs must be an integer"),
        ({"training": {"amp": "yes"}}, r"training.amp must be true/false"),
        ({"labels": {"columns": "Edema"}}, r"labels.columns must be a list of strings or null"),
        ({"training": "fast"}, r"'training' must be a mapping"),
        ({"training": {"loss": "triplet"}}, r"training.loss must be one of ms, ml2, ce"),
        ({"training": {"batch_size": 30}}, r"multiple of training.m.*Try batch_size=28"),
        ({"training": {"batch_size": 4, "m": 4}}, r"at least two labels per batch"),
        ({"labels": {"uncertain_policy": "soft"}}, r"uncertain_policy must be one of ignore"),
        ({"labels": {"schema": "chexpert", "label_col": "finding"}}, r"one of schema, columns"),
        ({"data": {"val_fraction": 1.0}}, r"val_fraction must be a number in \[0, 1\)"),
        ({"preprocessing": {"image_size": 16}}, r"image_size must be an integer >= 32"),
        ({"training": {"loss": "ce", "noise": "n.json"}}, r"noise weights pairs of the metric"),
        ({"augmentation": {"scale": [1.1, 0.9]}}, r"scale must be \[low, high\]"),
    ],
)
def test_bad_values_say_what_was_expected(data, pattern):
    with pytest.raises(RunConfigError, match=pattern):
        RunConfig.from_dict(data, source="run.yaml")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: 0\n")
    with pytest.raises(RunConfigError, match=r"c.yaml: training.epochs must be an integer >= 1"):
        RunConfig.from_yaml(path)
    path.write_text("training: [unclosed\n")
    with pytest.raises(RunConfigError, match="is not valid YAML"):
        RunConfig.from_yaml(path)
    with pytest.raises(RunConfigError, match="cannot read config file"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")


def test_yaml_round_trip_is_exact(tmp_path):
    cfg = RunConfig.from_dict(
        {
            "labels": {"columns": ["Edema", "Atelectasis"], "names": ["Edema", "Atelectasis"]},
            "preprocessing": {"window": [40, 400]},
            "training": {"loss_options": {"alpha": 1.5}, "noise": "noise.json"},
        }
    )
    cfg.to_yaml(tmp_path / "config.yaml")
    text = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert list(text)[:6] == [
        "model",
        "preprocessing",
        "augmentation",
        "labels",
        "data",
        "training",
    ]
    assert text["config_hash"] == config_hash(cfg)
    again = RunConfig.from_yaml(tmp_path / "config.yaml")  # versions, hash ignored on input
    assert again == cfg and again.preprocessing.window == [40.0, 400.0]


def test_overrides_accept_dotted_and_bare_keys_and_replace_label_sources():
    cfg = RunConfig.from_dict({"labels": {"schema": "chexpert"}, "training": {"epochs": 4}})
    new = cfg.with_overrides(
        {"loss": "ml2", "model.embedding_dim": 64, "labels.columns": ["Edema"]}
    )
    assert (new.training.loss, new.model.embedding_dim, new.training.epochs) == ("ml2", 64, 4)
    assert new.labels.schema is None and new.labels.columns == ["Edema"]
    assert cfg.training.loss == "ms+ce"  # the original (the default) is unchanged
    with pytest.raises(RunConfigError, match="unknown key 'epoch'; did you mean 'epochs'"):
        cfg.with_overrides({"epoch": 3})
    with pytest.raises(RunConfigError, match="training.seed must be an integer >= 0"):
        cfg.with_overrides({"seed": -1})
    assert new.differences(cfg) == {
        "model.embedding_dim": (64, 128),
        "labels.schema": (None, "chexpert"),
        "labels.columns": (["Edema"], None),
        "training.loss": ("ml2", "ms+ce"),
    }


def test_bare_keys_are_unique_across_sections():
    names = [
        f.name
        for section in dataclasses.fields(RunConfig)
        for f in dataclasses.fields(section.default_factory())
    ]
    assert len(names) == len(set(names))


def test_config_hash_covers_model_and_preprocessing_only():
    base = RunConfig()
    assert len(config_hash(base)) == 16 and config_hash(base) == config_hash(RunConfig())
    same = RunConfig.from_dict(
        {
            "training": {"epochs": 99, "loss": "ce"},
            "labels": {"label_col": "finding"},
            "preprocessing": {"mean": 0.5, "std": 0.25},
        }
    )
    assert config_hash(same) == config_hash(base)
    for change in (
        {"model": {"embedding_dim": 64}},
        {"preprocessing": {"std": 0.5}},
        {"preprocessing": {"fit": "crop"}},
        {"model": {"attention": False}},
    ):
        assert config_hash(RunConfig.from_dict(change)) != config_hash(base), change
    # Mapping order and 1 vs 1.0 do not matter.
    data = base.to_dict()
    data["preprocessing"] = dict(reversed(list(data["preprocessing"].items())))
    data["preprocessing"]["mean"] = 0.5
    data["preprocessing"]["image_size"] = 224.0
    assert config_hash(data) == config_hash(base)


def test_library_versions_are_recorded():
    versions = library_versions()
    assert set(versions) == {"python", "cxrkit", "torch", "torchvision"}
    assert versions["torch"].startswith("2.")


def test_differences_name_a_setting_written_only_when_set():
    plain = RunConfig()
    neck = RunConfig.from_dict({"model": {"embedding_norm": "batchnorm"}})
    assert "embedding_norm" not in plain.to_dict()["model"]
    assert plain.differences(neck) == {"model.embedding_norm": (None, "batchnorm")}
    assert neck.differences(plain) == {"model.embedding_norm": ("batchnorm", None)}
