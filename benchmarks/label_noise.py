"""Label-noise tolerance on real radiographs: clean held-out MAP@R as training labels rot.

Data: ``kermany_dev`` (see :mod:`realdata`), the same patient-disjoint test split as
``retrieval_real.py`` (test patients are never trained on and are scored with their true
labels). The training patients' subtype labels (normal / bacteria / virus) are corrupted,
seeded, at rate rho in two ways:

``symmetric``
    each label is replaced, with probability rho, by one of the other two classes;
``missed``
    each pneumonia label (bacteria or virus) is replaced, with probability rho, by
    ``normal``: the systematic error of a labeller that misses findings.

The noise-aware workflow is the real one: 10% of the training patients (seeded) are a
curated subset whose true labels are known; ``cxr validate`` (:func:`cxrlabel.validate`)
scores the noisy labels of that subset against them and writes ``noise.json``, which
``cxr train --noise`` reads. Nothing else knows the noise rate.

Methods (``cxr train`` defaults except what is named): the default recipe; the default
with ``--noise noise.json``; the default dropping the largest-loss pairs and images
(``loss_options: {drop_fraction: 0.2}``); plain ``--loss ms``; ``--loss ml2``;
``--loss ce``. Each is trained once per (noise, rho); rho = 0 is shared. Opt-in
(``--methods``): ``ce_weight 3``, ``ce_weight 3 + noise.json``, ``ce_weight 3 + drop 20%``,
the default with ``loss_options: {ce_weight: 3}`` alone and with each noise-aware option.

Output: a table of test MAP@R [95% patient-bootstrap interval] by method and noise
level, the share of each method's rho = 0 MAP@R kept, and a plot.

Usage: python benchmarks/label_noise.py [--rhos 0,0.2,0.4] [--kinds symmetric,missed]
       [--methods ...] [--epochs 8] [--image-size 64] [--threads 2] [--out DIR] [--resume]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import realdata  # noqa: E402

SUBTYPES = ("normal", "bacteria", "virus")
METHODS = {
    "default": {},
    "default + noise.json": {"noise": "NOISE"},
    "default + drop 20% largest losses": {"loss_options": {"drop_fraction": 0.2}},
    "ms": {"loss": "ms"},
    "ml2": {"loss": "ml2"},
    "ce": {"loss": "ce"},
}
#: Opt-in rows (not in the default ``--methods``): the default with a heavier classification
#: term (``ce_weight 3``, the tuning lead), alone and with each noise-aware option.
CE3 = {"ce_weight": 3.0}
EXTRA_METHODS = {
    "ce_weight 3": {"loss_options": CE3},
    "ce_weight 3 + noise.json": {"noise": "NOISE", "loss_options": CE3},
    "ce_weight 3 + drop 20%": {"loss_options": {**CE3, "drop_fraction": 0.2}},
}
ALL_METHODS = {**METHODS, **EXTRA_METHODS}


def corrupt(labels: pd.Series, kind: str, rho: float, seed: int) -> pd.Series:
    """Seeded corrupted copy of subtype labels (see the module docstring).

    Examples
    --------
    >>> y = pd.Series(["normal", "bacteria", "virus"] * 200)
    >>> noisy = corrupt(y, "missed", 0.4, seed=0)
    >>> bool((noisy[y == "normal"] == "normal").all()), round(float((noisy != y).mean()), 2)
    (True, 0.28)
    """
    rng = np.random.default_rng([seed, int(round(rho * 1000)), 0 if kind == "symmetric" else 1])
    values = labels.to_numpy(dtype=object).copy()
    flip = rng.random(len(values)) < rho
    if kind == "symmetric":
        for i in np.flatnonzero(flip):
            others = [c for c in SUBTYPES if c != values[i]]
            values[i] = others[rng.integers(len(others))]
    elif kind == "missed":
        values[flip & (values != "normal")] = "normal"
    else:
        raise ValueError(f"kind must be symmetric or missed; got {kind!r}")
    return pd.Series(values, index=labels.index)


def noise_file(table: pd.DataFrame, noisy: pd.Series, folder: Path, seed: int) -> Path:
    """``cxr validate`` of the noisy labels of a curated 10% of training patients."""
    from cxrembed.collections.kermany import patient_split
    from cxrlabel.validation.labels import validate

    train = table[table["split"] == "train"]
    side = patient_split(train, test_fraction=0.1, seed=seed + 1, names=("rest", "curated"))
    curated = train[side == "curated"]

    def one_hot(values: pd.Series) -> pd.DataFrame:
        out = pd.DataFrame({"id": curated["id"].to_numpy()})
        for name in SUBTYPES:
            out[name] = (values.to_numpy() == name).astype(int)
        return out

    pred = one_hot(noisy.loc[curated.index])
    pred["status"] = "ok"
    gold = one_hot(curated["subtype"])
    folder.mkdir(parents=True, exist_ok=True)
    validate(
        pred,
        gold,
        folder,
        id_col="id",
        gold_semantics="full",
        bootstrap=0,
        schema="kermany subtype",
    )
    return folder / "noise.json"


def main(argv: list[str] | None = None) -> int:
    args, methods = _parse_args(argv)
    spec = realdata.SPECS["kermany"]
    out = realdata.start("label_noise.py", argv, args)
    if realdata.skipped(spec):
        return 0
    started = time.perf_counter()
    table, root = realdata.load_split(spec, seed=args.split_seed)
    cache = realdata.prepare(table, root, out / f"cache{args.image_size}", args.image_size)
    base = realdata.base_overrides(spec, args)
    rhos = [float(r) for r in args.rhos.split(",")]
    kinds = [k.strip() for k in args.kinds.split(",")]
    conditions = [("clean", 0.0)] * (0.0 in rhos) + [(k, r) for k in kinds for r in rhos if r]

    done = out / "label_noise.csv"
    rows = pd.read_csv(done).to_dict("records") if args.resume and done.is_file() else []
    have = {(r["noise"], float(r["rho"]), r["method"]) for r in rows}
    for kind, rho in conditions:
        labels, wrong, noise = _condition(table, kind, rho, args.seed, out)
        for method in methods:
            if (kind, rho, method) in have:
                continue
            overrides = {**base, **ALL_METHODS[method]}
            if overrides.get("noise") == "NOISE":
                overrides["noise"] = str(noise)
            tag = f"{kind}-{rho:g}"
            row = _train_and_score(table, labels, cache, overrides, tag, method, args, out)
            rows.append({"noise": kind, "rho": rho, "wrong": wrong, **row})
            print(
                f"  {method}: test MAP@R {row['MAP@R']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"
                f" ({row['train_s']:.0f} s; {time.perf_counter() - started:.0f} s elapsed)",
                flush=True,
            )
            pd.DataFrame(rows).to_csv(done, index=False)
    frame = pd.DataFrame(rows)
    print("\n" + report(frame))
    png = plot(frame, out / "label_noise.png")
    print(f"\nwritten: {done}, {png}")
    realdata.finish(started)
    return 0


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The usage line's options and the chosen methods (a typo stops before any work)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rhos", default="0,0.2,0.4")
    parser.add_argument("--kinds", default="symmetric,missed")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows already in --out's label_noise.csv and train only the missing ones",
    )
    realdata.add_common_args(parser)
    args = parser.parse_args(argv)
    methods = realdata.chosen_names(parser, "--methods", args.methods, ALL_METHODS)
    if args.resume and args.out is None:
        parser.error("--resume needs --out (the folder of the run to continue)")
    return args, methods


def _condition(
    table: pd.DataFrame, kind: str, rho: float, seed: int, out: Path
) -> tuple[pd.DataFrame, float, Path]:
    """One noise condition: the table with the training labels corrupted (test labels stay
    true), the share of training labels made wrong, and ``cxr validate``'s noise.json."""
    noisy = corrupt(table["subtype"], kind, rho, seed) if rho else table["subtype"]
    noisy = noisy.where(table["split"] == "train", table["subtype"])
    wrong = float((noisy != table["subtype"])[table["split"] == "train"].mean())
    tag = f"{kind}-{rho:g}"
    noise = noise_file(table, noisy, out / f"validate_{tag}", seed)
    print(
        f"\n{tag}: {wrong:.1%} of training labels wrong; noise.json from "
        f"cxr validate on the curated subset: {noise}",
        flush=True,
    )
    return table.assign(subtype=noisy), wrong, noise


