"""The on-disk cache of the phrase matcher's tokenised phrases (:mod:`cxrlabel.phrasecache`):
the same matcher and labels with or without it, invalidated by an edited lexicon, ignored
when broken or not writable."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import spacy

from cxrlabel import phrasecache
from cxrlabel.labeler import Labeler
from cxrlabel.lexicon import default_lexicon_dir

TEXTS = [
    "No pneumothorax. Mild cardiomegaly.",
    "Cannot exclude pneumonia. Heart size is upper-normal.",
    "Small left pleural effusion; the mediastinum is widened.",
    "Possible atelectasis at the left base vs. consolidation.",
    "ET tube 3.5 cm above the carina. Old fracture of the right 5th rib.",
]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of this test's own (``$XDG_CACHE_HOME/cxrkit``)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "cxrkit"


def _matcher(lab: Labeler) -> dict:
    """What the phrase matcher holds: key -> set of LOWER hash sequences."""
    return lab._index._phrases.__reduce__()[1][1]


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each phrase-cache read, whether it found the phrases."""
    seen: list[bool] = []
    load = phrasecache.load

    def recording(key: str, count: int):
        found = load(key, count)
        seen.append(found is not None)
        return found

    monkeypatch.setattr(phrasecache, "load", recording)
    return seen


def test_written_once_then_read_with_the_same_matcher_and_labels(cache, monkeypatch):
    reads = _reads(monkeypatch)
    cold = Labeler()
    files = list(cache.glob("phrases-*.json"))
    assert len(files) == 1 and reads == [False]
    warm = Labeler()
    assert reads == [False, True]
    reference = Labeler(nlp=spacy.blank("en"))  # the pipeline's tokenizer: no cache
    assert reads == [False, True]
    assert _matcher(cold) == _matcher(warm) == _matcher(reference)
    assert cold.label(TEXTS).equals(warm.label(TEXTS))
    assert warm.label(TEXTS).equals(reference.label(TEXTS))
    assert [warm.mentions(t) for t in TEXTS] == [reference.mentions(t) for t in TEXTS]
    data = json.loads(files[0].read_text())  # JSON: the key and the hash sequences
    assert set(data) == {"key", "lowers"} and files[0].name[len("phrases-") : -5] in data["key"]


def test_an_edited_lexicon_has_its_own_entry(cache, tmp_path, monkeypatch):
    Labeler()
    original = (default_lexicon_dir() / "schemas" / "chexpert.yaml").read_text(encoding="utf-8")
    edited = original.replace("      - widened mediastinum\n", "      - widened zorblax\n", 1)
    assert edited != original
    (tmp_path / "lex" / "schemas").mkdir(parents=True)
    (tmp_path / "lex" / "schemas" / "chexpert.yaml").write_text(edited, encoding="utf-8")
    reads = _reads(monkeypatch)
    ours = Labeler(lexicon_dir=tmp_path / "lex")
    assert reads == [False] and len(list(cache.glob("phrases-*.json"))) == 2
    again = Labeler(lexicon_dir=tmp_path / "lex")
    assert reads == [False, True]
    text = ["The widened zorblax. Widened zorblaxes."]
    assert ours.label(text).iloc[0]["Enlarged Cardiomediastinum"] == 1.0
    assert again.label(text).equals(ours.label(text))
    assert _matcher(again) == _matcher(Labeler(lexicon_dir=tmp_path / "lex", nlp=spacy.blank("en")))


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"key": "another", "lowers": []}',
        "KEY_WRONG_LENGTH",
        "KEY_NOT_INTEGERS",
        b"\xff\xfe binary",
    ],
)
def test_a_broken_entry_is_ignored_and_replaced(cache, monkeypatch, content):
    reference = Labeler()
    (path,) = cache.glob("phrases-*.json")
    data = json.loads(path.read_text())
    if content == "KEY_WRONG_LENGTH":
        content = json.dumps({"key": data["key"], "lowers": data["lowers"][:-1]})
    elif content == "KEY_NOT_INTEGERS":
        content = json.dumps({"key": data["key"], "lowers": [["x"]] * len(data["lowers"])})
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    reads = _reads(monkeypatch)
    lab = Labeler()
    assert reads == [False]
    assert _matcher(lab) == _matcher(reference)
    assert lab.label(TEXTS).equals(reference.label(TEXTS))
    assert json.loads(path.read_text()) == data  # written again


def test_an_unwritable_cache_folder_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    lab = Labeler()  # no error, no file
    assert blocker.read_text().startswith("a file")
    assert lab.label(TEXTS).equals(Labeler(nlp=spacy.blank("en")).label(TEXTS))
    assert phrasecache.save("0" * 64, [[1]]) is False


def test_cache_folder_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert phrasecache.cache_dir() == tmp_path / "xdg" / "cxrkit"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", "relative/path"):  # the XDG spec: a relative path is ignored
        monkeypatch.setenv("XDG_CACHE_HOME", unset)
        assert phrasecache.cache_dir() == tmp_path / "home" / ".cache" / "cxrkit"


def test_old_entries_are_pruned(cache):
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(phrasecache.KEEP + 3)]
    for i, key in enumerate(keys):
        assert phrasecache.save(key, [[i]])
        # older than the next one, whatever the file system's clock resolution
        os.utime(cache / f"phrases-{key[:32]}.json", (1_000_000 + i, 1_000_000 + i))
    kept = sorted(p.name for p in cache.glob("phrases-*.json"))
    assert kept == sorted(f"phrases-{key[:32]}.json" for key in keys[-phrasecache.KEEP :])
    assert phrasecache.load(keys[-1], 1) == [[len(keys) - 1]]
    assert not list(cache.glob(".phrases-*"))  # no temporary file left


def test_key_depends_on_the_phrases_and_their_order():
    key = phrasecache.cache_key(["a b", "c"])
    assert key == phrasecache.cache_key(["a b", "c"])
    assert len({key, phrasecache.cache_key(["a", "b c"]), phrasecache.cache_key(["c", "a b"])}) == 3


def test_a_pipeline_of_the_callers_never_uses_the_cache(cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the cache is for the labeller's own tokenizer only")

    monkeypatch.setattr(phrasecache, "load", refuse)
    monkeypatch.setattr(phrasecache, "save", refuse)
    nlp = spacy.blank("en")
    nlp.add_pipe("cxr_labeler")
    assert nlp("No pneumothorax.")._.cxr_labels["Pneumothorax"] == 0.0
    assert not cache.exists()
