"""Search speed and index memory: cxrembed's indexes against FAISS searched directly.

Data (synthetic, seeded):

* ``clustered``: ``--n`` vectors (default 1,000,000 x 128-d) drawn from ``--clusters`` (2,000)
  Gaussian clusters: unit-norm centres plus N(0, 0.06^2) noise per dimension, renormalised;
  ``--queries`` (10,000) queries from the same mixture, plus ``--aimed`` (10) queries at the
  centroids of the default index's emptiest cells (they hold fewer than k vectors, so FAISS
  at the tuned nprobe returns fewer than k hits for them: the case that made the first
  search slow);
* ``uniform``: vectors and ``--uniform-queries`` (2,000) queries uniform on the sphere (no
  cluster structure), where approximate indexes lose recall: the limit users should know.

For each, in one run: exact search (``faiss.knn``, all threads) gives the true top 10 of the
first ``--recall-queries`` queries and the aimed ones. Then ``VectorIndex.build(kind="auto")``
(IVF-Flat, nprobe tuned at build to recall@10 >= 0.95) is timed for build, memory (RSS
growth, bytes on disk) and search: the **first call** of ``VectorIndex.search`` on all
queries (no warm-up), then the **steady state** (median of ``--repeats`` calls), each against
the same FAISS index searched directly at the same nprobe in the same run (the ratio). Target
on clustered data: first call >= 10,000 queries/s at recall@10 >= 0.95.

Compressed index (clustered data): ``VectorIndex.build(kind="auto", max_memory=...)`` with a
budget the full vectors do not fit (``--max-memory``, default 60MB at 1M: IVF-PQ, 32-byte
codes), timed the same way, with exact re-ranking (the default) and without, against FAISS's
IVF-PQ searched directly; bytes per vector are predicted from the code size
(:mod:`cxrembed.search.sizing`) and checked against the serialised FAISS index; the index is
saved and reloaded (re-ranking vectors memory-mapped) and searched again. ``--large N``
(e.g. 5000000) repeats this at N vectors with the budget scaled (``--large-max-memory``), and
a table extrapolates the memory to 100M vectors from the exact sizing rule.

``--hnsw`` also builds the HNSW alternative (slow to build at 1M: minutes).

Real data: this benchmark needs no images; the cxr_dev folder is not read.

Usage: python benchmarks/search_speed.py [--n 1000000] [--dim 128] [--clusters 2000]
       [--queries 10000] [--aimed 10] [--recall-queries 2000] [--uniform-queries 2000]
       [--threads 2] [--repeats 3] [--max-memory 60MB] [--large 0]
       [--large-max-memory 300MB] [--no-pq] [--hnsw] [--only clustered|uniform]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import common
import numpy as np

if TYPE_CHECKING:
    from cxrembed.search.index import VectorIndex

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_QPS = 10_000
TARGET_RECALL = 0.95
K = 10
#: queries, the rows of them whose recall is scored, and those rows' true top K
_Scored = tuple[np.ndarray, np.ndarray, np.ndarray]


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
    return (
        unit(rng.standard_normal((n, dim), dtype=np.float32)),
        unit(rng.standard_normal((queries, dim), dtype=np.float32)),
    )


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def load_rss_mb(folder: Path) -> float:
    """RSS growth of a fresh process loading the index folder (what a search server holds)."""
    import subprocess

    code = (
        "import sys, psutil; sys.path.insert(0, sys.argv[1]); "
        "from cxrembed.search.index import VectorIndex; p = psutil.Process(); "
        "a = p.memory_info().rss; i = VectorIndex.load(sys.argv[2]); "
        "print(p.memory_info().rss - a)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.split()[-1]) / 2**20


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.iterdir()) / 2**20


def exact_truth(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, float]:
    """True top 10 of ``q`` (ids = rows of ``x``) and exact queries/s (faiss.knn, no copy)."""
    import faiss

    start = time.perf_counter()
    _, truth = faiss.knn(q, x, K, metric=faiss.METRIC_INNER_PRODUCT)
    return truth, len(q) / (time.perf_counter() - start)


def aimed_queries(index, count: int) -> np.ndarray:
    """Centroids of the index's emptiest cells (unit norm): fewer than k hits at nprobe 1."""
    import faiss

    from cxrembed.search.index_search import numpy_method

    ivf = faiss.extract_index_ivf(index._index)
    sizes = np.array([ivf.invlists.list_size(c) for c in range(ivf.nlist)])
    cells = np.argsort(sizes, kind="stable")[:count]
    centroids = numpy_method(ivf.quantizer, "reconstruct_n")(0, ivf.nlist)[cells]
    return unit(np.ascontiguousarray(centroids, dtype=np.float32))


