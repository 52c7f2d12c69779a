# SPDX-License-Identifier: MIT
"""The three engine adapters against a real local server in each engine's format."""

from __future__ import annotations

import pytest

from solo_diversity.builders.web.engines import EngineSettings, make_engine, parse_engines
from solo_diversity.builders.web.pacing import Backoff
from solo_diversity.errors import UserError
from tests.builders.web_server import Catalog, SearchServer

ENV = {"FLICKR_API_KEY": "k", "FLICKR_API_SECRET": "s", "BING_API_KEY": "b"}
ENDPOINT = {"ddg": "/ddg", "flickr": "/flickr/rest/", "bing": "/bing/images/search"}


def _engine(server: SearchServer, name: str, interval: float = 0.0, attempts: int = 3):
    settings = EngineSettings(
        endpoint=server.url + ENDPOINT[name],
        interval=interval,
        backoff=Backoff(attempts=attempts, base=0.05, cap=0.2),
        timeout=5,
        env=ENV,
    )
    return make_engine(name, settings)


def _names(count: int) -> list[str]:
    return [f"cat_{i}.jpg" for i in range(count)]


@pytest.mark.parametrize("name", ["ddg", "flickr", "bing"])
def test_engine_returns_urls_in_rank_order_with_safesearch(name: str) -> None:
    catalog = Catalog(results={(name, "tabby cat"): _names(7)})
    with SearchServer(catalog) as server:
        urls = _engine(server, name).search("tabby cat", 5)
        assert urls == [server.image_url(n) for n in _names(5)]
        searches = [r for r in server.requests(f"/{name}/") if r.path != "/ddg/"]
        assert searches
        for request in searches:
            if name == "ddg":
                assert request.fields["p"] == "1"  # ddgs' code for safesearch "on"
            elif name == "flickr":
                assert request.fields["safe_search"] == "1"
                assert request.fields["method"] == "flickr.photos.search"
            else:
                assert request.fields["safeSearch"] == "Strict"
                assert request.headers["Ocp-Apim-SubscriptionKey"] == "b"


@pytest.mark.parametrize(("name", "count"), [("ddg", 230), ("flickr", 620), ("bing", 230)])
def test_engine_pages_past_the_first_page(name: str, count: int) -> None:
    catalog = Catalog(results={(name, "dog"): _names(count + 5)})
    with SearchServer(catalog) as server:
        urls = _engine(server, name).search("dog", count)
        assert urls == [server.image_url(n) for n in _names(count)]
        assert len([r for r in server.requests(f"/{name}/") if r.path != "/ddg/"]) >= 2


@pytest.mark.parametrize("name", ["ddg", "flickr", "bing"])
def test_rate_limit_spaces_requests(name: str) -> None:
    catalog = Catalog(results={(name, f"q{i}"): _names(2) for i in range(4)})
    with SearchServer(catalog) as server:
        engine = _engine(server, name, interval=0.15)
        for i in range(4):
            engine.search(f"q{i}", 2)
        times = [r.time for r in server.requests(f"/{name}/")]  # ddg: token and page requests
        assert len(times) == (8 if name == "ddg" else 4)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps) >= 0.15 - 0.01


@pytest.mark.parametrize("name", ["ddg", "flickr", "bing"])
def test_backoff_retries_after_429(name: str) -> None:
    catalog = Catalog(results={(name, "cat"): _names(3)}, fail_first={name: 2})
    with SearchServer(catalog) as server:
        urls = _engine(server, name).search("cat", 3)
        assert len(urls) == 3
        assert catalog.fail_first[name] == 0


def test_backoff_gives_up_after_its_attempts() -> None:
    catalog = Catalog(results={("bing", "cat"): _names(3)}, fail_first={"bing": 5})
    with SearchServer(catalog) as server:
        with pytest.raises(Exception, match="429"):
            _engine(server, "bing", attempts=2).search("cat", 3)


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(UserError, match="FLICKR_API_KEY and FLICKR_API_SECRET"):
        make_engine("flickr", EngineSettings(env={}))
    with pytest.raises(UserError, match="BING_API_KEY"):
        make_engine("bing", EngineSettings(env={}))


def test_parse_engines() -> None:
    assert parse_engines("ddg, bing") == ("ddg", "bing")
    with pytest.raises(UserError, match="choose from ddg, flickr, bing"):
        parse_engines("ddg,google")
    with pytest.raises(UserError, match="repeats"):
        parse_engines("ddg,ddg")


def test_unknown_engine_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="valid: ddg, flickr, bing"):
        make_engine("yahoo", EngineSettings())
