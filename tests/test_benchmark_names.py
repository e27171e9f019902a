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
