# SPDX-License-Identifier: MIT
"""Data-loader benchmark on solo-learn's own presets: source images/s (``scripts/bench_loader.sh``).

This module owns the run and its report. For every preset of
:data:`~bench.loader_baseline.PRESETS` (ImageNet-100 symmetric, asymmetric and
multi-crop over ~500 x 375 photo JPEGs; CIFAR symmetric and asymmetric over a 32 px array made
from photos, see :mod:`~bench.corpus`) it times, side by side with the same
worker count and batch size: (a) solo-learn's pretraining loader, rebuilt step for step; (b) ours
with ``data.augment_backend=torchvision``, (b') with ``fast``, (e) the batched small-image path;
(c) ``data.format=dali`` on the CPU and (d) on a GPU (DALI, and the batched path) when one is
visible, each a first (screening) epoch and later ones; and decode-only on one core as the ceiling
(224 px). It prints one table per preset with ratios to (a), checks the targets (fast >= 4x (a) at
224 px, batch >= 10x (a) at 32 px; reported, never a failure) and writes one JSON file.
Usage: ``python -m bench.loader --help``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.corpus import (
    build_jpeg_corpus,
    build_small_corpus,
    small_corpus_labels,
)
from bench.loader_baseline import (
    PRESETS,
    BenchPreset,
    solo_dataset,
    solo_loader,
    solo_multi_view,
)
from bench.loader_report import (
    machine_info,
    median_of_rounds,
    print_preset,
    target_checks,
    with_ratios,
)
from bench.loader_rows import (
    Budget,
    Row,
    batch_augment,
    batch_unavailable,
    dali_rates,
    datamodule_rate,
    decode_rate,
    failure_note,
    loader_rate,
    measure,
)
from solo_diversity.data.augment import dataset_stats, parse_augmentations

#: Defaults of a full run and of ``--quick`` (flags given on the command line win).
FULL = {
    "num_images": 2000,
    "num_small": 10_000,
    "min_images": 2000,
    "min_seconds": 10.0,
    "max_seconds": 120.0,
}
QUICK = {
    "num_images": 384,
    "num_small": 2048,
    "min_images": 192,
    "min_seconds": 1.0,
    "max_seconds": 10.0,
}


@dataclass(frozen=True)
class Settings:
    """One benchmark run's knobs (see ``--help``)."""

    presets: tuple[str, ...]
    corpus_root: Path
    num_images: int
    num_small: int
    batch_size_224: int
    batch_size_32: int
    workers: int
    budget: Budget
    repeats: int
    quick: bool
    out: Path


@dataclass(frozen=True)
class Corpus:
    """The data of one size class: JPEG files + their index, or an array + its index."""

    index_path: Path
    files: tuple[Path, ...] = ()
    folder: Path | None = None
    array: np.ndarray | None = None
    labels: np.ndarray | None = None


def jpeg_corpus(settings: Settings) -> Corpus:
    """The ~500 x 375 JPEG corpus and its paths index (built on first use)."""
    from solo_diversity.index import build_index

    folder = build_jpeg_corpus(
        settings.corpus_root / f"jpeg-{settings.num_images}", settings.num_images
    )
    index_path = folder.parent / f"{folder.name}-index.h5"
    if not index_path.is_file():
        build_index("folder", index_path, seed=0, dataset="imagenet100", root=folder)
    return Corpus(index_path, files=tuple(sorted(folder.glob("*/*.jpg"))), folder=folder)


def small_corpus(settings: Settings) -> Corpus:
    """The 32 px array and its PNG byte index (built on first use)."""
    index_path, npy_path = build_small_corpus(
        settings.corpus_root / f"small32-{settings.num_small}", settings.num_small
    )
    return Corpus(index_path, array=np.load(npy_path), labels=small_corpus_labels(npy_path))


def preset_rows(preset: BenchPreset, corpus: Corpus, settings: Settings) -> list[Row]:
    """Every row of one preset, (a) first."""
    from solo_diversity.data import FastMultiView, MultiViewTransform
    from solo_diversity.index import open_index, select_subset

    specs = parse_augmentations([dict(a) for a in preset.augmentations])
    mean, std = dataset_stats(preset.dataset)
    batch = settings.batch_size_32 if preset.small else settings.batch_size_224
    workers, budget = settings.workers, settings.budget
    subset = select_subset(open_index(corpus.index_path), -1)
    views = solo_multi_view(specs, mean, std)
    baseline = solo_dataset(
        preset, views, folder=corpus.folder, array=corpus.array, labels=corpus.labels
    )

    def ours(transform: Any) -> tuple[float, str] | float:
        rate, setup = datamodule_rate(subset, transform, batch, workers, budget)
        if preset.small:  # data.in_memory=auto keeps the 32 px set decoded, as a run does
            return rate, f"data.in_memory=auto: decoded into memory first ({setup:.1f} s)"
        return rate

    def batched(device: str | None) -> tuple[float, str]:
        rate, setup = datamodule_rate(
            subset, batch_augment(specs, mean, std), batch, workers, budget, device=device
        )
        return rate, f"decodes the set into memory first ({setup:.1f} s, not timed)"

    source = "CIFAR-style array" if preset.small else "ImageFolder"
    rows = [
        measure(
            "a",
            f"(a) solo-learn's loader ({source})",
            lambda: loader_rate(solo_loader(baseline, batch, workers), budget),
        ),
        measure(
            "b",
            "(b) ours, augment_backend=torchvision",
            lambda: ours(MultiViewTransform(specs, mean, std)),
        ),
        measure(
            "b_fast",
            "(b') ours, augment_backend=fast",
            lambda: ours(FastMultiView(specs, mean, std)),
        ),
    ]
    missing = batch_unavailable()
    label = "(e) ours, augment_backend=batch (in the workers)"
    rows.append(
        Row("e", label, None, missing) if missing else measure("e", label, lambda: batched(None))
    )
    gpu = torch.cuda.is_available()
    for device in ("cpu", "gpu") if gpu else ("cpu",):
        rows += _dali_rows(device, subset, specs, mean, std, corpus, batch, settings)
    if gpu:
        label = "(d) ours, augment_backend=batch on the GPU (after transfer)"
        rows.append(
            Row("e_gpu", label, None, missing)
            if missing
            else measure("e_gpu", label, lambda: batched("cuda"))
        )
    else:
        rows.append(Row("d", "(d) DALI GPU and batch on the GPU", None, "no GPU visible"))
    if not preset.small:
        limit = max(100, min(len(corpus.files), budget.min_images))
        rows.append(
            measure(
                "decode",
                "decode only, 1 core (ceiling per core)",
                lambda: decode_rate(corpus.files, limit),
            )
        )
    return rows


def _dali_rows(
    device: str,
    subset: Any,
    specs: Any,
    mean: Any,
    std: Any,
    corpus: Corpus,
    batch: int,
    settings: Settings,
) -> list[Row]:
    """(c) or (d): DALI's first epoch and later epochs, or one row saying why not."""
    key, label = ("c", "(c) ours, DALI CPU") if device == "cpu" else ("d", "(d) ours, DALI GPU")
    cache = corpus.index_path.parent / f"{corpus.index_path.stem}.dali-screen"
    try:
        first, later = dali_rates(
            subset, specs, mean, std, device, batch, settings.workers, settings.budget, cache
        )
    except Exception as err:  # noqa: BLE001 - one failed row must not stop the others
        return [Row(key, label, None, failure_note(err))]
    finally:
        gc.collect()
    return [
        Row(f"{key}_first", f"{label}, first epoch (screening)", first),
        Row(f"{key}_later", f"{label}, later epochs", later),
    ]


def run(settings: Settings) -> dict[str, Any]:
    """Measure every row of every chosen preset; returns (and writes) the results."""
    warnings.filterwarnings("ignore", message=".*pin_memory.*")  # (a) pins; no GPU, no pinning
    chosen = [PRESETS[name] for name in settings.presets]
    machine = machine_info()  # the load before the run starts
    corpora: dict[bool, Corpus] = {}
    results: dict[str, Any] = {}
    for preset in chosen:
        if preset.small not in corpora:
            corpora[preset.small] = (
                small_corpus(settings) if preset.small else jpeg_corpus(settings)
            )
        corpus = corpora[preset.small]
        rounds = [preset_rows(preset, corpus, settings) for _ in range(settings.repeats)]
        rows = with_ratios(median_of_rounds(rounds))
        results[preset.name] = {
            "source": f"solo-learn scripts/pretrain/{preset.source}",
            "dataset": preset.dataset,
            "views": preset.views,
            "batch_size": settings.batch_size_32 if preset.small else settings.batch_size_224,
            "num_images": settings.num_small if preset.small else settings.num_images,
            "rows": rows,
            "targets": target_checks(preset, rows),
        }
        print_preset(preset.name, results[preset.name], settings.workers, settings.repeats)
    settings_json = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}
    machine["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result = {"machine": machine, "settings": settings_json, "presets": results}
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    settings.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def parse_args(argv: Sequence[str] | None) -> Settings:
    """The command line -> :class:`Settings` (``--quick`` changes the defaults, not given flags)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--presets",
        nargs="+",
        default=list(PRESETS),
        help=f"any of {', '.join(PRESETS)} (default: all; commas also work)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small corpora and short rows (384 JPEGs, 2,048 small images, rows of at least "
        "192 images and 1 s, at most 10 s): a rough try, not a measurement",
    )
    parser.add_argument("--corpus-root", type=Path, default=Path("datasets/bench"))
    parser.add_argument("--num-images", type=int, help="JPEGs of the 224 px corpus (2000)")
    parser.add_argument("--num-small", type=int, help="images of the 32 px corpus (10000)")
    parser.add_argument("--batch-size-224", type=int, default=64)
    parser.add_argument("--batch-size-32", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--min-images", type=int, help="time each row over at least this many (2000)"
    )
    parser.add_argument("--min-seconds", type=float, help="and for at least this long (10)")
    parser.add_argument("--max-seconds", type=float, help="but a row stops after this long (120)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="measure every row this many times, in rounds, and report the median (1)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench_loader.json"))
    args = parser.parse_args(argv)
    names = tuple(n for item in args.presets for n in item.split(",") if n)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        parser.error(f"unknown preset(s) {', '.join(unknown)}; valid: {', '.join(PRESETS)}")
    chosen = QUICK if args.quick else FULL
    value = {k: chosen[k] if getattr(args, k) is None else getattr(args, k) for k in FULL}
    return Settings(
        presets=names,
        corpus_root=args.corpus_root,
        num_images=int(value["num_images"]),
        num_small=int(value["num_small"]),
        batch_size_224=args.batch_size_224,
        batch_size_32=args.batch_size_32,
        workers=args.workers,
        budget=Budget(int(value["min_images"]), value["min_seconds"], value["max_seconds"]),
        repeats=max(1, args.repeats),
        quick=args.quick,
        out=args.out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    run(settings)
    print(f"JSON: {settings.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
