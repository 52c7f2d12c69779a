# SPDX-License-Identifier: MIT
"""Optimizers and the per-step learning-rate schedule of every method.

LARS is written here because solo-learn's variant differs from the ones libraries ship: it can clip
the layer-wise rate (``clip_lr``), it exempts 1-d parameters (biases, norms) from adaptation
(``exclude_bias_n_norm``) and it adapts parameters whose weight decay is 0. lightly's LARS skips
every zero-decay parameter and has no clipping, which would change the paper's runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from solo_diversity.budget.schedules import warmup_cosine
from solo_diversity.errors import UserError


class LARS(torch.optim.Optimizer):
    """SGD with layer-wise adaptive rate scaling (You et al., arXiv:1708.03888).

    For a parameter p with gradient g and weight decay w the step direction is
    ``lars * (g + w p)`` with ``lars = eta * ||p|| / (||g|| + w ||p|| + eps)``, optionally clipped
    to ``min(lars / lr, 1)``, followed by heavy-ball momentum.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 1e-3,
        eps: float = 1e-8,
        clip_lr: bool = False,
        exclude_bias_n_norm: bool = False,
    ):
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise UserError(
                f"LARS needs lr, momentum, weight_decay >= 0 and eta > 0; got "
                f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}, eta={eta}"
            )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            eta=eta,
            eps=eps,
            clip_lr=clip_lr,
            exclude_bias_n_norm=exclude_bias_n_norm,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                adapt = p.ndim != 1 or not group["exclude_bias_n_norm"]
                if adapt:
                    d_p = self._adapted(p, d_p, group)
                buf = self.state[p].get("momentum_buffer")
                if group["momentum"] != 0:
                    if buf is None:
                        buf = self.state[p]["momentum_buffer"] = d_p.clone().detach()
                    else:
                        buf.mul_(group["momentum"]).add_(d_p)
                    d_p = buf
                p.add_(d_p, alpha=-group["lr"])
        return loss

    @staticmethod
    def _adapted(p: torch.Tensor, d_p: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        """The layer-wise scaled step, or ``d_p`` unchanged where a norm is 0.

        The choice is a ``torch.where`` on the device, not a Python ``if`` on a tensor, so the
        step never waits for the GPU (a Python branch would read both norms back every layer).
        """
        p_norm, g_norm = torch.norm(p), torch.norm(d_p)
        wd = group["weight_decay"]
        rate = group["eta"] * p_norm / (g_norm + p_norm * wd + group["eps"])
        if group["clip_lr"]:
            rate = torch.clamp(rate / group["lr"], max=1.0)
        return torch.where((p_norm != 0) & (g_norm != 0), (d_p + wd * p) * rate, d_p)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "lars": LARS,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


# The optimizers torch ships a fused (single-kernel) CUDA step for; LARS is ours and stays as is.
FUSED_OPTIMIZERS = frozenset({"sgd", "adam", "adamw"})


def wants_fused(name: str, device_types: set[str], kwargs: dict[str, Any]) -> bool:
    """Whether optimizer ``name`` should run torch's fused CUDA step.

    Fused steps exist only on the GPU and only for torch's own optimizers, so a run with any
    parameter off CUDA (the CPU tests, the demo) keeps the default step. A config that sets
    ``optimizer.kwargs.fused`` or ``foreach`` itself decides.

    Args:
        name: ``optimizer.name``.
        device_types: the device types of every parameter (``{"cuda"}`` on one GPU).
        kwargs: ``optimizer.kwargs`` as resolved.
    """
    chosen = "fused" in kwargs or "foreach" in kwargs
    return name in FUSED_OPTIMIZERS and device_types == {"cuda"} and not chosen


# solo-learn's defaults for ``optimizer.kwargs`` per optimizer (its ``solo/args/pretrain.py``
# fills them after reading the config): a key the config leaves out gets this value, so the
# stored config says what really ran. Adam has none.
OPTIMIZER_KWARGS_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.9},
    "lars": {"momentum": 0.9, "eta": 1e-3, "clip_lr": False, "exclude_bias_n_norm": False},
    "adamw": {"betas": [0.9, 0.999]},
}


