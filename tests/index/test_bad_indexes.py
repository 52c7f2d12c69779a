# SPDX-License-Identifier: MIT
"""Bad index files, one test per kind: each is one UserError line saying what is wrong and the fix.

Kinds: foreign HDF5, wrong format version, truncated, moved root, not HDF5, another dataset. Each
is checked through ``open_index`` and ``ensure_index``; then every kind once through ``solo-div
index info`` and once through ``main_pretrain.py`` in a subprocess (exit 2, one ``error:`` line,
no traceback).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import pytest

from solo_diversity import cli
from solo_diversity.errors import UserError
from solo_diversity.index import build_index, ensure_index, open_index, select_subset
from solo_diversity.index.writer import relocate_root
from tests import zygote
from tests.bad_inputs import foreign_hdf5, not_hdf5, truncated_copy, with_format_version
from tests.conftest import REPO

REBUILD = "rebuild it with `solo-div index build`"


@pytest.fixture
def good_index(image_tree: Path, tmp_path: Path) -> Path:
    """A paths index (dataset digits) over the real image_tree files."""
    return build_index("folder", tmp_path / "good.h5", dataset="digits", root=image_tree)


def expect(call: Callable[[], object], message: str) -> None:
    with pytest.raises(UserError) as err:
        call()
    assert "\n" not in str(err.value)
    assert re.fullmatch(message, str(err.value)), str(err.value)


def through_the_api(path: Path, message: str, dataset: str = "digits") -> None:
    expect(lambda: open_index(path, expected_dataset=dataset), message)
    expect(lambda: ensure_index(dataset, path, split="train"), message)


def foreign_kind(good: Path, tmp: Path) -> tuple[Path, str]:
    path = foreign_hdf5(tmp / "other.h5")
    return path, (
        f"{re.escape(str(path))} is not a solo-diversity index \\(format attr None, expected "
        "'solo-diversity-index'\\); build one with `solo-div index build`"
    )


def newer_version_kind(good: Path, tmp: Path) -> tuple[Path, str]:
    path = with_format_version(good, tmp / "v2.h5", 2)
    return path, (
        f"{re.escape(str(path))} has index format_version 2; this solo-diversity reads 1: "
        f"upgrade solo-diversity, or {REBUILD}"
    )


def truncated_kind(good: Path, tmp: Path) -> tuple[Path, str]:
    path = truncated_copy(good, tmp / "cut.h5")
    size = good.stat().st_size
    return path, (
        f"cannot read index {re.escape(str(path))}: the file is truncated \\({size // 2} of "
        f"{size} bytes; an interrupted copy\\?\\); copy it again or {REBUILD}"
    )


def moved_root_kind(good: Path, tmp: Path) -> tuple[Path, str]:
    root = open_index(good).root
    assert root is not None
    root.rename(root.with_name("tree_moved"))
    return good, (
        f"index {re.escape(str(good))} reads its images from {re.escape(str(root))}, which is not "
        "a folder \\(moved or renamed\\?\\); rebuild the index with `solo-div index build`, or "
        "point it at the folder's new place with "
        f"`solo-div index relocate {re.escape(str(good))} NEW_ROOT`"
    )


def not_hdf5_kind(good: Path, tmp: Path) -> tuple[Path, str]:
    path = not_hdf5(tmp / "list.h5")
    size = path.stat().st_size
    return path, (
        f"cannot read index {re.escape(str(path))}: not an HDF5 file \\({size} bytes, no HDF5 "
        "signature\\); an index is made by `solo-div index build`"
    )


def other_dataset_kind(good: Path, tmp: Path) -> tuple[Path, str]:
    path = shutil.copy(good, tmp / "tree.h5")
    with h5py.File(path, "a") as f:
        f.attrs["dataset"] = "tree"
    return Path(path), (
        f"index {re.escape(str(path))} holds dataset 'tree', but the config asks for 'digits'"
    )


KINDS = {
    "foreign": foreign_kind,
    "wrong version": newer_version_kind,
    "truncated": truncated_kind,
    "moved root": moved_root_kind,
    "not hdf5": not_hdf5_kind,
    "another dataset": other_dataset_kind,
}


def test_foreign_hdf5(good_index, tmp_path):
    through_the_api(*foreign_kind(good_index, tmp_path))


def test_wrong_format_version(good_index, tmp_path):
    through_the_api(*newer_version_kind(good_index, tmp_path))
    older = with_format_version(good_index, tmp_path / "v0.h5", 0)
    through_the_api(
        older,
        f"{re.escape(str(older))} has index format_version 0; this solo-diversity reads 1: "
        f"{REBUILD}",
    )
    garbled = with_format_version(good_index, tmp_path / "vx.h5", "one")
    through_the_api(
        garbled,
        f"{re.escape(str(garbled))} is a corrupt index: format_version 'one' is not an integer; "
        f"{REBUILD}",
    )


def test_truncated_index(good_index, tmp_path):
    through_the_api(*truncated_kind(good_index, tmp_path))
    # Cut anywhere (here: 1 byte short) it is still caught at open time, not at the first read.
    short = truncated_copy(
        good_index, tmp_path / "short.h5", keep=1 - 1 / good_index.stat().st_size
    )
    expect(lambda: open_index(short), r"cannot read index .*short\.h5: the file is truncated .*")


def test_moved_root(good_index, tmp_path):
    path, message = moved_root_kind(good_index, tmp_path)
    expect(lambda: ensure_index("digits", path, split="train"), message)
    assert open_index(path).dataset == "digits"  # opening alone (e.g. index info) still works
    # The fix it names: relocate. Same entries, same fingerprint, every image readable again.
    fingerprint = open_index(path).fingerprint
    relocate_root(path, tmp_path / "tree_moved")
    index = open_index(ensure_index("digits", path, split="train"))
    assert index.root == (tmp_path / "tree_moved").resolve() and index.fingerprint == fingerprint
    subset = select_subset(index, -1)
    assert all(index.file_path(p).is_file() for p in subset.positions)


def test_root_replaced_by_another_folder(good_index, tmp_path):
    root = open_index(good_index).root
    assert root is not None
    shutil.rmtree(root)
    (root / "other").mkdir(parents=True)  # the folder exists again, but not the images
    expect(
        lambda: ensure_index("digits", good_index, split="train"),
        f"none of the first 12 images of index {re.escape(str(good_index))} is under "
        f"{re.escape(str(root))} \\(e\\.g\\. .*\\); "
        "was the folder moved or replaced\\? .*relocate.*",
    )


def test_relocate_refuses_a_folder_without_the_images(good_index, tmp_path):
    (tmp_path / "empty").mkdir()
    expect(
        lambda: relocate_root(good_index, tmp_path / "empty"),
        rf"{re.escape(str((tmp_path / 'empty').resolve()))} does not hold the index's images: "
        r"\S+ is not there",
    )
    assert open_index(good_index).root.is_dir()  # unchanged


def test_not_an_hdf5_file(good_index, tmp_path):
    through_the_api(*not_hdf5_kind(good_index, tmp_path))
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    through_the_api(
        empty,
        f"cannot read index {re.escape(str(empty))}: not an HDF5 file \\(0 bytes, no HDF5 "
        "signature\\); an index is made by `solo-div index build`",
    )


def test_index_of_another_dataset(good_index, tmp_path):
    through_the_api(*other_dataset_kind(good_index, tmp_path))


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("moved root", "another dataset")])
def test_index_info_prints_one_error_line(kind, good_index, tmp_path, capsys):
    path, message = KINDS[kind](good_index, tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["index", "info", str(path)])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert re.fullmatch(f"error: {message}\n", captured.err), captured.err


def test_index_info_shows_a_moved_root(good_index, tmp_path, capsys):
    path, _ = moved_root_kind(good_index, tmp_path)
    assert cli.main(["index", "info", str(path)]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["root"] == f"{open_index(path).root} (missing: see `solo-div index relocate`)"


def test_main_pretrain_exits_2_with_one_line_for_every_kind(image_tree, tmp_path):
    # One process per kind, started together (the cost is the interpreter's start-up).
    runs = {}
    for i, (kind, make) in enumerate(KINDS.items()):
        tmp = tmp_path / f"kind{i}"
        shutil.copytree(image_tree, tmp / "tree")
        good = build_index("folder", tmp / "good.h5", dataset="digits", root=tmp / "tree")
        path, message = make(good, tmp)
        command = [
            sys.executable,
            str(REPO / "main_pretrain.py"),
            "--config-name",
            "simclr_div",
            f"data.train_path={path}",
            "data.val_path=null",
            f"checkpoint.dir={tmp / 'trained_models'}",
        ]
        proc = zygote.popen(command, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        runs[kind] = (proc, message)
    for kind, (proc, message) in runs.items():
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 2, (kind, stderr[-2000:])
        assert "Traceback" not in stderr, kind
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and re.fullmatch(f"error: {message}", errors[0]), (kind, stderr)
