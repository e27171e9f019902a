"""A failure on one rank of a multi-process run stops every rank, with the error printed
once (by the rank that failed), instead of leaving the others waiting in a collective.

The ranks are plain processes with torchrun's environment (no torchrun: it would stop
the other ranks itself and hide a hang), on CPU with gloo.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .._runs import tiny_train_argv, write_image_table

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gloo on POSIX")

ROOT = Path(__file__).resolve().parents[3]

# cxr train with an error raised in rank 1's third training step (a CxrError, as an image
# only that rank reads would give), then the CLI as usual.
_FAILING_TRAIN = """
import os, sys
from cxrembed.errors import ImageReadError
from cxrembed.train import loop
original = loop._backward_and_step
steps = []
def step(parts, loss):
    steps.append(1)
    if os.environ["RANK"] == "1" and len(steps) == 3:
        raise ImageReadError("x.png", "injected " + "on rank one", "corrupt")
    return original(parts, loss)
loop._backward_and_step = step
from cxrlabel.cli import main
main(sys.argv[1:])
"""

# Rank 1 records a failure and stays alive without joining any collective (as a rank
# stuck in its own clean-up would): rank 0, blocked in a barrier, is ended by its watchdog.
_SILENT_PEER = """
import os, sys, time
import torch.distributed as dist
from cxrembed.train import distributed
distributed.PEER_GRACE_SECONDS = 1.0
ctx = distributed.setup("cpu")
if ctx.rank == 1:
    assert distributed.peer_failure(ctx, RuntimeError("boom")) is None
    time.sleep(120)
else:
    dist.barrier()
    print("barrier returned", flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ranks(argv: list[str], cwd: Path, world: int = 2) -> list[subprocess.Popen]:
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT),
        }
        procs.append(
            subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    return procs


def _finish(procs: list[subprocess.Popen], timeout: float) -> list[tuple[int, str, str]]:
    """Each rank's (exit code, stdout, stderr); kills them all if one outlives ``timeout``."""
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
        return [(p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.slow
def test_an_error_on_one_rank_stops_both_and_is_printed_once(tmp_path: Path) -> None:
    write_image_table(tmp_path)
    (tmp_path / "failing_train.py").write_text(_FAILING_TRAIN)
    argv = [sys.executable, "failing_train.py", "train", *tiny_train_argv("t.csv", ".", "run", 3)]
    # bounded: without the shared failure rank 0 would wait in its collective for gloo's
    # 30-minute timeout whenever rank 1's process stays alive
    (rc0, _, err0), (rc1, _, err1) = _finish(_ranks(argv, tmp_path), timeout=600)
    both = err0 + err1
    assert rc1 == 1 and "error: cannot read image 'x.png': injected on rank one" in err1
    assert rc0 == 1, err0[-2000:]
    assert "rank 0 stopped because rank 1 failed (ImageReadError" in err0
    assert both.count("injected on rank one") == 1  # printed once, by the rank that failed
    assert "Traceback" not in both


def test_a_rank_stuck_in_a_collective_is_ended_when_its_peer_failed(tmp_path: Path) -> None:
    (tmp_path / "silent_peer.py").write_text(_SILENT_PEER)
    procs = _ranks([sys.executable, "silent_peer.py"], tmp_path)
    try:
        out0, err0 = procs[0].communicate(timeout=300)
        rc0 = procs[0].returncode
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert rc0 == 1 and "barrier returned" not in out0
    assert "error: rank 0 stopped because rank 1 failed (RuntimeError" in err0
