"""Image datasets for training and evaluation: labels tables joined to images, label
conventions, transforms, patient-level splits and the preprocessed image cache.

Names are imported lazily, so a worker process that only decodes images (``cxr prepare``)
never pays for importing torch.

Modules
-------
labels
    The label convention (1 / 0 / -1 / blank), the uncertain-label policy and
    :func:`encode_labels`; building the label matrix from a schema, columns or one
    categorical column.
table
    Reading a labels table and joining its rows to image files.
dataset
    :class:`LabeledImageDataset` (images read from source files) and
    :class:`XRVDataset` (wraps a torchxrayvision-style dataset object).
cache
    :func:`prepare_cache` and :class:`CachedImageDataset` (images read from the cache).
transforms
    Square fitting, light augmentation and the one normalisation convention.
split
    :func:`split_by_group`: patient-level, stratified train/validation split.
samplers
    :class:`MultiLabelBatchSampler` (batches for metric learning on multi-label data).
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "UncertainPolicy",
    "encode_labels",
    "label_matrix",
    "read_table",
    "join_images",
    "LabeledImageDataset",
    "XRVDataset",
    "CachedImageDataset",
    "prepare_cache",
    "PrepareSummary",
    "train_transform",
    "eval_transform",
    "Normalization",
    "split_by_group",
    "MultiLabelBatchSampler",
]

_LAZY = {
    "UncertainPolicy": "cxrembed.data.labels",
    "encode_labels": "cxrembed.data.labels",
    "label_matrix": "cxrembed.data.labels",
    "read_table": "cxrembed.data.table",
    "join_images": "cxrembed.data.table",
    "LabeledImageDataset": "cxrembed.data.dataset",
    "XRVDataset": "cxrembed.data.dataset",
    "CachedImageDataset": "cxrembed.data.cache",
    "prepare_cache": "cxrembed.data.cache",
    "PrepareSummary": "cxrembed.data.cache",
    "train_transform": "cxrembed.data.transforms",
    "eval_transform": "cxrembed.data.transforms",
    "Normalization": "cxrembed.data.transforms",
    "split_by_group": "cxrembed.data.split",
    "MultiLabelBatchSampler": "cxrembed.data.samplers",
}

__getattr__, __dir__ = lazy_exports("cxrembed.data", _LAZY)
