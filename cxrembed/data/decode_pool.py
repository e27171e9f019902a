"""Decode many image files in order, in worker processes, with a progress bar on stderr.

The one pool behind ``cxr prepare`` (decode, fit and store) and the image check of
``cxr train`` (decode once to find the unusable images): ``work`` runs on each path and must
not raise (it returns the failure as data), so one bad file costs one result, not the run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from tqdm import tqdm

from cxrlabel.errors import InputError
from cxrlabel.vocab import Interval

__all__ = ["decode_in_order"]

T = TypeVar("T")


def decode_in_order(
    work: Callable[[str], T], paths: list[str], *, jobs: int, progress: bool, desc: str
) -> Iterator[T]:
    """``work(path)`` for every path, in order; ``jobs`` processes (0: all cores, 1: here).

    Examples
    --------
    >>> list(decode_in_order(len, ["a", "bb"], jobs=1, progress=False, desc="demo"))
    [1, 2]
    """
    jobs = Interval(int, 0, None).check(jobs, "jobs (0: all cores)") or os.cpu_count() or 1
    bar = tqdm(
        total=len(paths), unit="img", desc=desc, file=sys.stderr, disable=not progress or not paths
    )
    if jobs == 1 or len(paths) < 2:
        try:
            for path in paths:
                yield work(path)
                bar.update()
        finally:
            bar.close()
        return
    chunk = max(1, min(32, len(paths) // (jobs * 8)))
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(paths)))
    try:
        for result in pool.map(work, paths, chunksize=chunk):
            yield result
            bar.update()
    except BrokenProcessPool:
        raise InputError(
            "a decoding worker process died (a decoder crashed on some file); the images "
            "finished so far are saved. Run again with --jobs 1 to resume and find the file"
        ) from None
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)
