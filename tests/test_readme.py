"""The README is a contract: every fenced command and snippet runs as written.

Each ```sh / ```python block of README.md, lexicons/README.md and examples/ is one test case
(``README.md:180``), see :mod:`tests._readme` for how a line is checked. The blocks run in
document order in one working folder (module scope, so a single case still runs what comes
before it), prepared so that the README's paths exist:

- ``reports.csv`` and ``gold.csv``: a dozen synthetic reports and their positive-only labels;
- ``data/kermany_demo/``: a small subset of the shipped Kermany set, same layout;
- ``runs/kermany/``: what ``cxr train`` would write (marked as taking minutes, its options
  are checked on their own): a seeded random run and a patient-level ``split.csv``;
- ``images/`` + ``Data_Entry_2017.csv``: the NIH ChestX-ray14 layout for the XRV snippet;
- ``covid_metadata.csv`` + ``covid/embeddings``: the COVID-19 collection's columns;
- everything else of the clone (``lexicons/``, ``tests/``...) linked, for README paths into it.

A Python expression followed by ``# <literal>`` must give that value.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._readme import (
    ROOT,
    SHELL,
    Block,
    Command,
    all_blocks,
    blocks,
    check_pip_install,
    commands,
    makefile_targets,
    stated_values,
    working_folder,
)

BLOCKS = all_blocks()
KERMANY = ROOT / "data" / "kermany_demo"
QUERY = "images/IM-0010-0001.png"  # the README's search query

REPORTS = [
    ("r01", "The heart is enlarged. No pleural effusion.", "Cardiomegaly."),
    ("r02", "Lungs are clear. No pneumothorax.", "No acute cardiopulmonary disease."),
    ("r03", "Small left pleural effusion.", "Effusion. Cannot exclude pneumonia."),
    ("r04", "Right lower lobe consolidation.", "Pneumonia."),
    ("r05", "Heart size is normal. Mild pulmonary edema.", "Edema."),
    ("r06", "No focal consolidation. No pleural effusion.", "Normal chest."),
    ("r07", "Stable cardiomegaly. Bilateral effusions.", "Cardiomegaly and effusions."),
    ("r08", "Left upper lobe nodule.", "Lung nodule. Follow-up CT recommended."),
    ("r09", "Subsegmental atelectasis at the left base.", "Atelectasis."),
    ("r10", "", "No acute findings."),
    ("r11", "Small right pneumothorax.", "Pneumothorax."),
    ("r12", "Clear lungs.", "Normal."),
]
GOLD = {  # uid -> positive observations (positive-only gold)
    "r01": ["Cardiomegaly"],
    "r03": ["Pleural Effusion"],
    "r04": ["Pneumonia", "Consolidation"],
    "r05": ["Edema"],
    "r07": ["Cardiomegaly", "Pleural Effusion"],
    "r08": ["Lung Lesion"],
    "r09": ["Atelectasis"],
    "r11": ["Pneumothorax"],
}


# ----------------------------------------------------------------------------- the folder


def _reports(folder: Path) -> None:
    pd.DataFrame(REPORTS, columns=["uid", "findings", "impression"]).to_csv(
        folder / "reports.csv", index=False
    )
    names = sorted({n for found in GOLD.values() for n in found})
    gold = pd.DataFrame(
        [{"uid": uid, **{n: int(n in GOLD.get(uid, [])) for n in names}} for uid, _, _ in REPORTS]
    )
    gold.to_csv(folder / "gold.csv", index=False)


def _kermany(folder: Path, per_subtype: int = 6) -> pd.DataFrame:
    """A few patients of each grade of the shipped subset (and the README's query image)."""
    table = pd.read_csv(KERMANY / "labels.csv", dtype=str)
    patients = set(table.loc[table["image"] == QUERY, "patient_id"])
    for _, rows in table.groupby("subtype"):
        patients |= set(rows["patient_id"].drop_duplicates().head(per_subtype))
    subset = table[table["patient_id"].isin(patients)]
    target = folder / "data" / "kermany_demo"
    (target / "images").mkdir(parents=True)
    for name in subset["image"]:
        shutil.copy(KERMANY / name, target / name)
    subset.to_csv(target / "labels.csv", index=False)
    return subset


def _run(folder: Path, table: pd.DataFrame) -> None:
    """``runs/kermany`` as cxr train leaves it for embed / search / evaluate."""
    from tests.cxrembed._runs import make_run

    run = make_run(folder / "runs" / "kermany")
    split = np.where(table["split"] == "test", "val", "train")
    pd.DataFrame({"id": table["image"], "split": split, "group": table["patient_id"]}).to_csv(
        run / "split.csv", index=False
    )


def _nih(folder: Path) -> None:
    """The NIH ChestX-ray14 layout of the XRV snippet: images/ + Data_Entry_2017.csv."""
    from .cxrembed._images import write_nih

    findings = ["Effusion", "No Finding", "Edema|Effusion", "Edema"]
    write_nih(folder / "images", folder / "Data_Entry_2017.csv", findings)


def _covid(folder: Path, n: int = 40) -> None:
    """covid_metadata.csv (the collection's columns) and embeddings of its images."""
    from cxrembed.embeddings.embedding_set import EmbeddingSet

    rng = np.random.default_rng(0)
    intubated = np.array(["Y", "N"] * (n // 2))
    table = pd.DataFrame(
        {
            "patientid": [f"p{i // 2}" for i in range(n)],
            "small_image": [f"covid/{i:03d}.png" for i in range(n)],
            "finding": "COVID-19",
            "intubated": intubated,
            "age": rng.integers(20, 90, n),
            "sex": rng.choice(["M", "F"], n),
            "temperature": np.where(
                rng.random(n) < 0.2, "Not visible", rng.normal(38, 1, n).round(1).astype(str)
            ),
            "pO2_saturation": rng.normal(92, 4, n).round(0),
        }
    )
    table.to_csv(folder / "covid_metadata.csv", index=False)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors[:, 0] += (intubated == "Y") * 2.0
    EmbeddingSet(table["small_image"].tolist(), vectors, "cfg").save(
        folder / "covid" / "embeddings"
    )


def _clone(folder: Path) -> None:
    """The rest of a fresh clone (lexicons/, tests/, benchmarks/...), linked: README paths
    into the repository exist as they do at its root."""
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or entry.name.endswith(".egg-info"):
            continue
        if not (folder / entry.name).exists():
            (folder / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())


# ----------------------------------------------------------------------------- running


def _cxr(argv: list[str]) -> tuple[int, str]:
    from typer.testing import CliRunner

    from cxrlabel.cli import app

    result = CliRunner().invoke(app, argv)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "".join(traceback.format_exception(result.exception))
    return result.exit_code, output


def _run_command(command: Command, folder: Path, empty: Path) -> str | None:
    """None when the command does what the README says, else why not."""
    argv, where = command.argv, f"line {command.line}: {command.text}"
    name = argv[0]
    if name == "make":
        missing = set(argv[1:]) - makefile_targets()
        return f"{where}: no Makefile target {sorted(missing)}" if missing else None
    if name == "pip" or argv[:3] == ["python", "-m", "pip"]:
        try:
            check_pip_install(argv)
        except AssertionError as exc:
            return f"{where}: {exc}"
        return None
    if command.slow:
        # Options parse and the missing input is named at once: exit 1, one line (not 2).
        with working_folder(empty):
            code, output = _cxr(argv[1:]) if name == "cxr" else _python(argv, empty)
        lines = [line for line in output.splitlines() if line.strip()]
        if code != 1 or len(lines) != 1 or not lines[0].startswith("error:"):
            return f"{where}: in an empty folder expected exit 1 and one error line; got {code}:\n{output}"
        return None
    if name == "cxr":
        with working_folder(folder):
            code, output = _cxr(argv[1:])
    elif name == "python":
        code, output = _python(argv, folder)
    else:
        return f"{where}: no rule to check {name!r} lines (tests/_readme.py)"
    return None if code == 0 else f"{where}: exit code {code}\n{output}"


def _python(argv: list[str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    return done.returncode, done.stdout + done.stderr


def _run_python(block: Block, folder: Path) -> str | None:
    """Run the snippet statement by statement; check every stated value."""
    tree = ast.parse(block.text)
    stated = {line: value for line, _, value in stated_values(block.text)}
    scope: dict[str, object] = {"__name__": "__readme__"}
    with working_folder(folder):
        for node in tree.body:
            where = f"line {block.line + node.lineno - 1}"
            try:
                if node.lineno in stated and isinstance(node, ast.Expr):
                    got = eval(compile(ast.Expression(node.value), block.name, "eval"), scope)
                    if got != stated[node.lineno]:
                        return f"{where}: gives {got!r}; the README says {stated[node.lineno]!r}"
                else:
                    exec(compile(ast.Module([node], []), block.name, "exec"), scope)
            except Exception:  # noqa: BLE001  (any failure of a README line is the finding)
                return f"{where}:\n{traceback.format_exc()}"
    return None


@pytest.fixture(scope="module")
def readme_results(tmp_path_factory) -> dict[str, str | None]:
    """Every block run in order in one prepared folder: block name -> failure or None."""
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("readme")
    empty = tmp_path_factory.mktemp("readme_empty")
    _reports(folder)
    _run(folder, _kermany(folder))
    _nih(folder)
    _covid(folder)
    _clone(folder)
    results: dict[str, str | None] = {}
    for block in BLOCKS:
        if block.language in SHELL:
            failure = None
            for command in commands(block):
                failure = _run_command(command, folder, empty)
                if failure:
                    break
        else:
            failure = _run_python(block, folder)
        results[block.name] = failure
    return results


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_block_runs_as_written(block: Block, readme_results) -> None:
    failure = readme_results[block.name]
    assert failure is None, f"{block.name}: {failure}"


# ----------------------------------------------------------------------------- the rules


def test_every_readme_has_blocks_and_every_block_is_checked() -> None:
    names = {b.path.name for b in BLOCKS}
    assert "README.md" in names and len([b for b in BLOCKS if b.path == ROOT / "README.md"]) >= 8
    for block in BLOCKS:
        if block.language in SHELL:
            assert commands(block), f"{block.name}: a shell block without a command"


def test_blocks_and_commands_are_parsed_as_a_shell_would(tmp_path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n```sh\n# takes minutes\ncxr train --labels a.csv \\\n    -o run  # a comment\n"
        "make demo   # note\n```\n\n```console\n$ cxr --version\ncxr 1.0\n```\n"
        "```text\nnot run\n```\n```python\nx = 1\nx + 1  # 2\nprint(x)  # a note\n```\n",
        encoding="utf-8",
    )
    found = blocks(doc)
    assert [(b.line, b.language) for b in found] == [(3, "sh"), (10, "console"), (17, "python")]
    sh = commands(found[0])
    assert [(c.argv, c.line, c.slow) for c in sh] == [
        (["cxr", "train", "--labels", "a.csv", "-o", "run"], 4, True),
        (["make", "demo"], 6, False),
    ]
    assert [c.argv for c in commands(found[1])] == [["cxr", "--version"]]
    assert [(line, value) for line, _, value in stated_values(found[2].text)] == [(2, 2)]


def test_install_and_make_lines_are_checked_not_run() -> None:
    check_pip_install(["pip", "install", "cxrkit[embed,xrv]"])
    with pytest.raises(AssertionError, match="no extra"):
        check_pip_install(["pip", "install", "cxrkit[gpu]"])
    with pytest.raises(AssertionError, match="the project is"):
        check_pip_install(["pip", "install", "cxrtools"])
    assert {"demo", "test", "bench"} <= makefile_targets()


def test_the_cxr_entry_point_is_installed() -> None:
    cxr = Path(sys.executable).with_name("cxr")
    done = subprocess.run([str(cxr), "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "cxr" in done.stdout.lower()


# ----------------------------------------------------------------------------- inline code


def _inline_spans(prefix: str) -> list[tuple[str, str]]:
    """(file:line, span) for every inline code span starting with ``prefix``."""
    found = []
    for path in (ROOT / "README.md", ROOT / "lexicons" / "README.md"):
        text = path.read_text(encoding="utf-8")
        # Blank out fenced blocks (keeping their lines); spans may wrap across lines.
        text = re.sub(
            r"^```.*?^```",
            lambda m: "\n" * m.group(0).count("\n"),
            text,
            flags=re.MULTILINE | re.DOTALL,
        )
        for match in re.finditer(r"`([^`]+)`", text):
            span = " ".join(match.group(1).split())
            if span.startswith(prefix):
                number = text.count("\n", 0, match.start()) + 1
                found.append((f"{path.relative_to(ROOT)}:{number}", span))
    return found


def _flags(words: list[str]) -> list[str]:
    return [w.split("=")[0] for w in words if w.startswith("-") and w not in ("-", "--")]


def test_inline_script_commands_name_scripts_and_flags_that_exist() -> None:
    spans = (
        _inline_spans("python ")
        + _inline_spans("pytest ")
        + [
            (w, f"python {s}")
            for w, s in _inline_spans("benchmarks/") + _inline_spans("examples/")
            if s.endswith(".py") or " " in s
        ]
    )
    assert spans
    for where, span in spans:
        words = span.split()
        if words[1] == "-m":
            module = words[2]
            assert importlib.util.find_spec(module), f"{where}: no module {module}"
            continue
        if words[0] == "pytest":
            assert (ROOT / words[1]).is_file(), f"{where}: {words[1]} does not exist"
            continue
        script = ROOT / words[1]
        assert script.is_file(), f"{where}: {words[1]} does not exist"
        source = script.read_text(encoding="utf-8")
        if "realdata.add_common_args" in source:  # the real-data benchmarks' shared options
            source += (ROOT / "benchmarks" / "realdata.py").read_text(encoding="utf-8")
        for flag in _flags(words[2:]):
            positive = "--" + flag.removeprefix("--no-")  # argparse.BooleanOptionalAction
            defined = f'"{flag}"' in source or (
                f'"{positive}"' in source and "BooleanOptionalAction" in source
            )
            assert defined, f"{where}: {words[1]} has no option {flag}"


def test_inline_cxr_commands_name_commands_and_flags_that_exist() -> None:
    import typer

    from cxrlabel.cli import app

    group = typer.main.get_command(app)
    spans = _inline_spans("cxr ")
    assert len(spans) > 20
    for where, span in spans:
        words = span.split()
        name = words[1]
        if name.startswith("-"):
            options = {o for p in group.params for o in (*p.opts, *p.secondary_opts)}
            options.add("--help")
            flags = _flags(words[1:])
        elif name in ("COMMAND", "..."):
            continue
        else:
            assert name in group.commands, f"{where}: no command cxr {name}"
            command = group.commands[name]
            options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            options.add("--help")
            flags = _flags(words[2:])
        missing = [f for f in flags if f not in options]
        assert missing == [], f"{where}: `{span}`: cxr {name} has no option {missing}"


class _NamesChecked(Exception):
    """Raised by the patched name check: the names were valid, stop before any work."""


@pytest.mark.parametrize("script", ["retrieval_real", "label_noise", "recipe_ablation"])
def test_inline_benchmark_commands_name_methods_and_rows_that_exist(script, monkeypatch) -> None:
    """A README line's ``--methods`` / ``--rows`` names exist in the script (renames included)."""
    import shlex

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    realdata = importlib.import_module("realdata")
    module = importlib.import_module(script)
    check = realdata.chosen_names

    def checked(*args, **kwargs):
        check(*args, **kwargs)
        raise _NamesChecked

    monkeypatch.setattr(realdata, "chosen_names", checked)
    monkeypatch.setattr(realdata, "start", lambda *args, **kwargs: Path("unused"))
    monkeypatch.setattr(realdata, "skipped", lambda spec: False)
    spans = [s for s in _inline_spans(f"python benchmarks/{script}.py ") if " --" in s[1]]
    assert spans, f"no README command of {script} with options"
    for where, span in spans:
        argv = [w.replace("DIR", "out") for w in shlex.split(span)[2:]]
        try:
            module.main(argv)
        except _NamesChecked:
            continue
        except SystemExit:
            pytest.fail(f"{where}: `{span}` names an unknown method or row (see stderr)")
        pytest.fail(f"{where}: `{span}` ran past the name check")
