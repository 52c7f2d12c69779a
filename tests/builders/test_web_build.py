# SPDX-License-Identifier: MIT
"""``build web`` end to end: a local server, real img2dataset downloads, the index it writes.

One build (module fixture) over the corpus of :mod:`tests.builders.web_corpus` with all three
engines, then assertions on what it left: statuses, provenance, the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import pyarrow.parquet as pq
import pytest

from solo_diversity.builders.web.build import WebSettings, build
from solo_diversity.builders.web.download import DownloadSettings
from solo_diversity.builders.web.engines import EngineSettings
from solo_diversity.builders.web.pacing import Backoff
from solo_diversity.builders.web.queries import make_classes
from solo_diversity.index.reader import open_index
from tests.builders.web_corpus import SELECTED, corpus, reference_index
from tests.builders.web_server import SearchServer

ENV = {"FLICKR_API_KEY": "k", "FLICKR_API_SECRET": "s", "BING_API_KEY": "b"}
ENDPOINT = {"ddg": "/ddg", "flickr": "/flickr/rest/", "bing": "/bing/images/search"}


def web_settings(server: SearchServer, references: tuple[str, ...], **kw: Any) -> WebSettings:
    engines = {
        n: EngineSettings(server.url + ENDPOINT[n], 0.05, Backoff(3, 0.05, 0.2), 5, ENV)
        for n in ENDPOINT
    }
    return WebSettings(
        classes=make_classes(["cat", "dog"], ["", ""], {}),
        engines=("ddg", "flickr", "bing"),
        per_class=kw.pop("per_class", 4),
        collect_factor=3.0,
        references=references,
        min_size=32,
        engine_settings=engines,
        download=DownloadSettings(threads=8, timeout=1, retries=0, shard_size=kw.pop("shard", 8)),
        **kw,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("web")
    reference = reference_index(folder)
    with SearchServer(corpus(slow_delay=3.0)) as server:
        result = build(folder / "out", web_settings(server, (str(reference),)))
        log = list(server.log)
    return {"out": folder / "out", "result": result, "log": log, "url": server.url}


def _status(built: dict[str, Any]) -> dict[str, tuple[str, str]]:
    table = pq.read_table(built["out"] / "status.parquet").to_pylist()
    return {r["url"].rsplit("/", 1)[1]: (r["status"], r["error"] or "") for r in table}


def test_bad_images_are_dropped_with_a_status(built: dict[str, Any]) -> None:
    status = _status(built)
    assert status["cat_tiny"][0] == "too_small"
    assert status["cat_broken"][0] in ("broken", "failed_to_resize")
    assert status["cat_notimage"][0] == "failed_to_resize"
    assert status["cat_slow"][0] == "failed_to_download"
    assert "timed out" in status["cat_slow"][1]


def test_near_duplicates_and_the_test_set_image_are_dropped(built: dict[str, Any]) -> None:
    status = _status(built)
    assert status["cat_dup"][0] == "duplicate"
    assert status["cat_near"][0] == "duplicate", status["cat_near"]
    assert "cat_g1" in status["cat_near"][1]
    assert status["dog_leak"][0] == "in_reference"


def test_selection_takes_the_top_ranks_per_class(built: dict[str, Any]) -> None:
    status = _status(built)
    chosen = {n for n, (s, _) in status.items() if s == "selected"}
    assert chosen == SELECTED["cat"] | SELECTED["dog"]
    assert {n for n, (s, _) in status.items() if s == "surplus"} == {"cat_g4", "dog_g4", "dog_g0"}
    assert built["result"].counts["selected"] == 8


def test_a_url_from_two_engines_is_downloaded_once(built: dict[str, Any]) -> None:
    urls = pq.read_table(built["out"] / "urls.parquet").to_pylist()
    g2 = [r for r in urls if r["url"].endswith("/cat_g2")]
    assert len(g2) == 1 and (g2[0]["engine"], g2[0]["rank"]) == ("bing", 0)
    downloads = [r for r in built["log"] if r.path == "/img/cat_g2"]
    assert len(downloads) == 1


def test_index_has_the_selected_images_labels_and_class_names(built: dict[str, Any]) -> None:
    index = open_index(built["out"] / "index.h5")
    assert len(index) == 8 and index.class_names == ["cat", "dog"]
    manifest = pq.read_table(built["out"] / "index.h5.provenance.parquet").to_pylist()
    rows = index.source_positions()
    labels = index.labels()
    for position in range(len(index)):
        record = manifest[int(rows[position])]
        assert index.entry_name(position) == record["file"]
        assert labels[position] == record["label"] == ["cat", "dog"].index(record["class"])
        name = record["url"].rsplit("/", 1)[1]
        assert name in SELECTED[record["class"]]
        assert record["engine"] in ("ddg", "flickr", "bing") and record["query"] == record["class"]
        assert record["rank"] >= 0 and len(record["sha256"]) == 64
        assert index.file_path(position).is_file()
    index.close()


def test_grey_image_is_indexed_as_rgb(built: dict[str, Any]) -> None:
    from PIL import Image

    manifest = pq.read_table(built["out"] / "index.h5.provenance.parquet").to_pylist()
    grey = next(r for r in manifest if r["url"].endswith("/dog_grey"))
    assert grey["file"].endswith(".rgb.jpg")
    with Image.open(built["out"] / "downloads" / grey["file"]) as image:
        assert image.mode == "RGB"


def test_index_records_the_settings(built: dict[str, Any]) -> None:
    with h5py.File(built["out"] / "index.h5") as f:
        source = f.attrs["source"]
    assert '"builder": "web"' in source and '"hash_distance": 4' in source


def test_safesearch_reached_every_engine(built: dict[str, Any]) -> None:
    searches = [r for r in built["log"] if not r.path.startswith("/img/") and r.path != "/ddg/"]
    by_engine = {
        p: [r for r in searches if r.path.startswith(p)] for p in ("/ddg", "/flickr", "/bing")
    }
    assert all(by_engine.values())
    assert all(r.fields["p"] == "1" for r in by_engine["/ddg"])
    assert all(r.fields["safe_search"] == "1" for r in by_engine["/flickr"])
    assert all(r.fields["safeSearch"] == "Strict" for r in by_engine["/bing"])


def test_rerun_asks_and_downloads_nothing_again(built: dict[str, Any], tmp_path: Path) -> None:
    with SearchServer(corpus(slow_delay=0.0)) as server:
        settings = web_settings(server, ())
        result = build(built["out"], settings, index_path=tmp_path / "again.h5")
        assert server.log == []  # nothing asked, nothing downloaded
    assert result.counts["selected"] == 8
    assert result.counts.get("in_reference", 0) == 0  # without the reference, the leak is kept
    status = pq.read_table(built["out"] / "status.parquet").to_pylist()
    assert {r["status"] for r in status if r["url"].endswith("/dog_leak")} == {"selected"}
