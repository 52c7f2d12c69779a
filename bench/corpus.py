# SPDX-License-Identifier: MIT
"""ImageNet-like and CIFAR-like corpora made from real photographs, for data-loader benchmarks.

This module owns :func:`build_jpeg_corpus` and :func:`build_small_corpus`. Both cut random crops at
random scales out of the photographs scikit-learn ships (``load_sample_images``: a Chinese temple
and a flower, 427 x 640). The JPEG corpus resizes each crop to about 500 x 375 (landscape or
portrait, like a typical ImageNet JPEG) and writes quality-90 JPEGs in class sub-folders. The small
corpus downscales square crops to 32 x 32 with antialiasing (like CIFAR) and keeps them twice: as
a uint8 array (N, 32, 32, 3), the way torchvision's CIFAR datasets hold them in memory, and as our
byte index (PNG bytes in HDF5, exactly as the CIFAR index builder stores them). Real photographic
content matters: decoding and entropy coding cost depend on it, and noise would make every file
~3x larger than a photo.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from solo_diversity.index.builtin import encode_png
from solo_diversity.index.writer import IndexMeta, write_index

logger = logging.getLogger(__name__)

#: Landscape (width, height) of a corpus image; a quarter of them are portrait (375 x 500).
CORPUS_SIZE = (500, 375)
CORPUS_QUALITY = 90
#: Side of a small-corpus crop as a share of the photo's short side (before the downscale).
SMALL_CROP_SIDE = (0.1, 0.6)
SMALL_INDEX_NAME, SMALL_ARRAY_NAME, SMALL_LABELS_NAME = "index.h5", "images.npy", "labels.npy"


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


def _small_image(photo: Image.Image, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop (10-60% of the short side), flipped half the time, antialiased down."""
    width, height = photo.size
    side = int(round(min(width, height) * rng.uniform(*SMALL_CROP_SIDE)))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    img = photo.crop((left, top, left + side, top + side))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # PIL widens a filter's support by the shrink factor, so LANCZOS here is antialiased.
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def build_small_corpus(
    root: Path, num_images: int = 10_000, size: int = 32, seed: int = 0
) -> tuple[Path, Path]:
    """Write (or reuse) a CIFAR-like corpus of ``num_images`` RGB images of ``size`` x ``size``.

    Image ``i`` has label ``i % 10``. The corpus is kept as ``root/images.npy`` (uint8,
    (N, size, size, 3), the array torchvision's CIFAR datasets hold), ``root/labels.npy`` (int64,
    (N,)) and ``root/index.h5``: our byte index of the same images as PNG bytes (entry ``j`` is
    array row ``source_positions()[j]``; the index is shuffled with ``seed``). A finished corpus
    leaves ``root/corpus.json``; a call with the same arguments reuses it.

    Args:
        root: output folder.
        num_images: number of images.
        size: side in pixels.
        seed: seed of the crops, flips and scales, and of the index order.

    Returns:
        ``(index_path, npy_path)``.

    """
    root = Path(root)
    index_path, npy_path = root / SMALL_INDEX_NAME, root / SMALL_ARRAY_NAME
    num_classes = 10
    meta = {
        "num_images": num_images,
        "size": size,
        "seed": seed,
        "num_classes": num_classes,
        "crop_side": list(SMALL_CROP_SIDE),
    }
    stamp = root / "corpus.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == meta and index_path.is_file():
        logger.info("reusing the small corpus in %s", root)
        return index_path, npy_path
    stamp.unlink(missing_ok=True)
    photos = _seed_photos()
    rng = np.random.default_rng(seed)
    images = np.stack([_small_image(photos[i % len(photos)], size, rng) for i in range(num_images)])
    labels = np.arange(num_images, dtype=np.int64) % num_classes
    root.mkdir(parents=True, exist_ok=True)
    np.save(npy_path, images)
    np.save(root / SMALL_LABELS_NAME, labels)
    index_meta = IndexMeta(
        dataset="bench_small",
        split="train",
        kind="bytes",
        root="",
        seed=seed,
        source=f"bench_corpus:small:{num_images}x{size}px:seed={seed}",
        class_names=tuple(f"class{c}" for c in range(num_classes)),
    )
    entries = (
        (encode_png(image), int(label))
        for image, label in zip(images, labels.tolist(), strict=True)
    )
    write_index(entries, index_path, index_meta)
    stamp.write_text(json.dumps(meta))
    logger.info("wrote %d images of %d px to %s", num_images, size, root)
    return index_path, npy_path


def small_corpus_labels(npy_path: Path) -> np.ndarray:
    """The (N,) int64 labels stored beside a small corpus's image array."""
    return np.load(Path(npy_path).parent / SMALL_LABELS_NAME)
