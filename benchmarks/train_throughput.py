"""Training and embedding throughput from the cache against the model's own speed.

Question: is ``cxr train`` / ``cxr embed`` input-bound? Target (issue 12, item 5): images/s
from a ``cxr prepare`` cache at least 90% of what the same model does on tensors already in
memory, at the same image size, batch, loss and threads, in the same run.

For each ``--sizes`` value (default 64 and 128), on data/kermany_demo (1,231 pediatric
radiographs, in the repository):

1. ``prepare_cache`` (what ``cxr prepare`` calls) writes a cache at that size;
2. **train**: ``cxrembed.train.train`` (what ``cxr train`` calls) from the cache for
   ``--epochs`` epochs; its figure is the images/s of the training steps that the run itself
   records (``train_images_per_second`` in metrics.csv: loading, augmentation, forward,
   loss, backward, optimiser step; validation excluded), median over epochs;
3. **peer, forward+backward**: the run's own model, loss and optimiser
   (``initial_model``, ``build_loss``, ``build_optimizer``), stepped on batches already in
   memory (random pixels of the same shape, the same class mix: m images per label), as
   many images as one epoch, in train mode;
4. **embed**: ``embed_images`` (what ``cxr embed`` calls) of the trained run on the cache,
   whole call (model load, loading, forward, writing), images/s; and the embedding loop
   alone (first batch request to last: loading, forward, writing each batch's vectors),
   with the call's fixed cost in seconds (loading the run, opening the cache, the final
   files), which a small set cannot amortise;
5. **peer, forward**: the same model in eval mode without gradients on in-memory batches of
   the embedding batch size.

The training peer is timed right after the training run and again after the embedding run,
the forward peer right before and after the embedding run; each is the mean of its two
timings, so a change of machine load during the run hits both sides. ``uptime`` is printed at the start and the end: on a shared machine
read the ratios, not the absolute speeds.

Usage: python benchmarks/train_throughput.py [--sizes 64,128] [--epochs 3] [--batch 32]
       [--batches 10] [--images 1231] [--threads 2] [--jobs N] [--embed-batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import common

if TYPE_CHECKING:
    import pandas as pd

    from cxrembed.train import TrainResult

DEMO = common.ROOT / "data" / "kermany_demo"


def uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "uptime not available"


class _Waits:
    """Seconds the training / embedding loops spent waiting for their next batch, and each
    loader's last pass (``*_span``: its first batch request to its last). The rest of an
    ``embed_images`` call is fixed cost (loading the run, opening the cache, writing files)."""

    train = 0.0
    embed = 0.0
    train_span = 0.0
    embed_span = 0.0


def _timed_loader(kind: str):
    """A DataLoader class that adds the time spent in ``next(batch)`` to ``_Waits.<kind>``."""
    from torch.utils.data import DataLoader

    class TimedLoader(DataLoader):
        counted = kind

        def __iter__(self):
            begin = time.perf_counter()
            batches = super().__iter__()
            while True:
                start = time.perf_counter()
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                finally:
                    end = time.perf_counter()
                    setattr(_Waits, kind, getattr(_Waits, kind) + end - start)
                    setattr(_Waits, f"{kind}_span", end - begin)
                yield batch

    return TimedLoader


def _instrument() -> None:
    """Count the waits of the training loader (its batch sampler is SeededBatches) and of
    the embedding loader; the validation loader is left alone."""
    import cxrembed.inference.embed as embed_module
    import cxrembed.train.loop as loop_module
    from cxrembed.train.data import SeededBatches

    timed, plain = _timed_loader("train"), loop_module.DataLoader

    def train_or_plain(*args, **kwargs):
        chosen = timed if isinstance(kwargs.get("batch_sampler"), SeededBatches) else plain
        return chosen(*args, **kwargs)

    loop_module.DataLoader = train_or_plain
    embed_module.DataLoader = _timed_loader("embed")


def train_peer(config, names, batch: int, images: int, size: int) -> float:
    """Images/s of the run's model + loss + optimiser on in-memory batches (train mode)."""
    import torch

    from cxrembed.train.schedule import build_optimizer
    from cxrembed.train.trainer import build_loss, initial_model

    t = config.training
    model = initial_model(config).train()
    loss_fn = build_loss(config, names)
    optimizer = build_optimizer(
        model, lr=t.lr, head_lr=t.head_lr, weight_decay=t.weight_decay, extra=loss_fn
    )
    key = "logits" if t.loss == "ce" else getattr(loss_fn, "input_key", "embedding")
    gen = torch.Generator().manual_seed(0)
    classes = len(names)
    per = max(t.m, 1)
    ids = torch.arange(batch) // per % classes
    targets = torch.nn.functional.one_hot(ids, classes).float()
    known = torch.ones_like(targets, dtype=torch.bool)
    pixels = [torch.rand(batch, 1, size, size, generator=gen) for _ in range(4)]
    steps = max(images // batch, 2)

    def step(x):
        out = model.forward_features(x)[key]
        loss = loss_fn(out, targets, known=known)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()

    step(pixels[0])  # warm-up
    start = time.perf_counter()
    for s in range(steps):
        step(pixels[s % len(pixels)])
    return steps * batch / (time.perf_counter() - start)


def forward_peer(model, batch: int, images: int, size: int) -> float:
    """Images/s of the model's forward pass, eval mode, no gradients, in-memory batches."""
    import torch

    model = model.eval()
    x = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(1))
    steps = max(images // batch, 2)
    with torch.no_grad():
        model(x)
        start = time.perf_counter()
        for _ in range(steps):
            model(x)
    return steps * batch / (time.perf_counter() - start)


def run_size(size: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every figure of one image size: the cached training run and the embedding call, each
    between two timings of its in-memory peer (see the module docstring for the order)."""
    import torch

    from cxrembed.inference.encoder import Encoder

    table, cache = _demo_cache(size, args, work)
    run = work / f"run{size}"
    result, train_wait = _timed_training(table, cache, run, size, args)
    config = result.config  # with what the data decided (label names, classes)
    names = list(config.labels.names)
    n_train = int(result.metrics[0]["train_images"])
    torch.set_num_threads(args.threads)
    before = train_peer(config, names, args.batch, n_train, size)
    speeds = [r["train_images_per_second"] for r in result.metrics]

    encoder = Encoder.from_run(run, device="cpu")
    model = encoder.model
    fwd_before = forward_peer(model, args.embed_batch, len(table), size)
    embedded = _timed_embedding(run, cache, work / f"emb{size}", args, len(table))
    torch.set_num_threads(args.threads)
    fwd_after = forward_peer(model, args.embed_batch, len(table), size)
    after = train_peer(config, names, args.batch, n_train, size)
    return {
        "train": statistics.median(speeds),
        "train_epochs": speeds,
        "peer_train": (before + after) / 2,
        "peer_train_runs": (before, after),
        **embedded,
        "peer_fwd": (fwd_before + fwd_after) / 2,
        "peer_fwd_runs": (fwd_before, fwd_after),
        "images": len(table),
        "train_images": n_train,
        "train_wait": train_wait,
    }


def _demo_cache(size: int, args: argparse.Namespace, work: Path) -> tuple[pd.DataFrame, Path]:
    """The demo listing (a seeded sample of ``--images``) and its ``prepare_cache`` at
    ``size``, in ``work/cacheSIZE``."""
    import pandas as pd

    from cxrembed.data.cache import prepare_cache

    table = pd.read_csv(DEMO / "labels.csv")
    if args.images < len(table):
        table = table.sample(n=args.images, random_state=0).reset_index(drop=True)
    cache = work / f"cache{size}"
    prepare_cache(
        table,
        DEMO,
        cache,
        image_col="image",
        id_col="image",
        size=size,
        jobs=args.jobs or 1,
        progress=False,
    )
    return table, cache


def _train_overrides(size: int, args: argparse.Namespace) -> dict[str, Any]:
    """The ``cxr train`` settings the benchmark fixes; the loader workers only with ``--jobs``."""
    overrides: dict[str, Any] = {
        "data.image_col": "image",
        "data.id_col": "image",
        "data.group_col": "patient_id",
        "labels.label_col": "label",
        "preprocessing.image_size": size,
        "training.epochs": args.epochs,
        "training.batch_size": args.batch,
        "training.threads": args.threads,
        "training.device": "cpu",
        "training.batches_per_epoch": args.batches,
    }
    if args.jobs is not None:
        overrides["data.num_workers"] = args.jobs
    return overrides


def _timed_training(
    table: pd.DataFrame, cache: Path, run: Path, size: int, args: argparse.Namespace
) -> tuple[TrainResult, float]:
    """``cxrembed.train.train`` from the cache into ``run``; returns its result and the
    share of its training time spent waiting for batches."""
    import torch

    from cxrembed.train import train

    torch.set_num_threads(args.threads)
    _Waits.train = _Waits.embed = 0.0
    overrides = _train_overrides(size, args)
    result = train(table, run, cache=cache, overrides=overrides, progress=False)
    return result, _Waits.train / sum(r["train_seconds"] for r in result.metrics)


def _timed_embedding(
    run: Path, cache: Path, out: Path, args: argparse.Namespace, images: int
) -> dict[str, float]:
    """``embed_images`` of ``run`` on the cache: images/s of the whole call and of its loop
    alone, the call's fixed cost in seconds and its share of time waiting for data."""
    from cxrembed.inference.embed import embed_images

    start = time.perf_counter()
    embed_images(
        run,
        cache,
        out,
        batch_size=args.embed_batch,
        num_workers=args.jobs or 0,
        progress=False,
        device="cpu",
    )
    seconds = time.perf_counter() - start
    return {
        "embed": images / seconds,
        "embed_loop": images / _Waits.embed_span,
        "embed_fixed": seconds - _Waits.embed_span,
        "embed_wait": _Waits.embed / seconds,
    }


def main() -> int:
    args = _parse_args()
    print(common.command_line("train_throughput.py"))
    print("start:", uptime())
    if common.skipped(DEMO / "labels.csv"):
        return 0

    _instrument()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cxr-throughput-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append((size, run_size(size, args, Path(tmp))))
    _print_table(rows, args)
    print("end:", uptime())
    return 0


def _parse_args() -> argparse.Namespace:
    """The command line of the module docstring's usage line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--embed-batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="loader worker processes (default: cxr's own: none from a cache)",
    )
    parser.add_argument(
        "--images",
        type=int,
        default=1231,
        help="images of data/kermany_demo used (seeded sample; default: all 1231)",
    )
    parser.add_argument("--batches", type=int, default=10, help="training batches per epoch")
    return parser.parse_args()


def _print_table(rows: list[tuple[int, dict[str, Any]]], args: argparse.Namespace) -> None:
    """The setting, then per size cxr's images/s against its peer's, the ratio (the 90%
    target) and the share of time waiting for data; and the timings behind each figure."""
    import torch

    workers = "auto" if args.jobs is None else args.jobs
    print(
        f"data/kermany_demo ({args.images} images), resnet18 (the default model), torch "
        f"{torch.__version__}, {args.threads} threads, {workers} loader workers, train batch "
        f"{args.batch} x {args.batches} batches/epoch, embed batch {args.embed_batch}, "
        f"{args.epochs} epochs, CPU"
    )
    print(
        f"{'size':>5} {'what':<22} {'cxr img/s':>10} {'model img/s':>12} {'ratio':>7} "
        f"{'waiting for data':>17}"
    )
    for size, r in rows:
        print(
            f"{size:>5} {'train (fwd+bwd+step)':<22} {r['train']:10.1f} {r['peer_train']:12.1f} "
            f"{r['train'] / r['peer_train']:7.1%} {r['train_wait']:17.1%}"
        )
        print(
            f"{size:>5} {'embed (forward)':<22} {r['embed']:10.1f} {r['peer_fwd']:12.1f} "
            f"{r['embed'] / r['peer_fwd']:7.1%} {r['embed_wait']:17.1%}"
        )
        print(
            f"{size:>5} {'embed loop only':<22} {r['embed_loop']:10.1f} {r['peer_fwd']:12.1f} "
            f"{r['embed_loop'] / r['peer_fwd']:7.1%} {'':>17}  (fixed cost of the call: "
            f"{r['embed_fixed']:.2f} s)"
        )
        print(
            f"      per-epoch train img/s {[round(v, 1) for v in r['train_epochs']]}; peer "
            f"before/after {[round(v, 1) for v in r['peer_train_runs']]}; forward peer "
            f"before/after {[round(v, 1) for v in r['peer_fwd_runs']]}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
