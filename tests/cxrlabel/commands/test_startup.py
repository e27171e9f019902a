"""``cxr label`` start-up: no torch (thinc would import it), no cxrembed, arguments checked
before spaCy is imported; the labels do not change. Timings are in benchmarks/startup.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxrlabel.startup import LABELLER_GC_THRESHOLD

PROBE = """
import contextlib, gc, io, json, sys
from cxrlabel.cli import main
codes, errors, pandas = [], [], []
for args in {runs!r}:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            codes.append(exc.code)
        else:
            codes.append(0)
    errors.append(err.getvalue())
    pandas.append("pandas" in sys.modules)
print(json.dumps({{"codes": codes, "errors": errors, "pandas": pandas,
                  "torch": "torch" in sys.modules,
                  "spacy": "spacy" in sys.modules,
                  "gc_threshold": gc.get_threshold()[0],
                  "cxrembed": any(m.startswith("cxrembed") for m in sys.modules)}}))
"""


def _run(runs: list[list[str]], cwd: Path, **env: str) -> dict:
    """Run ``cxr`` with each argument list in one fresh process; what it imported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(runs=runs)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


SENTENCES = [
    "No pneumothorax.",
    "Mild cardiomegaly.",
    "Cannot exclude pneumonia.",
    "Small left pleural effusion.",
    "Heart size is normal.",
    "Lungs are clear.",
    "Possible atelectasis at the left base.",
    "Pacemaker in place.",
    "Mild pulmonary edema.",
    "Fracture of the right fifth rib.",
    "Interval resolution of consolidation.",
    "No evidence of pneumothorax or effusion.",
    "Opacity in the right lower lobe, may represent atelectasis or pneumonia.",
    "Endotracheal tube terminates 3 cm above the carina.",
    "There is no edema.",
    "Lung nodule in the left upper lobe.",
    "Rule out pneumonia.",
    "",
]


@pytest.fixture()
def reports(tmp_path: Path) -> Path:
    """Reports of our own: every sentence alone, then pairs, under findings and impression."""
    pairs = [(a, b) for i, a in enumerate(SENTENCES) for b in SENTENCES[i::5]]
    pd.DataFrame(
        {
            "uid": [f"r{i}" for i in range(len(pairs))],
            "text": [f"FINDINGS: {a}\n\nIMPRESSION: {b}" for a, b in pairs],
        }
    ).to_csv(tmp_path / "r.csv", index=False)
    return tmp_path


def test_label_imports_neither_torch_nor_cxrembed_and_labels_do_not_change(reports):
    pytest.importorskip("torch")  # only meaningful where torch is installed
    from cxrlabel.labeler import Labeler

    args = ["label", "r.csv", "-o", "o.csv", "-q", "--evidence", "o.jsonl"]
    seen = _run([args], reports)
    assert seen["codes"] == [0], seen["errors"]
    assert seen["spacy"] and not seen["torch"] and not seen["cxrembed"]
    written = pd.read_csv(reports / "o.csv")
    assert len(written) == len(pd.read_csv(reports / "r.csv"))
    # The hooks change only what thinc knows about torch and how spaCy's CLI loads, never a
    # label or an evidence record: the same run without them, and in this process.
    slow = ["label", "r.csv", "-o", "slow.csv", "-q", "--evidence", "slow.jsonl"]
    slow_run = _run([slow], reports, CXR_FAST_START="0")
    assert slow_run["codes"] == [0]
    # ... and how often the garbage collector runs (rarer during the fast start)
    assert seen["gc_threshold"] == LABELLER_GC_THRESHOLD > slow_run["gc_threshold"]
    assert (reports / "o.csv").read_bytes() == (reports / "slow.csv").read_bytes()
    assert (reports / "o.jsonl").read_bytes() == (reports / "slow.jsonl").read_bytes()
    in_process = Labeler().label(pd.read_csv(reports / "r.csv")["text"].tolist())
    assert written.drop(columns=["uid", "status"]).astype(float).equals(in_process)
    assert written.drop(columns=["uid", "status"]).notna().to_numpy().sum() > 50


ARGUMENT_ERRORS = [
    (["label", "absent.csv", "-o", "o.csv"], "input not found"),
    (["label", "r.csv", "-o", "o.xlsx"], "output must end in"),
    (["label", "r.csv", "-o", "o.csv", "--schema", "chexprt"], "did you mean 'chexpert'"),
    (["label", "r.csv", "-o", "o.csv", "--text-col", "txt"], "did you mean 'text'"),
    (["label", "r.csv", "-o", "o.csv", "--jobs", "-1"], "Invalid value"),
    (["validate", "r.csv", "r.csv", "-o", "v", "--id-col", "nope"], "no id column 'nope'"),
]


def test_argument_errors_come_before_spacy_is_imported(reports):
    seen = _run([args for args, _ in ARGUMENT_ERRORS], reports)
    for (args, message), code, err in zip(
        ARGUMENT_ERRORS, seen["codes"], seen["errors"], strict=True
    ):
        assert code != 0 and message in err, (args, err)
    assert not seen["spacy"] and not seen["torch"] and not seen["cxrembed"]
    # cxr label's argument errors come before pandas too (validate reads its tables with it).
    assert seen["pandas"] == [False] * (len(ARGUMENT_ERRORS) - 1) + [True]


def test_hook_is_inert_once_thinc_has_decided():
    code = (
        "from cxrlabel.startup import hide_torch_from_thinc as h; import sys\n"
        "assert h() is True\n"
        "import spacy, thinc.compat\n"
        "assert thinc.compat.has_torch is False\n"
        "import torch\n"  # a later import works as usual
        "assert h() is False\n"
        "print(torch.__name__, type(sys.meta_path[0]).__name__)\n"
    )
    pytest.importorskip("torch")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "torch" and done.stdout.split()[1] != "_TorchHiddenFromThinc"


def test_spacy_cli_is_skipped_then_real_when_asked_for():
    code = (
        "import sys\n"
        "from cxrlabel.startup import skip_spacy_cli\n"
        "assert skip_spacy_cli() is True\n"
        "import spacy\n"
        "import cxrlabel.labeler\n"  # the labeller's own imports work as usual
        "print('requests' in sys.modules, 'spacy.cli' in sys.modules)\n"
        "import spacy.cli\n"
        "print(callable(spacy.cli.setup_cli), spacy.info.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "True", "cxrlabel.startup"]
