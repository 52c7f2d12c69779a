# SPDX-License-Identifier: MIT
"""Checks of config keys that a user can get wrong: one line each, before anything runs.

solo-learn's schema is wide (mixup, auto-UMAP, layer decay, ...). A key that a user sets and that
would silently do nothing here is worse than an error, so each entry point lists the upstream keys
it leaves out, with the value that means "off", and :func:`reject_unsupported` fails on any other
value with one line naming the key. :func:`reject_unknown_top_level` refuses a top-level key that
nothing reads (a typo, ``+foo=1``), and :func:`check_numbers` the wrong type or range of every
numeric key (:data:`PRETRAIN_NUMBERS`).
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from solo_diversity.errors import UserError

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


def _bound(value: float | None) -> str:
    return "" if value is None else str(int(value)) if value == int(value) else f"{value:g}"


@dataclass(frozen=True)
class Number:
    """What a numeric config key accepts.

    Attributes:
        kind: ``"int"`` (an integer, not a bool) or ``"float"`` (an int or a finite float).
        low: smallest accepted value (None: unbounded).
        high: largest accepted value (None: unbounded).
        open_low: ``low`` itself is refused.
        nullable: ``null`` is accepted (the key is optional).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    nullable: bool = False

    def describe(self) -> str:
        """E.g. ``an integer >= 1``, ``a number in [0, 1]``, ``a number > 0 or null``."""
        noun = "an integer" if self.kind == "int" else "a number"
        low, high = _bound(self.low), _bound(self.high)
        if self.low is not None and self.high is not None:
            bound = f" in {'(' if self.open_low else '['}{low}, {high}]"
        elif self.low is not None:
            bound = f" {'>' if self.open_low else '>='} {low}"
        elif self.high is not None:
            bound = f" <= {high}"
        else:
            bound = ""
        return f"{noun}{bound}{' or null' if self.nullable else ''}"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has the right type and lies in range."""
        if value is None:
            return self.nullable
        if isinstance(value, bool):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high


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


_POS_INT = Number("int", 1)
_NONNEG = Number("float", 0)
_SHARE = Number("float", 0, 1)
_POSITIVE = Number("float", 0, open_low=True)

# solo-learn's method_kwargs that the methods here read as numbers.
METHOD_NUMBERS: dict[str, Number] = {
    **{
        f"method_kwargs.{key}": _POS_INT
        for key in (
            "proj_hidden_dim",
            "proj_output_dim",
            "pred_hidden_dim",
            "num_prototypes",
            "queue_size",
            "sk_iters",
        )
    },
    **{
        f"method_kwargs.{key}": _POSITIVE
        for key in ("temperature", "student_temperature", "teacher_temperature", "sk_epsilon")
    },
    **{
        f"method_kwargs.{key}": _NONNEG
        for key in (
            "warmup_teacher_temperature",
            "warmup_teacher_temperature_epochs",
            "freeze_last_layer",
            "epoch_queue_starts",
            "freeze_prototypes_epochs",
            "clip_grad",
            "lamb",
            "scale_loss",
            "sim_loss_weight",
            "var_loss_weight",
            "cov_loss_weight",
        )
    },
    "momentum.base_tau": _SHARE,
    "momentum.final_tau": _SHARE,
}

# Every numeric key of a pretraining config (budget.C and budget.reference_size are image counts
# written like 50e6, checked by solo_diversity.budget.plan.parse_count).
PRETRAIN_NUMBERS: dict[str, Number] = {
    "seed": Number("int", 0, 2**32 - 1),
    "optimizer.batch_size": Number("int", 1, nullable=True),  # null: from global_batch_size
    "optimizer.global_batch_size": Number("int", 1, nullable=True),
    "optimizer.lr": _NONNEG,
    "optimizer.classifier_lr": _NONNEG,
    "optimizer.weight_decay": _NONNEG,
    "optimizer.kwargs.momentum": _NONNEG,
    "optimizer.kwargs.eta": _NONNEG,
    "scheduler.warmup_epochs": _NONNEG,
    "scheduler.warmup_start_lr": _NONNEG,
    "scheduler.min_lr": _NONNEG,
    "data.fraction": Number("float"),  # its range has its own line (-1 or (0, 1])
    "data.num_workers": Number("int", 0),
    "data.crop_size": _POS_INT,
    "data.index_seed": Number("int", 0),
    "data.max_bad_fraction": _SHARE,
    "data.min_steps_per_epoch": _POS_INT,
    "dali.num_threads": _POS_INT,
    "num_nodes": _POS_INT,
    "max_epochs": Number("int", -1, nullable=True),
    "accumulate_grad_batches": _POS_INT,
    "checkpoint.frequency": _NONNEG,
    "checkpoint.every_n_steps": Number("int", 0),
    "checkpoint.every_minutes": _NONNEG,
    "auto_resume.max_hours": _NONNEG,
    "budget.epochs": Number("float", 0, open_low=True, nullable=True),
    "knn_eval.k": _POS_INT,
    "knn_eval.max_train_features": Number("int", 1, nullable=True),
    **METHOD_NUMBERS,
}
