# SPDX-License-Identifier: MIT
"""Timing of the pretraining benchmark: the step clock and the budget machinery's share of a step.

This module owns what ``scripts/bench_pretrain.sh`` measures inside one Lightning run.
:class:`StepClock` is a callback that takes ``perf_counter`` at the end of the warm-up step and of
the last timed step, and snapshots Lightning's :class:`~lightning.pytorch.profilers.SimpleProfiler`
(``profiler=simple``) at both points, so every profiled action (``[Callback]BudgetLedger.
on_train_batch_end``, ``[_TrainingEpochLoop].train_dataloader_next``, ...) is summed over exactly
the timed steps. :func:`machinery_components` groups those sums into our callbacks and data-module
hooks in ms per step, :class:`SamplerCost` times the epoch sampler's per-batch work in the main
process (:func:`sampler_bookkeeping_ms`), :func:`machinery_share` is their total over the step
time, and :func:`step_costs` gathers a finished run's figures.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from solo_diversity.data.sampler import Cursor, EpochSampler, StepBatches

#: Profiler actions that run our code in the training loop: callback and data-module hooks.
_HOOK_ACTION = re.compile(
    r"^\[(?P<kind>Callback|LightningDataModule)\](?P<owner>[^.]+)\.(?P<hook>\w+)$"
)
#: The profiler's action for the main process waiting on the loader (a diagnostic, not machinery).
DATA_WAIT_ACTION = "[_TrainingEpochLoop].train_dataloader_next"
#: The benchmark's own callbacks: measurement, not machinery.
BENCH_CALLBACKS = ("StepClock", "SamplerCost")
#: Data-module hooks that move and (``data.augment_backend=batch`` on a GPU) augment the batch:
#: they are the data path itself, not budget machinery.
TRANSFER_HOOKS = frozenset(
    {"on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"}
)


class StepClock(pl.Callback):
    """Wall time and profiled actions over optimizer steps ``warmup + 1 .. warmup + steps``.

    The window opens in ``on_train_batch_end`` of step ``warmup`` and closes in that of step
    ``warmup + steps`` (accumulate_grad_batches = 1: one batch is one step); on a GPU both ends
    synchronize the device first, and only they do. Actions the trainer's profiler records in
    between are summed per action name into :attr:`window_seconds`; every recording of the run
    (setup, the last step's save, the end) is in :attr:`run_seconds`.

    Args:
        warmup: steps before the window (worker start-up, first-batch allocations).
        steps: timed steps.

    """

    def __init__(self, warmup: int, steps: int) -> None:
        if warmup < 1 or steps < 1:
            raise ValueError(f"warmup and steps must be >= 1, got warmup={warmup} steps={steps}")
        self.warmup, self.steps = warmup, steps
        self.start: float | None = None
        self.end: float | None = None
        self.step_ends: list[float] = []
        self.cpu_start = 0.0
        self.cpu_seconds = float("nan")  # CPU time of the training process (all its threads)
        self._counts: dict[str, int] = {}
        self.window_seconds: dict[str, float] = {}
        self.run_seconds: dict[str, float] = {}

    @property
    def state_key(self) -> str:
        return "StepClock"

    @staticmethod
    def _recorded(trainer: pl.Trainer) -> Mapping[str, Sequence[float]]:
        return getattr(getattr(trainer, "profiler", None), "recorded_durations", {})

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        if step in (self.warmup, self.warmup + self.steps) and pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # the window holds finished GPU work only
        now = time.perf_counter()
        if step == self.warmup:
            self.start, self.step_ends, self.cpu_start = now, [now], time.process_time()
            self._counts = {k: len(v) for k, v in self._recorded(trainer).items()}
        elif self.warmup < step <= self.warmup + self.steps and self.start is not None:
            self.step_ends.append(now)
            if step == self.warmup + self.steps:
                self.end, self.cpu_seconds = now, time.process_time() - self.cpu_start
                self.window_seconds = window_sums(self._counts, self._recorded(trainer))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run_seconds = {k: float(sum(v)) for k, v in self._recorded(trainer).items()}

    @property
    def median_step_ms(self) -> float:
        """Median wall time of one timed step, ms: robust to a burst of load on a shared machine."""
        return (
            1000.0 * float(np.median(np.diff(self.step_ends))) if len(self.step_ends) > 1 else 0.0
        )

    @property
    def seconds(self) -> float:
        """Wall time of the timed steps; raises when the run stopped before the window closed."""
        if self.start is None or self.end is None:
            raise RuntimeError(
                f"the run ended before step {self.warmup + self.steps}: raise its budget"
            )
        return self.end - self.start


def window_sums(
    counts_before: Mapping[str, int], recorded: Mapping[str, Sequence[float]]
) -> dict[str, float]:
    """Seconds per profiled action recorded after a snapshot of the recording counts.

    Args:
        counts_before: ``{action: number of durations recorded}`` at the window's start.
        recorded: the profiler's ``{action: [durations in s]}`` at its end.

    Returns:
        ``{action: seconds}`` over the durations recorded in between.

    """
    return {
        action: float(sum(durations[counts_before.get(action, 0) :]))
        for action, durations in recorded.items()
        if len(durations) > counts_before.get(action, 0)
    }


def machinery_components(
    action_seconds: Mapping[str, float], steps: int, *, exclude: Collection[str] = BENCH_CALLBACKS
) -> dict[str, float]:
    """Milliseconds per step of each callback and data module whose hooks ran in the window.

    Args:
        action_seconds: ``{profiler action: seconds}`` over the timed steps (:func:`window_sums`).
        steps: timed steps.
        exclude: owners (callback ``state_key`` or data-module class) not counted: by default
            :data:`BENCH_CALLBACKS`.

    Returns:
        ``{owner: ms per step}``, owners sorted by cost, highest first. A callback is named by its
        ``state_key`` (``BudgetLedger``), a data module as ``DataModule:<class>``; the data
        module's :data:`TRANSFER_HOOKS` are left out (:func:`transfer_ms`).

    """
    totals: dict[str, float] = {}
    for action, seconds in action_seconds.items():
        match = _HOOK_ACTION.match(action)
        if match is None or match["owner"] in exclude or _is_transfer(match):
            continue
        owner = match["owner"] if match["kind"] == "Callback" else f"DataModule:{match['owner']}"
        totals[owner] = totals.get(owner, 0.0) + 1000.0 * seconds / steps
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def _is_transfer(match: re.Match[str]) -> bool:
    return match["kind"] == "LightningDataModule" and match["hook"] in TRANSFER_HOOKS


def transfer_ms(action_seconds: Mapping[str, float], steps: int) -> float:
    """Milliseconds per step in the data module's transfer hooks (device-side augmentation)."""
    total = sum(
        seconds
        for action, seconds in action_seconds.items()
        if (match := _HOOK_ACTION.match(action)) is not None and _is_transfer(match)
    )
    return 1000.0 * total / steps


def machinery_share(component_ms: Mapping[str, float], step_ms: float) -> float:
    """The machinery's share of a step: sum of its components' ms per step over ms per step.

    Args:
        component_ms: ``{component: ms per step}``.
        step_ms: wall time of one optimizer step, ms (> 0).

    Returns:
        A fraction (0.01 is 1%).

    """
    if step_ms <= 0:
        raise ValueError(f"step_ms must be > 0, got {step_ms}")
    return sum(component_ms.values()) / step_ms


def hook_detail(action_seconds: Mapping[str, float], steps: int) -> dict[str, float]:
    """``{profiler action: ms per step}`` of every callback/data-module hook (for the JSON)."""
    return {
        action: 1000.0 * seconds / steps
        for action, seconds in sorted(action_seconds.items())
        if _HOOK_ACTION.match(action)
    }


def step_costs(clock: StepClock, extra_ms: Mapping[str, float] | None = None) -> dict[str, Any]:
    """What a finished clock measured, per timed step (ms) unless said otherwise.

    Args:
        clock: the run's clock, after ``fit``.
        extra_ms: machinery measured outside the profiler (:class:`SamplerCost`), ms per step.

    Returns:
        ``ms_per_step`` (window / steps), ``median_ms_per_step`` and ``main_cpu_ms_per_step``
        (CPU time of the training process, all threads: on a shared machine, wall time far above
        CPU time / threads means contention); ``data_wait_ms`` (waiting on the loader) and
        ``after_transfer_ms`` (:func:`transfer_ms`); ``machinery_ms`` (:func:`machinery_components`
        plus ``extra_ms``) and its ``machinery_share``; ``one_off_ms``: ms per run of each
        component outside the window (setup, the saves after
        it, the end); ``hooks_ms``: :func:`hook_detail`.

    """
    window, steps = clock.window_seconds, clock.steps
    step_ms = 1000.0 * clock.seconds / steps
    components = {**machinery_components(window, steps), **(extra_ms or {})}
    outside = {k: v - window.get(k, 0.0) for k, v in clock.run_seconds.items()}
    one_off = machinery_components(outside, 1)
    return {
        "ms_per_step": step_ms,
        "median_ms_per_step": clock.median_step_ms,
        "main_cpu_ms_per_step": 1000.0 * clock.cpu_seconds / steps,
        "data_wait_ms": 1000.0 * window.get(DATA_WAIT_ACTION, 0.0) / steps,
        "after_transfer_ms": transfer_ms(window, steps),
        "machinery_ms": components,
        "machinery_share": machinery_share(components, step_ms),
        "one_off_ms": {k: v for k, v in one_off.items() if v >= 0.05},
        "hooks_ms": hook_detail(window, steps),
    }


class SamplerCost(pl.Callback):
    """Times the run's epoch sampler (:func:`sampler_bookkeeping_ms`) once training is over,
    outside the window; :attr:`ms` is ``{"EpochSampler (order + keys)": ms per batch}``.
    """

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sampler = getattr(getattr(trainer, "datamodule", None), "sampler", None)
        if isinstance(sampler, EpochSampler):
            self.ms["EpochSampler (order + keys)"] = sampler_bookkeeping_ms(sampler)


def sampler_bookkeeping_ms(sampler: EpochSampler, repeats: int = 3) -> float:
    """Main-process ms per batch of the epoch order: one epoch's :class:`StepBatches` keys (the
    permutation, the sample seeds, the per-batch ``(entry, seed)`` lists) and the loader
    :class:`Cursor`'s count, timed on a copy of the run's sampler and divided by its batches.

    Args:
        sampler: the run's epoch sampler (``datamodule.sampler``).
        repeats: epochs timed; the fastest counts (the others absorb cache misses).

    """
    copy = EpochSampler(
        sampler.num_samples,
        batch_size=sampler.batch_size,
        world_size=sampler.world_size,
        rank=sampler.rank,
        seed=sampler.seed,
        accumulate=sampler.accumulate,
        passes=sampler.passes,
    )
    batches = StepBatches(copy)
    best = float("inf")
    for epoch in range(repeats):
        copy.set_epoch(epoch)
        cursor = Cursor()
        start = time.perf_counter()
        cursor.begin(epoch)
        for _ in batches:
            cursor.advance()
        best = min(best, time.perf_counter() - start)
    return 1000.0 * best / max(1, len(batches))


def machinery_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A rich table of the machinery's ms per step (share of the step) in each of our rows.

    Args:
        rows: JSON rows of the report (``machinery_ms``, ``ms_per_step``, ``machinery_share``,
            ``one_off_ms``), components sorted by their highest cost.

    """
    from rich.table import Table

    names = sorted(
        {c for r in rows for c in r["machinery_ms"]},
        key=lambda c: -max(r["machinery_ms"].get(c, 0.0) for r in rows),
    )
    table = Table(title="Budget machinery, ms per step (share of the step)")
    table.add_column("component")
    for r in rows:
        table.add_column(r["row"], justify="right")
    for name in names:
        table.add_row(
            name,
            *(_ms_and_share(r["machinery_ms"].get(name, 0.0), r["ms_per_step"]) for r in rows),
        )
    table.add_row(
        "total",
        *(
            f"{sum(r['machinery_ms'].values()):.3f} ({100 * r['machinery_share']:.3f} %)"
            for r in rows
        ),
    )
    table.add_row("one-off, ms per run", *(_one_off(r["one_off_ms"]) for r in rows))
    return table


def _one_off(one_off_ms: Mapping[str, float]) -> str:
    """The one-off costs of at least 1 ms (setup, the saves after the window), largest first."""
    return ", ".join(f"{k} {v:.0f}" for k, v in one_off_ms.items() if v >= 1) or "-"


def _ms_and_share(ms: float, step_ms: float) -> str:
    return f"{ms:.3f} ({100 * ms / step_ms:.3f} %)"
