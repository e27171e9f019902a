"""Retrieval metrics with patient-bootstrap intervals, and the untrained / pixel floors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cxrembed.embeddings import EmbeddingSet
from cxrembed.evaluation.baselines import embed_listing, pixel_vectors, untrained_encoder
from cxrembed.evaluation.metrics.intervals import (
    format_interval,
    paired_difference,
    retrieval_with_intervals,
)
from cxrembed.evaluation.metrics.retrieval import retrieval_metrics
from cxrembed.inference.run import read_run_config
from cxrembed.train.trainer import initial_model

from .._runs import make_run, write_pngs


def _data(seed=0, n=60, noise=0.8):
    rng = np.random.default_rng(seed)
    groups = np.arange(n) // 2  # two images per patient
    classes = np.array(["normal", "bacteria", "virus"])[groups % 3]
    x = np.eye(3, 6)[groups % 3] + noise * rng.normal(size=(n, 6))
    query = groups % 4 == 0
    return x, classes, groups, query


def test_point_values_match_the_retrieval_metrics():
    x, classes, groups, query = _data()
    table = retrieval_with_intervals(
        x, classes, query, ~query, groups=groups, positive=("bacteria", "virus"), k=5, draws=0
    )
    expected = retrieval_metrics(
        x, classes, query_mask=query, gallery_mask=~query, groups=groups, exclude_same_group=True
    )
    for ours, theirs in (
        ("MAP@R", "mean_average_precision_at_r"),
        ("P@1", "precision_at_1"),
        ("R-precision", "r_precision"),
    ):
        assert table.loc[ours, "value"] == pytest.approx(expected[theirs])
    assert table["low"].isna().all() and (table["queries"] == query.sum()).all()


def test_vote_accuracy_and_auroc_by_hand():
    x = np.array([[1, 0], [0.9, 0.1], [0.8, 0.2], [0, 1], [0.1, 0.9], [0.2, 0.8]], float)
    classes = np.array(["normal", "normal", "bacteria", "virus", "virus", "bacteria"])
    query = np.array([True, False, False, True, False, False])
    table = retrieval_with_intervals(
        x, classes, query, ~query, groups=np.arange(6), positive=("bacteria", "virus"), k=3, draws=0
    )
    # query 0: neighbours 1, 2, 5 -> normal, bacteria, bacteria: vote bacteria (wrong)
    # query 3: neighbours 4, 5, 2 -> virus, bacteria, bacteria: vote bacteria (wrong)
    assert table.loc["vote accuracy", "value"] == 0.0
    # pneumonia share: query 0 (normal) 2/3, query 3 (virus) 3/3 -> AUROC 1
    assert table.loc["vote AUROC", "value"] == 1.0


def test_intervals_cover_the_value_narrow_with_more_patients_and_are_seeded():
    x, classes, groups, query = _data(n=60)
    small = retrieval_with_intervals(
        x, classes, query, ~query, groups=groups, positive=("virus",), k=5, draws=300, seed=1
    )
    again = retrieval_with_intervals(
        x, classes, query, ~query, groups=groups, positive=("virus",), k=5, draws=300, seed=1
    )
    pd.testing.assert_frame_equal(small, again)
    assert ((small["low"] <= small["value"]) & (small["value"] <= small["high"])).all()
    x, classes, groups, query = _data(n=600)
    large = retrieval_with_intervals(
        x, classes, query, ~query, groups=groups, positive=("virus",), k=5, draws=300, seed=1
    )
    width = lambda t: (t["high"] - t["low"]).loc["MAP@R"]  # noqa: E731
    assert width(large) < 0.6 * width(small)


def test_bootstrap_resamples_patients_not_images():
    # every query patient has 10 identical-outcome images: a per-image bootstrap would be
    # far too narrow; by patient the interval stays wide.
    rng = np.random.default_rng(0)
    n_pat = 8
    groups = np.repeat(np.arange(2 * n_pat), 10)
    classes = np.where(groups % 2 == 0, "a", "b")
    good = rng.random(2 * n_pat) < 0.5
    x = np.where(good[groups][:, None], np.eye(2)[(groups % 2)], np.eye(2)[1 - groups % 2])
    x = x + 1e-3 * rng.normal(size=x.shape)
    query = groups < n_pat
    gallery_x = np.eye(2)[np.arange(40) % 2] + 1e-3 * rng.normal(size=(40, 2))
    xs = np.vstack([x, gallery_x])
    cls = np.concatenate([classes, np.where(np.arange(40) % 2 == 0, "a", "b")])
    grp = np.concatenate([groups, 100 + np.arange(40)])
    q = np.concatenate([query, np.zeros(40, bool)])
    g = np.concatenate([np.zeros(len(x), bool), np.ones(40, bool)])
    t = retrieval_with_intervals(xs, cls, q, g, groups=grp, positive=("b",), k=3, draws=500)
    assert t.loc["P@1", "high"] - t.loc["P@1", "low"] > 0.4


def test_format_interval():
    row = pd.Series({"value": 0.5, "low": float("nan"), "high": float("nan")})
    assert format_interval(row) == "0.500"


def test_pixel_vectors_are_standardised_unit_vectors(tmp_path):
    paths = write_pngs(tmp_path, ["a.png", "b.png"], size=40)
    x = pixel_vectors(paths, size=8)
    assert x.shape == (2, 64) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(x.mean(axis=1), 0.0, atol=1e-5)


def test_untrained_encoder_is_the_runs_initial_network(tmp_path):
    run = make_run(tmp_path / "run", seed=5, image_size=32, dim=8)
    encoder = untrained_encoder(run)
    fresh = initial_model(read_run_config(run)).state_dict()
    assert all(torch.equal(v, fresh[k]) for k, v in encoder.model.state_dict().items())
    assert encoder.image_size == 32 and encoder.config_hash == "untrained"
    batch = encoder.prepare_batch([np.zeros((40, 40), np.float32)])
    assert encoder.encode(batch).shape == (1, 8)


def test_embed_listing_embeds_every_row_with_a_run_or_an_encoder_alike(tmp_path):
    run = make_run(tmp_path / "run", seed=5, image_size=32, dim=8)
    write_pngs(tmp_path / "img", ["a.png", "b.png"])
    listing = tmp_path / "rows.csv"
    pd.DataFrame({"id": ["x", "y"], "image": ["a.png", "b.png"]}).to_csv(listing, index=False)
    for model, out in ((run, tmp_path / "trained"), (untrained_encoder(run), tmp_path / "floor")):
        summary = embed_listing(model, listing, tmp_path / "img", out)
        assert len(summary.excluded) == 0
        emb = EmbeddingSet.load(out)
        assert sorted(emb.ids) == ["x", "y"] and emb.vectors.shape == (2, 8)
    # again into the same folder: replaced, not resumed
    assert len(embed_listing(run, listing, tmp_path / "img", tmp_path / "trained").excluded) == 0
    assert len(EmbeddingSet.load(tmp_path / "trained")) == 2


def test_paired_difference_is_the_difference_of_the_values_with_a_paired_interval():
    x, classes, groups, query = _data(n=240, noise=0.8)
    worse = x + np.random.default_rng(5).normal(scale=1.5, size=x.shape)
    common = dict(groups=groups, k=5, draws=400, seed=2)
    diff = paired_difference(x, worse, classes, query, ~query, **common)
    one = retrieval_with_intervals(x, classes, query, ~query, positive=("virus",), **common)
    two = retrieval_with_intervals(worse, classes, query, ~query, positive=("virus",), **common)
    assert diff["value"] == pytest.approx(one.loc["MAP@R", "value"] - two.loc["MAP@R", "value"])
    assert diff["low"] <= diff["value"] <= diff["high"]
    assert diff["low"] > 0  # the noisier embedding is clearly worse
    # paired: the difference's interval is narrower than the two intervals side by side
    spread = (one.loc["MAP@R", "high"] - one.loc["MAP@R", "low"]) + (
        two.loc["MAP@R", "high"] - two.loc["MAP@R", "low"]
    )
    assert diff["high"] - diff["low"] < spread
    p1 = paired_difference(x, worse, classes, query, ~query, metric="P@1", **common)
    assert p1["value"] == pytest.approx(one.loc["P@1", "value"] - two.loc["P@1", "value"])


def test_paired_difference_of_a_method_with_itself_is_exactly_zero():
    x, classes, groups, query = _data()
    same = paired_difference(x, x.copy(), classes, query, ~query, groups=groups, draws=100)
    assert same == {"value": 0.0, "low": 0.0, "high": 0.0}
    assert np.isnan(paired_difference(x, x, classes, query, ~query, groups=groups, draws=0)["low"])


def test_paired_difference_rejects_a_metric_without_per_query_values():
    x, classes, groups, query = _data()
    with pytest.raises(ValueError, match="vote AUROC"):
        paired_difference(x, x, classes, query, ~query, groups=groups, metric="vote AUROC")
