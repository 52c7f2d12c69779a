# SPDX-License-Identifier: MIT
"""Pre-flight checks of a pretraining run: everything that can fail early, before the first step.

:func:`preflight` runs once the budget plan is attached and before the model, the loaders or any
run folder exist. It checks that the index's images are where it says and that a seeded sample of
them reads, that ``data.val_path`` is held out (not the training split, no training images by
content, labels of the training classes), that ``resume_from_checkpoint`` is a
checkpoint of this same run with the same settings (:mod:`~solo_diversity.run.identity`; one
already at the plan's last step is reported as complete), and that the checkpoint folder
is writable with room for two checkpoints (the new one is written before the previous one is
removed). Opening the index already checked its format and its dataset (``open_index``); the plan
already checked that the subset holds one global batch (``plan_budget``). Each failure is one
:class:`UserError` line naming the value and what to do.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from solo_diversity.config.run_config import DataSettings, RunConfig
from solo_diversity.data.decode import UnreadableImage, decode_image
from solo_diversity.errors import UserError
from solo_diversity.index.reader import check_root
from solo_diversity.index.splits import check_labels, check_validation_split
from solo_diversity.methods import get_method
from solo_diversity.run.checkpoint import read_checkpoint
from solo_diversity.run.identity import check_identity, check_settings, run_identity

log = logging.getLogger(__name__)

SAMPLE_READS = 8  # entries decoded from the subset (seeded)
# Optimizer state per trainable parameter, in copies: momentum (SGD, LARS), two moments (Adam).
OPTIMIZER_SLOTS = {"sgd": 1, "lars": 1, "adam": 2, "adamw": 2}
CHECKPOINT_SLACK = 1.1  # pickled metadata, loop and callback states (measured < 0.3%)
CHECKPOINT_EXTRA_BYTES = 1 << 20


def human_bytes(count: float) -> str:
    """E.g. ``8.3 MB``."""
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1000
    return f"{count:.1f} TB"


def check_index_files(index: Any, positions: range | np.ndarray, seed: int) -> None:
    """The root of a ``paths`` index is in place, not every entry of a seeded sample fails, and
    the labels are ids of the index's classes (the online classifier has one output per class).

    Args:
        index: the opened :class:`~solo_diversity.index.ImageIndex`.
        positions: the subset's index positions.
        seed: seeds the sample (the run's ``seed``).

    Raises:
        UserError: the root folder is missing (:func:`~solo_diversity.index.reader.check_root`,
            which ``ensure_index`` runs too), none of the sampled entries decodes, or a label is
            not below ``num_classes``.
    """
    check_root(index)
    check_labels(index, index.labels(positions), index.num_classes, "its class names")
    count = min(SAMPLE_READS, len(positions))
    picks = np.random.default_rng(seed).choice(len(positions), size=count, replace=False)
    errors = []
    for pick in sorted(int(p) for p in picks):
        position = int(positions[pick])
        try:
            decode_image(index.read_bytes(position))
        except (OSError, UnreadableImage) as err:
            errors.append(f"{index.entry_name(position)}: {' '.join(str(err).split())[:120]}")
    if count and len(errors) == count:
        raise UserError(
            f"none of {count} sampled images of index {index.path} reads (e.g. {errors[0]}); "
            "check the index and its images"
        )
    if errors:
        log.warning(
            "%d of %d sampled images of index %s do not read, e.g. %s",
            len(errors),
            count,
            index.path,
            errors[0],
        )


def check_val_split(data: DataSettings, train: Any, open_split: Callable[..., Any]) -> None:
    """``data.val_path`` is held out: not the training split (the same file, or the same entries),
    no training images by content, and labels of the training classes
    (:func:`~solo_diversity.index.splits.check_validation_split`).

    Args:
        data: the run's data settings.
        train: the opened training index.
        open_split: ``(data, path, split) -> ImageIndex``, as the run opens its splits.
    """
    val_path = data.val_path
    if not val_path or data.no_labels:
        return
    same_path = (
        Path(val_path).expanduser().resolve() == Path(data.train_path).expanduser().resolve()
    )
    if not same_path:
        val = open_split(data, val_path, "test")
        same_path = val.path.resolve() == train.path.resolve()
        if not same_path and val.fingerprint == train.fingerprint:
            raise UserError(
                f"data.val_path={val_path} holds the same entries as data.train_path "
                f"(index fingerprint {train.fingerprint[:12]}); give the held-out split"
            )
        if not same_path:
            check_validation_split(train, val)
    if same_path:
        raise UserError(
            f"data.val_path={val_path} is the training split data.train_path; give the held-out "
            "split, or data.val_path=null to skip validation"
        )


def load_checkpoint_head(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, memory-mapped (its tensors are not read).

    Raises:
        UserError: missing, unreadable, or not a Lightning checkpoint.
    """
    where = f"resume_from_checkpoint={path}"
    if not path.is_file():
        raise UserError(f"{where}: no such file; give a .ckpt written by main_pretrain.py")
    try:
        stored = read_checkpoint(path)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        first = " ".join(str(err).split())[:120]
        raise UserError(f"{where} is not a checkpoint ({type(err).__name__}: {first})") from None
    if not isinstance(stored, dict) or "state_dict" not in stored or "loops" not in stored:
        raise UserError(f"{where} is not a Lightning training checkpoint (no state_dict and loops)")
    return stored


@dataclass(frozen=True)
class CompleteRun:
    """An explicit resume of a run that already trained its whole plan: nothing to train.

    Attributes:
        checkpoint: the run's final checkpoint (the one given when the final one is gone).
        ledger: its ``ledger.json``, or the ledger state stored in the checkpoint.
    """

    checkpoint: Path
    ledger: dict[str, Any]


def saved_config(stored: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The resolved config a checkpoint's run trained with: stored in it, else its args.json."""
    cfg = (stored.get("solo_diversity") or {}).get("cfg")
    if isinstance(cfg, dict):
        return cfg
    args = path.parent / "args.json"
    try:
        return json.loads(args.read_text()) if args.is_file() else None
    except (OSError, ValueError):
        return None


def complete_run(stored: dict[str, Any], path: Path) -> CompleteRun:
    """The finished run a checkpoint at the plan's last step belongs to."""
    finals = [p for p in sorted(path.parent.glob("*.ckpt")) if "-step=" not in p.name]
    ledger_json = path.parent / "ledger.json"
    try:
        ledger = json.loads(ledger_json.read_text())
    except (OSError, ValueError):
        ledger = dict(stored.get("budget_ledger") or {})
    return CompleteRun(finals[0] if finals else path, ledger)


def check_resume(run: RunConfig, subset: Any) -> CompleteRun | None:
    """An explicit ``resume_from_checkpoint`` exists, is a checkpoint, and is of this same run.

    The same run: the same index, subset, plan and world size (:func:`check_identity`), and the
    same settings but for those that cannot change training (:func:`check_settings`), so that a
    checkpoint of another method, or an override of the LR, is one line before anything runs.

    Returns:
        The finished run, when the checkpoint is already at the plan's last step. Resuming means
        "train this run to the end of its plan", which is then already true: the caller says so
        in one line and exits 0 (a requeued job or a script that always passes its last
        checkpoint succeeds; a larger budget is another plan, refused above).
    """
    resume, plan = run.resume.checkpoint, run.plan
    if not resume:
        return None
    path = Path(resume).expanduser()
    stored = load_checkpoint_head(path)
    saved = (stored.get("callbacks") or {}).get("RunIdentity")
    identity = run_identity(subset, plan, run.hardware.world_size)
    check_identity(saved, identity, str(path), warn=False)
    check_settings(saved_config(stored, path), run.record, str(path))
    step = int(stored.get("global_step", 0))
    if step < plan.steps:
        return None
    done = complete_run(stored, path)
    print(
        f"resume_from_checkpoint={path}: the run is already complete ({step} of {plan.steps} "
        f"steps); its final checkpoint is {done.checkpoint}; nothing to train",
        file=sys.stderr,
        flush=True,
    )
    return done


def checkpoint_bytes(run: RunConfig) -> tuple[int, int]:
    """Estimated size of one checkpoint of this run, and the model's parameter count.

    The model is built on the ``meta`` device (no memory, no initialisation); a checkpoint holds
    its parameters and buffers plus the optimizer's state per trainable parameter (LARS/SGD: one
    momentum copy, Adam: two moments), plus 10% and 1 MiB of slack. Measured with LARS: the digits
    demo's small CNN (1.03M parameters) writes 8.28 MB, estimated 10.1 MB; a CIFAR ResNet-18
    (12.7M) writes 102.1 MB, estimated 113.3 MB (both files are 2.00x the state's bytes).
    """
    method_cls = get_method(run.method)
    try:
        with torch.device("meta"):
            model = method_cls(run.method_cfg)
    except Exception:  # noqa: BLE001 - a module that cannot be built on meta: build it for real
        model = method_cls(run.method_cfg)
    tensors = [*model.parameters(), *model.buffers()]
    state = sum(t.numel() * t.element_size() for t in tensors)
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    slots = OPTIMIZER_SLOTS.get(run.optimizer, 2)
    total = (state + slots * trainable) * CHECKPOINT_SLACK + CHECKPOINT_EXTRA_BYTES
    return int(total), sum(p.numel() for p in model.parameters())


def _existing_ancestor(folder: Path) -> Path:
    """The deepest existing part of ``folder``; UserError when it is not a folder."""
    current = folder
    while not current.exists():
        current = current.parent
    if not current.is_dir():
        raise UserError(
            f"checkpoint.dir: {current} is a file, so {folder} cannot be created; give a folder"
        )
    return current


def check_checkpoint_dir(folder: Path, one_checkpoint: int, params: int) -> None:
    """The checkpoint folder can be created and written, with room for two checkpoints.

    Nothing is created: the deepest existing part of the path is probed with a temporary file. A
    name longer than the file system allows (255 bytes on most) is refused first, since the
    system refuses even to look such a path up. A relative folder (the default ``trained_models``)
    lives in the working directory, which the message then names.
    """
    where = "" if folder.expanduser().is_absolute() else ", or run from a writable folder"
    folder = folder.expanduser().absolute()
    try:
        name_max = os.pathconf(folder.anchor, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for name in folder.parts:
        if len(os.fsencode(name)) > name_max:
            raise UserError(
                f"checkpoint.dir: the folder name {name[:24]}... is {len(os.fsencode(name))} "
                f"bytes, longer than the {name_max} a name may have here; give a shorter "
                "checkpoint.dir"
            )
    base = _existing_ancestor(folder)
    try:
        handle, probe = tempfile.mkstemp(dir=base, prefix=".solo-div-write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise UserError(
            f"checkpoint.dir: cannot write in {base} ({err.strerror or err}); give a writable "
            f"folder{where}"
        ) from None
    free = shutil.disk_usage(base).free
    need = 2 * one_checkpoint
    if free < need:
        raise UserError(
            f"checkpoint.dir: {base} has {human_bytes(free)} free, less than two checkpoints of "
            f"~{human_bytes(one_checkpoint)} ({params:,} parameters and optimizer state); free "
            "space or give another checkpoint.dir"
        )


def preflight(
    run: RunConfig,
    index: Any,
    subset: Any,
    open_split: Callable[..., Any],
) -> CompleteRun | None:
    """Check everything that can fail before the first step (see the module docstring).

    Args:
        run: the resolved run (its config carries the budget plan).
        index: the opened training index.
        subset: the pretraining subset.
        open_split: ``(data, path, split) -> ImageIndex``, as the run opens its splits.

    Returns:
        The finished run when ``resume_from_checkpoint`` is already at the plan's last step
        (:func:`check_resume`): there is nothing to train.

    Raises:
        UserError: one line naming the bad value and what to do.
    """
    assert len(subset) >= run.plan.global_batch  # plan_budget refuses a smaller subset
    check_index_files(index, subset.positions, run.seed)
    check_val_split(run.data, index, open_split)
    complete = check_resume(run, subset)
    if complete is not None:
        return complete
    if run.checkpoint.enabled:
        size, params = checkpoint_bytes(run)
        check_checkpoint_dir(run.checkpoint.logdir(run.method), size, params)
    return None
