# SPDX-License-Identifier: MIT
"""The augmentation presets are solo-learn's, value for value; data groups pick the family; the
optimizer kwargs get solo-learn's defaults (``solo/args/pretrain.py``).

Expected values are typed here from solo-learn's ``scripts/pretrain/{cifar,imagenet-100,
cifar-multicrop}/augmentations/*.yaml`` and the inline VICReg lists of ``cifar/vicreg.yaml``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from solo_diversity.methods import BUILTIN_METHODS
from tests.methods.method_helpers import method_cfg


def view(
    crop: int,
    num_crops: int,
    *,
    jitter: tuple[float, float, float, float],
    blur: float,
    solarization: float,
    min_scale: float = 0.08,
    max_scale: float = 1.0,
) -> dict[str, Any]:
    """One solo-learn augmentation spec; the fields every preset shares are fixed here."""
    brightness, contrast, saturation, hue = jitter
    return {
        "rrc": {"enabled": True, "crop_min_scale": min_scale, "crop_max_scale": max_scale},
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
        "crop_size": crop,
        "num_crops": num_crops,
    }


STRONG = (0.8, 0.8, 0.8, 0.2)
MILD = (0.4, 0.4, 0.2, 0.1)
MEDIUM = (0.6, 0.6, 0.6, 0.2)
# preset -> (data group that sets the crop size, solo-learn's list at that crop size)
PRESETS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "cifar_symmetric": ("cifar100", [view(32, 2, jitter=STRONG, blur=0.5, solarization=0.0)]),
    "cifar_asymmetric": (
        "cifar100",
        [
            view(32, 1, jitter=MILD, blur=0.0, solarization=0.0),
            view(32, 1, jitter=MILD, blur=0.0, solarization=0.2),
        ],
    ),
    "cifar_vicreg": (
        "cifar100",
        [view(32, 2, jitter=MILD, blur=0.0, solarization=0.1, min_scale=0.2)],
    ),
    "imagenet100_symmetric": (
        "imagenet100",
        [view(224, 2, jitter=STRONG, blur=0.5, solarization=0.0)],
    ),
    "imagenet100_asymmetric": (
        "imagenet100",
        [
            view(224, 1, jitter=MILD, blur=1.0, solarization=0.0),
            view(224, 1, jitter=MILD, blur=0.1, solarization=0.2),
        ],
    ),
    "imagenet100_vicreg": (
        "imagenet100",
        [view(224, 2, jitter=MILD, blur=0.5, solarization=0.1, min_scale=0.2)],
    ),
    "multicrop": (  # cifar-multicrop/augmentations/swav.yaml
        "cifar100",
        [
            view(32, 1, jitter=MEDIUM, blur=0.0, solarization=0.0, min_scale=0.2),
            view(32, 1, jitter=MEDIUM, blur=0.0, solarization=0.2, min_scale=0.2),
            view(18, 6, jitter=STRONG, blur=0.1, solarization=0.1, max_scale=0.5),
        ],
    ),
}
# solo-learn's choice of preset per method (the defaults of scripts/pretrain/*/<method>.yaml)
METHOD_PRESET = {
    "simclr": "symmetric",
    "swav": "symmetric",
    "vicreg": "vicreg",
    "mocov3": "asymmetric",
    "byol": "asymmetric",
    "dino": "asymmetric",
    "barlow_twins": "asymmetric",
}
FAMILY = {  # data group -> preset family
    "cifar100": "cifar",
    "digits": "cifar",
    "fashion_mnist": "cifar",
    "tinyimagenet": "cifar",
    "imagenet100": "imagenet100",
    "imagenet": "imagenet100",
    "yfcc100m": "imagenet100",
}


# methods without an ImageNet-1k recipe (recipe/<method>/imagenet_resnet.yaml): data=imagenet and
# data=yfcc100m need an explicit recipe=... for them
NO_IMAGENET_RECIPE = {"dino", "swav", "vicreg"}


def augmentations(cfg: Any) -> list[dict[str, Any]]:
    return OmegaConf.to_container(cfg.augmentations, resolve=True)  # type: ignore[return-value]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_is_solo_learns(compose_cfg, preset: str) -> None:
    data, expected = PRESETS[preset]
    cfg = compose_cfg("simclr_div", [f"data={data}", f"augmentations={preset}"])
    assert augmentations(cfg) == expected


def test_symmetric_blur_is_on_as_upstream(compose_cfg) -> None:
    """The demo's digits keep solo-learn's 0.5 (only crop size and min scale are the data's)."""
    cfg = compose_cfg("simclr_div")
    assert [a["gaussian_blur"]["prob"] for a in augmentations(cfg)] == [0.5]
    assert augmentations(cfg)[0]["crop_size"] == 8
    assert augmentations(cfg)[0]["rrc"]["crop_min_scale"] == 0.25


@pytest.mark.parametrize("data", sorted(FAMILY))
@pytest.mark.parametrize("method", sorted(METHOD_PRESET))
def test_method_and_data_group_pick_the_upstream_preset(compose_cfg, method, data) -> None:
    overrides = [f"data={data}"]
    if method in NO_IMAGENET_RECIPE and data in ("imagenet", "yfcc100m"):
        overrides.append(f"recipe={method}/imagenet100_resnet")  # no ImageNet-scale recipe
    cfg = compose_cfg(f"{method}_div", overrides)
    preset = f"{FAMILY[data]}_{METHOD_PRESET[method]}"
    got = augmentations(cfg)
    want = PRESETS[preset][1]
    crop = int(cfg.data.crop_size)
    min_scale = cfg.data.get("crop_min_scale")
    for spec in want:  # the data group only sets the crop size (and, on small data, min scale)
        spec = {**spec, "crop_size": crop}
        if min_scale is not None:
            spec["rrc"] = {**spec["rrc"], "crop_min_scale": min_scale}
        assert spec in got
    assert len(got) == len(want)


def resolved(compose_cfg, overrides: list[str]) -> Any:
    return method_cfg(compose_cfg, "simclr", overrides)


def test_sgd_gets_momentum_09(compose_cfg) -> None:
    cfg = resolved(compose_cfg, ["optimizer.name=sgd", "~optimizer.kwargs"])
    assert OmegaConf.to_container(cfg.optimizer.kwargs) == {"momentum": 0.9}
    optimizer = BUILTIN_METHODS["simclr"](cfg).configure_optimizers()[0][0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert [g["momentum"] for g in optimizer.param_groups] == [0.9, 0.9, 0.9]


def test_explicit_sgd_momentum_is_kept(compose_cfg) -> None:
    lars_only = [f"~optimizer.kwargs.{k}" for k in ("eta", "clip_lr", "exclude_bias_n_norm")]
    cfg = resolved(
        compose_cfg, ["optimizer.name=sgd", *lars_only, "+optimizer.kwargs.momentum=0.5"]
    )
    assert OmegaConf.to_container(cfg.optimizer.kwargs) == {"momentum": 0.5}
    optimizer = BUILTIN_METHODS["simclr"](cfg).configure_optimizers()[0][0]
    assert {g["momentum"] for g in optimizer.param_groups} == {0.5}


def test_lars_and_adamw_defaults(compose_cfg) -> None:
    lars = resolved(compose_cfg, ["~optimizer.kwargs"])
    assert OmegaConf.to_container(lars.optimizer.kwargs) == {
        "momentum": 0.9,
        "eta": 1e-3,
        "clip_lr": False,
        "exclude_bias_n_norm": False,
    }
    shipped = resolved(compose_cfg, [])  # the paper's LARS: eta 0.02, clipping, exclusions
    assert OmegaConf.to_container(shipped.optimizer.kwargs) == {
        "momentum": 0.9,
        "eta": 0.02,
        "clip_lr": True,
        "exclude_bias_n_norm": True,
    }
    adamw = resolved(compose_cfg, ["optimizer.name=adamw", "~optimizer.kwargs"])
    assert OmegaConf.to_container(adamw.optimizer.kwargs) == {"betas": [0.9, 0.999]}
    adam = resolved(compose_cfg, ["optimizer.name=adam", "~optimizer.kwargs"])
    assert OmegaConf.to_container(adam.optimizer.kwargs) == {}
