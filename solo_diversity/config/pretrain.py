# SPDX-License-Identifier: MIT
"""Resolve a solo-learn pretraining config once: defaults, checks, derived keys, the budget plan.

This is the one place where a raw hydra config becomes the run's config. It fills solo-learn's
defaults (so its YAML files work unchanged), checks the budget group, derives the crop counts,
and attaches the budget plan. Nothing mutates the config after :func:`attach_plan`.
"""

from __future__ import annotations

import logging
from typing import Any, get_args

from lightning.fabric.connector import (
    _PRECISION_INPUT_INT,
    _PRECISION_INPUT_STR,
    _PRECISION_INPUT_STR_ALIAS,
)
from omegaconf import DictConfig, OmegaConf

from solo_diversity.budget.plan import (
    BudgetPlan,
    check_budget_keys,
    parse_count,
    plan_budget,
    unused_budget_keys,
)
from solo_diversity.budget.world import cpu_devices
from solo_diversity.config.batch import per_device_batch
from solo_diversity.config.keys import (
    OWN_PRETRAIN_TOP_LEVEL,
    PRETRAIN_NUMBERS,
    SOLO_PRETRAIN_TOP_LEVEL,
    check_numbers,
    reject_unknown_top_level,
    reject_unsupported,
    trainer_arguments,
)
from solo_diversity.config.loggers import check_logger_keys
from solo_diversity.config.overrides import configs_dir
from solo_diversity.data import crop_counts, parse_augmentations
from solo_diversity.errors import UserError
from solo_diversity.methods import get_method
from solo_diversity.methods.base import fill_defaults
from solo_diversity.methods.settings import global_batch, world_size_of

log = logging.getLogger(__name__)

PRETRAIN_DEFAULTS: dict[str, Any] = {
    "seed": 5,
    "data.val_path": None,
    "data.format": "h5",
    "data.no_labels": False,
    "data.fraction": -1,
    "data.stratified": False,
    "data.num_workers": 2,
    "data.index_seed": 0,
    "data.index_cache": "datasets/.indexes",
    "data.max_bad_fraction": 0.01,
    "data.augment_backend": "fast",
    "data.batch_augment_on": "auto",
    "data.in_memory": "auto",
    "data.min_steps_per_epoch": 50,
    "dali.device": "auto",
    "dali.num_threads": 2,
    "dali.encode_indexes_into_labels": False,  # accepted: batch indexes are always real here
    "debug_augmentations": False,
    "loggers": ["csv"],
    "wandb.enabled": False,
    "wandb.entity": None,
    "wandb.project": "solo-learn",
    "wandb.offline": False,
    "checkpoint.enabled": True,
    "checkpoint.dir": "trained_models",
    "checkpoint.frequency": 1,
    "checkpoint.keep_prev": False,
    "checkpoint.every_n_steps": 0,
    "checkpoint.every_minutes": 30,  # bounds what a kill without warning loses (run_config.py)
    "auto_resume.enabled": False,
    "auto_resume.max_hours": 36,
    "budget.mode": "images",
    "budget.epoch_keys": "subset",
    "budget.allow_late_switches": False,
    "optimizer.global_batch_size": None,
    "accelerator": "auto",
    "devices": 1,
    "num_nodes": 1,
    "precision": "32-true",
}


