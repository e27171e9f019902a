r"""Noise tolerance for pair losses: per-label reliability and dropping suspect pairs.

Labels mined from reports are wrong some of the time. Three defences, all optional:

1. **Unknown positions are excluded** from the pair similarity (uncertain ``-1``, ``NaN``,
   masked): see :mod:`cxrembed.losses.pairs`.
2. **Per-label reliability** :math:`r_c \in [0, 1]`, read from the ``noise.json`` that
   ``cxr validate`` writes (by default a label's F1 against curated labels), becomes a pair
   weight. The labels that decide a pair are those positive in either exam, on positions
   known for both: :math:`U_{ij} = (P_i \cap K_j) \cup (P_j \cap K_i)`. Then

   * ``combine="product"`` (default): :math:`w_{ij} = \prod_{c \in U_{ij}} r_c`, the chance
     that every deciding label is right if label errors are independent;
   * ``combine="mean"``: :math:`w_{ij} = \frac{1}{|U_{ij}|}\sum_{c \in U_{ij}} r_c`, gentler
     when exams carry many labels.

   Two "no finding" exams have :math:`U_{ij} = \emptyset` and get :math:`w_{ij} = 1`
   (noise.json says nothing about how reliable a blank report is).
3. **Small-loss trick** (co-teaching style, Han et al. 2018): per batch, the fraction
   ``drop_fraction`` of positive pairs with the largest loss is left out, since a pair
   that the model keeps far apart despite "matching" labels is more often a labelling
   error than a hard case. :math:`k = \lfloor f \cdot n_{pos} \rfloor` unordered pairs are
   dropped, so no more than the fraction asked for is ever removed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from cxrembed.errors import NoiseFileError
from cxrembed.losses.pairs import LabelSets
from cxrlabel.validation.noise import read_noise

__all__ = [
    "LabelReliability",
    "read_label_reliability",
    "reliability_pair_weights",
    "drop_hardest_positives",
]

RELIABILITY_METRICS = ("f1", "precision", "recall")
COMBINE_MODES = ("product", "mean")
# Floor for r_c inside the log of the product, so a label with reliability 0 gives a pair
# weight of ~0 instead of log(0) = -inf (and NaN where the label does not decide a pair).
_MIN_RELIABILITY = 1e-6


@dataclass(frozen=True)
class LabelReliability:
    """Per-label reliability aligned with the label columns used for training.

    Attributes
    ----------
    names : tuple of str
        Label column names, in column order.
    values : tuple of float
        Reliability of each column, in [0, 1].
    defaulted : tuple of str
        Columns that got ``default`` because noise.json has no usable figure for them
        (absent, or the metric is null): report these, they were not validated.
    source : str
        The noise.json path and metric the values came from.
    """

    names: tuple[str, ...]
    values: tuple[float, ...]
    defaulted: tuple[str, ...]
    source: str


def read_label_reliability(
    path: str | Path, names: Sequence[str], *, metric: str = "f1", default: float = 1.0
) -> LabelReliability:
    """Read ``noise.json`` (written by ``cxr validate``) into per-column reliabilities.

    Parameters
    ----------
    path : str or Path
        The noise.json file (read and checked by :func:`cxrlabel.validation.noise.read_noise`, whose
        :class:`~cxrlabel.errors.InputError` reports a malformed file).
    names : sequence of str
        The label columns the loss sees, in order. Every observation in the file must be
        one of them (a name that is not means the file was made for another schema: map
        the names first); columns the file lacks get ``default``.
    metric : {"f1", "precision", "recall"}
        Which figure of each observation is its reliability.
    default : float
        Reliability for columns without a figure (1.0 = trust them fully).

    Returns
    -------
    LabelReliability

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "noise.json"
    >>> _ = f.write_text(json.dumps({"semantics": "full", "uncertain_as": "ignore",
    ...     "schema": "chexpert", "observations": {"Edema": {"support": 10, "f1": 0.8,
    ...     "precision": 0.9, "recall": 0.7}}}))
    >>> rel = read_label_reliability(f, ["Edema", "Fracture"])
    >>> rel.values, rel.defaulted
    ((0.8, 1.0), ('Fracture',))
    """
    path = Path(path)
    if metric not in RELIABILITY_METRICS:
        raise NoiseFileError(
            f"metric must be one of {', '.join(RELIABILITY_METRICS)}; got {metric!r}"
        )
    if not (isinstance(default, (int, float)) and 0.0 <= default <= 1.0):
        raise NoiseFileError(f"default reliability must be a number in [0, 1]; got {default!r}")
    report = read_noise(path)  # checks the format and that every figure lies in [0, 1]
    known = list(names)
    unknown = [name for name in report.observations if name not in known]
    if unknown:
        raise NoiseFileError(
            f"{path}: observations {unknown} (schema {report.schema!r}) are not label columns "
            f"of this training run. Known columns: {known}. Map the noise file to this "
            "schema's names (see lexicons/maps/) or train on the schema it was validated with."
        )
    values: list[float] = []
    defaulted: list[str] = []
    for name in known:
        estimate = report.observations.get(name)
        value = None if estimate is None else getattr(estimate, metric)
        if value is None:
            defaulted.append(name)
        values.append(float(default if value is None else value))
    return LabelReliability(
        names=tuple(known),
        values=tuple(values),
        defaulted=tuple(defaulted),
        source=f"{path} ({metric})",
    )


def reliability_pair_weights(
    sets: LabelSets, reliability: torch.Tensor, combine: str = "product"
) -> torch.Tensor:
    r"""Pair weights from per-label reliabilities (formula in the module docstring).

    Parameters
    ----------
    sets : LabelSets
        Positive and known masks of the batch, ``(B, C)``.
    reliability : torch.Tensor
        ``(C,)`` floating, values in [0, 1]; its dtype is the result's dtype.
    combine : {"product", "mean"}
        How the reliabilities of the deciding labels combine.

    Returns
    -------
    torch.Tensor
        ``(B, B)`` symmetric weights in [0, 1].

    Examples
    --------
    >>> pos = torch.tensor([[1, 0], [1, 1], [0, 0]], dtype=torch.bool)
    >>> w = reliability_pair_weights(LabelSets(pos, torch.ones_like(pos)),
    ...                              torch.tensor([0.5, 0.8]))
    >>> w
    tensor([[0.5000, 0.4000, 0.5000],
            [0.4000, 0.4000, 0.4000],
            [0.5000, 0.4000, 1.0000]])
    """
    dtype = reliability.dtype
    pos = sets.positive.to(dtype)
    known = sets.known.to(dtype)
    if combine == "product":
        per_label = torch.log(reliability.clamp(_MIN_RELIABILITY, 1.0))
    elif combine == "mean":
        per_label = reliability
    else:
        raise ValueError(f"combine must be one of {COMBINE_MODES}; got {combine!r}")
    # Sum of per_label over U_ij = (P_i & K_j) | (P_j & K_i), by inclusion-exclusion.
    one_side = (pos * per_label) @ known.T
    total = one_side + one_side.T - (pos * per_label) @ pos.T
    if combine == "product":
        return torch.exp(total)
    size_a = pos @ known.T
    count = size_a + size_a.T - pos @ pos.T
    return torch.where(count > 0, total / count.clamp_min(1.0), torch.ones_like(total))


def drop_hardest_positives(
    pair_losses: torch.Tensor, positive: torch.Tensor, fraction: float
) -> torch.Tensor:
    """Positive mask without the ``fraction`` of positive pairs with the largest loss.

    Works on unordered pairs (the score of ``{i, j}`` is the mean of both directions) and
    returns a symmetric mask when ``positive`` is symmetric. Runs without gradient.

    Parameters
    ----------
    pair_losses : torch.Tensor
        ``(B, B)`` per-pair loss (or any score where larger means "more suspect").
    positive : torch.Tensor
        ``(B, B)`` bool positive-pair mask.
    fraction : float
        In [0, 1); ``floor(fraction * n)`` of the ``n`` unordered positive pairs are dropped.

    Returns
    -------
    torch.Tensor
        The new ``(B, B)`` bool mask.

    Examples
    --------
    >>> loss = torch.tensor([[0., 1., 5.], [1., 0., 2.], [5., 2., 0.]])
    >>> pos = ~torch.eye(3, dtype=torch.bool)
    >>> drop_hardest_positives(loss, pos, 0.34).int()
    tensor([[0, 1, 0],
            [1, 0, 1],
            [0, 1, 0]], dtype=torch.int32)
    """
    if fraction <= 0:
        return positive
    with torch.no_grad():
        upper = torch.triu(positive | positive.T, diagonal=1)
        n_pairs = int(upper.sum())
        k = math.floor(fraction * n_pairs)
        if k == 0:
            return positive
        score = (pair_losses + pair_losses.T) / 2
        score = score.masked_fill(~upper, float("-inf")).flatten()
        dropped = torch.zeros_like(score, dtype=torch.bool)
        dropped[torch.topk(score, k).indices] = True
        dropped = dropped.view_as(positive)
        dropped = dropped | dropped.T
        return positive & ~dropped
