# SPDX-License-Identifier: MIT
"""Frozen backbones from checkpoints, and their features over an index subset.

A checkpoint is ours or solo-learn's: keys that contain ``backbone`` are kept with the
``backbone.`` prefix stripped and loaded with ``strict=False``, exactly as solo-learn's linear
evaluation does, so either side reads the other's files. The run's ``args.json`` beside the
checkpoint says which backbone and input size were used.
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

from solo_diversity.backbones import build_backbone
from solo_diversity.data import (
    ClassificationDataset,
    ScreenCache,
    default_crop_fraction,
    eval_transform,
    probe_batches,
    probe_train_transform,
)
from solo_diversity.errors import UserError

log = logging.getLogger(__name__)


def read_run_args(checkpoint: Path) -> dict[str, Any]:
    """The pretraining config of a checkpoint: its ``args.json``, or the copy stored inside it."""
    args_file = checkpoint.parent / "args.json"
    if args_file.exists():
        return json.loads(args_file.read_text())
    stored = torch.load(checkpoint, map_location="cpu", weights_only=False).get(
        "solo_diversity", {}
    )
    return dict(stored.get("cfg", {}))


def backbone_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """solo-learn's rule: keep keys containing ``backbone`` and strip the ``backbone.`` prefix."""
    return {k.replace("backbone.", ""): v for k, v in state_dict.items() if "backbone" in k}


def load_backbone(
    checkpoint: str | Path,
    name: str,
    *,
    small_input_stem: bool,
    kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """Build ``name`` and load the backbone weights of ``checkpoint`` into it (strict=False).

    Raises:
        UserError: the file is missing or unreadable, or none of its keys fit the backbone.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise UserError(f"checkpoint {path} cannot be read: {err.__class__.__name__}") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    model = build_backbone(name, cifar=small_input_stem, **(kwargs or {}))
    result = model.load_state_dict(backbone_state(state), strict=False)
    expected = len(model.state_dict())
    if len(result.missing_keys) == expected:
        raise UserError(f"checkpoint {path} has no weights for backbone {name!r}")
    if result.missing_keys:
        log.warning("%d backbone keys missing in %s", len(result.missing_keys), path)
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
                subset, self.size, self.mean, self.std, train=train,
                crop_fraction=default_crop_fraction(self.size), batch_size=self.batch_size,
                num_workers=self.num_workers, device=self.dali_device,
                screen_cache=ScreenCache.default_path(subset.index, self.screen_cache),
            )
        transform = (probe_train_transform if train else eval_transform)(
            self.size, self.mean, self.std
        )
        return DataLoader(ClassificationDataset(subset, transform), batch_size=self.batch_size,
                          shuffle=False, num_workers=self.num_workers)


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
    device = next(model.parameters()).device
    feats, targets = [], []
    for x, y in batches:
        feats.append(model(x.to(device, non_blocking=True).float()).float().cpu())
        targets.append(torch.as_tensor(y).cpu())
    return torch.cat(feats), torch.cat(targets)
