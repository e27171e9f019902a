"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or Ctrl-C mid-write never leaves a half-written output behind, and readers never
see a partial file. Used by every stage that writes a result.

A write that fails because the disk is full, the file system is read-only or the folder is
not writable becomes one :class:`~cxrlabel.errors.OutputError` naming the file and the
problem (:func:`disk_error`), with the temporary file removed, so the command prints one
line and a re-run after freeing space starts clean. Libraries report a full disk in many
ways (``OSError`` with or without ``errno``, ``RuntimeError`` from torch and FAISS, Rust
errors from safetensors); they are recognised by their ``errno``, their text, or a disk
with (almost) no space left at the moment of the failure.

Examples
--------
>>> import errno
>>> error = disk_error(OSError(errno.EROFS, "Read-only file system"), "/data/out.csv")
>>> str(error)
'cannot write /data/out.csv: the file system is read-only. Fix: choose an output on a writable disk'
>>> disk_error(ValueError("bad value"), "/data/out.csv") is None
True
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from cxrlabel.errors import CxrError, OutputError

__all__ = [
    "atomic_path",
    "atomic_open",
    "write_files",
    "writing",
    "disk_error",
    "disk_error_among",
    "free_bytes",
    "check_free",
]

#: errno of a failed write -> (the problem, the fix).
_PROBLEMS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", "free some space or write to another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write to another disk"),
    errno.EFBIG: ("file too large for this file system", "write to another disk"),
    errno.EROFS: ("the file system is read-only", "choose an output on a writable disk"),
    errno.EACCES: ("permission denied", "choose another output folder or make it writable"),
    errno.EPERM: ("operation not permitted", "choose another output folder or make it writable"),
    errno.ENOTDIR: (
        "a file is in the way: its path needs a folder where a file is",
        "choose another output path, or move that file away",
    ),
}
#: How libraries that drop ``errno`` still say it (lower case).
_WORDS: tuple[tuple[str, int], ...] = (
    ("no space left", errno.ENOSPC),
    ("os error 28", errno.ENOSPC),
    ("errno 28", errno.ENOSPC),
    ("storagefull", errno.ENOSPC),
    ("disk quota", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
    ("os error 30", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("os error 13", errno.EACCES),
)
#: Below this many free bytes, a failed write (OSError / RuntimeError) is a full disk.
_NEARLY_FULL = 1 << 20
_FULL = (errno.ENOSPC, errno.EDQUOT)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system of ``path`` (or of its nearest existing parent)."""
    here = Path(os.path.abspath(path))
    for folder in (here, *here.parents):
        with contextlib.suppress(OSError):
            if folder.exists():
                return shutil.disk_usage(folder).free
    return None


def _mb(nbytes: int) -> str:
    """A size to read in a message (KB below 0.1 MB, where MB would show 0.0).

    >>> _mb(3_100_000), _mb(12_288), _mb(0)
    ('3.1 MB', '12 KB', '0 KB')
    """
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 100_000 else f"{nbytes / 1e3:.0f} KB"


def _errno_of(exc: BaseException, path: str | os.PathLike[str]) -> int | None:
    """The write problem behind ``exc`` (its chain included), or None when it is another."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, CxrError) or not isinstance(seen, Exception):
            return None
        code = getattr(seen, "errno", None) if isinstance(seen, OSError) else None
        if code in (errno.ENOTDIR, errno.EEXIST):  # mkdir through a file: either errno
            named = getattr(seen, "filename", None)
            return errno.ENOTDIR if _file_in_the_way(named or path) else None
        if code in _PROBLEMS:
            return code
        text = str(seen).lower()
        for words, found in _WORDS:
            if words in text:
                return found
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, OSError | RuntimeError):
        free = free_bytes(Path(path).parent)
        if free is not None and free < _NEARLY_FULL:
            return errno.ENOSPC
    return None


def _file_in_the_way(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` or one of its parents exists and is not a folder."""
    here = Path(os.path.abspath(path))
    return any(p.exists() and not p.is_dir() for p in (here, *here.parents))


def _message(code: int, path: str | os.PathLike[str], need: int | None, verb: str = "write") -> str:
    problem, fix = _PROBLEMS[code]
    if code in _FULL:
        free = free_bytes(Path(path).parent)
        sizes = [
            f"need about {_mb(need)}" if need else "",
            "" if free is None else f"{_mb(free)} free",
        ]
        detail = ", ".join(s for s in sizes if s)
        problem += f" ({detail})" if detail else ""
        fix += ", then run the command again"
    return f"cannot {verb} {path}: {problem}. Fix: {fix}"


def disk_error(
    exc: BaseException, path: str | os.PathLike[str] | None, *, need: int | None = None
) -> OutputError | None:
    """An :class:`OutputError` for ``exc`` if it is a full, read-only or unwritable disk.

    ``path`` is the file being written, ``need`` the bytes the write needed, when known.
    Without ``path``, the file ``exc`` names is used, and a permission error says "cannot
    access" (it may have been a read). Returns None for any other failure.
    """
    verb = "write"
    if path is None:
        path = getattr(exc, "filename", None)
        if path is None:
            return None
        if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM):
            verb = "access"
    code = _errno_of(exc, path)
    if code is None:
        return None
    return OutputError(_message(code, path, need, verb))


def disk_error_among(
    exc: BaseException, paths: Sequence[str | os.PathLike[str]]
) -> OutputError | None:
    """:func:`disk_error` for a failure that names no file, while writing one of ``paths``.

    The path blamed is the one whose disk shows the problem: the least free space for a full
    disk, a read-only file system, a folder this user cannot write; else the first.
    """
    named = disk_error(exc, None)
    if named is not None or not paths:
        return named
    code = next((c for c in (_errno_of(exc, p) for p in paths) if c is not None), None)
    if code is None:
        return None
    return OutputError(_message(code, _blamed(code, list(paths)), None))


def _blamed(code: int, paths: list[str | os.PathLike[str]]) -> str | os.PathLike[str]:
    def folder(path: str | os.PathLike[str]) -> Path:  # the path, else its nearest parent
        here = Path(os.path.abspath(path))
        return next((p for p in (here, *here.parents) if p.exists()), here)

    if code in _FULL:
        return min(paths, key=lambda p: free_bytes(folder(p)) or 0)
    if code == errno.EROFS:
        readonly = [p for p in paths if os.statvfs(folder(p)).f_flag & os.ST_RDONLY]
        return (readonly or paths)[0]
    unwritable = [p for p in paths if not os.access(folder(p), os.W_OK)]
    return (unwritable or paths)[0]


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], *, need: int | None = None) -> Iterator[None]:
    """Turn a disk failure of the writes to ``path`` inside the block into an OutputError."""
    try:
        yield
    except BaseException as exc:
        error = disk_error(exc, path, need=need)
        if error is None:
            raise
        raise error from exc


def check_free(path: str | os.PathLike[str], need: int) -> None:
    """Refuse to start writing ``need`` bytes to ``path`` when the disk has less free.

    For files written in place (memory maps), where running out of space half way would
    crash the process (SIGBUS) instead of raising.
    """
    free = free_bytes(Path(path).parent)
    if free is not None and need > free:
        raise OutputError(_message(errno.ENOSPC, path, need))


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, need: int | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success.

    ``need`` (bytes, when known) goes into the message of a full disk.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> out.read_text()
    'hello'
    """
    target = Path(target)
    with writing(target, need=need):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        code = _errno_of(exc, target)  # before the partial file frees its space
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if code is None:
            raise
        raise OutputError(_message(code, target, need)) from exc


@contextlib.contextmanager
def atomic_open(
    target: str | os.PathLike[str],
    mode: str = "w",
    encoding: str | None = "utf-8",
    *,
    need: int | None = None,
) -> Iterator[IO]:
    """Open a temporary file for writing and rename it onto ``target`` when closed cleanly."""
    if "b" in mode:
        encoding = None
    with (
        atomic_path(target, need=need) as tmp,
        open(tmp, mode, encoding=encoding, newline=None) as fh,
    ):
        yield fh


def write_files(
    out_dir: str | os.PathLike[str], contents: Mapping[str, tuple[str, Any]]
) -> dict[str, Path]:
    """Make ``out_dir`` and write each ``key: (file name, content)`` in it atomically: a
    string as text, a table (anything with ``to_csv``) as CSV without its index.

    What the reports' ``write`` methods share; returns the paths by key, in order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> paths = write_files(tempfile.mkdtemp(), {"markdown": ("m.md", "# hi")})
    >>> paths["markdown"].read_text()
    '# hi'
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, (name, _) in contents.items()}
    for key, (_, content) in contents.items():
        with atomic_open(paths[key]) as fh:
            if isinstance(content, str):
                fh.write(content)
            else:
                content.to_csv(fh, index=False)
    return paths
