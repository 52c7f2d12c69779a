# SPDX-License-Identifier: MIT
"""Data-loader benchmark: source images/s for 2 views of 224 px (``scripts/bench_loader.sh``).

This module owns the measurement: over a corpus of ~500 x 375 JPEGs (:mod:`bench_corpus`) it times
(a) a PIL + torchvision (v1) loader assembled the way solo-learn assembles its pretraining loader
(ImageFolder-style PIL loading, RandomResizedCrop bicubic, RandomApply(ColorJitter),
RandomGrayscale, RandomHorizontalFlip, ToTensor, Normalize, two views), (b) our torchvision path,
(b') our fast CPU path, (c) our ``data.format=dali`` path on the CPU and (d) on a GPU when one is
visible (each twice: a first epoch that screens every image, then one with cached verdicts), and
the decode-only rate of one core as the ceiling. Every loader runs with the same worker count and
batch size; it prints a table with ratios to (a) and writes JSON.
Usage: ``python -m solo_diversity.data.bench --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from solo_diversity.data.augment import dataset_stats, parse_augmentations
from solo_diversity.data.bench_corpus import build_jpeg_corpus

SYMMETRIC = {
    "crop_size": 224, "num_crops": 2, "rrc": {"crop_min_scale": 0.08, "crop_max_scale": 1.0},
    "color_jitter": {"prob": 0.8, "brightness": 0.8, "contrast": 0.8, "saturation": 0.8,
                     "hue": 0.2},
    "grayscale": {"prob": 0.2}, "horizontal_flip": {"prob": 0.5},
}


class _SoloStyleFolder(Dataset[Any]):
    """solo-learn's pattern: PIL open + convert("RGB"), then a list of per-view transforms."""

    def __init__(self, files: Sequence[Path], transform: Callable[[Image.Image], Any]) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Any:
        with open(self.files[i], "rb") as handle:
            img = Image.open(handle).convert("RGB")
        return i, self.transform(img), 0


def solo_style_loader(files: Sequence[Path], batch_size: int, workers: int) -> DataLoader:
    """Baseline (a): torchvision v1 transforms on PIL images, two views, default collate."""
    from torchvision import transforms as T

    mean, std = dataset_stats("imagenet")
    view = T.Compose([
        T.RandomResizedCrop(224, scale=(0.08, 1.0), interpolation=T.InterpolationMode.BICUBIC),
        T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomHorizontalFlip(p=0.5),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])
    dataset = _SoloStyleFolder(files, lambda img: [view(img), view(img)])
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                      drop_last=True)


def ours_loader(index_path: Path, backend: str, batch_size: int, workers: int) -> DataLoader:
    """(b) our datamodule's train loader with ``data.augment_backend`` = backend."""
    from solo_diversity.data import FastMultiView, MultiViewTransform, PretrainDataModule
    from solo_diversity.index import open_index, select_subset

    specs = parse_augmentations([SYMMETRIC])
    mean, std = dataset_stats("imagenet")
    view_cls = FastMultiView if backend == "fast" else MultiViewTransform
    dm = PretrainDataModule(select_subset(open_index(index_path), -1), view_cls(specs, mean, std),
                            batch_size=batch_size, num_workers=workers, seed=0)
    return dm.train_dataloader()


def dali_rates(index_path: Path, device: str, batch_size: int, workers: int) -> tuple[float, float]:
    """(c)/(d) our ``data.format=dali`` path: images/s of a first epoch (every image screened
    once by the feed) and of the next (verdicts cached), from a cold screening cache.
    """
    from solo_diversity.data.dali_loader import DaliPretrainDataModule
    from solo_diversity.index import open_index, select_subset

    cache = index_path.parent / f"{index_path.stem}.dali-screen"
    cache.unlink(missing_ok=True)
    dm = DaliPretrainDataModule(
        select_subset(open_index(index_path), -1), parse_augmentations([SYMMETRIC]),
        *dataset_stats("imagenet"), device=device, num_threads=workers, batch_size=batch_size,
        num_workers=workers, seed=0, screen_cache=cache,
    )
    first = _rate(dm.train_batches(), batch_size)
    dm.sampler.set_epoch(1)
    later = _rate(dm.train_batches(), batch_size)
    dm.teardown("fit")
    return first, later


