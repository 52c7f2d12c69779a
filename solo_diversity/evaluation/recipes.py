# SPDX-License-Identifier: MIT
"""The linear probe's per-method learning rate and weight decay, by recipe scale, with sources.

solo-learn's linear evaluation is one protocol (frozen backbone, SGD at batch 256, step decay at
60 and 80 of 100 epochs) whose rate differs by method: its ``scripts/linear/imagenet-100/`` and
``scripts/linear/imagenet/`` files give them. The paper used solo-learn, so its probes ran at these
rates. Scales follow the pretraining recipes (``yaml_configs/scale``):

- ``imagenet100``: solo-learn's ``scripts/linear/imagenet-100/<method>.yaml``.
- ``imagenet``: solo-learn's ``scripts/linear/imagenet/<method>.yaml`` where it has the method
  (Barlow Twins, BYOL), else the ImageNet-100 file of the method (SimCLR, MoCo v3 and the rest
  have no ImageNet linear file upstream).
- ``cifar`` (CIFAR-100, TinyImageNet and our small sets): solo-learn ships no CIFAR linear files
  and the paper gives none, so the ImageNet-100 files are used, the nearest upstream protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from solo_diversity.errors import UserError


@dataclass(frozen=True)
class ProbeRecipe:
    """The probe's rate at a global batch of 256 (scaled as solo-learn scales it) and decay."""

    lr: float
    weight_decay: float
    source: str


_IN100 = "solo-learn scripts/linear/imagenet-100/{}.yaml"
_IN1K = "solo-learn scripts/linear/imagenet/{}.yaml"

# method -> (lr, weight_decay, upstream file stem); every file: SGD, batch 256, step [60, 80].
_IMAGENET100 = {
    "simclr": (1.0, 0.0, "simclr"),  # solo-learn scripts/linear/imagenet-100/simclr.yaml
    "mocov3": (0.3, 0.0, "mocov3"),  # solo-learn scripts/linear/imagenet-100/mocov3.yaml
    "byol": (0.3, 0.0, "byol"),  # solo-learn scripts/linear/imagenet-100/byol.yaml
    "dino": (0.3, 0.0, "dino"),  # solo-learn scripts/linear/imagenet-100/dino.yaml
    "vicreg": (0.3, 0.0, "vicreg"),  # solo-learn scripts/linear/imagenet-100/vicreg.yaml
    "swav": (0.15, 0.0, "swav"),  # solo-learn scripts/linear/imagenet-100/swav.yaml
    "barlow_twins": (0.1, 0.0, "barlow"),  # solo-learn scripts/linear/imagenet-100/barlow.yaml
}
# MoCo v3 on a ViT: solo-learn scripts/linear/imagenet-100/mocov3_vit.yaml (lr 0.3, wd 0).
_IMAGENET100_VIT = {"mocov3": (0.3, 0.0, "mocov3_vit")}
_IMAGENET = {
    "byol": (0.1, 0.0, "byol"),  # solo-learn scripts/linear/imagenet/byol.yaml
    "barlow_twins": (0.3, 1e-5, "barlow"),  # solo-learn scripts/linear/imagenet/barlow.yaml
}
SCALES = ("cifar", "imagenet100", "imagenet")

# The recipe scale of each dataset our data groups know (yaml_configs/data/*.yaml, scale group).
DATASET_SCALES = {
    "imagenet100": "imagenet100",
    "imagenet": "imagenet",
    "yfcc100m": "imagenet",
}


def scale_of_dataset(dataset: str) -> str:
    """The recipe scale of a pretraining dataset (``cifar`` unless it is ImageNet-100/-1k/YFCC)."""
    return DATASET_SCALES.get(dataset, "cifar")


def probe_recipe(method: str, scale: str, arch: str = "resnet") -> ProbeRecipe:
    """The probe's learning rate and weight decay for a method pretrained at ``scale``.

    Args:
        method: the pretraining method's registry key, e.g. ``simclr``.
        scale: ``cifar``, ``imagenet100`` or ``imagenet``.
        arch: ``resnet`` or ``vit`` (MoCo v3 has its own ViT file).

    Returns:
        The :class:`ProbeRecipe` with the file it comes from.
    """
    if scale not in SCALES:
        raise UserError(f"unknown recipe scale {scale!r}; choose {', '.join(SCALES)}")
    if method not in _IMAGENET100:
        raise UserError(
            f"no probe recipe for method {method!r}; known: {', '.join(sorted(_IMAGENET100))}"
        )
    if scale == "imagenet" and method in _IMAGENET:
        lr, wd, stem = _IMAGENET[method]
        return ProbeRecipe(lr, wd, _IN1K.format(stem))
    lr, wd, stem = (_IMAGENET100_VIT if arch == "vit" else {}).get(method, _IMAGENET100[method])
    return ProbeRecipe(lr, wd, _IN100.format(stem))
