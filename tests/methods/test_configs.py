# SPDX-License-Identifier: MIT
"""The shipped <method>_div configs carry the paper's CIFAR-100 hyperparameters; backends."""

from __future__ import annotations

import pytest

from solo_diversity.cli import main as cli_main
from solo_diversity.methods import BACKEND, BUILTIN_METHODS, METHODS
from solo_diversity.methods.upstream import BudgetPlugin, solo_learn_available
from tests.methods.method_helpers import method_cfg

# lr, classifier_lr, weight_decay, augmentation crops (large) -- DESIGN.md section 4
PAPER = {
    "simclr": (0.4, 0.1, 1e-4),
    "mocov3": (0.3, 0.3, 1e-6),
    "vicreg": (0.3, 0.1, 1e-4),
    "dino": (0.3, 0.1, 1e-6),
    "byol": (1.0, 0.1, 1e-5),
    "barlow_twins": (0.3, 0.1, 1e-4),
    "swav": (0.6, 0.1, 1e-6),
}
KWARGS = {
    "mocov3": {
        "proj_hidden_dim": 4096,
        "proj_output_dim": 256,
        "pred_hidden_dim": 4096,
        "temperature": 0.2,
    },
    "vicreg": {
        "proj_hidden_dim": 2048,
        "proj_output_dim": 2048,
        "sim_loss_weight": 25.0,
        "var_loss_weight": 25.0,
        "cov_loss_weight": 1.0,
    },
    "dino": {
        "proj_hidden_dim": 2048,
        "proj_output_dim": 256,
        "num_prototypes": 4096,
        "student_temperature": 0.1,
        "teacher_temperature": 0.07,
        "warmup_teacher_temperature": 0.04,
    },
    "byol": {"proj_hidden_dim": 4096, "proj_output_dim": 256, "pred_hidden_dim": 4096},
    "barlow_twins": {
        "proj_hidden_dim": 2048,
        "proj_output_dim": 2048,
        "lamb": 0.0051,
        "scale_loss": 0.1,
    },
    "swav": {
        "proj_hidden_dim": 2048,
        "proj_output_dim": 128,
        "num_prototypes": 3000,
        "temperature": 0.1,
        "queue_size": 3840,
        "epoch_queue_starts": 50,
        "freeze_prototypes_epochs": 2,
        "sk_epsilon": 0.05,
        "sk_iters": 3,
    },
}
TAU = {"mocov3": 0.99, "byol": 0.99, "dino": 0.9995}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_config_has_the_paper_cifar100_hyperparameters(compose_cfg, name: str) -> None:
    cfg = compose_cfg(f"{name}_div", ["data=cifar100"])
    opt = cfg.optimizer
    assert (opt.lr, opt.classifier_lr, opt.weight_decay) == PAPER[name]
    assert cfg.optimizer.name == "lars" and cfg.optimizer.batch_size is None
    assert cfg.optimizer.global_batch_size == 256  # 256 per step on any number of devices
    assert cfg.optimizer.kwargs.eta == 0.02 and cfg.backbone.name == "resnet18"
    assert cfg.data.dataset == "cifar100" and cfg.augmentations[0].crop_size == 32
    for key, value in KWARGS.get(name, {}).items():
        assert cfg.method_kwargs[key] == value, key
    if name in TAU:
        assert cfg.momentum.base_tau == TAU[name] and cfg.momentum.final_tau == 1.0


def test_default_data_is_digits_on_the_cpu_backbone(compose_cfg) -> None:
    cfg = compose_cfg("dino_div")
    assert (cfg.data.dataset, cfg.backbone.name, cfg.optimizer.global_batch_size) == (
        "digits",
        "small_cnn",
        128,
    )
    assert cfg.optimizer.batch_size is None  # per device: derived from global_batch_size
    assert len(cfg.augmentations) == 2  # asymmetric: two single-crop specs


def test_vit_gets_the_crop_size_and_mocov3_a_three_layer_projector(compose_cfg) -> None:
    from solo_diversity.methods import MoCoV3

    cfg = method_cfg(  # the ViT recipe (recipe/mocov3/imagenet100_vit.yaml) on the digits data
        compose_cfg,
        "mocov3",
        ["scale=imagenet100", "arch=vit", "backbone.name=vit_small", "data.crop_size=16"],
    )
    assert cfg.backbone.kwargs.img_size == 16
    vit = MoCoV3(cfg)
    linear = [m for m in vit.projector if m.__class__.__name__ == "Linear"]
    assert len(linear) == 3
    cnn = MoCoV3(method_cfg(compose_cfg, "mocov3"))
    assert len([m for m in cnn.projector if m.__class__.__name__ == "Linear"]) == 2


def test_multicrop_preset_is_opt_in(compose_cfg) -> None:
    cfg = method_cfg(
        compose_cfg,
        "swav",
        ["augmentations=multicrop", "data.crop_size=16", "+data.small_crop_size=8"],
    )
    assert (cfg.data.num_large_crops, cfg.data.num_small_crops) == (2, 6)
    assert compose_cfg("swav_div").augmentations[0].num_crops == 2


def test_builtin_backend_without_solo_learn(capsys) -> None:
    if solo_learn_available():
        assert BACKEND == "solo-learn"
        return
    assert BACKEND == "built-in" and METHODS == BUILTIN_METHODS
    assert cli_main(["doctor"]) == 0
    assert "method backend: built-in" in capsys.readouterr().out


def test_upstream_classes_carry_the_budget_plugin() -> None:
    pytest.importorskip("solo.methods")  # the one allowed skip: solo-learn is optional
    for key, cls in METHODS.items():
        assert issubclass(cls, BudgetPlugin), key
        assert cls.__name__ == BUILTIN_METHODS[key].__name__
