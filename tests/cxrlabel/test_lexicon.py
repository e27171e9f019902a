"""The lexicon loader: bad YAML gives errors that name the file and line, and a user folder
overrides single files while the rest falls back to the packaged lexicons."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from cxrlabel import Labeler
from cxrlabel.errors import LexiconError
from cxrlabel.lexicon import default_lexicon_dir, load_cues, load_schema


def _write(folder: Path, rel: str, text: str) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


SCHEMA_HEAD = "schema: mine\nobservations:\n  - name: A\n"
CUE_HEAD = "list: extra\ncategory: negation\ndirection: forward\ncues:\n"


def _cue_error(tmp_path: Path, body: str) -> str:
    _write(tmp_path, "cues/extra.yaml", CUE_HEAD + body)
    with pytest.raises(LexiconError) as info:
        load_cues(tmp_path)
    return str(info.value)


def _schema_error(tmp_path: Path, body: str) -> tuple[Path, str]:
    """The file and the message of loading schema "mine" whose one observation A has
    ``body`` as its keys."""
    path = _write(tmp_path, "schemas/mine.yaml", SCHEMA_HEAD + body)
    with pytest.raises(LexiconError) as info:
        load_schema(path)
    return path, str(info.value)


def test_unknown_cue_key_names_file_line_and_suggests(tmp_path: Path) -> None:
    msg = _cue_error(
        tmp_path, "  - {id: neg.pre.extra, phrases: [nope]}\n  - {id: neg.pre.other, phrse: [x]}\n"
    )
    assert f"{tmp_path / 'cues' / 'extra.yaml'}:6:" in msg
    assert "unknown key 'phrse' (did you mean 'phrases'?)" in msg


def test_unknown_schema_key_suggests(tmp_path: Path) -> None:
    path, error = _schema_error(tmp_path, "    mentons: [a]\n")
    assert f"{path}:3: unknown key 'mentons' (did you mean 'mentions'?)" in error


def test_missing_phrases(tmp_path: Path) -> None:
    msg = _cue_error(tmp_path, "  - {id: neg.pre.extra}\n")
    assert (
        f"{tmp_path / 'cues' / 'extra.yaml'}:5:" in msg
        and "missing required key(s) ['phrases']" in msg
    )
    msg = _cue_error(tmp_path, "  - {id: neg.pre.extra, phrases: []}\n")
    assert ":5:" in msg and "cue 'neg.pre.extra' has no phrases" in msg


def test_observation_without_mentions(tmp_path: Path) -> None:
    path, error = _schema_error(tmp_path, "    mentions: []\n")
    assert f"{path}:3: observation 'A' has no mention phrases" in error


def test_bad_rule_id(tmp_path: Path) -> None:
    msg = _cue_error(tmp_path, "  - {id: Neg Extra, phrases: [x]}\n")
    assert ":5:" in msg and "rule id 'Neg Extra' must be dotted lower-case words" in msg


def test_duplicate_rule_id_names_both_places(tmp_path: Path) -> None:
    # neg.pre.no is already defined in the packaged negation_pre.yaml
    msg = _cue_error(tmp_path, "  - {id: neg.pre.no, phrases: [never]}\n")
    assert "rule id 'neg.pre.no' already used at" in msg
    assert "negation_pre.yaml:" in msg and f"{tmp_path / 'cues' / 'extra.yaml'}:5" in msg


def test_bad_direction(tmp_path: Path) -> None:
    msg = _cue_error(tmp_path, "  - {id: neg.pre.extra, phrases: [x], direction: sideways}\n")
    assert (
        ":5:" in msg and "direction must be one of ['forward', 'backward', 'both', 'none']" in msg
    )


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "cues/extra.yaml", CUE_HEAD + "  - {id: neg.pre.extra, phrases: [x\n  - oops: ]\n"
    )
    with pytest.raises(LexiconError, match=re.escape(str(path)) + r":\d+: invalid YAML"):
        load_cues(tmp_path)


def test_packaged_lexicons_load_and_ids_are_unique() -> None:
    cues = load_cues()
    ids = [c.rule_id for c in cues]
    assert len(ids) == len(set(ids)) and "neg.pre.no" in ids
    for name in ("chexpert", "chestxray14"):
        assert load_schema(name).observations


def test_user_folder_overrides_one_cue_file(tmp_path: Path) -> None:
    # the user's negation_pre.yaml drops "no"; every other list still comes from the package
    original = (default_lexicon_dir() / "cues" / "negation_pre.yaml").read_text(encoding="utf-8")
    _write(
        tmp_path,
        "cues/negation_pre.yaml",
        original.replace('phrases: ["no", "not", "nor"]', 'phrases: ["not", "nor"]'),
    )
    ours = Labeler("chexpert", lexicon_dir=tmp_path)
    packaged = Labeler("chexpert")
    text = ["No pneumothorax. Pneumonia has resolved."]
    assert packaged.label(text).iloc[0]["Pneumothorax"] == 0.0
    row = ours.label(text).iloc[0]
    assert row["Pneumothorax"] == 1.0  # "no" is no longer a cue
    assert row["Pneumonia"] == 0.0  # negation_post.yaml still from the package
    assert not math.isnan(row["Pneumonia"])


def test_cue_source_is_relative_for_packaged_files_and_full_for_overrides(tmp_path: Path) -> None:
    original = (default_lexicon_dir() / "cues" / "negation_pre.yaml").read_text(encoding="utf-8")
    _write(tmp_path, "cues/negation_pre.yaml", original)
    packaged = {c.rule_id: c.source for c in load_cues()}
    ours = {c.rule_id: c.source for c in load_cues(tmp_path)}
    line = next(i for i, t in enumerate(original.splitlines(), 1) if "id: neg.pre.no," in t)
    assert packaged["neg.pre.no"] == f"cues/negation_pre.yaml:{line}"
    assert ours["neg.pre.no"] == f"{(tmp_path / 'cues' / 'negation_pre.yaml').resolve()}:{line}"
    assert ours["neg.post.not_seen"] == packaged["neg.post.not_seen"]  # not overridden
