# SPDX-License-Identifier: MIT
"""The default probe is solo-learn's protocol: fresh views, frozen backbone, its optimizer/LR."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from solo_diversity.config.probe import (
    ProbeScheduler,
    probe_settings,
    resolve_linear_cfg,
    scaled_lr,
    step_decay,
)
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.evaluation.protocol import LinearProbe, correct_at_k
from solo_diversity.methods.optim import LARS


def distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) exact Euclidean distances between the rows of a and b (flattened)."""
    return torch.cdist(
        a.flatten(1).double(), b.flatten(1).double(), compute_mode="donot_use_mm_for_euclid_dist"
    )


class Recorder(pl.Callback):
    """Records the training batches, the LR, the backbone's mode and its state at start/end."""

    def __init__(self) -> None:
        self.batches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.lrs: list[float] = []
        self.backbone_training: set[bool] = set()
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.states.append({k: v.clone() for k, v in pl_module.backbone.state_dict().items()})

    def on_train_end(self, trainer, pl_module) -> None:
        self.on_train_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.setdefault(trainer.current_epoch, []).append(
            (batch[0].clone(), batch[1].clone())
        )
        self.backbone_training.add(pl_module.backbone.training)


def test_each_epoch_draws_new_augmented_views_of_the_same_images(linear_cfg):
    rec = Recorder()
    # 50% of the digits (721 images, stratified) in one batch: each epoch is the whole set.
    result = run_linear(
        linear_cfg(["data.label_fraction=0.5", "optimizer.batch_size=1000"]), callbacks=[rec]
    )
    assert result.record["probe_mode"] == "protocol" and result.record["n_labelled"] == 721
    ((x0, y0),) = rec.batches[0]
    ((x1, y1),) = rec.batches[1]
    assert x0.shape == x1.shape == (721, 3, 8, 8)
    assert torch.equal(y0.sort().values, y1.sort().values)  # the same images, reshuffled
    assert not torch.equal(y0, y1)
    # Not one view of epoch 1 equals any view of epoch 0: crops and flips are drawn afresh.
    same = (distances(x1, x0) < 1e-6).any(dim=1)
    assert int(same.sum()) < 0.05 * len(x1)
    assert rec.backbone_training == {False}  # the frozen backbone stays in eval mode


def test_features_mode_trains_on_the_same_cached_features_every_epoch(linear_cfg):
    rec = Recorder()
    run_linear(
        linear_cfg(["probe.mode=features", "data.label_fraction=0.5", "optimizer.batch_size=1000"]),
        callbacks=[rec],
    )
    ((f0, _),) = rec.batches[0]
    ((f1, _),) = rec.batches[1]
    assert f0.shape == (721, 16)  # small_cnn width 4: 16-d features, not images
    assert not torch.equal(f0, f1)  # reshuffled ...
    assert bool((distances(f1, f0).min(dim=1).values < 1e-5).all())  # ... but the same vectors


def test_the_configured_optimizer_scheduler_and_scaled_lr_run(linear_cfg):
    rec = Recorder()
    result = run_linear(
        linear_cfg(
            [
                "optimizer.batch_size=64",
                "optimizer.lr=0.4",
                "optimizer.weight_decay=1e-4",
                "max_epochs=3",
                "scheduler.lr_decay_steps=[1,2]",
                "data.label_fraction=0.1",
            ]
        ),
        callbacks=[rec],
    )
    lr = 0.4 * 64 / 256
    assert rec.lrs == pytest.approx([lr, lr * 0.1, lr * 0.01])  # MultiStepLR per epoch, x0.1
    assert result.record["lr_scaled"] == pytest.approx(lr) and result.record["optimizer"] == "sgd"
    assert result.record["scheduler"] == "step" and result.record["max_epochs"] == 3
    assert 0 <= result.record["acc1"] <= result.record["acc5"] <= 100
    assert result.record["accuracy"] == result.record["acc1"]
    # the frozen backbone did not move: weights and BatchNorm running statistics alike
    start, end = rec.states
    assert all(torch.equal(start[k], end[k]) for k in start) and "features.1.running_mean" in start


