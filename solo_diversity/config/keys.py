# SPDX-License-Identifier: MIT
"""Checks of config keys that a user can get wrong: one line each, before anything runs.

solo-learn's schema is wide (mixup, auto-UMAP, layer decay, ...). A key that a user sets and that
would silently do nothing here is worse than an error, so each entry point lists the upstream keys
it leaves out, with the value that means "off", and :func:`reject_unsupported` fails on any other
value with one line naming the key. :func:`reject_unknown_top_level` refuses a top-level key that
nothing reads (a typo, ``+foo=1``), and :func:`check_numbers` the wrong type or range of every
numeric key (:data:`PRETRAIN_NUMBERS`). The ranges of the methods' own keys live in each method
class (``CONFIG_RANGES``, beside its defaults); :func:`gather_ranges` collects them here.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from solo_diversity.errors import UserError
from solo_diversity.methods import BUILTIN_METHODS, BaseMethod
from solo_diversity.methods.ranges import NON_NEGATIVE, POSITIVE_INT, SHARE, Number

_ABSENT = object()


def reject_unsupported(
    cfg: DictConfig, unsupported: Mapping[str, tuple[Any, str]], where: str
) -> None:
    """Fail when ``cfg`` sets an upstream key that ``where`` does not implement.

    Args:
        cfg: the composed config.
        unsupported: dotted key -> (values that mean "off", why it is not supported). The first
            element is a tuple of accepted "off" values (``None`` is always accepted).
        where: the entry point's name for the message, e.g. ``"main_linear.py"``.

    Raises:
        UserError: naming the first key set to a value other than its "off" values.
    """
    for key, (off_values, why) in unsupported.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT or value is None:
            continue
        plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        if plain in off_values:
            continue
        raise UserError(f"{key}={plain!r} is a solo-learn key that {where} does not support: {why}")


# Top-level keys of solo-learn's pretraining schema: its YAMLs (scripts/pretrain/*), parse_cfg in
# solo/args/pretrain.py with the add_and_assert of its Checkpointer, AutoResumer, DALI module,
# AutoUMAP and BaseMethod, and what its main_pretrain.py reads. Trainer arguments pass through too.
SOLO_PRETRAIN_TOP_LEVEL = frozenset(
    {
        "name",
        "method",
        "backbone",
        "method_kwargs",
        "momentum",
        "data",
        "augmentations",
        "optimizer",
        "scheduler",
        "checkpoint",
        "auto_resume",
        "auto_umap",
        "dali",
        "wandb",
        "knn_eval",
        "performance",
        "debug_augmentations",
        "seed",
        "resume_from_checkpoint",
        "strategy",
        "num_nodes",
        "accumulate_grad_batches",
        "max_epochs",
        "devices",
        "sync_batchnorm",
        "accelerator",
        "precision",
    }
)
# This project's own top-level keys (``budget_plan`` is derived, present in a saved args.json).
OWN_PRETRAIN_TOP_LEVEL = frozenset({"budget", "loggers", "budget_plan", "recipe", "baseline"})


def trainer_arguments() -> frozenset[str]:
    """Names of ``lightning.pytorch.Trainer.__init__``'s parameters (config keys that pass)."""
    return frozenset(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}


def reject_unknown_top_level(cfg: DictConfig, known: frozenset[str], example: str) -> None:
    """Fail on the first top-level key that no part of the run reads (a typo, or ``+foo=1``).

    Args:
        cfg: the composed config.
        known: every top-level key the entry point reads or passes to the Trainer.
        example: a shipped config to point to, e.g. ``"yaml_configs/simclr_div.yaml"``.

    Raises:
        UserError: naming the key, the closest known one, and the example.
    """
    for key in sorted(str(k) for k in cfg.keys()):
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(
            f"unknown top-level key {key!r}{hint}; nothing reads it. The keys are solo-learn's, "
            f"the Trainer's and this project's, see {example}"
        )


def check_numbers(cfg: DictConfig, rules: Mapping[str, Number]) -> None:
    """Fail on the first numeric key that is set to a wrong type or out of its range.

    Args:
        cfg: the composed config; keys it does not set are skipped.
        rules: dotted key -> :class:`Number`.

    Raises:
        UserError: ``<key>=<value> must be <what the rule accepts>``.
    """
    for key, rule in rules.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT or rule.accepts(value):
            continue
        plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        raise UserError(f"{key}={plain!r} must be {rule.describe()}")


def gather_ranges(methods: Iterable[type[BaseMethod]]) -> dict[str, Number]:
    """The ``CONFIG_RANGES`` of every method class in one table, checked whatever the method.

    A key that several methods read (``method_kwargs.proj_hidden_dim``) has one rule for all.
    """
    gathered: dict[str, Number] = {}
    for method in methods:
        for key, rule in method.CONFIG_RANGES.items():
            assert gathered.setdefault(key, rule) == rule, f"{key} has two ranges"
    return gathered


# The method_kwargs (and momentum keys) that the methods here read as numbers.
METHOD_NUMBERS: dict[str, Number] = gather_ranges(BUILTIN_METHODS.values())

# Every numeric key of a pretraining config (budget.C and budget.reference_size are image counts
# written like 50e6, checked by solo_diversity.budget.plan.parse_count).
PRETRAIN_NUMBERS: dict[str, Number] = {
    "seed": Number("int", 0, 2**32 - 1),
    "optimizer.batch_size": Number("int", 1, nullable=True),  # null: from global_batch_size
    "optimizer.global_batch_size": Number("int", 1, nullable=True),
    "optimizer.lr": NON_NEGATIVE,
    "optimizer.classifier_lr": NON_NEGATIVE,
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.kwargs.momentum": NON_NEGATIVE,
    "optimizer.kwargs.eta": NON_NEGATIVE,
    "scheduler.warmup_epochs": NON_NEGATIVE,
    "scheduler.warmup_start_lr": NON_NEGATIVE,
    "scheduler.min_lr": NON_NEGATIVE,
    "data.fraction": Number("float"),  # its range has its own line (-1 or (0, 1])
    "data.num_workers": Number("int", 0),
    "data.crop_size": POSITIVE_INT,
    "data.index_seed": Number("int", 0),
    "data.max_bad_fraction": SHARE,
    "data.min_steps_per_epoch": POSITIVE_INT,
    "dali.num_threads": POSITIVE_INT,
    "num_nodes": POSITIVE_INT,
    "max_epochs": Number("int", -1, nullable=True),
    "accumulate_grad_batches": POSITIVE_INT,
    "checkpoint.frequency": NON_NEGATIVE,
    "checkpoint.every_n_steps": Number("int", 0),
    "checkpoint.every_minutes": NON_NEGATIVE,
    "auto_resume.max_hours": NON_NEGATIVE,
    "budget.epochs": Number("float", 0, open_low=True, nullable=True),
    "knn_eval.k": POSITIVE_INT,
    "knn_eval.max_train_features": Number("int", 1, nullable=True),
    **METHOD_NUMBERS,
}
