# SPDX-License-Identifier: MIT
"""The pure parts of the web builder: queries, pacing, dedup, selection, URL list, rounds, CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from solo_diversity.builders.web import download, urllist
from solo_diversity.builders.web.cli import add_web_parser, parse_rates, resolve
from solo_diversity.builders.web.dedup import from_hex, matches, within
from solo_diversity.builders.web.pacing import Backoff, RateLimit, backoff_delay, paced_call
from solo_diversity.builders.web.queries import make_classes, read_class_list
from solo_diversity.builders.web.select import shortfall, top_per_class
from solo_diversity.errors import UserError


class FakeClock:
    """A clock the sleeps advance: pacing arithmetic without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_ambiguous_names_get_their_hypernym(tmp_path: Path) -> None:
    file = tmp_path / "c.txt"
    file.write_text("n1\tcrane\tbird\nn2\tcrane\tdevice\nn3\ttench, Tinca tinca\n")
    classes = read_class_list(file)
    assert [c.query for c in classes] == ["crane bird", "crane device", "tench"]
    assert [c.name for c in classes] == ["crane", "crane", "tench, Tinca tinca"]


def test_hypernym_map_by_wnid_wins_over_name() -> None:
    classes = make_classes(["crane", "crane"], ["n1", "n2"], {"n1": "bird", "crane": "machine"})
    assert [c.query for c in classes] == ["crane bird", "crane machine"]


def test_shared_name_without_hypernym_is_an_error() -> None:
    with pytest.raises(UserError, match="'crane' is shared by n1, n2"):
        make_classes(["crane", "crane"], ["n1", "n2"], {})


def test_class_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_class_list(tmp_path / "missing.txt")
    (tmp_path / "dup.txt").write_text("cat\ncat\n")
    with pytest.raises(UserError, match="repeats cat"):
        read_class_list(tmp_path / "dup.txt")


def test_rate_limit_sleeps_the_rest_of_the_interval() -> None:
    clock = FakeClock()
    limit = RateLimit(2.0, clock=clock, sleep=clock.sleep)
    limit.wait()
    clock.now += 0.5
    limit.wait()
    clock.now += 3.0
    limit.wait()
    assert clock.sleeps == [1.5]


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(a, 1.0, 5.0) for a in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_paced_call_retries_then_returns() -> None:
    clock = FakeClock()
    calls = []

    def flaky() -> str:
        calls.append(clock.now)
        if len(calls) < 3:
            raise ConnectionError("503")
        return "ok"

    limit = RateLimit(0.0, clock=clock, sleep=clock.sleep)
    assert paced_call(flaky, limit, Backoff(4, 1.0, 60.0), what="x", sleep=clock.sleep) == "ok"
    assert clock.sleeps == [1.0, 2.0]


def test_within_keeps_the_first_of_each_group() -> None:
    far = (1 << 20) | (1 << 30) | (1 << 50)
    hashes = np.array([0b1111, 0b1110, 1 << 40, 0b1111 | (1 << 63), far], dtype=np.uint64)
    assert within(hashes, 1).tolist() == [-1, 0, -1, 0, -1]
    assert within(hashes, 0).tolist() == [-1, -1, -1, -1, -1]


def test_within_agrees_with_brute_force() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, size=40, dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, size=(40, 3)).astype(np.uint64)
    hashes = np.concatenate([base, base ^ flips[:, 0] ^ flips[:, 1], base ^ flips[:, 2]])
    rng.shuffle(hashes)
    got = within(hashes, 4)
    kept: list[int] = []
    for i, h in enumerate(hashes.tolist()):
        near = [k for k in kept if (hashes[k].item() ^ h).bit_count() <= 4]
        assert got[i] == (near[0] if near else -1)
        if not near:
            kept.append(i)


def test_matches_finds_reference_hits() -> None:
    crawl = from_hex(["00000000000000ff", "ffffffffffffffff", "0000000000000000"])
    reference = from_hex(["00000000000000fe", "0f0f0f0f0f0f0f0f"])
    assert matches(crawl, reference, 2).tolist() == [0, -1, -1]
    with pytest.raises(ValueError, match="0..63"):
        within(crawl, 64)