def optimizer_kwargs_defaults(name: str) -> dict[str, Any]:
    """The dotted config keys (``optimizer.kwargs.<key>``) and defaults for optimizer ``name``.

    Args:
        name: ``optimizer.name``; names without defaults (or unknown ones) give ``{}``.

    Returns:
        ``{"optimizer.kwargs.momentum": 0.9, ...}``, ready for ``fill_defaults``.
    """
    defaults = OPTIMIZER_KWARGS_DEFAULTS.get(name, {})
    return {f"optimizer.kwargs.{key}": value for key, value in defaults.items()}


@dataclass(frozen=True)
class OptimizerSettings:
    """The optimizer as it will really run: learning rates are already scaled."""

    name: str
    lr: float
    classifier_lr: float
    weight_decay: float
    exclude_bias_n_norm_wd: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SchedulerSettings:
    """The LR schedule in optimizer steps (warmup already converted from epochs)."""

    name: str
    total_steps: int
    warmup_steps: int
    warmup_start_lr: float
    min_lr: float
    lr_decay_steps: tuple[int, ...] = ()


def split_weight_decay(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put biases and norm parameters (1-d tensors) of each group in a twin group without decay."""
    out: list[dict[str, Any]] = []
    for group in groups:
        params = list(group["params"])
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        out.append({**group, "params": decay})
        if no_decay:
            out.append(
                {
                    **group,
                    "name": f"{group.get('name', 'group')}_no_wd",
                    "params": no_decay,
                    "weight_decay": 0.0,
                }
            )
    return out


def _param_list(params: Any) -> list[torch.Tensor]:
    """A group's ``params`` (a tensor, a list or a generator) as a list that can be read twice."""
    return [params] if isinstance(params, torch.Tensor) else list(params)


def build_optimizer(
    groups: list[dict[str, Any]], settings: OptimizerSettings
) -> torch.optim.Optimizer:
    """Create the optimizer named in the settings over solo-learn-style parameter groups.

    SGD, Adam and AdamW over parameters that all live on CUDA get ``fused=True``
    (:func:`wants_fused`); elsewhere the step is torch's default.
    """
    if settings.name not in OPTIMIZERS:
        raise UserError(
            f"unknown optimizer.name {settings.name!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    if settings.exclude_bias_n_norm_wd:
        groups = split_weight_decay(groups)
    groups = [{**g, "params": _param_list(g["params"])} for g in groups]
    static = [bool(g.pop("static_lr", False)) for g in groups]
    kwargs = dict(settings.kwargs)
    device_types = {p.device.type for g in groups for p in g["params"]}
    if wants_fused(settings.name, device_types, kwargs):
        kwargs["fused"] = True
    optimizer = OPTIMIZERS[settings.name](
        groups, lr=settings.lr, weight_decay=settings.weight_decay, **kwargs
    )
    for group, is_static in zip(optimizer.param_groups, static, strict=True):
        group["static_lr"] = is_static
    return optimizer


def _lr_factor(step: int, base: float, settings: SchedulerSettings) -> float:
    lr = warmup_cosine(
        step,
        settings.total_steps,
        settings.warmup_steps,
        base,
        settings.warmup_start_lr,
        settings.min_lr,
    )
    return lr / base if base else 0.0


def _step_factor(step: int, milestones: tuple[int, ...], gamma: float = 0.1) -> float:
    return gamma ** sum(step >= m for m in milestones)


def build_scheduler(
    optimizer: torch.optim.Optimizer, settings: SchedulerSettings
) -> LambdaLR | None:
    """A per-step LambdaLR: each group follows the schedule from its own base rate.

    Groups marked ``static_lr`` keep their rate. ``warmup_cosine`` warms every group up from the
    same ``warmup_start_lr`` and decays to the same ``min_lr``, as solo-learn does.
    """
    if settings.name == "none":
        return None
    lambdas: list[Callable[[int], float]] = []
    for group in optimizer.param_groups:
        if group.get("static_lr"):
            lambdas.append(lambda _step: 1.0)
        elif settings.name == "warmup_cosine":
            lambdas.append(partial(_lr_factor, base=group["lr"], settings=settings))
        elif settings.name == "step":
            lambdas.append(partial(_step_factor, milestones=settings.lr_decay_steps))
        else:
            raise UserError(
                f"unknown scheduler.name {settings.name!r}; choose warmup_cosine, step or none"
            )
    return LambdaLR(optimizer, lambdas)
