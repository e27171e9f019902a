"""The ``cxr`` command-line application.

The root app holds the labeller's commands (``label``, ``validate``), which run on the light
install. Other packages plug their commands in through the ``cxrkit.commands`` entry-point
group (cxrembed registers ``prepare``, ``train``, ``embed``, ``search``, ``evaluate``…), so
cxrlabel never imports cxrembed. Each command module parses options with the shared
vocabulary of :mod:`cxrlabel.commands.options`, calls one library function and prints its
result; :func:`~cxrlabel.commands.options.cxr_command` turns a
:class:`~cxrlabel.errors.CxrError` into one line on stderr and exit code 1.

Start-up matters for a labeller run on a few reports: ``cxr label`` and ``cxr validate``
build an app with the labeller's commands only (no entry points are scanned, nothing of
cxrembed is imported) and import spaCy without letting thinc import torch and without
spaCy's own CLI, and end the process without the interpreter's teardown once done
(:mod:`cxrlabel.startup`; ``CXR_FAST_START=0`` in the environment turns this off). ``app``
(the full application) is built on first use.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Annotated, Any

import typer

from cxrlabel.commands.options import run_cli

__all__ = ["app", "build_app", "main", "run_cli"]

_HELP = "cxrkit: label chest X-ray reports, validate labels, train and search image embeddings."

# Command modules of this package; each exposes ``register(app)``.
_OWN_COMMANDS = {"label": "cxrlabel.commands.label", "validate": "cxrlabel.commands.validate"}


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"cxrkit {version('cxrkit')}")
        except PackageNotFoundError:  # running from a source tree that is not installed
            typer.echo("cxrkit (not installed)")
        raise typer.Exit()


def build_app(*, plugins: bool = True) -> typer.Typer:
    """The ``cxr`` app: the labeller's commands, plus the plugged-in ones when ``plugins``."""
    application = typer.Typer(
        name="cxr",
        help=_HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @application.callback()
    def _root(
        show_version: Annotated[
            bool,
            typer.Option(
                "--version",
                help="Print cxrkit's version and exit.",
                is_eager=True,
                callback=_version,
            ),
        ] = False,
    ) -> None:
        """cxrkit: label chest X-ray reports, validate labels, train and search image embeddings."""

    for module_name in _OWN_COMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not built in this checkout
            raise
        module.register(application)
    if plugins:
        for ep in entry_points(group="cxrkit.commands"):
            ep.load()(application)
    return application


app: typer.Typer  # the full application, built by __getattr__ on first use


def __getattr__(name: str) -> Any:
    if name == "app":  # built once, on first use
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point for ``cxr``.

    Called without ``argv`` (the ``cxr`` script, ``python -m cxrlabel.cli``), a labeller
    command ends its process once done, without the interpreter's teardown
    (:func:`cxrlabel.startup.exit_now`); called with arguments, it returns or raises
    ``SystemExit`` as a click application does.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    own = bool(args) and args[0] in _OWN_COMMANDS
    fast = own and os.environ.get("CXR_FAST_START", "1") != "0"  # CXR_FAST_START=0: off
    if fast:
        from cxrlabel.startup import fast_labeller_start

        fast_labeller_start()
    application = build_app(plugins=not own)
    if not (fast and argv is None):
        application(args=args, prog_name="cxr")
        return
    from cxrlabel.startup import exit_now

    try:
        application(args=args, prog_name="cxr")
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
