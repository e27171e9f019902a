"""A fixed corpus of varied reports written for the engine tests, and snapshots of what the
labeller makes of it, so that speed work can be checked to change nothing.

The corpus is built from the packaged lexicon's own phrases (every mention, anchor,
unmention and cue phrase appears), combined by a seeded generator into sentences with cues
before and after mentions, terminators, gapped phrases with fillers, section titles,
repeated structures, lists and long sentences, plus hand-written edge cases. The texts are
stored with the outputs in ``data/engine_reference.json.gz``, so the check never depends on
the generator being reproducible.

Regenerate (only when a change of output is intended and reviewed)::

    .venv/bin/python -m tests.cxrlabel.engine_reference
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).with_name("data") / "engine_reference.json.gz"

#: Labeller configurations whose outputs are snapshotted (name -> Labeler keyword arguments).
CONFIGS: dict[str, dict[str, Any]] = {
    "chexpert": {},
    "chexpert-positive-hedges": {
        "borderline": "positive",
        "probable": "positive",
        "versus": "positive",
        "sections": ["findings", "impression"],
    },
    "chestxray14": {"schema": "chestxray14", "precedence": ("uncertain", "positive", "negative")},
}

_FILLERS = ["mildly", "is", "slightly", "now", "again", "the", "very", "somewhat", "a", "bit"]
_SECTION_TITLES = [
    "FINDINGS:",
    "IMPRESSION:",
    "INDICATION:",
    "HISTORY:",
    "COMPARISON:",
    "Technique:",
    "CONCLUSION:",
]
_JOINERS = [
    " and ",
    ", ",
    " or ",
    " with ",
    " but ",
    "; ",
    " as well as ",
    " and ",
    ", ",
    " versus ",
]

_EDGE_CASES = [
    "",
    "   \n\t  ",
    "No pneumothorax.",
    "no",
    ".",
    "...",
    "FINDINGS:",
    "FINDINGS: IMPRESSION:",
    "Heart size is normal. Lungs are clear. No pleural effusion or pneumothorax.",
    "Pneumonia? Effusion!",
    "Cannot exclude pneumonia. No pleural effusion.",
    "No findings to suggest pneumonia.",
    "Possible effusion, without pneumothorax.",
    "1) Cardiomegaly. 2) No edema 3) possible atelectasis",
    "Heart is not enlarged. The heart is mildly enlarged. Heart size upper limits of normal.",
    "History of pneumonia, now resolved. Unchanged small effusion.",
    "Evaluate for pneumothorax. If clinically indicated, CT to exclude mass.",
    "Atelectasis versus scarring at the left base. Probable pneumonia. Borderline cardiomegaly.",
    "INDICATION: rule out pneumonia.\nFINDINGS: Lungs are clear.\n\nIMPRESSION: No acute disease.",
    "Mediastinum ... widened. Heart ... enlarged; effusion (not seen) but edema present.",
    "PNEUMOTHORAX. NO PNEUMOTHORAX. no   pneumothorax .",
    "Pleural effusions are not seen, atelectases and opacities are noted bilaterally.",
    "Air-space opacity; airspace opacities; air space disease.",
    "Lung  opacity\u00a0in the right lower lobe \u2014 likely pneumonia.",
    "Ce n'est pas une pneumonie. 肺炎なし. Pneumothorax: none.",
    "XXXX XXXX XXXX. No XXXX pneumothorax.",
    "§" * 200,
    "no " * 300 + "pneumothorax.",
    "effusion " * 300,
    "There is no evidence of pneumothorax, effusion, consolidation, edema, cardiomegaly, "
    "atelectasis, fracture or pneumonia " * 8,
    "Heart size normal\n\nLungs clear\n\nNo effusion",
    "IMPRESSION: 1. Stable cardiomegaly. 2. No pneumothorax. FINDINGS: Pacemaker in place.",
]


def _phrases(lexicon) -> tuple[list[str], list[str], dict[str, list[str]]]:
    mentions, anchors = [], []
    for obs in lexicon.schema.observations:
        mentions.extend(obs.mentions)
        mentions.extend(obs.unmentions)
        anchors.extend(obs.anchors)
    cues: dict[str, list[str]] = {}
    for cue in lexicon.cues:
        cues.setdefault(f"{cue.category}:{cue.direction}", []).extend(cue.phrases)
    return mentions, anchors, cues


def _render(phrase: str, rng: random.Random) -> str:
    """A lexicon phrase as report text: gaps filled with 0-5 words, case and plural varied."""
    parts = [p.strip() for p in phrase.split("...")]
    out = parts[0]
    for part in parts[1:]:
        fill = " ".join(rng.choice(_FILLERS) for _ in range(rng.randint(0, 5)))
        out = f"{out} {fill} {part}" if fill else f"{out} {part}"
    roll = rng.random()
    if roll < 0.1:
        out = out.upper()
    elif roll < 0.3:
        out = out.capitalize()
    if rng.random() < 0.15 and out[-1:].isalpha():
        out += "s"
    return out


def _sentence(
    rng: random.Random, mentions: list[str], anchors: list[str], cues: dict[str, list[str]]
) -> str:
    pool = mentions if rng.random() < 0.8 else anchors
    targets = [_render(rng.choice(pool), rng) for _ in range(rng.choices([1, 2, 3], [6, 3, 1])[0])]
    body = targets[0]
    for t in targets[1:]:
        body += rng.choice(_JOINERS) + t
    keys = sorted(cues)
    for _ in range(rng.choices([0, 1, 2, 3], [2, 5, 3, 1])[0]):
        key = rng.choice(keys)
        phrase = rng.choice(cues[key])
        if key.endswith(":backward") or (key.endswith(":both") and rng.random() < 0.5):
            body = f"{body} {phrase}"
        else:
            body = f"{phrase} {body}"
    if rng.random() < 0.2:
        body += f" {rng.choice(_FILLERS)} " + _render(rng.choice(mentions), rng)
    end = rng.choices([".", ". ", "?", "!", "\n\n", "", ";"], [10, 2, 1, 1, 1, 1, 1])[0]
    return body[0].upper() + body[1:] + end


def build_corpus(lexicon, n: int = 600, seed: int = 20261201) -> list[str]:
    """``n`` generated reports from the lexicon's phrases, then the hand-written edge cases."""
    rng = random.Random(seed)
    mentions, anchors, cues = _phrases(lexicon)
    texts = []
    for i in range(n):
        sentences = [_sentence(rng, mentions, anchors, cues) for _ in range(rng.randint(1, 9))]
        if rng.random() < 0.4:
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(sentences) + 1)
                sentences.insert(at, "\n" + rng.choice(_SECTION_TITLES) + " ")
        if i % 97 == 0:  # an occasional very long sentence (no sentence end for a while)
            sentences = [s.rstrip(".?!; \n") for s in sentences] * 6
        texts.append(" ".join(sentences))
    return texts + _EDGE_CASES


