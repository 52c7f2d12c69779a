# SPDX-License-Identifier: MIT
"""The per-device batch of a config: solo-learn's ``batch_size``, or a recipe's global batch split.

Arithmetic on the config, free of torch and Lightning, so a sweep can plan its cells without
them.
"""

from __future__ import annotations

from omegaconf import DictConfig

from solo_diversity.errors import UserError


def per_device_batch(cfg: DictConfig, world_size: int) -> int:
    """The per-device batch: ``optimizer.batch_size``, or from ``optimizer.global_batch_size``.

    solo-learn counts the batch per device, so its global batch, LR and step count change with
    the device count. A recipe that states ``optimizer.global_batch_size`` (and leaves
    ``batch_size`` null) keeps its source's global batch on any number of processes: the
    per-device batch is ``global / (world size * accumulate_grad_batches)``. An explicit
    ``optimizer.batch_size`` keeps solo-learn's meaning and wins.

    Args:
        cfg: the run's config.
        world_size: processes in total (devices * num_nodes).
    """
    batch = cfg.optimizer.get("batch_size")
    wanted = cfg.optimizer.get("global_batch_size")
    if batch is not None:
        return int(batch)
    if wanted is None:
        raise UserError("set optimizer.batch_size (per device) or optimizer.global_batch_size")
    accumulate = int(cfg.get("accumulate_grad_batches") or 1)
    share = world_size * accumulate
    if int(wanted) % share:
        raise UserError(
            f"optimizer.global_batch_size={wanted} does not split over {world_size} process(es) x "
            f"accumulate_grad_batches {accumulate}; choose devices/num_nodes/accumulate that "
            "divide it"
        )
    return int(wanted) // share
