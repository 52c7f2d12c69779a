# SPDX-License-Identifier: MIT
"""``solo-div index union|subset|filter|exclude`` and ``solo-div build source`` through argparse:
what they write, and bad input as one line with exit code 2 and nothing left behind."""

from __future__ import annotations

import pytest

from solo_diversity.builders.cli import main as build_main
from solo_diversity.index import open_index
from solo_diversity.index.cli import main as index_main


def one_error_line(capsys) -> str:
    out = capsys.readouterr().err
    assert out.count("\n") == 1 and out.startswith("error: ") and "Traceback" not in out
    return out


def test_build_source_writes_three_sets(imagenet_index, tmp_path, capsys):
    out = tmp_path / "sets"
    argv = ["build", "source", "--imagenet", str(imagenet_index), "--out", str(out)]
    assert build_main([*argv, "--seed", "2", "--a-out-size", "10", "--a-out-classes", "5"]) == 0
    printed = capsys.readouterr().out
    assert "B.h5 (200 entries" in printed and "A_out_source.h5 (10 entries" in printed
    assert sorted(p.name for p in out.iterdir()) == ["A_in_source.h5", "A_out_source.h5", "B.h5"]


def test_build_source_bad_input_leaves_nothing(imagenet_index, tmp_path, capsys):
    out = tmp_path / "sets"
    argv = ["build", "source", "--imagenet", str(imagenet_index), "--out", str(out), "--seed", "0"]
    assert build_main(argv) == 2  # 100 A_out classes wanted, the fake tree has 10
    assert "only 10 classes" in one_error_line(capsys) and not out.exists()


def test_union_subset_filter_exclude_chain(pets, tmp_path, capsys):
    u, s, f, x = (str(tmp_path / f"{n}.h5") for n in "usfx")
    a, b = str(pets["a"]), str(pets["b"])
    assert index_main(["index", "union", a, b, "--out", u, "--seed", "3"]) == 0
    assert index_main(["index", "subset", u, "--fraction", "0.5", "--out", s]) == 0
    listing = tmp_path / "classes.txt"
    listing.write_text("dog  # shared by both inputs\neel\n")
    assert index_main(["index", "filter", u, "--classes-file", str(listing), "--out", f]) == 0
    assert index_main(["index", "exclude", f, "--other", s, "--out", x]) == 0
    assert [len(open_index(p)) for p in (u, s, f)] == [12, 6, 7]
    sub, kept = open_index(s), open_index(f)
    overlap = set(kept.entry_names()) & {str(sub.file_path(i)) for i in range(len(sub))}
    assert len(open_index(x)) == 7 - len(overlap)
    capsys.readouterr()
    assert index_main(["index", "info", u]) == 0
    assert "6 from" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["union", "{a}", "{missing}", "--out", "{out}", "--seed", "0"], "not found"),
        (["union", "{a}", "{b_bytes}", "--out", "{out}", "--seed", "0"], "one kind"),
        (["subset", "{missing}", "--count", "2", "--out", "{out}"], "not found"),
        (["subset", "{a}", "--count", "99", "--out", "{out}"], "--count must be"),
        (["filter", "{a}", "--classes", "cat,owl", "--out", "{out}"], "owl"),
        (["filter", "{a}", "--classes", " , ", "--out", "{out}"], "empty"),
        (["filter", "{a}", "--classes-file", "{missing}", "--out", "{out}"], "not found"),
        (["exclude", "{a}", "--other", "{a}", "--out", "{out}"], "nothing to write"),
        (["exclude", "{a}", "--other", "{missing}", "--out", "{out}"], "not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(pets, tmp_path, capsys, argv, message):
    values = {**{k: str(v) for k, v in pets.items()}, "out": str(tmp_path / "out.h5")}
    values["missing"] = str(tmp_path / "missing.h5")
    assert index_main(["index", *(a.format(**values) for a in argv)]) == 2
    assert message in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []
