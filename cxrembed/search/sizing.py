"""How much memory an index takes, and the index that fits a memory budget.

The sizes are exact for the flat, IVF-Flat and IVF-PQ kinds: FAISS stores each vector as a
fixed-size code (``4 * dim`` bytes for full float32 vectors, ``m`` bytes for a PQ code with
8-bit sub-quantizers) plus an 8-byte id in the inverted lists, and a fixed part (the coarse
centroids, the PQ codebooks, the OPQ rotation) that does not grow with the collection. For
HNSW the graph links are estimated (``8 * M`` bytes per vector at level 0 plus the upper
levels). :class:`~cxrembed.search.index.VectorIndex` adds its own id array (8 bytes per int
id) and the metadata columns.

This module imports nothing heavy, so a command can check a budget before any work.

Examples
--------
>>> parse_memory("4GB"), parse_memory("1.5 GiB"), parse_memory(1024)
(4000000000, 1610612736, 1024)
>>> bytes_per_vector("ivfpq", {"m": 32}, 128), bytes_per_vector("ivf", {}, 128)
(40, 520)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from cxrembed.errors import VectorInputError

__all__ = [
    "parse_memory",
    "format_bytes",
    "bytes_per_vector",
    "fixed_bytes",
    "index_bytes",
    "pq_m_choices",
    "PQ_NBITS",
]

#: Bits per PQ sub-quantizer code (256 centroids each): one byte per sub-vector.
PQ_NBITS = 8
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_ID_BYTES = 8  # faiss idx_t stored next to each code in the inverted lists


def parse_memory(value: Any, *, name: str = "max_memory") -> int | None:
    """Bytes from ``4GB`` / ``512 MiB`` / an int (None stays None).

    ``kB``, ``MB``, ``GB``, ``TB`` are powers of 1000, ``KiB`` ... ``TiB`` powers of 1024;
    a bare number is bytes.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise VectorInputError(f"{name} must be a size such as 4GB or 512MiB; got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = _SIZE.match(str(value))
        if match is None or match.group(2).lower() not in _UNITS:
            raise VectorInputError(
                f"{name} must be a size such as 4GB, 512MB or 2GiB (units B, kB, MB, GB, TB, "
                f"KiB, MiB, GiB, TiB); got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if not math.isfinite(number) or size < 1:
        raise VectorInputError(f"{name} must be a positive size; got {value!r}")
    return size


def format_bytes(size: float) -> str:
    """``3.2 GB``: sizes in messages, in the units :func:`parse_memory` reads back.

    Examples
    --------
    >>> format_bytes(41_000_000)
    '41.0 MB'
    """
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


def bytes_per_vector(kind: str, settings: Mapping[str, Any], dim: int) -> int:
    """Bytes the FAISS index holds per vector (its code plus the inverted-list id)."""
    if kind == "exact":
        return 4 * dim
    if kind == "ivf":
        return 4 * dim + _ID_BYTES
    if kind == "ivfpq":
        return int(settings["m"]) * PQ_NBITS // 8 + _ID_BYTES
    if kind == "hnsw":  # estimate: 2M level-0 links, upper levels, level and offset entries
        links = int(settings.get("M", 32))
        return 4 * dim + 4 * 2 * links + math.ceil(4 * links / max(links - 1, 1)) + 12
    raise VectorInputError(f"no size rule for index kind {kind!r}")


def fixed_bytes(kind: str, settings: Mapping[str, Any], dim: int) -> int:
    """Bytes that do not grow with the collection (centroids, codebooks, rotation)."""
    if kind in ("exact", "hnsw"):
        return 0
    size = 4 * dim * int(settings["nlist"])  # coarse centroids
    if kind == "ivfpq":
        size += 4 * dim * 2**PQ_NBITS  # one 256-centroid codebook per sub-vector
        size += 4 * dim * dim if settings.get("opq") else 0
    return size


def index_bytes(kind: str, settings: Mapping[str, Any], count: int, dim: int) -> int:
    """FAISS index size for ``count`` vectors: ``count * bytes_per_vector + fixed_bytes``."""
    return count * bytes_per_vector(kind, settings, dim) + fixed_bytes(kind, settings, dim)


def pq_m_choices(dim: int) -> list[int]:
    """PQ code sizes (bytes per vector) that split ``dim`` evenly into sub-vectors of at least
    2 dimensions, largest first: 64, 32, 16, 8, 4, 2, 1 for 128-d."""
    return [m for m in range(dim // 2, 0, -1) if dim % m == 0 and m <= 64] or [1]