def test_lr_is_scaled_by_batch_devices_and_nodes_over_256(linear_cfg):
    cfg = resolve_linear_cfg(
        linear_cfg(
            [
                "optimizer.batch_size=64",
                "devices=[0,1]",
                "+num_nodes=2",
                "optimizer.lr=0.3",
                "optimizer.weight_decay=0",
            ]
        )
    )
    settings = probe_settings(cfg)
    assert settings.optimizer.lr == pytest.approx(0.3 * 64 * 2 * 2 / 256)
    assert scaled_lr(1.0, 256, 1, 1) == 1.0
    # no accumulate_grad_batches factor in solo-learn's linear scaling
    cfg = resolve_linear_cfg(
        linear_cfg(["+accumulate_grad_batches=4", "optimizer.lr=0.1", "optimizer.weight_decay=0"])
    )
    assert probe_settings(cfg).optimizer.lr == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("name", "cls", "expected"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.9}),
        (
            "lars",
            LARS,
            {"momentum": 0.9, "eta": 1e-3, "clip_lr": False, "exclude_bias_n_norm": False},
        ),
        ("adamw", torch.optim.AdamW, {"betas": (0.9, 0.999)}),
        ("adam", torch.optim.Adam, {}),
    ],
)
def test_each_optimizer_gets_solo_learns_default_kwargs(linear_cfg, name, cls, expected):
    overrides = [f"optimizer.name={name}", "optimizer.lr=0.1", "optimizer.weight_decay=0"]
    settings = probe_settings(resolve_linear_cfg(linear_cfg(overrides)))
    module = LinearProbe(torch.nn.Identity(), 10, settings, num_features=4)
    optimizer, _ = module.configure_optimizers()
    assert type(optimizer[0]) is cls
    group = optimizer[0].param_groups[0]
    assert {k: tuple(group[k]) if k == "betas" else group[k] for k in expected} == expected
    assert group["params"] == list(module.classifier.parameters())  # the classifier only


def test_step_and_warmup_cosine_schedules_follow_upstreams_formulas():
    assert [step_decay(e, (60, 80)) for e in (0, 59, 60, 79, 80, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    sch = ProbeScheduler("warmup_cosine", warmup_epochs=2, warmup_start_lr=0.01, min_lr=0.0)
    total, warmup, base = 100, 20, 0.5
    factors = [sch.factor(i, base_lr=base, total=total, warmup=warmup) * base for i in range(100)]
    assert factors[0] == pytest.approx(0.01) and factors[19] == pytest.approx(base)
    assert factors[10] == pytest.approx(0.01 + 10 * (base - 0.01) / 19)
    assert factors[60] == pytest.approx(0.5 * base * (1 + math.cos(math.pi * 40 / 80)))
    none = ProbeScheduler("none")
    assert none.factor(50, base_lr=base, total=total, warmup=warmup) == 1.0


def test_label_smoothing_is_timms_formula():
    logits, y, s = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0]), 0.1
    logp = logits.log_softmax(1)
    timm = ((1 - s) * -logp.gather(1, y[:, None])[:, 0] + s * -logp.mean(1)).mean()
    assert F.cross_entropy(logits, y, label_smoothing=s) == pytest.approx(float(timm), rel=1e-6)


def test_top_k_hits():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.7], [0.2, 0.3, 0.5]])
    assert correct_at_k(logits, torch.tensor([1, 2, 0]), ks=(1, 2, 5)) == [1, 2, 3]


def test_the_dali_path_draws_new_views_each_epoch_too(digits_indexes, tmp_path):
    from solo_diversity.evaluation.features import ProbeData
    from solo_diversity.evaluation.probe_data import DaliTrainViews
    from solo_diversity.index import open_index, select_subset

    subset = select_subset(open_index(digits_indexes["train"]), 40 / 1438)
    probe = ProbeData(
        8,
        (0.3,) * 3,
        (0.4,) * 3,
        data_format="dali",
        dali_device="cpu",
        num_workers=1,
        screen_cache=str(tmp_path),
    )
    views = DaliTrainViews(probe, subset, batch_size=16, seed=5, drop_last=True)
    epochs = [list(views) for _ in range(2)]
    assert len(views) == 2 and [len(e) for e in epochs] == [2, 2]  # 40 // 16, last one dropped
    x0, x1 = (torch.cat([x for x, _ in e]).cpu() for e in epochs)
    y0, y1 = (torch.cat([y for _, y in e]) for e in epochs)
    assert x0.shape == (32, 3, 8, 8) and not torch.equal(y0, y1)  # a new order each epoch
    same = (distances(x1, x0) < 1e-6).any(dim=1)
    assert int(same.sum()) < 3
