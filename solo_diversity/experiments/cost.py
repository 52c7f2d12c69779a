# SPDX-License-Identifier: MIT
"""GPU-hours of the cell lists, each distinct pretraining run and probe counted once.

The estimate is one rate table: A100-class GPU-hours per million images trained, per backbone and
image size, read off the paper's figures (ResNet-18 at 32 px: 5 GPU-h for Table 1's 50M images;
ResNet-50 at 224 px: ~45 GPU-h for 98M). A pretraining costs ``C_eff / 1e6 x rate``. A linear probe
is solo-learn's 100 epochs over the probe set's labelled training images, forward only through the
frozen backbone (a third of a training step): ``100 x images x label_fraction / 1e6 x rate / 3``. A
distance is one embedding of at most 50,000 images per (extractor, set), features cached. Runs are
keyed by ``run_key`` and probes by (run_key, set, label fraction, mode), so Table 2's runs that
Tables 4 and 5 reuse are counted once; a list's own total counts everything it names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from solo_diversity.experiments.cells import ExperimentList, Probe, list_names, load_experiment
from solo_diversity.experiments.plan import ResolvedCell, resolve_cell

# GPU-hours per 1M images trained (forward and backward), by backbone and image side in pixels.
RATES: dict[str, dict[int, float]] = {
    "resnet18": {32: 0.10, 64: 0.20, 224: 0.14},  # Table 1(a) / 1(b) / Figure 3 estimates
    "resnet50": {224: 0.46},  # ~45 GPU-h per 98M images
    "resnet101": {224: 0.71},  # ~70 GPU-h per 98M
    "vit_small": {224: 0.31},  # ~30 GPU-h per 98M
    "vit_base": {224: 0.61},  # ~60 GPU-h per 98M
}
SIDES = {"cifar10": 32, "cifar100": 32, "tinyimagenet": 64}  # every other GPU set: 224 px
CPU_SETS = ("digits", "fashion_mnist")  # the CPU-scale sets cost no GPU time
# Labelled training images of each probe set (the splits the data groups name).
PROBE_IMAGES = {
    "cifar100": 50_000,
    "tinyimagenet": 100_000,
    "imagenet100": 126_689,
    "imagenet": 1_281_167,
    "stanford_cars": 8_144,
    "flowers102": 1_020,
    "oxford_pets": 3_680,
    "places365": 1_803_460,
    "food101": 75_750,
}
PROBE_EPOCHS = 100
FORWARD_SHARE = 1 / 3  # a frozen-backbone step is a forward pass
DISTANCE_RATE = 0.61  # a ViT-B-class extractor
DISTANCE_IMAGES = 50_000


def rate(backbone: str, dataset: str) -> float:
    """GPU-hours per 1M images for ``backbone`` on ``dataset``'s images (0 on the CPU sets)."""
    if dataset in CPU_SETS:
        return 0.0
    table = RATES.get(backbone, RATES["resnet50"])
    side = SIDES.get(dataset, 224)
    return table.get(side, table[max(table)])


def pretrain_hours(cell: ResolvedCell) -> float:
    """GPU-hours of the cell's pretraining."""
    return cell.plan.C_eff / 1e6 * rate(cell.backbone, cell.dataset)


def probe_hours(cell: ResolvedCell, probe: Probe) -> float:
    """GPU-hours of one linear probe after the cell's pretraining."""
    images = PROBE_IMAGES.get(probe.dataset, 0) * probe.label_fraction
    return PROBE_EPOCHS * images / 1e6 * rate(cell.backbone, probe.dataset) * FORWARD_SHARE


@dataclass
class Ledger:
    """What a set of lists costs: pretrainings and probes by key, each counted once."""

    runs: dict[str, float] = field(default_factory=dict)
    probes: dict[tuple[str, str, float, str], float] = field(default_factory=dict)
    embeddings: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return sum(self.runs.values()) + sum(self.probes.values()) + sum(self.embeddings.values())

    def add(self, cells: Iterable[ResolvedCell]) -> None:
        for cell in cells:
            self.runs[cell.run_key] = pretrain_hours(cell)
            for p in cell.spec.probes:
                self.probes[(cell.run_key, p.dataset, p.label_fraction, p.mode)] = probe_hours(
                    cell, p
                )

    def add_distances(self, experiment: ExperimentList) -> None:
        for spec in experiment.distances:
            for name in (spec.pretrain, spec.downstream):
                images = min(spec.max_samples, DISTANCE_IMAGES)
                self.embeddings[(spec.extractor, name)] = (
                    images / 1e6 * DISTANCE_RATE * FORWARD_SHARE
                )


def list_ledger(experiment: ExperimentList, configs: Path | None = None) -> Ledger:
    """The cost of one list alone (its runs and probes, shared ones included)."""
    ledger = Ledger()
    ledger.add(resolve_cell(spec, configs, env={}) for spec in experiment.cells)
    ledger.add_distances(experiment)
    return ledger


@dataclass(frozen=True)
class Costs:
    """Per list its own GPU-hours, and the total with every run and probe counted once."""

    per_list: dict[str, float]
    total: float
    runs: int
    probes: int

    @property
    def naive(self) -> float:
        """The lists' own sums added up (shared runs counted once per list)."""
        return sum(self.per_list.values())


def all_costs(configs: Path | None = None, names: list[str] | None = None) -> Costs:
    """GPU-hours of every cell list (or of ``names``), and their de-duplicated total."""
    overall = Ledger()
    per_list = {}
    for name in names or list_names(configs):
        ledger = list_ledger(load_experiment(name, configs), configs)
        per_list[name] = ledger.hours
        overall.runs |= ledger.runs
        overall.probes |= ledger.probes
        overall.embeddings |= ledger.embeddings
    return Costs(per_list, overall.hours, len(overall.runs), len(overall.probes))
