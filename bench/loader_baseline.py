# SPDX-License-Identifier: MIT
"""Baseline (a) of the loader benchmark: solo-learn's presets and its pretraining loader, rebuilt.

This module owns what a solo-learn user runs, written from solo-learn's public source
(``solo/data/pretrain_dataloader.py``, ``main_pretrain.py`` and
``scripts/pretrain/*/augmentations/*.yaml``) without importing it:

- :data:`PRESETS`: five of its augmentation presets, value for value, in the ``augmentations[]``
  schema that :func:`~solo_diversity.data.parse_augmentations` reads (it is solo-learn's);
- :func:`solo_view_transform`: its ``build_transform_pipeline`` (torchvision v1 transforms on PIL
  images; a step whose probability is 0 is left out, as upstream leaves it out), with its PIL
  Gaussian blur (radius = sigma ~ U[0.1, 2.0] from Python's ``random``), solarization and
  equalization (``ImageOps``);
- :func:`solo_multi_view`: its ``FullTransformPipeline`` of ``NCropAugmentation`` s, in the
  presets' order;
- :func:`with_index`, :class:`ArrayCIFAR`, :func:`solo_dataset` and :func:`solo_loader`: its
  ``dataset_with_index`` wrapper (items ``(index, [views], target)``) over torchvision's
  ``ImageFolder`` (224 px presets) or a CIFAR-style in-memory uint8 array read back with
  ``Image.fromarray`` (32 px presets), and its DataLoader settings.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torch.utils.data import DataLoader, Dataset

from solo_diversity.data.augment import AugmentationSpec

#: solo-learn's ``GaussianBlur`` default sigma range (pixels), kept here whatever ours becomes.
UPSTREAM_BLUR_SIGMA = (0.1, 2.0)


def _view(
    crop_size: int,
    jitter: tuple[float, float, float, float],
    blur: float,
    solarization: float = 0.0,
    num_crops: int = 1,
) -> dict[str, Any]:
    """One preset entry, every key explicit as in solo-learn's YAMLs."""
    brightness, contrast, saturation, hue = jitter
    return {
        "rrc": {"enabled": True, "crop_min_scale": 0.08, "crop_max_scale": 1.0},
        "color_jitter": {
            "prob": 0.8,
            "brightness": brightness,
            "contrast": contrast,
            "saturation": saturation,
            "hue": hue,
        },
        "grayscale": {"prob": 0.2},
        "gaussian_blur": {"prob": blur},
        "solarization": {"prob": solarization},
        "equalization": {"prob": 0.0},
        "horizontal_flip": {"prob": 0.5},
        "crop_size": crop_size,
        "num_crops": num_crops,
    }


_STRONG = (0.8, 0.8, 0.8, 0.2)  # symmetric presets' jitter
_MILD = (0.4, 0.4, 0.2, 0.1)  # asymmetric presets' jitter


@dataclass(frozen=True)
class BenchPreset:
    """A solo-learn augmentation preset and the dataset it is run on.

    Attributes:
        name: the ``--presets`` name.
        source: the upstream YAML, relative to ``scripts/pretrain/``.
        dataset: solo-learn's ``data.dataset`` (picks the normalisation and the dataset class).
        augmentations: the ``augmentations[]`` list.

    """

    name: str
    source: str
    dataset: str
    augmentations: tuple[Mapping[str, Any], ...]

    @property
    def small(self) -> bool:
        """True for the 32 px (CIFAR) presets, read from an in-memory array."""
        return self.dataset in ("cifar10", "cifar100")

    @property
    def views(self) -> str:
        """E.g. ``"2 x 224 + 6 x 96 px"``."""
        return (
            " + ".join(f"{a['num_crops']} x {a['crop_size']}" for a in self.augmentations) + " px"
        )


PRESETS: dict[str, BenchPreset] = {
    p.name: p
    for p in (
        BenchPreset(
            "sym224",
            "imagenet-100/augmentations/symmetric.yaml",
            "imagenet100",
            (_view(224, _STRONG, 0.5, num_crops=2),),
        ),
        BenchPreset(
            "asym224",
            "imagenet-100/augmentations/asymmetric.yaml",
            "imagenet100",
            (_view(224, _MILD, 1.0), _view(224, _MILD, 0.1, solarization=0.2)),
        ),
        BenchPreset(
            "multicrop",
            "imagenet-100-multicrop/augmentations/symmetric.yaml",
            "imagenet100",
            (_view(224, _STRONG, 0.5, num_crops=2), _view(96, _STRONG, 0.0, num_crops=6)),
        ),
        BenchPreset(
            "sym32",
            "cifar/augmentations/symmetric.yaml",
            "cifar10",
            (_view(32, _STRONG, 0.5, num_crops=2),),
        ),
        BenchPreset(
            "asym32",
            "cifar/augmentations/asymmetric.yaml",
            "cifar10",
            (_view(32, _MILD, 0.0), _view(32, _MILD, 0.0, solarization=0.2)),
        ),
    )
}


class SoloGaussianBlur:
    """PIL Gaussian blur whose radius (PIL's sigma) is drawn by Python's ``random`` per call."""

    def __init__(self, sigma: Sequence[float] = UPSTREAM_BLUR_SIGMA) -> None:
        self.sigma = (float(sigma[0]), float(sigma[1]))

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.sigma)))


