# SPDX-License-Identifier: MIT
"""``solo-div data prepare tinyimagenet``: val labels come from the annotations file."""

from __future__ import annotations

import shutil

import pytest

from solo_diversity.cli import main
from solo_diversity.index import ensure_index, open_index
from tests.prepare import fakes

WNIDS = ["n01443537", "n01629819", "n01641577"]
VAL = {
    "val_0.JPEG": "n01641577",
    "val_1.JPEG": "n01443537",
    "val_2.JPEG": "n01641577",
    "val_3.JPEG": "n01629819",
    "val_4.JPEG": "n01641577",
}


def _prepare(source, tmp_path):
    argv = ["data", "prepare", "tinyimagenet", "--from", str(source)]
    return main([*argv, "--out", str(tmp_path / "datasets"), "--index-cache", str(tmp_path / "c")])


def test_val_labels_match_the_annotations_file(tmp_path):
    fakes.tinyimagenet(tmp_path / "dl", WNIDS, 2, VAL)
    assert _prepare(tmp_path / "dl", tmp_path) == 0
    out = tmp_path / "datasets" / "tinyimagenet"
    val = open_index(
        ensure_index(
            "tinyimagenet",
            out / "val",
            split="test",
            data_format="image_folder",
            cache_dir=tmp_path / "c",
        )
    )
    assert val.class_names == sorted(WNIDS) and len(val) == len(VAL)
    found = {
        name.split("/")[1]: val.class_names[label]
        for name, label in zip(val.entry_names(), val.labels().tolist(), strict=True)
    }
    assert found == VAL
    train = open_index(next((tmp_path / "c").glob("tinyimagenet-train-seed0-*.h5")))
    assert train.class_names == sorted(WNIDS)
    assert sorted(train.labels().tolist()) == [0, 0, 1, 1, 2, 2]
    assert train.file_path(0).read_bytes()[:2] == b"\xff\xd8"  # a link to the JPEG itself


def test_the_zip_archive_is_unpacked_and_prepared(tmp_path):
    fakes.tinyimagenet(tmp_path / "dl", WNIDS, 1, VAL)
    archive = shutil.make_archive(str(tmp_path / "tiny-imagenet-200"), "zip", tmp_path / "dl")
    assert _prepare(archive, tmp_path) == 0
    assert (tmp_path / "datasets" / "tinyimagenet" / "raw" / "tiny-imagenet-200").is_dir()
    assert len(list((tmp_path / "c").glob("tinyimagenet-test-seed0-*.h5"))) == 1


def test_a_folder_without_the_layout_says_what_to_place_where(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "empty", tmp_path)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"error: TinyImageNet not found in {tmp_path / 'empty'}: place ")
    assert "tiny-imagenet-200.zip" in err and "http://cs231n.stanford.edu/" in err
    assert not (tmp_path / "datasets").exists()


def test_an_annotation_of_an_unknown_class_is_refused(tmp_path, capsys):
    fakes.tinyimagenet(tmp_path / "dl", WNIDS, 1, {**VAL, "val_9.JPEG": "n99999999"})
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("val_annotations.txt line 6: class 'n99999999' is not in wnids.txt")
    )


def test_a_second_prepare_is_refused_and_leaves_the_tree(tmp_path, capsys):
    fakes.tinyimagenet(tmp_path / "dl", WNIDS, 1, VAL)
    assert _prepare(tmp_path / "dl", tmp_path) == 0
    before = sorted(p.name for p in (tmp_path / "datasets/tinyimagenet/train").rglob("*"))
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert (
        "train already exists; remove it to prepare this dataset again" in capsys.readouterr().err
    )
    assert sorted(p.name for p in (tmp_path / "datasets/tinyimagenet/train").rglob("*")) == before


def test_two_images_of_one_name_in_a_class_are_refused_and_nothing_is_left(tmp_path, capsys):
    top = fakes.tinyimagenet(tmp_path / "dl", WNIDS, 1, VAL)
    fakes.image(top / "val" / "images" / "copy" / "val_1.JPEG")
    with (top / "val" / "val_annotations.txt").open("a") as f:
        f.write("copy/val_1.JPEG\tn01443537\t0\t0\t8\t8\n")
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: two val images are named val_1.JPEG in class n01443537"
    )
    assert list((tmp_path / "datasets" / "tinyimagenet").iterdir()) == []
    annotations = (top / "val" / "val_annotations.txt").read_text().splitlines()
    (top / "val" / "val_annotations.txt").write_text("\n".join(annotations[:-1]) + "\n")
    assert _prepare(tmp_path / "dl", tmp_path) == 0  # nothing half-made blocks the next try
