# SPDX-License-Identifier: MIT
"""The callback that counts every subset entry's visits (:class:`VisitLedger`).

What the counts prove, and the layout of ``visits.npz``, are :mod:`~solo_diversity.run.visits`'s.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from solo_diversity.data.datamodule import batches_in_flight
from solo_diversity.run.substitution import unreadable_entries
from solo_diversity.run.visits import (
    count_dtype,
    entries_on_device,
    sampler_replay,
    visit_proof,
)

log = logging.getLogger(__name__)


class VisitLedger(pl.Callback):
    """Count the visits of every subset entry, in the checkpoint and in ``visits.npz``.

    The subset comes from the trainer's data module (``datamodule.subset``) at setup. The counts
    of this process live on the device of the batches' ``indexes`` and are updated there, so a
    training step never waits for the device; they come to the host only when they are saved
    (a checkpoint, the end of training, :meth:`proof`).

    Args:
        npz_path: where rank 0 writes the counts at the end of training; None to skip.

    """

    def __init__(self, npz_path: str | Path | None = None) -> None:
        self.npz_path = Path(npz_path) if npz_path else None
        self.positions = np.zeros(0, dtype=np.int64)
        self.resumed = np.zeros(0, dtype=np.int64)  # global counts restored from a checkpoint
        self.resumed_outside = 0
        self._set_positions(self.positions)
        self._trainer: pl.Trainer | None = None

    def _set_positions(self, positions: np.ndarray) -> None:
        """Zero this process's counters and build the device-side lookup of ``positions``."""
        order = np.argsort(positions, kind="stable")
        self._sorted = torch.from_numpy(positions[order])
        self._order = torch.from_numpy(order.astype(np.int64))
        # This rank's counts since start or resume: N entries, then the visits outside the subset.
        self._local = torch.zeros(len(positions) + 1, dtype=torch.int64)
        self._last = torch.zeros(0, dtype=torch.int64)  # the entries of the last batch started

    @property
    def state_key(self) -> str:
        return "VisitLedger"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer
        subset = trainer.datamodule.subset  # type: ignore[attr-defined]
        self.positions = np.asarray(subset.positions, dtype=np.int64)
        if len(self.resumed) != len(self.positions):
            self.resumed = np.zeros(len(self.positions), dtype=np.int64)
        self._set_positions(self.positions)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        visited = batch[0].detach()
        if visited.device != self._local.device:  # once: the counters follow the batches
            device = visited.device
            self._sorted, self._order = self._sorted.to(device), self._order.to(device)
            self._local = self._local.to(device)
        self._last = entries_on_device(self._sorted, self._order, visited)
        self._local.index_add_(0, self._last, torch.ones_like(self._last))

    def _in_flight(self) -> bool:
        """Whether the last batch started has not finished its training step."""
        return self._trainer is not None and batches_in_flight(self._trainer) > 0

    def _global(self) -> tuple[np.ndarray, int]:
        """The counts over all ranks and resumes on the host: the one sync of this ledger."""
        trainer = self._trainer
        # A new tensor either way: the reduction below sums in place, and the counters go on.
        local = self._local.clone()
        if self._in_flight():
            local.index_add_(0, self._last, torch.full_like(self._last, -1))
        if trainer is not None and trainer.world_size > 1:
            local = trainer.strategy.reduce(  # type: ignore[assignment]
                local.to(trainer.strategy.root_device), reduce_op="sum"
            )
        host = local.cpu().numpy().astype(np.int64)
        return self.resumed + host[:-1], self.resumed_outside + int(host[-1])

    def counts(self) -> tuple[np.ndarray, int]:
        """``(counts (N,) int64, outside)`` over all ranks and resumes (a collective in DDP)."""
        return self._global()

    def state_dict(self) -> dict[str, Any]:
        counts, outside = self._global()
        dtype = count_dtype(int(counts.max()) if len(counts) else 0)
        # A tensor, not an array: Lightning loads checkpoints with weights_only=True.
        return {"counts": torch.from_numpy(counts.astype(dtype)), "outside": outside}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.resumed = state_dict["counts"].numpy().astype(np.int64)
        self.resumed_outside = int(state_dict["outside"])

    def proof(self, trainer: pl.Trainer) -> dict[str, Any]:
        """:func:`visit_proof` of the counts so far (a collective in DDP: call on every rank).

        G and the seed are the training sampler's (``datamodule.sampler``), the steps are
        ``trainer.global_step``, the unreadable entries those that
        :func:`~solo_diversity.run.substitution.unreadable_entries` confirms.
        """
        return self._prove(trainer, *self._global())[0]

    @staticmethod
    def _prove(
        trainer: pl.Trainer, counts: np.ndarray, outside: int
    ) -> tuple[dict[str, Any], np.ndarray]:
        """The proof and the (N,) bool unreadable entries it assumed."""
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        shape = {
            "global_batch": int(datamodule.sampler.global_batch),
            "steps": int(trainer.global_step),
            "seed": int(datamodule.sampler.seed),
        }
        unvisited = bool((counts == 0).any())  # an unreadable entry is never visited
        planned = sampler_replay(len(counts), **shape) if unvisited else None
        unreadable = unreadable_entries(datamodule.subset, counts, planned)
        return visit_proof(counts, outside, unreadable=unreadable, **shape), unreadable

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        counts, outside = self._global()
        if trainer.is_global_zero and self.npz_path is not None:
            self.npz_path.parent.mkdir(parents=True, exist_ok=True)
            dtype = count_dtype(int(counts.max()) if len(counts) else 0)
            proof, unreadable = self._prove(trainer, counts, outside)
            np.savez_compressed(
                self.npz_path,
                counts=counts.astype(dtype),
                positions=self.positions,
                outside=np.int64(outside),
                unreadable=self.positions[unreadable],
            )
            self.npz_path.with_suffix(".json").write_text(json.dumps(proof, indent=2) + "\n")
            if not proof["visits_ok"]:
                log.warning("the visit proof failed: %s", "; ".join(proof["problems"]))


def trainer_visit_proof(trainer: pl.Trainer) -> dict[str, Any] | None:
    """The :meth:`VisitLedger.proof` of ``trainer``'s visit ledger, None without one.

    A collective in DDP: call it on every rank.
    """
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, VisitLedger):
            return callback.proof(trainer)
    return None
