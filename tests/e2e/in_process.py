# SPDX-License-Identifier: MIT
"""In-process runs: stop one as Ctrl-C would, and snapshot its folder to show nothing changed."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` by name with its bytes: equal snapshots mean nothing was written."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class StopAt(pl.Callback):
    """Interrupt training as Ctrl-C would, after a given optimizer step."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt
