"""cxrembed's exception classes.

All derive from :class:`cxrlabel.errors.CxrError` (so the CLI prints them on one line and
exits 1) and from the matching builtin (so ``except ValueError`` in user code keeps working).
Several modules add classes here: append, keep one class per failure a user can fix.
"""

from __future__ import annotations

from cxrlabel.errors import CxrError

__all__ = [
    "ModelConfigError",
    "WeightsError",
    "DownloadUnavailableError",
    "LossInputError",
    "NoiseFileError",
    "SamplerInputError",
    "ImageReadError",
]


class ModelConfigError(CxrError, ValueError):
    """A model cannot be built as configured (unknown backbone, bad option, unknown key)."""


class WeightsError(CxrError, ValueError):
    """A weights file is missing, unreadable, or made for another architecture."""


class DownloadUnavailableError(WeightsError):
    """Pretrained weights were requested by name or URL: cxrkit never downloads at run time."""


class LossInputError(CxrError, ValueError):
    """A loss or miner got unusable input (shape, dtype, label values, NaN embeddings)."""


class NoiseFileError(CxrError, ValueError):
    """A noise.json cannot serve this run (it names observations the labels lack, bad metric)."""


class SamplerInputError(CxrError, ValueError):
    """A batch sampler cannot draw batches from the given labels or settings."""


class ImageReadError(CxrError, OSError):
    """An image file cannot be read: missing, empty, truncated, corrupt, unsupported.

    The one exception :func:`cxrembed.io.image.read_image` raises for unreadable input. ``kind`` is
    a short code for counting (``missing``, ``empty``, ``corrupt``, ``unsupported-format``,
    ``unsupported-transfer-syntax``, ``non-image``, ``multi-frame``...), ``reason`` the
    detail; the message names the file.
    """

    def __init__(self, path: object, reason: str, kind: str = "unreadable") -> None:
        super().__init__(f"cannot read image {str(path)!r}: {reason}")
        self.path = str(path)
        self.reason = reason
        self.kind = kind

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        # Keep the three fields when the error crosses a process boundary.
        return (type(self), (self.path, self.reason, self.kind))


# --- vector index and evaluation (cxrembed.search.index, cxrembed.evaluation.evaluate, cxrembed.evaluation.metrics) ---
__all__ += [
    "VectorInputError",
    "IndexFileError",
    "ConfigHashMismatchError",
    "EvaluationInputError",
]


class VectorInputError(CxrError, ValueError):
    """Vectors, ids or queries cannot be used as given (NaN, shape, dimension, duplicate ids,
    not unit-norm, k larger than the collection)."""


class IndexFileError(CxrError, OSError):
    """An index folder is missing a file, holds a corrupt file, or its files disagree."""


class ConfigHashMismatchError(CxrError, ValueError):
    """An index or embeddings file was built by another run than the one asked for."""


class EvaluationInputError(CxrError, ValueError):
    """Embeddings and labels cannot be evaluated together as given (misaligned rows, ids
    missing from the embeddings, k larger than a query's gallery, one class only...)."""


# --- embeddings files, id joins and outcome prediction (cxrembed.embeddings.embedding_set, .join, .outcome) ---
__all__ += ["EmbeddingsFileError", "IdJoinError", "OutcomeInputError"]


class EmbeddingsFileError(CxrError, ValueError):
    """An embeddings folder or file is missing, corrupt, inconsistent (shapes, counts, NaN,
    duplicate ids) or was written with other settings than the ones asked for."""


class IdJoinError(CxrError, ValueError):
    """Embeddings and a table cannot be joined by id (no id column, blank or repeated ids,
    no id in common)."""


class OutcomeInputError(CxrError, ValueError):
    """An outcome cannot be predicted as asked (target with one class, unknown target values,
    unusable feature columns, too few rows or positives for cross-validation)."""


# --- training (cxrembed.train) ---
__all__ += [
    "RunConfigError",
    "CheckpointError",
    "TrainingDivergedError",
    "TrainingMemoryError",
    "PeerFailedError",
]


class RunConfigError(CxrError, ValueError):
    """A run configuration has an unknown key, a value of the wrong type or out of range."""


class CheckpointError(CxrError, OSError):
    """A run folder or checkpoint is missing, unreadable, or does not match this run."""


class TrainingDivergedError(CxrError, FloatingPointError):
    """The loss or the gradients became NaN/inf; the last good checkpoint is kept."""


class TrainingMemoryError(CxrError, MemoryError):
    """A batch does not fit in memory; the message says which setting to lower."""


class PeerFailedError(CxrError, RuntimeError):
    """Another rank of a multi-process run failed (that rank prints the error), so this
    one stopped too."""
