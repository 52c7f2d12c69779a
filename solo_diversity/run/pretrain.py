# SPDX-License-Identifier: MIT
"""One budget-normalized pretraining run: config -> index subset -> plan -> method -> Trainer.

``main_pretrain.py`` is a thin hydra shell over :func:`run_pretrain`; tests call it directly.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf

from solo_diversity.budget.plan import BudgetPlan, check_switches
from solo_diversity.budget.world import (
    resolve_world,
    sync_batchnorm_for,
    world_size_of,
)
from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg, trainer_devices
from solo_diversity.console import console, ledger_table, plan_table
from solo_diversity.data import (
    BadImageGuard,
    BatchAugment,
    DaliPretrainDataModule,
    FastMultiView,
    MultiViewTransform,
    PretrainDataModule,
    ScreenCache,
    check_backend,
    dataset_stats,
    eval_transform,
    parse_augmentations,
    resolve_device,
)
from solo_diversity.errors import UserError
from solo_diversity.index import ensure_index, open_index, select_subset
from solo_diversity.methods import BACKEND, get_method
from solo_diversity.run.baselines import baseline_backbone, check_baseline, write_baseline
from solo_diversity.run.checkpoint import SoloCheckpointer, new_version
from solo_diversity.run.global_batch import GlobalBatchCheck
from solo_diversity.run.identity import RunIdentity, run_identity
from solo_diversity.run.interrupt import GracefulStop
from solo_diversity.run.ledger import BudgetLedger
from solo_diversity.run.lock import lock_run, writes_run
from solo_diversity.run.loggers import (
    build_loggers,
    finish_loggers,
    log_run_config,
    logger_callbacks,
)
from solo_diversity.run.preflight import preflight
from solo_diversity.run.resume import AutoResume, auto_resume
from solo_diversity.run.visits import VisitLedger

log = logging.getLogger(__name__)

VERSION_ENV = "SOLO_DIV_RUN_VERSION"


@dataclass
class PretrainResult:
    """What a finished run leaves behind."""

    checkpoint: Path | None
    ledger: dict[str, Any]
    plan: BudgetPlan
    cfg: DictConfig


def _open_split(cfg: DictConfig, path: str, split: str) -> Any:
    index_path = ensure_index(
        str(cfg.data.dataset),
        path,
        split=split,
        seed=int(cfg.data.index_seed),
        data_format=str(cfg.data.format),
        cache_dir=Path(cfg.data.index_cache),
    )
    return open_index(index_path, expected_dataset=str(cfg.data.dataset))


def _precision(cfg: DictConfig, accelerator: str) -> Any:
    precision = str(cfg.precision)
    if accelerator == "cpu" and precision in ("16", "16-mixed"):
        # Not bf16: without AVX512-BF16 (most CPUs) it is emulated and ~5x slower than fp32.
        log.warning("precision=%s is GPU-only; using 32-true on the CPU", precision)
        return "32-true"
    return precision


def _accelerator(cfg: DictConfig) -> str:
    accelerator = str(cfg.accelerator)
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(
            f"accelerator={accelerator} but no GPU is visible; run with accelerator=cpu devices=1"
        )
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return accelerator


def trainer_kwargs(
    cfg: DictConfig,
    plan: BudgetPlan,
    callbacks: list[pl.Callback],
    loggers: list[pl.loggers.Logger] | None = None,
) -> dict[str, Any]:
    """Trainer arguments: config keys that Trainer takes, then the budget's exact stopping rule."""
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters)
    passed = {
        k: v
        for k, v in OmegaConf.to_container(cfg, resolve=True).items()  # type: ignore[union-attr]
        if k in accepted and k not in ("callbacks", "logger")
    }
    accelerator = _accelerator(cfg)
    # Validate 4 times per run; Lightning counts the interval in micro-batches across epochs.
    batches_between_val = max(1, plan.steps // 4) * int(cfg.accumulate_grad_batches)
    passed.update(
        accelerator=accelerator,
        devices=trainer_devices(cfg, accelerator),
        precision=_precision(cfg, accelerator),
        max_steps=plan.steps,
        max_epochs=math.ceil(plan.steps / plan.steps_per_epoch) + 1,  # a bound; max_steps stops
        use_distributed_sampler=False,
        enable_checkpointing=False,
        callbacks=callbacks,
        logger=list(loggers) if loggers else False,
        check_val_every_n_epoch=None,
        val_check_interval=batches_between_val,
    )
    if passed.get("strategy") in (None, "none"):
        passed["strategy"] = "auto"
    passed["sync_batchnorm"] = sync_batchnorm_for(
        bool(passed.get("sync_batchnorm")), accelerator, world_size_of(cfg)
    )
    return passed


def dali_device(cfg: DictConfig) -> str:
    """``dali.device``: ``auto`` decodes on the GPU when the run trains on one, else on the CPU."""
    return resolve_device(str(cfg.dali.device), on_gpu=_accelerator(cfg) in ("gpu", "cuda"))


def build_datamodule(cfg: DictConfig, subset: Any, val_subset: Any) -> PretrainDataModule:
    """The training data of a run: the subset through the configured augmentations.

    ``data.format=dali`` decodes and augments with DALI (``dali.device`` cpu, gpu or auto).
    Otherwise ``data.augment_backend`` picks the transform: ``fast`` (default; uint8 SIMD crops and
    OpenCV colour ops per image, the same augmentation distribution), ``torchvision`` (the
    reference pipeline) or ``batch`` (small images decoded once into memory and augmented a whole
    batch at a time, in the workers or on the GPU: see :func:`batch_augment_on_device`). The two
    per-image backends read small subsets from memory too (``data.in_memory``, default auto).
    """
    specs = parse_augmentations(OmegaConf.to_container(cfg.augmentations, resolve=True))  # type: ignore[arg-type]
    mean, std = dataset_stats(str(cfg.data.dataset))
    val_transform = None if val_subset is None else eval_transform(specs[0].crop_size, mean, std)
    common = dict(
        batch_size=int(cfg.optimizer.batch_size),
        num_workers=int(cfg.data.num_workers),
        seed=int(cfg.seed),
        accumulate=int(cfg.accumulate_grad_batches),
        max_bad_fraction=float(cfg.data.max_bad_fraction),
        val_subset=val_subset,
        val_transform=val_transform,
        min_steps_per_epoch=int(cfg.data.min_steps_per_epoch),
    )
    if str(cfg.data.format) == "dali":
        return DaliPretrainDataModule(
            subset,
            specs,
            mean,
            std,
            device=dali_device(cfg),
            num_threads=int(cfg.dali.num_threads),
            screen_cache=ScreenCache.default_path(subset.index, cfg.data.index_cache),
            **common,  # type: ignore[arg-type]
        )
    backend = check_backend(str(cfg.data.get("augment_backend", "fast")))
    if backend == "batch":
        on_device = batch_augment_on_device(cfg)
        return PretrainDataModule(
            subset,
            BatchAugment(specs, mean, std),
            augment_on_device=on_device,
            **common,  # type: ignore[arg-type]
        )
    view_cls = FastMultiView if backend == "fast" else MultiViewTransform
    return PretrainDataModule(
        subset,
        view_cls(specs, mean, std),
        in_memory=cfg.data.get("in_memory", "auto"),
        **common,  # type: ignore[arg-type]
    )


BATCH_AUGMENT_PLACES = ("auto", "workers", "device")


def batch_augment_on_device(cfg: DictConfig) -> bool:
    """``data.batch_augment_on``: ``auto`` augments on the GPU when the run trains on one (after
    the transfer), else in the DataLoader workers; ``workers`` or ``device`` force one place.
    """
    place = str(cfg.data.get("batch_augment_on", "auto"))
    if place not in BATCH_AUGMENT_PLACES:
        raise UserError(
            f"unknown data.batch_augment_on {place!r}; valid: {', '.join(BATCH_AUGMENT_PLACES)}"
        )
    if place == "auto":
        return _accelerator(cfg) in ("gpu", "cuda")
    return place == "device"


def budget_notes(cfg: DictConfig, plan: BudgetPlan) -> list[str]:
    """Lines under the plan table: the config keys the budget replaced, and a recipe's global
    batch that an explicit per-device ``optimizer.batch_size`` overrode.
    """
    notes = []
    wanted = cfg.optimizer.get("global_batch_size")
    if wanted is not None and int(wanted) != plan.global_batch:
        notes.append(
            f"optimizer.batch_size={cfg.optimizer.batch_size} per device (solo-learn's meaning): "
            f"G = {plan.global_batch}, not the recipe's global_batch_size {wanted}"
        )
    max_epochs = cfg.get("max_epochs")
    if max_epochs in (None, -1):
        return notes
    if cfg.budget.get("C") is None and plan.mode == "images":
        return [
            f"budget.C not set: C = max_epochs {max_epochs} x N_ref {plan.N_ref:,} = "
            f"{plan.C:,} images, trained as {plan.steps:,} steps",
            *notes,
        ]
    return [
        f"max_epochs {max_epochs} in the config -> replaced by the budget: "
        f"{plan.steps:,} steps (E = {plan.epochs:,.2f} epochs of N = {plan.N:,})",
        *notes,
    ]


def _run_version() -> str:
    """A new run id; DDP children (which re-run this script) take rank 0's from the environment."""
    if int(os.environ.get("LOCAL_RANK", "0")) > 0 and os.environ.get(VERSION_ENV):
        return os.environ[VERSION_ENV]
    os.environ[VERSION_ENV] = version = new_version()
    return version


def _baseline_run(cfg: DictConfig, model: torch.nn.Module, plan: BudgetPlan) -> PretrainResult:
    """Write the ``baseline`` run (the method as seeded, or raw pixels) instead of training."""
    kind = check_baseline(str(cfg.baseline))
    crop = int(OmegaConf.select(cfg, "augmentations.0.crop_size", default=None) or 224)
    backbone, entry = baseline_backbone(kind, model, crop)
    folder = Path(cfg.checkpoint.dir) / str(cfg.method) / _run_version()
    path = write_baseline(cfg, backbone, entry, folder)
    console.print(f"Baseline {kind}: nothing trained; wrote {path}")
    return PretrainResult(checkpoint=path, ledger={}, plan=plan, cfg=cfg)


def run_pretrain(raw_cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> PretrainResult:
    """Run one budgeted pretraining and return its checkpoint, ledger and plan.

    Args:
        raw_cfg: the composed hydra config.
        callbacks: extra Lightning callbacks (after the checkpointer, ledger and bad-image guard).
    """
    extra_callbacks = list(callbacks or [])
    cfg = resolve_pretrain_cfg(raw_cfg)
    pl.seed_everything(int(cfg.seed), workers=True)
    index = _open_split(cfg, str(cfg.data.train_path), "train")
    subset = select_subset(index, float(cfg.data.fraction), stratified=bool(cfg.data.stratified))
    num_classes = 0 if cfg.data.no_labels else index.num_classes
    accelerator = _accelerator(cfg)
    world = resolve_world(
        accelerator, trainer_devices(cfg, accelerator), int(cfg.num_nodes), cfg.get("strategy")
    )
    cfg, plan = attach_plan(
        cfg,
        dataset_size=len(index),
        subset_size=len(subset),
        num_classes=num_classes,
        world_size=world.size,
    )
    complete = preflight(cfg, index, subset, plan, open_split=_open_split)
    if complete is not None:  # resume_from_checkpoint of a finished run: nothing to train
        return PretrainResult(complete.checkpoint, complete.ledger, plan, cfg)
    method_cls = get_method(str(cfg.method))
    schedules = method_cls.converted_schedules(cfg, plan)
    warnings = check_switches(
        schedules, plan.steps, allow_late=bool(cfg.budget.allow_late_switches)
    )
    console.print(
        plan_table(
            [(f"{cfg.data.dataset} fraction={cfg.data.fraction}", plan, schedules)],
            title=f"Budget plan: {cfg.method} ({BACKEND} backend)",
            notes=[*budget_notes(cfg, plan), *(f"warning: {line}" for line in warnings)],
        )
    )

    model = method_cls(cfg)
    if cfg.get("baseline"):  # an untrained run to probe, not a training (run/baselines.py)
        return _baseline_run(cfg, model, plan)
    if model.settings.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    val_subset = None
    if cfg.data.val_path and not cfg.data.no_labels:
        val_subset = select_subset(_open_split(cfg, str(cfg.data.val_path), "test"), -1)
    datamodule = build_datamodule(cfg, subset, val_subset)
    if cfg.debug_augmentations:  # solo-learn prints the transforms
        console.print("Transforms:", getattr(datamodule, "transform", None) or cfg.augmentations)

    logdir = Path(cfg.checkpoint.dir) / str(cfg.method)
    resume = cfg.get("resume_from_checkpoint")
    found = AutoResume()
    if resume is None and cfg.auto_resume.enabled:
        hours = float(cfg.auto_resume.max_hours)
        found = auto_resume(logdir, cfg, hours, run_identity(subset, cfg))
        resume = str(found.checkpoint) if found.checkpoint else None
        if resume:
            console.print(f"Resuming from {resume}")
    version = Path(resume).parent.name if resume else _run_version()
    found.announce(version)  # a new run instead of a resume says why
    writer = cfg.checkpoint.enabled and writes_run(os.environ)  # one run, one writer
    lock = lock_run(logdir / version, resume) if writer else None
    callbacks = []
    checkpointer = None
    if cfg.checkpoint.enabled:
        frequency = plan.epochs_to_steps(float(cfg.checkpoint.frequency))
        checkpointer = SoloCheckpointer(
            cfg, logdir, version, frequency, bool(cfg.checkpoint.keep_prev)
        )
        callbacks.append(checkpointer)
    ledger = BudgetLedger(
        plan, logdir / version / "ledger.json" if cfg.checkpoint.enabled else None
    )
    loggers = build_loggers(cfg, version, resume_from=resume)
    callbacks += [
        RunIdentity.of(subset, cfg),
        GlobalBatchCheck(plan, int(cfg.optimizer.batch_size)),
        ledger,
        VisitLedger(logdir / version / "visits.npz" if cfg.checkpoint.enabled else None),
        BadImageGuard(datamodule),
        *logger_callbacks(loggers),
        *extra_callbacks,
    ]
    # Last: a stop on a signal saves once every other callback has finished the step.
    stopper = GracefulStop(checkpointer, auto_resume=bool(cfg.auto_resume.enabled))
    callbacks.append(stopper)

    trainer = pl.Trainer(**trainer_kwargs(cfg, plan, callbacks, loggers))
    log_run_config(loggers, cfg, model)
    try:
        with stopper.catching_signals(trainer):
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
    finally:
        if trainer.is_global_zero:
            finish_loggers(loggers)
        if lock is not None:
            lock.release()
    path = checkpointer.last_path if checkpointer else None
    if trainer.is_global_zero:
        console.print(ledger_table(ledger.summary))
        if path:
            console.print(f"Checkpoint: {path}")
    return PretrainResult(checkpoint=path, ledger=ledger.summary, plan=plan, cfg=cfg)
