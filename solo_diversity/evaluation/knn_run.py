# SPDX-License-Identifier: MIT
"""Offline kNN evaluation of a checkpoint (``main_knn.py``): features once, then a sweep.

solo-learn's ``main_knn.py`` keys are kept: ``pretrained_checkpoint_dir`` (the run's folder; here
a ``.ckpt`` file works too), ``k``, ``temperature``, ``distance_function`` and ``feature_type``
are lists swept as upstream sweeps them (every ``feature_type`` x ``k`` x ``distance_function``,
and every ``temperature`` for cosine only), and ``dataset``, ``train_data_path``,
``val_data_path``, ``data_format``, ``batch_size``, ``num_workers`` default to the pretraining run's
(``args.json``). As upstream, the whole training split is the bank, both splits go through the
evaluation transform, ``backbone`` features are the backbone's output and ``projector`` features
are the method's ``z``. Each result is one JSON line appended to ``results``. The run's machine
settings (its ``dali.device``, accelerator, devices) are not read: ``dali.device`` is this
command's own (``auto``: the GPU when one is visible), and a checkpoint that no longer matches its
``.sha256`` file is refused. The config is resolved once, by
:func:`~solo_diversity.config.knn.resolve_knn`; its
:class:`~solo_diversity.config.run_config.Hardware` decides the device the features are computed
on through the harness (:func:`~solo_diversity.run.harness.compute_device`), as for the runs
that train.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from solo_diversity.config.knn import KnnConfig, Sweep, resolve_knn
from solo_diversity.data import dataset_stats, resolve_device
from solo_diversity.errors import UserError
from solo_diversity.evaluation.features import (
    ProbeData,
    extract_features,
    load_backbone,
    read_run_args,
    verify_checksum,
)
from solo_diversity.evaluation.provenance import provenance
from solo_diversity.index import ensure_index, open_index, select_subset
from solo_diversity.index.splits import check_validation_split
from solo_diversity.methods import get_method
from solo_diversity.methods.knn import knn_hits
from solo_diversity.models.backbones import uses_small_stem
from solo_diversity.run.harness import compute_device

log = logging.getLogger(__name__)

# Keys that main_knn.py accepts with or without a ``+`` (knn_div.yaml has them, older commands
# added ``+dali.device``).
KNN_COMMAND_LINE_KEYS = ("dali.device", "results")


class _Outputs(nn.Module):
    """A method as a feature extractor: ``forward`` outputs ``keys`` concatenated, (B, sum F)."""

    def __init__(self, method: nn.Module, keys: tuple[str, ...]):
        super().__init__()
        self.method, self.keys = method, keys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.method(x)
        return torch.cat([out[k].flatten(1) for k in self.keys], dim=1)


def load_method(ckpt: Path, run: dict[str, Any]) -> nn.Module:
    """The pretraining method of ``run`` (its ``args.json``) with every weight of ``ckpt``.

    Raises:
        UserError: the run's config cannot rebuild the method, or the projector weights are absent.
    """
    cfg = OmegaConf.create(run)
    if cfg.get("budget_plan") is None:  # a solo-learn run: the plan only matters for training
        cfg.budget_plan = {"C": 1, "N": 1, "N_ref": 1, "global_batch": 1, "steps": 1}
    try:
        method_cls = get_method(str(cfg.get("method")))
        method = method_cls(method_cls.add_and_assert_specific_cfg(cfg))
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure means args.json does not fit
        raise UserError(
            f"feature_type=projector: args.json beside {ckpt} cannot rebuild the method "
            f"({err.__class__.__name__}: {err})"
        ) from None
    state = torch.load(ckpt, map_location="cpu", weights_only=False).get("state_dict", {})
    missing = method.load_state_dict(state, strict=False).missing_keys
    heads = [k for k in missing if k.split(".")[0] in ("projector", "head", "backbone")]
    if heads:
        raise UserError(
            f"checkpoint {ckpt} lacks {len(heads)} projector/backbone weights, e.g. {heads[0]}"
        )
    return method.eval()


def _subset(data: dict[str, Any], path: str, split: str) -> Any:
    found = ensure_index(
        str(data["dataset"]),
        path,
        split=split,
        seed=int(data.get("index_seed", 0)),
        data_format=str(data.get("format") or "h5"),
        cache_dir=Path(data["index_cache"]) if data.get("index_cache") else None,
    )
    return select_subset(open_index(found, expected_dataset=str(data["dataset"])), -1)


def _features(
    ckpt: Path,
    run: dict[str, Any],
    data: dict[str, Any],
    feature_types: list[str],
    probe: ProbeData,
    subsets: dict[str, Any],
    on_gpu: bool,
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """{split: {feature type: (n, F)}} and {split: (n,) labels} in one pass per split."""
    backbone = dict(run.get("backbone") or {})
    if "projector" in feature_types:
        method = load_method(ckpt, run)
        if "z" not in method(torch.zeros(2, 3, probe.size, probe.size)):
            raise UserError(
                f"feature_type=projector: method {run.get('method')!r} has no "
                f"projector output z; use feature_type=backbone"
            )
        model: nn.Module = _Outputs(method, ("feats", "z"))
        dims = {"backbone": int(method.features_dim)}  # type: ignore[arg-type]
    else:
        model = load_backbone(
            ckpt,
            str(backbone["name"]),
            small_input_stem=uses_small_stem(
                str(data["dataset"]), backbone.get("small_input_stem")
            ),
            kwargs=dict(backbone.get("kwargs") or {}),
        )
    if on_gpu:
        model = model.cuda()
    feats, labels = {}, {}
    for split, subset in subsets.items():
        x, labels[split] = extract_features(model, probe.batches(subset, train=False))
        if "projector" in feature_types:
            feats[split] = {
                "backbone": x[:, : dims["backbone"]],
                "projector": x[:, dims["backbone"] :],
            }
        else:
            feats[split] = {"backbone": x}
    return feats, labels


def knn_data(config: KnnConfig, run: dict[str, Any]) -> dict[str, Any]:
    """The run's ``data`` group, with this command's ``dataset`` and paths where it sets them."""
    data = {**(run.get("data") or {}), **config.data}
    if "name" not in (run.get("backbone") or {}) or not data.get("dataset"):
        raise UserError(
            f"no args.json beside {config.checkpoint}: it names the backbone and dataset"
        )
    if not data.get("train_path") or not data.get("val_path"):
        raise UserError("set train_data_path and val_data_path (the run has none)")
    return data


def _record_base(run: dict[str, Any], data: dict[str, Any], ckpt: Path) -> dict[str, Any]:
    """The fields every result line of one checkpoint shares."""
    plan = run.get("budget_plan") or {}
    return {
        "method": run.get("method"),
        "dataset": data["dataset"],
        "backbone": run["backbone"]["name"],
        "C": plan.get("C"),
        "C_eff": plan.get("C_eff"),
        "N": plan.get("N"),
        "D": plan.get("D"),
        "E": plan.get("E"),
        "fraction": (run.get("data") or {}).get("fraction"),
        "seed": run.get("seed"),
        "checkpoint": str(ckpt),
    }


def _sweep_records(
    sweep: Sweep,
    feats: dict[str, dict[str, torch.Tensor]],
    labels: dict[str, torch.Tensor],
    device: torch.device,
    num_classes: int,
) -> list[dict[str, Any]]:
    """One record per (feature type, k, distance, temperature): the sweep's own fields."""
    records = []
    for ftype in sweep.feature_types:
        train = feats["train"][ftype].to(device)
        test = feats["test"][ftype].to(device)
        for k, distance, temperature in sweep.settings(ftype):
            tic = time.time()
            acc1, acc5 = knn_hits(
                train,
                labels["train"],
                test,
                labels["test"],
                k=k,
                temperature=temperature,
                distance=distance,
                num_classes=num_classes,
            ).accuracies()
            records.append(
                {
                    "feature_type": ftype,
                    "k": k,
                    "temperature": temperature,
                    "distance_function": distance,
                    "acc1": round(acc1, 3),
                    "acc5": round(acc5, 3),
                    "knn_seconds": round(time.time() - tic, 3),
                }
            )
    return records


