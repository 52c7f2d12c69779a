# SPDX-License-Identifier: MIT
"""A real HTTP server on loopback for the web-builder tests: three search APIs and the images.

It answers in each engine's own format: DuckDuckGo's ``/ddg/`` page (holding a ``vqd`` token)
and ``/ddg/i.js`` JSON, Flickr's REST ``flickr.photos.search`` JSON (``/flickr/rest/``, POST) and
Bing Image Search v7 JSON (``/bing/images/search``). Images are served from ``/img/<name>`` with
an optional delay. Every request is logged (time, path, query and form fields, headers) so that
tests can check SafeSearch and the rate limits from what the server really received.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image


def smooth_image(seed: int, size: tuple[int, int] = (160, 120), mode: str = "RGB") -> Image.Image:
    """A photo-like image: a random 6x6 colour field upsampled smoothly (stable under phash)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8))
    return small.resize(size, Image.Resampling.BICUBIC).convert(mode)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # img2dataset opens many connections at once
    daemon_threads = True


@dataclass
class Served:
    body: bytes
    content_type: str = "image/jpeg"
    delay: float = 0.0


@dataclass
class Logged:
    time: float
    method: str
    path: str
    fields: dict[str, str]
    headers: dict[str, str]


@dataclass
class Catalog:
    """What the server knows: images by name, and each engine's results by query."""

    images: dict[str, Served] = field(default_factory=dict)
    results: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (engine, q) -> names
    fail_first: dict[str, int] = field(default_factory=dict)  # engine -> 429s before answering


class SearchServer:
    """Start with ``with SearchServer(catalog) as server:``; ``server.url`` is the base URL."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.log: list[Logged] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> SearchServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def requests(self, prefix: str) -> list[Logged]:
        with self._lock:
            return [r for r in self.log if r.path.startswith(prefix)]

    def image_url(self, name: str) -> str:
        return f"{self.url}/img/{name}"

    def _answer(self, method: str, path: str, fields: dict[str, str]) -> tuple[int, str, bytes]:
        catalog = self.catalog
        engine = path.split("/")[1]
        if engine in catalog.fail_first and catalog.fail_first[engine] > 0:
            catalog.fail_first[engine] -= 1
            return 429, "text/plain", b"slow down"
        if path == "/ddg/":
            return 200, "text/html", b'<html><script>vqd="4-1234567890"</script></html>'
        if path == "/ddg/i.js":
            names = catalog.results.get(("ddg", fields.get("q", "")), [])
            offset = int(fields.get("s", "0"))
            page = names[offset : offset + 100]
            results = [
                {
                    "title": n,
                    "image": self.image_url(n),
                    "thumbnail": self.image_url(n),
                    "url": f"{self.url}/page/{n}",
                    "height": 120,
                    "width": 160,
                    "source": "Bing",
                }
                for n in page
            ]
            body = {"query": fields.get("q"), "results": results, "next": "i.js?s=100"}
            return 200, "application/json", json.dumps(body).encode()
        if path == "/flickr/rest/":
            names = catalog.results.get(("flickr", fields.get("text", "")), [])
            per_page, number = int(fields.get("per_page", "100")), int(fields.get("page", "1"))
            page = names[(number - 1) * per_page : number * per_page]
            photos = [
                {
                    "id": str(i),
                    "owner": "o",
                    "secret": "s",
                    "server": "1",
                    "farm": 1,
                    "title": n,
                    "ispublic": 1,
                    "url_c": self.image_url(n),
                }
                for i, n in enumerate(page)
            ]
            pages = max(1, -(-len(names) // per_page))
            body = {
                "photos": {
                    "page": number,
                    "pages": pages,
                    "perpage": per_page,
                    "total": len(names),
                    "photo": photos,
                },
                "stat": "ok",
            }
            return 200, "application/json", json.dumps(body).encode()
        if path == "/bing/images/search":
            names = catalog.results.get(("bing", fields.get("q", "")), [])
            offset, count = int(fields.get("offset", "0")), int(fields.get("count", "35"))
            page = names[offset : offset + count]
            value = [
                {
                    "name": n,
                    "contentUrl": self.image_url(n),
                    "hostPageUrl": f"{self.url}/p/{n}",
                    "width": 160,
                    "height": 120,
                    "encodingFormat": "jpeg",
                }
                for n in page
            ]
            body = {
                "_type": "Images",
                "totalEstimatedMatches": len(names),
                "value": value,
                "nextOffset": offset + len(page),
            }
            return 200, "application/json", json.dumps(body).encode()
        if path.startswith("/img/"):
            served = catalog.images.get(path[len("/img/") :])
            if served is None:
                return 404, "text/plain", b"no such image"
            time.sleep(served.delay)
            return 200, served.content_type, served.body
        return 404, "text/plain", b"unknown path"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self, method: str, body: bytes) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                fields = dict(urllib.parse.parse_qsl(parsed.query))
                fields.update(urllib.parse.parse_qsl(body.decode("latin-1")))
                with server._lock:
                    server.log.append(
                        Logged(time.monotonic(), method, parsed.path, fields, dict(self.headers))
                    )
                code, kind, payload = server._answer(method, parsed.path, fields)
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # a client that timed out
                    pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self._serve("GET", b"")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                self._serve("POST", self.rfile.read(length))

        return Handler
