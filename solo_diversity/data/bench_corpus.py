# SPDX-License-Identifier: MIT
"""An ImageNet-like JPEG corpus made from real photographs, for data-loader benchmarks.

This module owns :func:`build_jpeg_corpus`: it cuts random crops at random scales out of the
photographs scikit-learn ships (``load_sample_images``: a Chinese temple and a flower, 427 x 640),
resizes each to about 500 x 375 (landscape or portrait, like a typical ImageNet JPEG) and writes
them as quality-90 JPEGs in class sub-folders. Real photographic content matters: JPEG decoding
and entropy coding cost depend on it, and noise would make every file ~3x larger than a photo.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

#: Landscape (width, height) of a corpus image; a quarter of them are portrait (375 x 500).
CORPUS_SIZE = (500, 375)
CORPUS_QUALITY = 90


def _seed_photos() -> list[Image.Image]:
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(arr) for arr in load_sample_images().images]


def _one_image(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop (30-100% of the area, aspect 3:4..4:3), flipped half the time, resized."""
    width, height = photo.size
    portrait = rng.random() < 0.25
    out_w, out_h = (CORPUS_SIZE[1], CORPUS_SIZE[0]) if portrait else CORPUS_SIZE
    area = width * height * rng.uniform(0.3, 1.0)
    aspect = (out_w / out_h) * float(np.exp(rng.uniform(-0.1, 0.1)))
    crop_w = int(min(width, round(np.sqrt(area * aspect))))
    crop_h = int(min(height, round(np.sqrt(area / aspect))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    img = photo.crop((left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img.resize((out_w, out_h), Image.Resampling.BICUBIC)


def build_jpeg_corpus(
    root: str | Path, num_images: int = 2000, *, num_classes: int = 10, seed: int = 0
) -> Path:
    """Write (or reuse) ``num_images`` JPEGs under ``root/class{c}/img{i}.jpg``.

    A finished corpus leaves ``root/corpus.json``; a call with the same arguments reuses it.

    Args:
        root: output folder.
        num_images: number of JPEGs, dealt round-robin over ``num_classes`` sub-folders.
        num_classes: number of class sub-folders (labels for the index).
        seed: seed of the crops, flips and scales.

    Returns:
        ``root``.

    """
    root = Path(root)
    meta = {
        "num_images": num_images,
        "num_classes": num_classes,
        "seed": seed,
        "size": list(CORPUS_SIZE),
        "quality": CORPUS_QUALITY,
    }
    stamp = root / "corpus.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == meta:
        logger.info("reusing the JPEG corpus in %s", root)
        return root
    photos = _seed_photos()
    rng = np.random.default_rng(seed)
    for c in range(num_classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i in range(num_images):
        img = _one_image(photos[i % len(photos)], rng)
        img.save(root / f"class{i % num_classes}" / f"img{i:05d}.jpg", quality=CORPUS_QUALITY)
    stamp.write_text(json.dumps(meta))
    logger.info("wrote %d JPEGs to %s", num_images, root)
    return root
