# SPDX-License-Identifier: MIT
"""Augmentation specs and the multi-view transforms built from them.

This module owns solo-learn's ``augmentations[]`` schema: :func:`parse_augmentations` checks a list
of config mappings once and resolves it into frozen :class:`AugmentationSpec` values (filling
solo-learn's defaults), :func:`build_view_transform` turns one spec into solo-learn's torchvision
pipeline from a PIL image to a normalized tensor (the reference backend; its blur is PIL's, as
solo-learn's, through :class:`PILGaussianBlur`), and :class:`MultiViewTransform` applies every spec
``num_crops`` times, large crops first. Per-dataset normalisation defaults live in
:func:`dataset_stats`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from PIL import Image, ImageFilter
from torchvision import transforms as T

from solo_diversity.errors import UserError

logger = logging.getLogger(__name__)

Stats = tuple[tuple[float, float, float], tuple[float, float, float]]

_IMAGENET: Stats = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_DATASET_STATS: dict[str, Stats] = {
    "imagenet": _IMAGENET,
    "imagenet100": _IMAGENET,
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "stl10": ((0.4914, 0.4823, 0.4466), (0.247, 0.243, 0.261)),
    # sklearn load_digits pixels / 16 (grey, so equal per channel).
    "digits": ((0.3053, 0.3053, 0.3053), (0.3760, 0.3760, 0.3760)),
    "fashion_mnist": ((0.2860, 0.2860, 0.2860), (0.3530, 0.3530, 0.3530)),
}

#: Gaussian blur sigma range in pixels (solo-learn / SimCLR).
BLUR_SIGMA = (0.1, 2.0)
#: Solarization threshold on uint8 / PIL images (0.5 on float images).
SOLARIZE_THRESHOLD = 128.0


def dataset_stats(dataset: str) -> Stats:
    """Per-dataset normalisation defaults (mean, std), RGB order, in [0, 1] units.

    Known: imagenet, imagenet100, cifar10, cifar100, stl10, digits, fashion_mnist. Anything else
    (solo-learn's ``custom``) gets the ImageNet statistics, as in solo-learn. A spec's own
    ``mean``/``std`` override these in :class:`MultiViewTransform`.
    """
    if dataset not in _DATASET_STATS:
        logger.debug("no normalisation stats for dataset %r; using ImageNet's", dataset)
    return _DATASET_STATS.get(dataset, _IMAGENET)


@dataclass(frozen=True)
class RRCSpec:
    """RandomResizedCrop settings; when disabled the view is ``Resize(crop_size)`` instead."""

    enabled: bool = True
    crop_min_scale: float = 0.08
    crop_max_scale: float = 1.0


@dataclass(frozen=True)
class ColorJitterSpec:
    """ColorJitter strengths, applied as a whole with probability ``prob``."""

    prob: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0


@dataclass(frozen=True)
class AugmentationSpec:
    """One entry of solo-learn's ``augmentations[]``, resolved and checked.

    The ``*_prob`` fields are the ``prob`` of the sub-blocks ``grayscale``, ``gaussian_blur``,
    ``solarization``, ``equalization`` and ``horizontal_flip``. ``mean``/``std`` are None unless
    the config set them.
    """

    crop_size: int
    num_crops: int
    rrc: RRCSpec = RRCSpec()
    color_jitter: ColorJitterSpec = ColorJitterSpec()
    grayscale_prob: float = 0.0
    gaussian_blur_prob: float = 0.0
    solarization_prob: float = 0.0
    equalization_prob: float = 0.0
    horizontal_flip_prob: float = 0.0
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The spec back in solo-learn's schema (every key explicit), e.g. for ``args.json``."""
        out: dict[str, Any] = {
            "crop_size": self.crop_size,
            "num_crops": self.num_crops,
            "rrc": asdict(self.rrc),
            "color_jitter": asdict(self.color_jitter),
        }
        for block in _PROB_BLOCKS:
            out[block] = {"prob": getattr(self, f"{block}_prob")}
        if self.mean is not None:
            out["mean"] = list(self.mean)
        if self.std is not None:
            out["std"] = list(self.std)
        return out


_PROB_BLOCKS = ("grayscale", "gaussian_blur", "solarization", "equalization", "horizontal_flip")
_TOP_KEYS = ("crop_size", "num_crops", "rrc", "color_jitter", *_PROB_BLOCKS, "mean", "std")
_RRC_KEYS = ("enabled", "crop_min_scale", "crop_max_scale")
_JITTER_KEYS = ("enabled", "prob", "brightness", "contrast", "saturation", "hue")
_PROB_KEYS = ("enabled", "prob")


def _to_plain(obj: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists; anything else unchanged."""
    try:
        from omegaconf import OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return obj
    return OmegaConf.to_container(obj, resolve=True) if OmegaConf.is_config(obj) else obj


def _block(entry: Mapping[str, Any], key: str, where: str, valid: Sequence[str]) -> dict[str, Any]:
    value = entry.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(f"{where}.{key} must be a mapping, got {value!r}")
    for sub in value:
        if sub not in valid:
            raise UserError(f"unknown key {where}.{key}.{sub}; valid keys: {', '.join(valid)}")
    return dict(value)


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise UserError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return value


def _triple(value: Any, name: str, positive: bool) -> tuple[float, float, float] | None:
    if value is None:
        return None
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3
    if ok:
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if ok and positive:
        ok = all(v > 0 for v in value)
    if not ok:
        kind = "positive numbers" if positive else "numbers"
        raise UserError(f"{name} must be a list of 3 {kind} (R, G, B), got {value!r}")
    return (float(value[0]), float(value[1]), float(value[2]))


def _prob(block: Mapping[str, Any], name: str) -> float:
    """A block's probability; ``enabled: false`` (seen in some solo-learn YAMLs) forces 0."""
    if block.get("enabled", True) is False:
        return 0.0
    return _number(block.get("prob", 0.0), f"{name}.prob", 0.0, 1.0)


def _parse_one(entry: Any, where: str) -> AugmentationSpec:
    if not isinstance(entry, Mapping):
        raise UserError(f"{where} must be a mapping, got {entry!r}")
    for key in entry:
        if key not in _TOP_KEYS:
            raise UserError(f"unknown key {where}.{key}; valid keys: {', '.join(_TOP_KEYS)}")
    for key in ("crop_size", "num_crops"):
        if key not in entry:
            raise UserError(f"{where}.{key} is missing; every augmentation needs it")
    crop_size = _positive_int(entry["crop_size"], f"{where}.crop_size")
    num_crops = _positive_int(entry["num_crops"], f"{where}.num_crops")

    rrc_cfg = _block(entry, "rrc", where, _RRC_KEYS)
    lo = _number(rrc_cfg.get("crop_min_scale", 0.08), f"{where}.rrc.crop_min_scale", 0.0, 1.0)
    hi = _number(rrc_cfg.get("crop_max_scale", 1.0), f"{where}.rrc.crop_max_scale", 0.0, 1.0)
    if not 0.0 < lo <= hi:
        raise UserError(
            f"{where}.rrc needs 0 < crop_min_scale <= crop_max_scale <= 1, got {lo} and {hi}"
        )
    rrc = RRCSpec(enabled=bool(rrc_cfg.get("enabled", True)), crop_min_scale=lo, crop_max_scale=hi)

    cj_cfg = _block(entry, "color_jitter", where, _JITTER_KEYS)
    name = f"{where}.color_jitter"
    jitter = ColorJitterSpec(
        prob=_prob(cj_cfg, name),
        brightness=_number(cj_cfg.get("brightness", 0.0), f"{name}.brightness", 0.0, math.inf),
        contrast=_number(cj_cfg.get("contrast", 0.0), f"{name}.contrast", 0.0, math.inf),
        saturation=_number(cj_cfg.get("saturation", 0.0), f"{name}.saturation", 0.0, math.inf),
        hue=_number(cj_cfg.get("hue", 0.0), f"{name}.hue", 0.0, 0.5),
    )
    probs = {
        f"{block}_prob": _prob(_block(entry, block, where, _PROB_KEYS), f"{where}.{block}")
        for block in _PROB_BLOCKS
    }
    return AugmentationSpec(
        crop_size=crop_size,
        num_crops=num_crops,
        rrc=rrc,
        color_jitter=jitter,
        mean=_triple(entry.get("mean"), f"{where}.mean", positive=False),
        std=_triple(entry.get("std"), f"{where}.std", positive=True),
        **probs,
    )


def parse_augmentations(cfg_list: Any) -> list[AugmentationSpec]:
    """Check solo-learn's ``augmentations[]`` list and resolve it into frozen specs.

    Missing sub-keys take solo-learn's defaults: ``rrc`` enabled with scale (0.08, 1.0), every
    probability 0, jitter strengths 0. A sub-block with ``enabled: false`` is off whatever its
    ``prob``. ``crop_size`` and ``num_crops`` are required.

    Args:
        cfg_list: a list (or OmegaConf ListConfig) of mappings in solo-learn's schema.

    Returns:
        One :class:`AugmentationSpec` per entry, in order.

    Raises:
        UserError: on an empty list, an unknown key (naming it and the valid ones), a missing
            required key, a probability outside [0, 1] or a bad crop scale.

    """
    cfg_list = _to_plain(cfg_list)
    if not isinstance(cfg_list, Sequence) or isinstance(cfg_list, str) or not cfg_list:
        raise UserError(f"augmentations must be a non-empty list of mappings, got {cfg_list!r}")
    return [_parse_one(entry, f"augmentations[{i}]") for i, entry in enumerate(cfg_list)]


def ordered_specs(specs: Sequence[AugmentationSpec]) -> tuple[AugmentationSpec, ...]:
    """Specs in view order: those of the first spec's crop size (large) first, then the rest."""
    large = specs[0].crop_size
    return tuple(
        [s for s in specs if s.crop_size == large] + [s for s in specs if s.crop_size != large]
    )


def view_stats(
    spec: AugmentationSpec, mean: Sequence[float], std: Sequence[float]
) -> tuple[Sequence[float], Sequence[float]]:
    """A view's normalisation: its own mean/std when the spec sets them, else the defaults."""
    return (
        spec.mean if spec.mean is not None else mean,
        spec.std if spec.std is not None else std,
    )


def jitter_ops(cj: ColorJitterSpec) -> list[tuple[str, float]]:
    """The (name, strength) of each jitter op a spec turns on, in torchvision's listing order."""
    ops = (
        ("brightness", cj.brightness),
        ("contrast", cj.contrast),
        ("saturation", cj.saturation),
        ("hue", cj.hue),
    )
    return [(name, strength) for name, strength in ops if strength > 0]


def jitter_factor(name: str, strength: float, u: Any) -> Any:
    """Torchvision's ColorJitter law from uniforms u (a float or an array) in [0, 1).

    hue: U[-h, h] turns; brightness, contrast, saturation: U[max(0, 1 - s), 1 + s].
    """
    if name == "hue":
        return (2.0 * u - 1.0) * strength
    lo = max(0.0, 1.0 - strength)
    return lo + (1.0 + strength - lo) * u


def crop_counts(specs: Sequence[AugmentationSpec]) -> tuple[int, int]:
    """(num_large_crops, num_small_crops); a crop is large when its size equals the first spec's."""
    large_size = specs[0].crop_size
    large = sum(s.num_crops for s in specs if s.crop_size == large_size)
    small = sum(s.num_crops for s in specs if s.crop_size != large_size)
    return large, small


def blur_kernel_size(crop_size: int) -> int:
    """Odd Gaussian-blur kernel for a crop: 10% of its side (BYOL's rule, 23 at 224 px), >= 13.

    Used by the kernel-based blurs (the fast and DALI backends); the torchvision backend blurs with
    PIL (:class:`PILGaussianBlur`), which needs no kernel. solo-learn blurs with PIL and sigma in
    [0.1, 2.0] *pixels*, whatever the crop size. A kernel must span about +-3 sigma_max = +-6 px
    (13 taps) to reproduce that; a purely proportional kernel (3 taps at 32 px) would truncate
    sigma = 2 into a near box filter and make the blur strength depend on the crop size, so small
    crops keep at least 13 taps.
    """
    proportional = int(math.ceil(0.1 * crop_size)) | 1
    return max(proportional, 2 * math.ceil(3 * BLUR_SIGMA[1]) + 1)


class PILGaussianBlur:
    """PIL's Gaussian blur of a PIL image, sigma ~ U[lo, hi] pixels from torch's RNG (solo-learn's).

    ``img.filter(ImageFilter.GaussianBlur(radius=sigma))``: PIL's radius is the standard deviation,
    realised as three extended box blurs (the variance of a Gaussian of that sigma, untruncated), so
    it costs the same at any sigma and crop size, unlike a 2-D kernel of ``blur_kernel_size`` taps.
    sigma is drawn with ``torch.empty(1).uniform_`` (not Python's ``random``, as solo-learn does),
    so that under :func:`~solo_diversity.data.datasets.seeded_draws` a view is a function of the
    sample's seed. Wrap it in ``RandomApply`` for a probability; place it before ``ToTensor``. A
    plain callable, as solo-learn's own blur: a v2 ``Transform`` would add its input dispatch
    (~5% of a 32 px view) for one PIL input.

    Args:
        sigma: (lo, hi), the range of the blur's standard deviation in pixels.

    """

    def __init__(self, sigma: tuple[float, float] = BLUR_SIGMA) -> None:
        if not 0.0 < sigma[0] <= sigma[1]:
            raise ValueError(f"sigma must be (lo, hi) with 0 < lo <= hi, got {sigma!r}")
        self.sigma = (float(sigma[0]), float(sigma[1]))

    def __call__(self, img: Any) -> Image.Image:
        """Args: img: a PIL image. Returns: the blurred PIL image."""
        if not isinstance(img, Image.Image):
            raise TypeError(
                "PILGaussianBlur blurs PIL images (place it before ToTensor); got "
                f"{type(img).__name__}"
            )
        sigma = torch.empty(1).uniform_(*self.sigma).item()
        return img.filter(ImageFilter.GaussianBlur(radius=sigma))

    def __repr__(self) -> str:
        return f"PILGaussianBlur(sigma={self.sigma})"


def build_view_transform(
    spec: AugmentationSpec,
    mean: Sequence[float],
    std: Sequence[float],
) -> Callable[[Image.Image], torch.Tensor]:
    """One view's pipeline, in solo-learn's order.

    RandomResizedCrop (bicubic, scale (min, max)) or Resize(crop_size) -> ColorJitter (with prob)
    -> RandomGrayscale -> PIL's GaussianBlur (:class:`PILGaussianBlur`, sigma ~ U[0.1, 2.0] px,
    with prob) -> RandomSolarize (threshold 128 on uint8) -> RandomEqualize -> RandomHorizontalFlip
    -> float tensor in [0, 1] -> Normalize. Every step up to the flip works on the PIL image.
    Steps with probability 0 are left out. Randomness comes from torch's RNG.

    Args:
        spec: the resolved view.
        mean: 3 per-channel means, used when the spec has none of its own.
        std: 3 per-channel standard deviations, likewise.

    Returns:
        A callable from an RGB PIL image to a float32 tensor of shape (3, crop_size, crop_size) when
        rrc is enabled (with rrc disabled, Resize keeps the aspect ratio, as in solo-learn).

    """
    # torchvision's v1 transforms, as solo-learn builds them: on PIL images they run the same
    # kernels as v2 with ~20% less per-call overhead (v2's input dispatch).
    bicubic = T.InterpolationMode.BICUBIC
    steps: list[Callable[..., Any]] = []
    if spec.rrc.enabled:
        scale = (spec.rrc.crop_min_scale, spec.rrc.crop_max_scale)
        steps.append(T.RandomResizedCrop(spec.crop_size, scale=scale, interpolation=bicubic))
    else:
        steps.append(T.Resize(spec.crop_size, interpolation=bicubic))
    cj = spec.color_jitter
    if cj.prob > 0:
        jitter = T.ColorJitter(cj.brightness, cj.contrast, cj.saturation, cj.hue)
        steps.append(T.RandomApply([jitter], p=cj.prob))
    if spec.grayscale_prob > 0:
        steps.append(T.RandomGrayscale(p=spec.grayscale_prob))
    if spec.gaussian_blur_prob > 0:
        steps.append(T.RandomApply([PILGaussianBlur(BLUR_SIGMA)], p=spec.gaussian_blur_prob))
    if spec.solarization_prob > 0:
        steps.append(T.RandomSolarize(SOLARIZE_THRESHOLD, p=spec.solarization_prob))
    if spec.equalization_prob > 0:
        steps.append(T.RandomEqualize(p=spec.equalization_prob))
    if spec.horizontal_flip_prob > 0:
        steps.append(T.RandomHorizontalFlip(p=spec.horizontal_flip_prob))
    mean, std = view_stats(spec, mean, std)
    steps += [T.ToTensor(), T.Normalize(list(mean), list(std))]
    return T.Compose(steps)


class MultiViewTransform:
    """All views of one image: each spec ``num_crops`` times, large crops first.

    Large/small follows :func:`crop_counts`: specs whose crop size equals the first spec's come
    first, in config order, then the others in config order (solo-learn's multi-crop layout).
    """

    def __init__(
        self,
        specs: Sequence[AugmentationSpec],
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        if not specs:
            raise UserError("augmentations must hold at least one entry")
        self.specs = ordered_specs(specs)
        self.num_large_crops, self.num_small_crops = crop_counts(specs)
        self._views = [
            (build_view_transform(spec, mean, std), spec.num_crops) for spec in self.specs
        ]

    @property
    def num_crops(self) -> int:
        """Total number of views per image."""
        return self.num_large_crops + self.num_small_crops

    def __call__(self, img: Image.Image) -> list[torch.Tensor]:
        """Args: img: an RGB PIL image. Returns: ``num_crops`` tensors, each (3, H_k, W_k)."""
        return [view(img) for view, n in self._views for _ in range(n)]

    def __repr__(self) -> str:
        lines = [f"{n} x {view}" for view, n in self._views]
        return "MultiViewTransform(\n" + "\n".join(lines) + "\n)"
