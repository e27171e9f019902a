"""Any Python ``str`` in, at every labeller entry point; long text handled in linear time.

Surrogates (U+D800-U+DFFF) are replaced one for one by U+FFFD and counted; one bad string
never fails a batch. The linear-time rules are checked by their results here (scope bound,
long-run tokenisation, windowed evidence sentences); the timings are in
``benchmarks/label_scaling.py``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxrlabel import InputError, Labeler, label_file
from cxrlabel.assertion import MAX_SCOPE
from cxrlabel.cli import app
from cxrlabel.errors import ReplacedCharactersWarning
from cxrlabel.text import LONG_RUN, repair_surrogates, tokenize

_LAB = Labeler()
_WORDS = [
    "No",
    "pneumothorax",
    "effusion",
    "possible",
    "pneumonia",
    "heart",
    "enlarged",
    ".",
    ",",
    "FINDINGS:",
    "history of",
    "not",
    "seen",
    "\n\n",
    "versus",
    "edema",
    "§",
    "\ud800",
    "\udfff",
]
#: arbitrary characters, surrogates included (hypothesis leaves them out unless asked)
_ANY_CHAR = st.one_of(st.characters(), st.characters(categories=["Cs"]))
_TEXT = st.lists(
    st.one_of(st.sampled_from(_WORDS), st.text(_ANY_CHAR, max_size=12)), max_size=30
).map(" ".join)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReplacedCharactersWarning)
        return fn(*args, **kwargs)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), _TEXT), min_size=1, max_size=6))
def test_any_text_labels_without_crash_and_keeps_every_row(texts: list[str | None]) -> None:
    out = _quiet(_LAB.label, texts)
    assert len(out) == len(texts)
    values = out.to_numpy().ravel()
    assert set(values[~pd.isna(values)]) <= {1.0, 0.0, -1.0}
    array, status = _quiet(_LAB.label_array, texts)
    assert array.shape == (len(texts), len(_LAB.names)) and len(status) == len(texts)


@settings(max_examples=150, deadline=None)
@given(_TEXT)
def test_any_text_gives_evidence_whose_offsets_index_the_callers_string(text: str) -> None:
    for r in _quiet(_LAB.mentions, text, report_id="r"):
        # the caller's own string, except that a surrogate reads as U+FFFD in the evidence
        assert repair_surrogates(text[r["start"] : r["end"]])[0] == r["text"]
        json.dumps(r, ensure_ascii=False).encode("utf-8")  # writable as UTF-8


@settings(max_examples=100, deadline=None)
@given(_TEXT, st.sampled_from(["pneumothorax", "effusion", "\ud800", "edema"]))
def test_any_text_assertion_answers_or_says_the_target_is_missing(text: str, target: str) -> None:
    sentence = f"{text} {target}"
    try:
        status = _quiet(_LAB.assertion, sentence, target)
    except InputError as exc:  # a clear error, e.g. a target that is only punctuation
        assert "not found" in str(exc) or "non-empty" in str(exc)
    else:
        assert status in {"positive", "negative", "uncertain"}


def test_one_bad_string_does_not_fail_the_batch_and_is_counted() -> None:
    texts = ["Small left effusion.", "No pneumothorax \ud800 seen.", "\udfff\udfff", "Mild edema."]
    with pytest.warns(ReplacedCharactersWarning, match=r"3 character\(s\).* in 2 text\(s\)"):
        out = _LAB.label(texts)
    assert out["Pleural Effusion"].tolist()[0] == 1.0
    assert out["Pneumothorax"].tolist()[1] == 0.0
    assert out.loc[2].drop("No Finding").isna().all()  # a text without findings, labelled
    assert out["Edema"].tolist()[3] == 1.0
    record = _quiet(_LAB.mentions, texts[1])[0]
    assert record["sentence"] == "No pneumothorax \ufffd seen."
    assert texts[1][record["start"] : record["end"]] == "pneumothorax"


def test_cli_counts_surrogates_from_json_escapes_and_keeps_every_row(tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text(
        '{"id": "a", "text": "No pneumothorax \\ud800 here."}\n'
        '{"id": "b", "text": "Small effusion \\udfff\\udfff."}\n'
        '{"id": "c", "text": "Mild edema."}\n',
        encoding="utf-8",
    )
    out, ev = tmp_path / "o.csv", tmp_path / "ev.jsonl"
    result = CliRunner().invoke(app, ["label", str(src), "-o", str(out), "--evidence", str(ev)])
    assert result.exit_code == 0, result.output
    assert "2 reports had 3 characters that UTF-8 cannot encode" in result.output
    table = pd.read_csv(out)
    assert table["id"].tolist() == ["a", "b", "c"] and table["status"].tolist() == ["ok"] * 3
    assert table["Pneumothorax"].tolist()[0] == 0 and table["Pleural Effusion"].tolist()[1] == 1
    records = [json.loads(line) for line in ev.read_text(encoding="utf-8").splitlines()]
    assert {r["id"] for r in records} == {"a", "b", "c"}


def test_label_file_summary_counts_surrogates(tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text('{"id": "\\ud800x", "text": "No effusion \\udc00."}\n', encoding="utf-8")
    s = label_file(src, tmp_path / "o.csv", progress=False)
    assert (s.rows, s.surrogate_rows, s.surrogates) == (1, 1, 2)
    assert pd.read_csv(tmp_path / "o.csv")["id"].tolist() == ["\ufffdx"]


def test_bad_json_line_names_the_line(tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"r\.jsonl:2: not valid JSON"):
        label_file(src, tmp_path / "o.csv", progress=False)
    assert not (tmp_path / "o.csv").exists()


# --------------------------------------------------------------------------- long text


def test_long_runs_are_tokenised_with_the_text_kept_exactly() -> None:
    nlp = spacy.blank("en")
    short = "x" * LONG_RUN
    assert [t.text for t in tokenize(nlp.tokenizer, short + ".")] == [
        t.text for t in nlp(short + ".")
    ]
    text = "No effusion. " + "§" * 14_500 + " (pneumothorax) " + "ab-" * 40 + "  end"
    doc = tokenize(nlp.tokenizer, text)
    assert doc.text == text
    assert sum(t.text == "§" for t in doc) == 14_500
    assert "pneumothorax" in [t.text for t in doc]


def test_a_long_run_of_symbols_labels_like_the_rest_of_the_report() -> None:
    text = "Small right pneumothorax. " + "§" * 20_000 + " No pleural effusion."
    row = _LAB.label([text]).iloc[0]
    assert row["Pneumothorax"] == 1.0 and row["Pleural Effusion"] == 0.0


def test_scope_reaches_up_to_max_scope_tokens() -> None:
    def sentence(fillers: int) -> str:
        return "No " + "word " * fillers + "pneumothorax"

    near = _LAB.explain_assertion(sentence(MAX_SCOPE - 1), "pneumothorax")
    far = _LAB.explain_assertion(sentence(MAX_SCOPE), "pneumothorax")
    assert near == ("negative", "neg.pre.no") and far == ("positive", None)


def test_one_long_sentence_labels_every_mention() -> None:
    clause = "the lungs are well expanded and there is no pleural effusion and "
    text = clause * 2000 + "but a small pneumothorax is seen"  # ~130 KB without a full stop
    records = _LAB.mentions(text)
    assert sum(r["observation"] == "Pleural Effusion" for r in records) == 2000
    assert {r["assertion"] for r in records if r["observation"] == "Pleural Effusion"} == {
        "negative"
    }
    assert [r["assertion"] for r in records if r["observation"] == "Pneumothorax"] == ["positive"]


def test_evidence_sentence_of_a_long_sentence_is_a_window_around_the_mention() -> None:
    text = "Heart size normal. " + "effusion " * 500 + "pneumothorax and more words here."
    records = _LAB.mentions(text)
    assert records[0]["sentence"] == "Heart size normal."
    last = records[-1]
    assert last["observation"] == "Pneumothorax"
    assert last["sentence"].startswith("… effusion") and last["sentence"].endswith(
        "more words here."
    )
    assert len(last["sentence"]) <= 1_000 + len(last["text"]) + 4
    short = _LAB.mentions("Effusion " * 100 + "end.")  # a sentence under 1,000 characters
    assert short[0]["sentence"] == ("Effusion " * 100 + "end.").strip()
