"""What every cxrembed loss shares: input checks, label handling, pair relations, reduction.

Every loss is called PML-style, ``loss(embeddings, labels, indices_tuple=None, known=None,
weights=None)``:

* ``labels`` is either a 1-D tensor of integer class ids (single-label data, as in PML) or
  a ``(B, C)`` matrix in the labels-table convention: ``1`` positive, ``0`` negative, ``-1``
  uncertain, ``NaN`` not mentioned. Uncertain and missing positions are *unknown*.
* ``known`` (optional, ``(B, C)`` bool) marks further positions as unknown where False.
* ``weights`` (optional, ``(B,)``, non-negative) weights each exam's term in the mean.
* ``indices_tuple`` (optional) is a miner's output, as in pytorch-metric-learning: pairs
  ``(a1, p, a2, n)`` or triplets ``(a, p, n)`` (read as the pairs ``(a, p)`` and ``(a, n)``)
  of batch indices. A pair loss then uses exactly those positive and negative pairs (its
  own label relations and built-in mining are not applied, as PML's pair losses do);
  a per-exam loss (classifier, proxies) weights each exam by how often it appears in the
  tuple, relative to the most frequent (PML's ``convert_to_weights``).

The checks run at this boundary, so a bad batch fails with a message saying what was
expected and what came (never a NaN loss later). A batch without a single usable pair is
not an error: the loss is ``0`` and still has a ``grad_fn`` (when the embeddings require
grad), so the training loop can call ``backward()`` unconditionally.

:class:`PairLoss` does the shared work of a metric loss once per batch (pair matrix,
label-set relations, reliability weights, dropping suspect pairs) and leaves one
``_compute`` to each subclass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeAlias, TypeVar

import torch

from cxrembed.errors import LossInputError
from cxrembed.losses.noise import COMBINE_MODES, drop_hardest_positives, reliability_pair_weights
from cxrembed.losses.pairs import LabelSets, PairRelations, pair_relations

__all__ = [
    "BatchLoss",
    "LossInputs",
    "PairLoss",
    "as_label_sets",
    "check_indices_tuple",
    "indices_pair_masks",
    "miner_weights",
    "check_embeddings",
    "check_inputs",
    "check_sample_weights",
    "label_columns",
    "reduce_per_sample",
    "with_pair_options",
]

#: What a loss call accepts as labels: class ids or a (B, C) label matrix (any array-like).
Labels: TypeAlias = torch.Tensor | Sequence
#: A miner's output, ``(a1, p, a2, n)`` or ``(a, p, n)``, or None.
IndicesTuple: TypeAlias = Sequence[torch.Tensor] | None
#: Optional per-exam (``weights=``) or per-label (``reliability=``) numbers.
Numbers: TypeAlias = torch.Tensor | Sequence[float] | None

# Label values accepted in a (B, C) matrix besides NaN.
_LABEL_VALUES = (-1.0, 0.0, 1.0)


def check_embeddings(embeddings: torch.Tensor, what: str = "embeddings") -> torch.Tensor:
    """Check a ``(B, D)`` floating, finite, non-empty batch and return it unchanged.

    Examples
    --------
    >>> check_embeddings(torch.zeros(2, 3)).shape
    torch.Size([2, 3])
    """
    if not isinstance(embeddings, torch.Tensor):
        raise LossInputError(
            f"{what} must be a torch.Tensor of shape (batch, dim); got "
            f"{type(embeddings).__name__}. Convert it with torch.as_tensor."
        )
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise LossInputError(
            f"{what} must have shape (batch, dim) with batch >= 1; got shape "
            f"{tuple(embeddings.shape)}. Flatten the model output to 2-D first."
        )
    if not embeddings.is_floating_point():
        raise LossInputError(
            f"{what} must be floating point; got {embeddings.dtype}. Cast with .float()."
        )
    finite = torch.isfinite(embeddings).all(dim=1)
    if not bool(finite.all()):
        rows = torch.nonzero(~finite).flatten()[:10].tolist()
        raise LossInputError(
            f"{what} contain NaN or inf in batch rows {rows} (first 10 shown). The model "
            "diverged or an input image is broken: lower the learning rate, check the "
            "images of those rows, or enable gradient clipping."
        )
    return embeddings


def as_label_sets(
    labels: torch.Tensor | Sequence,
    batch_size: int,
    device: torch.device,
    known: torch.Tensor | None = None,
) -> LabelSets:
    """Turn class ids or a (B, C) label matrix (+ optional known-mask) into label sets.

    Parameters
    ----------
    labels : tensor or array-like
        ``(B,)`` integer class ids, or ``(B, C)`` with values 1, 0, -1 (uncertain) or NaN
        (not mentioned); booleans are read as 1/0.
    batch_size : int
        Number of embeddings the labels must match.
    device : torch.device
        Where the result lives (the embeddings' device).
    known : tensor, optional
        ``(B, C)`` bool; False marks a position as unknown. Only with ``(B, C)`` labels.

    Returns
    -------
    LabelSets

    Examples
    --------
    >>> sets = as_label_sets(torch.tensor([[1, 0], [-1, 1]]), 2, torch.device("cpu"))
    >>> sets.positive.int().tolist(), sets.known.int().tolist()
    ([[1, 0], [0, 1]], [[1, 1], [0, 1]])
    """
    try:
        labels = torch.as_tensor(labels, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise LossInputError(
            f"labels must be a tensor or array of numbers (class ids, or 1 / 0 / -1 / NaN); "
            f"got {type(labels).__name__} that torch cannot convert ({exc})."
        ) from exc
    if labels.ndim == 0 or labels.ndim > 2 or labels.shape[0] != batch_size:
        raise LossInputError(
            f"labels must have shape ({batch_size},) (class ids) or ({batch_size}, C) (one "
            f"column per observation) to match {batch_size} embeddings; got shape "
            f"{tuple(labels.shape)}."
        )
    if labels.ndim == 1:
        return _class_id_sets(labels, known)
    if known is not None:
        known = torch.as_tensor(known, device=device)
        if known.shape != labels.shape or known.dtype != torch.bool:
            raise LossInputError(
                f"known must be a bool tensor shaped like labels {tuple(labels.shape)}; got "
                f"{known.dtype} of shape {tuple(known.shape)}. Build it with (mask != 0)."
            )
    if labels.dtype == torch.bool:
        positive = labels
        in_table = torch.ones_like(labels)
    else:
        values = labels.double()
        is_nan = torch.isnan(values)
        legal = is_nan.clone()
        for value in _LABEL_VALUES:
            legal |= values == value
        if not bool(legal.all()):
            row, col = (int(i) for i in torch.nonzero(~legal)[0])
            raise LossInputError(
                f"labels[{row}, {col}] is {labels[row, col].item()!r}; expected 1 (positive), "
                "0 (negative), -1 (uncertain) or NaN (not mentioned). Map soft or other "
                "codes to these before training."
            )
        positive = values == 1
        in_table = ~is_nan & (values != -1)
    known_all = in_table if known is None else in_table & known
    return LabelSets(positive=positive & known_all, known=known_all)


def _class_id_sets(labels: torch.Tensor, known: torch.Tensor | None) -> LabelSets:
    """One-hot label sets for 1-D class ids (every position known)."""
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise LossInputError(
            f"1-D labels must be integer class ids; got dtype {labels.dtype}. For a single "
            "observation column pass a (B, 1) matrix instead."
        )
    if known is not None:
        raise LossInputError(
            "known= is only accepted with (B, C) label matrices; 1-D class ids are all known."
            " Drop known= or pass multi-hot labels."
        )
    _, class_ids = torch.unique(labels, return_inverse=True)
    positive = torch.nn.functional.one_hot(class_ids).bool()
    return LabelSets(positive=positive, known=torch.ones_like(positive), class_ids=class_ids)


def check_indices_tuple(
    indices_tuple: Sequence[torch.Tensor] | None, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """A miner's output as PML gives it, checked and read as pairs ``(a1, p, a2, n)``.

    Triplets ``(a, p, n)`` become ``(a, p, a, n)`` (PML's ``convert_to_pairs``). Each part
    must be a 1-D integer tensor of indices into the batch, the two halves of a pair of
    equal length.

    Examples
    --------
    >>> a1, p, a2, n = check_indices_tuple((torch.tensor([0]), torch.tensor([1]),
    ...                                     torch.tensor([2])), 3, torch.device("cpu"))
    >>> a1.tolist(), p.tolist(), a2.tolist(), n.tolist()
    ([0], [1], [0], [2])
    """
    if indices_tuple is None:
        return None
    if isinstance(indices_tuple, torch.Tensor) or not isinstance(indices_tuple, tuple | list):
        raise LossInputError(
            "the third argument is indices_tuple, as in pytorch-metric-learning: a miner's "
            "output (a1, p, a2, n) or (a, p, n) of batch indices; got "
            f"{type(indices_tuple).__name__}. A mask of known labels goes in known=."
        )
    if len(indices_tuple) not in (3, 4):
        raise LossInputError(
            "indices_tuple must hold 4 index tensors (a1, p, a2, n: positive and negative "
            "pairs) or 3 (a, p, n: triplets), as pytorch-metric-learning's miners return; got "
            f"{len(indices_tuple)}."
        )
    parts = []
    for name, part in zip(
        ("a1", "p", "a2", "n") if len(indices_tuple) == 4 else ("a", "p", "n"),
        indices_tuple,
        strict=True,
    ):
        part = torch.as_tensor(part, device=device)
        if part.ndim != 1 or part.is_floating_point() or part.dtype == torch.bool:
            raise LossInputError(
                f"indices_tuple's {name} must be a 1-D tensor of integer batch indices; got "
                f"{part.dtype} of shape {tuple(part.shape)}."
            )
        if part.numel() and (int(part.min()) < 0 or int(part.max()) >= batch_size):
            raise LossInputError(
                f"indices_tuple's {name} holds indices from {int(part.min())} to "
                f"{int(part.max())}; the batch has {batch_size} embeddings (0 to "
                f"{batch_size - 1}). Mine on the same batch as the loss."
            )
        parts.append(part.long())
    if len(parts) == 3:
        parts = [parts[0], parts[1], parts[0], parts[2]]
    a1, p, a2, n = parts
    if len(a1) != len(p) or len(a2) != len(n):
        raise LossInputError(
            f"indices_tuple pairs must have equal halves; got {len(a1)} anchors for {len(p)} "
            f"positives and {len(a2)} anchors for {len(n)} negatives."
        )
    return a1, p, a2, n


def indices_pair_masks(
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, B)`` bool masks of the positive and the negative pairs of a checked tuple."""
    a1, p, a2, n = pairs
    positive = torch.zeros(batch_size, batch_size, dtype=torch.bool, device=a1.device)
    negative = torch.zeros_like(positive)
    positive[a1, p] = True
    negative[a2, n] = True
    both = positive & negative
    if bool(both.any()):
        i, j = (int(v) for v in torch.nonzero(both)[0])
        raise LossInputError(
            f"indices_tuple gives the pair ({i}, {j}) as both positive and negative; each "
            "pair must be one or the other."
        )
    return positive, negative


def miner_weights(
    indices_tuple: Sequence[torch.Tensor] | None, batch_size: int, like: torch.Tensor
) -> torch.Tensor | None:
    """Per-exam weights of a miner's output for a per-exam loss (PML's ``convert_to_weights``).

    Each exam weighs its number of appearances in the tuple over the largest count; its
    loss is multiplied by that weight and the mean stays over the batch, as in PML. No tuple
    (or an empty one) gives None: every exam counts fully.

    Examples
    --------
    >>> t = (torch.tensor([0, 0]), torch.tensor([1, 2]), torch.tensor([0]), torch.tensor([3]))
    >>> [round(w, 3) for w in miner_weights(t, 4, torch.zeros(1)).tolist()]
    [1.0, 0.333, 0.333, 0.333]
    """
    if check_indices_tuple(indices_tuple, batch_size, like.device) is None:
        return None
    parts = [torch.as_tensor(x, device=like.device).long() for x in indices_tuple]  # type: ignore[union-attr]
    if all(len(x) == 0 for x in parts):
        return None
    index, counts = torch.unique(torch.cat(parts), return_counts=True)
    weights = torch.zeros(batch_size, dtype=like.dtype, device=like.device)
    weights[index] = counts.to(like.dtype) / counts.max().to(like.dtype)
    return weights


def check_sample_weights(
    weights: torch.Tensor | Sequence[float] | None, batch_size: int, like: torch.Tensor
) -> torch.Tensor | None:
    """Check optional per-exam weights: ``(B,)``, finite, non-negative."""
    if weights is None:
        return None
    weights = torch.as_tensor(weights, dtype=like.dtype, device=like.device)
    if weights.shape != (batch_size,):
        raise LossInputError(
            f"weights must have shape ({batch_size},), one per embedding; got "
            f"{tuple(weights.shape)}."
        )
    if not bool((torch.isfinite(weights) & (weights >= 0)).all()):
        raise LossInputError(
            "weights must be finite and >= 0; got "
            f"{weights[~(torch.isfinite(weights) & (weights >= 0))][:5].tolist()}."
        )
    return weights


def reduce_per_sample(losses: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-exam losses over the batch, or their weighted mean.

    Every exam counts, including exams without pairs (their term is 0), as in PML's
    ``MeanReducer``; zero total weight gives 0.
    """
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp_min(torch.finfo(losses.dtype).tiny)


def check_taus(tau_pos: float, tau_neg: float, owner: str) -> None:
    """Check the Jaccard thresholds: ``0 <= tau_neg < tau_pos <= 1``."""
    numbers = all(isinstance(t, (int, float)) for t in (tau_pos, tau_neg))
    if not (numbers and 0.0 <= tau_neg < tau_pos <= 1.0):
        raise LossInputError(
            f"{owner} needs 0 <= tau_neg < tau_pos <= 1; got tau_neg={tau_neg!r}, "
            f"tau_pos={tau_pos!r}."
        )


def check_number(
    value: float,
    name: str,
    owner: str,
    low: float = 0.0,
    high: float = float("inf"),
    *,
    closed: str = "neither",
) -> None:
    """Check a hyper-parameter is a number between ``low`` and ``high``.

    ``closed`` says which ends are allowed: "neither", "left", "right" or "both".
    """
    left, right = closed in ("left", "both"), closed in ("right", "both")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = (
        ok
        and (value >= low if left else value > low)
        and (value <= high if right else value < high)
    )
    if not ok:
        interval = f"{'[' if left else '('}{low}, {high}{']' if right else ')'}"
        raise LossInputError(
            f"The {name!r} parameter of {owner} must be in {interval}; got {value!r}."
        )


class LossInputs(NamedTuple):
    """The five inputs of one PML-style loss call, kept together.

    A composite loss hands them to its terms whole (``term(*inputs)``), so the call is
    spelt once, in :meth:`BatchLoss.forward`.
    """

    embeddings: torch.Tensor
    labels: Labels
    indices_tuple: IndicesTuple = None
    known: torch.Tensor | None = None
    weights: Numbers = None


class CheckedInputs(NamedTuple):
    """A call's inputs after the shared boundary checks (:func:`check_inputs`)."""

    embeddings: torch.Tensor
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None
    sets: LabelSets
    sample_weights: torch.Tensor | None


def check_inputs(inputs: LossInputs, what: str = "embeddings") -> CheckedInputs:
    """The preamble every loss runs first: embeddings, miner's tuple, labels, weights.

    One place, so that every loss rejects a bad batch with the same message and in the
    same order; ``what`` names the first input in messages ("logits" for a classifier).
    """
    embeddings = check_embeddings(inputs.embeddings, what)
    batch = embeddings.shape[0]
    pairs = check_indices_tuple(inputs.indices_tuple, batch, embeddings.device)
    sets = as_label_sets(inputs.labels, batch, embeddings.device, inputs.known)
    sample_weights = check_sample_weights(inputs.weights, batch, embeddings)
    return CheckedInputs(embeddings, pairs, sets, sample_weights)


def label_columns(sets: LabelSets, labels: Labels, n_cols: int, *, expected: str) -> LabelSets:
    """``sets`` over a classifier's ``n_cols`` logit columns.

    1-D class ids are column numbers here (one-hot over ``n_cols``, not compacted as
    :func:`as_label_sets` does for pairs); a label matrix must have one column per logit.
    ``expected`` ends the message (``{n}`` stands for ``n_cols``): what has ``n_cols``
    columns and how to fix it.
    """
    if sets.class_ids is not None:
        ids = torch.as_tensor(labels, device=sets.positive.device).long()
        if bool(((ids < 0) | (ids >= n_cols)).any()):
            raise LossInputError(
                f"1-D class ids must lie in [0, {n_cols}) to index the {n_cols} logit columns; "
                f"got values from {int(ids.min())} to {int(ids.max())}."
            )
        positive = torch.nn.functional.one_hot(ids, n_cols).bool()
        return LabelSets(positive=positive, known=torch.ones_like(positive))
    if sets.positive.shape[1] != n_cols:
        raise LossInputError(
            f"labels have {sets.positive.shape[1]} columns but {expected.format(n=n_cols)}"
        )
    return sets


class BatchLoss(torch.nn.Module):
    """Base of every cxrembed loss: the one PML-style ``forward``.

    Subclasses implement :meth:`batch_loss` on the call's :class:`LossInputs`.
    """

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: Labels,
        indices_tuple: IndicesTuple = None,
        known: torch.Tensor | None = None,
        weights: Numbers = None,
    ) -> torch.Tensor:
        """Loss of one batch (a 0-d tensor); see the module docstring for the inputs."""
        return self.batch_loss(LossInputs(embeddings, labels, indices_tuple, known, weights))

    def batch_loss(self, inputs: LossInputs) -> torch.Tensor:
        """The loss of one call's raw ``inputs``: each subclass checks them first
        (:func:`check_inputs`), then computes its own loss."""
        raise NotImplementedError


class PairLoss(BatchLoss):
    """Base of the metric losses: one pair matrix, one relation computation, one reduction.

    Parameters
    ----------
    tau_pos, tau_neg : float
        Jaccard thresholds for positive / negative pairs (:mod:`cxrembed.losses.pairs`).
    overlap_weighting : bool
        Weight positive pairs by their Jaccard :math:`J_{ij}` and negative pairs by
        :math:`1 - J_{ij}`, so partial matches count less on either side.
    reliability : sequence of float, optional
        Per-label reliability (one per label column, e.g. from
        :func:`~cxrembed.losses.noise.read_label_reliability`); multiplies pair weights.
    reliability_combine : {"product", "mean"}
        How deciding labels' reliabilities combine into a pair weight.
    drop_fraction : float
        Fraction of positive pairs with the largest loss to leave out per batch.

    Subclasses implement ``_pair_matrix`` (the ``(B, B)`` similarity or distance),
    ``_positive_pair_losses`` (used to rank positive pairs for dropping) and
    ``_compute`` (per-exam losses). A subclass that keeps these options as they are takes
    them as ``**pair_options`` and passes them on (see :func:`with_pair_options`).
    """

    def __init__(
        self,
        *,
        tau_pos: float = 0.5,
        tau_neg: float = 0.0,
        overlap_weighting: bool = False,
        reliability: Numbers = None,
        reliability_combine: str = "product",
        drop_fraction: float = 0.0,
    ) -> None:
        super().__init__()
        self.tau_pos = tau_pos
        self.tau_neg = tau_neg
        self.overlap_weighting = overlap_weighting
        self.reliability = reliability
        self.reliability_combine = reliability_combine
        self.drop_fraction = drop_fraction

    def batch_loss(self, inputs: LossInputs) -> torch.Tensor:
        """With ``indices_tuple`` (a miner's output) the pairs are exactly the tuple's: the
        label relations and the built-in mining are not applied.
        """
        self._check_params()
        embeddings, given, sets, sample_weights = check_inputs(inputs)
        batch = embeddings.shape[0]
        relations = pair_relations(sets, self.tau_pos, self.tau_neg, embeddings.dtype)
        if given is not None:
            positive, negative = indices_pair_masks(given, batch)
            relations = PairRelations(
                similarity=relations.similarity,
                valid=positive | negative,
                positive=positive,
                negative=negative,
            )
        pair_weights = self._pair_weights(sets, relations, embeddings)
        mat = self._pair_matrix(embeddings)
        if self.drop_fraction > 0:
            with torch.no_grad():
                scores = self._positive_pair_losses(mat.detach(), relations)
            kept = drop_hardest_positives(scores, relations.positive, self.drop_fraction)
            relations = PairRelations(
                similarity=relations.similarity,
                valid=relations.valid,
                positive=kept,
                negative=relations.negative,
            )
        if given is None:
            relations = self._mine(mat.detach(), relations)
        losses = self._compute(mat, relations, pair_weights)
        return reduce_per_sample(losses, sample_weights)

    def _mine(self, mat: torch.Tensor, relations: PairRelations) -> PairRelations:
        """The pairs the loss keeps of its label relations (built-in mining; none here)."""
        return relations

    def _pair_weights(
        self, sets: LabelSets, relations: PairRelations, like: torch.Tensor
    ) -> torch.Tensor | None:
        """(B, B) weights of pairs from overlap and reliability, or None (all 1)."""
        weights = None
        if self.overlap_weighting:
            jac = torch.nan_to_num(relations.similarity, nan=0.0)
            weights = torch.where(relations.positive, jac, 1.0 - jac)
        if self.reliability is not None:
            rel = torch.as_tensor(self.reliability, dtype=like.dtype, device=like.device)
            n_cols = sets.positive.shape[1]
            if sets.class_ids is not None or rel.shape != (n_cols,):
                raise LossInputError(
                    f"reliability has {tuple(rel.shape)} values but the labels have "
                    f"{'1-D class ids' if sets.class_ids is not None else f'{n_cols} columns'}"
                    "; expected one reliability per label column of a (B, C) label matrix."
                    " Read it with read_label_reliability(path, names=<the label columns>)."
                )
            pair_rel = reliability_pair_weights(sets, rel, self.reliability_combine)
            weights = pair_rel if weights is None else weights * pair_rel
        return weights

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_taus(self.tau_pos, self.tau_neg, owner)
        if self.reliability_combine not in COMBINE_MODES:
            raise LossInputError(
                f"The 'reliability_combine' parameter of {owner} must be one of "
                f"{COMBINE_MODES}; got {self.reliability_combine!r}."
            )
        if self.reliability is not None:
            rel = torch.as_tensor(self.reliability, dtype=torch.float64)
            if not bool(((rel >= 0) & (rel <= 1)).all()):
                raise LossInputError(f"reliability values must lie in [0, 1]; got {rel.tolist()}.")
        check_number(self.drop_fraction, "drop_fraction", owner, 0.0, 1.0, closed="left")

    def _pair_matrix(self, embeddings: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _positive_pair_losses(self, mat: torch.Tensor, relations: PairRelations) -> torch.Tensor:
        raise NotImplementedError

    def _compute(
        self, mat: torch.Tensor, relations: PairRelations, pair_weights: torch.Tensor | None
    ) -> torch.Tensor:
        raise NotImplementedError


_Init = TypeVar("_Init", bound=Callable[..., None])


def with_pair_options(init: _Init) -> _Init:
    """Show :class:`PairLoss`'s keyword-only options in place of ``init``'s ``**pair_options``.

    A subclass that passes them on whole spells them (and their defaults) nowhere else;
    ``inspect.signature`` of the class still lists each one, which the trainer checks
    ``loss_options`` against and ``help()`` shows.
    """
    own = inspect.signature(init).parameters.values()
    shared = inspect.signature(PairLoss.__init__).parameters.values()
    init.__signature__ = inspect.signature(init).replace(  # type: ignore[attr-defined]
        parameters=[
            *(p for p in own if p.kind is not p.VAR_KEYWORD),
            *(p for p in shared if p.kind is p.KEYWORD_ONLY),
        ]
    )
    return init
