# SPDX-License-Identifier: MIT
"""The Lightning callbacks that watch a run, in one place.

Each module holds one callback; the pure rules they apply live beside them in ``run/``
(checkpoint names and cadence, signal lines, identity, visit proofs). Every callback that must act
at an optimizer-step boundary asks :class:`~solo_diversity.run.callbacks.steps.StepBoundary`.
The bad-image guard asks the data module (``solo_diversity.data``), which counts the reads.
"""

from solo_diversity.run.callbacks.bad_images import BadImageGuard
from solo_diversity.run.callbacks.checkpointer import SoloCheckpointer
from solo_diversity.run.callbacks.global_batch import GlobalBatchCheck, WorldSizeMismatch
from solo_diversity.run.callbacks.graceful_stop import GracefulStop
from solo_diversity.run.callbacks.identity import RunIdentity
from solo_diversity.run.callbacks.ledger import BudgetLedger, LedgerMismatch, ledger_metrics
from solo_diversity.run.callbacks.steps import StepBoundary
from solo_diversity.run.callbacks.visits import VisitLedger, trainer_visit_proof

__all__ = [
    "BadImageGuard",
    "BudgetLedger",
    "GlobalBatchCheck",
    "GracefulStop",
    "LedgerMismatch",
    "RunIdentity",
    "SoloCheckpointer",
    "StepBoundary",
    "VisitLedger",
    "WorldSizeMismatch",
    "ledger_metrics",
    "trainer_visit_proof",
]
