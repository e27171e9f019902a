"""The ``cxr`` command-line application.

The root app holds the labeller's commands (``label``, ``validate``), which run on the light
install. Other packages plug their commands in through the ``cxrkit.commands`` entry-point
group (cxrembed registers ``prepare``, ``train``, ``embed``, ``search``, ``evaluate``…), so
cxrlabel never imports cxrembed. Each command module parses options, calls one library
function and lets :func:`run_cli` turn a :class:`~cxrlabel.errors.CxrError` into one line on
stderr and exit code 1.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

import typer

from cxrlabel.errors import CxrError, MissingExtraError

__all__ = ["app", "main", "run_cli"]

app = typer.Typer(
    name="cxr",
    help="cxrkit: label chest X-ray reports, validate labels, train and search image embeddings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


@app.callback()
def _root() -> None:
    """cxrkit: label chest X-ray reports, validate labels, train and search image embeddings."""


# Command modules of this package; each exposes ``register(app)``.
_OWN_COMMANDS = ("cxrlabel.commands.label", "cxrlabel.commands.validate")


# Modules that only the optional ``embed`` extra installs.
_EXTRA_MODULES = {"torch", "torchvision", "faiss", "pydicom", "PIL", "safetensors", "pylibjpeg"}


def run_cli(fn: Callable[[], T]) -> T:
    """Call ``fn``; print a ``CxrError`` as one line (no traceback) and exit with code 1.

    A missing optional dependency becomes the same one-line error, naming the extra to
    install (image commands on the light install).
    """
    try:
        return fn()
    except CxrError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in _EXTRA_MODULES:
            raise
        typer.echo(f"error: {MissingExtraError(top, 'embed')}", err=True)
        raise typer.Exit(code=1) from None


def _register_all() -> None:
    for module_name in _OWN_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not built in this checkout
            raise
        module.register(app)
    for ep in entry_points(group="cxrkit.commands"):
        ep.load()(app)


_register_all()


def main() -> None:
    """Console-script entry point for ``cxr``."""
    app(prog_name="cxr")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
