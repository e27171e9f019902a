r"""Normalised-softmax proxy loss: a cosine classifier on the embedding itself.

Zhai & Wu (BMVC 2019, "Classification is a strong baseline for deep metric learning") train
the embedding with one learnable proxy :math:`w_c` per class and a softmax over scaled
cosines, which pulls every embedding towards its class proxy on the unit sphere, so
classes form compact, well-separated clusters: what retrieval metrics such as MAP@R
reward. With embedding :math:`e_i` and temperature :math:`T`:

.. math::

    z_{ic} = \frac{\cos(e_i, w_c)}{T}, \qquad
    \ell_i = -\log \frac{e^{z_{i y_i}}}{\sum_c e^{z_{ic}}}

for single-label data (every row one known positive). For multi-label rows (label sets,
unknown positions) each class is a binary decision on the same scaled cosine with a
learnable bias, :math:`\ell_i = \sum_c k_{ic}\,\mathrm{BCE}(z_{ic} + b_c, y_{ic}) / \sum_c k_{ic}`.

Label noise (``transition``): with a noise transition matrix
:math:`T_{jk} = P(\text{label } k \mid \text{true class } j)` estimated on a clean subset
(:func:`cxrembed.losses.transition.transition_from_noise`), the single-label loss is
forward-corrected (Patrini et al., CVPR 2017): the model's clean posterior :math:`p` is
mapped to the noisy-label distribution :math:`T^\top p` before the log-likelihood of the
observed label, which is a consistent estimator of the clean posterior under
class-conditional noise, including systematic misses (pneumonia labelled normal).

Small-loss selection (``drop_fraction``): per batch, the images with the largest loss are
left out of the mean, as in co-teaching (Han et al., NeurIPS 2018) with one network: early
in training the network fits clean labels first, so the largest losses are more often
wrong labels than hard cases.

The proxies are parameters of the loss: the trainer adds them to the optimiser (PML users
know this as the loss optimiser) and to the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import torch

from cxrembed.errors import LossInputError
from cxrembed.losses.base import (
    BatchLoss,
    LossInputs,
    check_embeddings,
    check_inputs,
    check_number,
    label_columns,
    miner_weights,
    reduce_per_sample,
)

__all__ = ["NormalizedSoftmaxLoss", "SoftmaxLoss"]

#: A ``(C, C)`` noise transition matrix (rows: true class, columns: given label), or None.
Transition: TypeAlias = Sequence[Sequence[float]] | torch.Tensor | None

_CLASSES_MISMATCH = "the loss has {n} classes; num_classes must be the number of label columns."


class SoftmaxLoss(BatchLoss):
    """The per-image classification loss of class logits, shared by the proxy and the
    linear-head losses: softmax cross-entropy for single-label rows (with optional label
    smoothing and forward correction), masked BCE for multi-label rows, small-loss dropping.

    Parameters
    ----------
    num_classes : int
        Label columns (logit columns).
    multilabel : bool
        Per-class BCE instead of one softmax.
    transition : sequence of sequences of float, optional
        ``(C, C)`` row-stochastic noise matrix for forward correction (single-label only).
    drop_fraction : float
        Fraction of the usable images of a batch with the largest loss to leave out.
    label_smoothing : float
        Single-label only: the target puts ``1 - eps`` on the label and ``eps`` spread over
        every class (Szegedy et al. 2016), which tightens each class's cluster (Mueller et
        al., NeurIPS 2019).

    Examples
    --------
    >>> loss = SoftmaxLoss(3)(torch.zeros(2, 3), torch.tensor([0, 2]))
    >>> round(loss.item(), 4)  # log 3
    1.0986
    """

    def __init__(
        self,
        num_classes: int,
        multilabel: bool = False,
        transition: Transition = None,
        drop_fraction: float = 0.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        _check_count(num_classes, "num_classes", owner)
        check_number(drop_fraction, "drop_fraction", owner, 0.0, 1.0, closed="left")
        check_number(label_smoothing, "label_smoothing", owner, 0.0, 1.0, closed="left")
        self.num_classes = num_classes
        self.multilabel = bool(multilabel)
        self.drop_fraction = drop_fraction
        self.label_smoothing = label_smoothing
        self.register_buffer(
            "transition",
            _check_transition(transition, num_classes, self.multilabel),
            persistent=False,
        )

    def batch_loss(self, inputs: LossInputs) -> torch.Tensor:
        """Mean loss of the batch of logits (rows without a usable label count 0)."""
        z, _, sets, sample_weights = check_inputs(inputs, what="logits")
        batch, n_cols = z.shape
        sets = label_columns(sets, inputs.labels, n_cols, expected=_CLASSES_MISMATCH)
        positive, known_mask = sets.positive, sets.known
        mined = miner_weights(inputs.indices_tuple, batch, z)
        if self.multilabel:
            per_entry = torch.nn.functional.binary_cross_entropy_with_logits(
                z, positive.to(z.dtype), reduction="none"
            )
            mask = known_mask.to(z.dtype)
            losses = (per_entry * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            usable = known_mask.any(1)
        else:
            # A row is usable when exactly one label is positive and every label is known.
            usable = (positive.sum(1) == 1) & known_mask.all(1)
            target = positive.to(torch.int64).argmax(1)
            if self.transition is None:
                log_p = torch.log_softmax(z, dim=1)
            else:
                noisy = torch.softmax(z, dim=1) @ self.transition.to(z.dtype)
                log_p = torch.log(noisy.clamp_min(1e-12))
            losses = -log_p.gather(1, target[:, None]).squeeze(1)
            if self.label_smoothing:
                eps = self.label_smoothing
                losses = (1 - eps) * losses - eps * log_p.mean(dim=1)
            losses = torch.where(usable, losses, torch.zeros_like(losses))
        if self.drop_fraction > 0:
            usable = usable & ~_largest(losses.detach(), usable, self.drop_fraction)
        if sample_weights is None:
            sample_weights = usable.to(z.dtype)
        else:
            sample_weights = sample_weights * usable.to(z.dtype)
        if mined is not None:  # a miner's output scales each exam's loss, as in PML
            losses = losses * mined
        return reduce_per_sample(losses, sample_weights)


class NormalizedSoftmaxLoss(BatchLoss):
    """Proxy-based cosine softmax on embeddings (formula in the module docstring).

    Parameters
    ----------
    num_classes : int
        Label columns (one proxy each).
    embedding_dim : int
        Size of the embeddings.
    temperature : float
        Cosine scale :math:`1/T` (0.05 as in Zhai & Wu).
    multilabel, transition, drop_fraction, label_smoothing
        As for :class:`SoftmaxLoss`.
    seed : int
        Seeds the proxies (the global RNG is left as found).

    Examples
    --------
    >>> loss_fn = NormalizedSoftmaxLoss(3, 8)
    >>> emb = torch.nn.functional.normalize(torch.randn(6, 8), dim=1).requires_grad_()
    >>> loss = loss_fn(emb, torch.tensor([0, 1, 2, 0, 1, 2]))
    >>> loss.backward()
    >>> bool(loss > 0), loss_fn.proxies.grad.shape
    (True, torch.Size([3, 8]))
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        temperature: float = 0.05,
        multilabel: bool = False,
        transition: Transition = None,
        drop_fraction: float = 0.0,
        label_smoothing: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        _check_count(embedding_dim, "embedding_dim", type(self).__name__)
        self.classify = SoftmaxLoss(
            num_classes,
            multilabel=multilabel,
            transition=transition,
            drop_fraction=drop_fraction,
            label_smoothing=label_smoothing,
        )
        check_number(temperature, "temperature", type(self).__name__, 0.0, 10.0)
        self.temperature = temperature
        self.multilabel = bool(multilabel)
        generator = torch.Generator().manual_seed(seed)
        # Kaiming-uniform-like spread; the scale does not matter (proxies are normalised).
        bound = 1.0 / math.sqrt(embedding_dim)
        self.proxies = torch.nn.Parameter(
            (torch.rand(num_classes, embedding_dim, generator=generator) * 2 - 1) * bound
        )
        self.bias = torch.nn.Parameter(torch.zeros(num_classes)) if self.multilabel else None

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` scaled cosines to the proxies (plus the bias when multi-label)."""
        unit = torch.nn.functional.normalize(embeddings, dim=1)
        proxies = torch.nn.functional.normalize(self.proxies.to(unit.dtype), dim=1)
        z = unit @ proxies.T / self.temperature
        return z + self.bias.to(z.dtype) if self.bias is not None else z

    def batch_loss(self, inputs: LossInputs) -> torch.Tensor:
        """Mean loss of the batch (rows without a usable label count 0)."""
        embeddings = check_embeddings(inputs.embeddings)
        if embeddings.shape[1] != self.proxies.shape[1]:
            raise LossInputError(
                f"embeddings have {embeddings.shape[1]} dimensions but the proxies "
                f"{self.proxies.shape[1]}; set embedding_dim to the model's embedding size."
            )
        return self.classify(*inputs._replace(embeddings=self.logits(embeddings)))


def _check_count(value: object, name: str, owner: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LossInputError(
            f"The {name!r} parameter of {owner} must be an integer >= 1; got {value!r}."
        )


def _largest(losses: torch.Tensor, usable: torch.Tensor, fraction: float) -> torch.Tensor:
    """bool mask of the ``floor(fraction * n)`` usable rows with the largest loss."""
    k = math.floor(fraction * int(usable.sum()))
    out = torch.zeros_like(usable)
    if k:
        scores = losses.masked_fill(~usable, float("-inf"))
        out[torch.topk(scores, k).indices] = True
    return out


def _check_transition(matrix: object, n: int, multilabel: bool) -> torch.Tensor | None:
    if matrix is None:
        return None
    if multilabel:
        raise LossInputError(
            "a noise transition matrix corrects single-label (softmax) training only; these "
            "labels are multi-label. Use pair reliability weights instead"
        )
    t = torch.as_tensor(matrix, dtype=torch.float32)
    ok = t.shape == (n, n) and bool(torch.isfinite(t).all()) and bool((t >= 0).all())
    if not ok or not torch.allclose(t.sum(1), torch.ones(n), atol=1e-4):
        raise LossInputError(
            f"transition must be a ({n}, {n}) matrix of probabilities whose rows sum to 1 "
            f"(row: true class, column: given label); got {t.tolist()}"
        )
    return t
