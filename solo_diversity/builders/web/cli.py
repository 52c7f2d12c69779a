# SPDX-License-Identifier: MIT
"""``solo-div build web``: the command line of :mod:`solo_diversity.builders.web`.

:func:`add_web_parser` adds the sub-command to the ``build`` group; the handler resolves the
arguments once into a :class:`~solo_diversity.builders.web.build.WebSettings` and runs the stages.
Examples::

    solo-div build web --classes in100.txt --out web/ --per-class 650 --engines ddg,flickr,bing
    solo-div build web --classes in100.txt --out web/ --reference imagenet_val.h5 --index web.h5
    solo-div build web ... --stage query        # only the URL list (then download elsewhere)

Rerunning the same command resumes: finished queries, download shards and checks are kept.
Credentials come from the environment: ``FLICKR_API_KEY``/``FLICKR_API_SECRET``, ``BING_API_KEY``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from solo_diversity.builders.web.engines import (
    DEFAULT_INTERVAL,
    ENGINES,
    EngineSettings,
    parse_engines,
)
from solo_diversity.builders.web.pacing import Backoff
from solo_diversity.builders.web.queries import read_class_list, read_hypernyms
from solo_diversity.entry import group_main
from solo_diversity.errors import UserError

if TYPE_CHECKING:  # the build pulls pyarrow and numpy: loaded only when the command runs
    from solo_diversity.builders.web.build import WebResult, WebSettings


def parse_rates(items: Sequence[str]) -> dict[str, float]:
    """``["ddg=2", "bing=0.5"]`` -> seconds between requests per engine (defaults for the rest)."""
    rates = dict(DEFAULT_INTERVAL)
    for item in items:
        name, _, value = item.partition("=")
        if name not in ENGINES or not value:
            raise UserError(
                f"--interval {item!r}: give ENGINE=SECONDS, ENGINE in {', '.join(ENGINES)}"
            )
        try:
            rates[name] = float(value)
        except ValueError:
            raise UserError(f"--interval {item!r}: {value!r} is not a number of seconds") from None
        if rates[name] < 0:
            raise UserError(f"--interval {item!r} must be >= 0 seconds")
    return rates


def _stages(text: str) -> tuple[str, ...]:
    from solo_diversity.builders.web.build import STAGES

    if text == "all":
        return STAGES
    chosen = tuple(s.strip() for s in text.split(","))
    if not chosen or any(s not in STAGES for s in chosen):
        raise UserError(f"--stage {text!r}: choose all, or some of {', '.join(STAGES)}")
    return chosen


def resolve(args: argparse.Namespace) -> WebSettings:
    """The build's settings from the parsed arguments (every check in one place)."""
    from solo_diversity.builders.web.build import WebSettings
    from solo_diversity.builders.web.download import DownloadSettings

    flags = (
        "per_class",
        "processes",
        "threads",
        "timeout",
        "shard_size",
        "check_threads",
        "search_tries",
    )
    for flag in flags:
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.retries < 0 or args.min_size < 0:
        raise UserError("--retries and --min-size must be >= 0")
    if not 0 <= args.hash_distance < 64:
        raise UserError(f"--hash-distance must be in 0..63, got {args.hash_distance}")
    if args.collect_factor < 1:
        raise UserError(f"--collect-factor must be >= 1, got {args.collect_factor}")
    hypernyms = read_hypernyms(args.hypernyms) if args.hypernyms else None
    engines = parse_engines(args.engines)
    rates = parse_rates(args.interval)
    endpoints = {"ddg": args.ddg_url, "flickr": args.flickr_url, "bing": args.bing_url}
    return WebSettings(
        classes=read_class_list(args.classes, hypernyms),
        engines=engines,
        per_class=args.per_class,
        collect_factor=args.collect_factor,
        hash_distance=args.hash_distance,
        min_size=args.min_size,
        references=tuple(args.reference),
        seed=args.seed,
        dataset=args.dataset,
        check_threads=args.check_threads,
        engine_settings={
            n: EngineSettings(
                endpoint=endpoints[n],
                interval=rates[n],
                backoff=Backoff(attempts=args.search_tries),
            )
            for n in engines
        },
        download=DownloadSettings(
            processes=args.processes,
            threads=args.threads,
            timeout=args.timeout,
            retries=args.retries,
            shard_size=args.shard_size,
            distributor=args.distributor,
        ),
    )


