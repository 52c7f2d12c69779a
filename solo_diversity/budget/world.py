# SPDX-License-Identifier: MIT
"""The world size of a run, known before the budget plan, and checked again when training starts.

G = per-device batch x processes x accumulation must be the number of images Lightning really
processes per optimizer step. ``devices: auto``, ``-1``, ``[0, 1]`` or ``"0,1"`` and ``num_nodes``
are therefore resolved by Lightning's own accelerator connector (the code the Trainer runs), not
re-derived here: :func:`resolve_world` returns the processes per node and in total. At fit time,
:class:`~solo_diversity.run.callbacks.GlobalBatchCheck` checks the plan's G again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.strategies import ParallelStrategy
from lightning.pytorch.trainer.connectors.accelerator_connector import _AcceleratorConnector

from solo_diversity.errors import UserError


@dataclass(frozen=True)
class World:
    """How many processes a run trains on.

    Attributes:
        devices: processes (devices) per node.
        num_nodes: nodes.
    """

    devices: int
    num_nodes: int

    @property
    def size(self) -> int:
        """Processes in total: devices x num_nodes."""
        return self.devices * self.num_nodes


def _container(value: Any) -> Any:
    """A list for any sequence of devices (hydra hands over its own list type), else ``value``."""
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


def cpu_devices(devices: Any) -> Any:
    """solo-learn writes ``devices`` as a GPU list; on the CPU a list (or "0,1") is its length."""
    devices = _container(devices)
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    return devices


def resolve_world(
    accelerator: str, devices: Any, num_nodes: int = 1, strategy: Any = "auto"
) -> World:
    """Processes per node and nodes, exactly as Lightning's Trainer will resolve them.

    Args:
        accelerator: ``cpu``, ``gpu``, ``cuda``, ``auto``, ...
        devices: Lightning's ``devices``: an int, ``-1`` (all), ``"auto"``, a list or ``"0,1"``.
        num_nodes: Lightning's ``num_nodes``.
        strategy: Lightning's ``strategy`` (``None`` and ``"none"`` mean ``"auto"``).

    Returns:
        The :class:`World`.

    Raises:
        UserError: when Lightning rejects the combination (one line naming the values).
    """
    strategy = "auto" if strategy in (None, "none") else strategy
    devices = _container(devices)
    if devices is None:
        devices = "auto"
    if accelerator == "auto":
        accelerator = _AcceleratorConnector._choose_auto_accelerator()  # Lightning's own choice
    if accelerator == "cpu":
        devices = cpu_devices(devices)
        if devices == -1:
            raise UserError(
                "devices=-1 means every GPU; on the CPU give a process count > 0 (or auto = 1)"
            )
    try:
        connector = _AcceleratorConnector(
            devices=devices, num_nodes=int(num_nodes), accelerator=accelerator, strategy=strategy
        )
    except (MisconfigurationException, TypeError, ValueError, RuntimeError) as err:
        first = " ".join(str(err).split())
        raise UserError(
            f"Lightning rejects accelerator={accelerator} devices={devices!r} "
            f"num_nodes={num_nodes} strategy={strategy}: {first}"
        ) from None
    run = connector.strategy
    if isinstance(run, ParallelStrategy):
        # What DDP/FSDP set as the world size when they start: num_nodes * num_processes.
        nodes = int(getattr(run, "num_nodes", 1))
        return World(devices=len(run.parallel_devices or []), num_nodes=nodes)
    return World(devices=1, num_nodes=1)


def sync_batchnorm_for(requested: bool, accelerator: str, world_size: int) -> bool:
    """Whether Lightning should convert BatchNorm to SyncBatchNorm for this machine.

    One process computes the same statistics with plain BatchNorm, and torch's SyncBatchNorm runs
    on GPUs only, while every solo-learn YAML asks for it: a CPU run falls back with a warning.

    Args:
        requested: the config's ``sync_batchnorm``.
        accelerator: the resolved accelerator (``cpu``, ``gpu``, ...).
        world_size: processes in total.
    """
    if not requested or world_size == 1:
        return False
    if accelerator == "cpu":
        logging.getLogger(__name__).warning(
            "sync_batchnorm=True is GPU-only; using plain BatchNorm on the CPU"
        )
        return False
    return True
