# SPDX-License-Identifier: MIT
"""Online kNN during pretraining (solo-learn's ``knn_eval``): fed, scored and logged."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest

from solo_diversity.errors import UserError
from solo_diversity.methods import BUILTIN_METHODS
from solo_diversity.methods.knn import knn_accuracy
from solo_diversity.run.pretrain import run_pretrain
from tests.methods.method_helpers import method_cfg

SMALL = ["optimizer.batch_size=32", "budget.C=1000", "+backbone.kwargs.width=8"]


class Watch(pl.Callback):
    """Scores each bank independently just before the method does, and reads what it logged."""

    def __init__(self) -> None:
        self.after_sanity: list[int] = []
        self.sizes: list[tuple[int, int, int]] = []
        self.expected: list[tuple[float, float]] = []
        self.logged: list[tuple[float, float]] = []

    def on_sanity_check_end(self, trainer, pl_module):
        self.after_sanity.append(pl_module.knn.num_test)

    def on_validation_epoch_end(self, trainer, pl_module):  # runs before the module's hook
        if not trainer.sanity_checking:
            train, y_train, test, y_test = pl_module.knn.banks()
            self.sizes.append((len(y_train), pl_module.knn.capacity, len(y_test)))
            self.expected.append(
                knn_accuracy(train, y_train, test, y_test, k=10, distance="euclidean")
            )

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            m = trainer.callback_metrics
            self.logged.append((float(m["val_knn_acc1"]), float(m["val_knn_acc5"])))


def test_pretraining_logs_val_knn_accuracy(compose_cfg):
    watch = Watch()
    cfg = compose_cfg(overrides=[*SMALL, "knn_eval.enabled=true", "knn_eval.k=10"])
    run_pretrain(cfg, callbacks=[watch])
    assert watch.after_sanity == [0]  # the sanity check feeds nothing, as upstream
    # validation every 31 // 4 = 7 steps of 32 images x 2 large crops (the bank holds one epoch),
    # against the 359 test digits
    assert watch.sizes == [(7 * 32 * 2, 1438 * 2, 359)] * 4
    assert [a for p in watch.logged for a in p] == pytest.approx(
        [a for p in watch.expected for a in p]
    )  # knn_eval.distance_func: euclidean
    assert all(0.0 < acc1 <= acc5 <= 100.0 for acc1, acc5 in watch.logged)


def test_defaults_follow_upstream_and_disabled_means_no_bank(compose_cfg):
    cfg = method_cfg(compose_cfg, "simclr")
    assert (cfg.knn_eval.enabled, cfg.knn_eval.k, cfg.knn_eval.distance_func) == (
        False,
        20,
        "euclidean",
    )
    assert BUILTIN_METHODS["simclr"](cfg).knn is None


def test_bank_size_and_settings_come_from_the_config(compose_cfg):
    cfg = method_cfg(
        compose_cfg,
        "simclr",
        [
            "knn_eval.enabled=true",
            "knn_eval.distance_func=cosine",
            "knn_eval.max_train_features=96",
        ],
    )
    knn = BUILTIN_METHODS["simclr"](cfg).knn
    assert (knn.k, knn.distance, knn.capacity, knn.temperature) == (20, "cosine", 96, 0.07)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "knn_eval.distance_func=cityblock",
            r"^knn_eval.distance_func='cityblock' is unknown; choose one of cosine, euclidean$",
        ),
        ("knn_eval.k=0", r"^knn_eval.k=0 must be an integer >= 1$"),
    ],
)
def test_bad_online_settings_are_one_line(compose_cfg, override, message):
    with pytest.raises(UserError, match=message):  # at config checking or at construction
        cfg = method_cfg(compose_cfg, "simclr", ["knn_eval.enabled=true", override])
        BUILTIN_METHODS["simclr"](cfg)
