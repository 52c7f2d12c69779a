# SPDX-License-Identifier: MIT
"""The ``solo-div build source|synthetic|web`` group.

:func:`register` adds ``build`` to the ``solo-div`` sub-parsers. Each handler takes the parsed
namespace and returns the exit code; bad input raises a one-line ``UserError``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from solo_diversity.builders.synthetic.cli import add_synthetic_parser
from solo_diversity.builders.web.cli import add_web_parser
from solo_diversity.entry import standalone_main
from solo_diversity.index.algebra_cli import report_written

# Copies of :mod:`solo_diversity.builders.source.build`'s defaults (a test keeps them equal): that
# module loads numpy and h5py, which ``--help`` does not need.
A_OUT_SIZE = 65_000  # the paper's |A|
A_OUT_CLASSES = 100


def _build_source(args: argparse.Namespace) -> int:
    from solo_diversity.builders.source.build import build_source_sets  # numpy, h5py: on run

    start = time.perf_counter()
    written = build_source_sets(
        args.imagenet,
        args.out,
        seed=args.seed,
        a_out_size=args.a_out_size,
        a_out_classes=args.a_out_classes,
    )
    for path in written.values():
        report_written(path)
    print(f"built {len(written)} source sets in {time.perf_counter() - start:.1f} s")
    return 0


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
