# SPDX-License-Identifier: MIT
"""What the pretraining benchmark trains: its presets, and the model alone (the ``bare`` row).

A :class:`Preset` is the configuration every row of ``scripts/bench_pretrain.sh`` composes on top
of ``simclr_div``: ``cifar`` (ResNet-18 with the CIFAR stem, 32 px, the default) and
``mini_paper`` (the mini paper's ``data=fashion_mnist`` group: ``small_cnn``, 28 px crops of
scale 0.2, bf16-mixed, the batch augment backend). :func:`time_bare` measures the ceiling the
end-to-end rows are held against: the forward, loss, backward and optimizer step of the very
method object a run builds, on fixed random crops, with no Lightning, loader or augmentation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg
from solo_diversity.methods import get_method
from solo_diversity.methods.base import BaseMethod
from solo_diversity.methods.losses import simclr_loss
from solo_diversity.methods.simclr import SimCLR


@dataclass(frozen=True)
class Preset:
    """One benchmark configuration.

    Attributes:
        name: the ``--preset`` value.
        model: what the table title calls the trained model.
        overrides: Hydra overrides on ``simclr_div`` (data group, backbone, precision, ...).
        size: side of the synthetic corpus's images, px.
        backend: ``data.augment_backend`` of the rows that do not pick one (``a``, ``dali``,
            ``bare``).
        rows: the rows run when ``--rows`` is not given.

    """

    name: str
    model: str
    overrides: tuple[str, ...]
    size: int
    backend: str
    rows: tuple[str, ...]


PRESETS: dict[str, Preset] = {
    "cifar": Preset(
        "cifar",
        "SimCLR, resnet18 (CIFAR stem), 2 x 32 px crops, cifar symmetric preset",
        (
            "data=cifar100",  # the CIFAR group: 32 px, solo-learn's crop scale
            "data.crop_size=32",
            "augmentations=cifar_symmetric",
            "backbone.name=resnet18",
            "++backbone.small_input_stem=true",  # solo-learn's CIFAR stem (our dataset is new)
        ),
        size=32,
        backend="torchvision",
        rows=("a", "torchvision", "fast", "batch", "dali", "dali_gpu", "bare"),
    ),
    "mini_paper": Preset(
        "mini_paper",
        "SimCLR, small_cnn, 2 x 28 px crops (scale 0.2), bf16-mixed, channels_last",
        (
            "data=fashion_mnist",  # small_cnn, 28 px crops, crop_min_scale 0.2
            "precision=bf16-mixed",
            "++budget.epoch_keys=reference",
        ),
        size=28,
        backend="batch",
        rows=("batch", "bare"),
    ),
}


@dataclass(frozen=True)
class BareTiming:
    """The bare row's figures: source images/s and ms per step (mean, median, process CPU)."""

    images_per_s: float
    ms_per_step: float
    median_ms_per_step: float
    main_cpu_ms_per_step: float


def bare_model(
    cfg: DictConfig, num_images: int, num_classes: int = 10
) -> tuple[BaseMethod, DictConfig]:
    """The method object :func:`~solo_diversity.run.pretrain.run_pretrain` would train on the whole
    corpus (resolved config, budget plan attached, channels_last when the settings say so), and
    that resolved config.
    """
    cfg = resolve_pretrain_cfg(cfg)
    cfg, _ = attach_plan(
        cfg,
        dataset_size=num_images,
        subset_size=num_images,
        num_classes=num_classes,
        world_size=1,
    )
    torch.manual_seed(int(cfg.seed))  # the run seeds before it builds the model
    model = get_method(str(cfg.method))(cfg)
    if model.settings.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model, cfg


def autocast_dtype(precision: str, device_type: str) -> torch.dtype | None:
    """The autocast dtype Lightning trains ``precision`` with on ``device_type`` (None: fp32).

    ``16-mixed`` is GPU-only: the run falls back to ``32-true`` on the CPU, and so does this.
    """
    if precision == "bf16-mixed":
        return torch.bfloat16
    if precision in ("16", "16-mixed") and device_type == "cuda":
        return torch.float16
    return None


@contextlib.contextmanager
def _autocast(dtype: torch.dtype | None, device_type: str) -> Iterator[None]:
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type, dtype=dtype):
            yield


def time_bare(
    cfg: DictConfig, *, num_images: int, warmup: int, steps: int, device: str = "cpu"
) -> BareTiming:
    """Time the bare SimCLR step of ``cfg``'s model: ``warmup`` untimed steps, then ``steps``.

    One step: each of 2 fixed random views (batch, 3, crop, crop) goes through
    ``projector(backbone(view))`` under the run's autocast, then NT-Xent
    (:func:`~solo_diversity.methods.losses.simclr_loss`) with the model's temperature, zero_grad,
    backward and the step of the optimizer from ``configure_optimizers()``.

    Args:
        cfg: the composed ``simclr_div`` config the run would train.
        num_images: corpus size (the budget plan's dataset size).
        warmup: untimed first steps (>= 1).
        steps: timed steps (>= 1).
        device: ``cpu`` or ``cuda``.

    Returns:
        Source images (batch per step) per second, and ms per timed step: the mean, the median
        and the process's CPU time (all threads).

    """
    model, cfg = bare_model(cfg, num_images)
    if not isinstance(model, SimCLR):
        raise TypeError(f"the bare step is SimCLR's; method={cfg.method} is not")
    model = model.to(device)
    channels_last = model.settings.channels_last
    optimizer = _optimizer(model.configure_optimizers())
    batch, crop = int(cfg.optimizer.batch_size), int(cfg.data.crop_size)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    views = [torch.randn(batch, 3, crop, crop, generator=generator) for _ in range(2)]
    memory = torch.channels_last if channels_last else torch.contiguous_format
    views = [v.to(device).contiguous(memory_format=memory) for v in views]
    indexes = torch.arange(batch, device=device).repeat(2)
    dtype = autocast_dtype(str(cfg.precision), torch.device(device).type)
    model.train()

    def step() -> None:
        with _autocast(dtype, torch.device(device).type):
            z = torch.cat([model.projector(model.backbone(v)) for v in views])
            loss = simclr_loss(z, indexes, model.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    ends = [_now(device)]
    cpu_start = time.process_time()
    for _ in range(steps):
        step()
        ends.append(_now(device))
    seconds, cpu = ends[-1] - ends[0], time.process_time() - cpu_start
    return BareTiming(
        images_per_s=steps * batch / seconds,
        ms_per_step=1000.0 * seconds / steps,
        median_ms_per_step=1000.0 * float(np.median(np.diff(ends))),
        main_cpu_ms_per_step=1000.0 * cpu / steps,
    )


def _now(device: str) -> float:
    """``perf_counter`` after the device's queued work is done."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _optimizer(configured: object) -> torch.optim.Optimizer:
    """The optimizer out of ``configure_optimizers()``: alone, or ``([optimizer], [scheduler])``."""
    if isinstance(configured, torch.optim.Optimizer):
        return configured
    optimizers = configured[0] if isinstance(configured, (list, tuple)) else None
    if isinstance(optimizers, list) and isinstance(optimizers[0], torch.optim.Optimizer):
        return optimizers[0]
    raise TypeError(f"unexpected configure_optimizers() result: {type(configured).__name__}")