def short_hash(text: str) -> str:
    """12 hex digits of SHA-256: an exact comparison that does not store the text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


#: Evidence fields added after the reference was made: the source column and offsets into
#: it. For a text that is not joined from columns they are None and ``start``/``end``
#: (checked by :func:`as_in_reference`); tests/cxrlabel/test_evidence_columns.py covers the rest.
COLUMN_FIELDS = ("column", "column_start", "column_end")


def as_in_reference(record: dict[str, Any]) -> dict[str, Any]:
    """An evidence record with the fields the reference holds, after checking the others."""
    assert (record["column"], record["column_start"], record["column_end"]) == (
        None,
        record["start"],
        record["end"],
    ), record
    return {k: v for k, v in record.items() if k not in COLUMN_FIELDS}


def compact(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence records with the (long, repetitive) ``sentence`` field replaced by its hash."""
    return [{**as_in_reference(r), "sentence": short_hash(r["sentence"])} for r in records]


def snapshot(labeler, texts: Sequence[Any], full: bool = True) -> dict[str, Any]:
    """What the labeller makes of ``texts``: values, statuses and evidence records.

    Values are written as strings (``1``, ``0``, ``-1``, blank) so that the JSON compares
    exactly. With ``full``, evidence records are kept whole except the sentence
    (:func:`compact`); otherwise one hash of each text's records (:func:`digest_rows`).
    """
    ids = [f"t{i}" for i in range(len(texts))]
    values, status, records = labeler.label_evidence(list(texts), ids)
    table = [",".join("" if v != v else str(int(v)) for v in row) for row in values.tolist()]
    evidence = compact(records) if full else digest_records(ids, records)
    return {"values": table, "status": list(status), "evidence": evidence}


