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
    Square fitting, light augmentation (per image, or :class:`BatchAugment` for a whole
    batch) and the one normalisation convention.
split
    :func:`split_by_group`: patient-level, stratified train/validation split.
samplers
    :class:`MultiLabelBatchSampler` (batches for metric learning on multi-label data).
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.data.labels": ["UncertainPolicy", "encode_labels", "label_matrix"],
        "cxrembed.data.table": ["read_table", "join_images"],
        "cxrembed.data.dataset": ["LabeledImageDataset", "XRVDataset"],
        "cxrembed.data.cache": ["CachedImageDataset", "prepare_cache", "PrepareSummary"],
        "cxrembed.data.transforms": [
            "train_transform",
            "BatchAugment",
            "eval_transform",
            "Normalization",
        ],
        "cxrembed.data.split": ["split_by_group"],
        "cxrembed.data.samplers": ["MultiLabelBatchSampler"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.data", _LAZY)
