"""The training images: one seeded augmentation per batch, the same whatever the loader
workers and after a resume; validation images deterministic."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from cxrembed.data.transforms import BatchAugment, eval_transform_for
from cxrembed.train.config import RunConfig
from cxrembed.train.data import SeededBatches, build_train_data, make_sampler

from .._stripes import FAST, write_stripes

NO_JITTER = {
    "augmentation.rotation": 0.0,
    "augmentation.scale": [1.0, 1.0],
    "augmentation.translate": 0.0,
    "augmentation.brightness": 0.0,
    "augmentation.contrast": 0.0,
}


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stripes")
    return folder, write_stripes(folder / "img", 24, val_every=4)


def _data(stripes, **overrides):
    folder, table = stripes
    config = RunConfig().with_overrides({**FAST, "batches_per_epoch": 4, **overrides})
    return build_train_data(table, config, images=folder / "img")


def _epochs(data, config, workers, *, epochs=(0, 1), state=None):
    """Training batches (images, targets, ids) of ``epochs``, as the loop draws them."""
    sampler = make_sampler(data, config)
    if state is not None:
        sampler.load_state_dict(state)
    loader = DataLoader(
        data.train, batch_sampler=SeededBatches(sampler, config.training.seed), num_workers=workers
    )
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        out += [(images, targets, list(ids)) for images, targets, _, ids in loader]
    return out


def _same(a, b):
    return len(a) == len(b) and all(
        torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) and x[2] == y[2]
        for x, y in zip(a, b, strict=True)
    )


def test_batches_are_the_same_with_and_without_workers_and_after_resume(stripes):
    data, config = _data(stripes)
    straight = _epochs(data, config, 0)
    assert len(straight) == 8 and straight[0][0].shape == (12, 1, 32, 32)
    assert _same(straight, _epochs(data, config, 2))
    # Resumed after 2 batches of epoch 1 (a new process would build everything anew).
    state = {**make_sampler(data, config).state_dict(), "epoch": 1, "batches_done": 2}
    data_again, _ = _data(stripes)
    assert _same(straight[6:], _epochs(data_again, config, 0, epochs=(1,), state=state))
    assert not torch.equal(straight[0][0], straight[4][0])  # other epoch, other batch


def test_training_images_are_augmented_per_image_and_validation_is_not(stripes):
    data, config = _data(stripes)
    keys = [(0, 11), (0, 12), (1, 11)]
    items = data.train.__getitems__(keys)
    assert len(items) == 3 and all(len(item) == 4 for item in items)
    assert not torch.equal(items[0][0], items[1][0])  # one row, two draws of one batch
    assert torch.equal(items[0][0], data.train.__getitems__(keys)[0][0])  # seeded
    assert not torch.equal(items[0][0], data.train.__getitems__(keys[::-1])[2][0])
    # A single seeded key is a batch of one.
    assert torch.equal(data.train[(0, 5)][0], data.train.__getitems__([(0, 5)])[0][0])
    # Plain keys draw from torch's global generator (seeded per worker by torch).
    torch.manual_seed(0)
    plain = data.train.__getitems__([0, 1])
    torch.manual_seed(0)
    assert torch.equal(plain[0][0], data.train.__getitems__([0, 1])[0][0])
    # Validation: the eval transform, every time.
    row = int(data.val.rows[0])
    expected = eval_transform_for(config)(data.val.base[row][0])
    assert data.val.augment is None
    assert torch.equal(data.val[0][0], expected) and torch.equal(data.val[0][0], expected)


def test_every_augmentation_setting_reaches_the_batch_augmentation(stripes):
    settings = {
        "augmentation.rotation": 7.0,
        "augmentation.scale": [0.9, 1.1],
        "augmentation.translate": 0.05,
        "augmentation.brightness": 0.2,
        "augmentation.contrast": 0.3,
        "augmentation.hflip": True,
        "preprocessing.mean": 0.4,
        "preprocessing.std": 0.2,
        "preprocessing.fit": "crop",
    }
    data, config = _data(stripes, **settings)
    augment = data.train.augment
    assert isinstance(augment, BatchAugment)
    assert (augment.rotation, augment.scale, augment.translate) == (7.0, (0.9, 1.1), 0.05)
    assert (augment.brightness, augment.contrast, augment.hflip) == (0.2, 0.3, True)
    assert (augment.normalization.mean, augment.normalization.std) == (0.4, 0.2)
    assert (data.train.transform.size, data.train.transform.fit) == (32, "crop")


def test_without_jitter_training_images_are_the_eval_images(stripes):
    data, config = _data(stripes, **NO_JITTER)
    batch = data.train.__getitems__([(r, 100 + r) for r in range(len(data.train))])
    evaluate = eval_transform_for(config)
    for row, item in zip(data.train.rows, batch, strict=True):
        assert torch.equal(item[0], evaluate(data.train.base[int(row)][0]))