def digest_records(ids: Sequence[str], records: Sequence[dict[str, Any]]) -> list[str]:
    """One hash per id of its evidence records, in the order of ``ids``."""
    by_id: dict[str, list[dict[str, Any]]] = {str(i): [] for i in ids}
    for r in records:
        by_id[str(r["id"])].append(as_in_reference(r))
    return [short_hash(json.dumps(by_id[str(i)], ensure_ascii=False, sort_keys=True)) for i in ids]


def assertion_cases(texts: Sequence[str], lexicon, limit: int = 300) -> list[tuple[str, str]]:
    """(sentence, target) pairs for ``Labeler.assertion``: first sentences of reports whose
    lower-cased text contains a single-segment mention phrase."""
    phrases = sorted(
        {p for o in lexicon.schema.observations for p in o.mentions if "..." not in p},
        key=len,
        reverse=True,
    )
    cases = []
    for text in texts:
        first = text.split(".")[0].strip()
        low = first.lower()
        for p in phrases:
            if p in low.split(" ") or f" {p} " in f" {low} ":
                cases.append((first, p))
                break
        if len(cases) >= limit:
            break
    return cases


def digest_rows(labeler, ids: Sequence[Any], texts: Sequence[Any]) -> dict[str, str]:
    """Per report id, a short hash of its labels row, status and evidence records.

    Used for the real IU reports, whose text must not be committed: a digest says whether
    anything changed and in which report, without holding any of its words.
    """
    snap = snapshot(labeler, texts, full=False)
    return {
        str(i): short_hash("|".join(parts))
        for i, *parts in zip(ids, snap["values"], snap["status"], snap["evidence"], strict=True)
    }


def iu_texts(cxr_dev: Path) -> tuple[list[str], list[str | None]]:
    """The IU dev reports' ids and their findings + impression, joined as ``cxr label`` does."""
    import pandas as pd

    from cxrlabel.io import join_text_columns

    df = pd.read_csv(
        cxr_dev / "iu_reports.csv", usecols=["uid", "findings", "impression"], dtype=str
    )
    cols = ["findings", "impression"]
    texts = [join_text_columns(parts, cols) for parts in df[cols].itertuples(index=False)]
    return df["uid"].tolist(), texts


def build_reference(cxr_dev: Path | None) -> dict[str, Any]:
    from cxrlabel import Labeler
    from cxrlabel.lexicon import load_lexicon

    lexicon = load_lexicon("chexpert")
    texts = build_corpus(lexicon)
    ref: dict[str, Any] = {"texts": texts, "configs": {}, "iu": {}}
    for name, kwargs in CONFIGS.items():
        ref["configs"][name] = snapshot(Labeler(**kwargs), texts, full=name == "chexpert")
    lab = Labeler()
    cases = assertion_cases(texts, lexicon)
    ref["assertions"] = [[s, t, *lab.explain_assertion(s, t)] for s, t in cases]
    if cxr_dev is not None and (cxr_dev / "iu_reports.csv").is_file():
        ids, iu = iu_texts(cxr_dev)
        for name, kwargs in CONFIGS.items():
            ref["iu"][name] = digest_rows(Labeler(**kwargs), ids, iu)
    return ref


def load_reference() -> dict[str, Any]:
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as fh:
        return json.load(fh)


if __name__ == "__main__":
    import os

    root = Path(__file__).resolve().parents[2]
    dev = Path(os.environ.get("CXR_DEV", root.parent / "shared" / "data" / "cxr_dev"))
    reference = build_reference(dev if dev.is_dir() else None)
    REFERENCE.parent.mkdir(exist_ok=True)
    with gzip.open(REFERENCE, "wt", encoding="utf-8", compresslevel=9) as fh:
        json.dump(reference, fh, ensure_ascii=False, sort_keys=True)
    n = len(reference["texts"])
    print(f"wrote {REFERENCE} ({n} texts, {len(reference['iu'])} IU configurations)")
