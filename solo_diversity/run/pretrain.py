# SPDX-License-Identifier: MIT
"""One budget-normalized pretraining run: config -> index subset -> plan -> method -> Trainer.

``main_pretrain.py`` is a thin hydra shell over :func:`run_pretrain`; tests call it directly.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig

from solo_diversity.budget.plan import BudgetPlan, check_switches
from solo_diversity.config.loader import LoaderSettings
from solo_diversity.config.pretrain import resolve_pretrain_cfg
from solo_diversity.config.run_config import (
    DataSettings,
    Hardware,
    RunConfig,
    TrainSizes,
    data_settings,
    resolve_run,
)
from solo_diversity.console import console, ledger_table, plan_table
from solo_diversity.data import (
    BatchAugment,
    DaliPretrainDataModule,
    FastMultiView,
    MultiViewTransform,
    PretrainDataModule,
    ScreenCache,
    dataset_stats,
    eval_transform,
)
from solo_diversity.index import ensure_index, open_index, select_subset
from solo_diversity.methods import BACKEND, get_method
from solo_diversity.run.baselines import baseline_backbone, check_baseline, write_baseline
from solo_diversity.run.callbacks import (
    BadImageGuard,
    BudgetLedger,
    GlobalBatchCheck,
    GracefulStop,
    RunIdentity,
    VisitLedger,
)
from solo_diversity.run.checkpoint import new_version
from solo_diversity.run.harness import (
    checkpointer,
    logging_run,
    ordered_callbacks,
    run_version,
    trainer_arguments,
)
from solo_diversity.run.identity import run_identity
from solo_diversity.run.lock import lock_run, writes_run
from solo_diversity.run.loggers import build_loggers
from solo_diversity.run.preflight import preflight
from solo_diversity.run.resume import AutoResume, auto_resume

log = logging.getLogger(__name__)

VERSION_ENV = "SOLO_DIV_RUN_VERSION"


@dataclass
class PretrainResult:
    """What a finished run leaves behind.

    Attributes:
        checkpoint: the last checkpoint (None: saving was off).
        ledger: the budget ledger's summary (empty for a baseline).
        plan: the budget plan.
        record: the resolved config, as written to ``args.json``.
    """

    checkpoint: Path | None
    ledger: dict[str, Any]
    plan: BudgetPlan
    record: dict[str, Any]


def open_split(data: DataSettings, path: str, split: str) -> Any:
    """The index of one split of the run's dataset (built and cached on first use)."""
    index_path = ensure_index(
        data.dataset,
        path,
        split=split,
        seed=data.index_seed,
        data_format=data.format,
        cache_dir=data.index_cache,
    )
    return open_index(index_path, expected_dataset=data.dataset)


def _precision_note(precision: str) -> None:
    # Not bf16: without AVX512-BF16 (most CPUs) it is emulated and ~5x slower than fp32.
    log.warning("precision=%s is GPU-only; using 32-true on the CPU", precision)


