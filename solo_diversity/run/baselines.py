# SPDX-License-Identifier: MIT
"""Untrained "pretraining" runs: the floors a probe result is read against.

A probe accuracy alone does not say that pretraining learned anything: a linear probe on the raw
pixels, or on the same backbone at its random initialisation, may score as high. ``baseline=KIND``
on ``main_pretrain.py`` writes such a run instead of training one, in the layout of a finished run
(``args.json``, one ``.ckpt`` with its sha256, and ``baseline.json`` in place of ``ledger.json``),
so ``main_linear.py`` probes it with the same protocol and the report puts it beside the trained
cells:

- ``random_init``: the method's backbone exactly as a run with this seed starts training;
- ``raw_pixels``: no backbone, the normalised crop's pixels (:class:`~.backbones.RawPixels`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from solo_diversity.errors import UserError
from solo_diversity.models.backbones import build_backbone
from solo_diversity.run import checkpoint_files as files
from solo_diversity.run.checkpoint import checkpoint_path

BASELINES = ("random_init", "raw_pixels")
MARKER = "baseline.json"  # a baseline run's "finished" file (a trained run has ledger.json)


def check_baseline(kind: str) -> str:
    """``kind`` if it is a known baseline, else one line naming the choices."""
    if kind not in BASELINES:
        raise UserError(f"baseline={kind!r} is not one of {', '.join(BASELINES)} (or null)")
    return kind


def baseline_backbone(
    kind: str, method_model: torch.nn.Module | None, crop_size: int
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The backbone a baseline is probed through, and its ``backbone`` config entry.

    Args:
        kind: one of :data:`BASELINES`.
        method_model: the method as the run builds it (``random_init`` keeps its backbone).
        crop_size: the run's crop size (``raw_pixels`` is sized by it).
    """
    if kind == "raw_pixels":
        kwargs: dict[str, Any] = {"img_size": int(crop_size)}
        return build_backbone("raw_pixels", **kwargs), {"name": "raw_pixels", "kwargs": kwargs}
    if method_model is None:
        raise ValueError("random_init needs the method's model")
    return method_model.backbone, {}  # type: ignore[return-value]


def write_baseline(
    kind: str,
    record: dict[str, Any],
    backbone: torch.nn.Module,
    backbone_cfg: dict[str, Any],
    folder: Path,
) -> Path:
    """Write the baseline run into ``folder`` (``{checkpoint.dir}/{method}/{version}``).

    Args:
        kind: one of :data:`BASELINES`.
        record: the run's resolved config as plain containers (its ``args.json``, with
            ``backbone_cfg`` merged into its ``backbone``).
        backbone: what the probe reads features through.
        backbone_cfg: its ``backbone`` entry (:func:`baseline_backbone`).
        folder: the run's folder.

    Returns:
        The checkpoint, named as a finished run's (``...-ep=0.ckpt``).
    """
    kind = check_baseline(kind)
    args = dict(record)
    if backbone_cfg:
        args["backbone"] = {**(args.get("backbone") or {}), **backbone_cfg}
    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(folder.parent, str(args["name"]), folder.name, 0)
    state = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    tmp = files.temporary_path(path)
    try:
        (folder / "args.json").write_text(json.dumps(args, indent=2, default=str))
        torch.save(
            {
                "state_dict": state,
                "global_step": 0,
                "epoch": 0,
                "solo_diversity": {"cfg": args, "baseline": kind},
            },
            tmp,
        )
        files.publish(tmp, path)
        (folder / MARKER).write_text(json.dumps({"baseline": kind, "steps": 0}) + "\n")
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"could not write baseline {path} ({err.strerror or err})") from err
    return path
