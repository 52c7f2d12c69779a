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
from omegaconf import DictConfig
from torch import nn

from solo_diversity.config.linear import LinearConfig, resolve_linear
from solo_diversity.config.probe import ProbeSettings
from solo_diversity.config.run_config import Hardware
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
from solo_diversity.index import ensure_index, open_index, select_subset
from solo_diversity.index.splits import check_validation_split
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
    trainer: dict[str, Any],
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

    Args:
        trainer: the config's Trainer keys (:attr:`LinearConfig.trainer`).
        settings: the probe's settings.
        hardware: the machine.
        callbacks: every callback, in order.
        loggers: the probe's loggers.
    """
    if settings.mode == "features":
        hardware = one_device(hardware)
    return trainer_arguments(
        hardware,
        trainer,
        callbacks=callbacks,
        loggers=loggers,
        precision_note=_precision_note,
        max_epochs=settings.max_epochs,
    )


def _identity(args: dict[str, Any]) -> dict[str, Any]:
    return {k: args.get(k) for k in PROBE_IDENTITY_KEYS}


def find_unfinished_probe(logdir: Path, record: dict[str, Any], max_hours: float) -> Path | None:
    """The newest checkpoint of an unfinished probe with the same identity keys, if any.

    Args:
        logdir: the folder of the probes (``{checkpoint.dir}/linear``).
        record: the probe's resolved config (:attr:`LinearConfig.record`).
        max_hours: how old its last checkpoint may be.
    """
    wanted = _identity(record)
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


def _merged(run: dict[str, Any], config: LinearConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, backbone) of the probe: the run's, overridden by the probe config's set values."""
    given = config.data
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
    ours = config.backbone
    backbone = {
        **theirs,
        **ours,
        "kwargs": {**(theirs.get("kwargs") or {}), **(ours.get("kwargs") or {})},
    }
    if "name" not in backbone or not data.get("dataset"):
        raise UserError(
            f"no args.json beside {config.checkpoint_file}: set backbone.name and data.dataset"
        )
    return data, backbone


def with_probe_recipe(
    config: LinearConfig, run: dict[str, Any], method: str | None
) -> LinearConfig:
    """``config`` with its unset ``optimizer.lr``/``weight_decay`` set to the probe recipe's.

    The recipe (:func:`~solo_diversity.evaluation.recipes.probe_recipe`) is solo-learn's
    per-method linear rate at the pretraining run's scale: its ``recipe.scale`` and
    ``recipe.arch``, else the scale of its dataset. Values the probe config sets are kept.
    """
    if config.rates_set:
        return config
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
    return config.with_rates(found.lr, found.weight_decay)


@dataclass(frozen=True)
class Probe:
    """One probe, resolved: what is probed, on which labelled data, with which settings."""

    config: LinearConfig  # with the recipe's rates
    ckpt: Path
    run: dict[str, Any]  # the pretraining run's args.json
    dataset: str
    backbone_name: str
    method: str | None
    model: nn.Module  # the frozen backbone
    data: ProbeData
    train: Any  # the labelled subset
    test: Any

    @property
    def settings(self) -> ProbeSettings:
        """The probe's settings, the recipe's rates filled."""
        return self.config.settings

    @property
    def hardware(self) -> Hardware:
        """The machine the probe trains on."""
        return self.config.hardware

    @property
    def num_classes(self) -> int:
        return int(self.train.index.num_classes)


def resolve_probe(config: LinearConfig) -> Probe:
    """The resolved :class:`Probe` of a config: its checkpoint read, its labelled data opened."""
    ckpt = config.checkpoint_file
    if not ckpt.is_file():
        raise UserError(f"checkpoint {ckpt} does not exist")
    verify_checksum(ckpt)
    run = read_run_args(ckpt)
    data, backbone = _merged(run, config)
    dataset = str(data["dataset"])
    crop = int(data.get("crop_size") or run.get("augmentations", [{}])[0].get("crop_size", 224))
    method = probe_method(config.pretrain_method, run, ckpt)
    config = with_probe_recipe(config, run, method)
    settings = config.settings
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
    hardware = config.hardware
    # Only the probe's own dali.device decides (a run's args.json may say gpu on a CPU machine).
    probe_data = ProbeData(
        crop,
        *probe_stats(dataset),
        data_format=str(data.get("format") or "h5"),
        num_workers=int(data.get("num_workers") or 0),
        dali_device=resolve_device(config.dali_device, on_gpu=hardware.on_gpu),
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
    return Probe(
        config,
        ckpt,
        run,
        dataset,
        str(backbone["name"]),
        method,
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


def _probe_resume(config: LinearConfig, logdir: Path) -> str | None:
    """The checkpoint to continue: the explicit one, else an unfinished probe's (auto-resume)."""
    resume = config.resume.checkpoint
    if resume is None and config.resume.auto:
        found = find_unfinished_probe(logdir, config.record, config.resume.max_hours)
        resume = str(found) if found else None
        if resume:
            console.print(f"Resuming the probe from {resume}")
    return None if resume is None else str(resume)


def _fit(
    probe: Probe,
    module: LinearProbe,
    loaders: tuple[Any, Any],
    extra: list[pl.Callback],
) -> tuple[pl.Trainer, Path | None, Path | None]:
    """Train the probe under the harness.

    Returns:
        The trainer, the probe checkpoint (if saved) and where to mark the probe finished.
    """
    config = probe.config
    logdir = config.checkpoint.dir / "linear"
    resume = _probe_resume(config, logdir)
    version = run_version(resume, new_version)
    loggers = build_loggers(config.loggers, version, resume_from=resume)
    saver = checkpointer(
        config.record,
        config.checkpoint,
        logdir,
        version,
        lambda: (
            int(config.checkpoint.frequency)
            * max(1, len(loaders[0]) // config.accumulate_grad_batches)
        ),  # steps per epoch
    )
    watchers = ordered_callbacks([saver] if saver else [], loggers, extra)
    trainer = pl.Trainer(
        **trainer_kwargs(config.trainer, probe.settings, probe.hardware, watchers, loggers)
    )
    with logging_run(trainer, loggers, config.record, module):
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
    probe = resolve_probe(resolve_linear(raw_cfg))
    start = time.time()
    module, loaders = _module_and_loaders(probe)
    trainer, saved, marker = _fit(probe, module, loaders, list(callbacks or []))
    record = {
        **probe_record(probe, module.last_val, saved),
        "probe_seconds": round(time.time() - start, 2),
        "wall_seconds": round(time.time() - wall, 2),
        **provenance(probe.hardware.accelerator),
    }
    if trainer.is_global_zero:
        results = probe.config.results
        results.parent.mkdir(parents=True, exist_ok=True)
        with results.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if marker is not None:
            marker.write_text(json.dumps(record, indent=2))
    return ProbeResult(record=record, checkpoint=saved)
