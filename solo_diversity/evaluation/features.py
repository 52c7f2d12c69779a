# SPDX-License-Identifier: MIT
"""Frozen backbones from checkpoints, and their features over an index subset.

A checkpoint is ours or solo-learn's: keys that contain ``backbone`` are kept with the
``backbone.`` prefix stripped and loaded with ``strict=False``, exactly as solo-learn's linear
evaluation does, so either side reads the other's files. The run's ``args.json`` beside the
checkpoint says which backbone, method and input size were used; the machine it trained on
(accelerator, devices, precision, sync BN, DALI device) is dropped, as the probe runs on its own.
The ResNet stem is read from the weights themselves (a 3x3 or 7x7 ``conv1``). A checkpoint that no
longer matches its ``.sha256`` file, does not load, has no weight for the requested backbone or a
weight of another shape is refused with one line instead of a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from solo_diversity.console import counted, length, progress
from solo_diversity.data import (
    ClassificationDataset,
    ScreenCache,
    default_crop_fraction,
    eval_transform,
    probe_batches,
    probe_train_transform,
)
from solo_diversity.errors import UserError
from solo_diversity.models.backbones import build_backbone
from solo_diversity.run.checkpoint_files import checksum_mismatch

log = logging.getLogger(__name__)


# Keys of a run's config that describe the machine it trained on, not the model: a probe on
# another machine takes them from its own config (its command line), never from the run's.
MACHINE_KEYS = ("accelerator", "devices", "num_nodes", "precision", "sync_batchnorm", "strategy")
# solo-learn's own linear YAMLs name Barlow Twins two ways (scripts/linear/imagenet/barlow.yaml).
METHOD_ALIASES = {"barlow": "barlow_twins"}


def without_machine_settings(run: dict[str, Any]) -> dict[str, Any]:
    """A run's config without :data:`MACHINE_KEYS` and ``dali.device``.

    solo-learn writes ``dali.device: gpu``, ``accelerator: gpu``, ``devices: [0, 1]`` and
    ``sync_batchnorm: true`` into every ``args.json``; a CPU machine that probes the checkpoint
    must not inherit them.
    """
    out = {k: v for k, v in run.items() if k not in MACHINE_KEYS}
    if isinstance(out.get("dali"), dict):
        out["dali"] = {k: v for k, v in out["dali"].items() if k != "device"}
    return out


def _args_json(checkpoint: Path) -> dict[str, Any] | None:
    args_file = checkpoint.parent / "args.json"
    if not args_file.exists():
        return None
    try:
        return dict(json.loads(args_file.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError):
        raise UserError(
            f"{args_file} (beside checkpoint {checkpoint.name}) is not a JSON "
            "object; restore it from the run"
        ) from None


def read_run_args(checkpoint: Path) -> dict[str, Any]:
    """The pretraining config of a checkpoint, less its machine settings
    (:func:`without_machine_settings`): its ``args.json``, or the copy stored inside it.

    Raises:
        UserError: ``args.json`` is not JSON, or there is none and the file is no checkpoint.
    """
    run = _args_json(checkpoint)
    if run is None:
        run = dict(_read_checkpoint(checkpoint).get("solo_diversity", {}).get("cfg", {}))
    return without_machine_settings(run)


def verify_checksum(checkpoint: Path) -> None:
    """Refuse a checkpoint that no longer matches the ``.sha256`` file written beside it.

    A changed file (truncated, or edited as a zeroed backbone that scored chance) would otherwise
    be probed and reported as if it were the trained one. Files without a checksum file (solo-
    learn's) are read as they are.
    """
    why = checksum_mismatch(checkpoint)
    if why is not None:
        raise UserError(
            f"checkpoint {checkpoint} does not match its checksum: {why}; copy it "
            "again from the run"
        )


def probe_method(given: str | None, run: dict[str, Any], checkpoint: Path) -> str | None:
    """The method the probe evaluates: the checkpoint's own, which ``pretrain_method`` may repeat.

    Args:
        given: ``pretrain_method`` of the probe config (None when unset).
        run: the checkpoint's config (:func:`read_run_args`).
        checkpoint: the checkpoint, named in the error.

    Returns:
        The checkpoint's method; ``given`` only when the checkpoint names none.

    Raises:
        UserError: ``given`` names another method than the checkpoint's; the results line would
            file the checkpoint under the wrong method.
    """
    theirs = run_method(run)
    named = None if given is None else METHOD_ALIASES.get(given, given)
    if named is None or theirs is None:
        return theirs or named
    if named != METHOD_ALIASES.get(theirs, theirs):
        raise UserError(
            f"pretrain_method={given} but checkpoint {checkpoint} was pretrained with "
            f"{theirs}; set pretrain_method={theirs} or leave it unset"
        )
    return theirs


def backbone_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """solo-learn's rule: keep keys containing ``backbone`` and strip the ``backbone.`` prefix."""
    return {k.replace("backbone.", ""): v for k, v in state_dict.items() if "backbone" in k}


def stem_of(state: dict[str, torch.Tensor]) -> bool | None:
    """Whether a backbone state dict has the small-input ResNet stem: ``conv1.weight`` of shape
    (64, 3, 3, 3) -> True, (64, 3, 7, 7) -> False; None when it has no such key (not a ResNet).
    """
    conv1 = state.get("conv1.weight")
    if conv1 is None or conv1.ndim != 4:
        return None
    return int(conv1.shape[-1]) == 3


def run_method(run: dict[str, Any]) -> str | None:
    """The pretraining method of a run's config: ``method``, or solo-learn's ``pretrain_method``."""
    method = run.get("method") or run.get("pretrain_method")
    return str(method) if method else None


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means an unusable file
        first = (str(err).strip().splitlines() or [""])[0]
        raise UserError(
            f"checkpoint {path} cannot be read ({err.__class__.__name__}: {first}); "
            "give a .ckpt saved by main_pretrain.py or solo-learn"
        ) from None
    return ckpt if isinstance(ckpt, dict) else {}


def _stored_args(path: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    run = _args_json(path)
    return run if run is not None else dict(ckpt.get("solo_diversity", {}).get("cfg", {}))


def load_backbone(
    checkpoint: str | Path,
    name: str,
    *,
    small_input_stem: bool | None = None,
    kwargs: dict[str, Any] | None = None,
    method: str | None = None,
) -> nn.Module:
    """Build ``name`` and load the backbone weights of ``checkpoint`` into it (strict=False).

    The ResNet stem is the one the checkpoint has (``conv1.weight`` 3x3 -> small stem, 7x7 ->
    standard), whatever ``small_input_stem`` says; ``small_input_stem`` decides only when the
    state dict has no ``conv1`` (callers pass ``uses_small_stem(dataset, ...)``).

    Args:
        checkpoint: a ``.ckpt`` of ours or solo-learn's (``state_dict`` with ``backbone.*`` keys).
        name: the backbone's registry key.
        small_input_stem: the fallback stem rule.
        kwargs: ``backbone.kwargs``.
        method: the pretraining method (some backbones are built per method); None: the one in
            the checkpoint's config (``method`` or ``pretrain_method``).

    Returns:
        The backbone in eval mode, mapping (B, 3, H, W) to (B, num_features).

    Raises:
        UserError: the file is missing or unreadable, a weight has another shape than the
            backbone's, or no parameter or buffer of the backbone is in the checkpoint.
    """
    path = Path(checkpoint)
    ckpt = _read_checkpoint(path)
    state = backbone_state(ckpt.get("state_dict", ckpt))
    args = _stored_args(path, ckpt)
    theirs = (args.get("backbone") or {}).get("name") or "unknown"
    stem = stem_of(state)
    if stem is not None and small_input_stem is not None and stem != small_input_stem:
        log.info("%s has the %s ResNet stem; building that one", path, "3x3" if stem else "7x7")
    model = build_backbone(
        name,
        cifar=bool(small_input_stem) if stem is None else stem,
        method=method or run_method(args),
        **(kwargs or {}),
    )
    own = model.state_dict()
    for key, value in state.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            raise UserError(
                f"checkpoint {path} (backbone {theirs!r}) does not fit backbone {name!r}: "
                f"{key} is {tuple(value.shape)} there and {tuple(own[key].shape)} here"
            )
    loaded = sum(key in state for key in own)
    if loaded == 0:
        raise UserError(
            f"checkpoint {path} has no weights for backbone {name!r} (0 of {len(own)} parameters "
            f"and buffers); its backbone is {theirs!r}"
        )
    model.load_state_dict(state, strict=False)
    if loaded < len(own):
        log.warning("%d of %d backbone keys missing in %s", len(own) - loaded, len(own), path)
    return model.eval()


@dataclass(frozen=True)
class ProbeData:
    """How probe images are read: the torchvision path or DALI (``data.format=dali``).

    Attributes:
        size: square side of the probe images.
        mean: per-channel normalisation means.
        std: per-channel normalisation standard deviations.
        data_format: ``"dali"`` for the DALI pipeline; anything else reads with torchvision.
        num_workers: DataLoader workers, or DALI feed processes.
        dali_device: ``"cpu"`` or ``"gpu"`` (DALI only).
        screen_cache: folder of DALI screening caches (DALI only; temp dir when None).
        batch_size: images per forward pass.

    """

    size: int
    mean: Sequence[float]
    std: Sequence[float]
    data_format: str = "h5"
    num_workers: int = 0
    dali_device: str = "cpu"
    screen_cache: str | None = None
    batch_size: int = 256

    def batches(self, subset: Any, *, train: bool) -> Iterable[tuple[torch.Tensor, Any]]:
        """``(X (b, 3, size, size), Y (b,))`` over every entry of ``subset`` in order.

        ``train``: the probe's training view (RRC + flip); else resize + centre crop.
        """
        if self.data_format == "dali":
            return probe_batches(
                subset,
                self.size,
                self.mean,
                self.std,
                train=train,
                crop_fraction=default_crop_fraction(self.size),
                batch_size=self.batch_size,
                num_workers=self.num_workers,
                device=self.dali_device,
                screen_cache=ScreenCache.default_path(subset.index, self.screen_cache),
            )
        transform = (probe_train_transform if train else eval_transform)(
            self.size, self.mean, self.std
        )
        return DataLoader(
            ClassificationDataset(subset, transform),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
        )


@torch.no_grad()
def extract_features(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, Any]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of a frozen model in fp32 (probes are sensitive to low-precision features).

    Args:
        model: the frozen backbone; batches are moved to its device (a GPU when the probe has one).
        batches: ``(X (b, 3, H, W), Y (b,))`` pairs, e.g. from :meth:`ProbeData.batches`.

    Returns:
        (features (N, F), targets (N,)) on the CPU, in batch order.
    """
    device = next(iter([*model.parameters(), *model.buffers()])).device  # raw pixels: a buffer
    feats, targets = [], []
    with progress("features", length(batches)) as advance:  # batches, not images
        for x, y in counted(batches, advance):
            feats.append(model(x.to(device, non_blocking=True).float()).float().cpu())
            targets.append(torch.as_tensor(y).cpu())
    return torch.cat(feats), torch.cat(targets)
