# SPDX-License-Identifier: MIT
"""Data for pretraining and evaluation: augmentation specs, decoding, datasets, sampler, datamodule.

Flow: an index ``Subset`` -> :class:`PretrainDataset` (decode -> :class:`MultiViewTransform`) ->
:class:`EpochSampler` -> :class:`PretrainDataModule` -> solo-learn's batch
``[indexes (B,), [crops (B, 3, H, W)], targets (B,)]``. With ``data.format=dali`` the same sampler
order feeds a DALI pipeline instead (:class:`IndexFeed` -> :class:`DaliPretrainDataModule`).
"""

from solo_diversity.data.augment import (
    AugmentationSpec,
    ColorJitterSpec,
    MultiViewTransform,
    RRCSpec,
    blur_kernel_size,
    build_view_transform,
    crop_counts,
    dataset_stats,
    parse_augmentations,
)
from solo_diversity.data.batch.augment import BatchAugment
from solo_diversity.data.dali.feed import IndexFeed, ScreenCache
from solo_diversity.data.dali.loader import DaliPretrainDataModule, probe_batches
from solo_diversity.data.dali.pipeline import DALI_DEVICES, check_device, resolve_device
from solo_diversity.data.datamodule import PretrainDataModule, collate_views
from solo_diversity.data.datasets import (
    ClassificationDataset,
    PretrainDataset,
    ReadCounter,
    default_crop_fraction,
    eval_transform,
    probe_train_transform,
)
from solo_diversity.data.decode import MAX_PIXELS, UnreadableImage, dali_ready_bytes, decode_image
from solo_diversity.data.fast_cpu import AUGMENT_BACKENDS, FastMultiView, check_backend, rrc_box
from solo_diversity.data.sampler import EpochSampler, epoch_permutation, per_rank_samples

__all__ = [
    "BatchAugment",
    "DALI_DEVICES",
    "DaliPretrainDataModule",
    "IndexFeed",
    "ScreenCache",
    "check_device",
    "default_crop_fraction",
    "dali_ready_bytes",
    "probe_batches",
    "probe_train_transform",
    "resolve_device",
    "AUGMENT_BACKENDS",
    "FastMultiView",
    "check_backend",
    "rrc_box",
    "MAX_PIXELS",
    "AugmentationSpec",
    "ClassificationDataset",
    "ColorJitterSpec",
    "EpochSampler",
    "MultiViewTransform",
    "PretrainDataModule",
    "PretrainDataset",
    "RRCSpec",
    "ReadCounter",
    "UnreadableImage",
    "blur_kernel_size",
    "build_view_transform",
    "collate_views",
    "crop_counts",
    "dataset_stats",
    "decode_image",
    "epoch_permutation",
    "eval_transform",
    "parse_augmentations",
    "per_rank_samples",
]
