"""Reports in, labels table and evidence out, in bounded-memory chunks.

Inputs: CSV, TSV, Parquet, JSON Lines, a folder of ``.txt`` files (one report each, the
file stem is the id), or the CheXpert labeller's headerless CSV (one report per line,
:mod:`cxrlabel.chexpert_format`). Several text columns can be joined; a column named like a
report section (``findings``, ``impression``, ``indication``...) is prefixed with its title so
that section rules apply (:mod:`cxrlabel.joined`, which also maps evidence offsets back to
each column). Outputs follow the labels-table contract (README, "Labelling reports"): the id
column, one column per observation (1 / 0 / -1 / empty) and ``status``, one row per input
row in input order, written to a temporary file and renamed when complete; or, with
``output_format="chexpert"``, exactly the CheXpert labeller's columns.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxrlabel import chexpert_format
from cxrlabel.columns import (
    SEPARATORS,
    check_utf8_text,
    find_id_column,
    missing_column_message,
    read_header,
)
from cxrlabel.errors import CxrError, InputError, MissingExtraError
from cxrlabel.joined import ColumnSpans, join_text_columns, join_with_spans, whole_column
from cxrlabel.text import has_surrogates, repair_surrogates

if TYPE_CHECKING:  # pandas is imported when rows are read: argument errors come first
    import pandas as pd

__all__ = [
    "ReportChunk",
    "ReportReader",
    "LabelsWriter",
    "EvidenceWriter",
    "TABLE_SUFFIXES",
    "TEXT_COLUMNS",
    "OUTPUT_FORMATS",
    "join_text_columns",
]

TABLE_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
#: Text column names looked for, in order, when none is given (``Reports``: the CheXpert
#: labeller's); else ``findings`` and / or ``impression``, joined.
TEXT_COLUMNS = ("report", "text", "report_text", chexpert_format.REPORTS, "reports")
OUTPUT_FORMATS = chexpert_format.OUTPUT_FORMATS
REPLACEMENT = "\ufffd"
_DELIMITED = ("csv", "tsv")


@dataclass
class ReportChunk:
    """A chunk of reports: ids (as given) and joined texts, aligned; with ``spans`` (where
    each column's text sits in each joined text) when the reader was asked for them."""

    ids: list[Any]
    texts: list[str | None]
    first_row: int
    spans: list[ColumnSpans] | None = None


def _format(path: Path) -> str:
    if path.is_dir():
        return "txtdir"
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unsupported input type '{path.suffix}'; expected one of "
            f"{sorted(set(TABLE_SUFFIXES))} or a folder of .txt files"
        )
    return fmt


