"""cxrembed.collections.synthetic: deterministic files, visible findings where the truth says, reports
that the labeller reads back as the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrembed.collections.synthetic import (
    FINDINGS,
    TRUTH_COLUMNS,
    Anatomy,
    Findings,
    make_synthetic_set,
    render_radiograph,
    synthetic_report,
)
from cxrlabel.errors import InputError

SIZE = 64
# Regions of the template (fractions of the side), from the drawing's geometry: lung centres
# at x = 0.5 -/+ 0.185, y = 0.52, half-height 0.30.
PATIENT_RIGHT_BASE = (
    slice(int(0.70 * SIZE), int(0.78 * SIZE)),
    slice(int(0.26 * SIZE), int(0.36 * SIZE)),
)
PATIENT_LEFT_BASE = (
    slice(int(0.70 * SIZE), int(0.78 * SIZE)),
    slice(int(0.66 * SIZE), int(0.76 * SIZE)),
)


def _template(**findings: object) -> np.ndarray:
    return render_radiograph(Findings(**findings), size=SIZE)  # type: ignore[arg-type]


def test_pixels_follow_the_convention():
    image = render_radiograph(
        Findings(effusion="both", nodule="left"),
        size=48,
        anatomy=Anatomy(),
        rng=np.random.default_rng(0),
    )
    assert image.shape == (48, 48) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert image[0, 0] < 0.1 < image[24, 24]  # air outside the body is dark, body bright


def test_cardiomegaly_widens_the_heart_shadow():
    normal, big = _template(), _template(cardiomegaly=True)
    row = int(0.70 * SIZE)  # through the heart, below the lung centres

    def bright_width(image: np.ndarray) -> int:
        middle = image[row, int(0.3 * SIZE) : int(0.85 * SIZE)]
        return int((middle > 0.5).sum())

    assert bright_width(big) >= bright_width(normal) + 0.1 * SIZE
    # outside the heart, nothing changed
    assert np.allclose(normal[: int(0.3 * SIZE)], big[: int(0.3 * SIZE)], atol=1e-6)


@pytest.mark.parametrize(
    ("side", "filled", "clear"),
    [
        ("right", PATIENT_RIGHT_BASE, PATIENT_LEFT_BASE),  # patient right = image left (PA)
        ("left", PATIENT_LEFT_BASE, PATIENT_RIGHT_BASE),
    ],
)
def test_effusion_fills_the_base_of_the_named_side(side, filled, clear):
    normal, effusion = _template(), _template(effusion=side)
    assert effusion[filled].mean() > normal[filled].mean() + 0.1
    assert np.allclose(effusion[clear], normal[clear], atol=1e-6)
    # the upper lung stays dark: a fluid level, not a white-out
    upper = (slice(int(0.35 * SIZE), int(0.45 * SIZE)), filled[1])
    assert np.allclose(effusion[upper], normal[upper], atol=0.02)


def test_nodule_is_a_bright_spot_in_the_named_lung():
    diff = _template(nodule="left") - _template()
    y, x = np.unravel_index(np.argmax(diff), diff.shape)
    assert diff.max() > 0.15
    assert x > SIZE / 2  # patient left = image right
    assert (diff > 0.05).sum() < 0.02 * SIZE * SIZE  # small and round, not a region


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = make_synthetic_set(tmp_path / "a", n_images=8, size=32, seed=5, progress=False)
    b = make_synthetic_set(tmp_path / "b", n_images=8, size=32, seed=5, progress=False)
    c = make_synthetic_set(tmp_path / "c", n_images=8, size=32, seed=6, progress=False)
    assert a.table.read_text() == b.table.read_text()
    for path in sorted(a.images.iterdir()):
        assert path.read_bytes() == (b.images / path.name).read_bytes()
    assert a.table.read_text() != c.table.read_text()


def test_table_contract(tmp_path):
    s = make_synthetic_set(
        tmp_path,
        n_images=40,
        size=32,
        seed=1,
        test_fraction=0.3,
        images_per_patient=(1, 3),
        progress=False,
    )
    table = pd.read_csv(s.table)
    assert len(table) == s.n_images == 40
    assert list(table.columns) == [
        "id",
        "patient_id",
        "image",
        "split",
        "view",
        "report",
        *TRUTH_COLUMNS,
    ]
    assert table["id"].is_unique
    for row in table.itertuples():
        assert (s.root / row.image).is_file()
        with Image.open(s.root / row.image) as image:
            assert image.size == (32, 32) and image.mode == "L"
    per_patient = table.groupby("patient_id")
    assert per_patient.size().between(1, 3).all()
    assert (per_patient["split"].nunique() == 1).all()  # a patient is on one side only
    assert set(table["split"]) == {"train", "test"}
    truth = table[list(FINDINGS)].to_numpy()
    assert (table["No Finding"].to_numpy() == (truth.sum(axis=1) == 0)).all()
    assert s.prevalence == {c: int(table[c].sum()) for c in TRUTH_COLUMNS}
    assert s.n_patients == table["patient_id"].nunique()


def test_reports_read_back_as_the_truth_without_noise(tmp_path):
    from cxrlabel import Labeler

    s = make_synthetic_set(
        tmp_path, n_images=60, size=32, seed=2, hedge_rate=0.0, omit_rate=0.0, progress=False
    )
    table = pd.read_csv(s.table)
    mined = Labeler().label(table["report"].tolist())
    for name in TRUTH_COLUMNS:
        assert ((mined[name] == 1).to_numpy() == (table[name] == 1).to_numpy()).all(), name


def test_label_noise_hedges_or_omits_some_findings():
    rng = np.random.default_rng(0)
    findings = Findings(cardiomegaly=True, effusion="left", nodule="right")
    reports = [synthetic_report(findings, rng, hedge_rate=0.3, omit_rate=0.2) for _ in range(200)]
    hedged = sum("Possible" in r for r in reports)
    complete = sum(
        ("cardi" in r.lower() or "heart" in r.lower()) and "effusion" in r and "nodule" in r
        for r in reports
    )
    assert 0 < hedged < 200 and complete < 200
    omitted = [
        synthetic_report(Findings(nodule="left"), rng, omit_rate=0.99, hedge_rate=0.0)
        for _ in range(20)
    ]
    assert all(r.strip() for r in omitted)  # never an empty report
    assert all("bilateral" not in r for r in reports)  # sides as drawn


@pytest.mark.parametrize(
    "options",
    [
        {"n_images": 0},
        {"size": 16},
        {"prevalence": (0.5, 0.5)},
        {"test_fraction": 1.0},
        {"images_per_patient": (2, 1)},
        {"hedge_rate": 0.6, "omit_rate": 0.5},
    ],
)
def test_bad_options_are_refused_before_writing(tmp_path, options):
    with pytest.raises(InputError, match="make_synthetic_set"):
        make_synthetic_set(tmp_path / "out", **{"n_images": 4, **options}, progress=False)
    assert not (tmp_path / "out").exists()
