# SPDX-License-Identifier: MIT
"""Steps on one repeated batch lower every SSL loss; checkpoints load in solo-learn's probe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from solo_diversity.evaluation.features import load_backbone
from tests.methods.method_helpers import NAMES, two_crop_batch


@pytest.mark.parametrize("name", NAMES)
def test_steps_on_a_repeated_batch_lower_the_ssl_loss(build_method, name: str) -> None:
    """A zeroed, frozen online classifier has a constant loss (log 10), so what falls here is the
    SSL loss alone, and the backbone is trained by it: a constant SSL loss would fail both."""
    model = build_method(name)
    batch = two_crop_batch(batch=16, seed=3)
    for p in model.classifier.parameters():
        p.requires_grad_(False).zero_()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    losses = []
    for step in range(8):
        loss = model.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
            assert grads and sum(float(g.abs().sum()) for g in grads) > 0
            assert all(p.grad is None for p in model.classifier.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["byol", "swav"])
def test_checkpoint_backbone_loads_into_a_solo_learn_style_probe(
    build_method, name: str, tmp_path: Path
) -> None:
    model = build_method(name)
    if hasattr(model, "momentum_backbone"):
        with torch.no_grad():  # make the teacher differ: its keys must not leak into the probe
            for p in model.momentum_backbone.parameters():
                p.add_(1.0)
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": model.state_dict()}, path)
    probe = load_backbone(path, "small_cnn", small_input_stem=True)
    for key, value in probe.state_dict().items():
        assert torch.equal(value, model.backbone.state_dict()[key]), key
