# SPDX-License-Identifier: MIT
"""The bad-image share is judged as images are read: a corrupt corpus fails in its first steps."""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest

from solo_diversity.cli import main
from solo_diversity.data.datamodule import bad_share_lower_bound
from solo_diversity.data.decode import UnreadableImage, decode_image
from solo_diversity.errors import UserError
from solo_diversity.index import open_index
from solo_diversity.run.pretrain import run_pretrain
from tests.data.png_indexes import digits_png_index

TOO_MANY = re.compile(
    r"(\d+) of (\d+) image reads failed \(\d+\.\d\d%\), more than max_bad_fraction=0\.01; "
    r"the log names each unreadable image"
)


class StepOfFailure(pl.Callback):
    """Records the optimizer step at which training raised."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.start: int | None = None

    def on_train_start(self, trainer, pl_module):
        self.start = trainer.global_step

    def on_exception(self, trainer, pl_module, exception):
        self.step = trainer.global_step


def small_run(train: Path, *extra: str) -> list[str]:
    return [
        f"data.train_path={train}",
        "data.val_path=null",
        "optimizer.batch_size=32",
        "+backbone.kwargs.width=8",
        *extra,
    ]


@pytest.mark.parametrize(("bad", "total"), [(0, 256), (3, 259), (77, 256), (10, 300), (1, 1)])
def test_the_lower_bound_is_wilsons(bad, total):
    # Wilson's bound b solves (p - b)^2 = z^2 b (1 - b) / n with b <= p (z = 3).
    b, p, z = bad_share_lower_bound(bad, total), bad / total, 3.0
    assert 0.0 <= b <= p
    assert math.isclose((p - b) ** 2, z * z * b * (1 - b) / total, rel_tol=1e-9, abs_tol=1e-12)


def test_a_few_early_bad_reads_do_not_fire_but_a_corrupt_share_does():
    assert bad_share_lower_bound(3, 259) < 0.01 < 3 / 259  # 1.16% so far, not proof of > 1%
    assert bad_share_lower_bound(77, 256) > 0.2  # 30%: proof after 256 reads


def test_thirty_percent_corrupt_fails_in_the_first_steps_and_again_on_resume(
    compose_cfg, digits_indexes, tmp_path
):
    train = digits_png_index(digits_indexes["train"], tmp_path, 0.3)
    cfg = compose_cfg(
        overrides=small_run(
            train, "budget.C=3200", "checkpoint.every_n_steps=2", "auto_resume.enabled=true"
        )
    )
    first = StepOfFailure()
    with pytest.raises(UserError) as err:
        run_pretrain(cfg, callbacks=[first])
    match = TOO_MANY.fullmatch(str(err.value))
    assert match and int(match[2]) >= 256, str(err.value)
    assert first.step is not None and 1 <= first.step <= 8  # of the budget's 100 steps
    saved = sorted((tmp_path / "trained_models" / "simclr").glob("*/*.ckpt"))
    assert saved  # step checkpoints before the failure: auto-resume picks one up
    # A second try resumes from the newest step checkpoint and fails at its first step, with the
    # same line (the counts so far are in the checkpoint), never a KeyError.
    second = StepOfFailure()
    with pytest.raises(UserError) as again:
        run_pretrain(cfg, callbacks=[second])
    assert TOO_MANY.fullmatch(str(again.value)), str(again.value)
    assert second.start and second.start >= 2 and second.step == second.start + 1


def test_half_a_percent_bad_finishes_under_a_one_percent_limit(
    compose_cfg, digits_indexes, tmp_path, caplog
):
    train = digits_png_index(digits_indexes["train"], tmp_path, 0.005)
    cfg = compose_cfg(overrides=small_run(train, "budget.C=1280", "data.max_bad_fraction=0.01"))
    with caplog.at_level(logging.WARNING, logger="solo_diversity"):
        result = run_pretrain(cfg)
    assert result.ledger["match"] and result.ledger["optimizer_steps"] == 40
    unreadable = [r for r in caplog.records if r.getMessage().startswith("unreadable image")]
    assert unreadable  # bad images were read, and judged below the limit
    # The visit proof agrees with the ledger: each bad image's visits went to the next one.
    run_dir = result.checkpoint.parent
    proof = json.loads((run_dir / "visits.json").read_text())
    assert proof["visits_ok"] and proof["exact"] and proof["unreadable"] >= 1, proof["problems"]
    assert proof["histogram"]["2"] >= 1  # a substitute seen twice in less than one pass
    recorded = np.load(run_dir / "visits.npz")["unreadable"]
    index = open_index(train)
    for position in recorded.tolist():
        with pytest.raises(UnreadableImage):
            decode_image(index.read_bytes(position))
    assert main(["ledger", "show", str(run_dir)]) == 0
