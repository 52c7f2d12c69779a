# SPDX-License-Identifier: MIT
"""The ``solo-div distance fid|vdna|table`` sub-commands.

    solo-div distance fid imagenet.h5 cars.h5 [--max-samples 50000] [--seed S]
    solo-div distance vdna imagenet.h5 cars.h5 --extractor mugs_vit_base [--bins 1000]
    solo-div distance table --pretrain imagenet.h5 yfcc.h5 --downstream cars.h5 flowers.h5 --out DIR

A dataset is ``PATH`` or ``PATH:FRACTION`` (the index's first FRACTION). :func:`register` adds the
commands; each handler returns the exit code.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from solo_diversity.distances.samples import DatasetSample

# A copy of :data:`solo_diversity.distances.samples.DEFAULT_MAX_SAMPLES` (a test keeps them equal):
# that module loads numpy and h5py, which ``--help`` does not need.
DEFAULT_MAX_SAMPLES = 50_000


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from solo_diversity.distances.features import LoaderSettings

    return LoaderSettings(args.batch_size, args.num_workers, args.device)


def _samples(args: argparse.Namespace, specs: list[str]) -> list[DatasetSample]:
    from solo_diversity.distances.samples import sample_dataset  # numpy, h5py: on run

    return [sample_dataset(s, max_samples=args.max_samples, seed=args.seed) for s in specs]


def _cache(args: argparse.Namespace) -> Path | None:
    return Path(args.cache_dir) if args.cache_dir else None


def _emit(args: argparse.Namespace, line: str, record: dict) -> None:
    print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


def _fid(args: argparse.Namespace) -> int:
    from solo_diversity.distances.extractors import build_extractor
    from solo_diversity.distances.fid import fid

    a, b = _samples(args, [args.a, args.b])
    extractor = build_extractor(args.feature_extractor, layered=False, weights=args.weights)
    result = fid(a, b, extractor, settings=_settings(args), cache_root=_cache(args))
    _emit(
        args,
        f"FID({result.a}, {result.b}) = {result.fid:.4f}  [{result.extractor}, "
        f"n={result.n_a} vs {result.n_b}]",
        result.to_dict(),
    )
    return 0


def _vdna(args: argparse.Namespace) -> int:
    from solo_diversity.distances.extractors import build_extractor
    from solo_diversity.distances.vdna import vdna_distance

    a, b = _samples(args, [args.a, args.b])
    reference = _samples(args, [args.ranges_from])[0] if args.ranges_from else None
    extractor = build_extractor(args.extractor, layered=True, weights=args.weights)
    result = vdna_distance(
        a,
        b,
        extractor,
        bins=args.bins,
        reference=reference,
        settings=_settings(args),
        cache_root=_cache(args),
    )
    _emit(
        args,
        f"VisualDNA EMD({result.a}, {result.b}) = {result.emd:.4f}  [{result.extractor}, "
        f"{result.bins} bins, n={result.n_a} vs {result.n_b}]",
        result.to_dict(),
    )
    return 0


def _table(args: argparse.Namespace) -> int:
    from solo_diversity.distances.table import build_metrics, distance_table, write_table

    metrics = build_metrics(args.metrics)
    table = distance_table(
        _samples(args, args.pretrain),
        _samples(args, args.downstream),
        metrics,
        bins=args.bins,
        settings=_settings(args),
        cache_root=_cache(args),
    )
    table |= {"max_samples": args.max_samples, "seed": args.seed}
    json_path, md_path = write_table(table, args.out)
    print(md_path.read_text(), end="")
    print(f"wrote {json_path} and {md_path}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-samples",
        type=int,
        default=DEFAULT_MAX_SAMPLES,
        help=f"cap on images per dataset (default {DEFAULT_MAX_SAMPLES:,})",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="draw the capped sample with this seed (default: the index's order)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="where features/VDNAs are cached (default: <index>.distances/ beside it)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``distance fid``, ``distance vdna`` and ``distance table`` to the ``solo-div`` parser.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    distance = subparsers.add_parser("distance", help="FID / VisualDNA between index datasets")
    commands = distance.add_subparsers(dest="distance_command", required=True)

    p = commands.add_parser("fid", help="clean-fid FID between two datasets")
    p.add_argument("a", help="index PATH or PATH:FRACTION")
    p.add_argument("b", help="index PATH or PATH:FRACTION")
    p.add_argument(
        "--feature-extractor",
        default="inception",
        help="inception (default), torchvision:<arch> or timm:<name>",
    )
    p.add_argument("--weights", default=None, help="local weight file for the extractor")
    p.add_argument("--json", default=None, help="also write the result to this JSON file")
    _common(p)
    p.set_defaults(func=_fid)

    p = commands.add_parser("vdna", help="VisualDNA EMD between two datasets")
    p.add_argument("a", help="index PATH or PATH:FRACTION")
    p.add_argument("b", help="index PATH or PATH:FRACTION")
    p.add_argument("--extractor", required=True, help="mugs_vit_base or dinov2_vit_base")
    p.add_argument("--bins", type=int, default=1000, help="histogram bins per neuron")
    p.add_argument("--weights", default=None, help="weight file or folder for the extractor")
    p.add_argument(
        "--ranges-from",
        default=None,
        help="dataset defining activation ranges when the extractor has none (default A)",
    )
    p.add_argument("--json", default=None, help="also write the result to this JSON file")
    _common(p)
    p.set_defaults(func=_vdna)

    p = commands.add_parser("table", help="all pretraining x downstream distances (Table 3)")
    p.add_argument("--pretrain", nargs="+", required=True, help="pretraining index datasets")
    p.add_argument("--downstream", nargs="+", required=True, help="downstream index datasets")
    p.add_argument(
        "--metrics",
        nargs="+",
        default=["vdna:mugs_vit_base", "vdna:dinov2_vit_base", "fid:inception"],
        help="fid[:extractor] and vdna:<extractor> entries",
    )
    p.add_argument("--bins", type=int, default=1000, help="VisualDNA histogram bins")
    p.add_argument("--out", default="results/table3", help="folder for distances.json / .md")
    _common(p)
    p.set_defaults(func=_table)
