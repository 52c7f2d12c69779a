# SPDX-License-Identifier: MIT
"""What a resumed run must share with its checkpoint: index, subset, budget plan and world size.

A checkpoint continues one experiment. If the index was rebuilt (another ``data.index_seed``), the
fraction or budget changed, or the run moved to another number of processes, resuming would train
on other images or to another plan without a word. :class:`RunIdentity` stores the identity in
every checkpoint (Lightning keeps callback state there) and, on resume, refuses a checkpoint whose
identity differs with one line saying what changed. A checkpoint written before identities were
stored resumes unchecked, with a warning.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import lightning.pytorch as pl
import numpy as np
from omegaconf import DictConfig, OmegaConf

from solo_diversity.errors import UserError

log = logging.getLogger(__name__)

PLAN_FIELDS = ("C", "N", "N_ref", "global_batch", "steps", "mode", "epoch_keys")


def subset_digest(positions: range | np.ndarray) -> str:
    """A short sha256 of the subset's index positions (a ``range`` is hashed by its bounds)."""
    if isinstance(positions, range):
        data = f"range({positions.start},{positions.stop},{positions.step})".encode()
    else:
        data = np.ascontiguousarray(np.asarray(positions, dtype=np.int64)).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def run_identity(subset: Any, cfg: DictConfig) -> dict[str, Any]:
    """The identity of a run: index fingerprint, subset digest and size, plan, world size.

    Args:
        subset: the pretraining ``solo_diversity.index.Subset``.
        cfg: the config with ``budget_plan`` attached (``config.attach_plan``).

    Returns:
        A plain dict (stored in checkpoints).
    """
    plan = OmegaConf.to_container(cfg.budget_plan, resolve=True)
    assert isinstance(plan, dict)
    return {
        "index_fingerprint": str(subset.index.fingerprint),
        "subset": {"digest": subset_digest(subset.positions), "num_samples": len(subset)},
        "plan": {key: plan.get(key) for key in PLAN_FIELDS},
        "world_size": int(plan.get("world_size") or 1),
    }


def identity_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a checkpoint's identity and this run's, one phrase per part."""
    changes = []
    old, new = saved.get("index_fingerprint"), current["index_fingerprint"]
    if old != new:
        changes.append(f"the index was rebuilt (fingerprint {str(old)[:12]} -> {new[:12]})")
    old_subset, new_subset = saved.get("subset") or {}, current["subset"]
    if old_subset != new_subset:
        changes.append(
            f"the subset changed (N={old_subset.get('num_samples')} -> "
            f"{new_subset['num_samples']}, positions {old_subset.get('digest')} -> "
            f"{new_subset['digest']})"
        )
    old_plan, new_plan = saved.get("plan") or {}, current["plan"]
    diff = [
        f"{key} {old_plan.get(key)} -> {new_plan[key]}"
        for key in PLAN_FIELDS
        if old_plan.get(key) != new_plan[key]
    ]
    if diff:
        changes.append(f"the budget plan changed ({', '.join(diff)})")
    if saved.get("world_size") != current["world_size"]:
        changes.append(
            f"the world size changed ({saved.get('world_size')} -> {current['world_size']} "
            "processes)"
        )
    return changes


def check_identity(
    saved: dict[str, Any] | None, current: dict[str, Any], source: str, *, warn: bool = True
) -> None:
    """Raise when a checkpoint's identity differs from this run's; warn when it has none.

    Args:
        saved: the identity stored in the checkpoint (None: written before identities were kept).
        current: this run's :func:`run_identity`.
        source: the checkpoint, for the message.
        warn: log the one line about a checkpoint without an identity (the pre-flight check
            leaves it to the restore, so that it is said once).

    Raises:
        UserError: ``cannot resume from <source>: <what changed>; ...``.
    """
    if saved is None:
        if not warn:
            return
        log.warning(
            "%s stores no run identity (written before identities were kept); resuming "
            "without checking its index, subset, plan and world size",
            source,
        )
        return
    changes = identity_changes(saved, current)
    if changes:
        raise UserError(
            f"cannot resume from {source}: {'; '.join(changes)}; resume with the checkpoint's "
            "index, data.fraction, budget and devices, or start a new run"
        )


class RunIdentity(pl.Callback):
    """Store the run identity in every checkpoint and check it when a run resumes.

    Args:
        identity: this run's :func:`run_identity`.
    """

    def __init__(self, identity: dict[str, Any]) -> None:
        self.identity = identity

    @classmethod
    def of(cls, subset: Any, cfg: DictConfig) -> RunIdentity:
        """The callback for a subset and a config with ``budget_plan`` attached."""
        return cls(run_identity(subset, cfg))

    @property
    def state_key(self) -> str:
        return "RunIdentity"

    def state_dict(self) -> dict[str, Any]:
        return dict(self.identity)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: the identity is checked in :meth:`on_load_checkpoint`."""

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        saved = (checkpoint.get("callbacks") or {}).get(self.state_key)
        check_identity(saved, self.identity, str(trainer.ckpt_path))
