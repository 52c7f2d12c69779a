# SPDX-License-Identifier: MIT
"""The web-builder test corpus: two classes whose results hold every kind of bad image.

Per class and engine (rank order), with ``G`` a distinct good photo-like image:

- cat: ddg ``G0, G2, tiny, dup(G0's bytes)``; flickr ``G1, broken, near(G1 resized, re-encoded),
  G3``; bing ``G2 (the same URL as ddg's), not-an-image, slow, G4``;
- dog: ddg ``grey, leak (a re-encoded test-set image), G0``; flickr ``G1, G2``; bing ``G3, G4``.

With 4 per class the expected selection is cat ``G0 G1 G2 G3`` and dog ``grey G1 G3 G2``.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from solo_diversity.index import build_index
from tests.builders.web_server import Catalog, Served, jpeg, smooth_image

RESULTS = {
    ("ddg", "cat"): ["cat_g0", "cat_g2", "cat_tiny", "cat_dup"],
    ("flickr", "cat"): ["cat_g1", "cat_broken", "cat_near", "cat_g3"],
    ("bing", "cat"): ["cat_g2", "cat_notimage", "cat_slow", "cat_g4"],
    ("ddg", "dog"): ["dog_grey", "dog_leak", "dog_g0"],
    ("flickr", "dog"): ["dog_g1", "dog_g2"],
    ("bing", "dog"): ["dog_g3", "dog_g4"],
}
SELECTED = {
    "cat": {"cat_g0", "cat_g1", "cat_g2", "cat_g3"},
    "dog": {"dog_grey", "dog_g1", "dog_g3", "dog_g2"},
}
TEST_SEED = 999  # the seed of the test-set image that leaks into the dog results


def corpus(slow_delay: float) -> Catalog:
    images: dict[str, Served] = {}
    for c, base in (("cat", 0), ("dog", 100)):
        for i in range(5):
            images[f"{c}_g{i}"] = Served(jpeg(smooth_image(base + i)))
    near = smooth_image(1).resize((144, 108), Image.Resampling.BILINEAR)
    images["cat_dup"] = Served(images["cat_g0"].body)
    images["cat_near"] = Served(jpeg(near, quality=60))
    images["cat_tiny"] = Served(jpeg(smooth_image(7, size=(20, 20))))
    images["cat_broken"] = Served(images["cat_g3"].body[: len(images["cat_g3"].body) // 2])
    images["cat_notimage"] = Served(b"<html>not an image</html>", "text/html")
    images["cat_slow"] = Served(jpeg(smooth_image(8)), delay=slow_delay)
    images["dog_grey"] = Served(jpeg(smooth_image(200, mode="L")))
    images["dog_leak"] = Served(jpeg(smooth_image(TEST_SEED), quality=80))
    return Catalog(images=images, results={k: list(v) for k, v in RESULTS.items()})


def reference_index(folder: Path) -> Path:
    """A bytes index of a small "test set" (PNGs) that holds the leaked image."""
    root = folder / "testset" / "animal"
    root.mkdir(parents=True)
    for seed in (TEST_SEED, 500, 501):
        buffer = io.BytesIO()
        smooth_image(seed).save(buffer, format="PNG")
        (root / f"{seed}.png").write_bytes(buffer.getvalue())
    return build_index("folder", folder / "testset.h5", root=root.parent, seed=0, embed=True)