class SoloSolarization:
    """``ImageOps.solarize`` at its default threshold (128)."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return ImageOps.solarize(img)


class SoloEqualization:
    """``ImageOps.equalize``."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return ImageOps.equalize(img)


def solo_view_transform(spec: AugmentationSpec, mean: Sequence[float], std: Sequence[float]) -> Any:
    """solo-learn's one-view pipeline for a spec, step for step (v1 ``transforms.Compose``).

    Args:
        spec: one resolved augmentation.
        mean: per-channel means of the dataset.
        std: per-channel standard deviations.

    Returns:
        A ``Compose`` from a PIL image to a normalized float tensor (3, S, S).

    """
    from torchvision import transforms as T

    bicubic = T.InterpolationMode.BICUBIC
    steps: list[Any] = []
    if spec.rrc.enabled:
        scale = (spec.rrc.crop_min_scale, spec.rrc.crop_max_scale)
        steps.append(T.RandomResizedCrop(spec.crop_size, scale=scale, interpolation=bicubic))
    else:
        steps.append(T.Resize(spec.crop_size, interpolation=bicubic))
    jitter = spec.color_jitter
    if jitter.prob:
        strengths = (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
        steps.append(T.RandomApply([T.ColorJitter(*strengths)], p=jitter.prob))
    if spec.grayscale_prob:
        steps.append(T.RandomGrayscale(p=spec.grayscale_prob))
    if spec.gaussian_blur_prob:
        steps.append(T.RandomApply([SoloGaussianBlur()], p=spec.gaussian_blur_prob))
    if spec.solarization_prob:
        steps.append(T.RandomApply([SoloSolarization()], p=spec.solarization_prob))
    if spec.equalization_prob:
        steps.append(T.RandomApply([SoloEqualization()], p=spec.equalization_prob))
    if spec.horizontal_flip_prob:
        steps.append(T.RandomHorizontalFlip(p=spec.horizontal_flip_prob))
    steps += [T.ToTensor(), T.Normalize(mean=mean, std=std)]
    return T.Compose(steps)


class SoloMultiView:
    """Each spec's pipeline applied ``num_crops`` times, specs in the given order (upstream's
    ``FullTransformPipeline`` of ``NCropAugmentation``).
    """

    def __init__(self, pipelines: Sequence[tuple[Callable[[Image.Image], Any], int]]) -> None:
        self.pipelines = list(pipelines)

    def __call__(self, img: Image.Image) -> list[torch.Tensor]:
        return [view(img) for view, num_crops in self.pipelines for _ in range(num_crops)]


def solo_multi_view(
    specs: Sequence[AugmentationSpec], mean: Sequence[float], std: Sequence[float]
) -> SoloMultiView:
    """solo-learn's N-crop transform of a preset: image -> list of views (3, S_k, S_k)."""
    return SoloMultiView([(solo_view_transform(s, mean, std), s.num_crops) for s in specs])


def with_index(dataset_class: type[Any]) -> type[Any]:
    """A subclass of ``dataset_class`` whose items are ``(index, *item)`` (upstream's
    ``dataset_with_index``).
    """

    class WithIndex(dataset_class):  # type: ignore[valid-type,misc]
        def __getitem__(self, index: int) -> Any:
            return (index, *super().__getitem__(index))

    WithIndex.__name__ = f"{dataset_class.__name__}WithIndex"
    return WithIndex


class ArrayCIFAR(Dataset[Any]):
    """torchvision's CIFAR access pattern over a given array: decoded uint8 data held in memory,
    each item ``(transform(Image.fromarray(data[i])), targets[i])``.

    Args:
        data: (N, H, W, 3) uint8 images.
        targets: (N,) class ids.
        transform: PIL image -> views.

    """

    def __init__(
        self, data: np.ndarray, targets: Sequence[int], transform: Callable[[Image.Image], Any]
    ) -> None:
        self.data, self.targets, self.transform = data, [int(t) for t in targets], transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img = Image.fromarray(self.data[index])
        return self.transform(img), self.targets[index]


def solo_dataset(
    preset: BenchPreset,
    transform: Callable[[Image.Image], Any],
    *,
    folder: Path | None = None,
    array: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> Dataset[Any]:
    """The dataset solo-learn builds for a preset: ImageFolder (224 px) or CIFAR-style (32 px).

    Args:
        preset: the preset (its ``small`` flag picks the dataset class).
        transform: the multi-view transform.
        folder: the class-folder JPEG corpus (224 px presets).
        array: (N, 32, 32, 3) uint8 images (32 px presets).
        labels: (N,) class ids of ``array``.

    Returns:
        A dataset of ``(index, [views], target)``.

    """
    if preset.small:
        if array is None or labels is None:
            raise ValueError(f"preset {preset.name!r} needs the image array and its labels")
        return with_index(ArrayCIFAR)(array, labels, transform)
    if folder is None:
        raise ValueError(f"preset {preset.name!r} needs the JPEG corpus folder")
    from torchvision.datasets import ImageFolder

    return with_index(ImageFolder)(str(folder), transform)


def solo_loader(dataset: Dataset[Any], batch_size: int, num_workers: int) -> DataLoader[Any]:
    """solo-learn's ``prepare_dataloader``: shuffled, pinned, last partial batch dropped."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        pin_memory=True,
        drop_last=True,
    )
