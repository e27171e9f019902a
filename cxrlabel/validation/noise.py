"""``noise.json``: how far a labeller's positives can be trusted, per observation.

Written by ``cxr validate`` and read by the trainer, which can down-weight pairs built on
noisy labels. Per observation: gold ``support`` (positives), ``precision``, ``recall``,
``f1``, the estimated ``p_label1_given_truth0`` (false-positive rate) and
``p_labelnot1_given_truth1`` (miss rate, 1 - recall); at the top: the gold ``semantics``
(``full`` or ``positive-only``), how uncertain labels were counted (``uncertain_as``) and
the label ``schema`` scored. Values that cannot be estimated are JSON ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cxrlabel.atomic import atomic_open
from cxrlabel.errors import InputError

__all__ = ["NoiseEstimate", "NoiseReport", "build_noise", "write_noise", "read_noise"]

FORMAT_VERSION = 1
SEMANTICS = ("full", "positive-only")
UNCERTAIN_AS = ("positive", "negative", "ignore")
_RATE_FIELDS = ("precision", "recall", "f1", "p_label1_given_truth0", "p_labelnot1_given_truth1")


@dataclass(frozen=True)
class NoiseEstimate:
    """Noise figures of one observation (``None`` = undefined)."""

    support: int
    precision: float | None
    recall: float | None
    f1: float | None
    p_label1_given_truth0: float | None
    p_labelnot1_given_truth1: float | None


@dataclass(frozen=True)
class NoiseReport:
    """The content of a ``noise.json`` file."""

    semantics: str
    uncertain_as: str
    schema: str
    n_reports: int
    observations: dict[str, NoiseEstimate]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "semantics": self.semantics,
            "uncertain_as": self.uncertain_as,
            "schema": self.schema,
            "n_reports": self.n_reports,
            "observations": {k: asdict(v) for k, v in self.observations.items()},
        }


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def build_noise(
    counts: Mapping[str, Mapping[str, float]],
    *,
    semantics: str,
    uncertain_as: str,
    schema: str,
    n_reports: int,
) -> NoiseReport:
    """Build the noise report from per-observation counts ``tp``, ``fp``, ``fn``, ``tn``.

    Examples
    --------
    >>> r = build_noise({"Edema": {"tp": 3, "fp": 1, "fn": 1, "tn": 5}},
    ...                 semantics="positive-only", uncertain_as="positive",
    ...                 schema="chexpert", n_reports=10)
    >>> r.observations["Edema"].p_label1_given_truth0
    0.16666666666666666
    """
    if semantics not in SEMANTICS:
        raise InputError(f"semantics must be one of {list(SEMANTICS)}, got {semantics!r}")
    if uncertain_as not in UNCERTAIN_AS:
        raise InputError(f"uncertain_as must be one of {list(UNCERTAIN_AS)}, got {uncertain_as!r}")
    obs: dict[str, NoiseEstimate] = {}
    for name, c in counts.items():
        tp, fp, fn, tn = (float(c[k]) for k in ("tp", "fp", "fn", "tn"))
        pos = tp + fn
        obs[name] = NoiseEstimate(
            support=int(pos),
            precision=tp / (tp + fp) if tp + fp and pos else None,
            recall=tp / pos if pos else None,
            f1=2 * tp / (2 * tp + fp + fn) if pos else None,
            p_label1_given_truth0=fp / (fp + tn) if fp + tn else None,
            p_labelnot1_given_truth1=fn / pos if pos else None,
        )
    return NoiseReport(semantics, uncertain_as, schema, int(n_reports), obs)


def write_noise(report: NoiseReport, path: str | Path) -> Path:
    """Write ``noise.json`` atomically (undefined values as ``null``)."""
    path = Path(path)
    with atomic_open(path, "w") as fh:
        json.dump(report.to_dict(), fh, indent=2, allow_nan=False)
        fh.write("\n")
    return path


def _fail(path: Path, what: str) -> InputError:
    return InputError(f"{path}: not a valid noise.json ({what}); re-create it with `cxr validate`")


def read_noise(path: str | Path) -> NoiseReport:
    """Read and check a ``noise.json`` file written by :func:`write_noise`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: noise file not found; create it with `cxr validate ... -o DIR`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(path, f"expected an object at the top level, got {type(data).__name__}")
    missing = [k for k in ("semantics", "uncertain_as", "schema", "observations") if k not in data]
    if missing:
        raise _fail(path, f"missing key(s) {missing}")
    if data["semantics"] not in SEMANTICS:
        raise _fail(path, f"semantics must be one of {list(SEMANTICS)}, got {data['semantics']!r}")
    if data["uncertain_as"] not in UNCERTAIN_AS:
        raise _fail(path, f"uncertain_as must be one of {list(UNCERTAIN_AS)}")
    if not isinstance(data["observations"], dict):
        raise _fail(path, "'observations' must map observation names to their figures")
    obs: dict[str, NoiseEstimate] = {}
    for name, fields in data["observations"].items():
        if not isinstance(fields, dict) or "support" not in fields:
            raise _fail(path, f"observation {name!r} must be an object with 'support'")
        rates: dict[str, float | None] = {}
        for key in _RATE_FIELDS:
            value = fields.get(key)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1
            ):
                raise _fail(path, f"{name}.{key} must be a number in [0, 1] or null, got {value!r}")
            rates[key] = _clean(value)
        obs[name] = NoiseEstimate(support=int(fields["support"]), **rates)
    return NoiseReport(
        str(data["semantics"]),
        str(data["uncertain_as"]),
        str(data["schema"]),
        int(data.get("n_reports", 0)),
        obs,
    )
