# SPDX-License-Identifier: MIT
"""End-to-end pretraining throughput (``scripts/bench_pretrain.sh``): images/s of budgeted SimCLR.

This module owns the benchmark's rows and its report. Every row trains SimCLR with ``simclr_div``'s
hyperparameters and the model of a ``--preset`` (:mod:`.bench_model`): ``cifar`` (the default:
ResNet-18 with solo-learn's CIFAR stem, 32 px crops of solo-learn's CIFAR symmetric preset) or
``mini_paper`` (the mini paper's ``data=fashion_mnist`` model: small_cnn, 28 px crops of scale 0.2,
bf16-mixed, channels_last, the batch augment backend). Each row runs ``warmup + steps + 1``
optimizer steps on the same synthetic corpus at the preset's side
(:func:`~bench.corpus.build_small_corpus`) and times steps ``warmup + 1 .. warmup + steps`` with
:class:`~.bench_pretrain_timing.StepClock`; the one step after the window carries the budget's
checkpoint save, which is reported as a one-off. Our rows go through
:func:`~solo_diversity.run.pretrain.run_pretrain` with the whole machinery on (budget plan, ledger,
visit ledger, epoch sampler, checkpointer, guards): ``data.augment_backend`` torchvision, fast and
batch, and ``data.format=dali`` on the CPU (and on the GPU: row ``dali_gpu``). Row (a) trains the
same method class with the same Trainer arguments and loggers
(:func:`~solo_diversity.run.pretrain.fit_arguments`) on solo-learn's CIFAR pretraining loader as
the loader benchmark rebuilds it (:mod:`bench.loader_baseline`), with none of our callbacks. Row
``bare`` is the ceiling: the same model's forward, loss, backward and optimizer step alone on fixed
random crops (:func:`~.bench_model.time_bare`); every row's rate is reported over it (``x bare``);
end to end should reach at least 70% of it on ``mini_paper``. A row that cannot run says why and the
others still run. Usage: ``python -m bench.pretrain --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from bench import pretrain_timing as timing
from bench.model import PRESETS, Preset, time_bare
from solo_diversity.experiments.cells import default_configs_dir

ROWS: dict[str, str] = {
    "a": "(a) solo-learn's loader, plain Trainer",
    "torchvision": "ours, augment_backend=torchvision",
    "fast": "ours, augment_backend=fast",
    "batch": "ours, augment_backend=batch",
    "dali": "ours, data.format=dali (CPU)",
    "dali_gpu": "ours, data.format=dali (GPU)",
    "bare": "bare model step (no loader, no Lightning)",
}
OURS = ("torchvision", "fast", "batch", "dali", "dali_gpu")  # through run_pretrain
BACKENDS = ("torchvision", "fast", "batch")
SHARE_LIMIT = 0.01  # the budget machinery must cost under 1% of a step
BARE_TARGET = 0.70  # end to end should reach 70% of the bare model's rate


@dataclass(frozen=True)
class BenchSettings:
    """One benchmark's shape; every row runs it unchanged."""

    steps: int = 10
    warmup: int = 2
    batch_size: int = 256
    workers: int = 2
    num_images: int = 10_000
    accelerator: str = "auto"
    corpus: Path = Path("datasets/bench_small_10000")
    seed: int = 5
    preset: str = "cifar"

    @property
    def total_steps(self) -> int:
        """Steps each run trains: warm-up, timed, and one tail step that carries the save."""
        return self.warmup + self.steps + 1

    def resolved_accelerator(self) -> str:
        """``auto`` is ``gpu`` when one is visible, else ``cpu``."""
        if self.accelerator == "auto":
            return "gpu" if torch.cuda.is_available() else "cpu"
        return self.accelerator

    @property
    def model(self) -> Preset:
        """The preset every row trains (:data:`~.bench_model.PRESETS`)."""
        return PRESETS[self.preset]


@dataclass
class RowResult:
    """One row: throughput, and the machinery's cost per component (ours only)."""

    row: str
    label: str
    images_per_s: float = float("nan")
    ms_per_step: float = float("nan")
    median_ms_per_step: float = float("nan")
    main_cpu_ms_per_step: float = float("nan")
    ratio_to_a: float = float("nan")
    ratio_to_bare: float = float("nan")
    data_wait_ms: float = float("nan")
    after_transfer_ms: float = float("nan")
    machinery_ms: dict[str, float] = field(default_factory=dict)
    machinery_share: float = float("nan")
    one_off_ms: dict[str, float] = field(default_factory=dict)
    hooks_ms: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    error: str = ""  # the whole message of a failed row (its status has the last line)


