# SPDX-License-Identifier: MIT
"""Linear evaluation of a checkpoint with a fraction of the labels (the paper's Table 5).

Two modes (``probe.mode``):

- ``protocol`` (default): solo-learn's ``main_linear.py`` protocol, the one behind the paper's
  numbers. A frozen backbone in eval mode and a ``classifier`` layer, trained by Lightning for
  ``max_epochs`` epochs on augmented views drawn afresh every epoch, with the configured optimizer
  (LR scaled by ``batch_size * devices * num_nodes / 256``) and scheduler, validated every epoch
  on the val split; top-1 and top-5 of the last epoch are reported.
- ``features`` (fast; not the paper's protocol): the same classifier, optimizer and schedule on
  frozen features computed once (the eval view, or ``data.train_views`` augmented views each).

The labelled subset is stratified and nested in both modes: the first round(k * n_c) images of
each class in the index's shuffled order, so 5% is inside 10% is inside 50%. Each probe appends
one JSON line to ``results``. With ``checkpoint.enabled`` the probe is saved in solo-learn's
layout under ``{checkpoint.dir}/linear/`` and ``auto_resume.enabled`` continues an unfinished one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from solo_diversity.config.loggers import check_logger_keys
from solo_diversity.config.pretrain import copy_cfg
from solo_diversity.config.run_config import (
    Hardware,
    checkpoint_settings,
    logger_settings,
    resolve_hardware,
    trainer_keys,
)
from solo_diversity.console import console
from solo_diversity.data import resolve_device
from solo_diversity.errors import UserError
from solo_diversity.evaluation.features import (
    ProbeData,
    load_backbone,
    probe_method,
    read_run_args,
    verify_checksum,
)
from solo_diversity.evaluation.probe_data import feature_loaders, probe_stats, protocol_loaders
from solo_diversity.evaluation.protocol import LinearProbe
from solo_diversity.evaluation.provenance import provenance
from solo_diversity.evaluation.recipes import probe_recipe, scale_of_dataset
from solo_diversity.evaluation.settings import (
    ProbeSettings,
    check_probe_settings,
    probe_settings,
    resolve_linear_cfg,
)
from solo_diversity.index import ensure_index, open_index, select_subset
from solo_diversity.index.splits import check_validation_split
from solo_diversity.methods.settings import plain
from solo_diversity.models.backbones import uses_small_stem
from solo_diversity.run.checkpoint import new_version
from solo_diversity.run.harness import (
    checkpointer,
    logging_run,
    one_device,
    ordered_callbacks,
    run_version,
    trainer_arguments,
)
from solo_diversity.run.loggers import build_loggers

LABEL_FRACTIONS = (0.05, 0.1, 0.5, 1.0)
FINISHED = "result.json"  # written beside a probe's checkpoints when it has finished
# Keys that make two probe configs the same experiment (so that one may resume the other).
PROBE_IDENTITY_KEYS = (
    "name",
    "pretrained_feature_extractor",
    "pretrain_method",
    "backbone",
    "data",
    "probe",
    "optimizer",
    "scheduler",
    "max_epochs",
    "seed",
    "label_smoothing",
)
LINEAR_GPU_HINT = "run with accelerator=cpu (and strategy=auto sync_batchnorm=False on one CPU)"


@dataclass
class ProbeResult:
    """One probe: the record appended to the results file, and the probe checkpoint if saved."""

    record: dict[str, Any]
    checkpoint: Path | None = None


def probe_subset(
    data: dict[str, Any], split: str, fraction: float, seed: int, stratified: bool
) -> Any:
    """The probe's ``split`` subset of the run's data: a ``fraction`` (stratified: per class).

    Args:
        data: the merged ``data`` config (``dataset``, ``train_path``, ``val_path``, ``format``).
        split: ``"train"`` (reads ``train_path``) or ``"test"`` (``val_path``).
        fraction: in (0, 1], or -1 for all.
        seed: shuffle seed of an index built here.
        stratified: the first round(fraction * n_c) entries of each class c (nested).
    """
    dataset = str(data["dataset"])
    key = "train_path" if split == "train" else "val_path"
    path = data.get(key)
    if not path:
        raise UserError(f"set data.{key} (the checkpoint's run has none)")
    found = ensure_index(
        dataset,
        str(path),
        split=split,
        seed=seed,
        data_format=str(data.get("format") or "h5"),
        cache_dir=Path(data["index_cache"]) if data.get("index_cache") else None,
    )
    return select_subset(
        open_index(found, expected_dataset=dataset), fraction, stratified=stratified
    )


def _precision_note(precision: str) -> None:
    console.print(f"note: precision={precision} is GPU-only; the probe runs 32-true on the CPU")


def trainer_kwargs(
    cfg: DictConfig,
    settings: ProbeSettings,
    hardware: Hardware,
    callbacks: list[pl.Callback],
    loggers: list[Logger],
) -> dict[str, Any]:
    """The probe's Trainer arguments: the harness's (:mod:`~solo_diversity.run.harness`).

    ``precision=16`` on a CPU becomes 32-true (said on the console), and ``sync_batchnorm`` holds
    only on GPUs across processes (:func:`~solo_diversity.budget.world.sync_batchnorm_for`). The
    features mode trains on one device: its global batch is already the protocol's
    ``batch_size * devices * nodes``.
    """
    if settings.mode == "features":
        hardware = one_device(hardware)
    return trainer_arguments(
        hardware,
        trainer_keys(cfg),
        callbacks=callbacks,
        loggers=loggers,
        precision_note=_precision_note,
        max_epochs=settings.max_epochs,
    )


def _identity(args: dict[str, Any]) -> dict[str, Any]:
    return {k: args.get(k) for k in PROBE_IDENTITY_KEYS}


def find_unfinished_probe(logdir: Path, cfg: DictConfig, max_hours: float) -> Path | None:
    """The newest checkpoint of an unfinished probe with the same identity keys, if any."""
    wanted = _identity(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    found = []
    for args_file in logdir.glob("*/args.json") if logdir.is_dir() else []:
        if (args_file.parent / FINISHED).exists():
            continue
        try:
            same = _identity(json.loads(args_file.read_text())) == wanted
        except json.JSONDecodeError:
            continue
        ckpts = sorted(args_file.parent.glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
        if same and ckpts and time.time() - ckpts[-1].stat().st_mtime <= max_hours * 3600:
            found.append(ckpts[-1])
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _merged(run: dict[str, Any], cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, backbone) of the probe: the run's, overridden by the probe config's set values."""
    given = {k: v for k, v in plain(cfg.data).items() if v is not None}
    run_data = run.get("data", {})
    other = given.get("dataset") not in (None, run_data.get("dataset"))
    if other and not (given.get("train_path") and given.get("val_path")):
        # The run's paths hold the pretraining set: probing "another" set on them is silently wrong.
        raise UserError(
            f"the probe set data.dataset={given['dataset']} is not the pretraining "
            f"set ({run_data.get('dataset')}); give its data.train_path and "
            "data.val_path"
        )
    data = {**run_data, **given}
    theirs = dict(run.get("backbone") or {})
    ours = {k: v for k, v in plain(cfg.backbone).items() if v is not None}
    backbone = {
        **theirs,
        **ours,
        "kwargs": {**(theirs.get("kwargs") or {}), **(ours.get("kwargs") or {})},
    }
    if "name" not in backbone or not data.get("dataset"):
        raise UserError(
            f"no args.json beside {cfg.pretrained_feature_extractor}: set "
            "backbone.name and data.dataset"
        )
    return data, backbone


