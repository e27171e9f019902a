"""Worker processes that live no longer than the run that started them.

``cxr label --jobs N`` labels in a process pool. Without care, killing the parent leaves
the workers running (each holding a labeller and the terminal's stderr) until they finish
their queue. Three measures, each for one way a run can end:

* :func:`die_with_parent`, in every worker as it starts: on Linux the kernel sends the
  worker SIGKILL when its parent dies, even by SIGKILL (``prctl(PR_SET_PDEATHSIG)``); where
  that call does not exist, a daemon thread polls the parent id and exits when it changes.
  Workers also ignore SIGINT: a Ctrl-C reaches the whole process group, and it is the
  parent's job to stop them and clean up. SIGTERM gets its default action back: a forked
  worker inherits the parent's :func:`sigterm_as_exit` handler, whose ``SystemExit`` the
  pool would catch and send back as a result, leaving the worker alive until the SIGKILL
  that :func:`stop_workers` sends seconds later.
* :func:`sigterm_as_exit`, around the parent's run: SIGTERM raises ``SystemExit(143)``, so
  the run unwinds like an interrupt (temporary ``.partial`` outputs are removed, the pool is
  stopped) and the process still exits with the status a SIGTERM gives.
* :func:`stop_workers`, when the run unwinds: pending chunks are cancelled and the pool's
  processes terminated at once instead of finishing their chunks.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from multiprocessing.process import BaseProcess

__all__ = ["die_with_parent", "sigterm_as_exit", "pool_children", "stop_workers"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent: int) -> str:
    """Make this (worker) process end when process ``parent`` ends; return how.

    ``"prctl"`` on Linux, ``"poll"`` elsewhere (a thread checks every half second).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's SystemExit handler
    how = "prctl" if _set_parent_death_signal() else "poll"
    if how == "poll":
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    return how


def _set_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, interval: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(128 + SIGTERM)`` in the main thread.

    Does nothing outside the main thread (signal handlers can only be set there) or when
    the program has its own SIGTERM handler; the previous handler is restored after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pool_children() -> set[BaseProcess]:
    """The live child processes started by :mod:`multiprocessing` (to tell a pool's apart)."""
    return set(multiprocessing.active_children())


def stop_workers(pool: Executor, before: set[BaseProcess], timeout: float = 5.0) -> None:
    """Cancel the pool's pending work and end its processes now.

    The pool's processes are the children started since ``before`` was taken
    (:func:`pool_children`); they are sent SIGTERM, then SIGKILL after ``timeout``.
    """
    results = getattr(pool, "_result_queue", None)  # (shutdown forgets it)
    pool.shutdown(wait=False, cancel_futures=True)
    workers = pool_children() - before
    for p in workers:
        p.terminate()
    deadline = time.monotonic() + timeout
    for p in workers:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)
    _unblock_result_reader(results)


def _unblock_result_reader(results: object) -> None:
    """Let the pool's manager thread end once its workers are dead.

    A worker killed while sending a result leaves half a message in the result pipe; the
    manager thread then blocks reading the rest, and the interpreter's exit, which joins
    that thread, hangs for ever (4 of 8 SIGTERMs on a loaded machine). The parent holds the
    pipe's write end too, so no EOF ever comes: closing that copy gives the reader its EOF,
    which the manager treats as a broken pool, and it ends.
    """
    writer = getattr(results, "_writer", None)  # ProcessPoolExecutor's private SimpleQueue
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()
