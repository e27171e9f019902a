"""Image I/O speed: decode + resize throughput, cache vs source loading, and whether a
ResNet-18 training step ever waits on data.

In one run, on CPU, with the real images of ../shared/data/cxr_dev:

1. Decode + fit + store (``prepare_cache``, the ``cxr prepare`` code path), images/s with
   1 and 2 worker processes: the 398 COVID PNGs (8-bit, 256 px) and the 3 DICOMs (JPEG
   baseline 1024², JPEG 2000 1955x1841) repeated ``--dicom-repeat`` times.
2. Loading at 224 px through a DataLoader (batch 32, in-process with 1 torch thread, as
   in a DataLoader worker), images/s:
   from the source files (read + fit to 224) vs from a 224-px cache (the peer is decoding
   from source; target: cache >= 5x faster), without and with training augmentation.
3. ResNet-18 (1 input channel, 224 px, batch 32) forward + backward, images/s, and a real
   training loop fed from the cache by one DataLoader worker, timing how long each step
   waits for its batch (target: the model never waits).
4. The resize step alone (Pillow float bilinear with reducing_gap vs torch antialiased
   bilinear) on the 1955x1841 JPEG 2000 image.

Usage: python benchmarks/image_io.py [--dicom-repeat 8] [--train-batches 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import common
import pandas as pd

if TYPE_CHECKING:
    from cxrembed.data.cache import CachedImageDataset
    from cxrembed.data.labels import LabelOptions

DATA = common.CXR_DEV
sys.path.insert(0, str(common.ROOT))


def _covid_table() -> pd.DataFrame:
    table = pd.read_csv(DATA / "covid_metadata.csv", usecols=["small_image", "finding"])
    return table.assign(uid=[f"p{i}" for i in range(len(table))])


def _dicom_table(repeat: int) -> pd.DataFrame:
    files = sorted((DATA / "dicom").glob("*.dcm"))
    paths = [f"dicom/{f.name}" for f in files] * repeat
    return pd.DataFrame(
        {"uid": [f"d{i}" for i in range(len(paths))], "small_image": paths, "finding": "x"}
    )


def _prepare_rate(table: pd.DataFrame, out: Path, jobs: int, size: int = 256) -> float:
    from cxrembed.data.cache import prepare_cache

    start = time.perf_counter()
    summary = prepare_cache(
        table,
        DATA,
        out,
        image_col="small_image",
        id_col="uid",
        size=size,
        jobs=jobs,
        progress=False,
    )
    elapsed = time.perf_counter() - start
    assert summary.decoded == len(table), summary.reasons
    return summary.decoded / elapsed


def _loader_rate(dataset, batches: int | None = None) -> float:
    """Images/s of one pass of a DataLoader (batch 32, in-process) over ``dataset``."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=32, shuffle=False, num_workers=0)
    count, start = 0, time.perf_counter()
    for i, (images, *_rest) in enumerate(loader):
        count += len(images)
        if batches is not None and i + 1 >= batches:
            break
    return count / (time.perf_counter() - start)


def _resnet18(classes: int = 16):
    import torch
    import torchvision

    model = torchvision.models.resnet18(weights=None, num_classes=classes)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def _model_rate(batches: int) -> float:
    import torch

    torch.manual_seed(0)
    model = _resnet18().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images, targets = torch.randn(32, 1, 224, 224), torch.rand(32, 16)
    times = []
    for i in range(batches + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(images), targets)
        loss.backward()
        optimizer.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - start)
    return 32 / statistics.median(times)


