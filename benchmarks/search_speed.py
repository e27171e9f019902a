"""Search speed: cxrembed's default approximate index against exact FAISS inner product.

Data (synthetic, seeded):

* ``clustered``: ``--n`` vectors (default 1,000,000 x 128-d) drawn from ``--clusters`` (2,000)
  Gaussian clusters: unit-norm centres plus N(0, 0.06^2) noise per dimension, renormalised;
  ``--queries`` (10,000) queries from the same mixture;
* ``uniform``: vectors and ``--uniform-queries`` (2,000) queries uniform on the sphere (no
  cluster structure), where approximate indexes lose recall: the limit users should know.

For each, in one run: exact search (``faiss.IndexFlatIP``, batched, all threads) is the
reference and gives the true top 10; then ``VectorIndex.build(kind="auto")`` (IVF-Flat
with nprobe tuned at build to recall@10 >= 0.95 on a sample of the collection) is timed
for build, memory (RSS growth and bytes on disk) and queries/s over all queries (median of
``--repeats`` runs), with recall@10 against exact on the first ``--recall-queries`` queries.
Target on clustered data: >= 10,000 queries/s at recall@10 >= 0.95.

``--hnsw`` also builds the HNSW alternative (slow to build at 1M: minutes).

Real data: this benchmark needs no images; the cxr_dev folder is not read.

Usage: python benchmarks/search_speed.py [--n 1000000] [--dim 128] [--clusters 2000]
       [--queries 10000] [--recall-queries 2000] [--uniform-queries 2000] [--threads 2]
       [--repeats 3] [--hnsw]
       [--only clustered|uniform]
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_QPS = 10_000
TARGET_RECALL = 0.95


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def clustered(n: int, queries: int, dim: int, clusters: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((clusters, dim), dtype=np.float32))

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), dtype=np.float32)
        for s in range(0, m, 200_000):  # chunks keep the peak memory low
            e = min(m, s + 200_000)
            noise = rng.standard_normal((e - s, dim), dtype=np.float32) * np.float32(0.06)
            out[s:e] = unit(centres[rng.integers(0, clusters, e - s)] + noise)
        return out

    return draw(n), draw(queries)


def uniform(n: int, queries: int, dim: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed + 1)
    return (unit(rng.standard_normal((n, dim), dtype=np.float32)),
            unit(rng.standard_normal((queries, dim), dtype=np.float32)))


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.iterdir()) / 2**20


def run_exact(x: np.ndarray, q: np.ndarray) -> tuple[dict, np.ndarray]:
    import faiss

    before = rss_mb()
    start = time.perf_counter()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    build = time.perf_counter() - start
    grown = rss_mb() - before
    start = time.perf_counter()
    _, truth = index.search(q, 10)
    seconds = time.perf_counter() - start
    del index
    gc.collect()
    return {"build_s": build, "rss_mb": grown, "disk_mb": x.nbytes / 2**20,
            "qps": len(q) / seconds, "recall": 1.0, "params": "-"}, truth


def run_index(x: np.ndarray, q: np.ndarray, truth: np.ndarray, kind: str, repeats: int) -> dict:
    import warnings

    from cxrembed.search.index import VectorIndex

    ids = np.arange(len(x))
    before = rss_mb()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = VectorIndex.build(x, ids, kind=kind, progress=False)
    build = time.perf_counter() - start
    grown = rss_mb() - before
    with tempfile.TemporaryDirectory() as tmp:
        disk = folder_mb(index.save(Path(tmp) / "idx"))
    index.search(q[:1000], k=10)  # warm-up
    times, found = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        _, found = index.search(q, k=10)
        times.append(time.perf_counter() - start)
    qps = len(q) / statistics.median(times)
    out = {"build_s": build, "rss_mb": grown, "disk_mb": disk, "qps": qps,
           "recall": recall_at_10(found[: len(truth)], truth),
           "build_recall": index.recall_at_10, "kind": index.kind,
           "params": ", ".join(f"{k}={v}" for k, v in index.params.items()),
           "warning": "; ".join(str(w.message) for w in caught)}
    del index
    gc.collect()
    return out


def report(name: str, rows: dict[str, dict]) -> None:
    exact = rows["exact"]
    print(f"\n## {name}\n")
    print("| index | params | build s | RSS +MB | disk MB | queries/s | x exact | recall@10 "
          "| build-time recall@10 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in rows.items():
        build_recall = r.get("build_recall")
        print(f"| {label} | {r['params']} | {r['build_s']:.1f} | {r['rss_mb']:.0f} | "
              f"{r['disk_mb']:.0f} | {r['qps']:,.0f} | {r['qps'] / exact['qps']:.1f} | "
              f"{r['recall']:.4f} | {'-' if build_recall is None else f'{build_recall:.4f}'} |")
    for label, r in rows.items():
        if r.get("warning"):
            print(f"\n{label} warned: {r['warning']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--recall-queries", type=int, default=2000,
                        help="queries searched exactly (for recall and the exact speed)")
    parser.add_argument("--uniform-queries", type=int, default=2000,
                        help="queries on uniform data (its approximate search is slow)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hnsw", action="store_true", help="also build the HNSW alternative")
    parser.add_argument("--only", choices=["clustered", "uniform"])
    args = parser.parse_args()

    import faiss

    faiss.omp_set_num_threads(args.threads)
    print("# search_speed")
    print(f"\ncommand: python {shlex.join(['benchmarks/search_speed.py', *sys.argv[1:]])}")
    print(f"faiss {faiss.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"{args.n:,} x {args.dim}-d vectors, {args.queries:,} queries (recall and exact speed "
          f"on the first {args.recall_queries:,}), k = 10")
    print("real data: not used (synthetic vectors; the cxr_dev folder is not read)")

    verdict = None
    for name in ("clustered", "uniform"):
        if args.only and name != args.only:
            continue
        start = time.perf_counter()
        if name == "clustered":
            x, q = clustered(args.n, args.queries, args.dim, args.clusters, args.seed)
            title = (f"clustered: {args.clusters:,} Gaussian clusters, unit centres + "
                     "N(0, 0.06^2) noise, renormalised")
        else:
            x, q = uniform(args.n, args.uniform_queries, args.dim, args.seed)
            title = (f"uniform on the sphere (no cluster structure), {len(q):,} queries")
        print(f"\ngenerated {name} data in {time.perf_counter() - start:.1f} s")
        rows: dict[str, dict] = {}
        rows["exact"], truth = run_exact(x, q[: args.recall_queries])
        rows["default (auto)"] = run_index(x, q, truth, "auto", args.repeats)
        if args.hnsw:
            rows["hnsw"] = run_index(x, q, truth, "hnsw", args.repeats)
        report(title, rows)
        if name == "clustered":
            auto = rows["default (auto)"]
            ok = auto["qps"] >= TARGET_QPS and auto["recall"] >= TARGET_RECALL
            verdict = (f"target (>= {TARGET_QPS:,} queries/s at recall@10 >= {TARGET_RECALL}) on "
                       f"clustered data: {'MET' if ok else 'NOT MET'} ({auto['qps']:,.0f} "
                       f"queries/s, recall@10 {auto['recall']:.4f}, "
                       f"{auto['qps'] / rows['exact']['qps']:.0f}x exact)")
        del x, q
        gc.collect()
    if verdict:
        print(f"\n{verdict}")
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
