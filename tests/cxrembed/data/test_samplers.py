"""Tests for cxrembed.data.samplers: batch composition, sharding, exact mid-epoch resume."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from cxrembed.data.samplers import MultiLabelBatchSampler, label_groups
from cxrembed.errors import SamplerInputError
from cxrlabel.errors import CxrError

NAN = np.nan


def _labels(n: int = 200, c: int = 6, seed: int = 0) -> np.ndarray:
    gen = np.random.default_rng(seed)
    return gen.choice([1.0, 0.0, -1.0, NAN], size=(n, c), p=[0.15, 0.65, 0.1, 0.1])


def test_label_groups_hand_example() -> None:
    y = np.array(
        [
            [1, 0, 0],
            [1, 1, 0],
            [0, 0, 0],  # no finding
            [NAN, -1, NAN],  # nothing known: unplaced
            [0, -1, 0],  # no finding (uncertain B is not a positive)
            [0, 1, NAN],
        ]
    )
    groups, unplaced = label_groups(y)
    assert [g.tolist() for g in groups] == [[0, 1], [1, 5], [2, 4]]
    assert unplaced.tolist() == [3]
    known = np.ones_like(y, dtype=bool)
    known[1, 0] = False  # row 1's A is masked out
    groups, _ = label_groups(y, known)
    assert [g.tolist() for g in groups] == [[0], [1, 5], [2, 4]]
    ids_groups, _ = label_groups(np.array([5, 2, 5, 9]))
    assert [g.tolist() for g in ids_groups] == [[1], [0, 2], [3]]


def test_each_batch_holds_m_exams_of_each_drawn_label_without_repeats() -> None:
    y = _labels()
    groups, _ = label_groups(y)
    sampler = MultiLabelBatchSampler(y, m=4, batch_size=16, seed=1)
    for batch in sampler:
        assert len(batch) == 16 and len(set(batch)) == 16  # every label has >= 16 exams
        # Consecutive blocks of m come from one label's group.
        blocks = [batch[k : k + 4] for k in range(0, 16, 4)]
        assert all(any(set(b) <= set(g.tolist()) for g in groups) for b in blocks)


def test_scarce_label_is_drawn_with_replacement() -> None:
    y = np.zeros((30, 2))
    y[0, 0] = 1  # label A has a single exam
    y[1:, 1] = 1
    sampler = MultiLabelBatchSampler(y, m=4, batch_size=8, seed=0, batches_per_epoch=20)
    batches = list(sampler)
    with_a = [b for b in batches if 0 in b]
    assert with_a and all(b.count(0) == 4 for b in with_a)


def test_labels_are_balanced_and_no_finding_is_a_label() -> None:
    y = np.zeros((1000, 3))
    y[:10, 0] = 1  # rare
    y[10:500, 1] = 1  # common
    # column 2 never positive; rows 500: are "no finding"
    sampler = MultiLabelBatchSampler(y, m=2, batch_size=4, seed=0, batches_per_epoch=600)
    counts = {"rare": 0, "common": 0, "no finding": 0}
    for batch in sampler:
        for block in (batch[:2], batch[2:]):
            key = "rare" if block[0] < 10 else "common" if block[0] < 500 else "no finding"
            counts[key] += 1
    # 1200 draws over 3 labels: each near 400, the rare label as often as the others.
    assert all(300 < v < 500 for v in counts.values()), counts


def test_rows_without_known_labels_are_never_drawn_and_reported() -> None:
    y = _labels(60, 3)
    y[:, 0] = 0  # every row known ...
    y[[5, 17]] = NAN  # ... but these two
    with pytest.warns(UserWarning, match=r"2 of 60 rows have no known label.*\[5, 17\]"):
        sampler = MultiLabelBatchSampler(y, m=2, batch_size=8, batches_per_epoch=50)
    drawn = set(itertools.chain.from_iterable(sampler))
    assert not drawn & {5, 17}


def test_deterministic_per_seed_and_epoch() -> None:
    y = _labels()

    def run(seed: int, epoch: int) -> list[list[int]]:
        s = MultiLabelBatchSampler(y, m=4, batch_size=16, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert run(0, 0) == run(0, 0)
    assert run(0, 0) != run(1, 0)
    assert run(0, 0) != run(0, 1)


def test_len_and_epoch_length() -> None:
    y = _labels(100)
    assert len(MultiLabelBatchSampler(y, m=4, batch_size=16)) == 7  # ceil(100 / 16)
    assert len(MultiLabelBatchSampler(y, m=4, batch_size=16, batches_per_epoch=3)) == 3
    sharded = MultiLabelBatchSampler(y, m=4, batch_size=16, batches_per_epoch=10, num_replicas=4)
    assert len(sharded) == 3  # ceil(10 / 4): every rank steps the same number of times


def test_ranks_get_disjoint_shares_of_the_same_epoch() -> None:
    y = _labels()
    replicas = 3
    single = MultiLabelBatchSampler(y, m=4, batch_size=16, seed=4, batches_per_epoch=12)
    single.set_epoch(5)
    everything = list(single)
    shares = []
    for rank in range(replicas):
        s = MultiLabelBatchSampler(
            y, m=4, batch_size=16, seed=4, batches_per_epoch=12, num_replicas=replicas, rank=rank
        )
        s.set_epoch(5)
        shares.append(list(s))
    for rank, share in enumerate(shares):
        assert share == everything[rank::replicas]
    assert sorted(itertools.chain.from_iterable(shares)) == sorted(everything)


@pytest.mark.parametrize(("stop_after", "replicas"), [(0, 1), (3, 1), (6, 1), (9, 1), (2, 2)])
def test_resume_mid_epoch_equals_uninterrupted_run(stop_after: int, replicas: int) -> None:
    y = _labels()

    def make() -> MultiLabelBatchSampler:
        return MultiLabelBatchSampler(
            y,
            m=4,
            batch_size=16,
            seed=7,
            batches_per_epoch=12,
            num_replicas=replicas,
            rank=replicas - 1,
        )

    reference = make()
    expected = []
    for epoch in range(2):
        reference.set_epoch(epoch)
        expected.extend(reference)

    first = make()
    first.set_epoch(0)
    seen = list(itertools.islice(iter(first), stop_after))
    state = first.state_dict()
    assert state["epoch"] == 0 and state["batches_done"] == stop_after

    resumed = make()  # a new process
    resumed.load_state_dict(state)
    for epoch in range(2):
        resumed.set_epoch(epoch)  # the trainer's loop, starting from the saved epoch
        seen.extend(resumed)
    assert seen == expected


def test_full_pass_moves_to_the_next_epoch() -> None:
    s = MultiLabelBatchSampler(_labels(), m=4, batch_size=16, batches_per_epoch=3)
    first, second = list(s), list(s)
    assert first != second
    assert s.state_dict()["epoch"] == 2 and s.state_dict()["batches_done"] == 0


def test_works_as_a_dataloader_batch_sampler() -> None:
    y = _labels(40, 3)
    y[:, 0] = 0
    data = torch.utils.data.TensorDataset(torch.arange(40))
    sampler = MultiLabelBatchSampler(y, m=2, batch_size=8, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
    sampler2 = MultiLabelBatchSampler(y, m=2, batch_size=8, seed=0)
    assert [b[0].tolist() for b in loader] == list(sampler2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"m": 3, "batch_size": 16}, "multiple of m"),
        ({"m": 0}, "'m'"),
        ({"rank": 2, "num_replicas": 2}, "rank must be < num_replicas"),
        ({"seed": -1}, "'seed'"),
        ({"batches_per_epoch": 0}, "'batches_per_epoch'"),
        ({"labels": np.array([[0.5, 1.0]])}, r"labels\[0, 0\]"),
        ({"labels": np.array([0.0, 1.0])}, "integer class ids"),
        ({"labels": [[1, 0]]}, "numpy array"),
        ({"labels": np.full((3, 2), NAN)}, "no row has a known label"),
        ({"known": np.ones((3, 3), dtype=bool)}, "known must be"),
    ],
)
def test_bad_settings_raise_sampler_input_error(kwargs: dict, match: str) -> None:
    args = {"labels": np.eye(2)[[0, 1, 0, 1]], "m": 2, "batch_size": 4, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SamplerInputError, match=match) as info:
            MultiLabelBatchSampler(**args)
    assert isinstance(info.value, CxrError)


def test_load_state_dict_refuses_other_settings() -> None:
    y = _labels()
    state = MultiLabelBatchSampler(y, m=4, batch_size=16, seed=1).state_dict()
    with pytest.raises(SamplerInputError, match="seed=1"):
        MultiLabelBatchSampler(y, m=4, batch_size=16, seed=2).load_state_dict(state)
    with pytest.raises(SamplerInputError, match="only 13"):
        MultiLabelBatchSampler(y, m=4, batch_size=16, seed=1).load_state_dict(
            {**state, "batches_done": 99}
        )
