# SPDX-License-Identifier: MIT
"""The ``solo-div build source`` group and the ``solo-div index union|subset|filter|exclude`` set
algebra sub-commands.

:func:`register` adds ``build`` to the ``solo-div`` sub-parsers; :func:`add_set_algebra` adds the
set algebra to the ``index`` group (called by :mod:`solo_diversity.index.cli`). Each handler takes
the parsed namespace and returns the exit code; bad input raises a one-line ``UserError``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from solo_diversity.builders import set_ops
from solo_diversity.builders.source_build import A_OUT_CLASSES, A_OUT_SIZE, build_source_sets
from solo_diversity.builders.synthetic_cli import add_synthetic_parser
from solo_diversity.builders.web_cli import add_web_parser
from solo_diversity.entry import standalone_main
from solo_diversity.index.reader import open_index


def _report(path: Path) -> None:
    index = open_index(path)
    print(f"wrote {path} ({len(index)} entries, {index.num_classes} classes)")


def _union(args: argparse.Namespace) -> int:
    _report(set_ops.union_indexes(args.inputs, args.out, seed=args.seed, dataset=args.dataset))
    return 0


def _subset(args: argparse.Namespace) -> int:
    out = set_ops.subset_index(
        args.index, args.out, fraction=args.fraction, count=args.count, seed=args.seed
    )
    _report(out)
    return 0


def _filter(args: argparse.Namespace) -> int:
    classes = set_ops.read_class_list(args.classes, args.classes_file)
    _report(set_ops.filter_index(args.index, args.out, classes, seed=args.seed))
    return 0


def _exclude(args: argparse.Namespace) -> int:
    _report(set_ops.exclude_index(args.index, args.out, args.other, seed=args.seed))
    return 0


def _build_source(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    written = build_source_sets(
        args.imagenet,
        args.out,
        seed=args.seed,
        a_out_size=args.a_out_size,
        a_out_classes=args.a_out_classes,
    )
    for path in written.values():
        _report(path)
    print(f"built {len(written)} source sets in {time.perf_counter() - start:.1f} s")
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``build`` group (``build source|synthetic|web``) to the ``solo-div`` parsers.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    build = subparsers.add_parser("build", help="build the paper's datasets as indexes")
    commands = build.add_subparsers(dest="build_command", required=True)
    source = commands.add_parser(
        "source", help="B, A_in_source and A_out_source from an ImageNet train index"
    )
    source.add_argument("--imagenet", required=True, help="ImageNet train index (WNID classes)")
    source.add_argument("--out", required=True, help="folder for B.h5, A_in_source.h5, ...")
    source.add_argument("--seed", type=int, required=True, help="draws A_out's classes")
    source.add_argument("--a-out-size", type=int, default=A_OUT_SIZE, help=f"default: {A_OUT_SIZE}")
    source.add_argument(
        "--a-out-classes", type=int, default=A_OUT_CLASSES, help=f"default: {A_OUT_CLASSES}"
    )
    source.set_defaults(func=_build_source)
    add_synthetic_parser(commands)
    add_web_parser(commands)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``build ...`` standalone (``python -m solo_diversity.builders.cli build source ...``)."""
    return standalone_main(register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
