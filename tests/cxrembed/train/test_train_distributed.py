"""The distributed path on CPU: two gloo processes train one model and agree on it.

Each process is started by ``torch.multiprocessing.spawn`` with torchrun's environment
variables, so :func:`cxrembed.train.train` joins the process group itself, exactly as
under ``torchrun --nproc-per-node 2``.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, folder: Path, loss: str = "ms") -> None:
    """One rank: record every run-folder write, train, save what the test compares."""
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    import pandas as pd

    import cxrembed.train.checkpoint as checkpoint
    import cxrembed.train.trainer as trainer
    from tests.cxrembed._stripes import FAST

    writes: list[str] = []
    for name in ("write_config", "write_table", "write_metrics", "save_last", "save_best"):
        original = getattr(checkpoint.RunFolder, name)

        def record(self, *args, _name=name, _original=original, **kwargs):
            writes.append(_name)
            return _original(self, *args, **kwargs)

        setattr(checkpoint.RunFolder, name, record)
    models, losses = [], []
    original_fit = trainer.fit

    def fit(model, loss_fn, *args, **kwargs):
        models.append(model)
        losses.append(loss_fn)
        return original_fit(model, loss_fn, *args, **kwargs)

    trainer.fit = fit
    table = pd.read_csv(folder / "table.csv")
    result = trainer.train(
        table,
        folder / "run",
        images=folder / "img",
        progress=False,
        overrides={**FAST, "loss": loss, "epochs": 2, "batches_per_epoch": 4},
    )
    torch.save(
        {
            "state": models[0].state_dict(),
            "loss": losses[0].state_dict(),
            "writes": writes,
            "metrics": result.metrics,
            "step": result.step,
            "run_dir": result.run_dir,
        },
        folder / f"rank{rank}.pt",
    )


@pytest.mark.slow
def test_two_gloo_ranks_agree_on_weights_and_only_rank0_writes(tmp_path):
    from .._stripes import write_stripes

    write_stripes(tmp_path / "img", 24, val_every=4).to_csv(tmp_path / "table.csv", index=False)
    mp.spawn(_worker, args=(_free_port(), tmp_path), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]

    # 4 batches per epoch shared by 2 ranks: 2 steps per rank per epoch.
    assert [r["step"] for r in ranks] == [4, 4]
    first, second = ranks[0]["state"], ranks[1]["state"]
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first), "ranks disagree on weights"
    # Both ranks computed the same validation metrics from the gathered embeddings.
    keys = ["val_mean_average_precision_at_r", "val_precision_at_1", "val_queries", "step"]
    assert [[row[k] for k in keys] for row in ranks[0]["metrics"]] == [
        [row[k] for k in keys] for row in ranks[1]["metrics"]
    ]
    assert ranks[0]["metrics"][0]["val_queries"] == 6.0
    # ...while training on different batches (their own losses differ).
    assert ranks[0]["metrics"][0]["train_loss"] != ranks[1]["metrics"][0]["train_loss"]
    # Only rank 0 wrote; what it wrote is the agreed model.
    assert ranks[1]["writes"] == [] and ranks[1]["run_dir"] is None
    assert {"write_config", "write_table", "save_last", "save_best", "write_metrics"} == set(
        ranks[0]["writes"]
    )
    from cxrembed.train.checkpoint import read_weights

    saved, meta = read_weights(tmp_path / "run" / "last.safetensors")
    assert meta["step"] == "4"
    assert all(torch.equal(saved[k], first[k]) for k in saved)
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_loss_proxies_are_synchronised_across_ranks(tmp_path):
    from .._stripes import write_stripes

    write_stripes(tmp_path / "img", 24, val_every=4).to_csv(tmp_path / "table.csv", index=False)
    mp.spawn(_worker, args=(_free_port(), tmp_path, "ms+proxy"), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    a, b = ranks[0]["loss"], ranks[1]["loss"]
    assert list(a) == ["proxy.proxies"]
    assert torch.equal(a["proxy.proxies"], b["proxy.proxies"]), "ranks disagree on proxies"
    assert all(torch.equal(ranks[0]["state"][k], ranks[1]["state"][k]) for k in ranks[0]["state"])
    from cxrembed.train.checkpoint import load_last

    _, state = load_last(tmp_path / "run")
    assert torch.equal(state["loss"]["proxy.proxies"], a["proxy.proxies"])