class ReportReader:
    """Stream reports from a file or folder in chunks of ``chunk_size`` rows.

    Parameters
    ----------
    path : path of the table or folder.
    text_cols : columns joined into the report text (default: the first of
        :data:`TEXT_COLUMNS` present, else ``findings`` and / or ``impression``).
    id_col : id column (default: ``id``/``uid`` when present, else the row number).
    chunk_size : rows per chunk (memory stays bounded by this, not by the file size).
    headerless : read a CSV / TSV file as the CheXpert labeller's input, one report per
        line and no header (True), as a table (False), or decide from its first line (None,
        :func:`~cxrlabel.chexpert_format.looks_headerless`). Its one column is ``Reports``
        and its ids are row numbers.
    column_spans : give each chunk the :class:`~cxrlabel.joined.ColumnSpans` of its rows
        (for evidence offsets into each column; off on the labelling-only path).
    """

    def __init__(
        self,
        path: str | Path,
        text_cols: Sequence[str] | None = None,
        id_col: str | None = None,
        chunk_size: int = 5000,
        *,
        headerless: bool | None = None,
        column_spans: bool = False,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: input not found")
        if self.path.is_file() and self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: input file is empty")
        self.format = _format(self.path)
        self.chunk_size = chunk_size
        self.replaced_rows = 0  # reports with undecodable bytes
        self.surrogate_rows = 0  # reports with characters UTF-8 cannot encode ...
        self.surrogates = 0  # ... and how many (each replaced by U+FFFD)
        self.rows = 0
        self.blank_lines = 0  # empty lines of a headerless file (not reports)
        self.column_spans = column_spans
        self.detected = False  # headerless, decided from the first line
        self._handle: Any = None
        if self.format == "txtdir":
            self.text_cols, self.id_col = ["text"], "id"
            return
        if self._headerless(headerless, text_cols, id_col):
            self.format = "headerless"
            self.text_cols, self.id_col = [chexpert_format.REPORTS], None
            return
        columns = self._columns()
        self.text_cols = (
            list(text_cols) if text_cols else self._default(columns, TEXT_COLUMNS, "text")
        )
        missing = [c for c in self.text_cols if c not in columns]
        if missing:
            raise InputError(missing_column_message(self.path, missing, columns, "--text-col"))
        if id_col is None:
            self.id_col = find_id_column(columns)
        elif id_col not in columns:
            raise InputError(missing_column_message(self.path, [id_col], columns, "--id-col"))
        else:
            self.id_col = id_col

    # -- schema discovery -------------------------------------------------------------

    def _headerless(
        self, headerless: bool | None, text_cols: Sequence[str] | None, id_col: str | None
    ) -> bool:
        """Whether to read the file as one report per line (see the class docstring)."""
        if headerless is False:
            return False
        if headerless and self.format not in _DELIMITED:
            raise InputError(
                f"{self.path}: --headerless reads a CSV / TSV file with one report per line; "
                f"this is a {self.format} input, which has its own columns"
            )
        if headerless and (text_cols or id_col):
            option = "--text-col" if text_cols else "--id-col"
            raise InputError(
                f"{self.path}: {option} names a column, but --headerless reads a file without "
                f"columns (one report per line). Fix: leave out {option} or --headerless"
            )
        if text_cols or id_col or self.format not in _DELIMITED:
            return False
        check_utf8_text(self.path)  # not UTF-16 or binary, whichever way it is read
        if headerless:
            return True
        known = [*TEXT_COLUMNS, "findings", "impression"]
        self.detected = chexpert_format.looks_headerless(
            self.path, SEPARATORS[self.path.suffix.lower()], known
        )
        return self.detected

    def describe(self) -> str:
        """How the input was read, for the summary."""
        if self.format == "headerless":
            how = (
                "detected from its first line, a report and not a header; --no-headerless "
                "reads it as a table"
                if self.detected
                else "--headerless"
            )
            n = self.blank_lines
            blank = f"; {n} empty line{'s' * (n > 1)} skipped" if n else ""
            return (
                f"input: {self.path} read as the CheXpert labeller's headerless CSV, one report "
                f"per line, ids = row numbers ({how}){blank}"
            )
        if self.format == "txtdir":
            return f"input: {self.path}, a folder of .txt files (one report each, id = file name)"
        ids = f"ids from '{self.id_col}'" if self.id_col else "ids = row numbers"
        text = " + ".join(f"'{c}'" for c in self.text_cols)
        return f"input: {self.path} read as {self.format}, text from {text}, {ids}"

    def _columns(self) -> list[str]:
        try:
            if self.format in ("parquet", "csv", "tsv"):  # the header alone, without pandas
                return self._header()
            head = next(iter(self._raw_chunks(5)), None)
            self._handle = None  # the header's read is not progress
        except CxrError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parser failure becomes one clear message
            raise InputError(
                f"{self.path}: cannot read as {self.format} ({type(exc).__name__}: {exc})"
            ) from None
        if head is None or len(head.columns) == 0:
            raise InputError(f"{self.path}: no columns found (empty file?)")
        return [str(c) for c in head.columns]

    def _header(self) -> list[str]:
        columns = read_header(self.path)
        if not columns or not any(c.strip() for c in columns):
            raise InputError(f"{self.path}: no columns found (empty file?)")
        return columns

    def _default(self, columns: list[str], candidates: Sequence[str], what: str) -> list[str]:
        for c in candidates:
            if c in columns:
                return [c]
        sections = [c for c in ("findings", "impression") if c in columns]
        if sections:
            return sections
        headerless = (
            " If the file has no header (one report per line, the CheXpert labeller's input), "
            "pass --headerless."
            if self.format in _DELIMITED and find_id_column(columns) is None
            else ""
        )
        raise InputError(
            f"{self.path}: no {what} column given and none of {list(candidates)} present; "
            f"columns present: {columns}. Pass --text-col NAME (repeat it to join several)."
            + headerless
        )

    # -- reading ----------------------------------------------------------------------

    def progress_total(self) -> tuple[int, str]:
        """``(total, unit)`` for a progress bar: reports when that is free to know (Parquet
        metadata, a folder's files), else the bytes of the file (``"B"``)."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).metadata.num_rows, "reports"
        if self.format == "txtdir":
            return sum(1 for p in self.path.iterdir() if p.suffix.lower() == ".txt"), "reports"
        return self.path.stat().st_size, "B"

    @property
    def position(self) -> int:
        """Progress so far, in the unit of :meth:`progress_total`."""
        if self.format in ("parquet", "txtdir"):
            return self.rows
        handle = self._handle
        if handle is None:
            return 0
        return self.path.stat().st_size if handle.closed else handle.tell()

    def _raw_chunks(self, size: int) -> Iterator[pd.DataFrame]:
        fmt = self.format
        if fmt in ("csv", "tsv", "jsonl", "headerless"):
            with open(self.path, "rb") as self._handle:
                yield from self._text_chunks(self._handle, size)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=size):
                yield batch.to_pandas()

    def _text_chunks(self, handle: Any, size: int) -> Iterator[pd.DataFrame]:
        import pandas as pd

        fmt = self.format
        if fmt == "headerless":
            yield from self._headerless_chunks(handle, size)
        elif fmt in ("csv", "tsv"):
            sep = "," if fmt == "csv" else "\t"
            yield from pd.read_csv(
                handle,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                chunksize=size,
                encoding="utf-8",
                encoding_errors="replace",
            )
        else:
            yield from self._jsonl_chunks(handle, size)

    def _jsonl_chunks(self, handle: Any, size: int) -> Iterator[pd.DataFrame]:
        """JSON Lines read with the json module into object columns.

        ``pd.read_json`` turns text into UTF-8 Arrow strings and fails the whole file on a
        ``\\ud800`` escape (a character UTF-8 cannot encode); here such text reaches
        :meth:`_to_chunk`, which repairs and counts it.
        """
        import pandas as pd

        records: list[Any] = []
        for number, raw in enumerate(handle, 1):
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{self.path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InputError(
                    f"{self.path}:{number}: expected one JSON object per line, got {type(record).__name__}"
                )
            records.append(record)
            if len(records) == size:
                yield pd.DataFrame(records, dtype=object)
                records = []
        if records:
            yield pd.DataFrame(records, dtype=object)

    def _headerless_chunks(self, handle: Any, size: int) -> Iterator[pd.DataFrame]:
        """One ``Reports`` column, a report per line (:func:`~cxrlabel.chexpert_format.headerless_reports`)."""
        import pandas as pd

        lines = (raw.decode("utf-8", errors="replace") for raw in handle)
        reports: list[str] = []
        last = 0
        for number, report in chexpert_format.headerless_reports(lines, self.path):
            self.blank_lines += number - last - 1
            last = number + report.count("\n")
            reports.append(report)
            if len(reports) == size:
                yield pd.DataFrame({chexpert_format.REPORTS: reports}, dtype=object)
                reports = []
        if reports:
            yield pd.DataFrame({chexpert_format.REPORTS: reports}, dtype=object)

    def _txt_chunks(self) -> Iterator[ReportChunk]:
        files = sorted(p for p in self.path.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
        if not files:
            raise InputError(f"{self.path}: folder has no .txt files")
        for i in range(0, len(files), self.chunk_size):
            part = files[i : i + self.chunk_size]
            texts = []
            for p in part:
                text = p.read_bytes().decode("utf-8", errors="replace")
                self.replaced_rows += REPLACEMENT in text
                texts.append(text)
            self.rows += len(part)
            spans = [whole_column("text")] * len(part) if self.column_spans else None
            yield ReportChunk([p.stem for p in part], texts, i, spans)

    def __iter__(self) -> Iterator[ReportChunk]:
        if self.format == "txtdir":
            yield from self._txt_chunks()
            return
        first = 0
        try:
            for frame in self._raw_chunks(self.chunk_size):
                yield self._to_chunk(frame, first)
                first += len(frame)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise InputError(
                f"{self.path}: cannot parse rows after row {first} ({type(exc).__name__}: {exc})"
            ) from None

    def _to_chunk(self, frame: pd.DataFrame, first: int) -> ReportChunk:
        n = len(frame)
        self.rows += n
        ids = frame[self.id_col].tolist() if self.id_col else list(range(first, first + n))
        spans: list[ColumnSpans] | None = None
        if len(self.text_cols) == 1:
            texts = [_as_text(v) for v in frame[self.text_cols[0]].tolist()]
            if self.column_spans:
                spans = [whole_column(self.text_cols[0])] * n
        else:
            columns = [[_as_text(v) for v in frame[c].tolist()] for c in self.text_cols]
            rows = zip(*columns, strict=True)
            if self.column_spans:
                joined = [join_with_spans(parts, self.text_cols) for parts in rows]
                texts, spans = [t for t, _ in joined], [s for _, s in joined]
            else:
                texts = [join_text_columns(parts, self.text_cols) for parts in rows]
        self.replaced_rows += sum(1 for t in texts if t and REPLACEMENT in t)
        for row, (rid, text) in enumerate(zip(ids, texts, strict=True)):
            ids[row], in_id = _encodable(rid)
            texts[row], in_text = _encodable(text)
            if in_id or in_text:
                self.surrogate_rows += 1
                self.surrogates += in_id + in_text
        return ReportChunk(ids, texts, first, spans)


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _encodable(value: Any) -> tuple[Any, int]:
    """``value`` with UTF-16 surrogates repaired when it is such a string, and how many."""
    if isinstance(value, str) and has_surrogates(value):
        return repair_surrogates(value)
    return value, 0


class LabelsWriter:
    """Append label chunks to a temporary CSV or Parquet file; ``commit()`` renames it.

    ``output_format="cxrkit"`` (default) writes the labels table: the id column, the
    observations as ``1`` / ``0`` / ``-1`` / empty, and ``status``. ``"chexpert"`` writes the
    CheXpert labeller's columns (:data:`cxrlabel.chexpert_format.COLUMNS`): ``Reports`` (the
    text labelled), then its 14 observations in its order as ``1.0`` / ``0.0`` / ``-1.0`` /
    empty; ``names`` must be those 14 (any order), else :class:`InputError`.
    """

    def __init__(
        self,
        path: str | Path,
        id_name: str,
        names: Sequence[str],
        output_format: str = "cxrkit",
        schema: object = "chexpert",
    ) -> None:
        self.path = Path(path)
        if output_format not in OUTPUT_FORMATS:
            raise InputError(
                f"unknown output format {output_format!r}; expected one of {list(OUTPUT_FORMATS)}"
            )
        self.output_format = output_format
        self._order = (
            chexpert_format.observation_order(names, schema)
            if output_format == "chexpert"
            else None
        )
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq", ".tsv"):
            raise InputError(f"{self.path}: output must end in .csv, .tsv or .parquet")
        self.format = "parquet" if suffix in (".parquet", ".pq") else suffix[1:]
        if self.format == "parquet" and importlib.util.find_spec("pyarrow") is None:
            raise MissingExtraError("pyarrow", "parquet")
        self.id_name = id_name
        self.names = list(names)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self._parquet = None
        self._started = False

    def write(
        self,
        ids: list[Any],
        values: np.ndarray,
        status: list[str],
        texts: Sequence[str | None] | None = None,
    ) -> None:
        """Append rows; ``texts`` (the reports labelled) are needed by the chexpert format."""
        import pandas as pd

        if self._order is not None:
            if texts is None:
                raise ValueError("the chexpert format writes the reports: pass texts")
            frame = pd.DataFrame({chexpert_format.REPORTS: pd.Series(list(texts), dtype=object)})
            for name, j in zip(chexpert_format.OBSERVATIONS, self._order, strict=True):
                frame[name] = values[:, j].astype(np.float64)
        else:
            frame = pd.DataFrame({self.id_name: ids})
            for j, name in enumerate(self.names):
                frame[name] = pd.array(values[:, j], dtype="Float32").astype("Int8")
            frame["status"] = status
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._order is None:
                frame[self.id_name] = frame[self.id_name].astype(str)
            else:  # a string column even when a chunk's reports are all missing
                frame[chexpert_format.REPORTS] = frame[chexpert_format.REPORTS].astype("string")
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table)
        else:
            sep = "," if self.format == "csv" else "\t"
            frame.to_csv(
                self.tmp,
                sep=sep,
                index=False,
                header=not self._started,
                mode="a" if self._started else "w",
            )
        self._started = True

    def commit(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if not self._started:
            self.write([], np.empty((0, len(self.names)), dtype=np.float32), [], [])
            if self._parquet is not None:
                self._parquet.close()
        self.tmp.replace(self.path)

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.tmp.unlink(missing_ok=True)


class EvidenceWriter:
    """Append evidence records (already JSON-encoded lines) to a temp file; rename on commit."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self._fh = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in commit/abort

    def write_lines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._fh.write(line)
            self._fh.write("\n")

    def commit(self) -> None:
        self._fh.close()
        self.tmp.replace(self.path)

    def abort(self) -> None:
        self._fh.close()
        self.tmp.unlink(missing_ok=True)


def evidence_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """Encode evidence records as JSON lines (ids kept as strings for a stable contract)."""
    out = []
    for r in records:
        r = dict(r)
        if r.get("id") is not None and not isinstance(r["id"], str):
            r["id"] = str(r["id"])
        out.append(json.dumps(r, ensure_ascii=False))
    return out
