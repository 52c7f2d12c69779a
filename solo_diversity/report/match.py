# SPDX-License-Identifier: MIT
"""Which experiment cell reproduces which published number: the join of a cell list and a table.

An experiment cell and its probe (:mod:`solo_diversity.experiments`) and a paper cell
(:mod:`solo_diversity.report.paper_tables`) are the same cell when they agree on the method, the
backbone, the pretraining set, the budget (C, or E in ``epochs`` mode), N (within the table's
tolerance, as the paper rounds N), the probe's set and its label fraction, and the schedule
reading where a column names one (the schedule-semantics study). :func:`pair_table`
returns the pairs and what is left unpaired on either side; a complete list leaves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from solo_diversity.experiments.cells import ExperimentList, Probe, load_experiment
from solo_diversity.experiments.plan import ResolvedCell, resolve_cell
from solo_diversity.report.paper_tables import PaperCell, PaperTable, load_paper_table


@dataclass(frozen=True)
class Slot:
    """A published number and the (cell, probe) that reproduces it."""

    paper: PaperCell
    cell: ResolvedCell
    probe: Probe

    @property
    def label(self) -> str:
        """``<table>/<cell id>`` plus the probe when the cell has several."""
        probe = f" -> {self.probe.label()}" if len(self.cell.spec.probes) > 1 else ""
        return f"{self.cell.spec.table}/{self.cell.spec.id}{probe}"


@dataclass(frozen=True)
class Pairing:
    """A table's pairs, and the paper cells and experiment (cell, probe)s left without a partner."""

    experiment: ExperimentList
    paper: PaperTable
    slots: tuple[Slot, ...]
    unpaired_paper: tuple[PaperCell, ...]
    unpaired_cells: tuple[tuple[ResolvedCell, Probe], ...]


def same_cell(paper: PaperCell, cell: ResolvedCell, probe: Probe, n_rel_tol: float) -> bool:
    """Whether ``cell`` + ``probe`` is the experiment behind the published ``paper`` number."""
    plan = cell.plan
    checks = [
        paper.method is None or paper.method == cell.method,
        paper.backbone is None or paper.backbone == cell.backbone,
        paper.pretrain_dataset == cell.pretrain_set,
        paper.mode == plan.mode,
        (paper.epochs == plan.epochs)
        if paper.mode == "epochs"
        else (
            paper.C is None or paper.C == plan.C  # a layout without C takes any budget
        ),
        paper.N is not None and abs(plan.N - paper.N) <= n_rel_tol * paper.N,
        paper.probe_dataset == probe.dataset,
        (paper.label_fraction or 1.0) == probe.label_fraction,
        paper.epoch_keys is None or paper.epoch_keys == plan.epoch_keys,
        paper.untrained == cell.spec.untrained,
    ]
    return all(checks)


def pair_table(name: str, configs: Path | None = None, extra: tuple[str, ...] = ()) -> Pairing:
    """Pair the cell list ``name`` with the paper table it names.

    Args:
        name: the cell list (``yaml_configs/experiments/<name>.yaml``).
        configs: the ``yaml_configs`` folder.
        extra: the pretraining overrides the sweep ran with (``experiment run --set``), so that
            the cells, their plans and run keys are the ones that ran.

    Returns:
        The :class:`Pairing`; each paper cell is paired with the first experiment that matches it.
    """
    experiment = load_experiment(name, configs)
    paper = load_paper_table(experiment.paper)
    resolved = [resolve_cell(spec, configs, env={}, extra=extra) for spec in experiment.cells]
    todo = [(cell, probe) for cell in resolved for probe in cell.spec.probes]
    slots, unpaired = [], []
    for pc in paper.cells():
        hit = next(
            (i for i, (c, p) in enumerate(todo) if same_cell(pc, c, p, paper.n_rel_tol)), None
        )
        if hit is None:
            unpaired.append(pc)
            continue
        cell, probe = todo.pop(hit)
        slots.append(Slot(pc, cell, probe))
    return Pairing(experiment, paper, tuple(slots), tuple(unpaired), tuple(todo))
