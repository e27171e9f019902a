"""Opt-in, real radiographs (``../shared/data/kermany_dev``, skipped when absent): a short
``cxr train`` with the default recipe on a subset beats the same network untrained on
held-out patients. About 25 s on two cores (32 px, 5 epochs, 600 images).

The claim is retrieval: MAP@R roughly doubles (0.47 against 0.21-0.23 over training seeds
0-2). The pneumonia vote is not compared with the untrained network's: random convolutional
features already vote 0.87-0.95 AUROC on these ~180 test images, and at 3 epochs the trained
votes fell on either side of that from seed to seed (0.86-0.94), so the vote is checked
against a floor instead."""

from __future__ import annotations

import numpy as np
import pytest

from cxrembed.collections.kermany import SUBTYPES, patient_split, read_kermany_collection
from cxrembed.embeddings import EmbeddingSet
from cxrembed.evaluation.baselines import embed_listing, untrained_encoder
from cxrembed.evaluation.metrics.intervals import retrieval_with_intervals
from cxrembed.train import train


def _subset(root, n_images=600, seed=0):
    table = read_kermany_collection(root).table
    rng = np.random.default_rng(seed)
    patients = rng.permutation(sorted(table["patient_id"].unique()))
    sizes = table.groupby("patient_id").size()
    keep = patients[np.cumsum(sizes.loc[patients].to_numpy()) <= n_images]
    subset = table[table["patient_id"].isin(keep)].reset_index(drop=True)
    subset["split"] = patient_split(subset, test_fraction=0.3, seed=seed)
    return subset


@pytest.mark.realdata
@pytest.mark.slow
def test_short_training_beats_untrained_network_on_held_out_patients(kermany_dev, tmp_path):
    table = _subset(kermany_dev)
    assert set(table["subtype"]) == set(SUBTYPES)
    train_rows = table[table["split"] == "train"]
    run = tmp_path / "run"
    result = train(
        train_rows,
        run,
        images=kermany_dev,
        progress=False,
        overrides={
            "image_col": "image",
            "id_col": "id",
            "label_col": "subtype",
            "group_col": "patient_id",
            "image_size": 32,
            "epochs": 5,
            "num_workers": 0,
            "device": "cpu",
            "threads": 1,
        },
    )
    assert result.status == "completed"
    listing = tmp_path / "rows.csv"
    table[["id", "image"]].to_csv(listing, index=False)
    scores = {}
    for name, model in (("trained", run), ("untrained", untrained_encoder(run))):
        embed_listing(model, listing, kermany_dev, tmp_path / name)
        emb = EmbeddingSet.load(tmp_path / name)
        assert sorted(emb.ids) == sorted(table["id"])
        x = emb.vectors_for(table["id"])
        test = (table["split"] == "test").to_numpy()
        scores[name] = retrieval_with_intervals(
            x,
            table["subtype"],
            test,
            ~test,
            groups=table["patient_id"],
            positive=("bacteria", "virus"),
            k=10,
            draws=0,
        )
    trained, untrained = scores["trained"]["value"], scores["untrained"]["value"]
    assert trained["MAP@R"] > untrained["MAP@R"] + 0.1, (trained, untrained)
    assert trained["vote AUROC"] > 0.88, (trained, untrained)