# Keys of solo-learn's pretraining schema (solo/args/pretrain.py parse_cfg, the add_and_assert of
# its Checkpointer, AutoResumer, DALI module, AutoUMAP and BaseMethod, and the Trainer arguments
# main_pretrain.py passes through) that this project does not implement, with their "off" values.
# Every other key of that schema works as upstream.
UNSUPPORTED_PRETRAIN_KEYS: dict[str, tuple[tuple[Any, ...], str]] = {
    "auto_umap.enabled": ((False,), "UMAP plots of the features are not implemented"),
    "scheduler.interval": (("step",), "the budget schedules the learning rate per optimizer step"),
    "max_steps": ((-1,), "the budget sets max_steps = floor(C / G); give budget.C instead"),
    "min_steps": ((), "the budget alone decides when training stops"),
    "min_epochs": ((), "the budget alone decides when training stops"),
    "max_time": ((), "a time limit would stop the run before its budget; give budget.C"),
    "limit_train_batches": ((1.0,), "the budget decides how many batches train"),
    "val_check_interval": ((1.0,), "validation runs 4 times per budgeted run"),
    "check_val_every_n_epoch": ((1,), "validation runs 4 times per budgeted run"),
}


def copy_cfg(cfg: DictConfig) -> DictConfig:
    """A resolved, non-struct deep copy of a config."""
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    assert isinstance(out, DictConfig)
    OmegaConf.set_struct(out, False)
    return out


def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def resolve_pretrain_cfg(raw: DictConfig) -> DictConfig:
    """Fill defaults, check values and derive keys of a pretraining config (returns a copy).

    Args:
        raw: the config hydra composed (ours or an unchanged solo-learn YAML).

    Returns:
        A new, non-struct config with every default present.
    """
    cfg = copy_cfg(raw)
    for key in ("name", "method", "backbone", "optimizer", "augmentations", "data"):
        if _select(cfg, key) is None:
            raise UserError(f"the config has no {key!r}; see yaml_configs/simclr_div.yaml")
    fill_defaults(cfg, {"budget": {}})
    fill_defaults(cfg, PRETRAIN_DEFAULTS)
    reject_unsupported(cfg, UNSUPPORTED_PRETRAIN_KEYS, "main_pretrain.py")
    known = SOLO_PRETRAIN_TOP_LEVEL | OWN_PRETRAIN_TOP_LEVEL | trainer_arguments()
    reject_unknown_top_level(cfg, known, "yaml_configs/simclr_div.yaml")
    check_numbers(cfg, PRETRAIN_NUMBERS)
    check_precision(cfg.precision)
    check_logger_keys(cfg)
    budget = OmegaConf.to_container(cfg.budget)
    check_budget_keys(budget)  # type: ignore[arg-type]
    for line in unused_budget_keys(budget):  # type: ignore[arg-type]
        log.warning(line)
    check_recipe_arch(cfg)
    check_switch_flag(cfg.budget.allow_late_switches)
    cfg = get_method(str(cfg.method)).add_and_assert_specific_cfg(cfg)
    specs = parse_augmentations(OmegaConf.to_container(cfg.augmentations, resolve=True))  # type: ignore[arg-type]
    cfg.data.num_large_crops, cfg.data.num_small_crops = crop_counts(specs)
    fraction = float(cfg.data.fraction)
    if fraction != -1 and not 0 < fraction <= 1:
        raise UserError(
            f"data.fraction={cfg.data.fraction} must be in (0, 1], or -1 for all images"
        )
    return cfg


def check_recipe_arch(cfg: DictConfig) -> None:
    """Refuse a ViT backbone under a ResNet recipe when a ViT recipe exists, and the reverse.

    Our ``<method>_div`` configs pick a recipe by ``scale`` and ``arch``; the backbone name alone
    cannot switch hydra's group, so ``backbone.name=vit_base`` without ``arch=vit`` would train a
    ViT with the ResNet recipe (LARS at CNN rates). Where no ViT recipe exists (CIFAR scale) the
    ViT trains with the ResNet recipe, and a warning says so.
    """
    recipe = cfg.get("recipe")
    if recipe is None or recipe.get("arch") is None:
        return
    backbone = str(cfg.backbone.name)
    if not backbone.startswith("vit"):
        if recipe.arch == "vit":
            raise UserError(
                f"backbone.name={backbone} with the ViT recipe {recipe.name}; drop arch=vit or "
                "pick a vit_* backbone"
            )
        return
    if recipe.arch == "vit":
        return
    vit_recipe = configs_dir() / "recipe" / str(cfg.method) / f"{recipe.scale}_vit.yaml"
    if vit_recipe.is_file():
        raise UserError(
            f"backbone.name={backbone} with the resnet recipe {recipe.name}; add arch=vit to use "
            "the ViT recipe"
        )
    log.warning(
        "no ViT recipe for %s at %s scale: %s trains with the ResNet recipe %s",
        cfg.method,
        recipe.scale,
        backbone,
        recipe.name,
    )


