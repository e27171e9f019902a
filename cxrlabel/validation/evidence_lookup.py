"""Find the mention behind a predicted label in an evidence JSONL file (``cxr label --evidence``).

``cxr validate`` uses it to say, for every disagreement, which phrase matched, in which
sentence, and which cue rule decided its status, so a wrong label can be traced to a rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrlabel.errors import InputError

__all__ = ["EvidenceIndex", "load_evidence"]

_STATUS_OF_VALUE = {1.0: "positive", -1.0: "uncertain", 0.0: "negative"}
_REQUIRED = ("id", "observation")


@dataclass
class EvidenceIndex:
    """Evidence records grouped by (report id, observation)."""

    records: dict[tuple[str, str], list[dict[str, Any]]]
    path: str = ""

    def explain(
        self, report_id: str, observations: Sequence[str], predicted: float
    ) -> dict[str, Any]:
        """The mention that set ``predicted`` for this report, looking in ``observations``.

        ``observations`` are the prediction columns behind a scored name (several when a
        label map merged them). A blank prediction gives "no mention found", or the reason
        the mentions found were excluded.
        """
        found = [r for o in observations for r in self.records.get((report_id, o), [])]
        kept = [r for r in found if not r.get("excluded")]
        if math.isnan(predicted):
            if found:
                reasons = sorted({str(r.get("reason") or "excluded") for r in found})
                first = found[0]
                return {**_fields(first), "note": f"mention excluded ({', '.join(reasons)})"}
            return {"note": "no mention found"}
        wanted = _STATUS_OF_VALUE[float(predicted)]
        for record in kept:
            if record.get("assertion") == wanted:
                return _fields(record)
        if kept:
            return {**_fields(kept[0]), "note": f"no {wanted} mention; showing the first mention"}
        return {
            "note": "no mention recorded for this value (a derived label such as No Finding "
            "is set from the other observations)"
        }


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": record.get("text") or "",
        "rule_id": record.get("rule_id") or "",
        "sentence": record.get("sentence") or "",
        "section": record.get("section") or "",
    }


def load_evidence(path: str | Path) -> EvidenceIndex:
    """Read an evidence JSON Lines file; a malformed line raises naming its line number."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: evidence file not found; write one with `cxr label ... --evidence FILE.jsonl`"
        )
    records: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}:{lineno}: not a JSON object ({exc.msg}); expected one evidence record per line"
                ) from None
            if not isinstance(record, dict) or any(k not in record for k in _REQUIRED):
                raise InputError(
                    f"{path}:{lineno}: an evidence record needs the keys {list(_REQUIRED)}"
                )
            key = (str(record["id"]).strip(), str(record["observation"]))
            records.setdefault(key, []).append(record)
    return EvidenceIndex(records, str(path))
