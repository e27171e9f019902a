"""The labeller's outputs are exactly those of the stored reference (made before the speed work).

The corpus and the reference are described in :mod:`tests.cxrlabel.engine_reference`. The
check covers label values, statuses and every evidence record (mention text, offsets,
sentence, section, assertion, rule id and source, cue, exclusion reason), for three
labeller configurations, plus ``Labeler.mentions`` and ``Labeler.explain_assertion``. The
real IU dev reports are compared through per-report hashes (opt-in: skipped without the data).
"""

from __future__ import annotations

import pytest

from cxrlabel import Labeler

from .engine_reference import CONFIGS, compact, digest_rows, iu_texts, load_reference, snapshot


@pytest.fixture(scope="module")
def reference() -> dict:
    return load_reference()


def _first_difference(got: list, want: list) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"item {i}: got {g!r}, reference {w!r}"
    return f"lengths differ: got {len(got)}, reference {len(want)}"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_outputs_equal_the_reference(reference: dict, name: str) -> None:
    want = reference["configs"][name]
    got = snapshot(Labeler(**CONFIGS[name]), reference["texts"], full=name == "chexpert")
    for key in ("values", "status", "evidence"):
        assert got[key] == want[key], f"{name} {key}: {_first_difference(got[key], want[key])}"


def test_mentions_equal_the_reference_evidence(reference: dict) -> None:
    lab = Labeler()
    by_id: dict[str, list] = {}
    for r in reference["configs"]["chexpert"]["evidence"]:
        by_id.setdefault(r["id"], []).append(r)
    for i, text in enumerate(reference["texts"]):
        got = compact(lab.mentions(text, report_id=f"t{i}"))
        assert got == by_id.get(f"t{i}", []), f"text {i}"


def test_assertions_equal_the_reference(reference: dict) -> None:
    lab = Labeler()
    got = [[s, t, *lab.explain_assertion(s, t)] for s, t, *_ in reference["assertions"]]
    assert got == reference["assertions"], _first_difference(got, reference["assertions"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_real_iu_reports_equal_the_reference(reference: dict, cxr_dev, name: str) -> None:
    ids, texts = iu_texts(cxr_dev)
    want = reference["iu"][name]
    got = digest_rows(Labeler(**CONFIGS[name]), ids, texts)
    changed = [i for i in ids if got[i] != want.get(i)]
    assert not changed, f"{name}: {len(changed)} IU reports changed, e.g. {changed[:5]}"
