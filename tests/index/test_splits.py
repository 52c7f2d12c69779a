# SPDX-License-Identifier: MIT
"""Training and validation indexes that share images (by content), and labels out of range.

Each case is seen where a user meets it: pretraining's pre-flight (``run_pretrain``), the linear
probe (``run_linear``) and the kNN sweep (``run_knn``), all before a step runs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from solo_diversity.errors import UserError
from solo_diversity.evaluation.knn_run import run_knn
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.index import build_index, open_index
from solo_diversity.index.set_ops import subset_index, union_indexes
from solo_diversity.index.splits import check_validation_split, shared_entries
from solo_diversity.index.writer import IndexMeta, write_index
from solo_diversity.models.backbones import build_backbone
from solo_diversity.run.pretrain import run_pretrain
from tests.conftest import CONFIG_DIR
from tests.evaluation.conftest import QUIET, solo_state, write_checkpoint

ALL_SHARED = "all {n} images of validation index {val} are training images of {train} (same bytes)"


@pytest.fixture(scope="module")
def leaky(digits_indexes, tmp_path_factory) -> dict[str, Path]:
    """Validation indexes that are not held out from the digits' training split."""
    root = tmp_path_factory.mktemp("leaky")
    train = digits_indexes["train"]
    subset_index(train, root / "first20.h5", count=20)
    return {
        "reshuffled": build_index("digits", root / "reshuffled.h5", split="train", seed=7),
        "subset": subset_index(train, root / "subset.h5", fraction=0.2),
        "mixed": union_indexes(
            [digits_indexes["test"], root / "first20.h5"], root / "mixed.h5", seed=3
        ),
    }


def relabelled(source: Path, out: Path, *, shift: int, classes: int) -> Path:
    """``source``'s images with labels + ``shift`` and ``classes`` class names."""
    index = open_index(source)
    entries = ((index.read_bytes(i), int(y) + shift) for i, y in enumerate(index.labels()))
    meta = IndexMeta("digits", index.split, "bytes", "", 0, "test", tuple(map(str, range(classes))))
    return write_index(entries, out, meta)


def test_the_train_split_reshuffled_or_cut_is_all_training_images(digits_indexes, leaky):
    train = open_index(digits_indexes["train"])
    for name, n in (("reshuffled", 1438), ("subset", 288)):
        assert open_index(leaky[name]).fingerprint != train.fingerprint  # unseen by a fingerprint
        line = ALL_SHARED.format(n=n, val=leaky[name], train=train.path)
        with pytest.raises(UserError, match=f"^{re.escape(line)}; give the held-out split$"):
            check_validation_split(train, open_index(leaky[name]))


def test_some_shared_images_are_a_warning_with_the_count(digits_indexes, leaky, caplog):
    train = open_index(digits_indexes["train"])
    with caplog.at_level(logging.WARNING, logger="solo_diversity"):
        check_validation_split(train, open_index(leaky["mixed"]))
    assert [r.getMessage() for r in caplog.records] == [
        f"20 of the 379 images of validation index {leaky['mixed']} are training images of "
        f"{train.path} (same bytes); validation accuracy counts them too"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="solo_diversity"):
        check_validation_split(train, open_index(digits_indexes["test"]))  # held out: silent
    assert caplog.records == []


def test_large_indexes_are_compared_on_samples(digits_indexes, leaky):
    train = open_index(digits_indexes["train"])
    found = shared_entries(train, open_index(leaky["reshuffled"]), full_limit=500, sample=400)
    assert not found.exact and (found.val_checked, found.train_checked) == (400, 400)
    # each sampled validation image is one of the 1,438 training images: ~400 x 400 / 1,438 hits
    assert 80 <= found.shared <= 150 and found.share > 0.5
    held_out = shared_entries(train, open_index(digits_indexes["test"]), full_limit=300, sample=300)
    assert held_out.shared == 0 and held_out.share == 0.0


