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
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from solo_diversity.backbones import build_backbone
from solo_diversity.data import ClassificationDataset
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


@torch.no_grad()
def extract_features(
    model: nn.Module, dataset: ClassificationDataset, *, batch_size: int = 256, num_workers: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of a frozen model in fp32 (probes are sensitive to low-precision features).

    Returns:
        (features (N, F), targets (N,)) in dataset order.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    feats, targets = [], []
    for x, y in loader:
        feats.append(model(x.float()).float())
        targets.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(targets)
