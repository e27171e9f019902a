"""Loss speed: cxrembed's multi-similarity loss + mining against PML's, forward + backward.

In one run, on CPU, for each batch size (default 256 and 512, embedding size 128):

* single-label batches (``m`` exams per class, as a class-balanced sampler gives): PML's
  ``MultiSimilarityLoss(alpha=2, beta=50, base=0.5)`` on the pairs of
  ``MultiSimilarityMiner(epsilon=0.1)`` vs ``cxrembed.losses.MultiSimilarityLoss()``;
  median time of forward + backward, the ratio, and the largest value / gradient difference;
* the multi-label path (no peer exists): MS loss on 14-label sets, with and without the
  noise options (overlap weighting, label reliability, drop_fraction), and ML2. Label sets
  are the IU gold labels of ../shared/data/cxr_dev, drawn by MultiLabelBatchSampler; when
  that folder is absent this part says so and uses random label sets instead.

PML and cxrembed are timed alternately, call by call, so machine noise hits both alike.

Usage: python benchmarks/loss_speed.py [--batch-sizes 256 512] [--dim 128] [--repeats 30]
       [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import common
import numpy as np
import torch

DATA = common.CXR_DEV
TARGET_RATIO = 2.0


def _time_call(fn: Callable[[torch.Tensor], torch.Tensor], emb: torch.Tensor) -> float:
    """Seconds for one forward + backward on a fresh leaf copy of ``emb``."""
    x = emb.detach().clone().requires_grad_()
    start = time.perf_counter()
    fn(x).backward()
    return time.perf_counter() - start


def _median_ms(
    fns: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    emb: torch.Tensor,
    repeats: int,
    warmup: int,
) -> dict[str, float]:
    """Median milliseconds per function, the functions interleaved call by call."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            seconds = _time_call(fn, emb)
            if round_ >= warmup:
                times[name].append(seconds)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def _value_and_grad(fn: Callable, emb: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = emb.detach().clone().requires_grad_()
    loss = fn(x)
    loss.backward()
    return loss.item(), x.grad


def single_label(batch: int, dim: int, m: int, repeats: int, warmup: int) -> dict[str, float]:
    """PML vs cxrembed on one single-label batch; prints and returns the figures."""
    from pytorch_metric_learning import losses, miners

    from cxrembed.losses import MultiSimilarityLoss

    gen = torch.Generator().manual_seed(batch)
    emb = torch.randn(batch, dim, generator=gen)
    labels = torch.arange(batch)[torch.randperm(batch, generator=gen)] // m
    pml_loss = losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)
    pml_miner = miners.MultiSimilarityMiner(epsilon=0.1)
    ours = MultiSimilarityLoss()
    fns = {
        "pml": lambda x: pml_loss(x, labels, pml_miner(x, labels)),
        "cxrembed": lambda x: ours(x, labels),
    }
    value_pml, grad_pml = _value_and_grad(fns["pml"], emb)
    value_ours, grad_ours = _value_and_grad(fns["cxrembed"], emb)
    ms = _median_ms(fns, emb, repeats, warmup)
    ratio = ms["pml"] / ms["cxrembed"]
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(
        f"single-label B={batch} D={dim} ({batch // m} classes x {m}): "
        f"PML {ms['pml']:.2f} ms, cxrembed {ms['cxrembed']:.2f} ms, "
        f"ratio {ratio:.2f}x ({verdict} the >= {TARGET_RATIO:g}x target); "
        f"loss PML {value_pml:.6f} cxrembed {value_ours:.6f} "
        f"(|diff| {abs(value_pml - value_ours):.1e}), "
        f"max |grad diff| {float((grad_pml - grad_ours).abs().max()):.1e}"
    )
    return {"pml_ms": ms["pml"], "ours_ms": ms["cxrembed"], "ratio": ratio}


def _iu_gold_labels() -> tuple[np.ndarray, str] | None:
    """IU gold labels (14 ChestX-ray14 findings), or None when the data folder is absent."""
    path = DATA / "iu_reports.csv"
    if not path.is_file():
        return None
    import pandas as pd

    table = pd.read_csv(path)
    table = table[table["has_gold"].astype(bool)]
    columns = [c for c in table.columns if c.startswith("gold_") and c != "gold_normal"]
    return table[columns].to_numpy(dtype=np.float64), f"IU gold labels ({len(table)} reports)"


def multi_label(
    batch: int, dim: int, m: int, repeats: int, warmup: int, seed: int = 0
) -> dict[str, float]:
    """Times of the multi-label losses on one batch drawn by MultiLabelBatchSampler."""
    from cxrembed.data.samplers import MultiLabelBatchSampler
    from cxrembed.losses import ML2Loss, MultiSimilarityLoss

    found = _iu_gold_labels()
    if found is None:
        print(
            f"multi-label: real labels skipped ({DATA / 'iu_reports.csv'} not found; set "
            "CXR_DEV); timing on random 14-label sets instead"
        )
        gen = np.random.default_rng(seed)
        labels_all = (gen.random((2000, 14)) < 0.08).astype(np.float64)
        source = "random label sets (p=0.08)"
    else:
        labels_all, source = found
    sampler = MultiLabelBatchSampler(labels_all, m=m, batch_size=batch, seed=seed)
    rows = next(iter(sampler))
    labels = torch.tensor(labels_all[rows])
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(batch, dim, generator=gen)
    reliability = torch.linspace(0.5, 0.95, labels.shape[1]).tolist()
    noisy = MultiSimilarityLoss(
        overlap_weighting=True, reliability=reliability, drop_fraction=0.1, tau_pos=0.3
    )
    plain, ml2 = MultiSimilarityLoss(), ML2Loss()
    fns = {
        "ms": lambda x: plain(x, labels),
        "ms+noise": lambda x: noisy(x, labels),
        "ml2": lambda x: ml2(x, labels),
    }
    ms = _median_ms(fns, emb, repeats, warmup)
    print(
        f"multi-label B={batch} D={dim} C={labels.shape[1]} ({source}, batch drawn by "
        f"MultiLabelBatchSampler m={m}): MS {ms['ms']:.2f} ms, MS + overlap + reliability + "
        f"drop_fraction=0.1 {ms['ms+noise']:.2f} ms, ML2 {ms['ml2']:.2f} ms"
    )
    return ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--m", type=int, default=4, help="exams per class / label in a batch")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1 keeps a shared machine's noise down)",
    )
    args = parser.parse_args(argv)
    try:
        import pytorch_metric_learning
    except ImportError:
        print(
            "skipped: pytorch-metric-learning (the peer) is not installed; pip install "
            "'cxrkit[dev]'"
        )
        return 0
    torch.set_num_threads(args.threads)
    print(common.command_line("loss_speed.py", python=sys.executable))
    print(
        f"torch {torch.__version__}, pytorch-metric-learning {pytorch_metric_learning.__version__},"
        f" {args.threads} thread(s), {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; median of {args.repeats} calls "
        f"after {args.warmup} warm-up, forward + backward"
    )
    for batch in args.batch_sizes:
        single_label(batch, args.dim, args.m, args.repeats, args.warmup)
    for batch in args.batch_sizes:
        multi_label(batch, args.dim, args.m, args.repeats, args.warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
