# SPDX-License-Identifier: MIT
"""Backbone registry: name -> a feature extractor that returns (B, num_features) vectors.

The names match solo-learn's (``resnet18``, ``resnet50``, ...) so configs carry over. ResNets come
from torchvision with the classification head removed; on small inputs (CIFAR-size, digits) the stem
becomes a 3x3 stride-1 convolution without max-pool, as in solo-learn. ``small_cnn`` is a tiny
network for the CPU demo and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchvision import models

from solo_diversity.errors import UserError

BackboneFactory = Callable[..., nn.Module]
BACKBONES: dict[str, BackboneFactory] = {}
METHOD_AWARE_BACKBONES: set[str] = set()  # factories that take ``method=`` (per-method variants)


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator adding a factory ``f(cifar: bool, **kwargs) -> nn.Module`` to the registry.

    The module must expose ``num_features``, the size of the vectors it returns.
    """

    def add(factory: BackboneFactory) -> BackboneFactory:
        BACKBONES[name] = factory
        return factory

    return add


# solo-learn swaps in the 3x3 stride-1 stem (no max-pool) only for these datasets
# (``cfg.data.dataset in ["cifar10", "cifar100"]`` in its BaseMethod and main_linear.py). We add our
# own sub-32-px datasets, which solo-learn cannot load, so the rule is the same on both backends.
SMALL_STEM_DATASETS = frozenset({"cifar10", "cifar100", "digits", "fashion_mnist"})


def uses_small_stem(dataset: str, explicit: bool | None = None) -> bool:
    """Whether a ResNet gets the small-input stem: ``backbone.small_input_stem`` if set, else
    solo-learn's dataset rule (:data:`SMALL_STEM_DATASETS`).
    """
    return bool(explicit) if explicit is not None else dataset in SMALL_STEM_DATASETS


