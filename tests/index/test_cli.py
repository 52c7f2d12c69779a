# SPDX-License-Identifier: MIT
"""The `solo-div index build|info` sub-commands through argparse."""

from __future__ import annotations

import argparse

from solo_diversity.index import open_index
from solo_diversity.index.cli import main, register


def test_build_then_info_prints_the_fields(image_tree, tmp_path, capsys):
    out = tmp_path / "tree.h5"
    assert (
        main(["index", "build", "folder", str(out), "--root", str(image_tree), "--seed", "5"]) == 0
    )
    capsys.readouterr()
    assert main(["index", "info", str(out)]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    index = open_index(out)
    assert lines["dataset"] == "tree" and lines["split"] == "train" and lines["kind"] == "paths"
    assert lines["N"] == "12" and lines["classes"] == "3" and lines["seed"] == "5"
    assert lines["source"] == f"folder:{image_tree.resolve()}"
    assert lines["fingerprint"] == index.fingerprint


def test_build_list_with_embed(image_tree, tmp_path, capsys):
    listing = tmp_path / "l.txt"
    listing.write_text("cat/img_0.png\ndog/img_1.jpg\n")
    out = tmp_path / "l.h5"
    code = main(
        [
            "index",
            "build",
            "list",
            str(out),
            "--list",
            str(listing),
            "--root",
            str(image_tree),
            "--embed",
        ]
    )
    assert code == 0
    index = open_index(out)
    assert (
        index.kind == "bytes"
        and len(index) == 2
        and "classes      0 (unlabeled)" in capsys.readouterr().out
    )


def test_user_error_is_one_line_with_exit_code_2(tmp_path, capsys):
    assert main(["index", "info", str(tmp_path / "missing.h5")]) == 2
    assert capsys.readouterr().err == f"error: index file not found: {tmp_path / 'missing.h5'}\n"


def test_register_adds_index_to_an_existing_parser():
    parser = argparse.ArgumentParser(prog="solo-div")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["index", "info", "x.h5"])
    assert args.command == "index" and args.index_command == "info" and callable(args.func)
