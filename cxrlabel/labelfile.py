"""Label a whole file of reports: chunked, optionally in parallel, written atomically.

Worker processes each build their own :class:`~cxrlabel.labeler.Labeler` once and return
plain arrays (labels, statuses, JSON lines), never spaCy Docs, so the parent does little more
than write. At most ``2 × jobs`` chunks are in flight, which bounds memory whatever the size
of the input.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from cxrlabel.io import EvidenceWriter, LabelsWriter, ReportChunk, ReportReader, evidence_lines
from cxrlabel.lexicon import load_lexicon
from cxrlabel.workers import die_with_parent, pool_children, sigterm_as_exit, stop_workers

if TYPE_CHECKING:
    from concurrent.futures import Future

    from cxrlabel.joined import ColumnSpans
    from cxrlabel.labeler import Labeler

__all__ = ["LabelSummary", "label_file"]


@dataclass
class LabelSummary:
    """What a labelling run did: row counts, prevalence per observation, speed."""

    rows: int = 0
    ok: int = 0
    empty: int = 0
    errors: int = 0
    duplicate_ids: int = 0
    missing_ids: int = 0
    replaced_rows: int = 0
    surrogate_rows: int = 0
    surrogates: int = 0
    seconds: float = 0.0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    output: str = ""
    evidence: str | None = None
    input: str = ""  # how the input was read (ReportReader.describe)
    output_format: str = "cxrkit"

    @property
    def reports_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def table(self) -> str:
        """Prevalence table (Markdown): positive / negative / uncertain / not mentioned."""
        lines = [
            "| observation | positive (1) | negative (0) | uncertain (-1) | not mentioned | % positive |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        labelled = max(self.ok, 1)
        for name, c in self.counts.items():
            lines.append(
                f"| {name} | {c['1']} | {c['0']} | {c['-1']} | {c['blank']} | {100 * c['1'] / labelled:.1f} |"
            )
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        """Warning lines: no rows, blank and duplicate ids, undecodable bytes."""
        notes = []
        if self.rows == 0:
            notes.append("warning: the input holds no reports (a header only): nothing labelled")
        if self.missing_ids:
            notes.append(f"warning: {self.missing_ids} rows have no id (blank; rows kept)")
        if self.duplicate_ids:
            notes.append(f"warning: {self.duplicate_ids} duplicate ids (rows kept, ids repeated)")
        if self.replaced_rows:
            notes.append(
                f"warning: {self.replaced_rows} reports had undecodable bytes (replaced by U+FFFD)"
            )
        if self.errors and self.output_format == "chexpert":
            notes.append(
                f"warning: {self.errors} reports could not be labelled; the chexpert format has "
                "no status column, so their rows are blank (the default format says why)"
            )
        if self.surrogate_rows:
            notes.append(
                f"warning: {self.surrogate_rows} reports had {self.surrogates} characters that "
                "UTF-8 cannot encode (unpaired UTF-16 surrogates; replaced by U+FFFD)"
            )
        return notes

    def text(self, *, warnings: bool = True) -> str:
        """Readable summary: the table plus row accounting (and the warnings, unless False)."""
        notes = [
            f"{self.rows:,} report{'' if self.rows == 1 else 's'} in {self.seconds:.1f} s "
            f"({_rate(self.reports_per_second)} reports/s): "
            f"{self.ok} labelled, {self.empty} empty, {self.errors} errors",
        ]
        if warnings:
            notes += self.warnings()
        if self.input:
            notes.append(self.input)
        notes.append(
            f"labels: {self.output}"
            + (" (CheXpert labeller's columns)" if self.output_format == "chexpert" else "")
        )
        if self.evidence:
            notes.append(f"evidence: {self.evidence}")
        return self.table() + "\n\n" + "\n".join(notes)


def _rate(per_second: float) -> str:
    """A speed readable at any size: ``12,345``, ``45.6``, ``0.37``.

    >>> _rate(12345.6), _rate(45.61), _rate(0.372)
    ('12,346', '45.6', '0.37')
    """
    if per_second >= 100:
        return f"{per_second:,.0f}"
    return f"{per_second:.1f}" if per_second >= 10 else f"{per_second:.2f}"


_WORKER: Labeler | None = None
_WORKER_KWARGS: dict[str, Any] | None = None


def _init_worker(kwargs: dict[str, Any], parent: int) -> None:
    die_with_parent(parent)
    global _WORKER
    if _WORKER is None or _WORKER_KWARGS != kwargs:  # forked workers inherit the parent's
        from cxrlabel.labeler import Labeler

        _WORKER = Labeler(**kwargs)


def _work(
    ids: list[Any], texts: list[str | None], spans: list[ColumnSpans] | None
) -> tuple[np.ndarray, list[str], list[str]]:
    assert _WORKER is not None
    return _label_chunk(_WORKER, ids, texts, spans)


def _label_chunk(
    lab: Labeler, ids: list[Any], texts: list[str | None], spans: list[ColumnSpans] | None
) -> tuple[np.ndarray, list[str], list[str]]:
    """Labels, statuses and evidence lines of a chunk; evidence only when it has ``spans``
    (where each column's text sits in each report, for the evidence's column offsets)."""
    try:
        if spans is not None:
            values, status, records = lab.label_evidence(texts, ids, sources=spans)
            return values, status, evidence_lines(records)
        values, status = lab.label_array(texts)
        return values, status, []
    except Exception:  # noqa: BLE001 - isolate the failing row, never lose the chunk
        return _label_rows(lab, ids, texts, spans)


def _label_rows(
    lab: Labeler, ids: list[Any], texts: list[str | None], spans: list[ColumnSpans] | None
) -> tuple[np.ndarray, list[str], list[str]]:
    """Row-by-row fallback: a row that fails gets ``status = "error: ..."`` and empty labels."""
    values = np.full((len(texts), len(lab.names)), np.nan, dtype=np.float32)
    status: list[str] = []
    lines: list[str] = []
    want_evidence = spans is not None
    for i, (rid, text) in enumerate(zip(ids, texts, strict=True)):
        try:
            row, st, records = lab.label_evidence(
                [text], [rid], sources=[spans[i]] if spans is not None else None
            )
            values[i] = row[0]
            status.append(st[0])
            if want_evidence:
                lines.extend(evidence_lines(records))
        except Exception as exc:  # noqa: BLE001
            status.append(f"error: {type(exc).__name__}: {exc}")
    return values, status, lines


def _blank_id(value: Any) -> bool:
    """None, NaN / NA or only spaces: no id."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    return str(value).strip() in ("", "<NA>")