def test_validation_labels_outside_the_training_classes_are_one_line(digits_indexes, tmp_path):
    val = relabelled(digits_indexes["test"], tmp_path / "val.h5", shift=5, classes=15)
    train = open_index(digits_indexes["train"])
    with pytest.raises(UserError) as err:
        check_validation_split(train, open_index(val))
    assert str(err.value) == (
        f"index {val} has label 14, but num_classes=10 (the classes of {train.path}); labels must "
        "be class ids below it: rebuild the index, or give a split of the same classes"
    )


def test_pretraining_stops_before_training_on_labels_beyond_the_class_names(
    compose_cfg, digits_indexes, tmp_path
):
    bad = relabelled(digits_indexes["train"], tmp_path / "bad.h5", shift=0, classes=5)
    cfg = compose_cfg(overrides=[f"data.train_path={bad}", "data.val_path=null"])
    with pytest.raises(UserError) as err:
        run_pretrain(cfg)
    assert str(err.value) == (
        f"index {bad} has label 9, but num_classes=5 (its class names); labels must be class ids "
        "below it: rebuild the index, or give a split of the same classes"
    )
    assert not (tmp_path / "trained_models").exists()  # stopped before any run folder


def test_pretraining_refuses_validation_on_the_reshuffled_train_split(
    compose_cfg, digits_indexes, leaky, tmp_path
):
    cfg = compose_cfg(overrides=[f"data.val_path={leaky['reshuffled']}"])
    line = ALL_SHARED.format(n=1438, val=leaky["reshuffled"], train=digits_indexes["train"])
    with pytest.raises(UserError, match=f"^{re.escape(line)}; give the held-out split$"):
        run_pretrain(cfg)
    assert not (tmp_path / "trained_models").exists()


def _checkpoint_with_val(folder: Path, digits_indexes, val: Path) -> Path:
    """The evaluation tests' tiny checkpoint, its run validated on ``val``."""
    args = {
        "method": "simclr", "seed": 5, "backbone": {"name": "small_cnn", "kwargs": {"width": 4}},
        "data": {"dataset": "digits", "train_path": str(digits_indexes["train"]),
                 "val_path": str(val), "format": "h5", "crop_size": 8, "num_workers": 0},
    }  # fmt: skip
    return write_checkpoint(folder, solo_state(build_backbone("small_cnn", width=4)), args)


def test_the_linear_probe_refuses_a_test_split_of_training_images(digits_indexes, leaky, tmp_path):
    ckpt = _checkpoint_with_val(tmp_path / "run", digits_indexes, leaky["subset"])
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        cfg = compose(config_name="linear_div", overrides=[
            f"pretrained_feature_extractor='{ckpt}'", f"results={tmp_path / 'r.jsonl'}",
            f"checkpoint.dir={tmp_path / 'trained_models'}", "data.num_workers=0", *QUIET,
        ])  # fmt: skip
    line = ALL_SHARED.format(n=288, val=leaky["subset"], train=digits_indexes["train"])
    with pytest.raises(UserError, match=f"^{re.escape(line)}; give the held-out split$"):
        run_linear(cfg)
    assert not (tmp_path / "r.jsonl").exists()


def test_the_knn_sweep_refuses_a_test_split_of_training_images(digits_indexes, leaky, tmp_path):
    ckpt = _checkpoint_with_val(tmp_path / "run", digits_indexes, digits_indexes["test"])
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        cfg = compose(config_name="knn_div", overrides=[
            "num_workers=0", f"pretrained_checkpoint_dir='{ckpt}'",
            f"val_data_path={leaky['reshuffled']}",
        ])  # fmt: skip
    line = ALL_SHARED.format(n=1438, val=leaky["reshuffled"], train=digits_indexes["train"])
    with pytest.raises(UserError, match=f"^{re.escape(line)}; give the held-out split$"):
        run_knn(cfg)
