# SPDX-License-Identifier: MIT
"""The ``solo-div`` command: one sub-command per concern, each registered by its own package.

solo-div plan --C 50e6 --dataset cifar100 --fractions 0.1 0.5 1
solo-div index build|info|union|subset|filter|exclude ...
solo-div build source --imagenet IN.h5 --out DIR --seed 0
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from solo_diversity import doctor
from solo_diversity.budget.plan import EPOCH_KEY_READINGS, check_switches, plan_budget
from solo_diversity.builders import cli as builders_cli
from solo_diversity.distances import cli as distance_cli
from solo_diversity.entry import exit_on_user_error
from solo_diversity.errors import UserError
from solo_diversity.experiments import cli as experiment_cli
from solo_diversity.index import cli as index_cli
from solo_diversity.index.catalog import train_size
from solo_diversity.prepare import cli as prepare_cli
from solo_diversity.report import cli as report_cli
from solo_diversity.report import ledger_cli


def _plan(args: argparse.Namespace) -> int:
    bad = [f for f in args.fractions if not 0 < f <= 1]
    if bad:
        raise UserError(f"--fractions {bad[0]:g} must be in (0, 1]: a share of the dataset")
    from solo_diversity.console import console, plan_table  # rich: not needed to parse arguments

    n_full = args.dataset_size or train_size(args.dataset)
    global_batch = args.batch_size * args.devices * args.nodes * args.accumulate
    rows, warnings = [], []
    for fraction in args.fractions:
        n = max(1, int(fraction * n_full + 0.5))
        plan = plan_budget(
            args.C,
            n,
            global_batch,
            N_ref=n_full,
            mode=args.mode,
            epochs=args.epochs,
            epoch_keys=args.epoch_keys,
        )
        switches = {"warmup_steps": plan.epochs_to_steps(args.warmup_epochs)}
        found = check_switches(switches, plan.steps, allow_late=args.allow_late_switches)
        warnings += [f"warning ({fraction:g}): {line}" for line in found]
        rows.append((f"{fraction:g}", plan, switches))
    title = (
        f"Budget plan: {args.dataset or 'dataset'} (N_ref={n_full:,}), G={global_batch}, "
        f"epoch keys counted in {args.epoch_keys} epochs"
    )
    console.print(plan_table(rows, title=title, notes=warnings))
    return 0


def _register_plan(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plan", help="print N, E, D, steps and converted schedules for fractions"
    )
    p.add_argument("--C", required=False, default=None, help="budget in images, e.g. 50e6")
    p.add_argument("--dataset", default=None, help="a known dataset (sets the full size)")
    p.add_argument("--dataset-size", type=int, default=None, help="images in the full dataset")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.5, 1.0])
    p.add_argument("--batch-size", type=int, default=256, help="per-device batch")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--accumulate", type=int, default=1)
    p.add_argument("--warmup-epochs", type=float, default=10.0, help="epochs of LR warmup")
    p.add_argument(
        "--epoch-keys",
        choices=list(EPOCH_KEY_READINGS),
        default="subset",
        help="count epoch keys in epochs of the subset (solo-learn's) or of the full dataset",
    )
    p.add_argument(
        "--allow-late-switches",
        action="store_true",
        help="print a warmup that lands past the last step instead of refusing it",
    )
    p.add_argument("--mode", choices=["images", "epochs"], default="images")
    p.add_argument("--epochs", type=float, default=None, help="E for --mode epochs")
    p.set_defaults(func=_plan)


REGISTRARS = [
    _register_plan,
    index_cli.register,
    builders_cli.register,
    distance_cli.register,
    doctor.register,
    ledger_cli.register,
    experiment_cli.register,
    report_cli.register,
    prepare_cli.register,
]


def build_parser() -> argparse.ArgumentParser:
    """The full ``solo-div`` parser."""
    parser = argparse.ArgumentParser(prog="solo-div", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``solo-div``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "plan" and args.dataset is None and args.dataset_size is None:
        print("error: give --dataset or --dataset-size", file=sys.stderr)
        return 2
    try:
        with exit_on_user_error():
            return int(args.func(args))
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
