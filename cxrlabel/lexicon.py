"""Lexicons: the only place that reads the YAML data in ``lexicons/``.

Four kinds of file, all validated here and turned into frozen dataclasses:

* ``schemas/<name>.yaml``: a label schema, i.e. observations with mention phrases and
  exclusion ("unmention") phrases, plus the No Finding rule.
* ``cues/<list>.yaml``: assertion cue lists (negation, uncertainty, pseudo-triggers, scope
  terminators), each cue with a stable rule id that the evidence output carries.
* ``sections.yaml``: report section titles and which sections hold findings.
* ``maps/<a>_to_<b>.yaml``: label maps between schemas (and fact tables such as MeSH terms).

Errors name the file and line. A user can pass their own folder with the same layout; any
file missing there falls back to the packaged default, so a radiologist can override one
list without copying all of them.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cxrlabel.errors import LexiconError

__all__ = [
    "Observation",
    "Schema",
    "Cue",
    "CueList",
    "SectionRules",
    "LabelMap",
    "Lexicon",
    "default_lexicon_dir",
    "lexicon_relative",
    "load_schema",
    "load_cues",
    "load_sections",
    "yaml_problem",
    "load_label_map",
    "load_lexicon",
    "available_schemas",
]

CUE_CATEGORIES = (
    "negation",
    "uncertainty",
    "probable",
    "borderline",
    "versus",
    "historical",
    "hypothetical",
    "pseudo",
    "terminate",
)
CUE_DIRECTIONS = ("forward", "backward", "both", "none")
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


# --------------------------------------------------------------------------- YAML reading


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's when PyYAML has it: several times faster, same results) that
    records the line of every mapping in a ``__line__`` key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def yaml_problem(path: str | os.PathLike[str], exc: yaml.YAMLError) -> tuple[str, str]:
    r"""Where a YAML parse error is (``PATH:LINE``) and what it is, for a one-line message.

    Examples
    --------
    >>> try:
    ...     yaml.safe_load("a: [1\nb: 2")
    ... except yaml.YAMLError as exc:
    ...     print(*yaml_problem("c.yaml", exc), sep=" | ")
    c.yaml:2 | expected ',' or ']', but got ':'
    """
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    return where, str(getattr(exc, "problem", None) or exc)


def _read_yaml(path: Path, *, allowed: set[str], required: set[str]) -> dict[str, Any]:
    """A lexicon file's top-level mapping, its keys checked before any value is read."""
    if not path.is_file():
        raise LexiconError(f"{path}: lexicon file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        where, problem = yaml_problem(path, exc)
        raise LexiconError(f"{where}: invalid YAML ({problem})") from None
    except UnicodeDecodeError as exc:
        raise LexiconError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if not isinstance(data, dict):
        raise LexiconError(
            f"{path}:1: expected a mapping at the top level, got {type(data).__name__}"
        )
    _check_keys(path, data, allowed, required)
    return data


def _where(path: Path, node: dict[str, Any] | None) -> str:
    line = node.get("__line__") if isinstance(node, dict) else None
    return f"{path}:{line}" if line else str(path)


def _check_keys(path: Path, node: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    keys = {k for k in node if k != "__line__"}
    unknown = sorted(keys - allowed)
    if unknown:
        hints = [difflib.get_close_matches(k, allowed, n=1) for k in unknown]
        hint = "; ".join(
            f"'{k}' (did you mean '{h[0]}'?)" if h else f"'{k}'"
            for k, h in zip(unknown, hints, strict=True)
        )
        raise LexiconError(f"{_where(path, node)}: unknown key {hint}; allowed: {sorted(allowed)}")
    missing = sorted(required - keys)
    if missing:
        raise LexiconError(f"{_where(path, node)}: missing required key(s) {missing}")


def _phrase_list(path: Path, node: dict[str, Any], key: str) -> tuple[str, ...]:
    value = node.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LexiconError(f"{_where(path, node)}: '{key}' must be a list of non-empty strings")
    return tuple(" ".join(v.lower().split()) for v in value)


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class Observation:
    """One label of a schema and the phrases that mention it.

    A phrase may contain ``...`` between words to allow up to ``gap`` intervening tokens in
    the same sentence (``heart ... enlarged`` matches "heart is mildly enlarged").
    Anchors are neutral mentions ("heart size") that set the label only when a negation or
    uncertainty cue applies to them.
    """

    name: str
    mentions: tuple[str, ...]
    unmentions: tuple[str, ...] = ()
    anchors: tuple[str, ...] = ()
    gap: int = 4


@dataclass(frozen=True)
class Schema:
    """A label schema: ordered observations plus the No Finding rule."""

    name: str
    observations: tuple[Observation, ...]
    no_finding: str | None = None
    no_finding_ignores: tuple[str, ...] = ()
    source: str = ""

    @property
    def names(self) -> list[str]:
        """Observation names in column order (No Finding included where the schema has it)."""
        obs = [o.name for o in self.observations]
        return ([self.no_finding] if self.no_finding else []) + obs

    def closest(self, name: str) -> list[str]:
        """Known names closest to ``name`` (for error messages)."""
        return difflib.get_close_matches(name, self.names, n=3, cutoff=0.4)


@dataclass(frozen=True)
class Cue:
    """A cue phrase set with one stable rule id, e.g. ``unc.pre.cannot_exclude``.

    ``source`` is where the cue is defined, ``file:line``: relative to the packaged lexicon
    folder (``cues/negation_pre.yaml:12``), or the full path of a user's override file.
    """

    rule_id: str
    category: str
    direction: str
    phrases: tuple[str, ...]
    window: int | None = None
    source: str = ""


@dataclass(frozen=True)
class CueList:
    """All cues of one file."""

    name: str
    cues: tuple[Cue, ...]


@dataclass(frozen=True)
class SectionRules:
    """Section titles (lower case, without the colon) mapped to canonical section names."""

    titles: dict[str, str]
    skip: tuple[str, ...]


@dataclass(frozen=True)
class LabelMap:
    """How one schema's names map to another's; a source may map to several targets."""

    source: str
    target: str
    mapping: dict[str, tuple[str, ...]]
    path: str = ""

    def targets_of(self, name: str) -> tuple[str, ...]:
        return self.mapping.get(name, ())

    def sources_of(self, target: str) -> list[str]:
        return [s for s, ts in self.mapping.items() if target in ts]


@dataclass(frozen=True)
class Lexicon:
    """Everything the labeller needs: a schema, the cue lists and section rules."""

    schema: Schema
    cues: tuple[Cue, ...]
    sections: SectionRules
    folder: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- locating files


def default_lexicon_dir() -> Path:
    """The packaged ``lexicons/`` folder (installed as ``cxrlabel.lexicons``)."""
    try:
        path = Path(str(resources.files("cxrlabel.lexicons")))
        if (path / "schemas").is_dir():
            return path
    except ModuleNotFoundError:  # running from a source tree that was not installed
        pass
    return Path(__file__).resolve().parents[1] / "lexicons"


def _find(rel: str, lexicon_dir: str | Path | None) -> Path:
    if lexicon_dir is not None:
        folder = Path(lexicon_dir)
        if not folder.is_dir():
            raise LexiconError(f"{folder}: lexicon folder not found")
        candidate = folder / rel
        if candidate.is_file():
            return candidate
    return default_lexicon_dir() / rel


def lexicon_relative(path: Path) -> str:
    """``path`` relative to the packaged lexicon folder when it lies there, else in full.

    Examples
    --------
    >>> lexicon_relative(default_lexicon_dir() / "cues" / "negation_pre.yaml")
    'cues/negation_pre.yaml'
    """
    try:
        return Path(path).resolve().relative_to(default_lexicon_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def available_schemas(lexicon_dir: str | Path | None = None) -> list[str]:
    """Names of the schemas in the packaged folder (and ``lexicon_dir`` when given)."""
    folders = [default_lexicon_dir() / "schemas"]
    if lexicon_dir is not None:
        folders.append(Path(lexicon_dir) / "schemas")
    return sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")})


# --------------------------------------------------------------------------- loaders


def _schema_path(name_or_path: str | Path, lexicon_dir: str | Path | None) -> Path:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        return Path(text)
    path = _find(f"schemas/{text}.yaml", lexicon_dir)
    if not path.is_file():
        known = available_schemas(lexicon_dir)
        close = difflib.get_close_matches(text, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise LexiconError(
            f"unknown schema '{text}'{hint}; known schemas: {known}, or pass a .yaml path"
        )
    return path


@lru_cache(maxsize=32)
def _load_schema_cached(path: Path) -> Schema:
    data = _read_yaml(
        path,
        allowed={"schema", "description", "no_finding", "observations", "default_gap"},
        required={"schema", "observations"},
    )
    default_gap = data.get("default_gap", 4)
    obs_nodes = data["observations"]
    if not isinstance(obs_nodes, list) or not obs_nodes:
        raise LexiconError(f"{_where(path, data)}: 'observations' must be a non-empty list")
    observations: list[Observation] = []
    seen: set[str] = set()
    for node in obs_nodes:
        if not isinstance(node, dict):
            raise LexiconError(
                f"{path}: each observation must be a mapping with 'name' and 'mentions'"
            )
        _check_keys(
            path,
            node,
            {"name", "mentions", "unmentions", "anchors", "gap", "note"},
            {"name", "mentions"},
        )
        name = node["name"]
        if not isinstance(name, str) or not name.strip():
            raise LexiconError(f"{_where(path, node)}: 'name' must be a non-empty string")
        if name in seen:
            raise LexiconError(f"{_where(path, node)}: observation '{name}' is defined twice")
        seen.add(name)
        mentions = _phrase_list(path, node, "mentions")
        if not mentions:
            raise LexiconError(f"{_where(path, node)}: observation '{name}' has no mention phrases")
        gap = node.get("gap", default_gap)
        if not isinstance(gap, int) or gap < 0:
            raise LexiconError(f"{_where(path, node)}: 'gap' must be a non-negative integer")
        observations.append(
            Observation(
                name=name,
                mentions=mentions,
                unmentions=_phrase_list(path, node, "unmentions"),
                anchors=_phrase_list(path, node, "anchors"),
                gap=gap,
            )
        )
    nf = data.get("no_finding")
    nf_name, nf_ignores = None, ()
    if nf is not None:
        if not isinstance(nf, dict):
            raise LexiconError(
                f"{_where(path, data)}: 'no_finding' must be a mapping with 'name' and 'ignore'"
            )
        _check_keys(path, nf, {"name", "ignore"}, {"name"})
        nf_name = nf["name"]
        nf_ignores = tuple(nf.get("ignore") or ())
        unknown = [n for n in nf_ignores if n not in seen]
        if unknown:
            raise LexiconError(
                f"{_where(path, nf)}: no_finding.ignore names unknown observations {unknown}"
            )
        if nf_name in seen:
            raise LexiconError(
                f"{_where(path, nf)}: '{nf_name}' is both No Finding and an observation"
            )
    return Schema(
        name=str(data["schema"]),
        observations=tuple(observations),
        no_finding=nf_name,
        no_finding_ignores=nf_ignores,
        source=str(path),
    )


def load_schema(
    name_or_path: str | Path = "chexpert", lexicon_dir: str | Path | None = None
) -> Schema:
    """Load a label schema by name (``chexpert``, ``chestxray14``) or from a YAML path.

    Examples
    --------
    >>> schema = load_schema("chexpert")
    >>> schema.names[:3]
    ['No Finding', 'Enlarged Cardiomediastinum', 'Cardiomegaly']
    """
    return _load_schema_cached(_schema_path(name_or_path, lexicon_dir).resolve())


@lru_cache(maxsize=64)
def _load_cue_file(path: Path) -> CueList:
    data = _read_yaml(
        path,
        allowed={"list", "description", "category", "direction", "window", "cues"},
        required={"list", "category", "direction", "cues"},
    )
    category, direction = data["category"], data["direction"]
    if category not in CUE_CATEGORIES:
        raise LexiconError(
            f"{_where(path, data)}: category must be one of {list(CUE_CATEGORIES)}, got '{category}'"
        )
    if direction not in CUE_DIRECTIONS:
        raise LexiconError(
            f"{_where(path, data)}: direction must be one of {list(CUE_DIRECTIONS)}, got '{direction}'"
        )
    default_window = data.get("window")
    if not isinstance(data["cues"], list):
        raise LexiconError(
            f"{_where(path, data)}: 'cues' must be a list of {{id, phrases}} entries"
        )
    cues = []
    for node in data["cues"]:
        if not isinstance(node, dict):
            raise LexiconError(
                f"{path}: each cue must be a mapping with 'id' and 'phrases', got {node!r}"
            )
        _check_keys(path, node, {"id", "phrases", "direction", "window", "note"}, {"id", "phrases"})
        rule_id = node["id"]
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
            raise LexiconError(
                f"{_where(path, node)}: rule id {rule_id!r} must be dotted lower-case words, e.g. 'neg.pre.no'"
            )
        cue_dir = node.get("direction", direction)
        if cue_dir not in CUE_DIRECTIONS:
            raise LexiconError(
                f"{_where(path, node)}: direction must be one of {list(CUE_DIRECTIONS)}"
            )
        window = node.get("window", default_window)
        if window is not None and (not isinstance(window, int) or window < 1):
            raise LexiconError(f"{_where(path, node)}: 'window' must be a positive integer")
        phrases = _phrase_list(path, node, "phrases")
        if not phrases:
            raise LexiconError(f"{_where(path, node)}: cue '{rule_id}' has no phrases")
        source = f"{lexicon_relative(path)}:{node['__line__']}"
        cues.append(Cue(rule_id, category, cue_dir, phrases, window, source))
    return CueList(str(data["list"]), tuple(cues))


def load_cues(lexicon_dir: str | Path | None = None) -> tuple[Cue, ...]:
    """Load every cue list (packaged defaults, each overridable by a file of the same name).

    Rule ids must be unique across all lists.
    """
    names = sorted(p.name for p in (default_lexicon_dir() / "cues").glob("*.yaml"))
    if lexicon_dir is not None and (Path(lexicon_dir) / "cues").is_dir():
        names = sorted(set(names) | {p.name for p in (Path(lexicon_dir) / "cues").glob("*.yaml")})
    cues: list[Cue] = []
    seen: dict[str, str] = {}
    for name in names:
        for cue in _load_cue_file(_find(f"cues/{name}", lexicon_dir).resolve()).cues:
            if cue.rule_id in seen:
                raise LexiconError(
                    f"{cue.source}: rule id '{cue.rule_id}' already used at {seen[cue.rule_id]}"
                )
            seen[cue.rule_id] = cue.source
            cues.append(cue)
    return tuple(cues)


@lru_cache(maxsize=16)
def _load_sections_file(path: Path) -> SectionRules:
    data = _read_yaml(path, allowed={"sections", "skip", "description"}, required={"sections"})
    titles: dict[str, str] = {}
    sections = data["sections"]
    if not isinstance(sections, dict):
        raise LexiconError(
            f"{_where(path, data)}: 'sections' must map a section name to its titles"
        )
    for canonical, variants in sections.items():
        if canonical == "__line__":
            continue
        if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
            raise LexiconError(
                f"{_where(path, sections)}: titles of section '{canonical}' must be a list of strings"
            )
        for v in variants:
            titles[" ".join(v.lower().split())] = str(canonical)
    skip = tuple(data.get("skip") or ())
    unknown = [s for s in skip if s not in sections]
    if unknown:
        raise LexiconError(f"{_where(path, data)}: 'skip' names unknown sections {unknown}")
    return SectionRules(titles=titles, skip=skip)


def load_sections(lexicon_dir: str | Path | None = None) -> SectionRules:
    """Load the section titles (``sections.yaml``)."""
    return _load_sections_file(_find("sections.yaml", lexicon_dir).resolve())


@lru_cache(maxsize=16)
def _load_map_file(path: Path) -> LabelMap:
    data = _read_yaml(
        path,
        allowed={"source", "target", "description", "map", "notes"},
        required={"source", "target", "map"},
    )
    raw = data["map"]
    if not isinstance(raw, dict):
        raise LexiconError(f"{_where(path, data)}: 'map' must map source names to target name(s)")
    mapping: dict[str, tuple[str, ...]] = {}
    for src, tgt in raw.items():
        if src == "__line__":
            continue
        if tgt is None:
            mapping[str(src)] = ()
        elif isinstance(tgt, str):
            mapping[str(src)] = (tgt,)
        elif isinstance(tgt, list) and all(isinstance(t, str) for t in tgt):
            mapping[str(src)] = tuple(tgt)
        else:
            raise LexiconError(
                f"{_where(path, raw)}: target of '{src}' must be a name, a list of names or null"
            )
    return LabelMap(str(data["source"]), str(data["target"]), mapping, str(path))


def load_label_map(name_or_path: str | Path, lexicon_dir: str | Path | None = None) -> LabelMap:
    """Load a label map by name (``chestxray14_to_chexpert``) or YAML path.

    Examples
    --------
    >>> m = load_label_map("chestxray14_to_chexpert")
    >>> m.targets_of("Effusion")
    ('Pleural Effusion',)
    """
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return _load_map_file(Path(text).resolve())
    path = _find(f"maps/{text}.yaml", lexicon_dir)
    if not path.is_file():
        known = sorted(p.stem for p in (default_lexicon_dir() / "maps").glob("*.yaml"))
        raise LexiconError(f"unknown label map '{text}'; known maps: {known}, or pass a .yaml path")
    return _load_map_file(path.resolve())


def load_lexicon(schema: str | Path = "chexpert", lexicon_dir: str | Path | None = None) -> Lexicon:
    """Load a schema with the cue lists and section rules that go with it."""
    return Lexicon(
        schema=load_schema(schema, lexicon_dir),
        cues=load_cues(lexicon_dir),
        sections=load_sections(lexicon_dir),
        folder=str(lexicon_dir or default_lexicon_dir()),
    )
