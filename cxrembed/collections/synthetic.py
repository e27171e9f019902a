"""Synthetic chest-radiograph-like images with visible findings, for demos and tests.

No real radiograph may ship with cxrkit, so the end-to-end demo and the pipeline tests run
on pictures drawn here. They are **not** radiographs: a torso silhouette, two dark lung
fields with faint rib arcs, a spine band and a heart shadow, with three findings a model
can see:

* **Cardiomegaly**: the heart is wider (cardiothoracic ratio about 0.6 instead of 0.42);
* **Pleural Effusion**: the base of one or both lungs filled with fluid density up to a
  level with a meniscus (the costophrenic angle is blunted);
* **Lung Lesion**: one round nodule in a lung field.

Each patient has an anatomy (body width, lung height, heart position, exposure) and a set of
findings; their images (1 to 3, follow-ups) differ by position, exposure and noise. Each
image comes with a short report-like text that states its findings in varied words, with
some realistic label noise: a present finding is now and then hedged ("possible ...") or
not mentioned, so labels mined from the reports with ``cxr label`` are close to, but not
exactly, the truth. Views are PA: the patient's right is on the image's left.

Everything is drawn from one seed (:class:`numpy.random.SeedSequence` spawned per
patient), so the same call writes the same pixels and text.

Examples
--------
>>> import tempfile
>>> s = make_synthetic_set(tempfile.mkdtemp(), n_images=6, size=32, seed=1, progress=False)
>>> table = pd.read_csv(s.table)
>>> len(table), list(table.columns[:4])
(6, ['id', 'patient_id', 'image', 'split'])
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from cxrlabel.atomic import atomic_path
from cxrlabel.errors import InputError
from cxrlabel.vocab import Interval

__all__ = [
    "FINDINGS",
    "TRUTH_COLUMNS",
    "Anatomy",
    "Findings",
    "SyntheticSet",
    "make_synthetic_set",
    "render_radiograph",
    "synthetic_report",
]

#: The findings drawn, by their CheXpert names.
FINDINGS: tuple[str, ...] = ("Cardiomegaly", "Pleural Effusion", "Lung Lesion")
#: Truth columns of the table: the findings plus ``No Finding`` (1 when none is present).
TRUTH_COLUMNS: tuple[str, ...] = ("No Finding", *FINDINGS)

_SIDES = ("right", "left")  # patient sides; "right" is drawn on the image's left (PA view)


@dataclass(frozen=True)
class Anatomy:
    """One patient's body, shared by all their images (fractions of the image side).

    Attributes
    ----------
    body_width : float
        Scale of the torso and lungs across (about 0.9 to 1.05).
    lung_height : float
        Half-height of the lung fields (about 0.27 to 0.33).
    heart_shift : float
        Horizontal offset of the heart towards the patient's left (image right).
    exposure : float
        Gamma of the whole picture (about 0.85 to 1.15).
    """

    body_width: float = 1.0
    lung_height: float = 0.30
    heart_shift: float = 0.04
    exposure: float = 1.0


@dataclass(frozen=True)
class Findings:
    """What one image shows.

    Attributes
    ----------
    cardiomegaly : bool
    effusion : str or None
        ``"right"``, ``"left"``, ``"both"`` (patient sides) or None.
    nodule : str or None
        Side of the nodule (``"right"``/``"left"``) or None.
    """

    cardiomegaly: bool = False
    effusion: str | None = None
    nodule: str | None = None

    def truth(self) -> dict[str, int]:
        """The :data:`TRUTH_COLUMNS` as 1/0."""
        present = {
            "Cardiomegaly": self.cardiomegaly,
            "Pleural Effusion": bool(self.effusion),
            "Lung Lesion": bool(self.nodule),
        }
        return {
            "No Finding": int(not any(present.values())),
            **{k: int(v) for k, v in present.items()},
        }


@dataclass(frozen=True)
class SyntheticSet:
    """Where :func:`make_synthetic_set` wrote its files, and what they hold.

    Attributes
    ----------
    root : pathlib.Path
        The output folder.
    table : pathlib.Path
        ``labels.csv``: ``id``, ``patient_id``, ``image`` (path relative to ``root``),
        ``split`` (``train``/``test`` by patient), ``view``, ``report`` and the
        :data:`TRUTH_COLUMNS` (1/0, the truth the image was drawn from).
    images : pathlib.Path
        Folder of the PNGs, named ``<id>.png``.
    n_images, n_patients : int
    prevalence : dict
        Images with each truth column set.
    """

    root: Path
    table: Path
    images: Path
    n_images: int
    n_patients: int
    prevalence: dict[str, int]


def make_synthetic_set(
    out_dir: str | os.PathLike[str],
    n_images: int = 300,
    *,
    size: int = 128,
    seed: int = 0,
    prevalence: Sequence[float] = (0.35, 0.3, 0.3),
    images_per_patient: tuple[int, int] = (1, 3),
    test_fraction: float = 0.2,
    hedge_rate: float = 0.06,
    omit_rate: float = 0.04,
    progress: bool = True,
) -> SyntheticSet:
    """Draw ``n_images`` synthetic radiographs with reports and write them under ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Output folder (created); ``labels.csv`` and ``images/`` are (re)written.
    n_images : int
        Number of images (patients are drawn until there are this many).
    size : int
        Side of the square PNGs, at least 32 px.
    seed : int
        Same seed, same files.
    prevalence : sequence of 3 floats
        Probability of each of :data:`FINDINGS` per patient (independent draws).
    images_per_patient : (int, int)
        Inclusive range of images per patient.
    test_fraction : float
        Share of patients whose ``split`` is ``test`` (the others ``train``).
    hedge_rate, omit_rate : float
        Probability that a present finding is written uncertainly ("possible ...") or left
        out of the report: the label noise of reports.
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    SyntheticSet

    Examples
    --------
    >>> import tempfile
    >>> s = make_synthetic_set(tempfile.mkdtemp(), n_images=4, size=32, progress=False)
    >>> s.n_images, sorted(p.name for p in s.images.iterdir())[:2]
    (4, ['syn0000.png', 'syn0001.png'])
    """
    _check_options(
        n_images, size, prevalence, images_per_patient, test_fraction, hedge_rate, omit_rate
    )
    root = Path(out_dir)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    patient_seeds = np.random.SeedSequence(seed)
    patient = 0
    bar = tqdm(total=n_images, unit="img", desc="synthetic", file=sys.stderr, disable=not progress)
    try:
        while len(rows) < n_images:
            rng = np.random.default_rng(patient_seeds.spawn(1)[0])
            anatomy = _draw_anatomy(rng)
            findings = _draw_findings(rng, prevalence)
            split = "test" if rng.random() < test_fraction else "train"
            count = int(rng.integers(images_per_patient[0], images_per_patient[1] + 1))
            for _ in range(min(count, n_images - len(rows))):
                image_id = f"syn{len(rows):04d}"
                pixels = render_radiograph(findings, size=size, anatomy=anatomy, rng=rng)
                path = images / f"{image_id}.png"
                with atomic_path(path) as tmp:
                    Image.fromarray(np.rint(pixels * 255).astype(np.uint8)).save(tmp, "PNG")
                rows.append(
                    {
                        "id": image_id,
                        "patient_id": f"P{patient:04d}",
                        "image": f"images/{image_id}.png",
                        "split": split,
                        "view": "PA",
                        "report": synthetic_report(
                            findings, rng, hedge_rate=hedge_rate, omit_rate=omit_rate
                        ),
                        **findings.truth(),
                    }
                )
                bar.update()
            patient += 1
    finally:
        bar.close()
    table = pd.DataFrame(rows)
    table_path = root / "labels.csv"
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False)
    return SyntheticSet(
        root=root,
        table=table_path,
        images=images,
        n_images=len(table),
        n_patients=int(table["patient_id"].nunique()),
        prevalence={c: int(table[c].sum()) for c in TRUTH_COLUMNS},
    )


def render_radiograph(
    findings: Findings,
    *,
    size: int = 128,
    anatomy: Anatomy | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Draw one synthetic frontal radiograph: float32 ``size`` x ``size`` in [0, 1].

    Bone and soft tissue are bright, air dark (cxrembed's pixel convention). ``rng`` adds
    the per-image variation (shift, exposure, noise, nodule position); without it the
    picture is the noise-free template.

    Examples
    --------
    >>> small = render_radiograph(Findings(), size=64)
    >>> big = render_radiograph(Findings(cardiomegaly=True), size=64)
    >>> small.dtype.name, bool(big[40:50].mean() > small[40:50].mean())
    ('float32', True)
    """
    if size < 32:
        raise InputError(f"synthetic images need size >= 32 px; got {size}")
    anatomy = anatomy or Anatomy()
    jitter = (lambda scale: float(rng.normal(0.0, scale))) if rng is not None else (lambda _: 0.0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    y, x = (y + 0.5) / size, (x + 0.5) / size
    px = 1.0 / size
    cx, cy = 0.5 + jitter(0.012), 0.52 + jitter(0.012)
    bw, lh = anatomy.body_width, anatomy.lung_height

    body = _ellipse(x, y, cx, cy + 0.12, 0.44 * bw, 0.62, px)
    shoulders = _ellipse(x, y, cx, cy - 0.22, 0.47 * bw, 0.16, px)
    image = 0.05 + 0.5 * np.maximum(body, shoulders)
    lung_x = 0.185 * bw
    lungs = []
    for sign in (-1.0, 1.0):  # image left (patient right), image right (patient left)
        lung = _ellipse(x, y, cx + sign * lung_x, cy, 0.145 * bw, lh, px)
        lungs.append(lung)
        image -= 0.3 * lung
    lung_any = np.maximum(*lungs)
    ribs = 0.5 + 0.5 * np.cos(2 * np.pi * (9.0 * (y - cy) + 2.0 * (x - cx) ** 2 / bw))
    image += 0.06 * lung_any * ribs**3
    spine = (
        _soft((np.abs(x - cx) - 0.035) / px) * _soft((y - 0.97) / px) * (1 - _soft((y - 0.1) / px))
    )
    image += 0.12 * spine
    thorax = 2 * (lung_x + 0.145 * bw)
    ctr = (0.6 if findings.cardiomegaly else 0.42) + jitter(0.015)
    heart = _ellipse(
        x,
        y,
        cx + anatomy.heart_shift * bw + (0.03 if findings.cardiomegaly else 0),
        cy + 0.6 * lh,
        ctr * thorax / 2,
        0.12 + 0.25 * (ctr - 0.42),
        px,
    )
    image = image * (1 - heart) + 0.6 * heart
    if findings.effusion:
        sides = _SIDES if findings.effusion == "both" else (findings.effusion,)
        for side in sides:
            lung = lungs[_SIDES.index(side)]
            sign = -1.0 if side == "right" else 1.0
            level = cy + lh * (0.7 - 0.35 * (rng.random() if rng is not None else 0.5))
            lateral = np.clip(sign * (x - cx - sign * lung_x) / (0.145 * bw), 0, 1)
            fluid = lung * _soft((level - 0.06 * lateral - y) / px)
            image = image * (1 - fluid) + 0.55 * fluid
    if findings.nodule:
        lung = lungs[_SIDES.index(findings.nodule)]
        sign = -1.0 if findings.nodule == "right" else 1.0
        u = rng.uniform(-0.5, 0.5, size=2) if rng is not None else np.zeros(2)
        nx = cx + sign * lung_x + 0.14 * bw * u[0]
        ny = cy - 0.25 * lh + 0.8 * lh * u[1]
        radius = 0.04 if rng is None else float(rng.uniform(0.03, 0.05))
        image += 0.3 * _ellipse(x, y, nx, ny, radius, radius, 1.5 * px)
    if rng is not None:
        image = image + rng.normal(0.0, 0.015, size=image.shape)
    image = np.clip(image, 0.0, 1.0) ** (anatomy.exposure * (1 + jitter(0.03)))
    return _blur(image).astype(np.float32)


def synthetic_report(
    findings: Findings,
    rng: np.random.Generator,
    *,
    hedge_rate: float = 0.06,
    omit_rate: float = 0.04,
) -> str:
    """A short report stating ``findings`` in varied words (see module doc for the noise).

    Examples
    --------
    >>> text = synthetic_report(Findings(cardiomegaly=True), np.random.default_rng(0),
    ...                         omit_rate=0, hedge_rate=0)
    >>> text.startswith("PA view of the chest.") and any(s in text for s in _CARDIO[1])
    True
    """
    parts: list[str] = []
    for present, phrases in (
        (findings.cardiomegaly, _CARDIO),
        (findings.effusion, _EFFUSION),
        (findings.nodule, _NODULE),
    ):
        absent, positive, hedged = phrases
        if not present:
            if rng.random() < 0.5:
                parts.append(str(rng.choice(absent)))
            continue
        roll = rng.random()
        if roll < omit_rate:
            continue
        pool = hedged if roll < omit_rate + hedge_rate else positive
        side = {"both": "bilateral"}.get(str(present), str(present))
        parts.append(str(rng.choice(pool)).format(side=side, Side=side.capitalize()))
    if not (findings.cardiomegaly or findings.effusion or findings.nodule):
        parts.append(str(rng.choice(_NORMAL)))
    order = rng.permutation(len(parts))
    # Every report says something, even when all its findings were left out.
    return " ".join(["PA view of the chest.", *(parts[i] for i in order)])


# (absent, present, hedged) phrasings; {side}: right / left / bilateral (patient side).
_CARDIO = (
    ("Heart size is normal.", "No cardiomegaly.", "Normal heart size."),
    (
        "Enlarged cardiac silhouette.",
        "The heart is enlarged.",
        "Cardiomegaly.",
        "Moderate cardiomegaly.",
    ),
    ("Possible mild cardiomegaly.",),
)
_EFFUSION = (
    ("No pleural effusion.", "No effusion."),
    (
        "Small {side} pleural effusion.",
        "{Side} pleural effusion with a fluid level.",
        "Layering {side} effusion.",
    ),
    ("Possible small {side} effusion.",),
)
_NODULE = (
    ("No focal nodule.",),
    (
        "Solitary pulmonary nodule in the {side} lung.",
        "Round nodule in the {side} lung.",
        "A 1 cm nodule projects over the {side} lung.",
    ),
    ("Possible nodule in the {side} lung.",),
)
_NORMAL = ("The lungs are clear.", "No acute cardiopulmonary process.")


def _draw_anatomy(rng: np.random.Generator) -> Anatomy:
    return Anatomy(
        body_width=float(rng.uniform(0.9, 1.05)),
        lung_height=float(rng.uniform(0.27, 0.33)),
        heart_shift=float(rng.uniform(0.02, 0.06)),
        exposure=float(rng.uniform(0.85, 1.15)),
    )


def _draw_findings(rng: np.random.Generator, prevalence: Sequence[float]) -> Findings:
    cardio, effusion, nodule = (rng.random() < p for p in prevalence)
    return Findings(
        cardiomegaly=bool(cardio),
        effusion=str(rng.choice(("right", "left", "both"), p=(0.4, 0.4, 0.2)))
        if effusion
        else None,
        nodule=str(rng.choice(_SIDES)) if nodule else None,
    )


def _soft(distance: np.ndarray) -> np.ndarray:
    """1 inside (negative distance, in pixels), 0 outside, a one-pixel soft edge."""
    return 1.0 / (1.0 + np.exp(np.clip(distance, -30, 30)))


def _ellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, px: float
) -> np.ndarray:
    radius = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return _soft((radius - 1.0) * min(rx, ry) / px)


