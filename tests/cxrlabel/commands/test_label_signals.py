"""Killing a real ``cxr label --jobs 2`` ends its worker processes (and, unless it is
SIGKILL, removes the temporary ``.partial`` outputs)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import psutil
import pytest

from cxrlabel.workers import die_with_parent, sigterm_as_exit

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

_SENTENCES = [
    "No pneumothorax.",
    "Small left pleural effusion.",
    "Heart size is normal.",
    "Possible right lower lobe pneumonia.",
    "Lungs are clear.",
]


def _wait(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _as_in_a_terminal() -> None:
    """Give the child SIGINT's default action, as a terminal's foreground job has.

    A test runner started in the background without job control (``pytest &`` in a script,
    ``nohup``, some CI shells) has SIGINT ignored, its children inherit that and Python
    keeps it (no KeyboardInterrupt): the signal is then lost and the run goes on labelling
    to the end. That, not a hang in ``cxr label``, is how this test once ran out of time.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("signals") / "reports.csv"
    n = 60_000
    texts = [
        " ".join(_SENTENCES[(i + k) % 5] for k in range(3)) + f" Report {i}." for i in range(n)
    ]
    pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": texts}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"]
)
def test_killing_cxr_label_ends_its_workers(
    tmp_path: Path, big_csv: Path, sig: signal.Signals
) -> None:
    out, ev = tmp_path / "labels.csv", tmp_path / "evidence.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "cxrlabel.cli",
        "label",
        str(big_csv),
        "-o",
        str(out),
        "--evidence",
        str(ev),
        "--jobs",
        "2",
        "--chunk-size",
        "200",
        "--quiet",
    ]
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            preexec_fn=_as_in_a_terminal,
        )
        try:
            parent = psutil.Process(proc.pid)

            def running() -> list[psutil.Process] | None:
                kids = parent.children(recursive=True)
                started = len(kids) >= 2 and (tmp_path / ".labels.csv.partial").exists()
                return kids if started else None

            workers = _wait(running, 120, "two workers and a first chunk written")
            os.kill(proc.pid, sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    _wait(lambda: not _alive(workers), 60, f"workers {[w.pid for w in workers]} to end")
    assert proc.returncode != 0 and not out.exists()
    if sig != signal.SIGKILL:
        assert not list(tmp_path.glob(".*.partial")), "temporary outputs left behind"
        assert b"Traceback" not in (tmp_path / "stderr.txt").read_bytes()
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM


def test_a_worker_ends_when_its_parent_does(tmp_path: Path) -> None:
    """The worker side alone: a grandchild armed by die_with_parent outlives its parent by
    less than a second (a bare grandchild would be adopted and live on)."""
    code = (
        "import os, sys, time\n"
        "from cxrlabel.workers import die_with_parent\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    die_with_parent(os.getppid())\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = psutil.Process(int(proc.stdout.readline()))
    time.sleep(0.5)  # let the child arm itself
    proc.kill()
    proc.wait(timeout=10)
    _wait(lambda: not _alive([child]), 10, "the orphaned worker to end")


def test_die_with_parent_uses_the_kernel_on_linux() -> None:
    code = "import os\nfrom cxrlabel.workers import die_with_parent\nprint(die_with_parent(os.getppid()))"
    how = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert how.strip() == ("prctl" if sys.platform.startswith("linux") else "poll")


def test_sigterm_raises_system_exit_within_the_block_only() -> None:
    with pytest.raises(SystemExit) as exc, sigterm_as_exit():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert exc.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def _sigterm_action() -> str:
    action = signal.getsignal(signal.SIGTERM)
    return "default" if action == signal.SIG_DFL else repr(action)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")
def test_a_worker_does_not_inherit_the_parents_sigterm_handler() -> None:
    """A forked worker would inherit sigterm_as_exit's handler: its SystemExit is caught by
    the pool and the worker lives on after terminate(), until stop_workers' SIGKILL."""
    fork = multiprocessing.get_context("fork")
    with (
        sigterm_as_exit(),
        ProcessPoolExecutor(
            1, mp_context=fork, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as pool,
    ):
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL  # the parent's handler
        assert pool.submit(_sigterm_action).result(timeout=60) == "default"


def test_stopping_the_pool_frees_a_manager_thread_stuck_on_half_a_result() -> None:
    """A worker killed while sending a result leaves half a message in the result pipe; the
    pool's manager thread must not wait for the rest for ever (the interpreter's exit joins
    it: ``cxr label`` hung after SIGTERM in 4 of 8 runs on a loaded machine)."""
    import struct

    from cxrlabel.workers import pool_children, stop_workers

    before = pool_children()
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    assert pool.submit(abs, -1).result(timeout=60) == 1  # worker and manager running
    manager = pool._executor_manager_thread
    writer = pool._result_queue._writer
    os.write(writer.fileno(), struct.pack("!i", 1000) + b"x" * 10)  # 10 of 1000 bytes
    time.sleep(0.5)  # the manager is now reading the rest
    stop_workers(pool, before)
    manager.join(20)
    assert not manager.is_alive(), "the pool's manager thread still waits for the result"
