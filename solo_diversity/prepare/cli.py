# SPDX-License-Identifier: MIT
"""The ``solo-div data prepare NAME --from PATH`` sub-command.

:func:`register` adds it to the ``solo-div`` sub-parsers; the handler prints each index written
and where the data group will find it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Copies of :mod:`solo_diversity.prepare.dataset`'s ``DATASETS`` and ``INDEX_CACHE`` (a test keeps
# them equal): that module loads numpy, h5py and PIL, which ``--help`` does not need.
DATASETS = (
    "cifar100",
    "tinyimagenet",
    "imagenet100",
    "food101",
    "flowers102",
    "oxford_pets",
    "stanford_cars",
    "places365",
)
INDEX_CACHE = Path("datasets/.indexes")


def _prepare(args: argparse.Namespace) -> int:
    from solo_diversity.prepare.dataset import prepare_dataset  # numpy, h5py, PIL: on run

    written = prepare_dataset(
        args.name,
        args.source,
        out_root=args.out,
        seed=args.seed,
        cache_dir=Path(args.index_cache),
    )
    for split, path in written.items():
        print(f"{args.name} {split}: {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data prepare`` to ``solo-div``.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    """
    data = subparsers.add_parser("data", help="prepare official dataset downloads")
    commands = data.add_subparsers(dest="data_command", required=True)
    prepare = commands.add_parser(
        "prepare", help="turn an official download into the indexes its data group reads"
    )
    prepare.add_argument("name", choices=DATASETS, help="the data group to prepare")
    prepare.add_argument(
        "--from", dest="source", required=True, help="the download: its folder or archive"
    )
    prepare.add_argument(
        "--out", default="datasets", help="where the data groups look (default: datasets)"
    )
    prepare.add_argument(
        "--seed",
        type=int,
        default=0,
        help="shuffle seed, the configs' data.index_seed (default: 0)",
    )
    prepare.add_argument(
        "--index-cache",
        default=str(INDEX_CACHE),
        help=f"the configs' data.index_cache (default: {INDEX_CACHE})",
    )
    prepare.set_defaults(func=_prepare)
