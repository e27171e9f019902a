"""The split of the run that made a set of embeddings: held-out queries, training gallery.

``cxr embed RUN`` records the run folder in the embeddings manifest (``meta.run`` as given,
``meta.run_path`` resolved). The run's ``split.csv`` (``id``, ``split``, ``group``, written
by ``cxr train``) says which images it trained on. Scoring a training image against the
other training images measures memory, not retrieval, so ``cxr evaluate`` uses this split by
default: the images the run did not train on (its validation images, and images it never
saw, such as a test split) are the queries; its training images are the gallery.

Examples
--------
>>> split = RunSplit(Path("runs/r1"), {"a.png": "train", "b.png": "val"}, {"a.png": "p1"})
>>> split.side_of(["a.png", "b.png", "c.png"])
['train', 'val', 'unseen']
>>> split.group_of(["a.png", "c.png"])
['p1', None]
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.errors import EvaluationInputError

__all__ = ["RunSplit", "GALLERY", "QUERIES", "ALL_ROWS_CONFLICT", "run_split_of"]

#: Split value of the gallery rows (the run's training images).
GALLERY = "train"
#: Split values of the query rows: the run's validation images, and images it never saw.
QUERIES = ("val", "unseen")

#: Both ways of choosing the queries were given.
ALL_ROWS_CONFLICT = (
    "--all-rows scores every row against every other; --split-col chooses "
    "queries and gallery: give one of them"
)
_SPLIT_FILE = "split.csv"  # cxrembed.train.checkpoint.SPLIT_FILE, without importing torch
_CONFIG_FILE = "config.yaml"
_FIX = (
    "give the split yourself (--split-col with --query-split and --gallery-split), or "
    "score every row against every other with --all-rows (training images included)"
)


@dataclass(frozen=True)
class RunSplit:
    """The train / val split of one run, by image id.

    Attributes
    ----------
    run : pathlib.Path
        The run folder.
    split : dict
        id -> ``train`` or ``val``.
    groups : dict
        id -> patient (group) id, for the ids that have one.
    """

    run: Path
    split: dict[str, str]
    groups: dict[str, str]

    @property
    def path(self) -> Path:
        """The ``split.csv`` file."""
        return self.run / _SPLIT_FILE

    def side_of(self, ids: Sequence[str | None]) -> list[str]:
        """``train``, ``val`` or ``unseen`` (not in the run) for each id."""
        return [self.split.get(str(i), QUERIES[1]) if i is not None else QUERIES[1] for i in ids]

    def group_of(self, ids: Sequence[str | None]) -> list[str | None]:
        """The run's patient id of each id (None when unknown)."""
        return [self.groups.get(str(i)) if i is not None else None for i in ids]


def run_split_of(emb: EmbeddingSet, source: str | os.PathLike[str]) -> RunSplit | None:
    """The split of the run recorded in ``emb.meta``; None when no run is recorded.

    Raises
    ------
    EvaluationInputError
        A run is recorded but its folder is gone, its ``split.csv`` unreadable, or the folder
        now holds a run with other settings (config hash). A run folder without
        ``split.csv`` (not made by ``cxr train``) gives a warning and None.
    """
    named = [emb.meta.get(key) for key in ("run_path", "run")]
    named = [str(n) for n in named if isinstance(n, str) and n]
    if not named:
        return None
    folder = next((Path(n) for n in named if (Path(n) / _CONFIG_FILE).is_file()), None)
    what = f"embeddings {str(source)!r} were made by run {named[-1]!r} (embeddings.json)"
    if folder is None:
        raise EvaluationInputError(
            f"{what}, but that run folder is not found: its split.csv says which images it "
            f"trained on. Fix: run cxr evaluate where the run folder is, or {_FIX}"
        )
    _check_same_run(folder, emb, what)
    path = folder / _SPLIT_FILE
    if not path.is_file():
        warnings.warn(
            f"run folder {str(folder)!r} has no {_SPLIT_FILE} (it was not made by cxr train): "
            "which images it trained on is unknown, so every row is scored against every "
            "other. Give --split-col to choose queries and gallery",
            UserWarning,
            stacklevel=2,
        )
        return None
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise EvaluationInputError(f"cannot read {str(path)!r} ({exc}). Fix: {_FIX}") from None
    if not {"id", "split"} <= set(table.columns):
        raise EvaluationInputError(
            f"{str(path)!r} has columns {list(table.columns)}; expected id, split (and group) "
            f"as cxr train writes them. Fix: {_FIX}"
        )
    groups = table["group"] if "group" in table.columns else pd.Series([""] * len(table))
    return RunSplit(
        folder,
        dict(zip(table["id"], table["split"].str.strip().str.lower(), strict=True)),
        {i: g for i, g in zip(table["id"], groups, strict=True) if g != ""},
    )


def _check_same_run(folder: Path, emb: EmbeddingSet, what: str) -> None:
    """The run folder still describes the run that made the embeddings (config hash)."""
    from cxrembed.train.config import RunConfig, config_hash

    if emb.config_hash is None:
        return
    found = config_hash(RunConfig.from_yaml(folder / _CONFIG_FILE))
    if found != emb.config_hash:
        raise EvaluationInputError(
            f"{what} with config hash {emb.config_hash!r}, but {str(folder / _CONFIG_FILE)!r} "
            f"now describes {found!r}: the folder holds another run, so its split.csv is not "
            f"the split of these embeddings. Fix: {_FIX}"
        )