def build_backbone(
    name: str, *, cifar: bool = False, method: str | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered backbone.

    Args:
        name: registry key, e.g. ``resnet18``.
        cifar: use the small-input stem (ResNets only; others ignore it).
        method: the pretraining method's registry key; solo-learn builds some backbones per
            method (MoCo v3's ViT), and factories that care read it.
        **kwargs: forwarded to the factory (``backbone.kwargs`` in the config).

    Returns:
        A module mapping (B, 3, H, W) images to (B, module.num_features) features.
    """
    if name not in BACKBONES:
        raise UserError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(BACKBONES))}")
    factory = BACKBONES[name]
    if method is not None and name in METHOD_AWARE_BACKBONES:
        kwargs["method"] = method
    return factory(cifar=cifar, **kwargs)


def _torchvision_resnet(
    builder: Callable[..., models.ResNet], cifar: bool, **kwargs: Any
) -> nn.Module:
    """Build a torchvision ResNet, passing ``backbone.kwargs`` (e.g. ``zero_init_residual``).

    solo-learn calls the torchvision constructor with them too.
    """
    try:
        net = builder(weights=None, **kwargs)
    except TypeError as err:
        raise UserError(
            f"backbone.kwargs {sorted(kwargs)} not accepted by torchvision's ResNet ({err})"
        ) from None
    net.num_features = net.fc.in_features
    net.fc = nn.Identity()
    if cifar:
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
        net.maxpool = nn.Identity()
    return net


@register_backbone("resnet18")
def resnet18(cifar: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-18 (He et al., arXiv:1512.03385), 512-d features."""
    return _torchvision_resnet(models.resnet18, cifar, **kwargs)


@register_backbone("resnet50")
def resnet50(cifar: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-50, 2048-d features."""
    return _torchvision_resnet(models.resnet50, cifar, **kwargs)


@register_backbone("resnet101")
def resnet101(cifar: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-101, 2048-d features."""
    return _torchvision_resnet(models.resnet101, cifar, **kwargs)


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU blocks and global pooling: fast enough to pretrain on 2 CPU cores.

    Args:
        width: channels of the first block; later blocks double it twice.
    """

    def __init__(self, width: int = 32):
        super().__init__()
        channels = [3, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            stride = 1 if i == 0 else 2
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers)
        self.num_features = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_features)."""
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)


class RawPixels(nn.Module):
    """The image itself as its features: a linear probe on raw pixels.

    The floor a pretrained backbone must clear before its probe says anything about what it
    learned (``baseline=raw_pixels``). It has no weights; the image shape is kept as a buffer so
    that its checkpoint carries one backbone entry and the probe loads it like any other.
    """

    def __init__(self, img_size: int = 32, channels: int = 3):
        super().__init__()
        self.num_features = channels * img_size * img_size
        self.register_buffer("image_shape", torch.tensor([channels, img_size, img_size]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C*H*W)."""
        return torch.flatten(x, 1)


@register_backbone("raw_pixels")
def raw_pixels(cifar: bool = False, img_size: int = 32, **kwargs: Any) -> nn.Module:
    """The pixels of the (cropped, normalised) image as a ``3 * img_size**2`` vector."""
    return RawPixels(int(img_size), **kwargs)


@register_backbone("small_cnn")
def small_cnn(cifar: bool = False, **kwargs: Any) -> nn.Module:
    """The demo's CPU backbone (``cifar`` is irrelevant: it has no down-sampling stem)."""
    return SmallCNN(**kwargs)


# Vision Transformers (Dosovitskiy et al., arXiv:2010.11929) from timm, randomly initialised as in
# the paper's pretraining. Their position embeddings depend on the input size, so they take
# ``img_size``; :func:`backbone_kwargs_for` fills it from the run's crop size. timm is imported
# lazily: the ResNets and the CPU net work without it.
# Like solo-learn, the method ``mocov3`` gets MoCo v3's ViT (fixed sin-cos position embedding,
# its own initialisation and head count; :mod:`solo_diversity.models.vit_mocov3`) and every other
# method timm's plain ViT; solo-learn gives no other of our methods a variant.
SIZED_BACKBONES: set[str] = set()  # factories whose weights depend on the input size (img_size)
TRANSFORMER_BACKBONES: set[str] = set()  # transformers (MoCo v3 gives them 3 projector layers)
MOCOV3_VIT_METHODS = frozenset({"mocov3"})


def _timm_vit(
    variant: str, img_size: int, patch_size: int, method: str | None, **kwargs: Any
) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise UserError(f"backbone {variant!r} needs timm; pip install timm") from None
    if method in MOCOV3_VIT_METHODS:
        from solo_diversity.models.vit_mocov3 import mocov3_vit

        return mocov3_vit(variant, img_size=img_size, patch_size=patch_size, **kwargs)
    return timm.create_model(
        f"{variant}_patch{patch_size}_224",
        pretrained=False,
        num_classes=0,
        img_size=img_size,
        **kwargs,
    )


def _register_vit(name: str, variant: str) -> None:
    def factory(
        cifar: bool = False,
        img_size: int = 224,
        patch_size: int = 16,
        method: str | None = None,
        **kwargs: Any,
    ) -> nn.Module:
        return _timm_vit(variant, int(img_size), int(patch_size), method, **kwargs)

    factory.__doc__ = (
        f"timm's {variant} (patch 16, random init) -> (B, num_features) class token; "
        "MoCo v3's variant for method='mocov3'."
    )
    register_backbone(name)(factory)
    SIZED_BACKBONES.add(name)
    TRANSFORMER_BACKBONES.add(name)
    METHOD_AWARE_BACKBONES.add(name)


SIZED_BACKBONES.add("raw_pixels")
_register_vit("vit_small", "vit_small")  # ViT-S/16, 384-d features
_register_vit("vit_base", "vit_base")  # ViT-B/16, 768-d features


def backbone_kwargs_for(name: str, kwargs: dict[str, Any], crop_size: int) -> dict[str, Any]:
    """``backbone.kwargs`` completed for the run: size-dependent backbones get ``img_size``.

    Args:
        name: registry key.
        kwargs: the configured ``backbone.kwargs``.
        crop_size: the size of the run's large crops.

    Returns:
        A new dict; ``img_size`` is added (unless given) for backbones in :data:`SIZED_BACKBONES`.
    """
    out = dict(kwargs)
    if name in SIZED_BACKBONES:
        out.setdefault("img_size", int(crop_size))
    return out


def set_resnet_stem(net: nn.Module, small: bool) -> None:
    """Give a torchvision-style ResNet the small-input stem or the standard one, in place.

    Small: 3x3 stride-1 ``conv1`` (padding 2, as solo-learn) and no max-pool. Standard: the 7x7
    stride-2 ``conv1`` and the 3x3 stride-2 max-pool. A stem that already matches is kept with
    its weights; a replaced one is freshly initialised.
    """
    conv = net.conv1
    assert isinstance(conv, nn.Conv2d)
    if (conv.kernel_size == (3, 3)) == small:
        return
    if small:
        net.conv1 = nn.Conv2d(3, conv.out_channels, kernel_size=3, stride=1, padding=2, bias=False)
        net.maxpool = nn.Identity()
    else:
        net.conv1 = nn.Conv2d(3, conv.out_channels, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
