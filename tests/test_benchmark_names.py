"""The real-image benchmarks' name lists (``--methods``, ``--rows``): a typo stops the run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import realdata  # noqa: E402

KNOWN = {"ms": {}, "ms gap": {}, "ce": {}}


def _toy_split():
    """120 images of 60 patients, 3 balanced labels, a quarter of the patients as test."""
    import numpy as np
    import pandas as pd

    patients = np.arange(120) // 2
    labels = np.array(["normal", "bacteria", "virus"])[patients % 3]
    split = np.where(patients % 4, "train", "test")
    return pd.DataFrame({"subtype": labels, "patient_id": patients, "split": split}), patients


def test_names_keep_the_given_order_and_all_means_every_known_one() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    assert realdata.chosen_names(parser, "--rows", " ce, ms gap ", KNOWN) == ["ce", "ms gap"]
    assert realdata.chosen_names(parser, "--rows", "all", KNOWN) == ["ms", "ms gap", "ce"]


def test_an_unknown_name_stops_before_any_work_and_lists_the_known_ones(capsys) -> None:
    parser = argparse.ArgumentParser(prog="bench")
    with pytest.raises(SystemExit) as stopped:
        realdata.chosen_names(parser, "--rows", "ms,ms, gap", KNOWN)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "unknown --rows ['gap']" in err and "'ms gap'" in err


def test_retrieval_real_compares_the_default_with_a_paired_difference(capsys) -> None:
    import numpy as np
    import retrieval_real

    rng = np.random.default_rng(0)
    table, patients = _toy_split()
    n = len(table)
    good = np.eye(3, 6)[patients % 3] + 0.5 * rng.normal(size=(n, 6))
    vectors = {"default": good, "ce": good + 2.0 * rng.normal(size=(n, 6))}
    spec = realdata.SPECS["kermany"]
    scores = {m: realdata.score(v, table, spec, draws=200) for m, v in vectors.items()}
    retrieval_real._comparisons(scores, vectors, table, spec, 200)
    line = capsys.readouterr().out.strip()
    gap = scores["default"].loc["MAP@R", "value"] - scores["ce"].loc["MAP@R", "value"]
    assert line.startswith("default / ce: MAP@R x") and f"paired difference {gap:.3f} [" in line


def test_retrieval_real_seed_summary_reports_every_seed_and_the_mean_gap() -> None:
    import numpy as np
    import retrieval_real

    rng = np.random.default_rng(1)
    table, patients = _toy_split()
    n = len(table)
    spec = realdata.SPECS["kermany"]
    by_seed = {}
    for seed in (3, 5):
        good = np.eye(3, 6)[patients % 3] + 0.5 * rng.normal(size=(n, 6))
        by_seed[seed] = {"default": good, "ce": good + 3.0 * rng.normal(size=(n, 6))}
    text = retrieval_real._seed_summary(by_seed, table, spec, 200)
    values = {
        (m, s): realdata.score(v, table, spec, draws=200).loc["MAP@R", "value"]
        for s, row in by_seed.items()
        for m, v in row.items()
    }
    mean_default = (values[("default", 3)] + values[("default", 5)]) / 2
    assert "| seed 3 | seed 5 |" in text
    assert f"| default | {values[('default', 3)]:.3f} [" in text
    assert f"{mean_default:.3f} ± " in text
    gap = mean_default - (values[("ce", 3)] + values[("ce", 5)]) / 2
    assert f"| {gap:+.3f} | 2 of 2 seeds (behind in 0) |" in text


def test_retrieval_real_rejects_bad_seed_lists(capsys) -> None:
    import retrieval_real

    parser = argparse.ArgumentParser(prog="bench")
    assert retrieval_real._seeds(parser, None, 4) == [4]
    assert retrieval_real._seeds(parser, "0, 2,1", 4) == [0, 2, 1]
    for bad in ("0,x", "1,1", ","):
        with pytest.raises(SystemExit):
            retrieval_real._seeds(parser, bad, 0)
    assert "--seeds" in capsys.readouterr().err


def test_intubation_lists_the_tabular_only_rows_once_for_all_methods() -> None:
    pytest.importorskip("sklearn")
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 80
    table = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(n)],
            "patientid": [f"p{i // 2}" for i in range(n)],
            "intubated": ["Y", "N", "N", "Not visible"] * (n // 4),
            "age": rng.integers(20, 90, n),
            "sex": rng.choice(["M", "F"], n),
            "temperature": rng.normal(38, 1, n).round(1),
            "pO2_saturation": rng.normal(92, 4, n).round(0),
        }
    )
    ids = table["id"].tolist()
    vectors = {m: (ids, rng.normal(size=(n, 20))) for m in ("a", "b")}
    joined = realdata.intubation(table, vectors, seed=0, bootstrap=10, models=["logistic"])
    assert joined[["image features", "features"]].values.tolist() == [
        ["a", "image-only"],
        ["-", "tabular-only"],
        ["a", "combined"],
        ["b", "image-only"],
        ["b", "combined"],
    ]
    assert joined["n"].tolist() == [60] * 5
    assert all(s.count("[") == 1 for s in joined["AUROC [95% CI]"])


def test_recipe_ablation_pairs_rows_that_held_out_the_same_patients() -> None:
    import numpy as np
    import recipe_ablation

    rng = np.random.default_rng(2)
    table, patients = _toy_split()
    table = table.assign(split=table["split"].replace({"test": "val"}))
    n = len(table)
    spec = realdata.SPECS["kermany"]
    good = np.eye(3, 6)[patients % 3] + 0.5 * rng.normal(size=(n, 6))
    worse = good + 2.0 * rng.normal(size=(n, 6))
    moved = table.assign(split=np.where(patients % 4 == 1, "val", "train"))
    embedded = {"ms+ce": (good, table), "ce": (worse, table), "ms": (worse, moved)}
    text = recipe_ablation.gap_lines(embedded, "ms+ce", spec, 200)

    def map_at_r(vectors):
        scores = realdata.score(vectors, table, spec, draws=0, query="val", gallery="train")
        return scores.loc["MAP@R", "value"]

    assert f"  ce - ms+ce: {map_at_r(worse) - map_at_r(good):.3f} [" in text
    assert "  ms: not paired (its run held out other validation patients)" in text
    assert "ms+ce - ms+ce" not in text


def test_checkpoint_choice_reads_train_runs_only_and_counts_clear_gains(tmp_path) -> None:
    import checkpoint_choice
    import pandas as pd

    for name, files in {
        "run_default": ["last.safetensors", "model.safetensors"],
        "run_default_seed1": ["last.safetensors", "model.safetensors"],
        "run_pml-ms": ["model.safetensors"],  # the peer keeps no last checkpoint
        "emb_default": [],
    }.items():
        (tmp_path / name).mkdir()
        for f in files:
            (tmp_path / name / f).write_bytes(b"")
    assert [p.name for p in checkpoint_choice._runs(tmp_path)] == [
        "run_default",
        "run_default_seed1",
    ]
    frame = pd.DataFrame(
        {
            "run": ["run_default", "run_default_seed1", "run_ce"],
            "method": ["default", "default", "ce"],
            "MAP@R best": [0.5, 0.6, 0.7],
            "MAP@R last": [0.6, 0.6, 0.65],
            "last - best": [0.1, 0.0, -0.05],
            "low": [0.05, 0.0, -0.08],
            "high": [0.15, 0.0, -0.02],
        }
    )
    table = checkpoint_choice._method_table(frame)
    assert "| default | 2 | 0.550 | 0.600 | +0.050 | 1 of 2 (behind in 0) |" in table
    assert "| ce | 1 | 0.700 | 0.650 | -0.050 | 0 of 1 (behind in 1) |" in table