def _training_wait(dataset, batches: int) -> tuple[float, float, float]:
    """A real loop fed by one DataLoader worker: (images/s, median wait ms, max wait ms)."""
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    model = _resnet18(len(dataset.label_names)).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = DataLoader(
        dataset,
        batch_size=32,
        shuffle=True,
        num_workers=1,
        persistent_workers=False,
        prefetch_factor=4,
    )
    iterator = iter(loader)
    next(iterator)  # worker start-up is not a per-step wait
    waits, start = [], time.perf_counter()
    for _ in range(batches):
        before = time.perf_counter()
        images, targets, masks, _ids = next(iterator)
        waits.append(time.perf_counter() - before)
        optimizer.zero_grad()
        logits = model(images)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, weight=masks)
        loss.backward()
        optimizer.step()
    rate = 32 * batches / (time.perf_counter() - start)
    return rate, 1000 * statistics.median(waits), 1000 * max(waits)


def _resize_times() -> tuple[float, float]:
    import torch

    from cxrembed.data.square import fit_square
    from cxrembed.io.image import read_image

    image, _ = read_image(DATA / "dicom" / "RG1_J2KI.dcm")
    tensor = torch.from_numpy(image)[None, None]
    size = (256, round(256 * image.shape[1] / image.shape[0]))

    def best(fn, n=10):
        fn()
        return min(_timed(fn) for _ in range(n)) * 1000

    pil = best(lambda: fit_square(image, 256))
    tor = best(
        lambda: torch.nn.functional.interpolate(tensor, size=size, mode="bilinear", antialias=True)
    )
    return pil, tor


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    args = _parse_args()
    print(common.command_line("image_io.py"))
    if common.skipped(DATA / "covid_metadata.csv"):
        return 0

    import torch

    torch.set_num_threads(args.threads)
    print(
        f"cpu cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, "
        f"torch {torch.__version__}"
    )
    covid, dicoms = _covid_table(), _dicom_table(args.dicom_repeat)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _prepare_section(covid, dicoms, work)
        loading, cached = _loading_section(covid, dicoms, work)
        model_rate, median_wait, max_wait = _training_section(
            cached, args.threads, args.train_batches
        )
    _resize_section()
    _summary(loading, model_rate, median_wait, max_wait)
    return 0