def _train_and_score(
    table: pd.DataFrame,
    labels: pd.DataFrame,
    cache: Path,
    overrides: dict[str, Any],
    tag: str,
    method: str,
    args: argparse.Namespace,
    out: Path,
) -> dict[str, Any]:
    """Train one method on the (noisy) labels, embed, and score on the clean test labels."""
    spec = realdata.SPECS["kermany"]
    run = out / f"run_{tag}_{_slug(method)}"
    timing = realdata.train_run(labels, run, cache, overrides)
    vectors = realdata.embed_run(run, table, cache, out / f"emb_{tag}_{_slug(method)}")
    s = realdata.score(vectors, table, spec, draws=args.bootstrap).loc["MAP@R"]
    return {
        "method": method,
        "MAP@R": s["value"],
        "low": s["low"],
        "high": s["high"],
        "train_s": timing["train_seconds"],
    }


def report(frame: pd.DataFrame) -> str:
    """Markdown: MAP@R [CI] per method and condition, and the share of rho = 0 kept."""
    clean = frame[frame["rho"] == 0].set_index("method")["MAP@R"]
    noisy = frame[frame["rho"] > 0]
    columns = [
        f"{k} {r:g}" for k, r in noisy[["noise", "rho"]].drop_duplicates().itertuples(index=False)
    ]
    lines = [
        "| method | clean | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for method, group in frame.groupby("method", sort=False):
        cells = []
        base = clean.get(method, np.nan)
        first = group[group["rho"] == 0]
        cells.append(_cell(first.iloc[0]) if len(first) else "")
        for column in columns:
            kind, rho = column.rsplit(" ", 1)
            row = group[(group["noise"] == kind) & (group["rho"] == float(rho))]
            if not len(row):
                cells.append("")
                continue
            kept = row.iloc[0]["MAP@R"] / base if np.isfinite(base) else np.nan
            cells.append(f"{_cell(row.iloc[0])} ({kept:.0%})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "test MAP@R [95% CI] (share of the method's clean MAP@R kept):\n" + "\n".join(lines)


def plot(frame: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in frame["noise"].unique() if k != "clean"]
    fig, axes = plt.subplots(
        1,
        max(len(kinds), 1),
        figsize=(5.2 * max(len(kinds), 1), 3.8),
        dpi=110,
        sharey=True,
        squeeze=False,
    )
    for axis, kind in zip(axes[0], kinds, strict=False):
        for i, (method, group) in enumerate(frame.groupby("method", sort=False)):
            part = group[(group["noise"] == kind) | (group["rho"] == 0)].sort_values("rho")
            axis.errorbar(
                part["rho"] + 0.004 * i,
                part["MAP@R"],
                yerr=[part["MAP@R"] - part["low"], part["high"] - part["MAP@R"]],
                marker="o",
                capsize=2,
                label=method,
            )
        axis.set(
            title=f"{kind} label noise", xlabel="rho (corruption rate)", ylabel="clean test MAP@R"
        )
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _cell(row: pd.Series) -> str:
    return f"{row['MAP@R']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


if __name__ == "__main__":
    sys.exit(main())