def check_switch_flag(value: Any) -> None:
    """``budget.allow_late_switches`` is a boolean (hydra reads ``true``/``false``)."""
    if not isinstance(value, bool):
        raise UserError(f"budget.allow_late_switches={value!r} must be true or false")


PRECISIONS: tuple[Any, ...] = (
    *get_args(_PRECISION_INPUT_STR),
    *get_args(_PRECISION_INPUT_STR_ALIAS),
    *get_args(_PRECISION_INPUT_INT),
)


def check_precision(precision: Any) -> None:
    """Refuse a ``precision`` that Lightning would reject only once the Trainer is built."""
    if isinstance(precision, bool) or precision not in PRECISIONS:
        allowed = ", ".join(dict.fromkeys(str(p) for p in PRECISIONS))
        raise UserError(f"precision={precision!r} is not valid; choose one of {allowed}")


def trainer_devices(cfg: DictConfig, accelerator: str) -> Any:
    """Lightning's ``devices`` for the chosen accelerator (a CPU takes a count, not a list)."""
    devices = cfg.devices
    if OmegaConf.is_config(devices):
        devices = OmegaConf.to_container(devices)
    return cpu_devices(devices) if accelerator == "cpu" else devices


def attach_plan(
    cfg: DictConfig,
    *,
    dataset_size: int,
    subset_size: int,
    num_classes: int,
    world_size: int | None = None,
) -> tuple[DictConfig, BudgetPlan]:
    """Compute the budget plan and attach it (and the class count) to a copy of the config.

    Without ``budget.C`` the budget defaults to solo-learn's own compute for this config,
    ``max_epochs * N_ref``, so an unchanged solo-learn YAML trains as long as it would upstream.

    Args:
        cfg: a config from :func:`resolve_pretrain_cfg`.
        dataset_size: images in the whole index (the default reference size N_ref).
        subset_size: N, images in the pretraining subset.
        num_classes: classes of the dataset (0 when unlabelled).
        world_size: processes in total, as Lightning resolves them
            (:func:`solo_diversity.budget.world.resolve_world`); by default resolved from the
            config.

    Returns:
        The new config (with ``budget_plan``, its ``world_size``, and ``data.num_classes``) and
        the plan.
    """
    budget = cfg.budget
    n_ref = (
        parse_count(budget.reference_size, "budget.reference_size")
        if budget.get("reference_size") is not None
        else dataset_size
    )
    C = budget.get("C")  # noqa: N806
    if C is None and budget.mode == "images":
        if cfg.get("max_epochs") in (None, -1):
            raise UserError("budget.C is not set; give the budget in images, e.g. budget.C=50e6")
        C = int(cfg.max_epochs) * n_ref  # noqa: N806
        log.warning("budget.C not set: using max_epochs * N_ref = %d images", C)
    world = world_size_of(cfg) if world_size is None else world_size
    out = copy_cfg(cfg)
    out.optimizer.batch_size = per_device_batch(cfg, world)
    plan = plan_budget(
        C,
        subset_size,
        global_batch(out, world),
        N_ref=n_ref,
        mode=str(budget.mode),
        epochs=budget.get("epochs"),
        epoch_keys=str(budget.epoch_keys),
    )
    out.data.num_classes = max(1, num_classes)
    out.budget_plan = plan.as_dict()
    out.budget_plan.world_size = world
    return out, plan
