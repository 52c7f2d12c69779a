# SPDX-License-Identifier: MIT
"""The offline kNN config (``main_knn.py``), resolved once into a :class:`KnnConfig`.

solo-learn's ``main_knn.py`` keys: ``pretrained_checkpoint_dir`` (a run folder or a ``.ckpt``),
the swept lists ``k``, ``temperature``, ``distance_function`` and ``feature_type``, and the data
keys that override the pretraining run's (``dataset``, ``train_data_path``, ``val_data_path``,
``data_format``, ``num_workers``), plus ``batch_size``, ``dali.device`` and ``results``. The
command has no accelerator key: its machine is ``auto`` (the GPU when one is visible), decided by
:func:`~solo_diversity.config.run_config.decide_accelerator` as for every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from solo_diversity.config.run_config import Hardware, decide_accelerator
from solo_diversity.errors import UserError
from solo_diversity.methods.knn import FEATURE_TYPES, check_distance

# The command's data keys and the run's (``args.json``) keys they override.
KNN_DATA_KEYS = (
    ("dataset", "dataset"),
    ("train_data_path", "train_path"),
    ("val_data_path", "val_path"),
    ("data_format", "format"),
)


@dataclass(frozen=True)
class Sweep:
    """The lists a kNN sweep runs over, checked."""

    ks: list[int]
    temperatures: list[float]
    distances: list[str]
    feature_types: list[str]

    def settings(self, ftype: str) -> Iterator[tuple[int, str, float | None]]:
        """(k, distance, temperature) for one feature type; temperatures for cosine only."""
        for k in self.ks:
            for distance in self.distances:
                for temperature in self.temperatures if distance == "cosine" else [None]:
                    yield k, distance, temperature


@dataclass(frozen=True)
class KnnConfig:
    """One kNN sweep of one checkpoint, resolved (see the module docstring).

    Attributes:
        checkpoint: the ``.ckpt`` file probed.
        sweep: the checked lists.
        data: the command's data keys that are set, under the run's names (``train_path``, ...).
        batch_size: images per forward pass.
        num_workers: loader processes; None: the run's ``data.num_workers``.
        dali_device: the command's own ``dali.device`` (``auto`` when unset).
        hardware: the machine the features are computed on (one device, 32-bit).
        results: the JSON-lines file the records are appended to.
    """

    checkpoint: Path
    sweep: Sweep
    data: dict[str, Any]
    batch_size: int
    num_workers: int | None
    dali_device: str
    hardware: Hardware
    results: Path


def find_checkpoint(path: str | None) -> Path:
    """The checkpoint named by ``pretrained_checkpoint_dir``: a ``.ckpt`` file or a run folder.

    In a folder the newest ``.ckpt`` is taken (upstream takes whichever ``os.listdir`` lists first).

    Raises:
        UserError: unset, missing, or a folder without checkpoints.
    """
    if not path:
        raise UserError("set pretrained_checkpoint_dir=<run folder or .ckpt file>")
    found = Path(str(path))
    if found.is_dir():
        ckpts = sorted(found.glob("*.ckpt"), key=lambda p: (p.stat().st_mtime, p.name))
        if not ckpts:
            raise UserError(f"pretrained_checkpoint_dir={found} holds no .ckpt file")
        return ckpts[-1]
    if not found.is_file():
        raise UserError(f"pretrained_checkpoint_dir={found} does not exist")
    return found


def as_list(value: Any, key: str, cast: Callable[[Any], Any]) -> list[Any]:
    """A scalar or list config value as a non-empty list of ``cast`` values."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    items = value if isinstance(value, list | tuple) else [value]
    if not items or any(v is None for v in items):
        raise UserError(f"{key} must be a value or a non-empty list, got {value!r}")
    try:
        return [cast(v) for v in items]
    except (TypeError, ValueError):
        raise UserError(f"{key}={value!r} is not a list of {cast.__name__}") from None


def read_sweep(cfg: DictConfig) -> Sweep:
    """``k``, ``temperature``, ``distance_function`` and ``feature_type`` as checked lists."""
    ks = as_list(cfg.k, "k", int)
    temperatures = as_list(cfg.temperature, "temperature", float)
    distances = [
        check_distance(d) for d in as_list(cfg.distance_function, "distance_function", str)
    ]
    feature_types = as_list(cfg.feature_type, "feature_type", str)
    for ftype in feature_types:
        if ftype not in FEATURE_TYPES:
            raise UserError(
                f"feature_type {ftype!r} is unknown; choose one of {', '.join(FEATURE_TYPES)}"
            )
    if any(k < 1 for k in ks) or any(t <= 0 for t in temperatures):
        raise UserError(f"k={ks} must be >= 1 and temperature={temperatures} > 0")
    return Sweep(ks, temperatures, distances, feature_types)


def knn_hardware() -> Hardware:
    """The kNN command's machine: ``auto`` on one device, full precision (it trains nothing)."""
    return Hardware(
        accelerator=decide_accelerator("auto", ""),
        devices=1,
        num_nodes=1,
        world_size=1,
        precision="32-true",
        strategy="auto",
        sync_batchnorm=False,
    )


def resolve_knn(cfg: DictConfig) -> KnnConfig:
    """Resolve a ``main_knn.py`` config once; the checkpoint is found, the lists checked.

    Raises:
        UserError: no checkpoint there, or a bad ``k``, ``temperature``, distance or feature type.
    """
    checkpoint = find_checkpoint(cfg.get("pretrained_checkpoint_dir"))
    sweep = read_sweep(cfg)
    workers = cfg.get("num_workers")
    return KnnConfig(
        checkpoint=checkpoint,
        sweep=sweep,
        data={theirs: cfg.get(ours) for ours, theirs in KNN_DATA_KEYS if cfg.get(ours) is not None},
        batch_size=int(cfg.batch_size),
        num_workers=None if workers is None else int(workers),
        dali_device=str(OmegaConf.select(cfg, "dali.device", default=None) or "auto"),
        hardware=knn_hardware(),
        results=Path(str(cfg.results)),
    )
