r"""A label-noise transition matrix for single-label training, from ``noise.json``.

``cxr validate`` scores the training labels of a small curated subset per label column
(one-hot columns of a categorical label: ``normal``, ``bacteria``, ``virus``) and writes,
per column :math:`c`, the recall :math:`r_c = P(\tilde y = c \mid y = c)`, the
false-positive rate :math:`f_c = P(\tilde y = c \mid y \ne c)`, the gold ``support``
:math:`n_c` and the number of rows :math:`n`. A forward-corrected loss needs the full
matrix :math:`T_{ij} = P(\tilde y = j \mid y = i)`; these per-column figures fix its
diagonal, :math:`T_{ii} = r_i`, and how many wrong labels each column received,
:math:`F_j = f_j (n - n_j)`. The missing piece is where the wrong labels of one class
went; we spread them over the other columns in proportion to the wrong labels those
columns received:

.. math::

    T_{ij} = (1 - r_i)\, \frac{F_j}{\sum_{k \ne i} F_k} \quad (j \ne i)

(uniformly when no other column received any). This is exact for symmetric flips and for
one-directional misses (every pneumonia miss labelled normal: only ``normal`` has false
positives), the two noise models of ``benchmarks/label_noise.py``, and a documented
approximation otherwise. A column without gold positives keeps an identity row.

Examples
--------
>>> import json, tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "noise.json"
>>> obs = {"normal": {"support": 10, "recall": 1.0, "p_label1_given_truth0": 0.4},
...        "bacteria": {"support": 20, "recall": 0.6, "p_label1_given_truth0": 0.0},
...        "virus": {"support": 10, "recall": 0.6, "p_label1_given_truth0": 0.0}}
>>> for o in obs.values():
...     o.update(precision=None, f1=None, p_labelnot1_given_truth1=1 - o["recall"])
>>> _ = f.write_text(json.dumps({"semantics": "full", "uncertain_as": "ignore",
...     "schema": "subtype", "n_reports": 40, "observations": obs}))
>>> read_transition(f, ["normal", "bacteria", "virus"]).matrix
[[1.0, 0.0, 0.0], [0.4, 0.6, 0.0], [0.4, 0.0, 0.6]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cxrembed.errors import NoiseFileError
from cxrlabel.validation.noise import read_noise

__all__ = ["Transition", "read_transition"]


@dataclass(frozen=True)
class Transition:
    """``matrix[i][j]`` = P(label j | true class i), rows in the order of ``names``."""

    names: tuple[str, ...]
    matrix: list[list[float]]
    source: str


def read_transition(path: str | Path, names: Sequence[str]) -> Transition:
    """Estimate the transition matrix of the label columns ``names`` (see module doc).

    Raises
    ------
    NoiseFileError
        The file names observations that are not label columns, or lacks the counts.
    """
    path = Path(path)
    report = read_noise(path)
    names = list(names)
    unknown = [n for n in report.observations if n not in names]
    if unknown:
        raise NoiseFileError(
            f"{path}: observations {unknown} are not label columns of this run ({names}); "
            "validate the same label columns the run trains on"
        )
    n = report.n_reports
    recall, wrong = [], []
    for name in names:
        est = report.observations.get(name)
        if est is None or est.recall is None:
            recall.append(None)
        else:
            recall.append(float(est.recall))
        fpr = None if est is None else est.p_label1_given_truth0
        wrong.append(0.0 if fpr is None or est is None else float(fpr) * max(n - est.support, 0))
    matrix = []
    for i in range(len(names)):
        row = [0.0] * len(names)
        r = 1.0 if recall[i] is None else min(max(recall[i], 0.0), 1.0)
        row[i] = r
        others = [j for j in range(len(names)) if j != i]
        total = sum(wrong[j] for j in others)
        for j in others:
            share = wrong[j] / total if total > 0 else 1.0 / len(others)
            row[j] = (1.0 - r) * share
        matrix.append([round(v, 6) for v in row])
    return Transition(tuple(names), matrix, f"{path} (recall and false-positive counts)")
