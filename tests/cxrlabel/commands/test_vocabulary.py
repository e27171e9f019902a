"""One option vocabulary across every ``cxr`` command, and only flags that exist.

The whole app (cxrlabel's and cxrembed's commands) is inspected through click: every flag
named in the package's messages, docstrings and READMEs must belong to some command; shared
options have one spelling and one help text; defaults are shown; old spellings are hidden
but work; each command is a thin function wrapped once for errors.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from cxrlabel.cli import app, build_app
from cxrlabel.commands.options import DEVICE_HELP, ID_COL_HELP, JOBS_HELP, UNCERTAIN_HELP

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()
# Flags of other tools that the docs mention, with a word that must be on the same line.
FOREIGN = {
    "--no-deps": "pip",
    "--nproc-per-node": "torchrun",
    "--no-python": "torchrun",
    "--raw": "gdcmconv",
    "--reports": "label.py",  # the CheXpert labeller's --reports_path (README)
}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def _commands() -> dict:
    group = get_command(app)
    return {name: group.commands[name] for name in sorted(group.commands)}


def _options(command) -> dict[str, object]:
    return {
        opt: p
        for p in command.params
        for opt in (*p.opts, *p.secondary_opts)
        if opt.startswith("-")
    }


def _all_flags() -> set[str]:
    flags = {"--help", "--version"}
    for command in _commands().values():
        flags |= {o for o in _options(command) if o.startswith("--")}
    return flags


def _sources() -> list[Path]:
    return [
        *sorted(ROOT.glob("cxrlabel/**/*.py")),
        *sorted(ROOT.glob("cxrembed/**/*.py")),
        ROOT / "README.md",
        ROOT / "lexicons" / "README.md",
    ]


def _script_flags(text: str) -> set[str]:
    """The flags a script defines itself (argparse; ``--no-x`` for a BooleanOptionalAction)."""
    flags = set(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", text))
    negated = re.findall(
        r"add_argument\(\s*\"--([a-z0-9-]+)\"[^)]*BooleanOptionalAction", text, flags=re.S
    )
    return flags | {f"--no-{name}" for name in negated}


def test_every_flag_in_messages_docstrings_and_readmes_exists():
    known = _all_flags()
    scripts = {
        f"{p.parent.name}/{p.name}": _script_flags(p.read_text(encoding="utf-8"))
        for folder in ("benchmarks", "examples")
        for p in (ROOT / folder).glob("*.py")
    }
    unknown = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        own = _script_flags(text)
        for number, line in enumerate(text.splitlines(), start=1):
            named = set().union(*(flags for script, flags in scripts.items() if script in line))
            for flag in FLAG.findall(line):
                if flag in known | own | named or FOREIGN.get(flag, "\0") in line:
                    continue
                unknown.append(f"{path.relative_to(ROOT)}:{number}: {flag}")
    assert not unknown, "flags that no cxr command has:\n" + "\n".join(unknown)


def test_the_flag_check_would_catch_a_made_up_flag():
    assert "--embeddings-id-col" not in _all_flags() and "--overwrite" in _all_flags()


def test_every_command_has_output_quiet_and_shows_its_defaults():
    for name, command in _commands().items():
        options = _options(command)
        assert {"--output", "-o", "--quiet", "-q"} <= set(options), name
        for param in command.params:
            if getattr(param, "hidden", False) or not param.opts[0].startswith("--"):
                continue
            if param.default not in (None, False, ()) and not param.is_flag:
                assert param.show_default is not False, (name, param.opts)


@pytest.mark.parametrize(
    ("flag", "text"),
    [
        ("--id-col", ID_COL_HELP),
        ("--jobs", JOBS_HELP),
        ("--uncertain", UNCERTAIN_HELP),
        ("--device", DEVICE_HELP),
    ],
)
def test_shared_options_have_one_help_text(flag, text):
    helps = {name: _options(c)[flag].help for name, c in _commands().items() if flag in _options(c)}
    assert len(helps) >= 2 and set(helps.values()) == {text}, helps


def test_old_spellings_are_hidden():
    hidden = {
        opt
        for c in _commands().values()
        for p in c.params
        if getattr(p, "hidden", False)
        for opt in p.opts
    }
    assert {
        "--out",
        "--num-workers",
        "--workers",
        "--show-cols",
        "--uncertain-as",
        "--no-map",
    } <= hidden
    assert "--map" in _options(_commands()["validate"])  # the label map keeps its name
    for name in ("train", "embed", "evaluate"):
        text = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"}).output
        assert "--num-workers" not in text and "--workers" not in text
        assert "--show-cols" not in text and "--no-map" not in text


def test_commands_are_thin_and_wrapped_once():
    """Options -> one library call -> print: at most 40 lines of body (the signature, one
    option per line, and the docstring not counted)."""
    for name, command in _commands().items():
        assert getattr(command.callback, "__cxr_command__", False), name
        function = inspect.unwrap(command.callback)
        lines, first = inspect.getsourcelines(function)
        node = ast.parse(textwrap.dedent("".join(lines))).body[0]
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        length = body[-1].end_lineno - body[0].lineno + 1
        assert length <= 40, (name, length)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("cxrkit ")


def test_labeller_app_alone_has_the_labeller_commands():
    group = get_command(build_app(plugins=False))
    assert sorted(group.commands) == ["label", "validate"]