def _parse_args() -> argparse.Namespace:
    """The command line of the module docstring's usage line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dicom-repeat", type=int, default=8)
    parser.add_argument("--train-batches", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    return parser.parse_args()


def _prepare_section(covid: pd.DataFrame, dicoms: pd.DataFrame, work: Path) -> None:
    """Part 1: ``prepare_cache`` images/s for PNGs and DICOMs with 1 and 2 processes."""
    print("\n1. decode + fit + store (prepare_cache, 256 px, uint8), images/s")
    for name, table in (("PNG 256 px", covid), ("DICOM (JPEG, J2K)", dicoms)):
        for jobs in (1, 2):
            rate = _prepare_rate(table, work / f"{name[:3]}{jobs}", jobs)
            print(f"   {name:<20} jobs={jobs}: {rate:8.1f} images/s  ({len(table)} images)")


def _loading_section(
    covid: pd.DataFrame, dicoms: pd.DataFrame, work: Path
) -> tuple[dict[str, float], CachedImageDataset]:
    """Part 2: source vs 224-px cache loading, with one torch thread as in a loader worker.

    Returns the cache/source ratios and cache rates by row name, and the cached dataset of
    every image (part 3 trains from it).
    """
    import torch

    from cxrembed.data.cache import CachedImageDataset
    from cxrembed.data.labels import LabelOptions
    from cxrembed.data.transforms import FitSquare, train_transform

    print(
        "\n2. loading at 224 px, DataLoader batch 32, in-process, 1 torch thread "
        "(as in a loader worker), images/s"
    )
    labels = LabelOptions(label_col="finding")
    torch.set_num_threads(1)
    _prepare_rate(pd.concat([covid, dicoms]), work / "c224", 2, size=224)
    both = pd.concat([covid, dicoms], ignore_index=True)
    cached = CachedImageDataset.from_table(work / "c224", both, labels=labels)
    results: dict[str, float] = {}
    for aug in (False, True):
        label = "with train augmentation" if aug else "no augmentation"
        transform = train_transform(224) if aug else FitSquare(224)
        for name, table in (("PNG", covid), ("DICOM", dicoms)):
            src_rate, cache_rate = _source_and_cache_rates(table, work / "c224", labels, transform)
            ratio = cache_rate / src_rate
            results[f"load {name} {label} ratio"] = ratio
            results[f"load {name} {label} cache"] = cache_rate
            print(
                f"   {name:<6} {label:<24} source {src_rate:8.1f}   cache {cache_rate:8.1f}"
                f"   cache/source {ratio:6.1f}x"
            )
    return results, cached


def _source_and_cache_rates(
    table: pd.DataFrame, cache_dir: Path, labels: LabelOptions, transform: Any
) -> tuple[float, float]:
    """Loader images/s of the same rows and transform from the source files and the cache."""
    from cxrembed.data.cache import CachedImageDataset
    from cxrembed.data.dataset import LabeledImageDataset

    source = LabeledImageDataset.from_table(
        table,
        DATA,
        image_col="small_image",
        id_col="uid",
        labels=labels,
        transform=transform,
    )
    cache = CachedImageDataset.from_table(cache_dir, table, labels=labels, transform=transform)
    return _loader_rate(source), _loader_rate(cache)


def _training_section(
    cached: CachedImageDataset, threads: int, batches: int
) -> tuple[float, float, float]:
    """Part 3: the model's own images/s, then a real loop fed from the cache with
    augmentation; returns (model images/s, median wait ms, max wait ms)."""
    import torch

    from cxrembed.data.transforms import train_transform

    torch.set_num_threads(threads)
    print(
        f"\n3. ResNet-18, 1 channel, 224 px, batch 32, forward + backward (SGD step), "
        f"{threads} torch threads"
    )
    model_rate = _model_rate(batches)
    print(f"   synthetic batches: {model_rate:8.1f} images/s")
    cached.transform = train_transform(224)
    loop_rate, median_wait, max_wait = _training_wait(cached, batches)
    print(
        f"   fed from the cache (1 loader worker, augmentation): {loop_rate:8.1f} images/s,"
        f" wait for data per step: median {median_wait:.1f} ms, max {max_wait:.1f} ms"
    )
    return model_rate, median_wait, max_wait


def _resize_section() -> None:
    """Part 4: the resize step alone, Pillow (used) against torch."""
    print("\n4. resize 1955x1841 -> 256 px (best of 10)")
    pil_ms, torch_ms = _resize_times()
    print(
        f"   Pillow float bilinear, reducing_gap=2 (used): {pil_ms:6.1f} ms;"
        f"   torch bilinear antialias: {torch_ms:6.1f} ms"
    )


def _summary(
    loading: dict[str, float], model_rate: float, median_wait: float, max_wait: float
) -> None:
    """The verdicts against the targets: cache >= 5x source, and the model never waits."""
    step_ms = 32 / model_rate * 1000
    aug_cache = min(
        loading["load PNG with train augmentation cache"],
        loading["load DICOM with train augmentation cache"],
    )
    print("\nsummary")
    for name in ("PNG", "DICOM"):
        ratio = loading[f"load {name} no augmentation ratio"]
        verdict = "meets" if ratio >= 5 else "MISSES"
        print(
            f"   cache vs source loading, {name}, no augmentation: {ratio:.1f}x "
            f"({verdict} the 5x target)"
        )
    print(
        f"   loading with augmentation from the cache, 1 process: {aug_cache:.0f} images/s vs "
        f"ResNet-18 fwd+bwd {model_rate:.1f} images/s "
        f"({aug_cache / model_rate:.0f}x headroom)"
    )
    print(
        f"   training loop wait for data: median {median_wait:.1f} ms, max {max_wait:.1f} ms "
        f"per step of {step_ms:.0f} ms"
    )


if __name__ == "__main__":
    raise SystemExit(main())
