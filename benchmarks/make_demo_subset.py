"""Make the real-image demo subset that ships with cxrkit: Kermany pediatric CXRs at 64 px.

The Kermany collection is CC BY 4.0 (Kermany, Zhang, Goldbaum, Cell 2018; Mendeley Data
v2, doi:10.17632/rscbjbr9sj.2), so a small downscaled copy may ship with its attribution
(``NOTICE``, the folder's ``README.md``). This script is how that copy was made, and it
makes the same bytes again from the same source:

1. read ``kermany_dev/labels.csv`` (:func:`cxrembed.collections.kermany.read_kermany_collection`);
2. take whole patients in a seeded order, per subtype in proportion, until about
   ``--images`` images;
3. split them by patient (25% test, stratified by subtype);
4. write each image letterboxed to ``--size`` px, 8-bit grayscale PNG (``images/``), and
   ``labels.csv`` (``image``, ``label``, ``subtype``, ``patient_id``, ``split``,
   ``source_image``).

Usage: python benchmarks/make_demo_subset.py [--source ../shared/data/kermany_dev]
       [--out data/kermany_demo] [--images 1200] [--size 64] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # common, when loaded by path (a test)

import common  # noqa: E402

README = """\
# Kermany pediatric chest X-rays, 64 px demo subset

{n} frontal chest radiographs of {patients} children, {counts}, split by patient
into {train} training and {test} test images (`split` in `labels.csv`). Made by
`python benchmarks/make_demo_subset.py` from the development copy of the collection:
downscaled to {size} px grayscale (letterboxed), 8-bit PNG.

Source: D. Kermany, K. Zhang, M. Goldbaum, "Labeled Optical Coherence Tomography (OCT) and
Chest X-Ray Images for Classification", Mendeley Data v2 (2018),
doi:10.17632/rscbjbr9sj.2, and D. S. Kermany et al., "Identifying Medical Diagnoses and
Treatable Diseases by Image-Based Deep Learning", Cell 172(5):1122-1131 (2018).
Licence: Creative Commons Attribution 4.0 International (CC BY 4.0,
https://creativecommons.org/licenses/by/4.0/). Changes: selected subset, downscaled to
{size} px grayscale, re-encoded as PNG; patient ids derived from the file names
(approximate). Labels were graded by expert physicians (normal / bacterial / viral
pneumonia).

These are children's radiographs at very low resolution: for demonstrating and testing
the toolkit, not for any clinical use.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=common.SHARED / "kermany_dev")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "kermany_demo")
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(common.command_line("make_demo_subset.py", argv))
    if not (args.source / "labels.csv").is_file():
        print(f"skipped: {args.source} not found")
        return 0
    from cxrembed.collections.kermany import patient_split, read_kermany_collection

    table = read_kermany_collection(args.source).table
    chosen = choose_patients(table, args.images, args.seed)
    chosen["split"] = patient_split(chosen, test_fraction=0.25, seed=args.seed)
    write_subset(chosen, args.source, args.out, args.size)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(
        f"wrote {len(chosen)} images of {chosen['patient_id'].nunique()} patients to "
        f"{args.out}: {total / 1e6:.2f} MB"
    )
    print(pd.crosstab(chosen["subtype"], chosen["split"]).to_string())
    return 0


def choose_patients(table: pd.DataFrame, n_images: int, seed: int) -> pd.DataFrame:
    """Whole patients in a seeded order, each subtype up to its share of ``n_images``."""
    rng = np.random.default_rng(seed)
    main_subtype = table.groupby("patient_id")["subtype"].agg(
        lambda s: s.mode().sort_values().iloc[0]
    )
    sizes = table.groupby("patient_id").size()
    share = table["subtype"].value_counts(normalize=True)
    keep: list[str] = []
    for subtype in sorted(share.index):
        patients = sorted(main_subtype.index[main_subtype == subtype])
        budget, taken = round(share[subtype] * n_images), 0
        for patient in rng.permutation(patients):
            if taken >= budget:
                break
            keep.append(patient)
            taken += int(sizes[patient])
    rows = table[table["patient_id"].isin(keep)]
    return rows.sort_values("image").reset_index(drop=True)


def write_subset(rows: pd.DataFrame, source: Path, out: Path, size: int) -> None:
    """The PNGs, ``labels.csv`` and ``README.md`` (atomically per file)."""
    from PIL import Image

    from cxrembed.data.square import fit_square
    from cxrembed.io import read_image
    from cxrlabel.atomic import atomic_path

    (out / "images").mkdir(parents=True, exist_ok=True)
    names = []
    for image in rows["image"]:
        name = f"images/{Path(image).stem}.png"
        pixels = fit_square(read_image(source / image)[0], size)
        with atomic_path(out / name) as tmp:
            Image.fromarray(np.round(pixels * 255).astype(np.uint8), mode="L").save(
                tmp, format="PNG", optimize=True
            )
        names.append(name)
    labels = pd.DataFrame(
        {
            "image": names,
            "label": rows["label"].to_numpy(),
            "subtype": rows["subtype"].to_numpy(),
            "patient_id": rows["patient_id"].to_numpy(),
            "split": rows["split"].to_numpy(),
            "source_image": rows["image"].to_numpy(),
        }
    )
    with atomic_path(out / "labels.csv") as tmp:
        labels.to_csv(tmp, index=False)
    counts = ", ".join(f"{n} {k}" for k, n in rows["subtype"].value_counts().sort_index().items())
    text = README.format(
        n=len(rows),
        patients=rows["patient_id"].nunique(),
        counts=counts,
        train=int((rows["split"] == "train").sum()),
        test=int((rows["split"] == "test").sum()),
        size=size,
    )
    with atomic_path(out / "README.md") as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
