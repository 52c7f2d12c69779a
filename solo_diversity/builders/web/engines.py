# SPDX-License-Identifier: MIT
"""Image-search engines behind one small interface: ``search(query, count) -> urls by rank``.

All three ask with SafeSearch at its strictest, page until ``count`` results or the end, and send
every request through their own :class:`~.pacing.RateLimit` with backoff. Each endpoint can be
overridden (``endpoint=``), which is how the tests point them at a local server and how a user
points them at a mirror or a compatible API. An engine that cannot be reached at all (offline, DNS,
refused, timed out) after its retries is one :class:`UserError` line naming it and its URL.

- **DuckDuckGo** through ``ddgs``'s own DuckDuckGo image engine, used directly rather than through
  ``DDGS().images``: that front end re-ranks results with its own filter and pages one call at a
  time, and the paper's selection needs the engine's own order. SafeSearch ``on`` is ``p=1``.
- **Flickr** through ``flickrapi`` (``FLICKR_API_KEY``/``FLICKR_API_SECRET``),
  ``flickr.photos.search`` sorted by relevance with ``safe_search=1`` (safe) and photos only.
- **Bing** Image Search v7 over HTTP (``BING_API_KEY``), ``safeSearch=Strict``. Microsoft closed
  the public Bing Search APIs to new users in 2025; the adapter speaks the v7 format for existing
  keys and compatible endpoints.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from solo_diversity.builders.web.pacing import Backoff, RateLimit, paced_call
from solo_diversity.errors import UserError

BING_URL = "https://api.bing.microsoft.com/v7.0/images/search"
FLICKR_URL = "https://api.flickr.com/services/rest/"
DDG_URL = "https://duckduckgo.com"
DEFAULT_INTERVAL = {"ddg": 2.0, "flickr": 1.0, "bing": 0.34}  # seconds between requests
FLICKR_SIZES = ("url_c", "url_z", "url_b", "url_o")  # 800, 640, 1024 px, original: first present


class Engine(Protocol):
    """What the query stage needs of an engine."""

    name: str

    def search(self, query: str, count: int) -> list[str]:
        """Up to ``count`` image URLs for ``query``, best first."""
        ...


@dataclass
class EngineSettings:
    """How to reach one engine: endpoint override, pacing, timeout, credentials source."""

    endpoint: str | None = None
    interval: float = 1.0
    backoff: Backoff = field(default_factory=Backoff)
    timeout: float = 20.0
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)


def _need(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise UserError(f"the engine needs {' and '.join(missing)} in the environment")
    return [env[n] for n in names]


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exception types of a request that never reached its server (refused, DNS, timeout)."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror]
    try:
        import requests

        types += [requests.ConnectionError, requests.Timeout]
    except ImportError:  # the web extra is not installed: its engines cannot be built either
        pass
    try:
        import primp  # ddgs' HTTP client

        types += [primp.ConnectError, primp.DNSError, primp.DNSTimeoutError, primp.TimeoutError]
    except ImportError:
        pass
    return tuple(types)


def _network_cause(err: BaseException) -> BaseException | None:
    """The network failure behind ``err`` (ddgs wraps its client's), or None for anything else."""
    network = _network_errors()
    current: BaseException | None = err
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        if isinstance(current, network):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _short_reason(err: BaseException) -> str:
    """``Connection refused`` out of a client's long message (``... > tcp connect error > ...``)."""
    text = str(err)
    errno_text = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno_text:
        return errno_text.group(1).strip()
    return text.rsplit(" > ", 1)[-1].strip()[:100] or type(err).__name__


def reach(
    name: str, endpoint: str, settings: EngineSettings, call: Callable[[], list[str]]
) -> list[str]:
    """``call()``, with a network failure that outlived every retry as one line.

    An offline machine, a refused connection or a DNS failure is the user's to fix (the network,
    or a mirror's URL), not a bug: it becomes a :class:`UserError` naming the engine and its URL.

    Raises:
        UserError: the engine could not be reached after ``settings.backoff.attempts`` tries.
    """
    try:
        return call()
    except Exception as err:  # noqa: BLE001 - anything but a network failure is re-raised
        cause = _network_cause(err)
        if cause is None:
            raise
        tries = settings.backoff.attempts
        raise UserError(
            f"the {name} search engine could not be reached at {endpoint} after {tries} "
            f"{'try' if tries == 1 else 'tries'} ({_short_reason(cause)}); check the network "
            f"connection, or point --{name}-url at a reachable server"
        ) from None


class DuckDuckGo:
    """DuckDuckGo images via ``ddgs`` (no key); 100 results a page."""

    name = "ddg"

    def __init__(self, settings: EngineSettings) -> None:
        from ddgs.engines.duckduckgo_images import DuckduckgoImages

        base = (settings.endpoint or DDG_URL).rstrip("/")

        class Pointed(DuckduckgoImages):  # type: ignore[misc]
            """The ddgs engine with its two URLs under ``base``, and one token per query."""

            search_url = f"{base}/i.js"
            tokens: dict[str, str] = {}  # query -> vqd; one class per instance

            def _get_vqd(self, query: str) -> str:
                from ddgs.utils import _extract_vqd

                if query not in self.tokens:  # a browser, too, asks once and pages with it
                    page = self.http_client.request("GET", f"{base}/", params={"q": query})
                    self.tokens[query] = str(_extract_vqd(page.content, query))
                return self.tokens[query]

        self._engine = Pointed(timeout=int(math.ceil(settings.timeout)))
        self._settings = settings
        self._limit = RateLimit(settings.interval)
        self.endpoint = base

    def search(self, query: str, count: int) -> list[str]:
        return reach(self.name, self.endpoint, self._settings, partial(self._search, query, count))

    def _search(self, query: str, count: int) -> list[str]:
        urls: list[str] = []
        page = 1
        paced_call(  # the token request is paced like the pages
            partial(self._engine._get_vqd, query),
            self._limit,
            self._settings.backoff,
            what=f"ddg {query!r} token",
        )
        while len(urls) < count:
            results = paced_call(
                partial(self._engine.search, query, safesearch="on", page=page),
                self._limit,
                self._settings.backoff,
                what=f"ddg {query!r} page {page}",
            )
            batch = [r.image for r in results or [] if getattr(r, "image", "")]
            if not batch:
                break
            urls.extend(batch)
            page += 1
        return urls[:count]


class Flickr:
    """Flickr ``photos.search`` via ``flickrapi``; up to 500 results a page."""

    name = "flickr"

    def __init__(self, settings: EngineSettings) -> None:
        import flickrapi

        key, secret = _need(settings.env, "FLICKR_API_KEY", "FLICKR_API_SECRET")
        self._api = flickrapi.FlickrAPI(
            key, secret, format="parsed-json", store_token=False, timeout=settings.timeout
        )
        self._api.REST_URL = settings.endpoint or FLICKR_URL  # the instance's, not the class's
        self._settings = settings
        self._limit = RateLimit(settings.interval)
        self.endpoint = self._api.REST_URL

    def _page(self, query: str, page: int, per_page: int) -> dict[str, Any]:
        reply: dict[str, Any] = self._api.photos.search(
            text=query,
            safe_search=1,
            content_type=1,
            media="photos",
            sort="relevance",
            extras=",".join(FLICKR_SIZES),
            per_page=per_page,
            page=page,
        )
        return reply

    def search(self, query: str, count: int) -> list[str]:
        return reach(self.name, self.endpoint, self._settings, partial(self._search, query, count))

    def _search(self, query: str, count: int) -> list[str]:
        urls: list[str] = []
        page, per_page = 1, min(500, count)
        while len(urls) < count:
            reply = paced_call(
                partial(self._page, query, page, per_page),
                self._limit,
                self._settings.backoff,
                what=f"flickr {query!r} page {page}",
            )
            photos = reply.get("photos", {})
            for photo in photos.get("photo", []):
                url = next((photo[k] for k in FLICKR_SIZES if photo.get(k)), None)
                if url:
                    urls.append(url)
            if page >= int(photos.get("pages", 0)) or not photos.get("photo"):
                break
            page += 1
        return urls[:count]


class Bing:
    """Bing Image Search v7 over HTTP; up to 150 results a page."""

    name = "bing"

    def __init__(self, settings: EngineSettings) -> None:
        import requests

        (self._key,) = _need(settings.env, "BING_API_KEY")
        self._session = requests.Session()
        self._url = settings.endpoint or BING_URL
        self._settings = settings
        self._limit = RateLimit(settings.interval)
        self.endpoint = self._url

    def _page(self, query: str, offset: int, count: int) -> dict[str, Any]:
        response = self._session.get(
            self._url,
            params={
                "q": query,
                "safeSearch": "Strict",
                "count": str(count),
                "offset": str(offset),
            },
            headers={"Ocp-Apim-SubscriptionKey": self._key},
            timeout=self._settings.timeout,
        )
        response.raise_for_status()  # 429 and 5xx are retried by paced_call
        reply: dict[str, Any] = response.json()
        return reply

    def search(self, query: str, count: int) -> list[str]:
        return reach(self.name, self.endpoint, self._settings, partial(self._search, query, count))

    def _search(self, query: str, count: int) -> list[str]:
        urls: list[str] = []
        offset = 0
        while len(urls) < count:
            reply = paced_call(
                partial(self._page, query, offset, min(150, count - len(urls))),
                self._limit,
                self._settings.backoff,
                what=f"bing {query!r} offset {offset}",
            )
            values = reply.get("value", [])
            urls.extend(v["contentUrl"] for v in values if v.get("contentUrl"))
            following = int(reply.get("nextOffset", offset + len(values)))
            if not values or following <= offset:
                break
            offset = following
        return urls[:count]


ENGINES: dict[str, Callable[[EngineSettings], Engine]] = {
    "ddg": DuckDuckGo,
    "flickr": Flickr,
    "bing": Bing,
}


def parse_engines(text: str) -> tuple[str, ...]:
    """``"ddg,flickr"`` -> ``("ddg", "flickr")``; an unknown or repeated name is a UserError."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ENGINES]
    if not names or unknown:
        raise UserError(f"--engines {text!r}: choose from {', '.join(ENGINES)}")
    if len(set(names)) != len(names):
        raise UserError(f"--engines {text!r} repeats an engine")
    return names


def make_engine(name: str, settings: EngineSettings) -> Engine:
    """The engine called ``name``; KeyError lists the valid names."""
    if name not in ENGINES:
        raise KeyError(f"unknown engine {name!r}; valid: {', '.join(ENGINES)}")
    return ENGINES[name](settings)
