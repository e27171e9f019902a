"""The Open-i (Indiana University) chest X-ray report archive and the labels derived from it.

``NLMCXR_reports.tgz`` is a tar of 3,955 XML reports, each with its sections, the MeSH terms
people coded (``<major>``) and those NLM's indexer MTI produced (``<automatic>``). The
archive ships inside the ``torchxrayvision`` package; we locate it without importing that
package (and its heavy dependencies).

* :func:`read_openi` → one row per report.
* :func:`mesh_gold` → positive-only gold labels from the human MeSH major terms, through
  a fact table in ``lexicons/maps/openi_mesh_to_<schema>.yaml``.
* :func:`mti_predictions` → MTI's terms as positive-only predictions (a baseline), through
  ``lexicons/maps/openi_mti_to_<schema>.yaml``.
"""

from __future__ import annotations

import importlib.util
import re
import tarfile
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cxrlabel.errors import CxrError, InputError
from cxrlabel.lexicon import LabelMap, load_label_map, load_schema

__all__ = [
    "ARCHIVE_NAME",
    "COLUMNS",
    "archive_path",
    "read_openi",
    "parse_report",
    "mesh_headings",
    "mesh_gold",
    "mti_predictions",
]

ARCHIVE_NAME = "NLMCXR_reports.tgz"
#: The report sections an Open-i XML file holds (its ``AbstractText`` labels), in order.
_SECTIONS = ("indication", "comparison", "findings", "impression")
COLUMNS = ["uid", *_SECTIONS, "mesh_major", "mesh_automatic", "image_ids"]
_UID_NUMBER = re.compile(r"(\d+)$")


