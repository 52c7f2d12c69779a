# SPDX-License-Identifier: MIT
"""The optional per-entry ``origin`` column: written with its sources, absent from older indexes,
and a file that claims origins without the column is a corrupt index."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from solo_diversity.errors import UserError
from solo_diversity.index import open_index
from solo_diversity.index.writer import IndexMeta, write_index


def meta(tmp_path, origin_sources=""):
    return IndexMeta("x", "train", "paths", str(tmp_path), 7, "t", ("a", "b"), origin_sources)


def test_origins_follow_their_entries_through_the_shuffle(tmp_path):
    sources = json.dumps([{"path": "one.h5"}, {"path": "two.h5"}, {"path": "three.h5"}])
    entries = [(f"{i % 3}/{i}.jpg", i % 2) for i in range(40)]
    origins = np.array([i % 3 for i in range(40)])
    index = open_index(
        write_index(entries, tmp_path / "o.h5", meta(tmp_path, sources), origins=origins)
    )
    assert index.has_origin and [s["path"] for s in index.origin_sources][0] == "one.h5"
    got = index.origins()
    for pos, name in enumerate(index.entry_names()):
        assert int(got[pos]) == int(name.split("/")[0])
    assert np.array_equal(index.origins(np.array([3, 1])), got[[3, 1]])


def test_an_index_without_origins_still_reads(tmp_path):
    index = open_index(write_index([("p.jpg", 0)], tmp_path / "plain.h5", meta(tmp_path)))
    assert not index.has_origin and index.origin_sources == []
    with h5py.File(index.path) as f:
        assert "origin" not in f and "origin_sources" not in f.attrs
    with pytest.raises(ValueError, match="no origins"):
        index.origins()


def test_origins_and_sources_come_together(tmp_path):
    with pytest.raises(ValueError, match="together"):
        write_index([("p.jpg", 0)], tmp_path / "bad.h5", meta(tmp_path), origins=np.zeros(1))
    assert not (tmp_path / "bad.h5").exists()


def test_sources_without_the_column_is_corrupt(tmp_path):
    path = write_index([("p.jpg", 0)], tmp_path / "c.h5", meta(tmp_path))
    with h5py.File(path, "a") as f:
        f.attrs["origin_sources"] = json.dumps([{"path": "one.h5"}])
    with pytest.raises(UserError, match="'origin' missing"):
        open_index(path)
