"""cxrembed's commands for the ``cxr`` app, plugged in through the ``cxrkit.commands``
entry point.

Each command lives in its own module under :mod:`cxrembed.commands` and exposes
``register(app)``. Command modules import torch, faiss and pydicom only inside the command
body, so ``cxr --help`` works on the light install and an image command without the
``embed`` extra says which extra to install.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["register"]

_COMMANDS = (
    "prepare",
    "train",
    "embed",
    "search",
    "evaluate",
    "predict_outcome",
)


def register(app: typer.Typer) -> None:
    """Add every available cxrembed command to ``app``."""
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"cxrembed.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cxrembed.commands.{name}":
                continue  # command not built yet
            raise
        module.register(app)
