"""``make demo`` (labeller part): label the 3,955 real Open-i reports and print prevalence,
then score the labels against curated labels derived from the reports' human MeSH terms.

The Open-i archive ships inside the ``torchxrayvision`` package as a data file; only the
archive is read (the package's model code is never imported).

Run: ``python -m cxrlabel.demo [OUT_DIR]`` (default ``demo_out/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from cxrlabel.labelfile import LabelSummary, label_file
from cxrlabel.openi import mesh_gold, read_openi
from cxrlabel.validation.labels import ValidationResult, validate

__all__ = ["label_openi", "validate_openi", "main"]


def label_openi(
    out_dir: Path, schema: str = "chexpert", jobs: int = 1
) -> tuple[Path, Path, LabelSummary]:
    """Write the Open-i reports, their labels and evidence under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = read_openi()
    reports_path = out_dir / "openi_reports.parquet"
    reports.to_parquet(reports_path, index=False)
    labels_path = out_dir / f"openi_labels_{schema}.csv"
    evidence_path = out_dir / f"openi_evidence_{schema}.jsonl"
    summary = label_file(
        reports_path,
        labels_path,
        text_cols=["findings", "impression"],
        id_col="uid",
        schema=schema,
        evidence_path=evidence_path,
        jobs=jobs,
    )
    return labels_path, evidence_path, summary


def validate_openi(
    out_dir: Path, labels_path: Path, evidence_path: Path, schema: str = "chexpert"
) -> ValidationResult:
    """Score the labels against positive-only gold derived from the human MeSH major terms."""
    reports = pd.read_parquet(out_dir / "openi_reports.parquet")
    gold = mesh_gold(reports, schema)
    return validate(
        labels_path, gold, out_dir / f"validation_{schema}", id_col="uid", evidence=evidence_path
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(argv[0]) if argv else Path("demo_out")
    print("== cxr label: the 3,955 Open-i chest X-ray reports (CheXpert schema) ==", flush=True)
    labels_path, evidence_path, summary = label_openi(out_dir)
    print(summary.text(), flush=True)
    print(
        "\n== cxr validate: against curated labels from the reports' human MeSH terms ==",
        flush=True,
    )
    print(
        "(positive-only gold: 1 = coded by the indexers, 0 = not coded; see lexicons/maps/openi_mesh_to_chexpert.yaml)"
    )
    result = validate_openi(out_dir, labels_path, evidence_path)
    print(result.to_markdown(), flush=True)
    print(f"outputs: {out_dir / 'validation_chexpert'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
