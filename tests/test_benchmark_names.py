"""The real-image benchmarks' name lists (``--methods``, ``--rows``): a typo stops the run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import realdata  # noqa: E402

KNOWN = {"ms": {}, "ms gap": {}, "ce": {}}


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
    import pandas as pd
    import retrieval_real

    rng = np.random.default_rng(0)
    n = 120
    patients = np.arange(n) // 2
    labels = np.array(["normal", "bacteria", "virus"])[patients % 3]
    table = pd.DataFrame(
        {
            "subtype": labels,
            "patient_id": patients,
            "split": np.where(patients % 4, "train", "test"),
        }
    )
    good = np.eye(3, 6)[patients % 3] + 0.5 * rng.normal(size=(n, 6))
    vectors = {"default": good, "ce": good + 2.0 * rng.normal(size=(n, 6))}
    spec = realdata.SPECS["kermany"]
    scores = {m: realdata.score(v, table, spec, draws=200) for m, v in vectors.items()}
    retrieval_real._comparisons(scores, vectors, table, spec, 200)
    line = capsys.readouterr().out.strip()
    gap = scores["default"].loc["MAP@R", "value"] - scores["ce"].loc["MAP@R", "value"]
    assert line.startswith("default / ce: MAP@R x") and f"paired difference {gap:.3f} [" in line