def fit_arguments(
    hardware: Hardware,
    keys: dict[str, Any],
    plan: BudgetPlan,
    callbacks: list[pl.Callback],
    loggers: list[pl.loggers.Logger] | None = None,
) -> dict[str, Any]:
    """Trainer arguments of a pretraining: the harness's, then the budget's exact stopping rule."""
    # Validate 4 times per run; Lightning counts the interval in micro-batches across epochs.
    batches_between_val = max(1, plan.steps // 4) * int(keys.get("accumulate_grad_batches") or 1)
    return trainer_arguments(
        hardware,
        keys,
        callbacks=callbacks,
        loggers=loggers or [],
        precision_note=_precision_note,
        max_steps=plan.steps,
        max_epochs=math.ceil(plan.steps / plan.steps_per_epoch) + 1,  # a bound; max_steps stops
        use_distributed_sampler=False,
        check_val_every_n_epoch=None,
        val_check_interval=batches_between_val,
    )


def build_datamodule(
    loader: LoaderSettings, data: DataSettings, subset: Any, val_subset: Any
) -> PretrainDataModule:
    """The training data of a run: the subset through the configured augmentations.

    ``data.format=dali`` decodes and augments with DALI (``dali.device`` cpu, gpu or auto).
    Otherwise ``data.augment_backend`` picks the transform: ``fast`` (default; uint8 SIMD crops and
    OpenCV colour ops per image, the same augmentation distribution), ``torchvision`` (the
    reference pipeline) or ``batch`` (small images decoded once into memory and augmented a whole
    batch at a time, in the workers or on the GPU: ``data.batch_augment_on``). The two per-image
    backends read small subsets from memory too (``data.in_memory``, default auto). The keys are
    read and checked once, in :func:`~solo_diversity.config.loader.loader_settings`.

    Args:
        loader: the run's loader settings (:func:`~solo_diversity.config.loader.loader_settings`).
        data: the run's data settings (the dataset's statistics, the index cache).
        subset: the pretraining subset.
        val_subset: the held-out split (None: no validation).
    """
    specs = list(loader.specs)
    mean, std = dataset_stats(data.dataset)
    val_transform = None if val_subset is None else eval_transform(specs[0].crop_size, mean, std)
    common = dict(
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        seed=loader.seed,
        accumulate=loader.accumulate,
        max_bad_fraction=loader.max_bad_fraction,
        val_subset=val_subset,
        val_transform=val_transform,
        min_steps_per_epoch=loader.min_steps_per_epoch,
    )
    if loader.backend == "dali":
        return DaliPretrainDataModule(
            subset,
            specs,
            mean,
            std,
            device=loader.dali_device,
            num_threads=loader.dali_threads,
            screen_cache=ScreenCache.default_path(subset.index, data.index_cache),
            **common,  # type: ignore[arg-type]
        )
    if loader.backend == "batch":
        return PretrainDataModule(
            subset,
            BatchAugment(specs, mean, std),
            augment_on_device=loader.augment_on_device,
            **common,  # type: ignore[arg-type]
        )
    view_cls = FastMultiView if loader.backend == "fast" else MultiViewTransform
    return PretrainDataModule(
        subset,
        view_cls(specs, mean, std),
        in_memory=loader.in_memory,
        **common,  # type: ignore[arg-type]
    )


def _run_version() -> str:
    """A new run id; DDP children (which re-run this script) take rank 0's from the environment."""
    if int(os.environ.get("LOCAL_RANK", "0")) > 0 and os.environ.get(VERSION_ENV):
        return os.environ[VERSION_ENV]
    os.environ[VERSION_ENV] = version = new_version()
    return version


def _baseline_run(run: RunConfig, model: torch.nn.Module) -> PretrainResult:
    """Write the ``baseline`` run (the method as seeded, or raw pixels) instead of training."""
    kind = check_baseline(str(run.baseline))
    backbone, entry = baseline_backbone(kind, model, run.crop_size)
    folder = run.checkpoint.logdir(run.method) / _run_version()
    path = write_baseline(kind, run.record, backbone, entry, folder)
    console.print(f"Baseline {kind}: nothing trained; wrote {path}")
    return PretrainResult(checkpoint=path, ledger={}, plan=run.plan, record=run.record)


def _show_plan(run: RunConfig, method_cls: Any) -> None:
    """The plan table, with the budget's notes and the schedule switches' warnings under it."""
    plan = run.plan
    schedules = method_cls.converted_schedules(run.method_cfg, plan)
    warnings = check_switches(schedules, plan.steps, allow_late=run.allow_late_switches)
    console.print(
        plan_table(
            [(run.plan_row, plan, schedules)],
            title=f"Budget plan: {run.method} ({BACKEND} backend)",
            notes=[*run.plan_notes, *(f"warning: {line}" for line in warnings)],
        )
    )


def _datamodule(run: RunConfig, subset: Any) -> PretrainDataModule:
    """The training data, and the held-out split when the run validates."""
    data = run.data
    val_subset = None
    if data.val_path and not data.no_labels:
        val_subset = select_subset(open_split(data, data.val_path, "test"), -1)
    datamodule = build_datamodule(run.loader, data, subset, val_subset)
    if run.loader.debug:  # solo-learn prints the transforms (the config's list under DALI)
        shown = getattr(datamodule, "transform", None) or run.loader.augmentations_text
        console.print("Transforms:", shown, markup=False, emoji=False)
    return datamodule


def _resume(
    run: RunConfig, logdir: Path, identity: dict[str, Any]
) -> tuple[str | None, AutoResume]:
    """The checkpoint to continue: the explicit one, else an unfinished run's (auto-resume)."""
    resume, found = run.resume.checkpoint, AutoResume()
    if resume is None and run.resume.auto:
        found = auto_resume(logdir, run.record, run.resume.max_hours, identity)
        resume = str(found.checkpoint) if found.checkpoint else None
        if resume:
            console.print(f"Resuming from {resume}")
    return resume, found


def run_pretrain(raw_cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> PretrainResult:
    """Run one budgeted pretraining and return its checkpoint, ledger and plan.

    Args:
        raw_cfg: the composed hydra config.
        callbacks: extra Lightning callbacks (after the checkpointer, ledger and bad-image guard).
    """
    cfg = resolve_pretrain_cfg(raw_cfg)
    pl.seed_everything(int(cfg.seed), workers=True)
    data = data_settings(cfg)
    index = open_split(data, data.train_path, "train")
    subset = select_subset(index, data.fraction, stratified=data.stratified)
    classes = 0 if data.no_labels else index.num_classes
    run = resolve_run(cfg, TrainSizes(len(index), len(subset), classes))
    complete = preflight(run, index, subset, open_split=open_split)
    if complete is not None:  # resume_from_checkpoint of a finished run: nothing to train
        return PretrainResult(complete.checkpoint, complete.ledger, run.plan, run.record)
    method_cls = get_method(run.method)
    _show_plan(run, method_cls)
    model = method_cls(run.method_cfg)
    if run.baseline:  # an untrained run to probe, not a training (run/baselines.py)
        return _baseline_run(run, model)
    if model.settings.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return _train(run, model, subset, _datamodule(run, subset), list(callbacks or []))


def _train(
    run: RunConfig,
    model: pl.LightningModule,
    subset: Any,
    datamodule: PretrainDataModule,
    extra: list[pl.Callback],
) -> PretrainResult:
    """Fit ``model`` under the harness, watched by the run's callbacks; print the ledger."""
    logdir = run.checkpoint.logdir(run.method)
    identity = run_identity(subset, run.plan, run.hardware.world_size)
    resume, found = _resume(run, logdir, identity)
    version = run_version(resume, _run_version)
    found.announce(version)  # a new run instead of a resume says why
    saving = run.checkpoint.enabled
    lock = lock_run(logdir / version, resume) if saving and writes_run(os.environ) else None
    saver = checkpointer(
        run.record,
        run.checkpoint,
        logdir,
        version,
        lambda: run.plan.epochs_to_steps(run.checkpoint.frequency),
    )
    ledger = BudgetLedger(run.plan, logdir / version / "ledger.json" if saving else None)
    loggers = build_loggers(run.loggers, version, resume_from=resume)
    own = [
        *([saver] if saver else []),
        RunIdentity(identity),
        GlobalBatchCheck(run.plan, run.loader.batch_size),
        ledger,
        VisitLedger(logdir / version / "visits.npz" if saving else None),
        BadImageGuard(datamodule),
    ]
    # Last: a stop on a signal saves once every other callback has finished the step.
    stopper = GracefulStop(saver, auto_resume=run.resume.auto)
    watchers = ordered_callbacks(own, loggers, extra, last=[stopper])
    trainer = pl.Trainer(**fit_arguments(run.hardware, run.trainer, run.plan, watchers, loggers))
    try:
        with logging_run(trainer, loggers, run.record, model), stopper.catching_signals(trainer):
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
    finally:
        if lock is not None:
            lock.release()
    path = saver.last_path if saver else None
    if trainer.is_global_zero:
        console.print(ledger_table(ledger.summary))
        if path:
            console.print(f"Checkpoint: {path}")
    return PretrainResult(checkpoint=path, ledger=ledger.summary, plan=run.plan, record=run.record)
