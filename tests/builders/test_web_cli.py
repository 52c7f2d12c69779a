# SPDX-License-Identifier: MIT
"""``build web`` through its command line: stages run on their own, and bad reruns refused."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from solo_diversity.builders.web_cli import main
from tests.builders.web_server import Catalog, SearchServer


def _argv(server: SearchServer, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "build", "web", "--classes", str(tmp_path / "c.txt"), "--out", str(tmp_path / "out"),
        "--engines", "ddg", "--ddg-url", f"{server.url}/ddg", "--interval", "ddg=0",
        "--per-class", "3", "--collect-factor", "1", *extra,
    ]  # fmt: skip


def test_query_stage_alone_writes_the_url_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.txt").write_text("cat\ndog\n")
    catalog = Catalog(results={("ddg", "cat"): ["a", "b", "c"], ("ddg", "dog"): ["d", "a"]})
    with SearchServer(catalog) as server:
        assert main(_argv(server, tmp_path, "--stage", "query")) == 0
        assert "urls 4" in capsys.readouterr().out
        table = pq.read_table(tmp_path / "out" / "urls.parquet").to_pylist()
        assert [(r["url"].rsplit("/", 1)[1], r["class"]) for r in table] == [
            ("a", "cat"), ("b", "cat"), ("c", "cat"), ("d", "dog"),
        ]  # fmt: skip
        asked = len(server.log)
        assert main(_argv(server, tmp_path, "--stage", "query")) == 0
        assert len(server.log) == asked  # the parts are on disk: nothing asked again


def test_index_stage_before_a_download_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.txt").write_text("cat\n")
    with SearchServer(Catalog(results={("ddg", "cat"): ["a"]})) as server:
        with pytest.raises(SystemExit) as stop:
            main(_argv(server, tmp_path, "--stage", "index"))
        assert stop.value.code == 2
        assert "no URL list yet" in capsys.readouterr().err
        assert main(_argv(server, tmp_path, "--stage", "query")) == 0
        with pytest.raises(SystemExit):
            main(_argv(server, tmp_path, "--stage", "index"))
        assert "no finished download" in capsys.readouterr().err


def test_rerun_with_other_classes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.txt").write_text("cat\n")
    with SearchServer(Catalog(results={("ddg", "cat"): ["a"]})) as server:
        assert main(_argv(server, tmp_path, "--stage", "query")) == 0
        (tmp_path / "c.txt").write_text("cat\ndog\n")
        with pytest.raises(SystemExit):
            main(_argv(server, tmp_path, "--stage", "query"))
        assert "was started with other classes" in capsys.readouterr().err