def _hash_ids(ids: list[Any]) -> np.ndarray:
    """64-bit hashes of ids (as text) for counting duplicates in bounded memory."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little")
            for i in ids
        ),
        dtype=np.uint64,
        count=len(ids),
    )


def label_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    text_cols: Sequence[str] | None = None,
    id_col: str | None = None,
    schema: str | Path = "chexpert",
    lexicon_dir: str | Path | None = None,
    sections: Sequence[str] | None = None,
    evidence_path: str | Path | None = None,
    jobs: int = 1,
    chunk_size: int = 5000,
    progress: bool = True,
    borderline: str = "uncertain",
    probable: str = "uncertain",
    versus: str = "uncertain",
    output_format: str = "cxrkit",
    headerless: bool | None = None,
) -> LabelSummary:
    """Label every report of ``input_path`` and write the labels table to ``output_path``.

    Every input row appears once in the output, in input order; rows that cannot be labelled
    get ``status = "error: ..."`` and empty labels. Nothing is written unless the run
    completes (temporary files are renamed at the end). ``borderline``, ``probable`` and
    ``versus`` are the :class:`~cxrlabel.labeler.Labeler` options of the same names;
    ``output_format`` and ``headerless`` are those of :class:`~cxrlabel.io.LabelsWriter` and
    :class:`~cxrlabel.io.ReportReader`. Evidence records carry the column each mention is
    in and offsets into that column's text (``column``, ``column_start``, ``column_end``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "r.csv").write_text("id,text\\na,No pneumothorax.\\nb,Small left effusion.\\n")
    >>> s = label_file(d / "r.csv", d / "labels.csv", progress=False)
    >>> s.rows, s.counts["Pleural Effusion"]["1"]
    (2, 1)
    """
    start = time.perf_counter()
    # Every argument is checked before spaCy is imported (about a second): the input's
    # header, the schema and lexicon files, the output type; then the labeller itself.
    reader = ReportReader(
        input_path,
        text_cols,
        id_col,
        chunk_size=chunk_size,
        headerless=headerless,
        column_spans=bool(evidence_path),
    )
    names = load_lexicon(schema, lexicon_dir).schema.names
    writer = LabelsWriter(output_path, reader.id_col or "row", names, output_format, schema)
    from cxrlabel.labeler import Labeler

    kwargs = {
        "schema": schema,
        "lexicon_dir": lexicon_dir,
        "sections": sections,
        "borderline": borderline,
        "probable": probable,
        "versus": versus,
    }
    lab = Labeler(**kwargs)  # checks the sections and the hedge options
    ev_writer = EvidenceWriter(evidence_path) if evidence_path else None
    summary = LabelSummary(
        output=str(output_path),
        evidence=str(evidence_path) if evidence_path else None,
        output_format=output_format,
    )
    tally = _Tally(names)
    bar, by_bytes = _progress_bar(reader, progress)
    chunks = _labelled_chunks(reader, lab, kwargs, jobs)
    try:
        # SIGTERM unwinds like Ctrl-C: the pool is stopped and the temporary files removed
        with sigterm_as_exit(), closing(chunks):  # closed at once on an error
            for chunk, (values, status, lines) in chunks:
                chunk_ids = chunk.ids
                writer.write(chunk_ids, values, status, chunk.texts)
                if ev_writer is not None:
                    ev_writer.write_lines(lines)
                tally.add(chunk_ids, values, status)
                if by_bytes:  # bytes read so far: a total and an ETA without counting rows
                    bar.update(reader.position - bar.n)
                    bar.set_postfix_str(f"{reader.rows:,} reports", refresh=False)
                else:
                    bar.update(len(chunk_ids))
        writer.commit()
        if ev_writer is not None:
            ev_writer.commit()
    except BaseException:
        writer.abort()
        if ev_writer is not None:
            ev_writer.abort()
        raise
    finally:
        bar.close()
    tally.fill(summary)
    summary.rows = reader.rows
    summary.input = reader.describe()
    summary.replaced_rows = reader.replaced_rows
    summary.surrogate_rows, summary.surrogates = reader.surrogate_rows, reader.surrogates
    summary.seconds = time.perf_counter() - start
    return summary


def _progress_bar(reader: ReportReader, progress: bool) -> tuple[tqdm, bool]:
    """The progress bar (total and ETA in bytes for text files, else in rows), and whether it
    counts bytes."""
    total, unit = reader.progress_total() if progress else (None, "reports")
    by_bytes = unit == "B"
    bar = tqdm(
        total=total,
        unit="B" if by_bytes else " reports",
        unit_scale=by_bytes,
        disable=not progress,
        file=sys.stderr,
        desc="labelling",
    )
    return bar, by_bytes


def _labelled_chunks(
    reader: ReportReader, lab: Labeler, kwargs: dict[str, Any], jobs: int
) -> Iterator[tuple[ReportChunk, tuple[np.ndarray, list[str], list[str]]]]:
    """``(chunk, (values, status, evidence lines))`` per chunk, in input order (evidence
    when the reader gives column spans); with ``jobs`` worker processes, at most
    ``2 * jobs`` chunks in flight."""
    if jobs <= 1:
        for chunk in reader:
            yield chunk, _label_chunk(lab, chunk.ids, chunk.texts, chunk.spans)
        return
    from concurrent.futures import ProcessPoolExecutor  # (multiprocessing: not for --jobs 1)

    global _WORKER, _WORKER_KWARGS
    _WORKER, _WORKER_KWARGS = lab, kwargs  # inherited by forked workers: no rebuild
    before = pool_children()
    pool = ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(kwargs, os.getpid())
    )
    try:
        pending: deque[tuple[ReportChunk, Future]] = deque()
        for chunk in reader:
            pending.append((chunk, pool.submit(_work, chunk.ids, chunk.texts, chunk.spans)))
            while len(pending) >= 2 * jobs:
                done, fut = pending.popleft()
                yield done, fut.result()
        while pending:
            done, fut = pending.popleft()
            yield done, fut.result()
    except BaseException:  # an error, an interrupt, SIGTERM or the consumer closing early
        stop_workers(pool, before)
        raise
    pool.shutdown()


class _Tally:
    """Counts of values per label, statuses and (hashed) ids, for the summary."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.values = np.zeros((len(self.names), 4), dtype=np.int64)  # 1, 0, -1, blank
        self.id_hashes: list[np.ndarray] = []  # 8 bytes per row: 1M ids cost 8 MB
        self.missing_ids = 0  # blank ids are missing, not duplicates of each other
        self.status: Counter[str] = Counter()

    def add(self, ids: list[Any], values: np.ndarray, status: list[str]) -> None:
        present = [i for i in ids if not _blank_id(i)]
        self.missing_ids += len(ids) - len(present)
        self.id_hashes.append(_hash_ids(present))
        for st in status:
            self.status["error" if st.startswith("error") else st] += 1
        for column, code in enumerate((1, 0, -1)):
            self.values[:, column] += (values == code).sum(axis=0)
        self.values[:, 3] += np.isnan(values).sum(axis=0)

    def fill(self, summary: LabelSummary) -> None:
        if self.id_hashes:
            hashes = np.concatenate(self.id_hashes)
            summary.duplicate_ids = int(len(hashes) - len(np.unique(hashes)))
        summary.missing_ids = self.missing_ids
        summary.ok = self.status["ok"]
        summary.empty = self.status["empty"]
        summary.errors = self.status["error"]
        summary.counts = {
            name: {"1": int(c[0]), "0": int(c[1]), "-1": int(c[2]), "blank": int(c[3])}
            for name, c in zip(self.names, self.values, strict=True)
        }
