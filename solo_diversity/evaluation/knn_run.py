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
``.sha256`` file is refused.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

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
from solo_diversity.methods.knn import FEATURE_TYPES, check_distance, knn_hits
from solo_diversity.models.backbones import uses_small_stem

log = logging.getLogger(__name__)

# Keys that main_knn.py accepts with or without a ``+`` (knn_div.yaml has them, older commands
# added ``+dali.device``).
KNN_COMMAND_LINE_KEYS = ("dali.device", "results")


def find_checkpoint(path: str | None) -> Path:
    """The checkpoint named by ``pretrained_checkpoint_dir``: a ``.ckpt`` file or a run folder.

    In a folder the newest ``.ckpt`` is taken (upstream takes whichever ``os.listdir`` lists first).

    Raises:
        UserError: unset, missing, or a folder without checkpoints.
    """
    if not path:
        raise UserError("set pretrained_checkpoint_dir=<run folder or .ckpt file>")
    found = Path(str(path))
    if found.is_dir():
        ckpts = sorted(found.glob("*.ckpt"), key=lambda p: (p.stat().st_mtime, p.name))
        if not ckpts:
            raise UserError(f"pretrained_checkpoint_dir={found} holds no .ckpt file")
        return ckpts[-1]
    if not found.is_file():
        raise UserError(f"pretrained_checkpoint_dir={found} does not exist")
    return found


def as_list(value: Any, key: str, cast: Callable[[Any], Any]) -> list[Any]:
    """A scalar or list config value as a non-empty list of ``cast`` values."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    items = value if isinstance(value, list | tuple) else [value]
    if not items or any(v is None for v in items):
        raise UserError(f"{key} must be a value or a non-empty list, got {value!r}")
    try:
        return [cast(v) for v in items]
    except (TypeError, ValueError):
        raise UserError(f"{key}={value!r} is not a list of {cast.__name__}") from None


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


@dataclass(frozen=True)
class Sweep:
    """The lists a kNN sweep runs over, checked."""

    ks: list[int]
    temperatures: list[float]
    distances: list[str]
    feature_types: list[str]

    def settings(self, ftype: str) -> Iterator[tuple[int, str, float | None]]:
        """(k, distance, temperature) for one feature type; temperatures for cosine only."""
        for k in self.ks:
            for distance in self.distances:
                for temperature in self.temperatures if distance == "cosine" else [None]:
                    yield k, distance, temperature


def read_sweep(cfg: DictConfig) -> Sweep:
    """``k``, ``temperature``, ``distance_function`` and ``feature_type`` as checked lists."""
    ks = as_list(cfg.k, "k", int)
    temperatures = as_list(cfg.temperature, "temperature", float)
    distances = [
        check_distance(d) for d in as_list(cfg.distance_function, "distance_function", str)
    ]
    feature_types = as_list(cfg.feature_type, "feature_type", str)
    for ftype in feature_types:
        if ftype not in FEATURE_TYPES:
            raise UserError(
                f"feature_type {ftype!r} is unknown; choose one of {', '.join(FEATURE_TYPES)}"
            )
    if any(k < 1 for k in ks) or any(t <= 0 for t in temperatures):
        raise UserError(f"k={ks} must be >= 1 and temperature={temperatures} > 0")
    return Sweep(ks, temperatures, distances, feature_types)


def knn_data(cfg: DictConfig, run: dict[str, Any], ckpt: Path) -> dict[str, Any]:
    """The run's ``data`` group, with this command's ``dataset`` and paths where it sets them."""
    data = dict(run.get("data") or {})
    for ours, theirs in (
        ("dataset", "dataset"),
        ("train_data_path", "train_path"),
        ("val_data_path", "val_path"),
        ("data_format", "format"),
    ):
        if cfg.get(ours) is not None:
            data[theirs] = cfg.get(ours)
    if "name" not in (run.get("backbone") or {}) or not data.get("dataset"):
        raise UserError(f"no args.json beside {ckpt}: it names the backbone and dataset")
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
    ckpt = find_checkpoint(cfg.get("pretrained_checkpoint_dir"))
    sweep = read_sweep(cfg)
    verify_checksum(ckpt)
    run = read_run_args(ckpt)
    data = knn_data(cfg, run, ckpt)
    crop = int(data.get("crop_size") or run.get("augmentations", [{}])[0].get("crop_size", 224))
    workers = cfg.get("num_workers")
    on_gpu = torch.cuda.is_available()  # decided once: no accelerator key, the GPU if visible
    probe = ProbeData(
        crop,
        *dataset_stats(str(data["dataset"])),
        data_format=str(data.get("format") or "h5"),
        num_workers=int(data.get("num_workers", 0) if workers is None else workers),
        dali_device=resolve_device(
            str(OmegaConf.select(cfg, "dali.device", default=None) or "auto"), on_gpu=on_gpu
        ),
        screen_cache=data.get("index_cache"),
        batch_size=int(cfg.batch_size),
    )
    subsets = {
        "train": _subset(data, str(data["train_path"]), "train"),
        "test": _subset(data, str(data["val_path"]), "test"),
    }
    check_validation_split(subsets["train"].index, subsets["test"].index)
    if subsets["train"].index.num_classes < 2:
        raise UserError(f"kNN needs labels, and index {subsets['train'].index.path} has none")
    start = time.time()
    feats, labels = _features(ckpt, run, data, sweep.feature_types, probe, subsets, on_gpu)
    device = torch.device("cuda" if on_gpu else "cpu")
    base = {
        **_record_base(run, data, ckpt),
        "n_train": len(labels["train"]),
        "n_test": len(labels["test"]),
        "feature_seconds": round(time.time() - start, 2),
        **provenance(device.type),
    }
    num_classes = int(subsets["train"].index.num_classes)
    records = [{**base, **r} for r in _sweep_records(sweep, feats, labels, device, num_classes)]
    results = Path(str(cfg.results))
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    log.info("%d kNN results written to %s", len(records), results)
    return records