def build(x: np.ndarray, **kwargs) -> tuple[object, dict]:
    from cxrembed.search.index import VectorIndex

    before = rss_mb()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = VectorIndex.build(x, np.arange(len(x)), progress=False, **kwargs)
    return index, {
        "build_s": time.perf_counter() - start,
        "rss_mb": rss_mb() - before,
        "warning": "; ".join(str(w.message) for w in caught),
    }


def timed(search, q: np.ndarray) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    found = search(q)
    return len(q) / (time.perf_counter() - start), found


def measure(
    index,
    q: np.ndarray,
    evaluated: np.ndarray,
    truth: np.ndarray,
    repeats: int,
    refine: bool = False,
    **search_kwargs,
) -> dict:
    """First call and steady state of VectorIndex.search and of FAISS on the same index
    (with ``refine``: FAISS's own re-ranking, ``IndexRefine`` over the same IVF-PQ index and
    the same full vectors, shortlist k * rerank_factor)."""
    import faiss

    from cxrembed.search.index_search import numpy_search, search_params
    from cxrembed.search.rerank import ExactVectors

    params = search_params(index.kind, index.params, K)
    peer = index._index
    if refine:
        exact = index._vectors
        flat = (exact if not exact.is_mapped else ExactVectors.in_memory(exact._mapped))._flat
        peer = faiss.IndexRefine(index._index, flat)
        params = faiss.IndexRefineSearchParameters(
            k_factor=float(index.params["rerank_factor"]), base_index_params=params
        )
        params.keep = params.base_index_params

    def ours(queries: np.ndarray) -> np.ndarray:
        return index.search(queries, k=K, **search_kwargs)[1]

    def raw(queries: np.ndarray) -> np.ndarray:
        rows = numpy_search(peer)(queries, K, params=params)[1]
        return np.where(rows >= 0, index.ids[np.maximum(rows, 0)], -1)

    first, found = timed(ours, q)  # no warm-up: what a user's first search gets
    raw_first, raw_found = timed(raw, q)
    steady, raw_steady = [], []
    for _ in range(repeats):
        steady.append(timed(ours, q)[0])
        raw_steady.append(timed(raw, q)[0])
    return {
        "first": first,
        "steady": statistics.median(steady),
        "raw_first": raw_first,
        "raw_steady": statistics.median(raw_steady),
        "recall": recall_at_10(found[evaluated], truth),
        "raw_recall": recall_at_10(raw_found[evaluated], truth),
        "short": int((raw_found < 0).any(axis=1).sum()),
        "complete": bool((found >= 0).all()),
    }


def params_text(index) -> str:
    return ", ".join(f"{k}={v}" for k, v in index.params.items())


def speed_table(rows: dict[str, dict], exact_qps: float) -> None:
    print(
        "| index | search | first call q/s | steady q/s | FAISS direct first / steady q/s "
        "| ratio first / steady | recall@10 | FAISS direct recall@10 | rows FAISS left short |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['search']} | {r['first']:,.0f} | {r['steady']:,.0f} | "
            f"{r['raw_first']:,.0f} / {r['raw_steady']:,.0f} | "
            f"{r['first'] / r['raw_first']:.2f} / {r['steady'] / r['raw_steady']:.2f} | "
            f"{r['recall']:.4f} | {r['raw_recall']:.4f} | {r['short']} |"
        )
    print(f"\nexact search (faiss.knn, the recall reference): {exact_qps:,.1f} queries/s")


