# SPDX-License-Identifier: MIT
"""Linear probing of a frozen backbone with a fraction of the labels (the paper's Table 5).

The backbone is frozen, so features are computed once and a linear layer is trained on them with
SGD and a cosine schedule (Lightning runs the loop). The labelled subset is stratified and nested:
the first round(k * n_c) images of each class in the index's shuffled order, so 5% is inside 10%
is inside 50%. Each probe appends one JSON line to a results file for the report.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F  # noqa: N812
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from solo_diversity.data import dataset_stats, resolve_device
from solo_diversity.errors import UserError
from solo_diversity.evaluation.features import (
    ProbeData,
    extract_features,
    load_backbone,
    read_run_args,
)
from solo_diversity.index import ensure_index, open_index, select_subset
from solo_diversity.methods.settings import plain
from solo_diversity.schedules import warmup_cosine

log = logging.getLogger(__name__)

LABEL_FRACTIONS = (0.05, 0.1, 0.5, 1.0)


class LinearHead(pl.LightningModule):
    """A linear classifier on fixed features, trained with SGD + per-step cosine decay."""

    def __init__(
        self, in_dim: int, num_classes: int, lr: float, weight_decay: float, total_steps: int
    ):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_dim, affine=False)  # standardises features; no parameters
        self.linear = nn.Linear(in_dim, num_classes)
        self.lr, self.weight_decay, self.total_steps = lr, weight_decay, total_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) features -> (B, num_classes) logits."""
        return self.linear(self.norm(x))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("probe_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(
            self.linear.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay
        )
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: warmup_cosine(step, self.total_steps, 0, 1.0)
        )
        return [opt], [{"scheduler": sched, "interval": "step"}]


@dataclass
class ProbeResult:
    """One probe: the record appended to the results file."""

    record: dict[str, Any]


def _subset(
    data: dict[str, Any], split: str, fraction: float, seed: int, stratified: bool
) -> Any:
    dataset = str(data["dataset"])
    path = str(data["train_path" if split == "train" else "val_path"])
    found = ensure_index(
        dataset, path, split=split, seed=seed, data_format=str(data.get("format", "h5")),
        cache_dir=Path(data["index_cache"]) if data.get("index_cache") else None,
    )
    return select_subset(open_index(found, expected_dataset=dataset), fraction,
                         stratified=stratified)


def _dali_device(cfg: DictConfig, run: dict[str, Any]) -> str:
    """``dali.device`` of the probe config, else the run's; ``auto`` -> gpu when one is visible."""
    device = str(OmegaConf.select(cfg, "dali.device", default=None)
                 or run.get("dali", {}).get("device") or "auto")
    return resolve_device(device, on_gpu=torch.cuda.is_available())


def run_linear(cfg: DictConfig) -> ProbeResult:
    """Probe ``cfg.pretrained_feature_extractor`` and append the result line to ``cfg.results``."""
    ckpt = cfg.get("pretrained_feature_extractor")
    if not ckpt:
        raise UserError("set pretrained_feature_extractor=<path to a .ckpt>")
    ckpt = Path(str(ckpt))
    if not ckpt.is_file():
        raise UserError(f"checkpoint {ckpt} does not exist")
    run = read_run_args(ckpt)
    label_fraction = float(cfg.data.label_fraction)
    if not 0 < label_fraction <= 1:
        raise UserError(
            f"data.label_fraction={label_fraction} must be in (0, 1], e.g. one of {LABEL_FRACTIONS}"
        )
    data = {**run.get("data", {}), **{k: v for k, v in plain(cfg.data).items() if v is not None}}
    backbone = {
        **run.get("backbone", {}),
        **{k: v for k, v in plain(cfg.get("backbone")).items() if v is not None},
    }
    if "name" not in backbone or "dataset" not in data:
        raise UserError(f"no args.json beside {ckpt}: set backbone.name and data.dataset")
    crop = int(data.get("crop_size") or run.get("augmentations", [{}])[0].get("crop_size", 224))
    stem = backbone.get("small_input_stem")
    model = load_backbone(
        ckpt,
        str(backbone["name"]),
        small_input_stem=crop <= 64 if stem is None else bool(stem),
        kwargs=dict(backbone.get("kwargs") or {}),
    )
    if torch.cuda.is_available():  # features once, on the GPU when there is one
        model = model.cuda()
    pl.seed_everything(int(cfg.seed), workers=True)
    seed = int(data.get("index_seed", 0))
    train = _subset(data, "train", label_fraction, seed, stratified=True)
    test = _subset(data, "test", -1, seed, stratified=False)
    probe = ProbeData(
        crop, *dataset_stats(str(data["dataset"])), data_format=str(data.get("format", "h5")),
        num_workers=int(data.get("num_workers", 0)), dali_device=_dali_device(cfg, run),
        screen_cache=data.get("index_cache"),
    )
    train_views = int(data.get("train_views") or 0)
    if train_views < 0:
        raise UserError(f"data.train_views={train_views} must be >= 0")
    start = time.time()
    # Frozen backbone: features once. train_views > 0 adds that many RRC + flip views per
    # labelled image (solo-learn's linear training views) instead of the one eval view.
    parts = [extract_features(model, probe.batches(train, train=True)) for _ in range(train_views)]
    x_train, y_train = (
        (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
        if parts
        else extract_features(model, probe.batches(train, train=False))
    )
    x_test, y_test = extract_features(model, probe.batches(test, train=False))
    num_classes = train.index.num_classes
    if num_classes < 2:
        raise UserError(f"the probe needs labels, and index {train.index.path} has none")
    opt = cfg.optimizer
    batch = min(int(opt.batch_size), len(x_train))
    steps = int(opt.max_epochs) * max(1, len(x_train) // batch)
    head = LinearHead(x_train.size(1), num_classes, float(opt.lr), float(opt.weight_decay), steps)
    loader = DataLoader(
        TensorDataset(x_train, y_train), batch_size=batch, shuffle=True, drop_last=True
    )
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(head, loader)
    head.eval()
    with torch.no_grad():
        accuracy = float((head(x_test).argmax(1) == y_test).float().mean() * 100)
    plan = run.get("budget_plan", {})
    record = {
        "method": run.get("method"),
        "dataset": data["dataset"],
        "backbone": backbone["name"],
        "C": plan.get("C"),
        "C_eff": plan.get("C_eff"),
        "N": plan.get("N"),
        "D": plan.get("D"),
        "E": plan.get("E"),
        "fraction": run.get("data", {}).get("fraction"),
        "label_fraction": label_fraction,
        "n_labelled": len(train),
        "train_views": train_views,
        "data_format": probe.data_format,
        "n_test": len(test),
        "seed": run.get("seed"),
        "probe_seed": int(cfg.seed),
        "accuracy": round(accuracy, 3),
        "checkpoint": str(ckpt),
        "probe_seconds": round(time.time() - start, 2),
    }
    results = Path(str(cfg.results))
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    log.info("probe top-1 %.2f%% written to %s", accuracy, results)
    return ProbeResult(record=record)