def compose_cfg(s: BenchSettings, index_path: Path, row: str, workdir: Path) -> DictConfig:
    """``simclr_div`` for one row with the preset's overrides, composed as ``main_pretrain.py``
    composes it; the data paths point at the synthetic corpus.
    """
    backend = row if row in BACKENDS else s.model.backend
    overrides = [
        *s.model.overrides,
        "data.dataset=bench_small",
        f"data.train_path={index_path}",
        "data.val_path=null",
        f"data.format={'dali' if row.startswith('dali') else 'h5'}",
        f"data.num_workers={s.workers}",
        f"++data.augment_backend={backend}",
        f"++data.index_cache={workdir / 'index_cache'}",
        f"optimizer.batch_size={s.batch_size}",
        f"++budget.C={s.total_steps * s.batch_size}",
        "scheduler.warmup_epochs=0",  # a few timed steps: a warmup would outlast the run
        f"checkpoint.dir={workdir / 'trained_models'}",
        f"accelerator={s.resolved_accelerator()}",
        "devices=1",
        f"++dali.device={'gpu' if row == 'dali_gpu' else 'cpu'}",
        f"dali.num_threads={max(1, s.workers)}",  # --workers 0 loads in the main process
        f"++seed={s.seed}",
        "++profiler=simple",
        "++enable_progress_bar=false",
        "++enable_model_summary=false",
    ]
    with initialize_config_dir(config_dir=str(default_configs_dir().resolve()), version_base="1.2"):
        return compose(config_name="simclr_div", overrides=overrides)


def _result(
    row: str, clock: timing.StepClock, s: BenchSettings, extra: dict[str, float]
) -> RowResult:
    costs = timing.step_costs(clock, extra)
    return RowResult(row, ROWS[row], images_per_s=s.steps * s.batch_size / clock.seconds, **costs)


def run_ours(s: BenchSettings, index_path: Path, row: str, workdir: Path) -> RowResult:
    """One of our rows through :func:`run_pretrain`, with the whole budget machinery on."""
    from solo_diversity.data import check_backend
    from solo_diversity.errors import UserError
    from solo_diversity.run.pretrain import run_pretrain

    if row in BACKENDS:
        check_backend(row)  # UserError when this backend is not registered (yet)
    if row == "dali_gpu" and not torch.cuda.is_available():
        raise UserError("no GPU visible")
    clock, sampler = timing.StepClock(s.warmup, s.steps), timing.SamplerCost()
    run_pretrain(compose_cfg(s, index_path, row, workdir), callbacks=[clock, sampler])
    return _result(row, clock, s, sampler.ms)


def run_baseline(s: BenchSettings, index_path: Path, npy_path: Path, workdir: Path) -> RowResult:
    """Row (a): the same method and Trainer arguments, fed by solo-learn's CIFAR loader as the
    loader benchmark rebuilds it (:mod:`bench.loader_baseline`), with the same
    loggers and no callback but the clock.
    """
    from bench.corpus import SMALL_LABELS_NAME
    from bench.loader_baseline import (
        ArrayCIFAR,
        solo_loader,
        solo_multi_view,
        with_index,
    )
    from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg
    from solo_diversity.config.run_config import (
        PRETRAIN_GPU_HINT,
        logger_settings,
        resolve_hardware,
        trainer_keys,
    )
    from solo_diversity.data import dataset_stats, parse_augmentations
    from solo_diversity.methods import get_method
    from solo_diversity.run.loggers import build_loggers
    from solo_diversity.run.pretrain import fit_arguments

    cfg = resolve_pretrain_cfg(compose_cfg(s, index_path, "a", workdir))
    images = np.load(npy_path)
    labels = np.load(npy_path.with_name(SMALL_LABELS_NAME))
    pl.seed_everything(int(cfg.seed), workers=True)
    cfg, plan = attach_plan(
        cfg,
        dataset_size=len(images),
        subset_size=len(images),
        num_classes=int(labels.max()) + 1,
        world_size=1,
    )
    model = get_method(str(cfg.method))(cfg)
    if model.settings.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    specs = parse_augmentations(OmegaConf.to_container(cfg.augmentations, resolve=True))  # type: ignore[arg-type]
    views = solo_multi_view(specs, *dataset_stats(str(cfg.data.dataset)))
    loader = solo_loader(with_index(ArrayCIFAR)(images, labels, views), s.batch_size, s.workers)
    clock = timing.StepClock(s.warmup, s.steps)
    loggers = build_loggers(logger_settings(cfg), "baseline")  # the same CSV logger as our runs
    hardware = resolve_hardware(cfg, PRETRAIN_GPU_HINT)
    trainer = pl.Trainer(**fit_arguments(hardware, trainer_keys(cfg), plan, [clock], loggers))
    trainer.fit(model, train_dataloaders=loader)
    return _result("a", clock, s, {})