def build_table(rows: dict[str, dict]) -> None:
    print(
        "| index | params | build s | RSS +MB | disk MB | bytes/vector (predicted) | "
        "bytes/vector (serialised FAISS) | build-time recall@10 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, r in rows.items():
        recall = "-" if r["build_recall"] is None else f"{r['build_recall']:.4f}"
        print(
            f"| {label} | {r['params']} | {r['build_s']:.1f} | {r['rss_mb']:.0f} | "
            f"{r['disk_mb']:.0f} | {r['bpv']} | {r['serialised_bpv']:.2f} | {recall} |"
        )
    for label, r in rows.items():
        if r.get("warning"):
            print(f"\n{label} warned: {r['warning']}")


def describe(index, built: dict, tmp: Path, name: str) -> dict:
    import faiss

    serialised = faiss.serialize_index(index._index).nbytes
    disk = folder_mb(index.save(tmp / name))
    return {
        **built,
        "params": params_text(index),
        "disk_mb": disk,
        "bpv": index.info["bytes_per_vector"],
        "serialised_bpv": serialised / len(index),
        "serialised": serialised,
        "build_recall": index.recall_at_10,
        "kind": index.kind,
    }


def compressed(x, q, evaluated, truth, budget, repeats, tmp: Path, name: str) -> tuple[dict, ...]:
    """Build auto within ``budget``; speed with/without re-ranking, then reloaded (mmap)."""
    from cxrembed.search.index import VectorIndex

    index, built = build(x, max_memory=budget)
    info = describe(index, built, tmp, name)
    info["memory_mb"] = index.info["memory_bytes"] / 2**20
    factor = index.params.get("rerank_factor")
    rows = {
        f"{name} ({index.kind}, rerank)": {
            **measure(index, q, evaluated, truth, repeats, refine=True),
            "search": f"re-ranked x{factor} (peer: faiss.IndexRefine)",
        },
        f"{name} ({index.kind}, codes only)": {
            **measure(index, q, evaluated, truth, repeats, rerank=False),
            "search": "PQ scores (peer: IVF-PQ)",
        },
    }
    del index
    gc.collect()
    info["load_rss_mb"] = load_rss_mb(tmp / name)
    loaded = VectorIndex.load(tmp / name)
    info["mmap"] = loaded._vectors.is_mapped
    rows[f"{name} reloaded ({'memory-mapped' if info['mmap'] else 'in RAM'} vectors)"] = {
        **measure(loaded, q, evaluated, truth, repeats, refine=True),
        "search": f"re-ranked x{factor} (peer: faiss.IndexRefine, in RAM)",
    }
    del loaded
    gc.collect()
    return info, rows


def sizing_table(dim: int, measured: dict[int, float]) -> None:
    from cxrembed.search.index_build import default_nlist
    from cxrembed.search.sizing import bytes_per_vector, format_bytes, index_bytes

    kinds = [
        ("exact (flat)", "exact", {}),
        ("ivf (IVF-Flat)", "ivf", {}),
        ("ivfpq m=64", "ivfpq", {"m": 64}),
        ("ivfpq m=32", "ivfpq", {"m": 32}),
        ("ivfpq m=16", "ivfpq", {"m": 16}),
    ]
    counts = [1_000_000, 5_000_000, 10_000_000, 100_000_000]
    print(
        f"| index ({dim}-d) | bytes/vector (+8 B int id) | "
        + " | ".join(f"{c:,}" for c in counts)
        + " |"
    )
    print("|---|---:|" + "---:|" * len(counts))
    for label, kind, extra in kinds:
        cells = []
        for c in counts:
            settings = {"nlist": default_nlist(c), **extra}
            cells.append(format_bytes(index_bytes(kind, settings, c, dim) + 8 * c))
        print(f"| {label} | {bytes_per_vector(kind, extra, dim)} + 8 | " + " | ".join(cells) + " |")
    print(
        "\nmemory = vectors x (bytes/vector + 8-byte int id) + centroids/codebooks (nlist x dim "
        "x 4 B + 256 x dim x 4 B); string ids cost 4 B per character instead of 8 B"
    )
    for n, bpv in measured.items():
        print(
            f"measured in this run: serialised IVF-PQ index at {n:,} vectors = {bpv:.2f} "
            "bytes/vector (code + list id + fixed part spread over the vectors)"
        )


def clustered_section(args: argparse.Namespace, tmp: Path) -> list[str]:
    """The clustered data: the default index, the compressed and HNSW ones if asked, their
    tables, the ``--large`` collection and the sizing table; returns the target's verdict."""
    x, q = _clustered_data(args)
    ivf, built = build(x)
    aimed = aimed_queries(ivf, args.aimed) if ivf.kind in ("ivf", "ivfpq") else q[:0]
    q_all = np.vstack([q, aimed])
    evaluated = np.r_[np.arange(min(args.recall_queries, len(q))), np.arange(len(q), len(q_all))]
    truth, exact_qps = exact_truth(x, q_all[evaluated])
    scored = (q_all, evaluated, truth)
    builds = {"default (auto)": describe(ivf, built, tmp, "ivf")}
    speeds = {"default (auto)": _exact_scores(ivf, *scored, args.repeats)}
    del ivf
    gc.collect()
    print(
        f"{len(q):,} queries from the mixture + {len(aimed)} aimed at the emptiest cells; "
        f"recall on {len(evaluated):,} of them (load {load()})\n"
    )
    measured: dict[int, float] = {}
    if not args.no_pq:
        info, rows = _compressed_rows(x, scored, args, tmp)
        builds[f"auto, max_memory={args.max_memory}"] = info
        speeds.update(rows)
        measured[args.n] = info["serialised_bpv"]
    if args.hnsw:
        builds["hnsw"], speeds["hnsw"] = _hnsw_rows(x, scored, args.repeats, tmp)
    build_table(builds)
    print()
    speed_table(speeds, exact_qps)
    verdicts = [_target_verdict(speeds["default (auto)"])]
    del x, q, q_all, scored
    gc.collect()
    if args.large:
        measured.update(large_section(args, tmp))
    print("\n## memory by collection size (exact rule, cxrembed.search.sizing)\n")
    sizing_table(args.dim, measured)
    return verdicts


def _clustered_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """The ``--n`` vectors and ``--queries`` queries of the seeded mixture, with the time
    it took and the section's heading."""
    start = time.perf_counter()
    x, q = clustered(args.n, args.queries, args.dim, args.clusters, args.seed)
    print(f"\ngenerated clustered data in {time.perf_counter() - start:.1f} s (load {load()})")
    print(
        f"\n## clustered: {args.clusters:,} Gaussian clusters, unit centres + N(0, 0.06^2) "
        "noise, renormalised\n"
    )
    return x, q


def _exact_scores(
    index: VectorIndex, q: np.ndarray, evaluated: np.ndarray, truth: np.ndarray, repeats: int
) -> dict:
    """``measure`` of an index searched with exact scores (no codes, no re-ranking)."""
    return {**measure(index, q, evaluated, truth, repeats), "search": "exact scores"}


def _memory_line(info: dict) -> str:
    """A compressed index's predicted RAM against what a fresh process holds once loaded."""
    return (
        f"{info['memory_mb']:.1f} MB predicted in RAM (FAISS + ids), RSS "
        f"+{info['load_rss_mb']:.0f} MB when a fresh process loads it (re-ranking vectors "
        f"{'memory-mapped' if info['mmap'] else 'in RAM'})"
    )


def _compressed_rows(
    x: np.ndarray, scored: _Scored, args: argparse.Namespace, tmp: Path
) -> tuple[dict, dict[str, dict]]:
    """The ``--max-memory`` index at ``--n`` vectors (``compressed``), and its memory line."""
    budget = args.max_memory
    info, rows = compressed(x, *scored, budget, args.repeats, tmp, f"max_memory={budget}")
    print(f"compressed index: {_memory_line(info)}\n")
    return info, rows


def _hnsw_rows(x: np.ndarray, scored: _Scored, repeats: int, tmp: Path) -> tuple[dict, dict]:
    """The HNSW alternative (``--hnsw``): its build row and its speed row."""
    hnsw, built = build(x, kind="hnsw")
    return describe(hnsw, built, tmp, "hnsw"), _exact_scores(hnsw, *scored, repeats)


def _target_verdict(auto: dict) -> str:
    """The default index's first call and recall against the target, in one line."""
    ok = auto["first"] >= TARGET_QPS and auto["recall"] >= TARGET_RECALL
    return (
        f"target (first call >= {TARGET_QPS:,} queries/s at recall@10 >= {TARGET_RECALL}) on "
        f"clustered data: {'MET' if ok else 'NOT MET'} (first call {auto['first']:,.0f} "
        f"queries/s = {auto['first'] / auto['raw_first']:.2f}x FAISS direct, steady "
        f"{auto['steady']:,.0f} = {auto['steady'] / auto['raw_steady']:.2f}x, recall@10 "
        f"{auto['recall']:.4f}; {auto['short']} rows FAISS left short, all completed: "
        f"{auto['complete']})"
    )


def large_section(args, tmp: Path) -> dict[int, float]:
    start = time.perf_counter()
    x, q = clustered(args.large, args.queries, args.dim, args.clusters, args.seed + 7)
    print(
        f"\n## larger collection: {args.large:,} x {args.dim}-d clustered (generated in "
        f"{time.perf_counter() - start:.1f} s, load {load()})\n"
    )
    evaluated = np.arange(min(args.recall_queries, len(q)))
    truth, exact_qps = exact_truth(x, q[evaluated])
    info, rows = compressed(
        x,
        q,
        evaluated,
        truth,
        args.large_max_memory,
        args.repeats,
        tmp,
        f"max_memory={args.large_max_memory}",
    )
    build_table({f"auto, max_memory={args.large_max_memory}": info})
    print(f"\n{_memory_line(info)}\n")
    speed_table(rows, exact_qps)
    del x, q
    gc.collect()
    return {args.large: info["serialised_bpv"]}


def uniform_section(args, tmp: Path) -> None:
    x, q = uniform(args.n, args.uniform_queries, args.dim, args.seed)
    print(f"\n## uniform on the sphere (no cluster structure), {len(q):,} queries\n")
    evaluated = np.arange(min(args.recall_queries, len(q)))
    truth, exact_qps = exact_truth(x, q[evaluated])
    index, built = build(x)
    builds = {"default (auto)": describe(index, built, tmp, "uniform")}
    speeds = {"default (auto)": _exact_scores(index, q, evaluated, truth, args.repeats)}
    build_table(builds)
    print()
    speed_table(speeds, exact_qps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument(
        "--aimed",
        type=int,
        default=10,
        help="queries at the emptiest cells' centroids (short rows)",
    )
    parser.add_argument(
        "--recall-queries",
        type=int,
        default=2000,
        help="queries searched exactly (for recall and the exact speed)",
    )
    parser.add_argument(
        "--uniform-queries",
        type=int,
        default=2000,
        help="queries on uniform data (its approximate search is slow)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-memory", default="60MB", help="budget of the compressed index at --n vectors"
    )
    parser.add_argument(
        "--large", type=int, default=0, help="also build the compressed index at this many vectors"
    )
    parser.add_argument("--large-max-memory", default="300MB")
    parser.add_argument("--no-pq", action="store_true", help="skip the compressed index")
    parser.add_argument("--hnsw", action="store_true", help="also build the HNSW alternative")
    parser.add_argument("--only", choices=["clustered", "uniform"])
    args = parser.parse_args()

    import faiss

    faiss.omp_set_num_threads(args.threads)
    print("# search_speed")
    print("\n" + common.command_line("search_speed.py", sys.argv[1:]))
    print(
        f"faiss {faiss.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, "
        f"load average {load()} at start"
    )
    print(f"{args.n:,} x {args.dim}-d vectors, {args.queries:,} queries, k = {K}")
    print("real data: not used (synthetic vectors; the cxr_dev folder is not read)")
    verdicts: list[str] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.only != "uniform":
            verdicts += clustered_section(args, tmp)
        if args.only != "clustered":
            uniform_section(args, tmp)
    for verdict in verdicts:
        print(f"\n{verdict}")
    print(f"load average {load()} at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