def test_top_per_class_interleaves_engines_by_rank() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    ranks = np.array([0, 0, 1, 1, 0, 1])
    engines = np.array([1, 0, 0, 1, 0, 0])
    eligible = np.array([True, True, True, True, False, True])
    keep = top_per_class(labels, ranks, engines, eligible, 3)
    assert keep.tolist() == [True, True, True, False, False, True]
    assert shortfall(labels, keep, 3, 3) == {1: 2, 2: 3}


def test_merge_keeps_each_url_once_under_its_best_provenance(tmp_path: Path) -> None:
    classes = make_classes(["cat", "dog"], ["", ""], {})
    for engine, cls, urls in (
        ("ddg", classes[0], ["a", "b", "c"]),
        ("bing", classes[0], ["b", "d"]),
        ("ddg", classes[1], ["a", "e"]),
    ):
        urllist.write_table_atomic(
            urllist.hits_table(urls, engine, cls), urllist.part_path(tmp_path, engine, cls.label)
        )
    merged = urllist.merge(tmp_path, ("ddg", "bing"), 2).to_pylist()
    assert [(r["url"], r["engine"], r["rank"], r["label"]) for r in merged] == [
        ("a", "ddg", 0, 0), ("b", "bing", 0, 0), ("d", "bing", 1, 0), ("c", "ddg", 2, 0),
        ("e", "ddg", 1, 1),
    ]  # fmt: skip
    assert pq.read_table(tmp_path / "urls.parquet").num_rows == 5


def test_rounds_hold_only_new_urls(tmp_path: Path) -> None:
    classes = make_classes(["cat"], [""], {})
    first = urllist.hits_table(["a", "b"], "ddg", classes[0])
    folder = download.next_round(tmp_path, first)
    assert folder is not None and folder.name == "round-0000"
    assert download.next_round(tmp_path, first) == folder  # unfinished: resumed, not replaced
    (folder / download.DONE).write_text("")
    assert download.next_round(tmp_path, first) is None
    grown = urllist.hits_table(["a", "b", "c"], "ddg", classes[0])
    second = download.next_round(tmp_path, grown)
    assert second is not None and second.name == "round-0001"
    assert pq.read_table(second / "input.parquet")["url"].to_pylist() == ["c"]


def test_remove_unfinished_keeps_finished_shards(tmp_path: Path) -> None:
    for shard in ("00000", "00001"):
        (tmp_path / shard).mkdir()
        (tmp_path / shard / "x.jpg").write_bytes(b"x")
        (tmp_path / f"{shard}.parquet").write_bytes(b"p")
    (tmp_path / "00000_stats.json").write_text("{}")
    (tmp_path / "_tmp").mkdir()
    assert download.remove_unfinished(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00000",
        "00000.parquet",
        "00000_stats.json",
    ]


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_web_parser(parser.add_subparsers())
    (tmp_path / "c.txt").write_text("cat\ndog\n")
    return parser.parse_args(["web", "--classes", str(tmp_path / "c.txt"), "--out", "o", *extra])


def test_cli_resolves_defaults(tmp_path: Path) -> None:
    settings = resolve(_args(tmp_path))
    assert settings.engines == ("ddg", "flickr", "bing") and settings.per_class == 650
    assert settings.hash_distance == 4 and settings.min_size == 64
    assert settings.per_query == 347  # ceil(650 * 1.6 / 3)
    assert settings.engine_settings["ddg"].interval == 2.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--per-class", "0"], "--per-class must be >= 1"),
        (["--hash-distance", "64"], "--hash-distance must be in 0..63"),
        (["--engines", "google"], "choose from ddg, flickr, bing"),
        (["--interval", "ddg=fast"], "is not a number"),
        (["--collect-factor", "0.5"], "--collect-factor must be >= 1"),
    ],
)
def test_cli_errors_name_the_bad_value(tmp_path: Path, extra: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        resolve(_args(tmp_path, *extra))


def test_parse_rates_keeps_defaults_for_the_rest() -> None:
    assert parse_rates(["bing=0.5"]) == {"ddg": 2.0, "flickr": 1.0, "bing": 0.5}
