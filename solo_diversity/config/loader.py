# SPDX-License-Identifier: MIT
"""How a pretraining run's images are loaded, resolved once from its config.

The ``augmentations`` list, the batch and worker keys, ``data.augment_backend``,
``data.batch_augment_on``, ``data.in_memory`` and the ``dali`` group are read and checked here,
with the machine the run trains on (``auto`` places follow it), so that the datamodule is built
from typed values and a bad key is one line before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from solo_diversity.data import check_backend, parse_augmentations, resolve_device
from solo_diversity.data.batch.pixels import in_memory_mode
from solo_diversity.errors import UserError

if TYPE_CHECKING:
    from solo_diversity.config.run_config import Hardware
    from solo_diversity.data import AugmentationSpec

BATCH_AUGMENT_PLACES = ("auto", "workers", "device")


@dataclass(frozen=True)
class LoaderSettings:
    """The training loader of a run.

    Attributes:
        specs: the ``augmentations`` list, parsed.
        batch_size: ``optimizer.batch_size``, per device (the budget plan's split).
        num_workers: ``data.num_workers``.
        seed: ``seed``.
        accumulate: ``accumulate_grad_batches``.
        max_bad_fraction: ``data.max_bad_fraction``.
        min_steps_per_epoch: ``data.min_steps_per_epoch``.
        backend: ``dali`` under ``data.format=dali``, else ``data.augment_backend`` (checked).
        augment_on_device: the ``batch`` backend augments on the GPU (``data.batch_augment_on``).
        in_memory: ``data.in_memory`` of the per-image backends (``fast``, ``torchvision``).
        dali_device: ``dali.device`` decided for the machine (``cpu`` or ``gpu``; DALI only).
        dali_threads: ``dali.num_threads``.
        debug: ``debug_augmentations`` (print the transforms, as solo-learn does).
        augmentations_text: the ``augmentations`` list as the config prints it.
    """

    specs: tuple[AugmentationSpec, ...]
    batch_size: int
    num_workers: int
    seed: int
    accumulate: int
    max_bad_fraction: float
    min_steps_per_epoch: int
    backend: str
    augment_on_device: bool
    in_memory: str
    dali_device: str
    dali_threads: int
    debug: bool
    augmentations_text: str


def dali_device(cfg: DictConfig, hardware: Hardware) -> str:
    """``dali.device``: ``auto`` decodes on the GPU when the run trains on one, else on the CPU."""
    return resolve_device(str(cfg.dali.device), on_gpu=hardware.on_gpu)


def batch_augment_on_device(cfg: DictConfig, hardware: Hardware) -> bool:
    """``data.batch_augment_on``: ``auto`` augments on the GPU when the run trains on one (after
    the transfer), else in the DataLoader workers; ``workers`` or ``device`` force one place.
    """
    place = str(cfg.data.batch_augment_on)
    if place not in BATCH_AUGMENT_PLACES:
        raise UserError(
            f"unknown data.batch_augment_on {place!r}; valid: {', '.join(BATCH_AUGMENT_PLACES)}"
        )
    if place == "auto":
        return hardware.on_gpu
    return place == "device"


def loader_settings(cfg: DictConfig, hardware: Hardware) -> LoaderSettings:
    """The run's :class:`LoaderSettings`; only the keys of the chosen backend are read.

    Args:
        cfg: a config with the budget plan attached (its per-device ``optimizer.batch_size``).
        hardware: the machine the run trains on.

    Raises:
        UserError: an unknown backend, place, in-memory mode or DALI device.
    """
    dali = str(cfg.data.format) == "dali"
    backend = "dali" if dali else check_backend(str(cfg.data.augment_backend))
    return LoaderSettings(
        specs=tuple(parse_augmentations(OmegaConf.to_container(cfg.augmentations, resolve=True))),
        batch_size=int(cfg.optimizer.batch_size),
        num_workers=int(cfg.data.num_workers),
        seed=int(cfg.seed),
        accumulate=int(cfg.accumulate_grad_batches),
        max_bad_fraction=float(cfg.data.max_bad_fraction),
        min_steps_per_epoch=int(cfg.data.min_steps_per_epoch),
        backend=backend,
        augment_on_device=backend == "batch" and batch_augment_on_device(cfg, hardware),
        in_memory=in_memory_mode(cfg.data.in_memory) if backend in ("fast", "torchvision") else "",
        dali_device=dali_device(cfg, hardware) if dali else "cpu",
        dali_threads=int(cfg.dali.num_threads),
        debug=bool(cfg.debug_augmentations),
        augmentations_text=str(cfg.augmentations),
    )
