# SPDX-License-Identifier: MIT
"""Which run a pretraining continues: auto-resume's choice, and why it starts anew instead.

``auto_resume.enabled=true`` looks in ``{checkpoint.dir}/{method}`` for the newest unfinished run
of the same experiment (its ``name``) and resumes its newest checkpoint that passes its checksum,
saying in one line which ones it skipped and why. It resumes across settings that cannot change
what the run trains (loader workers, logging, checkpoint cadence); a run that differs in any
other setting, or in its index, subset, plan or world size (:mod:`~solo_diversity.run.identity`),
is left alone, and the new run says in one line what differed, so that no setting change forks
a run silently.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

from solo_diversity.console import say
from solo_diversity.run import checkpoint_files as files
from solo_diversity.run.checkpoint import read_checkpoint
from solo_diversity.run.identity import first_change, identity_changes, setting_changes


def _newest_first(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


@dataclass(frozen=True)
class AutoResume:
    """What auto-resume found.

    Attributes:
        checkpoint: the checkpoint to resume from (None: start a new run).
        declined: why the newest unfinished run of this experiment was not resumed (a setting,
            the index, subset, plan or world size differs), for the new run to say so.
    """

    checkpoint: Path | None = None
    declined: str | None = None

    def announce(self, version: str) -> None:
        """Say, in one line on stderr, that a new run starts instead of a resume, and why.

        Only the process of global rank 0 says it (DDP starts the others with the rank set).
        """
        if self.checkpoint is None and self.declined and getattr(rank_zero_only, "rank", 0) == 0:
            say(f"auto-resume: starting a new run {version}: {self.declined}")


def _unfinished_runs(
    logdir: Path, name: Any, max_hours: float | None
) -> list[tuple[Path, dict[str, Any], list[Path]]]:
    """(run folder, its args.json, its checkpoints newest first) of the unfinished runs named
    ``name`` that have a checkpoint younger than ``max_hours``, the newest run first.

    A run is finished when its ``ledger.json`` exists.
    """
    now = time.time()
    runs = []
    for args_file in logdir.glob("*/args.json"):
        run_dir = args_file.parent
        if (run_dir / "ledger.json").exists():
            continue
        try:
            args = json.loads(args_file.read_text())
        except (OSError, ValueError):
            continue
        ckpts = [
            p
            for p in _newest_first(list(run_dir.glob("*.ckpt")))
            if not max_hours or now - p.stat().st_mtime <= max_hours * 3600
        ]
        if isinstance(args, dict) and args.get("name") == name and ckpts:
            runs.append((run_dir, args, ckpts))
    return sorted(runs, key=lambda run: run[2][0].stat().st_mtime_ns, reverse=True)


def _newest_intact(ckpts: list[Path]) -> Path | None:
    """The first checkpoint that passes its checksum; one line for each one skipped."""
    for ckpt in ckpts:
        reason = files.verify(ckpt)
        if reason is None:
            return ckpt
        say(f"auto-resume: skipping {ckpt}: {reason}")
    return None


def _stored_changes(ckpt: Path, identity: dict[str, Any]) -> list[str] | None:
    """What differs from the checkpoint's stored identity.

    None when it is at the plan's last step: the run is complete, only its ledger.json is missing.
    """
    stored = read_checkpoint(ckpt)
    if int(stored.get("global_step", 0)) >= int(identity["plan"]["steps"] or 0) > 0:
        return None
    saved = (stored.get("callbacks") or {}).get("RunIdentity")
    return [] if saved is None else identity_changes(saved, identity)


def auto_resume(
    logdir: Path,
    record: dict[str, Any],
    max_hours: float | None = None,
    identity: dict[str, Any] | None = None,
) -> AutoResume:
    """The newest intact checkpoint of an unfinished run of this experiment, or why there is none.

    Runs of the same ``name`` are tried newest first. One is resumed when its ``args.json`` equals
    this run's config in every key that can change training (:func:`setting_changes`: worker counts,
    logging or checkpoint cadence may differ) and, given ``identity``, its newest intact
    checkpoint has the same index, subset, plan and world size. Otherwise the first run tried
    tells, in :attr:`AutoResume.declined`, what differs. Checkpoints older than ``max_hours`` are
    ignored; one that fails its checksum is skipped with one line on stderr.

    Args:
        logdir: ``{checkpoint.dir}/{method}``.
        record: this run's resolved config as plain containers (as its ``args.json`` will be).
        max_hours: ``auto_resume.max_hours`` (None or 0: no limit).
        identity: this run's :func:`~solo_diversity.run.identity.run_identity` (None: settings
            only).
    """
    if not logdir.is_dir():
        return AutoResume()
    declined = None
    for run_dir, args, ckpts in _unfinished_runs(logdir, record.get("name"), max_hours):
        changes: list[str] | None = setting_changes(args, record)
        ckpt = None if changes else _newest_intact(ckpts)
        if ckpt is not None and identity is not None:
            changes = _stored_changes(ckpt, identity)
            if changes is None:
                continue
        if ckpt is not None and not changes:
            return AutoResume(ckpt)
        if changes and declined is None:
            declined = f"the unfinished run {run_dir} differs: {first_change(changes)}"
    return AutoResume(None, declined)


def find_resumable(
    logdir: Path,
    record: dict[str, Any],
    max_hours: float | None = None,
    identity: dict[str, Any] | None = None,
) -> Path | None:
    """The checkpoint :func:`auto_resume` would resume from, if any."""
    return auto_resume(logdir, record, max_hours, identity).checkpoint
