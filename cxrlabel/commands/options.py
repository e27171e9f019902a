"""The ``cxr`` option vocabulary, shared by every command of cxrlabel and cxrembed.

One spelling and one help text per idea:

* ``--output/-o``: what the command writes (:func:`Output`);
* ``--id-col``: the table's id column (:func:`IdCol`; found as in :mod:`cxrlabel.columns`);
* ``--jobs/-j``: worker processes, ``0`` = one per core, ``1`` = in this process
  (:data:`Jobs`, :func:`resolve_jobs`, :func:`loader_workers`);
* ``--threads``: CPU threads per process (torch, BLAS) (:data:`Threads`);
* ``--uncertain``: how uncertain (-1) labels count, :data:`cxrlabel.vocab.UNCERTAIN`
  (:data:`Uncertain`, :func:`uncertain_word`);
* ``--show``: metadata columns to show; ``--device``; ``-q/--quiet``;
* ``--format png|svg|pdf`` and ``--dpi``: the figures a command draws (:data:`FigureFormat`,
  :data:`Dpi`, :func:`figure_options`; :mod:`cxrlabel.figures`).

Old spellings stay as hidden options that still work and print a deprecation warning
(:class:`Renamed`), and :func:`cxr_command` turns the library's errors into one line on
stderr with exit code 1, once for every command.

Examples
--------
>>> resolve_jobs(3), loader_workers(1), loader_workers(4)
(3, 0, 4)
>>> split_names("age, pO2_saturation", "--features")
['age', 'pO2_saturation']
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cxrlabel.atomic import disk_error_among
from cxrlabel.errors import CxrError, InputError, MissingExtraError
from cxrlabel.vocab import UNCERTAIN

__all__ = [
    "Output",
    "IdCol",
    "Jobs",
    "Threads",
    "Quiet",
    "Uncertain",
    "Show",
    "Device",
    "Lexicon",
    "Bootstrap",
    "GroupCol",
    "FigureFormat",
    "Dpi",
    "figure_style",
    "figure_options",
    "option",
    "argument",
    "text_option",
    "path_option",
    "Renamed",
    "cxr_command",
    "run_cli",
    "resolve_jobs",
    "loader_workers",
    "uncertain_word",
    "split_names",
    "parse_ints",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# --------------------------------------------------------------------------- options


def option(kind: Any, *flags: str, **kwargs: Any) -> Any:
    """``Annotated[kind, typer.Option(*flags, **kwargs)]`` in one call: an option's type,
    spelling and help read on one line, as with :func:`text_option`."""
    return Annotated[kind, typer.Option(*flags, **kwargs)]


def argument(kind: Any, **kwargs: Any) -> Any:
    """``Annotated[kind, typer.Argument(**kwargs)]`` in one call (see :func:`option`)."""
    return Annotated[kind, typer.Argument(**kwargs)]


def Output(help: str, *, required: bool = True) -> Any:  # noqa: N802 - reads as a type
    """``--output/-o`` described by the command (what it writes there)."""
    kind = Path if required else Path | None
    return Annotated[kind, typer.Option("--output", "-o", help=help, show_default=False)]


ID_COL_HELP = "Id column of the table: the key to its reports, images or embeddings."


def IdCol(default: str) -> Any:  # noqa: N802 - reads as a type
    """``--id-col`` with one help text; ``default`` says what is used when it is not given."""
    return Annotated[str | None, typer.Option("--id-col", help=ID_COL_HELP, show_default=default)]


JOBS_HELP = "Worker processes: 0 = one per CPU core, 1 = in this process."
Jobs = option(int, "--jobs", "-j", min=0, help=JOBS_HELP)
Threads = option(
    int,
    "--threads",
    min=0,
    help="CPU threads per process (torch, BLAS); 0 = the library's default.",
)
Quiet = option(
    bool,
    "--quiet",
    "-q",
    help="No progress bars or notes (warnings and errors still show); results still go to stdout.",
)
UNCERTAIN_HELP = (
    "How uncertain (-1) labels count: positive, negative or ignore (CheXpert's U-Ones, "
    "U-Zeros, U-Ignore; ones and zeros are accepted)."
)
Uncertain = option(str, "--uncertain", help=UNCERTAIN_HELP, metavar="positive|negative|ignore")
Show = option(
    str | None,
    "--show",
    help="Comma-separated metadata columns to show in search results (default: all).",
)
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps."
Device = option(str, "--device", help=DEVICE_HELP)


Lexicon = option(
    Path | None, "--lexicon", help="Folder of lexicon files overriding the packaged ones."
)
Bootstrap = option(
    int, "--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals (0: none)."
)
GroupCol = option(
    str | None,
    "--group-col",
    help="Patient id column: splits, folds and exclusions keep each patient whole.",
)


FigureFormat = option(
    str | None,
    "--format",
    "--figure-format",
    help="File format of the figures: png, svg or pdf.",
    show_default="png, or the suffix of a figure file name given",
    metavar="png|svg|pdf",
)
Dpi = option(
    int,
    "--dpi",
    min=20,
    max=1200,
    help="Resolution of the figures in dots per inch (PNG pixels per inch; raster parts "
    "of SVG and PDF).",
)


def figure_style(format: str | None, dpi: int) -> Any:
    """The :class:`~cxrlabel.figures.FigureStyle` of ``--format`` and ``--dpi`` (checked).

    Examples
    --------
    >>> figure_style("SVG", 300)
    FigureStyle(format='svg', dpi=300)
    """
    from cxrlabel.figures import FigureStyle

    return FigureStyle(format, dpi)


def figure_options(format: str | None, dpi: int) -> dict[str, Any]:
    """``{"figures": FigureStyle}`` for the library call when ``--format`` or ``--dpi`` was
    set, ``{}`` at the defaults (so the default call stays as it was); checked either way.

    Examples
    --------
    >>> figure_options(None, 150), figure_options("pdf", 150)
    ({}, {'figures': FigureStyle(format='pdf', dpi=150)})
    """
    from cxrlabel.figures import FigureStyle

    style = figure_style(format, dpi)
    return {} if style == FigureStyle() else {"figures": style}


def text_option(flag: str, help: str, **kwargs: Any) -> Any:
    """An optional text option (``str | None``) in one line."""
    return Annotated[str | None, typer.Option(flag, help=help, **kwargs)]


def path_option(flag: str, help: str, **kwargs: Any) -> Any:
    """An optional path option (``Path | None``) in one line."""
    return Annotated[Path | None, typer.Option(flag, help=help, **kwargs)]


def resolve_jobs(jobs: int) -> int:
    """Worker processes for ``--jobs``: 0 means one per CPU core."""
    return (os.cpu_count() or 1) if jobs == 0 else jobs


def loader_workers(jobs: int) -> int:
    """DataLoader ``num_workers`` for ``--jobs``: 1 loads in this process (0 workers)."""
    jobs = resolve_jobs(jobs)
    return 0 if jobs == 1 else jobs


def uncertain_word(value: str, option: str = "--uncertain") -> str:
    """The canonical :data:`~cxrlabel.vocab.UNCERTAIN` word (``ones`` -> ``positive``).

    Examples
    --------
    >>> uncertain_word("ones"), uncertain_word("Ignore")
    ('positive', 'ignore')
    """
    if value in UNCERTAIN:
        return UNCERTAIN.check(value, option)
    raise InputError(
        f"{option} must be ignore, zeros or ones (also spelled negative for zeros, positive "
        f"for ones); got {value!r}"
    )


def split_names(text: str | None, option: str) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None stays None; an empty item is an error."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise InputError(
            f"{option} must be names separated by commas (e.g. a,b); got {text!r} with an "
            "empty item"
        )
    return names


def parse_ints(text: str, option: str) -> list[int]:
    """``"1,5,10"`` -> ``[1, 5, 10]``; anything but positive integers is an error.

    Examples
    --------
    >>> parse_ints("1, 5,10", "--k")
    [1, 5, 10]
    """
    try:
        values = [int(part) for part in (split_names(text, option) or [])]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise InputError(
            f"{option} must be positive integers separated by commas (e.g. 1,5,10); got {text!r}"
        )
    return values


# --------------------------------------------------------------------------- errors

# Modules that only the optional extras install, and the extra that brings each.
_EXTRA_OF = {
    "torch": "embed",
    "torchvision": "embed",
    "faiss": "embed",
    "pydicom": "embed",
    "PIL": "embed",
    "safetensors": "embed",
    "pylibjpeg": "embed",
    "scipy": "embed",
    "sklearn": "embed",
    "matplotlib": "plots",
    "pyarrow": "parquet",
}


def run_cli(fn: Callable[[], T], outputs: Sequence[str | os.PathLike[str]] = ()) -> T:
    """Call ``fn``; print a ``CxrError`` as one line (no traceback) and exit with code 1.

    A missing optional dependency becomes the same one-line error, naming the extra to
    install (image commands on the light install), and so does a full, read-only or
    unwritable disk (:func:`cxrlabel.atomic.disk_error_among`: a failure that names no file
    is blamed on the one of ``outputs`` whose disk shows the problem).
    """
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return fn()
    except CxrError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in _EXTRA_OF:
            raise
        typer.echo(f"error: {MissingExtraError(top, _EXTRA_OF[top])}", err=True)
        raise typer.Exit(code=1) from None
    except Exception as exc:  # a full or read-only disk outside cxrlabel.atomic (mkdir...)
        error = disk_error_among(exc, outputs)
        if error is None:
            raise
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None


def _show_warning(
    message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
) -> None:
    """A library warning as one ``warning: ...`` line on stderr (no file and line)."""
    typer.echo(f"warning: {message}", err=True)


# --------------------------------------------------------------------------- renamed options


@dataclass(frozen=True)
class Renamed:
    """A former spelling of an option, kept hidden: it still works and warns.

    ``Renamed("--out", "output", Path)`` adds a hidden ``--out PATH`` whose value goes to the
    ``output`` parameter. ``convert`` translates an old value to the new option's meaning;
    ``flag`` marks a boolean switch; ``required`` makes the new option required once the
    old spelling has been taken into account.
    """

    old: str
    new: str
    kind: Any = str
    convert: Callable[[Any], Any] | None = None
    flag: bool = False
    required: bool = False

    @property
    def param(self) -> str:
        return "renamed_" + self.old.lstrip("-").replace("-", "_")

    def parameter(self) -> inspect.Parameter:
        kind = bool if self.flag else self.kind | None
        option = typer.Option(self.old, hidden=True, show_default=False)
        return inspect.Parameter(
            self.param,
            inspect.Parameter.KEYWORD_ONLY,
            default=False if self.flag else None,
            annotation=Annotated[kind, option],
        )


def _option_name(parameter: inspect.Parameter) -> str:
    """``--output / -o`` of a typer-annotated parameter (for messages)."""
    for meta in getattr(parameter.annotation, "__metadata__", ()):
        decls = [meta.default, *(getattr(meta, "param_decls", None) or ())]
        names = [d for d in decls if isinstance(d, str) and d.startswith("-")]
        if names:
            return " / ".join(names)
    return "--" + parameter.name.replace("_", "-")


def _apply_renamed(
    r: Renamed, kwargs: dict[str, Any], signature: inspect.Signature, ctx: typer.Context
) -> None:
    value = kwargs.pop(r.param)
    target = signature.parameters[r.new]
    name = _option_name(target)
    if value is not None and value is not False:
        source = ctx.get_parameter_source(r.new)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            raise typer.BadParameter(f"give {name} or {r.old}, not both", param_hint=r.old)
        typer.echo(f"warning: {r.old} is deprecated; use {name}", err=True)
        kwargs[r.new] = r.convert(value) if r.convert else value
    if r.required and kwargs[r.new] is None:
        raise typer.BadParameter("this option is required", param_hint=f"'{name}'")


_CONTEXT = "cxr_context"  # the click context, passed to the wrapper only


def cxr_command(*renamed: Renamed, writes: Sequence[str] = ("output",)) -> Callable[[F], F]:
    """Decorate a command: library errors become one line and exit 1; old spellings work.

    ``writes`` names the parameters holding the paths the command writes (for a full or
    read-only disk whose error names no file).

    Examples
    --------
    >>> @cxr_command(Renamed("--out", "output", Path))
    ... def demo(output: Annotated[Path | None, typer.Option("--output")] = None) -> None:
    ...     print(output)
    >>> list(inspect.signature(demo).parameters)
    ['output', 'renamed_out', 'cxr_context']
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)

        own = [p.name for p in signature.parameters.values() if p.annotation is typer.Context]
        context = own[0] if own else _CONTEXT  # typer passes the context to one parameter

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            ctx = kwargs[context] if own else kwargs.pop(context)
            for r in renamed:
                _apply_renamed(r, kwargs, signature, ctx)
            outputs = [kwargs[name] for name in writes if kwargs.get(name) is not None]
            return run_cli(lambda: fn(**kwargs), outputs)

        wrapper.__cxr_command__ = True  # type: ignore[attr-defined]
        params = [*signature.parameters.values(), *(r.parameter() for r in renamed)]
        if not own:
            params.append(
                inspect.Parameter(
                    _CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context
                )
            )
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
