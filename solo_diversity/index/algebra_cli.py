# SPDX-License-Identifier: MIT
"""The ``solo-div index union|subset|filter|exclude`` set algebra sub-commands.

:func:`add_set_algebra` adds them to the ``index`` group (called by
:mod:`solo_diversity.index.cli`). Each handler takes the parsed namespace and returns the exit
code; bad input raises a one-line ``UserError``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def report_written(path: Path) -> None:
    from solo_diversity.index.reader import open_index  # h5py: only when a command has run

    index = open_index(path)
    print(f"wrote {path} ({len(index)} entries, {index.num_classes} classes)")


def _union(args: argparse.Namespace) -> int:
    from solo_diversity.index import set_ops  # numpy, h5py: only when the command runs

    out = set_ops.union_indexes(args.inputs, args.out, seed=args.seed, dataset=args.dataset)
    report_written(out)
    return 0


def _subset(args: argparse.Namespace) -> int:
    from solo_diversity.index import set_ops  # numpy, h5py: only when the command runs

    out = set_ops.subset_index(
        args.index, args.out, fraction=args.fraction, count=args.count, seed=args.seed
    )
    report_written(out)
    return 0


def _filter(args: argparse.Namespace) -> int:
    from solo_diversity.index import set_ops  # numpy, h5py: only when the command runs

    classes = set_ops.read_class_list(args.classes, args.classes_file)
    report_written(set_ops.filter_index(args.index, args.out, classes, seed=args.seed))
    return 0


def _exclude(args: argparse.Namespace) -> int:
    from solo_diversity.index import set_ops  # numpy, h5py: only when the command runs

    report_written(set_ops.exclude_index(args.index, args.out, args.other, seed=args.seed))
    return 0


def add_set_algebra(commands: argparse._SubParsersAction) -> None:
    """Add ``union``, ``subset``, ``filter`` and ``exclude`` to the ``index`` sub-commands.

    Args:
        commands: the ``index`` group's sub-parsers.
    """
    seed_help = "shuffle seed of the new index (default: the input's)"
    union = commands.add_parser(
        "union", help="merge indexes of one kind, re-shuffled, recording each entry's origin"
    )
    union.add_argument("inputs", nargs="+", help="two or more .h5 indexes")
    union.add_argument("--out", required=True, help="the .h5 index to write")
    union.add_argument("--seed", type=int, required=True, help="shuffle seed of the union")
    union.add_argument(
        "--dataset", help="dataset name to record, e.g. imagenet100 (default: the inputs' joined)"
    )
    union.set_defaults(func=_union)

    subset = commands.add_parser("subset", help="the first K entries of an index's shuffled order")
    subset.add_argument("index", help="the input .h5 index")
    size = subset.add_mutually_exclusive_group(required=True)
    size.add_argument("--fraction", type=float, help="K = round(fraction * N)")
    size.add_argument("--count", type=int, help="K")
    subset.add_argument("--out", required=True, help="the .h5 index to write")
    subset.add_argument("--seed", type=int, default=None, help=seed_help)
    subset.set_defaults(func=_subset)

    keep = commands.add_parser("filter", help="keep the entries of some classes")
    keep.add_argument("index", help="the input .h5 index")
    names = keep.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", help="class names, comma separated")
    names.add_argument("--classes-file", help="a file of class names, one a line")
    keep.add_argument("--out", required=True, help="the .h5 index to write")
    keep.add_argument("--seed", type=int, default=None, help=seed_help)
    keep.set_defaults(func=_filter)

    drop = commands.add_parser("exclude", help="drop the entries that another index holds")
    drop.add_argument("index", help="the input .h5 index")
    drop.add_argument("--other", required=True, help="the index whose entries to drop")
    drop.add_argument("--out", required=True, help="the .h5 index to write")
    drop.add_argument("--seed", type=int, default=None, help=seed_help)
    drop.set_defaults(func=_exclude)