def run_bare(s: BenchSettings, index_path: Path, workdir: Path) -> RowResult:
    """The ceiling: the model a run builds, stepped alone on fixed random crops
    (:func:`~.bench_model.time_bare`), on the GPU when the rows train there.
    """
    device = "cuda" if s.resolved_accelerator() == "gpu" else "cpu"
    cfg = compose_cfg(s, index_path, "bare", workdir)
    bare = time_bare(cfg, num_images=s.num_images, warmup=s.warmup, steps=s.steps, device=device)
    return RowResult(
        "bare",
        ROWS["bare"],
        images_per_s=bare.images_per_s,
        ms_per_step=bare.ms_per_step,
        median_ms_per_step=bare.median_ms_per_step,
        main_cpu_ms_per_step=bare.main_cpu_ms_per_step,
    )


def _run_row(
    s: BenchSettings, row: str, index_path: Path, npy_path: Path, workdir: Path
) -> RowResult:
    if row == "a":
        return run_baseline(s, index_path, npy_path, workdir)
    if row == "bare":
        return run_bare(s, index_path, workdir)
    return run_ours(s, index_path, row, workdir)


def run(s: BenchSettings, rows: Sequence[str], out: Path) -> dict[str, Any]:
    """Build (or reuse) the corpus, run each row, write and return the results."""
    from bench.corpus import build_small_corpus
    from solo_diversity.errors import UserError

    index_path, npy_path = build_small_corpus(s.corpus, s.num_images, s.model.size, seed=0)
    results: list[RowResult] = []
    profiler_log = logging.getLogger("lightning.pytorch.profilers")
    level = profiler_log.level
    profiler_log.setLevel(logging.WARNING)  # no profiler summary after each row
    for row in rows:
        with tempfile.TemporaryDirectory(prefix=f"bench_pretrain_{row}_") as tmp:
            try:
                result = _run_row(s, row, index_path, npy_path, Path(tmp))
            except (UserError, ImportError) as err:
                result = RowResult(row, ROWS[row], status=f"not available: {err}")
            except Exception as err:  # noqa: BLE001 - a broken row is reported, the others run
                status = f"failed: {type(err).__name__}: {_last_line(str(err))}"
                result = RowResult(row, ROWS[row], status=status, error=str(err))
        results.append(result)
    profiler_log.setLevel(level)
    base, bare = (_rate_of(results, row) for row in ("a", "bare"))
    for result in results:
        result.ratio_to_a = result.images_per_s / base
        result.ratio_to_bare = result.images_per_s / bare
    ours = [r.machinery_share for r in results if r.row in OURS and r.status == "ok"]
    report = {
        "settings": {**asdict(s), "corpus": str(s.corpus), "accelerator": s.resolved_accelerator()},
        "preset": s.preset,
        "model": s.model.model,
        "budget_C": s.total_steps * s.batch_size,
        "timed": f"steps {s.warmup + 1}..{s.warmup + s.steps} of {s.total_steps}",
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "share_limit": SHARE_LIMIT,
        "bare_target": BARE_TARGET,
        "max_machinery_share": max(ours) if ours else None,
        "images_per_s": "source images per second; each yields 2 crops",
        "rows": [_json_row(r) for r in results],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _rate_of(results: Sequence[RowResult], row: str) -> float:
    """images/s of ``row`` (NaN when it did not run or failed: its ratios are then NaN)."""
    return next((r.images_per_s for r in results if r.row == row), float("nan"))


def _last_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _json_row(result: RowResult) -> dict[str, Any]:
    """A row as JSON: NaN (not measured) becomes null."""
    return {k: None if isinstance(v, float) and v != v else v for k, v in asdict(result).items()}


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or value != value else format(value, spec)


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


def print_report(report: Mapping[str, Any]) -> None:
    """The throughput table and the machinery breakdown (rich tables)."""
    from rich.table import Table

    from solo_diversity.console import console

    rows = report["rows"]
    table = Table(
        title=f"Pretraining throughput ({report['model']}; {report['timed']})",
        caption="img/s: source images (2 crops each); median, data wait, after transfer: ms/step",
    )
    cols = "row|img/s|x (a)|x bare|ms/step|median|data wait|after transfer|machinery %|status"
    for col in cols.split("|"):
        table.add_column(col, justify="left" if col in ("row", "status") else "right")
    for r in rows:
        table.add_row(
            r["label"],
            _fmt(r["images_per_s"], ".1f"),
            _fmt(r["ratio_to_a"], ".2f"),
            _fmt(r["ratio_to_bare"], ".2f"),
            _fmt(r["ms_per_step"], ".1f"),
            _fmt(r["median_ms_per_step"], ".1f"),
            _fmt(r["data_wait_ms"], ".1f"),
            _fmt(r["after_transfer_ms"], ".1f"),
            _fmt(_percent(r["machinery_share"]), ".3f") if r["row"] in OURS else "-",
            r["status"],
        )
    console.print(table)
    ours = [r for r in rows if r["row"] in OURS and r["status"] == "ok"]
    if ours:
        console.print(timing.machinery_table(ours))
        worst, limit = report["max_machinery_share"], report["share_limit"]
        verdict = "under" if worst < limit else "OVER"
        console.print(
            f"Machinery share, worst row: {100 * worst:.3f} % "
            f"({verdict} the {100 * limit:.0f} % limit)"
        )
    for line in bare_lines(rows, report["bare_target"]):
        console.print(line)


def bare_lines(rows: Sequence[Mapping[str, Any]], target: float) -> list[str]:
    """One line per row of ours that ran next to the bare model: its share of the bare rate."""
    return [
        f"end-to-end ({r['row']}) reaches {100 * r['ratio_to_bare']:.0f}% of the bare model rate "
        f"(target {100 * target:.0f}%)"
        for r in rows
        if r["row"] in OURS and r["ratio_to_bare"] is not None
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (``--quick``: batch 32, 4 steps after 1 warm-up, 256 images)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 2)")
    parser.add_argument("--batch-size", type=int, default=None, help="per step (default 256)")
    parser.add_argument("--workers", type=int, default=2, help="loader workers / DALI threads")
    parser.add_argument("--num-images", type=int, default=None, help="corpus size (10000)")
    parser.add_argument("--accelerator", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="cifar", help="the model")
    parser.add_argument("--rows", help=f"comma list of {', '.join(ROWS)} (default: the preset's)")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder")
    parser.add_argument("--out", type=Path, default=Path("results/bench_pretrain.json"))
    parser.add_argument("--quick", action="store_true", help="tiny run for tests and development")
    args = parser.parse_args(argv)
    args.rows = args.rows or ",".join(PRESETS[args.preset].rows)
    unknown = [r for r in args.rows.split(",") if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {', '.join(unknown)}; valid: {', '.join(ROWS)}")
    for flag in ("steps", "warmup", "batch_size", "workers", "num_images"):
        low = 0 if flag == "workers" else 1
        if getattr(args, flag) is not None and getattr(args, flag) < low:
            parser.error(f"--{flag.replace('_', '-')} must be >= {low}, got {getattr(args, flag)}")
    return args


def settings_of(args: argparse.Namespace) -> BenchSettings:
    """Settings from the flags: ``--quick`` changes the defaults, explicit flags win."""
    quick = dict(steps=4, warmup=1, batch_size=32, num_images=256) if args.quick else {}
    picked = {
        key: getattr(args, key) if getattr(args, key) is not None else quick.get(key)
        for key in ("steps", "warmup", "batch_size", "num_images")
    }
    size = PRESETS[args.preset].size
    name = f"bench_small_{picked['num_images'] or 10_000}" + ("" if size == 32 else f"_{size}px")
    return BenchSettings(
        **{k: v for k, v in picked.items() if v is not None},
        workers=args.workers,
        accelerator=args.accelerator,
        corpus=args.corpus or Path("datasets") / name,
        preset=args.preset,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    args = parse_args(argv)
    report = run(settings_of(args), args.rows.split(","), args.out)
    print_report(report)
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