def _rate(batches: Iterable[Any], batch_size: int, warmup: int = 1) -> float:
    """Images/s over the batches after ``warmup`` (worker start-up excluded)."""
    start, count = 0.0, 0
    for k, _ in enumerate(batches):
        if k + 1 == warmup:
            start, count = time.perf_counter(), 0
        elif k + 1 > warmup:
            count += batch_size
    return count / (time.perf_counter() - start) if count else float("nan")


def decode_rate(files: Sequence[Path], limit: int = 400) -> float:
    """Decode-only images/s of one core (PIL + libjpeg-turbo): the per-core ceiling."""
    data = [f.read_bytes() for f in files[:limit]]
    torch.set_num_threads(1)
    start = time.perf_counter()
    for blob in data:
        Image.open(__import__("io").BytesIO(blob)).convert("RGB")
    return len(data) / (time.perf_counter() - start)


def run(corpus: Path, num_images: int, batch_size: int, workers: int, out: Path) -> dict[str, Any]:
    """Measure every loader on one corpus; returns (and writes) the results."""
    from solo_diversity.index import build_index

    build_jpeg_corpus(corpus, num_images)
    files = sorted(corpus.glob("*/*.jpg"))
    index_path = corpus.parent / f"{corpus.name}-index.h5"
    if not index_path.is_file():
        build_index("folder", index_path, seed=0, dataset="imagenet", root=corpus)
    rows: list[tuple[str, float]] = []
    rows.append(("(a) PIL + torchvision, solo-learn style", _rate(
        solo_style_loader(files, batch_size, workers), batch_size)))
    rows.append(("(b) ours, torchvision backend", _rate(
        ours_loader(index_path, "torchvision", batch_size, workers), batch_size)))
    rows.append(("(b') ours, fast CPU backend", _rate(
        ours_loader(index_path, "fast", batch_size, workers), batch_size)))
    devices = ["cpu", "gpu"] if torch.cuda.is_available() else ["cpu"]
    for device in devices:
        label = "(c) ours, DALI CPU" if device == "cpu" else "(d) ours, DALI GPU (nvJPEG)"
        try:
            first, later = dali_rates(index_path, device, batch_size, workers)
        except Exception as err:  # noqa: BLE001 - report why a row is missing, keep the others
            rows.append((f"{label} unavailable: {type(err).__name__}", float("nan")))
            continue
        rows.append((f"{label}, first epoch (screening)", first))
        rows.append((f"{label}, later epochs", later))
    if devices == ["cpu"]:
        rows.append(("(d) DALI GPU: no GPU visible, not measured", float("nan")))
    rows.append(("decode only, 1 core (ceiling per core)", decode_rate(files)))
    base = rows[0][1]
    result = {
        "corpus": str(corpus), "num_images": len(files), "batch_size": batch_size,
        "workers": workers, "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "views": "2 x 224 px, solo-learn symmetric preset",
        "rows": [{"loader": name, "images_per_s": rate, "ratio_to_a": rate / base}
                 for name, rate in rows],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("datasets/bench_jpeg"))
    parser.add_argument("--num-images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/bench_loader.json"))
    args = parser.parse_args(argv)
    result = run(args.corpus, args.num_images, args.batch_size, args.workers, args.out)
    print(f"{'loader':46s} {'img/s':>8s} {'x (a)':>7s}")
    for row in result["rows"]:
        print(f"{row['loader']:46s} {row['images_per_s']:8.0f} {row['ratio_to_a']:7.2f}")
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
