# SPDX-License-Identifier: MIT
"""The out-of-core shuffle against an in-memory reference, across many buckets and chunks."""

from __future__ import annotations

import numpy as np
import pytest

from solo_diversity.index import shuffle


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(shuffle, "SPOOL_CHUNK", 17)
    monkeypatch.setattr(shuffle, "SCATTER_CHUNK", 45)
    monkeypatch.setattr(shuffle, "MIN_BUCKET", 32)
    monkeypatch.setattr(shuffle, "MAX_BUCKETS", 8)
    monkeypatch.setattr(shuffle, "YIELD_BLOCK", 11)


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1000])
def test_blocks_match_the_in_memory_permutation(tmp_path, small_chunks, n):
    rng = np.random.default_rng(0)
    payloads = [
        bytes(rng.integers(1, 256, size=int(rng.integers(1, 40)), dtype=np.uint8)) for _ in range(n)
    ]
    labels = [i % 3 for i in range(n)]
    spool = shuffle.spool_entries(zip(payloads, labels, strict=True), "bytes", tmp_path)
    assert spool.num_entries == n and spool.num_bytes == sum(map(len, payloads))
    blocks = list(shuffle.shuffled_blocks(spool, seed=9))
    assert [b.lo for b in blocks] == sorted(b.lo for b in blocks) and blocks[-1].hi == n
    assert all(b.hi - b.lo <= 11 for b in blocks)
    rows = np.concatenate([b.rows for b in blocks])
    assert rows.tolist() == np.argsort(np.random.default_rng(9).permutation(n)).tolist()
    assert [p for b in blocks for p in b.payloads] == [payloads[r] for r in rows]
    assert np.concatenate([b.labels for b in blocks]).tolist() == [labels[r] for r in rows]
    assert np.concatenate([b.lengths for b in blocks]).tolist() == [len(payloads[r]) for r in rows]
    assert list(tmp_path.iterdir()) == []  # spool and bucket files are removed as they are used


def test_bucket_count_is_capped(small_chunks):
    assert shuffle.bucket_size(10) == 32
    assert -(-10_000 // shuffle.bucket_size(10_000)) <= 8


def test_spool_skips_empty_and_undecodable_paths(tmp_path):
    entries = [("a.jpg", 0), ("", 1), ("bad\udcff.jpg", 2), ("b.jpg", 3)]
    spool = shuffle.spool_entries(entries, "paths", tmp_path)
    assert spool.num_entries == 2
    assert (tmp_path / "payload.bin").read_bytes() == b"a.jpgb.jpg"
    assert np.fromfile(tmp_path / "labels.bin", dtype="<i8").tolist() == [0, 3]