def with_probe_recipe(cfg: DictConfig, run: dict[str, Any], method: str | None) -> DictConfig:
    """A copy of ``cfg`` whose unset ``optimizer.lr``/``weight_decay`` are the probe recipe's.

    The recipe (:func:`~solo_diversity.evaluation.recipes.probe_recipe`) is solo-learn's
    per-method linear rate at the pretraining run's scale: its ``recipe.scale`` and
    ``recipe.arch``, else the scale of its dataset. Values the probe config sets are kept.
    """
    if cfg.optimizer.lr is not None and cfg.optimizer.weight_decay is not None:
        return cfg
    if method is None:
        raise UserError("the checkpoint names no method: set optimizer.lr (or pretrain_method)")
    recipe = run.get("recipe") or {}
    dataset = str((run.get("data") or {}).get("dataset") or "")
    backbone = str((run.get("backbone") or {}).get("name") or "")
    found = probe_recipe(
        method,
        str(recipe.get("scale") or scale_of_dataset(dataset)),
        str(recipe.get("arch") or ("vit" if backbone.startswith("vit") else "resnet")),
    )
    out = copy_cfg(cfg)
    if out.optimizer.lr is None:
        out.optimizer.lr = found.lr
    if out.optimizer.weight_decay is None:
        out.optimizer.weight_decay = found.weight_decay
    return out


