"""The two floors every trained embedding is compared with: an untrained network, raw pixels.

A trained model earns its keep only by beating both on the same queries and gallery:

- :func:`untrained_encoder`: the run's own network with its random initial weights (seeded
  as the run was), behind the run's preprocessing, so ``cxr embed`` code embeds with it;
- :func:`pixel_vectors`: the image fitted into a small square (32 px by default),
  standardised per image, as one vector (cosine similarity of those is a classic
  "no learning" retrieval baseline).

:func:`embed_listing` embeds a listing's images with a run or a floor alike, so their
figures compare.

Examples
--------
>>> import tempfile, pathlib, numpy as np
>>> from PIL import Image
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(folder / "a.png")
>>> pixel_vectors([folder / "a.png"], size=4).shape
(1, 16)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cxrembed.inference.embed import EmbedSummary
    from cxrembed.inference.encoder import Encoder

__all__ = ["PIXEL_SIZE", "embed_listing", "pixel_vectors", "untrained_encoder"]

#: Side of the raw-pixel baseline's square.
PIXEL_SIZE = 32


def pixel_vectors(paths: Iterable[str | os.PathLike[str]], size: int = PIXEL_SIZE) -> np.ndarray:
    """``(N, size * size)`` unit vectors of the standardised, letterboxed images."""
    from cxrembed.data.square import fit_square
    from cxrembed.io import read_image

    rows = []
    for path in paths:
        small = fit_square(read_image(path)[0], size).ravel()
        rows.append((small - small.mean()) / (small.std() + 1e-6))
    x = np.asarray(rows, dtype=np.float32).reshape(len(rows), size * size)
    return (x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)


def embed_listing(
    model: str | os.PathLike[str] | Encoder,
    listing: str | os.PathLike[str],
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
) -> EmbedSummary:
    """``cxr embed`` of a listing (``id`` and ``image`` columns, paths below ``images``) into
    ``out``, replacing what is there, on the CPU, with no progress bar.

    ``model`` is a run folder or an :class:`~cxrembed.inference.encoder.Encoder` (such as
    :func:`untrained_encoder`'s): every model compared on the listing is embedded the same
    way. Returns what :func:`~cxrembed.inference.embed.embed_images` returns.
    """
    from cxrembed.inference.embed import embed_images

    return embed_images(
        model,
        listing,
        out,
        images_root=images,
        image_col="image",
        id_col="id",
        resume=False,
        device="cpu",
        progress=False,
    )


def untrained_encoder(run_dir: str | os.PathLike[str]):  # -> Encoder (torch is lazy)
    """An :class:`~cxrembed.inference.encoder.Encoder` of ``run_dir``'s network before training.

    The weights are those :func:`cxrembed.train.trainer.initial_model` draws from the
    run's seed (no ``--init`` / ``--weights``), with the run's preprocessing.
    """
    from cxrembed.inference.encoder import Encoder
    from cxrembed.inference.run import normalization_for, read_run_config
    from cxrembed.train.trainer import initial_model

    config = read_run_config(run_dir)
    pre = config.preprocessing
    window = (
        pre.window if isinstance(pre.window, str) else (float(pre.window[0]), float(pre.window[1]))
    )
    return Encoder(
        initial_model(config).eval(),
        image_size=pre.image_size,
        fit=pre.fit,
        normalization=normalization_for(config),
        window=window,
        config_hash="untrained",
        source=f"{run_dir} (untrained)",
    )
