# SPDX-License-Identifier: MIT
"""Inputs the probe tests share: knn configs, torchvision ResNet-18 checkpoints, image folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import nn
from torchvision import models

from solo_diversity.data import decode_image
from solo_diversity.index import open_index
from tests.conftest import CONFIG_DIR


def knn_cfg(overrides: Sequence[str]) -> DictConfig:
    """Compose ``knn_div`` as ``main_knn.py`` does, in-process loading (``num_workers=0``)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        return compose(config_name="knn_div", overrides=["num_workers=0", *overrides])


def torchvision_resnet18(small_stem: bool) -> nn.Module:
    """solo-learn's ResNet-18: torchvision's with fc removed, and the CIFAR stem when asked."""
    net = models.resnet18(weights=None)
    net.fc = nn.Identity()
    if small_stem:
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
        net.maxpool = nn.Identity()
    return net


def image_folder(index_path: Path, root: Path, per_class: int) -> Path:
    """A class-folder tree of the first ``per_class`` PNG digits of each class."""
    index = open_index(index_path)
    labels = index.labels()
    for label in range(10):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for position in [int(p) for p in (labels == label).nonzero()[0][:per_class]]:
            decode_image(index.read_bytes(position)).save(folder / f"{position}.png")
    return root