@dataclass(frozen=True)
class Probe:
    """One probe, resolved: what is probed, on which labelled data, with which settings."""

    ckpt: Path
    run: dict[str, Any]  # the pretraining run's args.json
    dataset: str
    backbone_name: str
    method: str | None
    settings: ProbeSettings
    hardware: Hardware
    model: nn.Module  # the frozen backbone
    data: ProbeData
    train: Any  # the labelled subset
    test: Any

    @property
    def num_classes(self) -> int:
        return int(self.train.index.num_classes)


def resolve_probe(raw_cfg: DictConfig) -> tuple[DictConfig, Probe]:
    """The probe's config (with the recipe's LR) and the resolved :class:`Probe`."""
    cfg = resolve_linear_cfg(raw_cfg)
    check_probe_settings(cfg)
    check_logger_keys(cfg)
    ckpt = Path(str(cfg.pretrained_feature_extractor))
    if not ckpt.is_file():
        raise UserError(f"checkpoint {ckpt} does not exist")
    verify_checksum(ckpt)
    run = read_run_args(ckpt)
    data, backbone = _merged(run, cfg)
    dataset = str(data["dataset"])
    crop = int(data.get("crop_size") or run.get("augmentations", [{}])[0].get("crop_size", 224))
    given = None if cfg.pretrain_method in (None, "None") else str(cfg.pretrain_method)
    method = probe_method(given, run, ckpt)
    cfg = with_probe_recipe(cfg, run, method)
    settings = probe_settings(cfg)
    model = load_backbone(
        ckpt,
        str(backbone["name"]),
        small_input_stem=uses_small_stem(dataset, backbone.get("small_input_stem")),
        kwargs=dict(backbone["kwargs"]),
        method=method,
    )
    pl.seed_everything(settings.seed, workers=True)
    index_seed = int(data.get("index_seed", 0))
    train = probe_subset(data, "train", settings.label_fraction, index_seed, stratified=True)
    test = probe_subset(data, "test", -1, index_seed, stratified=False)
    check_validation_split(train.index, test.index)
    if train.index.num_classes < 2:
        raise UserError(f"the probe needs labels, and index {train.index.path} has none")
    hardware = resolve_hardware(cfg, LINEAR_GPU_HINT)
    # Only the probe's own dali.device decides (a run's args.json may say gpu on a CPU machine).
    probe_data = ProbeData(
        crop,
        *probe_stats(dataset),
        data_format=str(data.get("format") or "h5"),
        num_workers=int(data.get("num_workers") or 0),
        dali_device=resolve_device(str(cfg.dali.device), on_gpu=hardware.on_gpu),
        screen_cache=data.get("index_cache"),
    )
    if (
        probe_data.data_format == "dali"
        and settings.mode == "protocol"
        and (settings.devices * settings.num_nodes > 1)
    ):
        raise UserError(
            "data.format=dali probes on one device (its training views are not "
            "sharded by rank); use devices=1, or data.format=h5/image_folder"
        )
    return cfg, Probe(
        ckpt,
        run,
        dataset,
        str(backbone["name"]),
        method,
        settings,
        hardware,
        model,
        probe_data,
        train,
        test,
    )


def _module_and_loaders(probe: Probe) -> tuple[LinearProbe, tuple[Any, Any]]:
    """The classifier module and its (train, val) loaders in the probe's mode."""
    settings = probe.settings
    if settings.mode == "protocol":
        loaders = protocol_loaders(
            probe.data, probe.train, probe.test, settings.optimizer.batch_size, settings.seed
        )
        return LinearProbe(probe.model, probe.num_classes, settings), loaders
    model = probe.model.cuda() if probe.hardware.on_gpu else probe.model
    train_loader, val_loader, dim = feature_loaders(
        model, probe.data, probe.train, probe.test, settings.global_batch, settings.train_views
    )
    module = LinearProbe(nn.Identity(), probe.num_classes, settings, num_features=dim)
    return module, (train_loader, val_loader)


