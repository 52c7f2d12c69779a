# SPDX-License-Identifier: MIT
"""The paper's pretraining recipes: ``recipe/<method>/<scale>_<arch>.yaml``, picked by data.

Every expected value is typed here from the upstream file named beside it, never read from our
YAMLs:

- solo-learn ``scripts/pretrain/cifar/<method>.yaml`` (and the method classes' defaults in
  ``solo/methods/<method>.py`` for the keys those YAMLs leave out);
- solo-learn ``scripts/pretrain/imagenet-100/<method>.yaml`` and ``mocov3_vit.yaml``;
- solo-learn ``scripts/pretrain/imagenet/{byol,barlow}.yaml``;
- SimCLR ``README.md`` / ``run.py`` / ``lars_optimizer.py`` (ImageNet ResNet-50);
- MoCo v3 ``CONFIG.md`` / ``main_moco.py`` / ``moco/optimizer.py`` (ResNet-50 100-epoch, ViT-Base);
- DiversitySSL ``scripts/pretrain/imagenet/custom.yaml`` (the paper's SimCLR ViT-B).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, OmegaConf

from tests.conftest import CONFIG_DIR

METHODS = ("simclr", "mocov3", "vicreg", "dino", "byol", "barlow_twins", "swav")
RECIPE_DIR = CONFIG_DIR / "recipe"

# LARS kwargs of solo-learn's CIFAR and ImageNet-100 files, and of the ImageNet-1k ones.
LARS_SOLO = {"clip_lr": True, "eta": 0.02, "exclude_bias_n_norm": True}
LARS_IMAGENET = {"clip_lr": False, "eta": 0.001, "exclude_bias_n_norm": True}

# solo-learn solo/methods/dino.py defaults (the CIFAR and ImageNet-100 YAMLs leave them out)
DINO_DEFAULTS = {
    "student_temperature": 0.1,
    "teacher_temperature": 0.07,
    "warmup_teacher_temperature": 0.04,
    "freeze_last_layer": 1,
    "norm_last_layer": True,
    "use_bn_in_head": False,
    "clip_grad": 0,
}


def recipe(
    kwargs: dict[str, Any],
    opt: tuple[str, float, float, float],
    *,
    momentum: tuple[float, float] | None = None,
    lars: dict[str, Any] | None = None,
    global_batch: int = 256,
    warmup: float = 10,
    backbone: str = "resnet18",
    accumulate: int | None = None,
) -> dict[str, Any]:
    """The expected recipe keys: opt = (name, lr, classifier_lr, weight_decay)."""
    name, lr, classifier_lr, weight_decay = opt
    return {
        "backbone": backbone,
        "method_kwargs": kwargs,
        "momentum": momentum,
        "optimizer": {
            "name": name,
            "batch_size": None,
            "global_batch_size": global_batch,
            "lr": lr,
            "classifier_lr": classifier_lr,
            "weight_decay": weight_decay,
            **({"kwargs": lars} if lars is not None else {}),
        },
        "scheduler": {"name": "warmup_cosine", "warmup_epochs": warmup},
        "accumulate_grad_batches": accumulate,
    }


# solo-learn scripts/pretrain/cifar/<method>.yaml (batch 256 x devices [0]; warmup: solo-learn's
# default 10, solo/methods/base.py)
CIFAR = {
    "simclr": recipe(
        {"proj_hidden_dim": 2048, "proj_output_dim": 256, "temperature": 0.2},
        ("lars", 0.4, 0.1, 1e-4),
        lars=LARS_SOLO,
    ),
    "mocov3": recipe(
        {
            "proj_hidden_dim": 4096,
            "proj_output_dim": 256,
            "pred_hidden_dim": 4096,
            "temperature": 0.2,
        },
        ("lars", 0.3, 0.3, 1e-6),
        momentum=(0.99, 1.0),
        lars=LARS_SOLO,
    ),
    "vicreg": recipe(
        {
            "proj_hidden_dim": 2048,
            "proj_output_dim": 2048,
            "sim_loss_weight": 25.0,
            "var_loss_weight": 25.0,
            "cov_loss_weight": 1.0,
        },
        ("lars", 0.3, 0.1, 1e-4),
        lars=LARS_SOLO,
    ),
    "dino": recipe(
        {
            "proj_hidden_dim": 2048,
            "proj_output_dim": 256,
            "num_prototypes": 4096,
            "warmup_teacher_temperature_epochs": 0,  # solo/methods/dino.py default
            **DINO_DEFAULTS,
        },
        ("lars", 0.3, 0.1, 1e-6),
        momentum=(0.9995, 1.0),
        lars=LARS_SOLO,
    ),
    "byol": recipe(
        {"proj_hidden_dim": 4096, "proj_output_dim": 256, "pred_hidden_dim": 4096},
        ("lars", 1.0, 0.1, 1e-5),
        momentum=(0.99, 1.0),
        lars=LARS_SOLO,
    ),
    "barlow_twins": recipe(  # barlow.yaml; lamb: solo/methods/barlow_twins.py default
        {"proj_hidden_dim": 2048, "proj_output_dim": 2048, "lamb": 0.0051, "scale_loss": 0.1},
        ("lars", 0.3, 0.1, 1e-4),
        lars=LARS_SOLO,
    ),
    "swav": recipe(  # sk_iters, sk_epsilon: solo/methods/swav.py defaults
        {
            "proj_hidden_dim": 2048,
            "proj_output_dim": 128,
            "num_prototypes": 3000,
            "temperature": 0.1,
            "sk_iters": 3,
            "sk_epsilon": 0.05,
            "queue_size": 3840,
            "epoch_queue_starts": 50,
            "freeze_prototypes_epochs": 2,
        },
        ("lars", 0.6, 0.1, 1e-6),
        lars=LARS_SOLO,
    ),
}

# solo-learn scripts/pretrain/imagenet-100/<method>.yaml (batch 128 x devices [0, 1] = 256)
IMAGENET100 = {
    "simclr": recipe(
        {"proj_hidden_dim": 4096, "proj_output_dim": 512, "temperature": 0.2},
        ("lars", 0.3, 0.1, 1e-4),
        lars=LARS_SOLO,
    ),
    "mocov3": recipe(
        {
            "proj_hidden_dim": 4096,
            "proj_output_dim": 256,
            "pred_hidden_dim": 4096,
            "temperature": 0.2,
        },
        ("lars", 0.3, 0.3, 1e-6),
        momentum=(0.99, 1.0),
        lars=LARS_SOLO,
    ),
    "vicreg": recipe(
        {
            "proj_hidden_dim": 2048,
            "proj_output_dim": 2048,
            "sim_loss_weight": 25.0,
            "var_loss_weight": 25.0,
            "cov_loss_weight": 1.0,
        },
        ("lars", 0.3, 0.1, 1e-4),
        lars=LARS_SOLO,
    ),
    "dino": recipe(
        {
            "proj_hidden_dim": 2048,
            "proj_output_dim": 256,
            "num_prototypes": 4096,
            "warmup_teacher_temperature_epochs": 50,
            **DINO_DEFAULTS,
        },
        ("lars", 0.3, 0.1, 1e-6),
        momentum=(0.9995, 1.0),
        lars=LARS_SOLO,
    ),
    "byol": recipe(
        {"proj_hidden_dim": 4096, "proj_output_dim": 256, "pred_hidden_dim": 8192},
        ("lars", 0.5, 0.1, 1e-6),
        momentum=(0.99, 1.0),
        lars=LARS_SOLO,
    ),
    "barlow_twins": recipe(
        {"proj_hidden_dim": 2048, "proj_output_dim": 2048, "lamb": 0.0051, "scale_loss": 0.1},
        ("lars", 0.3, 0.1, 1e-4),
        lars=LARS_SOLO,
    ),
    "swav": recipe(
        {
            "proj_hidden_dim": 2048,
            "proj_output_dim": 128,
            "num_prototypes": 3000,
            "temperature": 0.1,
            "sk_iters": 3,
            "sk_epsilon": 0.05,
            "queue_size": 3840,
            "epoch_queue_starts": 50,
            "freeze_prototypes_epochs": 2,
        },
        ("lars", 0.6, 0.1, 1e-6),
        lars=LARS_SOLO,
    ),
}

# solo-learn scripts/pretrain/imagenet-100/mocov3_vit.yaml: vit_small, AdamW, 128 x 8 devices
MOCOV3_VIT_IMAGENET100 = recipe(
    {"proj_hidden_dim": 4096, "proj_output_dim": 256, "pred_hidden_dim": 4096, "temperature": 0.2},
    ("adamw", 3.0e-4, 3.0e-4, 0.1),
    momentum=(0.99, 1.0),
    global_batch=1024,
    backbone="vit_small",
)

IMAGENET = {
    # SimCLR README.md (batch 4096, temperature 0.1, wd 1e-4), run.py (lr 0.3 linear, warmup 10,
    # proj_out_dim 128; hidden = ResNet-50's 2048), lars_optimizer.py (EETA_DEFAULT 0.001)
    ("simclr", "resnet"): recipe(
        {"proj_hidden_dim": 2048, "proj_output_dim": 128, "temperature": 0.1},
        ("lars", 0.3, 0.1, 1e-4),
        lars=LARS_IMAGENET,
        global_batch=4096,
        backbone="resnet50",
    ),
    # MoCo v3 CONFIG.md ResNet-50 100-epoch + main_moco.py defaults (lr 0.6, wd 1e-6, batch 4096,
    # moco-t 1.0, moco-m 0.99 with cosine, mlp dim 4096, dim 256, warmup 10); moco/optimizer.py
    ("mocov3", "resnet"): recipe(
        {
            "proj_hidden_dim": 4096,
            "proj_output_dim": 256,
            "pred_hidden_dim": 4096,
            "temperature": 1.0,
        },
        ("lars", 0.6, 0.3, 1e-6),
        momentum=(0.99, 1.0),
        lars=LARS_IMAGENET,
        global_batch=4096,
        backbone="resnet50",
    ),
    # solo-learn scripts/pretrain/imagenet/byol.yaml: 64 x devices [0, 1] x accumulate 16
    ("byol", "resnet"): recipe(
        {"proj_hidden_dim": 4096, "proj_output_dim": 256, "pred_hidden_dim": 4096},
        ("lars", 0.45, 0.2, 1e-6),
        momentum=(0.99, 1.0),
        lars=LARS_IMAGENET,
        global_batch=2048,
        backbone="resnet50",
        accumulate=16,
    ),
    # solo-learn scripts/pretrain/imagenet/barlow.yaml: 64 x devices [0, 1, 2, 3]
    ("barlow_twins", "resnet"): recipe(
        {"proj_hidden_dim": 4096, "proj_output_dim": 4096, "lamb": 0.0051, "scale_loss": 0.048},
        ("lars", 0.8, 0.1, 1.5e-6),
        lars=LARS_IMAGENET,
        global_batch=256,
        backbone="resnet50",
    ),
    # DiversitySSL scripts/pretrain/imagenet/custom.yaml: 32 x devices [0] x accumulate 2
    ("simclr", "vit"): recipe(
        {"proj_hidden_dim": 4096, "proj_output_dim": 256, "temperature": 0.2},
        ("adamw", 0.002, 0.3, 5e-2),
        global_batch=64,
        warmup=1,
        backbone="vit_base",
        accumulate=2,
    ),
    # MoCo v3 CONFIG.md ViT-Base: adamw, lr 1.5e-4, wd 0.1, moco-t 0.2, batch 4096; warmup 10 of
    # ours for its 40 of 300 epochs (the same share of a C = 98M run)
    ("mocov3", "vit"): recipe(
        {
            "proj_hidden_dim": 4096,
            "proj_output_dim": 256,
            "pred_hidden_dim": 4096,
            "temperature": 0.2,
        },
        ("adamw", 1.5e-4, 3.0e-4, 0.1),
        momentum=(0.99, 1.0),
        global_batch=4096,
        backbone="vit_base",
    ),
}


def composed(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        return compose(config_name=name, overrides=list(overrides))


def recipe_of(cfg: DictConfig) -> dict[str, Any]:
    """The recipe keys of a composed config, in the shape of :func:`recipe`."""
    c = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(c, dict)
    opt = dict(c["optimizer"])
    momentum = c.get("momentum")
    return {
        "backbone": c["backbone"]["name"],
        "method_kwargs": c["method_kwargs"],
        "momentum": (momentum["base_tau"], momentum["final_tau"]) if momentum else None,
        "optimizer": opt,
        "scheduler": c["scheduler"],
        "accumulate_grad_batches": c.get("accumulate_grad_batches"),
    }


@pytest.mark.parametrize("method", METHODS)
def test_cifar_recipe_is_the_default(method: str) -> None:
    cfg = composed(f"{method}_div", ["data=cifar100"])
    assert recipe_of(cfg) == CIFAR[method]
    assert (cfg.recipe.name, cfg.recipe.scale, cfg.recipe.arch) == (
        f"cifar/{method}_resnet",
        "cifar",
        "resnet",
    )
    assert cfg.sync_batchnorm is True


@pytest.mark.parametrize("data", ["digits", "fashion_mnist", "tinyimagenet", "flowers102"])
def test_small_and_downstream_data_keep_the_cifar_scale(data: str) -> None:
    cfg = composed("byol_div", [f"data={data}"])
    assert cfg.recipe.scale == "cifar"
    assert cfg.method_kwargs.pred_hidden_dim == 4096  # solo-learn cifar/byol.yaml


def test_digits_demo_keeps_its_own_batch_and_backbone() -> None:
    cfg = composed("simclr_div")
    assert cfg.recipe.name == "cifar/simclr_resnet"
    assert (cfg.backbone.name, cfg.optimizer.batch_size, cfg.optimizer.global_batch_size) == (
        "small_cnn",
        None,
        128,
    )


@pytest.mark.parametrize("method", METHODS)
def test_imagenet100_recipe(method: str) -> None:
    cfg = composed(f"{method}_div", ["data=imagenet100"])
    assert recipe_of(cfg) == IMAGENET100[method]
    assert (cfg.recipe.scale, cfg.recipe.arch) == ("imagenet100", "resnet")
    assert cfg.optimizer.global_batch_size == 256
    assert cfg.get("budget", {}).get("epoch_keys") is None  # solo-learn's meaning (subset)
    if method == "dino":
        assert cfg.method_kwargs.warmup_teacher_temperature_epochs == 50


def test_imagenet100_mocov3_vit() -> None:
    cfg = composed("mocov3_div", ["data=imagenet100", "arch=vit"])
    assert recipe_of(cfg) == MOCOV3_VIT_IMAGENET100
    assert cfg.recipe.name == "imagenet100/mocov3_vit"


@pytest.mark.parametrize(("method", "arch"), sorted(IMAGENET))
@pytest.mark.parametrize("data", ["imagenet", "yfcc100m"])
def test_imagenet_recipes(method: str, arch: str, data: str) -> None:
    overrides = [f"data={data}"] + (["arch=vit"] if arch == "vit" else [])
    cfg = composed(f"{method}_div", overrides)
    assert recipe_of(cfg) == IMAGENET[(method, arch)]
    assert (cfg.recipe.name, cfg.recipe.scale, cfg.recipe.arch) == (
        f"imagenet/{method}_{arch}",
        "imagenet",
        arch,
    )
    assert cfg.budget.epoch_keys == "reference"
    assert cfg.budget.reference_size == 1281167  # ImageNet-1k train images
    assert cfg.budget.C == 98e6
    assert cfg.data.dataset == data


@pytest.mark.parametrize("method", ["simclr", "mocov3", "byol", "barlow_twins"])
def test_yfcc100m_gets_the_imagenet_recipe(method: str) -> None:
    def keys(data: str) -> dict[str, Any]:
        cfg = OmegaConf.to_container(composed(f"{method}_div", [f"data={data}"]), resolve=True)
        assert isinstance(cfg, dict)
        return {
            k: cfg.get(k)
            for k in (
                "recipe",
                "backbone",
                "method_kwargs",
                "momentum",
                "optimizer",
                "scheduler",
                "accumulate_grad_batches",
            )
        }

    assert keys("yfcc100m") == keys("imagenet")


def test_command_line_wins_over_the_recipe() -> None:
    cfg = composed("simclr_div", ["data=imagenet", "optimizer.lr=0.5", "backbone.name=resnet101"])
    assert (cfg.optimizer.lr, cfg.backbone.name) == (0.5, "resnet101")


@pytest.mark.parametrize("method", ["vicreg", "dino", "swav"])
@pytest.mark.parametrize("data", ["imagenet", "yfcc100m"])
def test_no_imagenet_recipe_fails_to_compose(method: str, data: str) -> None:
    with pytest.raises(MissingConfigException, match=f"recipe/{method}/imagenet_resnet"):
        composed(f"{method}_div", [f"data={data}"])
    # an explicit recipe still composes
    cfg = composed(f"{method}_div", [f"data={data}", f"recipe={method}/imagenet100_resnet"])
    assert cfg.recipe.name == f"imagenet100/{method}_resnet"


@pytest.mark.parametrize("method", ["vicreg", "dino", "byol", "barlow_twins", "swav"])
def test_no_vit_recipe_fails_to_compose(method: str) -> None:
    with pytest.raises(MissingConfigException, match=f"recipe/{method}/cifar_vit"):
        composed(f"{method}_div", ["arch=vit"])


# ---- the files themselves ---------------------------------------------------------------------

RECIPE_FILES = sorted(RECIPE_DIR.glob("*/*.yaml"))
EXPECTED_FILES = {
    *(f"{m}/cifar_resnet" for m in METHODS),
    *(f"{m}/imagenet100_resnet" for m in METHODS),
    "mocov3/imagenet100_vit",
    *(f"{m}/imagenet_resnet" for m in ("simclr", "mocov3", "byol", "barlow_twins")),
    "simclr/imagenet_vit",
    "mocov3/imagenet_vit",
}
# the upstream file every recipe names (a path of its source, as its comments write it)
SOURCES = {
    "cifar": "solo-learn scripts/pretrain/cifar/",
    "imagenet100": "solo-learn scripts/pretrain/imagenet-100/",
    "simclr/imagenet_resnet": "SimCLR README.md",
    "mocov3/imagenet_resnet": "MoCo v3 CONFIG.md",
    "byol/imagenet_resnet": "solo-learn scripts/pretrain/imagenet/byol.yaml",
    "barlow_twins/imagenet_resnet": "solo-learn scripts/pretrain/imagenet/barlow.yaml",
    "simclr/imagenet_vit": "DiversitySSL scripts/pretrain/imagenet/custom.yaml",
    "mocov3/imagenet_vit": "MoCo v3 CONFIG.md",
}
# a comment that names where a value comes from
SOURCE_WORDS = re.compile(
    r"solo-learn |SimCLR |MoCo v3 |DiversitySSL |per device|differs|No source"
)


def test_the_recipe_files() -> None:
    assert {f"{p.parent.name}/{p.stem}" for p in RECIPE_FILES} == EXPECTED_FILES


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_file_names_its_sources(path: Path) -> None:
    text = path.read_text()
    key = f"{path.parent.name}/{path.stem}"
    scale, arch = path.stem.rsplit("_", 1)
    assert text.startswith("# @package _global_\n")
    meta = OmegaConf.load(path).recipe
    assert (meta.name, meta.scale, meta.arch) == (f"{scale}/{path.parent.name}_{arch}", scale, arch)
    assert meta.source
    source = SOURCES.get(key, SOURCES.get(scale))
    assert source is not None and source in text and source.split()[0] in meta.source
    assert "/tmp" not in text and "/home" not in text and "/work" not in text

    assert unsourced_lines(text) == [], key


def unsourced_lines(text: str) -> list[str]:
    """Value lines (outside ``recipe:``) whose line, enclosing block line or comment lines just
    above carry no source comment."""
    missing = []
    lines = text.splitlines()
    block_sourced: dict[int, bool] = {}
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key_part, _, rest = stripped.partition(":")
        value = rest.split("#", 1)[0].strip()
        sourced = bool(SOURCE_WORDS.search(line))
        j = i - 1  # the comment lines just above (a multi-line note naming the source)
        while j >= 0 and lines[j].strip().startswith("#"):
            sourced = sourced or bool(SOURCE_WORDS.search(lines[j]))
            j -= 1
        block_sourced = {k: v for k, v in block_sourced.items() if k < indent}
        if key_part == "recipe" and indent == 0:
            block_sourced[indent] = True
            continue
        if not value:  # a block: its children inherit its comment
            block_sourced[indent] = sourced or any(block_sourced.values())
            continue
        if not (sourced or any(block_sourced.values())):
            missing.append(stripped)
    return missing


def test_the_source_check_finds_an_unsourced_value() -> None:
    text = (
        "# @package _global_\n"
        "recipe:\n  name: x\n"
        "method_kwargs:   # solo-learn scripts/pretrain/cifar/simclr.yaml\n  temperature: 0.2\n"
        "optimizer:\n  lr: 0.4   # solo-learn scripts/pretrain/cifar/simclr.yaml\n"
        "  weight_decay: 1e-4\n"
    )
    assert unsourced_lines(text) == ["weight_decay: 1e-4"]


def test_a_vit_under_a_resnet_recipe_that_has_a_vit_sibling_is_refused() -> None:
    from solo_diversity.config.pretrain import resolve_pretrain_cfg
    from solo_diversity.errors import UserError

    cfg = composed("mocov3_div", ["data=imagenet", "backbone.name=vit_base"])
    with pytest.raises(UserError, match="vit_base with the resnet recipe imagenet/mocov3_resnet"):
        resolve_pretrain_cfg(cfg)
    cfg = composed("mocov3_div", ["data=imagenet", "arch=vit", "backbone.name=resnet50"])
    with pytest.raises(UserError, match="resnet50 with the ViT recipe imagenet/mocov3_vit; drop"):
        resolve_pretrain_cfg(cfg)


def test_a_vit_where_no_vit_recipe_exists_trains_with_a_warning(caplog) -> None:
    from solo_diversity.config.pretrain import resolve_pretrain_cfg

    resolve_pretrain_cfg(composed("simclr_div", ["backbone.name=vit_small"]))
    assert "no ViT recipe for simclr at cifar scale" in caplog.text
