# SPDX-License-Identifier: MIT
"""What a resumed run must share with its checkpoint: index, subset, plan, world size, settings.

A checkpoint continues one experiment. If the index was rebuilt (another ``data.index_seed``), the
fraction or budget changed, or the run moved to another number of processes, resuming would train on
other images or to another plan without a word. :class:`~solo_diversity.run.callbacks.RunIdentity`
stores the identity in every checkpoint (Lightning keeps callback state there) and, on resume,
refuses a checkpoint whose identity differs with one line saying what changed. A checkpoint written
before identities were stored resumes unchecked, with a warning.

The rest of the config splits in two. :data:`NEUTRAL_KEYS` cannot change what the run trains
(loader workers, logging, checkpoint cadence, paths; a resume from 2 workers to 0 is bit-exact),
so a resume may change them freely. Every other key can (seed, any optimizer or scheduler value,
the method, its augmentations, precision): :func:`setting_changes` names each one that differs,
so that a resume is refused, or auto-resume starts a new run, instead of silently mixing two.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import numpy as np

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.errors import UserError

log = logging.getLogger(__name__)

PLAN_FIELDS = ("C", "N", "N_ref", "global_batch", "steps", "mode", "epoch_keys")

# Config keys (and groups) that a resume may change: they cannot change what the run trains. Some
# describe where files are or go, how the run is logged, fed, checked or saved; the rest stand for
# something compared on its own, with its own message (the index by its fingerprint, the budget
# and batch by the plan, devices and nodes by the world size). ``name`` picks the experiment.
NEUTRAL_KEYS = (
    "name",
    "recipe",  # where the values came from; the values themselves are compared
    "data.train_path",
    "data.val_path",
    "data.index_cache",
    "data.index_seed",
    "data.num_workers",
    "data.in_memory",
    "data.max_bad_fraction",
    "dali.num_threads",
    "loggers",
    "wandb",
    "log_every_n_steps",
    "enable_progress_bar",
    "enable_model_summary",
    "knn_eval",
    "checkpoint",
    "auto_resume",
    "resume_from_checkpoint",
    "debug_augmentations",
    "budget",
    "budget_plan",
    "max_epochs",
    "optimizer.batch_size",
    "optimizer.global_batch_size",
    "devices",
    "num_nodes",
    "strategy",
)
_UNSET = object()


def subset_digest(positions: range | np.ndarray) -> str:
    """A short sha256 of the subset's index positions (a ``range`` is hashed by its bounds)."""
    if isinstance(positions, range):
        data = f"range({positions.start},{positions.stop},{positions.step})".encode()
    else:
        data = np.ascontiguousarray(np.asarray(positions, dtype=np.int64)).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def run_identity(subset: Any, plan: BudgetPlan, world_size: int) -> dict[str, Any]:
    """The identity of a run: index fingerprint, subset digest and size, plan, world size.

    Args:
        subset: the pretraining ``solo_diversity.index.Subset``.
        plan: the run's budget plan.
        world_size: processes in total (the plan's G counts them).

    Returns:
        A plain dict (stored in checkpoints).
    """
    fields = plan.as_dict()
    return {
        "index_fingerprint": str(subset.index.fingerprint),
        "subset": {"digest": subset_digest(subset.positions), "num_samples": len(subset)},
        "plan": {key: fields.get(key) for key in PLAN_FIELDS},
        "world_size": int(world_size or 1),
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


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys (list items by position) -> leaf values of a nested config."""
    if isinstance(value, dict) and value:
        items: Any = value.items()
    elif isinstance(value, list) and value:
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _neutral(key: str) -> bool:
    return any(key == name or key.startswith(f"{name}.") for name in NEUTRAL_KEYS)


def _show(value: Any) -> str:
    if value is _UNSET:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def setting_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The settings outside :data:`NEUTRAL_KEYS` that differ, as ``key old -> new`` phrases.

    Args:
        saved: the resolved config the checkpoint's run trained with (its ``args.json``).
        current: this run's resolved config.

    Returns:
        One phrase per differing key, in the current config's order (then keys only the saved
        config has); a key that one of them lacks shows as ``(unset)``.
    """
    old, new = _flatten(saved), _flatten(current)
    keys = [*new, *(key for key in old if key not in new)]
    return [
        f"{key} {_show(old.get(key, _UNSET))} -> {_show(new.get(key, _UNSET))}"
        for key in keys
        if not _neutral(key) and old.get(key, _UNSET) != new.get(key, _UNSET)
    ]


def first_change(changes: list[str]) -> str:
    """The first difference, and how many more there are: ``seed 5 -> 6 (and 2 more)``."""
    more = len(changes) - 1
    return changes[0] + (f" (and {more} more)" if more else "")


def check_settings(saved: dict[str, Any] | None, current: dict[str, Any], source: str) -> None:
    """Raise when this run's settings differ from the checkpoint's in a key that changes training.

    Args:
        saved: the checkpoint's resolved config (None: it stores none; nothing is checked).
        current: this run's resolved config.
        source: the checkpoint, for the message.

    Raises:
        UserError: ``cannot resume from <source>: <key> <old> -> <new> changes what the run
            trains; ...``.
    """
    changes = [] if saved is None else setting_changes(saved, current)
    if changes:
        raise UserError(
            f"cannot resume from {source}: {first_change(changes)} changes what the run trains; "
            "resume with the checkpoint's settings (only workers, logging, checkpointing and "
            "paths may change), or start a new run"
        )


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