def probe_record(probe: Probe, metrics: dict[str, float], saved: Path | None) -> dict[str, Any]:
    """The result line of a finished probe (timings and machine are added by the caller)."""
    run, settings = probe.run, probe.settings
    plan = {} if run.get("baseline") else run.get("budget_plan", {})  # a baseline saw nothing
    opt, sch = settings.optimizer, settings.scheduler
    return {
        "method": probe.method,
        "dataset": probe.dataset,
        "backbone": probe.backbone_name,
        "C": plan.get("C"),
        "C_eff": plan.get("C_eff"),
        "N": plan.get("N"),
        "D": plan.get("D"),
        "E": plan.get("E"),
        "fraction": run.get("data", {}).get("fraction"),
        "label_fraction": settings.label_fraction,
        "n_labelled": len(probe.train),
        "train_views": settings.train_views,
        "data_format": probe.data.data_format,
        "n_test": len(probe.test),
        "seed": run.get("seed"),
        "baseline": run.get("baseline"),  # random_init | raw_pixels: an untrained floor
        "probe_seed": settings.seed,
        "probe_mode": settings.mode,
        "accuracy": round(metrics["val_acc1"], 3),
        "acc1": round(metrics["val_acc1"], 3),
        "acc5": round(metrics["val_acc5"], 3),
        "val_loss": round(metrics["val_loss"], 5),
        "optimizer": opt.name,
        "lr": opt.base_lr,
        "lr_scaled": opt.lr,
        "weight_decay": opt.weight_decay,
        "batch_size": opt.batch_size,
        "global_batch": settings.global_batch,
        "scheduler": sch.name,
        "lr_decay_steps": list(sch.lr_decay_steps),
        "max_epochs": settings.max_epochs,
        "label_smoothing": settings.label_smoothing,
        "checkpoint": str(probe.ckpt),
        "probe_checkpoint": str(saved) if saved else None,
    }


def _probe_resume(cfg: DictConfig, logdir: Path) -> str | None:
    """The checkpoint to continue: the explicit one, else an unfinished probe's (auto-resume)."""
    resume = cfg.resume_from_checkpoint
    if resume is None and cfg.auto_resume.enabled:
        found = find_unfinished_probe(logdir, cfg, float(cfg.auto_resume.max_hours))
        resume = str(found) if found else None
        if resume:
            console.print(f"Resuming the probe from {resume}")
    return None if resume is None else str(resume)


def _fit(
    cfg: DictConfig,
    probe: Probe,
    module: LinearProbe,
    loaders: tuple[Any, Any],
    extra: list[pl.Callback],
) -> tuple[pl.Trainer, Path | None, Path | None]:
    """Train the probe under the harness.

    Returns:
        The trainer, the probe checkpoint (if saved) and where to mark the probe finished.
    """
    logdir = Path(str(cfg.checkpoint.dir)) / "linear"
    resume = _probe_resume(cfg, logdir)
    version = run_version(resume, new_version)
    loggers = build_loggers(logger_settings(cfg), version, resume_from=resume)
    saver = checkpointer(
        cfg,
        checkpoint_settings(cfg),
        logdir,
        version,
        lambda: (
            int(cfg.checkpoint.frequency)
            * max(1, len(loaders[0]) // int(cfg.accumulate_grad_batches))
        ),  # steps per epoch
    )
    watchers = ordered_callbacks([saver] if saver else [], loggers, extra)
    trainer = pl.Trainer(**trainer_kwargs(cfg, probe.settings, probe.hardware, watchers, loggers))
    with logging_run(trainer, loggers, cfg, module):
        trainer.fit(module, *loaders, ckpt_path=resume)
        if module.last_val_epoch != trainer.current_epoch - 1 or not module.last_val:
            trainer.validate(module, loaders[1], verbose=False)  # the final classifier's numbers
    if saver is None:
        return trainer, None, None
    # A resumed probe that had nothing left to train keeps its file.
    saved = saver.last_path or (Path(resume) if resume else None)
    return trainer, saved, saver.version_dir / FINISHED


def run_linear(raw_cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> ProbeResult:
    """Probe ``pretrained_feature_extractor`` and append the result line to ``results``.

    Args:
        raw_cfg: the composed hydra config (``linear_div.yaml`` or a solo-learn linear YAML).
        callbacks: extra Lightning callbacks.
    """
    wall = time.time()
    cfg, probe = resolve_probe(raw_cfg)
    start = time.time()
    module, loaders = _module_and_loaders(probe)
    trainer, saved, marker = _fit(cfg, probe, module, loaders, list(callbacks or []))
    record = {
        **probe_record(probe, module.last_val, saved),
        "probe_seconds": round(time.time() - start, 2),
        "wall_seconds": round(time.time() - wall, 2),
        **provenance(probe.hardware.accelerator),
    }
    if trainer.is_global_zero:
        results = Path(str(cfg.results))
        results.parent.mkdir(parents=True, exist_ok=True)
        with results.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if marker is not None:
            marker.write_text(json.dumps(record, indent=2))
    return ProbeResult(record=record, checkpoint=saved)
