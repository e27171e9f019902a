"""Model speed on CPU: cxrembed's EmbeddingNet against torchvision's own network, plus the
cost of explanations.

In one run, on real radiographs from ../shared/data/cxr_dev/covid_images_256 (read with
cxrembed.io.image.read_image, resized to ``--size``), for one backbone:

* peer: torchvision's unmodified classifier (3-channel; the gray image copied to RGB),
  forward pass, eval mode, no gradients;
* EmbeddingNet with spatial attention pooling, and with global average pooling, 1-channel;
  the ratio to the peer's time shows what the folded 1-channel input, the pooling and the
  projection head cost (or save);
* attention_map (the model's own map) and grad_cam / hirescam (one extra pass through the
  head, with gradients), per batch, against the attention model's forward.

All variants are timed alternately, batch by batch, so machine noise hits them alike; the
figure is the median over ``--repeats`` rounds after one warm-up round.

Usage: python benchmarks/model_speed.py [--backbone resnet18] [--images 32] [--batch 16]
       [--size 224] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import common
import torch
import torch.nn.functional as F
import torchvision

DATA = common.CXR_DEV


def _load_images(count: int, size: int) -> torch.Tensor:
    from cxrembed.io.image import read_image

    paths = sorted((DATA / "covid_images_256").glob("*.png"))[:count]
    images = []
    for path in paths:
        pixels, _ = read_image(path)
        image = torch.from_numpy(pixels)[None, None]
        images.append(
            F.interpolate(
                image, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )[0]
        )
    return torch.stack(images).clamp(0, 1)


def _median_seconds(
    fns: dict[str, Callable[[torch.Tensor], object]],
    batches: list[torch.Tensor],
    repeats: int,
) -> dict[str, float]:
    """Median seconds per pass over all batches, functions interleaved batch by batch."""
    totals: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(1 + repeats):  # round 0 warms up
        elapsed = dict.fromkeys(fns, 0.0)
        for batch in batches:
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(batch)
                elapsed[name] += time.perf_counter() - start
        if round_:
            for name in fns:
                totals[name].append(elapsed[name])
    return {name: statistics.median(ts) for name, ts in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(common.command_line("model_speed.py"))
    if common.skipped(DATA / "covid_images_256"):
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)

    from cxrembed.models import EmbeddingNet
    from cxrembed.models.explain import attention_map, grad_cam

    images = _load_images(args.images, args.size)
    batches = list(images.split(args.batch))
    torch.manual_seed(0)
    peer = getattr(torchvision.models, args.backbone)(weights=None).eval()
    attn = EmbeddingNet(args.backbone, attention=True).eval()
    gap = EmbeddingNet(args.backbone, attention=False).eval()

    def no_grad(fn: Callable[[torch.Tensor], object]) -> Callable[[torch.Tensor], object]:
        def run(batch: torch.Tensor) -> object:
            with torch.no_grad():
                return fn(batch)

        return run

    fns = {
        "torchvision (peer)": no_grad(lambda b: peer(b.expand(-1, 3, -1, -1))),
        "EmbeddingNet attention": no_grad(attn),
        "EmbeddingNet avg-pool": no_grad(gap),
        "attention_map": lambda b: attention_map(attn, b),
        "grad_cam": lambda b: grad_cam(attn, b),
        "hirescam": lambda b: grad_cam(attn, b, method="hirescam"),
    }
    seconds = _median_seconds(fns, batches, args.repeats)
    n = len(images)
    print(
        f"backbone {args.backbone}, {n} real images at {args.size}x{args.size}, batch "
        f"{args.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; "
        f"median of {args.repeats} rounds"
    )
    peer_s, attn_s = seconds["torchvision (peer)"], seconds["EmbeddingNet attention"]
    print(f"{'variant':<24} {'images/s':>9} {'ms/image':>9} {'vs peer':>8} {'vs fwd':>7}")
    for name, sec in seconds.items():
        print(
            f"{name:<24} {n / sec:9.1f} {1e3 * sec / n:9.2f} {sec / peer_s:8.2f} "
            f"{sec / attn_s:7.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
