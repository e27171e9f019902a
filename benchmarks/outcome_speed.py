"""Outcome prediction speed on the real COVID intubation cohort: the bootstrap CI and the fits.

In one run, on CPU, with ../shared/data/cxr_dev/covid_metadata.csv (rows with a yes/no
``intubated``, grouped by ``patientid``):

1. Patient-bootstrap 95% CI of an AUROC (``--draws`` draws): cxrkit's vectorised
   ``weighted_auroc`` vs the peer, a loop of ``sklearn.metrics.roc_auc_score`` with the
   draw's row weights. Both must give the same CI.
2. ``predict_outcome`` end to end (tabular-only, 2 models x 5 patient-grouped folds, 1,000
   draws), with 1 BLAS/OpenMP thread (cxrkit's default) vs the libraries' default thread
   count (the peer). The AUROCs must agree.

Usage: python benchmarks/outcome_speed.py [--draws 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import common
import numpy as np
import pandas as pd

DATA = common.CXR_DEV
sys.path.insert(0, str(common.ROOT))

FEATURES = ["age", "sex", "temperature", "pO2_saturation"]


def _best(fn, repeat: int) -> tuple[float, object]:
    """Best time of ``repeat`` calls, and the last result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(common.command_line("outcome_speed.py", python=sys.executable))
    csv = DATA / "covid_metadata.csv"
    if common.skipped(csv):
        return

    from sklearn.metrics import roc_auc_score

    from cxrembed.outcome.bootstrap import bootstrap_weights, percentile_ci, weighted_auroc
    from cxrembed.outcome.predict import predict_outcome

    table = pd.read_csv(csv)
    cohort = table[table["intubated"].isin(["Y", "N"])]
    y = (cohort["intubated"] == "Y").to_numpy().astype(int)
    score = cohort["age"].fillna(cohort["age"].median()).to_numpy()
    units = cohort["patientid"].astype(str).to_numpy()
    print(
        f"cohort: {len(y)} images, {len(set(units))} patients, {y.sum()} intubated; "
        f"score = age; {args.draws} patient-bootstrap draws; best of {args.repeat} (the "
        "sklearn loop: one run)"
    )

    weights = bootstrap_weights(units, args.draws, seed=0)
    ours, ours_values = _best(lambda: weighted_auroc(score, y, weights), args.repeat)

    def peer_loop() -> np.ndarray:
        out = np.full(len(weights), np.nan)
        for b, w in enumerate(weights):
            if w[y == 1].sum() > 0 and w[y == 0].sum() > 0:
                out[b] = roc_auc_score(y, score, sample_weight=w)
        return out

    start = time.perf_counter()
    peer_values = peer_loop()  # seconds long: timed once
    peer = time.perf_counter() - start
    ci_ours = percentile_ci(ours_values)
    ci_peer = percentile_ci(peer_values)
    assert np.allclose(ci_ours[:2], ci_peer[:2]), (ci_ours, ci_peer)
    print(
        f"bootstrap CI: cxrkit weighted_auroc {ours * 1000:.1f} ms, sklearn roc_auc_score "
        f"loop {peer * 1000:.1f} ms; ratio {peer / ours:.0f}x; same CI "
        f"[{ci_ours[0]:.3f}, {ci_ours[1]:.3f}]"
    )

    def run(threads: int | None) -> pd.DataFrame:
        return predict_outcome(
            None,
            csv,
            "intubated",
            FEATURES,
            id_col="small_image",
            group_col="patientid",
            missing_values=["Not visible"],
            threads=threads,
        ).table

    one, one_table = _best(lambda: run(1), args.repeat)
    default, default_table = _best(lambda: run(None), args.repeat)
    np.testing.assert_allclose(one_table["auroc"], default_table["auroc"], atol=1e-9)
    print(
        f"predict_outcome (tabular-only, 2 models x 5 folds, 1000 draws): 1 thread "
        f"{one:.2f} s, library default threads ({os.cpu_count()} CPUs) {default:.2f} s; "
        f"ratio {default / one:.1f}x; same AUROCs"
    )


if __name__ == "__main__":
    main()
