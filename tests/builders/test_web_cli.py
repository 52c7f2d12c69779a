# SPDX-License-Identifier: MIT
"""``build web`` through its command line: stages run on their own, and bad reruns refused."""

from __future__ import annotations

import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from solo_diversity.builders.web.cli import main
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


def _closed_port() -> int:
    """A local port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("engine", "tries"), [("ddg", 1), ("bing", 2)])
def test_an_engine_that_cannot_be_reached_is_one_line(
    engine: str,
    tries: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offline (here: a refused connection) is one line naming the engine, not ddgs' traceback."""
    monkeypatch.setenv("BING_API_KEY", "k")
    (tmp_path / "c.txt").write_text("cat\n")
    url = f"http://127.0.0.1:{_closed_port()}"
    argv = [
        "build", "web", "--classes", str(tmp_path / "c.txt"), "--out", str(tmp_path / "out"),
        "--engines", engine, f"--{engine}-url", url, "--interval", f"{engine}=0",
        "--search-tries", str(tries), "--stage", "query",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    reason = "Connection refused (os error 111)" if engine == "ddg" else "Connection refused"
    assert err.strip().splitlines()[-1] == (
        f"error: the {engine} search engine could not be reached at {url} after {tries} "
        f"{'try' if tries == 1 else 'tries'} ({reason}); check the network connection, or point "
        f"--{engine}-url at a reachable server"
    )
    assert not (tmp_path / "out" / "urls.parquet").exists()
