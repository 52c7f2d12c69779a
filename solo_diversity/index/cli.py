# SPDX-License-Identifier: MIT
"""The ``solo-div index build|info|relocate`` sub-commands (and the set algebra).

:func:`register` adds them to the ``solo-div`` argparse sub-parsers; each sets ``func`` on the
parsed namespace to a handler ``func(args) -> int`` (the exit code) that the top-level CLI calls.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from solo_diversity.entry import standalone_main
from solo_diversity.errors import UserError
from solo_diversity.index.algebra_cli import add_set_algebra

if TYPE_CHECKING:
    from solo_diversity.index.reader import ImageIndex

# The keys of :data:`solo_diversity.index.build.SOURCES`, sorted (a test keeps them equal): the
# registry's module loads numpy and h5py, which ``--help`` does not need.
SOURCE_NAMES = ("digits", "fashion_mnist", "flat", "folder", "list", "torchvision")


@contextlib.contextmanager
def _stop_cleanly(out: str) -> Iterator[None]:
    """SIGTERM and Ctrl-C end a build through Python, so its working files are removed."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt:
        raise UserError(f"index build stopped; nothing was written to {out}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _build(args: argparse.Namespace) -> int:
    options = {
        "list_path": args.list,
        "name": args.name,
        "path_column": args.path_column,
        "label_column": args.label_column,
    }
    from solo_diversity.index.build import build_index  # numpy, h5py: only when a build runs

    with _stop_cleanly(args.out):
        out = build_index(
            args.source,
            args.out,
            seed=args.seed,
            dataset=args.dataset,
            split=args.split,
            root=args.root,
            embed=args.embed,
            **{k: v for k, v in options.items() if v is not None},
        )
    print(f"wrote {out}")
    return _info(argparse.Namespace(index=str(out)))


def _info(args: argparse.Namespace) -> int:
    import numpy as np  # with h5py (open_index): only when an index is read

    from solo_diversity.index.reader import open_index

    index = open_index(args.index)
    classes = f"{index.num_classes}" if index.has_labels else "0 (unlabeled)"
    rows = [
        ("path", str(index.path)),
        ("dataset", index.dataset),
        ("split", index.split),
        ("kind", index.kind),
        ("N", str(len(index))),
        ("classes", classes),
        ("seed", str(index.seed)),
        ("source", index.source),
        ("root", _root_text(index)),
        ("fingerprint", index.fingerprint),
        ("created", index.created),
    ]
    if index.has_origin:
        counts = np.bincount(index.origins(), minlength=len(index.origin_sources))
        parts = [f"{n} from {o['path']}" for n, o in zip(counts, index.origin_sources, strict=True)]
        rows.append(("origins", "; ".join(parts)))
    for key, value in rows:
        print(f"{key:<12} {value}")
    return 0


def _root_text(index: ImageIndex) -> str:
    if index.root is None:
        return "-"
    from solo_diversity.index.reader import check_root  # loaded already: index is open

    try:
        check_root(index)
    except UserError:
        return f"{index.root} (missing: see `solo-div index relocate`)"
    return str(index.root)


def _relocate(args: argparse.Namespace) -> int:
    from solo_diversity.index.writer import relocate_root  # h5py: only when the command runs

    root = relocate_root(args.index, args.new_root)
    print(f"{args.index}: root is now {root}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``index build|info|relocate`` and ``union|subset|filter|exclude`` to ``solo-div``.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    """
    index = subparsers.add_parser("index", help="build or inspect a shuffled HDF5 index")
    commands = index.add_subparsers(dest="index_command", required=True)

    build = commands.add_parser("build", help="build a shuffled index from a source")
    build.add_argument("source", choices=list(SOURCE_NAMES), help="where the entries come from")
    build.add_argument("out", help="the .h5 index to write (replaced atomically)")
    build.add_argument("--root", help="folder to scan / paths' base / download or IDX folder")
    build.add_argument("--list", help="list file (.csv with a path column, or one path a line)")
    build.add_argument("--name", help="torchvision dataset: cifar10, cifar100, fashion_mnist")
    build.add_argument("--path-column", help="CSV column of paths (default: path)")
    build.add_argument("--label-column", help="CSV column of labels (default: label)")
    build.add_argument("--dataset", help="dataset name to record (default: from the source)")
    build.add_argument("--split", default="train", help="split name (default: train)")
    build.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")
    build.add_argument(
        "--embed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="store encoded image bytes instead of paths",
    )
    build.set_defaults(func=_build)

    info = commands.add_parser("info", help="print what an index holds")
    info.add_argument("index", help="the .h5 index")
    info.set_defaults(func=_info)

    relocate = commands.add_parser(
        "relocate", help="point a paths index at the new place of its image folder"
    )
    relocate.add_argument("index", help="the .h5 index (only its root attribute changes)")
    relocate.add_argument("new_root", help="the folder that now holds the indexed images")
    relocate.set_defaults(func=_relocate)
    add_set_algebra(commands)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``index ...`` standalone (``python -m solo_diversity.index.cli index info x.h5``)."""
    return standalone_main(register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
