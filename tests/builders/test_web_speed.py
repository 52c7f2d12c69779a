# SPDX-License-Identifier: MIT
"""Throughput of ``build web`` against the local server: 200 images, all stages, one process.

It prints the images/s (what the issue's note asks for) and checks only that every image made it.
Marked slow: it spends most of its time on img2dataset's process start-up and the downloads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from solo_diversity.builders.web.build import WebSettings, build
from solo_diversity.builders.web.download import DownloadSettings
from solo_diversity.builders.web.engines import EngineSettings
from solo_diversity.builders.web.queries import make_classes
from tests.builders.web_server import Catalog, SearchServer, Served, jpeg, smooth_image

CLASSES, PER_CLASS = 4, 50


@pytest.mark.slow
def test_images_per_second_on_200_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = {c: [f"c{c}_{i:03d}" for i in range(PER_CLASS)] for c in range(CLASSES)}
    images = {
        n: Served(jpeg(smooth_image(1000 + c * PER_CLASS + i, size=(500, 375))))
        for c, ns in names.items()
        for i, n in enumerate(ns)
    }
    catalog = Catalog(images=images, results={("ddg", f"k{c}"): ns for c, ns in names.items()})
    with SearchServer(catalog) as server:
        settings = WebSettings(
            classes=make_classes([f"k{c}" for c in range(CLASSES)], [""] * CLASSES, {}),
            engines=("ddg",),
            per_class=PER_CLASS,
            collect_factor=1.0,
            hash_distance=4,
            min_size=32,
            engine_settings={"ddg": EngineSettings(f"{server.url}/ddg", interval=0.0)},
            download=DownloadSettings(threads=16, timeout=10, shard_size=100),
        )
        result = build(tmp_path / "out", settings)
    assert result.counts["selected"] == CLASSES * PER_CLASS
    with capsys.disabled():
        print(f"\nbuild web: {CLASSES * PER_CLASS} images in {result.seconds:.1f} s "
              f"= {result.images_per_second:.1f} images/s")  # fmt: skip
