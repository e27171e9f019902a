"""Pick the torch device to run on, falling back to the CPU when an accelerator is absent."""

from __future__ import annotations

import warnings

import torch

from cxrlabel.errors import InputError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return a usable :class:`torch.device`.

    ``None`` or ``"auto"`` picks CUDA when available, else the CPU. An explicit ``"cuda"`` or
    ``"mps"`` that this machine lacks falls back to the CPU with a ``UserWarning`` (a config
    written on a GPU machine still runs on a laptop).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"unknown device {device!r}: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from exc
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }.get(resolved.type, False)
    if resolved.type == "cuda" and available and resolved.index is not None:
        available = resolved.index < torch.cuda.device_count()
    if not available:
        warnings.warn(
            f"device {str(resolved)!r} is not available on this machine; running on the CPU.",
            UserWarning,
            stacklevel=2,
        )
        return torch.device("cpu")
    return resolved
