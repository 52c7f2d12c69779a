# SPDX-License-Identifier: MIT
"""write_selection and subset counts on a tiny paths index."""

import json

import numpy as np
import pytest

from solo_diversity.errors import UserError
from solo_diversity.index.algebra import first_count, write_selection
from solo_diversity.index.reader import open_index
from solo_diversity.index.writer import IndexMeta, write_index


@pytest.fixture
def tiny(tmp_path):
    meta = IndexMeta("fake", "train", "paths", str(tmp_path), 3, "fake", ("a", "b", "c"))
    entries = [(f"c{i % 3}/{i}.jpg", i % 3) for i in range(30)]
    return open_index(write_index(entries, tmp_path / "src.h5", meta))


def test_selection_keeps_entries_and_provenance(tiny, tmp_path):
    pos = np.arange(0, 30, 2)
    out = open_index(write_selection(tiny, pos, tmp_path / "sel.h5", seed=5, note="B"))
    assert len(out) == 15 and out.class_names == tiny.class_names
    got = {out.entry_name(i) for i in range(len(out))}
    assert got == {tiny.entry_name(int(p)) for p in pos}
    prov = json.loads(out.source)
    assert prov["fingerprint"] == tiny.fingerprint and prov["set"] == "B"


def test_empty_selection_writes_nothing(tiny, tmp_path):
    with pytest.raises(UserError):
        write_selection(tiny, np.zeros(0), tmp_path / "none.h5", seed=1, note="x")
    assert not (tmp_path / "none.h5").exists()


@pytest.mark.parametrize(
    "kw", [{}, {"fraction": 0.5, "count": 3}, {"fraction": 0.0}, {"count": 99}]
)
def test_first_count_errors(tiny, kw):
    with pytest.raises(UserError):
        first_count(tiny, **kw)


def test_first_count(tiny):
    assert first_count(tiny, fraction=0.5) == 15 and first_count(tiny, count=4) == 4
