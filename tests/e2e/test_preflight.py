# SPDX-License-Identifier: MIT
"""Pre-flight: a moved or unreadable image root fails before the first step; the size estimate."""

from __future__ import annotations

import logging

import pytest

from solo_diversity.config.pretrain import resolve_pretrain_cfg
from solo_diversity.config.run_config import TrainSizes, resolve_run
from solo_diversity.errors import UserError
from solo_diversity.index import open_index
from solo_diversity.run.preflight import check_index_files, checkpoint_bytes
from solo_diversity.run.pretrain import run_pretrain
from tests.data.png_indexes import digits_png_index

SMALL = ["data.val_path=null", "optimizer.batch_size=32", "+backbone.kwargs.width=8"]


def test_a_moved_image_root_fails_before_any_run_folder(compose_cfg, digits_indexes, tmp_path):
    index = digits_png_index(digits_indexes["train"], tmp_path, 0.0)
    root = tmp_path / "png"
    root.rename(tmp_path / "moved")
    with pytest.raises(UserError) as err:
        run_pretrain(compose_cfg(overrides=[*SMALL, f"data.train_path={index}", "budget.C=64"]))
    assert str(err.value).startswith(
        f"index {index} reads its images from {root}, which is not a folder (moved or renamed?); "
    )
    assert not (tmp_path / "trained_models").exists()


def test_an_index_none_of_whose_sampled_images_reads(compose_cfg, digits_indexes, tmp_path):
    index = digits_png_index(digits_indexes["train"], tmp_path, 1.0)
    with pytest.raises(UserError) as err:
        run_pretrain(compose_cfg(overrides=[*SMALL, f"data.train_path={index}", "budget.C=64"]))
    message = str(err.value)
    assert message.startswith(f"none of 8 sampled images of index {index} reads (e.g. class_")
    assert message.endswith("); check the index and its images") and "\n" not in message
    assert not (tmp_path / "trained_models").exists()


def test_a_partly_unreadable_sample_warns_and_the_run_goes_on(
    compose_cfg, digits_indexes, tmp_path, caplog
):
    index = digits_png_index(digits_indexes["train"], tmp_path, 0.004)  # 6 of 1,438 garbage
    opened = open_index(index)
    with caplog.at_level(logging.WARNING, logger="solo_diversity.run.preflight"):
        seed = next(s for s in range(1000) if _sample_warns(opened, s, caplog))
    (record,) = caplog.records
    assert record.getMessage().startswith(f"1 of 8 sampled images of index {index} do not read")
    result = run_pretrain(
        compose_cfg(
            overrides=[
                *SMALL,
                f"data.train_path={index}",
                "budget.C=64",
                f"seed={seed}",
                "data.max_bad_fraction=0.1",  # 1 bad read of ~65 judged at the end
            ]
        )
    )
    assert result.ledger["match"]


def _sample_warns(opened, seed, caplog) -> bool:
    caplog.clear()
    check_index_files(opened, range(len(opened)), seed)
    return bool(caplog.records)


def test_the_checkpoint_size_estimate_covers_a_real_checkpoint(compose_cfg, tmp_path):
    result = run_pretrain(compose_cfg(overrides=[*SMALL, "budget.C=64"]))
    run = resolve_run(
        resolve_pretrain_cfg(compose_cfg(overrides=[*SMALL, "budget.C=64"])),
        TrainSizes(dataset_size=1438, subset_size=1438, num_classes=10),
    )
    assert run.hardware.world_size == 1
    estimate, params = checkpoint_bytes(run)
    real = result.checkpoint.stat().st_size
    assert params > 0 and real <= estimate <= 1.2 * real + (1 << 20)