def archive_path() -> Path:
    """Path of ``NLMCXR_reports.tgz`` inside the installed ``torchxrayvision`` package.

    The package is found with :func:`importlib.util.find_spec`, which does not import it.
    """
    hint = (
        "install the package that ships it (only its data file is read): "
        'pip install --no-deps "torchxrayvision>=1.2", or pass the archive path'
    )
    try:
        spec = importlib.util.find_spec("torchxrayvision")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the Open-i report archive {ARCHIVE_NAME} was not found: {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / ARCHIVE_NAME
    if not path.is_file():
        raise InputError(
            f"{path}: the Open-i report archive is missing from torchxrayvision; {hint}"
        )
    return path


def _text(node: ET.Element | None) -> str | None:
    if node is None or node.text is None:
        return None
    text = node.text.strip()
    return text or None


def parse_report(xml: bytes | str, name: str = "report") -> dict[str, Any]:
    """One Open-i XML report → a dict with the :data:`COLUMNS` fields.

    Lists (MeSH terms, image ids) are joined with ``;``; an absent section is None.

    Examples
    --------
    >>> xml = ('<eCitation><uId id="CXR9"/><MedlineCitation><Article><Abstract>'
    ...        '<AbstractText Label="FINDINGS">Clear lungs.</AbstractText></Abstract>'
    ...        '</Article></MedlineCitation><MeSH><major>normal</major></MeSH>'
    ...        '<parentImage id="CXR9_IM-1"/></eCitation>')
    >>> r = parse_report(xml)
    >>> r["uid"], r["findings"], r["mesh_major"], r["impression"]
    ('CXR9', 'Clear lungs.', 'normal', None)
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InputError(f"{name}: not well-formed XML ({exc})") from None
    uid_node = root.find("uId")
    uid = uid_node.get("id") if uid_node is not None else None
    if not uid:
        raise InputError(f"{name}: no <uId id=...> element; cannot identify the report")
    record: dict[str, Any] = {"uid": uid.strip()}
    sections = {s: None for s in _SECTIONS}
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().lower()
        if label in sections:
            sections[label] = _text(node)
    record.update(sections)
    for tag in ("major", "automatic"):
        terms = [t for t in (_text(n) for n in root.iterfind(f"MeSH/{tag}")) if t]
        record[f"mesh_{tag}"] = ";".join(terms) if terms else None
    images = [n.get("id") for n in root.iter("parentImage") if n.get("id")]
    record["image_ids"] = ";".join(images) if images else None
    return record


def _uid_key(uid: str) -> tuple[int, str]:
    match = _UID_NUMBER.search(uid)
    return (int(match.group(1)) if match else -1, uid)


def read_openi(path: str | Path | None = None, *, progress: bool = False) -> pd.DataFrame:
    """Read the Open-i report archive: one row per report, sorted by uid number.

    Parameters
    ----------
    path : path, optional
        ``NLMCXR_reports.tgz``; default: the copy inside the installed torchxrayvision.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    DataFrame with :data:`COLUMNS`. Members that cannot be parsed are not rows; they are
    listed in ``df.attrs["skipped"]`` and reported with one ``warnings.warn``.

    Examples
    --------
    >>> df = read_openi()  # doctest: +SKIP
    >>> df.loc[df.uid == "CXR2", "mesh_major"].item()  # doctest: +SKIP
    'Cardiomegaly/borderline;Pulmonary Artery/enlarged'
    """
    path = Path(path) if path is not None else archive_path()
    if not path.is_file():
        raise InputError(f"{path}: Open-i archive not found")
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")]
            for member in tqdm(members, desc="Open-i reports", disable=not progress, unit="report"):
                handle = tar.extractfile(member)
                try:
                    records.append(parse_report(handle.read() if handle else b"", member.name))
                except CxrError as exc:
                    skipped.append(str(exc))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(
            f"{path}: not a readable tar archive ({exc}); expected {ARCHIVE_NAME}"
        ) from None
    if not records:
        raise InputError(f"{path}: no Open-i XML report found in the archive")
    frame = pd.DataFrame(records, columns=COLUMNS)
    frame = frame.iloc[sorted(range(len(frame)), key=lambda i: _uid_key(frame.uid.iat[i]))]
    frame = frame.reset_index(drop=True)
    duplicated = frame.uid[frame.uid.duplicated()].tolist()
    if duplicated:
        raise InputError(f"{path}: duplicate report uid(s) {duplicated[:5]} in the archive")
    frame.attrs["skipped"] = skipped
    if skipped:
        warnings.warn(
            f"{path}: {len(skipped)} archive member(s) could not be read and are not rows "
            f"(first: {skipped[0]}); see df.attrs['skipped']",
            stacklevel=2,
        )
    return frame


def _key(text: str) -> str:
    return " ".join(str(text).lower().split())


def mesh_headings(terms: Any) -> list[str]:
    """Headings of a ``;``-separated MeSH term string (the part before each first ``/``).

    Examples
    --------
    >>> mesh_headings("Cardiomegaly/borderline;Pulmonary Artery/enlarged")
    ['Cardiomegaly', 'Pulmonary Artery']
    >>> mesh_headings(None)
    []
    """
    if not isinstance(terms, str):
        return []
    return [h for h in (t.split("/", 1)[0].strip() for t in terms.split(";")) if h]


def _fact_table(kind: str, schema: str, fact_table: str | Path | LabelMap | None) -> LabelMap:
    if isinstance(fact_table, LabelMap):
        return fact_table
    if fact_table is not None:
        return load_label_map(fact_table)
    try:
        return load_label_map(f"openi_{kind}_to_{schema}")
    except CxrError:
        raise InputError(
            f"no Open-i {kind} fact table for schema '{schema}' (looked for "
            f"lexicons/maps/openi_{kind}_to_{schema}.yaml); use 'chestxray14' or 'chexpert', "
            "or pass fact_table=PATH"
        ) from None


def _derive(
    df: pd.DataFrame,
    column: str,
    id_col: str,
    table: LabelMap,
    schema: str,
    lookup: Callable[[str, dict[str, tuple[str, ...]]], tuple[str, ...] | None],
    split: Callable[[Any], list[str]],
    absent: float,
    every_name: bool,
) -> pd.DataFrame:
    for col in (id_col, column):
        if col not in df.columns:
            raise InputError(
                f"the Open-i table has no column '{col}'; columns are {list(df.columns)}"
            )
    keys = {_key(k): v for k, v in table.mapping.items()}
    targets = {t for ts in table.mapping.values() for t in ts}
    try:
        order = [n for n in load_schema(schema).names if every_name or n in targets]
    except CxrError:
        order = sorted(targets)
    order += sorted(targets - set(order))
    col_of = {name: j for j, name in enumerate(order)}
    values = np.full((len(df), len(order)), absent)
    unlisted: Counter[str] = Counter()
    for i, terms in enumerate(df[column].tolist()):
        for term in split(terms):
            found = lookup(term, keys)
            if found is None:
                unlisted[term] += 1
                continue
            for target in found:
                values[i, col_of[target]] = 1.0
    out = pd.DataFrame(values, columns=order)
    out.insert(0, id_col, df[id_col].to_numpy())
    out.attrs["unlisted"] = dict(unlisted)
    return out


def _exact(term: str, keys: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    return keys.get(_key(term))


def _by_words(term: str, keys: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """Longest word-final part that is a key, then longest word-initial part."""
    words = _key(term.replace(",", " ")).split()
    for cut in range(len(words)):
        hit = keys.get(" ".join(words[cut:]))
        if hit is not None:
            return hit
    for cut in range(len(words) - 1, 0, -1):
        hit = keys.get(" ".join(words[:cut]))
        if hit is not None:
            return hit
    return None


def mesh_gold(
    df: pd.DataFrame,
    schema: str = "chestxray14",
    *,
    column: str = "mesh_major",
    id_col: str = "uid",
    fact_table: str | Path | LabelMap | None = None,
) -> pd.DataFrame:
    """Positive-only gold labels from the human-coded MeSH major terms.

    A finding is 1 when a term's heading maps to it in the fact table, else 0 (not coded).
    Reports without any major term get blank (no gold). Headings the table does not list
    are counted in ``out.attrs["unlisted"]``.

    Examples
    --------
    >>> df = pd.DataFrame({"uid": ["CXR2", "CXR3"],
    ...                    "mesh_major": ["Cardiomegaly/borderline;Pulmonary Artery/enlarged",
    ...                                   "Pericardial Effusion/mild"]})
    >>> gold = mesh_gold(df)
    >>> gold.loc[0, "Cardiomegaly"], gold.loc[1, "Effusion"]
    (np.float64(1.0), np.float64(0.0))
    """
    table = _fact_table("mesh", schema, fact_table)
    out = _derive(
        df, column, id_col, table, schema, _exact, mesh_headings, absent=0.0, every_name=False
    )
    no_terms = ~df[column].map(lambda v: bool(mesh_headings(v))).to_numpy()
    out.loc[no_terms, out.columns[1:]] = np.nan
    return out


def _mti_terms(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [t.strip() for t in value.split(";") if t.strip()]


def mti_predictions(
    df: pd.DataFrame,
    schema: str = "chestxray14",
    *,
    column: str = "mesh_automatic",
    id_col: str = "uid",
    fact_table: str | Path | LabelMap | None = None,
) -> pd.DataFrame:
    """MTI's automatic terms as a labels table: 1 where a term maps to a finding, else blank.

    The result follows the labels-table contract: the id column, one column per schema
    observation (blank throughout for those MTI's table never produces, e.g. No Finding) and
    ``status`` (``ok``; ``empty`` when MTI produced no term), so it can be scored with
    :func:`cxrlabel.validation.labels.validate` like any labeller's output.

    Examples
    --------
    >>> df = pd.DataFrame({"uid": ["CXR1"], "mesh_automatic": ["right lower lobe pneumonia;copd"]})
    >>> mti_predictions(df).loc[0, "Pneumonia"]
    np.float64(1.0)
    """
    table = _fact_table("mti", schema, fact_table)
    out = _derive(
        df, column, id_col, table, schema, _by_words, _mti_terms, absent=np.nan, every_name=True
    )
    out["status"] = np.where(df[column].map(lambda v: bool(_mti_terms(v))), "ok", "empty")
    return out
