# SPDX-License-Identifier: MIT
"""``solo-div ledger show RUN``: a run's budget ledger and visit proof, read from its files.

This module owns reading what a pretraining run leaves behind into one summary: a finished run's
``ledger.json`` and ``visits.npz`` (with the seed from ``args.json``), or an unfinished run's
newest intact checkpoint, whose callback state holds the same ledger (``BudgetLedger``) and
visit counts (``VisitLedger``). The proof itself is :func:`~solo_diversity.run.visits.visit_proof`;
the tables are :mod:`~solo_diversity.report.ledger_view`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from solo_diversity.console import console
from solo_diversity.errors import UserError
from solo_diversity.report.ledger_view import ledger_renderables

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

PLAN_KEYS = ("C", "N", "E", "D", "global_batch", "steps", "C_eff", "mode", "N_ref")
RUN_FILES = ("ledger.json", "visits.npz", "visits.json", "args.json")  # RUN may name one of them


@dataclass
class RunLedger:
    """The ledger of one run as read from its files (counts are (N,) visits per subset entry)."""

    run_dir: Path
    source: Path
    plan: dict[str, Any]
    images_seen: int
    steps: int
    resumes: int
    world_size: int | None
    match: bool | None
    counts: np.ndarray
    outside: int
    seed: int | None
    unreadable: np.ndarray | None = None  # (N,) bool as the run recorded it; None: infer

    @property
    def finished(self) -> bool:
        """Whether the run trained all the steps of its plan."""
        return self.steps == int(self.plan["steps"])


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not a readable JSON file ({_first_line(err)})") from err
    if not isinstance(value, dict):
        raise UserError(f"{path} holds a {type(value).__name__}, not a JSON object")
    return value


def _need(values: dict[str, Any], keys: tuple[str, ...], where: Path) -> None:
    missing = [k for k in keys if k not in values]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)}: it is not a solo-diversity ledger")


def _seed_from_args(run_dir: Path) -> int | None:
    args_file = run_dir / "args.json"
    if not args_file.is_file():
        return None
    seed = _read_json(args_file).get("seed")
    return int(seed) if isinstance(seed, int) else None


def read_visits(path: Path) -> tuple[np.ndarray, int, np.ndarray | None]:
    """``(counts (N,) int64, outside, unreadable (N,) bool or None)`` from a ``visits.npz``.

    ``unreadable`` marks the entries whose positions the run recorded as unreadable (None in a
    file written before runs recorded them). UserError when the file is unreadable.
    """
    import numpy as np  # loaded when a run is read, not when the ``solo-div`` parser is built

    try:
        with np.load(path, allow_pickle=False) as data:
            counts, outside = data["counts"], data["outside"]
            if counts.ndim != 1 or outside.ndim != 0:
                raise ValueError("counts must be (N,) and outside a scalar")
            unreadable = None
            if "unreadable" in data.files:
                unreadable = np.isin(data["positions"], data["unreadable"])
            return counts.astype(np.int64), int(outside), unreadable
    except Exception as err:  # noqa: BLE001 - any failure to read it means a corrupt file
        raise UserError(f"{path} is not a readable visits file ({_first_line(err)})") from err


def read_finished(run_dir: Path) -> RunLedger:
    """A finished run: ``ledger.json``, ``visits.npz`` and the seed from ``args.json``."""
    ledger_path, npz = run_dir / "ledger.json", run_dir / "visits.npz"
    ledger = _read_json(ledger_path)
    _need(ledger, (*PLAN_KEYS, "images_seen", "optimizer_steps", "match"), ledger_path)
    if not npz.is_file():
        raise UserError(f"{run_dir} has ledger.json but no visits.npz to prove the visits")
    counts, outside, unreadable = read_visits(npz)
    return RunLedger(
        run_dir=run_dir,
        source=ledger_path,
        plan={k: ledger[k] for k in PLAN_KEYS},
        images_seen=int(ledger["images_seen"]),
        steps=int(ledger["optimizer_steps"]),
        resumes=int(ledger.get("resumes", 0)),
        world_size=ledger.get("world_size"),
        match=bool(ledger["match"]),
        counts=counts,
        outside=outside,
        seed=_seed_from_args(run_dir),
        unreadable=unreadable,
    )


def _loader_position(state: dict[str, Any]) -> dict[str, Any]:
    try:
        return dict(state["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["position"])
    except (KeyError, IndexError, TypeError):
        return {}


def read_checkpoint(path: Path) -> RunLedger:
    """The ledger in a checkpoint's callback state (``BudgetLedger`` and ``VisitLedger``)."""
    import numpy as np  # with torch: loaded when a checkpoint is read, not for the parser
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - any failure to load is the user's bad file
        raise UserError(f"{path} does not load as a checkpoint ({_first_line(err)})") from err
    callbacks = state.get("callbacks", {}) if isinstance(state, dict) else {}
    budget, visits = callbacks.get("BudgetLedger"), callbacks.get("VisitLedger")
    if not isinstance(budget, dict) or not isinstance(visits, dict):
        raise UserError(
            f"{path} holds no BudgetLedger and VisitLedger state: not a solo-diversity "
            "pretraining checkpoint"
        )
    _need(budget, ("images_seen", "plan"), path)
    _need(visits, ("counts", "outside"), path)
    plan = dict(budget["plan"])
    _need(plan, PLAN_KEYS, path)
    position = _loader_position(state)
    cfg_seed = state.get("solo_diversity", {}).get("cfg", {}).get("seed")
    seed = cfg_seed if isinstance(cfg_seed, int) else position.get("seed")
    run_dir = path.parent
    record = RunLedger(
        run_dir=run_dir,
        source=path,
        plan={k: plan[k] for k in PLAN_KEYS},
        images_seen=int(budget["images_seen"]),
        steps=int(budget.get("steps", state.get("global_step", 0))),
        resumes=int(budget.get("resumes", 0)),
        world_size=position.get("world_size"),
        match=None,
        counts=torch.as_tensor(visits["counts"]).numpy().astype(np.int64).reshape(-1),
        outside=int(visits["outside"]),
        seed=int(seed) if seed is not None else _seed_from_args(run_dir),
    )
    if record.finished:
        record.match = record.images_seen == int(plan["C_eff"])
    return record