def report(result: WebResult) -> str:
    """One line for the console: counts by status, images/s, the index written."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    line = f"web: {counts} in {result.seconds:.1f} s ({result.images_per_second:.1f} images/s)"
    return f"{line}\nwrote {result.index}" if result.index is not None else line


def run_web(args: argparse.Namespace) -> int:
    """Run or resume the build; Ctrl-C stops it cleanly and a rerun resumes."""
    from solo_diversity.builders.web.build import build

    settings = resolve(args)
    try:
        result = build(args.out, settings, index_path=args.index, stages=_stages(args.stage))
    except KeyboardInterrupt:
        print("build web stopped; run the same command again to resume", file=sys.stderr)
        return 130
    print(report(result))
    return 0


def add_web_parser(build_subparsers: argparse._SubParsersAction) -> None:
    """Add ``web`` to the ``solo-div build`` sub-parsers.

    Args:
        build_subparsers: the ``build`` group's sub-parsers.
    """
    p = build_subparsers.add_parser(
        "web", help="crawl DuckDuckGo/Flickr/Bing for class names, dedupe, select, index"
    )
    p.add_argument("--classes", required=True, help="name, or wnid<TAB>name[<TAB>hypernym] lines")
    p.add_argument("--hypernyms", help="key<TAB>hypernym lines (key: class name or WNID)")
    p.add_argument("--out", required=True, help="build folder (URL list, downloads, status)")
    p.add_argument("--per-class", type=int, default=650, help="images kept per class (650)")
    p.add_argument("--engines", default="ddg,flickr,bing", help="comma list, in priority order")
    p.add_argument(
        "--collect-factor", type=float, default=1.6, help="results asked / kept (1.6: 100k for 65k)"
    )
    p.add_argument(
        "--reference", action="append", default=[], help="index whose images must not leak (repeat)"
    )
    p.add_argument("--hash-distance", type=int, default=4, help="phash bits that count as same (4)")
    p.add_argument("--min-size", type=int, default=64, help="smallest shorter side in px (64)")
    p.add_argument("--index", help="the index to write (default OUT/index.h5)")
    p.add_argument("--dataset", default="web", help="dataset name recorded in the index")
    p.add_argument("--seed", type=int, default=0, help="seed of the index shuffle")
    p.add_argument("--stage", default="all", help="all, or some of query,download,index")
    p.add_argument(
        "--interval", action="append", default=[], help="ENGINE=SECONDS between requests"
    )
    for name in ENGINES:
        p.add_argument(f"--{name}-url", help=f"{name} endpoint (a mirror, or a test server)")
    p.add_argument(
        "--search-tries",
        type=int,
        default=Backoff().attempts,
        help=f"tries per search request, with backoff, before giving up ({Backoff().attempts})",
    )
    p.add_argument("--processes", type=int, default=1, help="img2dataset processes (1)")
    p.add_argument("--threads", type=int, default=32, help="img2dataset threads per process (32)")
    p.add_argument("--timeout", type=int, default=10, help="seconds per image download (10)")
    p.add_argument("--retries", type=int, default=1, help="download retries per image (1)")
    p.add_argument("--shard-size", type=int, default=1000, help="URLs per img2dataset shard")
    p.add_argument(
        "--distributor", default="multiprocessing", help="img2dataset: multiprocessing|pyspark|ray"
    )
    p.add_argument("--check-threads", type=int, default=4, help="threads decoding/hashing (4)")
    p.set_defaults(func=run_web)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m solo_diversity.builders.web.cli build web ...``."""
    return group_main("build", add_web_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
