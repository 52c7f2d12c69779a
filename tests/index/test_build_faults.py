# SPDX-License-Identifier: MIT
"""``solo-div index build`` faults that used to end in a traceback: each is one line, exit 2.

A symbolic link loop in the scanned folder, an output path that is a folder, a disk that fills up
(a small tmpfs, mounted as in ``tests/e2e/test_disk_full.py``), and a Fashion-MNIST root that does
not exist (which used to index the system copy without a word).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from solo_diversity.index import open_index
from solo_diversity.index.cli import main
from tests.tmpfs import mount_tmpfs, needs_namespace, rerun_in_namespace


def _fails(capsys, *args: object) -> str:
    """Run ``index build ARGS``: exit 2 and one ``error:`` line on stderr, which is returned."""
    capsys.readouterr()
    assert main(["index", "build", *map(str, args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    return err[len("error: ") : -1]


def test_a_link_back_to_an_enclosing_folder_is_one_line(image_tree, tmp_path, capsys):
    (image_tree / "dog" / "up").symlink_to(image_tree)
    line = _fails(capsys, "folder", tmp_path / "x.h5", "--root", image_tree)
    assert line == (
        f"{image_tree.resolve() / 'dog' / 'up'} links back to a folder that contains it (a "
        "symbolic link loop); remove the link or move it out of the folder"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]  # no index, no working files


def test_a_link_to_itself_is_one_line(image_tree, tmp_path, capsys):
    (image_tree / "cat" / "self").symlink_to(image_tree / "cat" / "self")
    line = _fails(capsys, "flat", tmp_path / "x.h5", "--root", image_tree)
    assert line == (
        f"{image_tree.resolve() / 'cat' / 'self'} cannot be followed (Too many levels of "
        "symbolic links); remove the symbolic link loop or move it out of the folder"
    )
    assert not (tmp_path / "x.h5").exists()


def test_a_linked_folder_that_is_no_loop_is_indexed(image_tree, tmp_path, capsys):
    elsewhere = tmp_path / "more"
    elsewhere.mkdir()
    shutil.copy(image_tree / "cat" / "img_0.png", elsewhere / "extra.png")
    (image_tree / "dog" / "more").symlink_to(elsewhere)
    assert (
        main(["index", "build", "folder", str(tmp_path / "x.h5"), "--root", str(image_tree)]) == 0
    )
    assert len(open_index(tmp_path / "x.h5")) == 13  # 12 images and the linked one


def test_an_existing_folder_as_the_output_is_one_line(image_tree, tmp_path, capsys):
    out = tmp_path / "indexes"
    out.mkdir()
    line = _fails(capsys, "folder", out, "--root", image_tree)
    assert line == f"{out} is a folder; give the index file to write there, e.g. {out}/index.h5"
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "indexes",
        "tree",
    ]


def test_fashion_mnist_with_a_root_that_does_not_exist_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    line = _fails(capsys, "fashion_mnist", tmp_path / "fm.h5", "--root", missing)
    assert line == (
        f"fashion_mnist root {missing} does not exist; give the folder with "
        "train-images-idx3-ubyte.gz (create it to download there), or no root to use "
        "/usr/share/datasets/fashion-mnist"
    )
    assert not missing.exists() and not (tmp_path / "fm.h5").exists()


def test_a_full_disk_is_one_line_and_keeps_the_earlier_index(request, tmp_path, capsys):
    if needs_namespace():
        rerun_in_namespace(__file__, request.node.name, timeout=300)
        return
    disk = tmp_path / "disk"
    mount_tmpfs(disk, 1)  # 1 MB: one digits index (250 KB) and its build, not two
    try:
        out = disk / "digits.h5"
        assert main(["index", "build", "digits", str(out), "--seed", "1"]) == 0
        before = out.read_bytes()
        (disk / "another-job.bin").write_bytes(b"\0" * _half_the_free_space(disk))
        line = _fails(capsys, "digits", out, "--seed", "2")
        assert line == (
            f"the disk of {disk} is full (No space left on device): index {out} was not written, "
            "and the working files are removed; free space and build again"
        )
        assert out.read_bytes() == before
        assert sorted(p.name for p in disk.iterdir()) == ["another-job.bin", "digits.h5"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)


def _half_the_free_space(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize // 2