def _newest(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def _is_run(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ("ledger.json", "args.json")) or any(
        folder.glob("*.ckpt")
    )


def read_run(path: Path) -> RunLedger:
    """The ledger of RUN: a run folder, one of its checkpoints, or a method folder (newest run).

    A run folder with ``ledger.json`` is finished; otherwise its newest checkpoint that passes
    its checksum is read (those that fail are skipped with a warning).
    """
    from solo_diversity.run import checkpoint_files  # torch: loaded when a run is read

    if not path.exists():
        raise UserError(
            f"{path} does not exist; give a run folder, a checkpoint or a method folder"
        )
    if path.is_file() and path.name in RUN_FILES:
        path = path.parent
    if path.is_file():
        return read_checkpoint(path)
    if not _is_run(path):
        runs = [p for p in path.iterdir() if p.is_dir() and _is_run(p)]
        if not runs:
            raise UserError(
                f"{path} is not a run: no ledger.json, args.json or *.ckpt in it or its folders"
            )
        path = max(runs, key=lambda run: max(f.stat().st_mtime_ns for f in run.iterdir()))
        log.info("newest run in the folder: %s", path)
    if (path / "ledger.json").exists():
        return read_finished(path)
    for ckpt in _newest(list(path.glob("*.ckpt"))):
        reason = checkpoint_files.verify(ckpt)
        if reason is None:
            return read_checkpoint(ckpt)
        log.warning("skipping %s: %s", ckpt.name, reason)
    raise UserError(f"{path} has no ledger.json and no intact checkpoint: nothing to show yet")


def ledger_report(record: RunLedger) -> dict[str, Any]:
    """The JSON summary of a run's ledger: plan, counted images and steps, and the visit proof."""
    from solo_diversity.run.visits import visit_proof  # torch, Lightning: on run

    proof = visit_proof(
        record.counts,
        record.outside,
        global_batch=int(record.plan["global_batch"]),
        steps=record.steps,
        seed=record.seed,
        unreadable=record.unreadable,
    )
    problems = []
    if len(record.counts) != int(record.plan["N"]):
        problems.append(f"{len(record.counts)} visit counts for a subset of N={record.plan['N']}")
    if proof["images_seen"] != record.images_seen:
        problems.append(
            f"the ledger's {record.images_seen} images differ from {proof['images_seen']} visits"
        )
    proof["problems"] = problems + proof["problems"]
    proof["visits_ok"] = not proof["problems"]
    return {
        "run": str(record.run_dir),
        "source": str(record.source),
        "status": "finished" if record.finished else "unfinished",
        "plan": record.plan,
        "images_seen": record.images_seen,
        "optimizer_steps": record.steps,
        "resumes": record.resumes,
        "world_size": record.world_size,
        "match": record.match,
        "seed": record.seed,
        "visits": proof,
    }


def _show(args: argparse.Namespace) -> int:
    """Print the report; exit 1 when the ledger does not match its plan or the proof fails."""
    report = ledger_report(read_run(Path(args.run)))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for renderable in ledger_renderables(report):
            console.print(renderable)
    failed = report["visits"]["problems"][:1]
    if report["match"] is False:
        failed.insert(0, "the counted images or steps differ from the plan")
    if failed:
        print(f"ledger check failed: {failed[0]}", file=sys.stderr)
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ledger show`` to the ``solo-div`` sub-parsers.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    """
    ledger = subparsers.add_parser("ledger", help="show a run's budget ledger and visit counts")
    commands = ledger.add_subparsers(dest="ledger_command", required=True)
    show = commands.add_parser(
        "show",
        help="print a run's plan, images and steps seen, and the proof of its visit counts",
        description=(
            "RUN is a run folder ({checkpoint.dir}/{method}/{version}), a checkpoint file in one, "
            "or a method folder ({checkpoint.dir}/{method}), which shows its newest run. A run "
            "folder with ledger.json is finished (ledger.json, visits.npz); otherwise its newest "
            "checkpoint that passes its checksum is shown, marked unfinished. Exits 1 when "
            "the ledger does not match its plan or the visit proof fails."
        ),
    )
    show.add_argument("run", metavar="RUN", help="run folder, checkpoint file or method folder")
    show.add_argument("--json", action="store_true", help="print the summary as JSON")
    show.set_defaults(func=_show)
