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


# ``cxr`` itself: main() without arguments, as the console script calls it.
SCRIPT = """
import atexit, sys, threading
class Teardown:
    def __del__(self):
        sys.stderr.write("teardown\\n")
held = Teardown()  # freed by the interpreter's teardown only
atexit.register(lambda: sys.stderr.write("atexit ran\\n"))
if {thread!r}:
    # alive until the main thread has finished (the interpreter's exit stops it)
    main_thread = threading.main_thread()
    def wait():
        main_thread.join(60)
        sys.stderr.write("thread done\\n")
    threading.Thread(target=wait).start()
from cxrlabel.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("thread", [False, True], ids=["alone", "with-a-thread"])
def test_cxr_label_exits_without_teardown_with_its_output_and_status(reports, thread):
    def cxr(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", SCRIPT.format(thread=thread), *args],
            cwd=reports,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **env},
        )

    fast = cxr("label", "r.csv", "-o", "fast.csv", "--evidence", "fast.jsonl")
    slow = cxr("label", "r.csv", "-o", "slow.csv", "--evidence", "slow.jsonl", CXR_FAST_START="0")
    assert fast.returncode == slow.returncode == 0, fast.stderr + slow.stderr
    assert (reports / "fast.csv").read_bytes() == (reports / "slow.csv").read_bytes()
    assert (reports / "fast.jsonl").read_bytes() == (reports / "slow.jsonl").read_bytes()
    # the summary printed in full (flushed), under the same names
    assert _no_speed(fast.stdout).replace("fast.", "slow.") == _no_speed(slow.stdout)
    assert "atexit ran" in fast.stderr and "atexit ran" in slow.stderr
    assert "teardown" in slow.stderr
    # no teardown, unless a thread was still running (then Python's own exit waits for it)
    assert ("teardown" in fast.stderr) == thread == ("thread done" in fast.stderr)
    error = cxr("label", "r.csv", "-o", "o.csv", "--text-col", "txt")
    assert error.returncode == 1 and "did you mean 'text'" in error.stderr
    assert cxr("label", "--help").returncode == 0
    library = cxr("--help")  # not a labeller command: the interpreter's own exit
    assert library.returncode == 0 and "teardown" in library.stderr


def _no_speed(summary: str) -> str:
    """The summary without the line whose speed varies between runs."""
    return "\n".join(line for line in summary.splitlines() if " reports in " not in line)
