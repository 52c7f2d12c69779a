# SPDX-License-Identifier: MIT
"""Per-image visit counts: which images of the subset a run trained on, and how often.

This module owns the second half of the budget ledger: :class:`VisitLedger` counts, for every
subset entry, the training batches' ``indexes`` (index positions) whose training step finished
(a batch still in flight when a checkpoint is written is left out, as the resumable loader leaves
it out of its position), summed over ranks. The counts travel in every checkpoint (so a resumed run
continues them) and are written at the end as ``visits.npz`` beside the checkpoints: ``counts``
(N,) in the subset's entry order, ``positions`` (N,) the index positions of those entries, and
``outside`` the number of visits to positions that are not in the subset (0 for a correct run).
:func:`visit_summary` turns counts into what the ledger proves: every image seen floor(E) or
ceil(E) times (up to dropped tails).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from solo_diversity.data.datamodule import batches_in_flight


def count_dtype(max_visits: int) -> np.dtype:
    """The smallest unsigned dtype that holds ``max_visits`` (uint8, uint16 or uint32)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_visits <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def entry_of(positions: np.ndarray, visited: np.ndarray) -> tuple[np.ndarray, int]:
    """Subset entries of visited index positions, and how many visits fall outside the subset.

    Args:
        positions: (N,) index positions of the subset's entries (any order, distinct).
        visited: (B,) index positions taken from a batch's ``indexes``.

    Returns:
        ``(entries (B',), outside)``: the entries of the visits inside the subset and the count
        of the others.

    """
    order = np.argsort(positions, kind="stable")
    sorted_positions = positions[order]
    slot = np.searchsorted(sorted_positions, visited)
    slot = np.minimum(slot, len(sorted_positions) - 1)
    inside = sorted_positions[slot] == visited
    return order[slot[inside]], int((~inside).sum())


def visit_summary(counts: np.ndarray, outside: int) -> dict[str, Any]:
    """``{min, max, images_seen, unseen, outside, histogram {visits: images}}`` of visit counts."""
    values, images = np.unique(counts, return_counts=True)
    return {
        "min": int(counts.min()) if len(counts) else 0,
        "max": int(counts.max()) if len(counts) else 0,
        "images_seen": int(counts.sum()),
        "unseen": int((counts == 0).sum()),
        "outside": int(outside),
        "histogram": {str(int(v)): int(n) for v, n in zip(values, images, strict=True)},
    }


class VisitLedger(pl.Callback):
    """Count the visits of every subset entry, in the checkpoint and in ``visits.npz``.

    The subset comes from the trainer's data module (``datamodule.subset``) at setup.

    Args:
        npz_path: where rank 0 writes the counts at the end of training; None to skip.

    """

    def __init__(self, npz_path: str | Path | None = None) -> None:
        self.npz_path = Path(npz_path) if npz_path else None
        self.positions = np.zeros(0, dtype=np.int64)
        self.resumed = np.zeros(0, dtype=np.int64)  # global counts restored from a checkpoint
        self.local = np.zeros(0, dtype=np.int64)  # this rank's counts since start or resume
        self.resumed_outside = 0
        self.local_outside = 0
        self._last: tuple[np.ndarray, int] = (np.zeros(0, dtype=np.int64), 0)
        self._trainer: pl.Trainer | None = None

    @property
    def state_key(self) -> str:
        return "VisitLedger"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer
        subset = trainer.datamodule.subset  # type: ignore[attr-defined]
        self.positions = np.asarray(subset.positions, dtype=np.int64)
        if len(self.resumed) != len(self.positions):
            self.resumed = np.zeros(len(self.positions), dtype=np.int64)
        self.local = np.zeros(len(self.positions), dtype=np.int64)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        visited = batch[0].detach().cpu().numpy().astype(np.int64)
        self._last = entry_of(self.positions, visited)
        np.add.at(self.local, self._last[0], 1)
        self.local_outside += self._last[1]

    def _in_flight(self) -> bool:
        """Whether the last batch started has not finished its training step."""
        return self._trainer is not None and batches_in_flight(self._trainer) > 0

    def _global(self) -> tuple[np.ndarray, int]:
        trainer = self._trainer
        local = np.append(self.local, self.local_outside)
        if self._in_flight():
            np.subtract.at(local, self._last[0], 1)
            local[-1] -= self._last[1]
        if trainer is not None and trainer.world_size > 1:
            total = trainer.strategy.reduce(
                torch.from_numpy(local).to(trainer.strategy.root_device), reduce_op="sum"
            )
            local = total.cpu().numpy().astype(np.int64)  # type: ignore[union-attr]
        return self.resumed + local[:-1], self.resumed_outside + int(local[-1])

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

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        counts, outside = self._global()
        if trainer.is_global_zero and self.npz_path is not None:
            self.npz_path.parent.mkdir(parents=True, exist_ok=True)
            dtype = count_dtype(int(counts.max()) if len(counts) else 0)
            np.savez_compressed(
                self.npz_path,
                counts=counts.astype(dtype),
                positions=self.positions,
                outside=np.int64(outside),
            )