def _blur(image: np.ndarray) -> np.ndarray:
    """A 3-tap binomial blur (a detector's point spread), edges repeated."""
    padded = np.pad(image, 1, mode="edge")
    rows = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    return 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]


def _check_options(
    n_images: int,
    size: int,
    prevalence: Sequence[float],
    images_per_patient: tuple[int, int],
    test_fraction: float,
    hedge_rate: float,
    omit_rate: float,
) -> None:
    problems = []
    if not Interval(int, 1, None).contains(n_images):
        problems.append(f"n_images must be a positive int; got {n_images!r}")
    if not Interval(int, 32, None).contains(size):
        problems.append(f"size must be an int >= 32 px; got {size!r}")
    if len(prevalence) != len(FINDINGS) or not all(0 <= p <= 1 for p in prevalence):
        problems.append(
            f"prevalence must be {len(FINDINGS)} probabilities for {FINDINGS}; "
            f"got {tuple(prevalence)!r}"
        )
    low, high = images_per_patient
    if not 1 <= low <= high:
        problems.append(
            f"images_per_patient must be (low, high) with 1 <= low <= high; "
            f"got {images_per_patient!r}"
        )
    for name, value in (
        ("test_fraction", test_fraction),
        ("hedge_rate", hedge_rate),
        ("omit_rate", omit_rate),
    ):
        if not 0 <= value < 1:
            problems.append(f"{name} must be in [0, 1); got {value!r}")
    if hedge_rate + omit_rate >= 1:
        problems.append("hedge_rate + omit_rate must be below 1")
    if problems:
        raise InputError("make_synthetic_set: " + "; ".join(problems))
