"""The README's fenced code blocks as test cases: extraction and the rules that run them.

Every ```sh / ```bash / ```console / ```python block of the project's READMEs becomes one
case, named ``file:line``. Shell blocks are split into commands (``\\`` continuations
joined, ``#`` comments dropped; in ``console`` blocks only ``$ `` lines are commands). What a
command is decides how it is checked:

- ``cxr ...``: run through the ``cxr`` app in the README's working folder; exit code 0;
- a command under a comment line saying ``takes minutes``: run in an empty folder, where it
  must fail fast on its missing input with exit code 1 and a one-line error (its options
  parse; a usage error would exit 2);
- ``make TARGET``: the Makefile has the target; ``pip install SPEC``: the project and its
  extras exist in ``pyproject.toml`` (neither is run);
- ``python FILE ...``: run with this interpreter.

Any other command fails its case: a new kind of README line needs a rule here.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Markdown files whose blocks are tested (new READMEs under examples/ are picked up).
SHELL = {"sh", "bash", "console", "shell"}
LANGUAGES = SHELL | {"python"}
SLOW_MARK = "takes minutes"

_FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?(?:[<>=!~].*)?$")


def readme_files() -> list[Path]:
    """README.md, lexicons/README.md and every Markdown file under examples/."""
    files = [ROOT / "README.md", ROOT / "lexicons" / "README.md"]
    return files + sorted((ROOT / "examples").rglob("*.md"))


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts (the line after the fence) and its text."""

    path: Path
    line: int
    language: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path`` in a tested language, in document order."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    inside: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        fence = _FENCE.match(line)
        if inside is None:
            if fence:
                inside, body = (fence.group(2).lower(), number + 1), []
            continue
        if fence and not fence.group(2):
            if inside[0] in LANGUAGES:
                found.append(Block(path, inside[1], inside[0], "\n".join(body) + "\n"))
            inside = None
        else:
            body.append(line)
    if inside is not None:
        raise ValueError(f"{path}:{inside[1] - 1}: code fence never closed")
    return found


def all_blocks() -> list[Block]:
    return [block for path in readme_files() for block in blocks(path)]


@dataclass(frozen=True)
class Command:
    """One shell command of a block: its words, its line, and whether it is marked slow."""

    argv: list[str]
    line: int
    slow: bool

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def commands(block: Block) -> list[Command]:
    """The commands of a shell block (continuations joined, comments dropped)."""
    out: list[Command] = []
    slow = False
    pending: list[str] = []
    start = block.line
    for offset, raw in enumerate(block.text.splitlines()):
        line = raw.strip()
        if block.language == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if not pending:
            start = block.line + offset
            if not line or line.startswith("#"):
                slow = slow or SLOW_MARK in line
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        argv = shlex.split(" ".join(pending), comments=True)
        if argv:
            out.append(Command(argv, start, slow))
        pending, slow = [], False
    if pending:
        raise ValueError(f"{block.name}: a command ends with a line continuation")
    return out


def makefile_targets(path: Path = ROOT / "Makefile") -> set[str]:
    """Targets defined in the Makefile (``name:`` at the start of a line)."""
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.MULTILINE))


def project_extras(pyproject: Path = ROOT / "pyproject.toml") -> tuple[str, set[str]]:
    """The project's name and extras, from pyproject.toml (installed metadata before 3.11)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        from importlib.metadata import metadata

        info = metadata("cxrkit")
        return info["Name"], set(info.get_all("Provides-Extra") or [])
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return project["name"], set(project.get("optional-dependencies", {}))


def check_pip_install(argv: list[str]) -> None:
    """``pip install SPEC...``: every SPEC names this project and extras it defines."""
    name, extras = project_extras()
    specs = [a for a in argv[argv.index("install") + 1 :] if not a.startswith("-")]
    assert specs, f"{shlex.join(argv)}: nothing to install"
    for spec in specs:
        match = _REQUIREMENT.match(spec)
        assert match, f"{spec!r} is not a requirement"
        assert match.group(1) == name, f"{spec!r}: the project is {name}"
        named = {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
        assert named <= extras, f"{spec!r}: no extra {sorted(named - extras)}; has {sorted(extras)}"


@contextlib.contextmanager
def working_folder(path: Path) -> Iterator[None]:
    """``contextlib.chdir`` (Python 3.11+) for 3.10 too."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def stated_values(source: str) -> Iterator[tuple[int, str, object]]:
    """Expression statements followed by ``# <Python literal>``: what the README says they
    give, as (line, expression source, value)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in tree.body:
        if not isinstance(node, ast.Expr) or node.end_lineno != node.lineno:
            continue
        line = lines[node.lineno - 1]
        rest = line[node.end_col_offset :].strip()
        if not rest.startswith("#"):
            continue
        try:
            value = ast.literal_eval(rest[1:].strip())
        except (ValueError, SyntaxError):
            continue  # a prose comment, not a value
        yield node.lineno, ast.get_source_segment(source, node) or "", value