def run_knn(cfg: DictConfig) -> list[dict[str, Any]]:
    """Sweep kNN over ``cfg``'s lists for one checkpoint; append and return one record each."""
    config = resolve_knn(cfg)
    return knn_sweep(config)


def knn_sweep(config: KnnConfig) -> list[dict[str, Any]]:
    """The sweep of a resolved config: features once, one record per setting, appended."""
    ckpt = config.checkpoint
    verify_checksum(ckpt)
    run = read_run_args(ckpt)
    data = knn_data(config, run)
    crop = int(data.get("crop_size") or run.get("augmentations", [{}])[0].get("crop_size", 224))
    on_gpu = config.hardware.on_gpu
    workers = config.num_workers
    probe = ProbeData(
        crop,
        *dataset_stats(str(data["dataset"])),
        data_format=str(data.get("format") or "h5"),
        num_workers=int(data.get("num_workers", 0) if workers is None else workers),
        dali_device=resolve_device(config.dali_device, on_gpu=on_gpu),
        screen_cache=data.get("index_cache"),
        batch_size=config.batch_size,
    )
    subsets = {
        "train": _subset(data, str(data["train_path"]), "train"),
        "test": _subset(data, str(data["val_path"]), "test"),
    }
    check_validation_split(subsets["train"].index, subsets["test"].index)
    if subsets["train"].index.num_classes < 2:
        raise UserError(f"kNN needs labels, and index {subsets['train'].index.path} has none")
    start = time.time()
    sweep = config.sweep
    feats, labels = _features(ckpt, run, data, sweep.feature_types, probe, subsets, on_gpu)
    device = torch.device(compute_device(config.hardware))
    base = {
        **_record_base(run, data, ckpt),
        "n_train": len(labels["train"]),
        "n_test": len(labels["test"]),
        "feature_seconds": round(time.time() - start, 2),
        **provenance(device.type),
    }
    num_classes = int(subsets["train"].index.num_classes)
    records = [{**base, **r} for r in _sweep_records(sweep, feats, labels, device, num_classes)]
    results = config.results
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    log.info("%d kNN results written to %s", len(records), results)
    return records
