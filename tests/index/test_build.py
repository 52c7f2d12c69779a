# SPDX-License-Identifier: MIT
"""Building indexes: determinism, round trips, labels, list files, atomicity."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from solo_diversity.index import build_index, open_index
from solo_diversity.index import shuffle as shuffle_module
from solo_diversity.index import writer as writer_module
from solo_diversity.index.writer import IndexMeta, write_index

CLASSES = ("cat", "dog", "fox")  # the image_tree fixture's layout
PER_CLASS = (4, 3, 5)


def stored(path: Path) -> tuple[list[bytes], list[int], list[int]]:
    with h5py.File(path, "r") as f:
        payload = f["paths"] if "paths" in f else f["images"]
        entries = [bytes(x) if not isinstance(x, bytes) else x for x in payload[:]]
        return entries, f["labels"][:].tolist(), f["source_position"][:].tolist()


def test_same_seed_gives_identical_order_and_fingerprint(image_tree, tmp_path):
    a = build_index("folder", tmp_path / "a.h5", root=image_tree, seed=7)
    b = build_index("folder", tmp_path / "b.h5", root=image_tree, seed=7)
    assert stored(a) == stored(b)
    assert open_index(a).fingerprint == open_index(b).fingerprint


def test_different_seed_changes_order_and_fingerprint(image_tree, tmp_path):
    a = build_index("folder", tmp_path / "a.h5", root=image_tree, seed=0)
    b = build_index("folder", tmp_path / "b.h5", root=image_tree, seed=1)
    entries_a, _, pos_a = stored(a)
    entries_b, _, pos_b = stored(b)
    assert pos_a != pos_b and sorted(entries_a) == sorted(entries_b)
    assert open_index(a).fingerprint != open_index(b).fingerprint


def test_fingerprint_does_not_depend_on_chunking(make_index, monkeypatch):
    labels = [i % 5 for i in range(1000)]
    first = open_index(make_index(labels, name="one.h5")).fingerprint
    for name, value in [
        ("SPOOL_CHUNK", 13),
        ("SCATTER_CHUNK", 50),
        ("MIN_BUCKET", 64),
        ("YIELD_BLOCK", 7),
    ]:
        monkeypatch.setattr(shuffle_module, name, value)
    assert open_index(make_index(labels, name="two.h5")).fingerprint == first


def test_order_is_the_seeded_permutation(make_index):
    index_path = make_index(list(range(50)), seed=3)
    _, labels, positions = stored(index_path)
    dest = np.random.default_rng(3).permutation(50)  # source row r lands at position dest[r]
    assert positions == np.argsort(dest).tolist()
    assert labels == positions  # label i was given to source row i


def test_folder_paths_round_trip_with_labels_and_class_names(image_tree, tmp_path):
    index = open_index(build_index("folder", tmp_path / "f.h5", root=image_tree))
    assert index.kind == "paths" and index.root == image_tree.resolve()
    assert index.class_names == list(CLASSES) and index.num_classes == 3 and index.has_labels
    assert len(index) == sum(PER_CLASS)  # notes.txt is not an image
    assert index.dataset == "tree" and index.split == "train"
    names = [index.entry_name(i) for i in range(len(index))]
    labels = index.labels()
    for i, name in enumerate(names):
        assert name.split("/")[0] == CLASSES[labels[i]]
        assert index.read_bytes(i) == (image_tree / name).read_bytes()
        assert index.file_path(i) == image_tree.resolve() / name
    assert np.bincount(labels).tolist() == list(PER_CLASS)


def test_folder_embedded_bytes_round_trip(image_tree, tmp_path):
    index = open_index(build_index("folder", tmp_path / "e.h5", root=image_tree, embed=True))
    assert index.kind == "bytes" and index.root is None
    originals = {
        (image_tree / c / f.name).read_bytes() for c in CLASSES for f in (image_tree / c).iterdir()
    }
    got = [index.read_bytes(i) for i in range(len(index))]
    assert set(got) <= originals and len(set(got)) == sum(PER_CLASS)
    assert got[0][:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0")
    assert index.entry_name(0).startswith("#")
    with h5py.File(index.path, "r") as f:
        assert f["images"].compression is None  # encoded bytes as they are, no gzip on top


def test_flat_source_is_unlabeled(image_tree, tmp_path):
    index = open_index(build_index("flat", tmp_path / "flat.h5", root=image_tree))
    assert len(index) == sum(PER_CLASS)
    assert index.labels().tolist() == [-1] * sum(PER_CLASS)
    assert index.class_names == [] and index.num_classes == 0 and not index.has_labels


def test_csv_list_with_named_labels(image_tree, tmp_path):
    rows = ["file,label"] + [f"{c}/img_0.{'png'},{c}" for c in CLASSES]
    listing = tmp_path / "files.csv"
    listing.write_text("\n".join(rows) + "\n")
    index = open_index(
        build_index(
            "list", tmp_path / "l.h5", list_path=listing, root=image_tree, path_column="file"
        )
    )
    assert index.class_names == sorted(CLASSES)
    by_name = {index.entry_name(i): int(index.labels()[i]) for i in range(len(index))}
    assert by_name == {f"{c}/img_0.png": sorted(CLASSES).index(c) for c in CLASSES}
    assert index.read_bytes(0) == (image_tree / index.entry_name(0)).read_bytes()


def test_csv_list_with_integer_labels(tmp_path):
    listing = tmp_path / "ints.csv"
    listing.write_text("path,label\na.jpg,2\nb.jpg,0\nc.jpg,2\n")
    index = open_index(build_index("list", tmp_path / "i.h5", list_path=listing))
    assert index.class_names == ["0", "1", "2"] and index.root == tmp_path.resolve()
    assert {index.entry_name(i): int(index.labels()[i]) for i in range(3)} == {
        "a.jpg": 2,
        "b.jpg": 0,
        "c.jpg": 2,
    }


def test_txt_list_is_unlabeled_and_skips_comments(tmp_path):
    listing = tmp_path / "paths.txt"
    listing.write_text("# header comment\nx/1.jpg\n\n/abs/2.jpg\n")
    index = open_index(build_index("list", tmp_path / "t.h5", list_path=listing))
    assert sorted(index.entry_name(i) for i in range(len(index))) == ["/abs/2.jpg", "x/1.jpg"]
    assert index.labels().tolist() == [-1, -1] and not index.has_labels
    absolute = [i for i in range(2) if index.entry_name(i) == "/abs/2.jpg"][0]
    assert index.file_path(absolute) == Path("/abs/2.jpg")


def test_index_is_picklable_and_readable_after(image_tree, tmp_path):
    index = open_index(build_index("folder", tmp_path / "p.h5", root=image_tree))
    before = index.read_bytes(2)  # opens the handle
    clone = pickle.loads(pickle.dumps(index))
    assert clone.read_bytes(2) == before
    assert clone.labels().tolist() == index.labels().tolist()
    assert clone.fingerprint == index.fingerprint and len(clone) == len(index)


def test_labels_at_scattered_positions(make_index):
    index = open_index(make_index([i % 7 for i in range(300)]))
    everything = index.labels()
    positions = np.array([299, 0, 150, 150, 7])
    assert index.labels(positions).tolist() == everything[positions].tolist()
    assert index.labels(range(10, 20)).tolist() == everything[10:20].tolist()
    rows = index.source_positions()
    assert sorted(rows.tolist()) == list(range(300))
    assert index.source_positions(positions).tolist() == rows[positions].tolist()
    with pytest.raises(IndexError):
        index.labels(np.array([300]))
    with pytest.raises(IndexError):
        index.entry_name(300)


def failing_entries(n_ok: int):
    for i in range(n_ok):
        yield f"img_{i}.jpg", 0
    raise RuntimeError("source died midway")


META = IndexMeta("synthetic", "train", "paths", "/data", 0, "test", ("a",))


def test_interrupted_build_leaves_no_file(tmp_path):
    target = tmp_path / "new.h5"
    with pytest.raises(RuntimeError, match="midway"):
        write_index(failing_entries(100), target, META)
    assert list(tmp_path.iterdir()) == []  # no target, no .partial, no spool


def test_interrupted_rebuild_keeps_the_earlier_index(tmp_path):
    target = write_index(((f"old_{i}.jpg", 0) for i in range(10)), tmp_path / "idx.h5", META)
    fingerprint = open_index(target).fingerprint
    with pytest.raises(RuntimeError, match="midway"):
        write_index(failing_entries(100_000), target, META)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx.h5"]
    kept = open_index(target)
    assert kept.fingerprint == fingerprint and len(kept) == 10


def test_interrupt_during_the_write_pass_cleans_up(tmp_path, monkeypatch):
    target = write_index(((f"old_{i}.jpg", 0) for i in range(10)), tmp_path / "idx.h5", META)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer_module.Fingerprint, "hexdigest", boom)
    with pytest.raises(KeyboardInterrupt):
        write_index(((f"new_{i}.jpg", 0) for i in range(20)), target, META)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx.h5"]
    assert len(open_index(target)) == 10
