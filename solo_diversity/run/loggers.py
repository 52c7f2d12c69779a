# SPDX-License-Identifier: MIT
"""The loggers of a pretraining run: CSV, TensorBoard and Weights & Biases, chosen by the config.

- ``loggers: [csv, tensorboard]`` (default ``[csv]``; ``[]`` for none) picks the file loggers;
  they write to ``{checkpoint.dir}/logs/{csv,tensorboard}/{version}/``.
- ``wandb.{enabled, project, entity, offline}`` is solo-learn's own group and works as in its
  ``main_pretrain.py``: a Lightning ``WandbLogger`` named after ``name``, the gradients watched
  every 100 steps, the whole config logged as hyperparameters, and a resumed run continuing the
  same wandb run (its id is the run's version, the checkpoint sub-folder). Its files go to
  ``{checkpoint.dir}/logs/wandb/``. ``wandb.offline=true`` needs no network and no login.

Whichever loggers are on receive the resolved config (with ``budget_plan``) as hyperparameters,
the per-step ``images_seen`` and, at the end, the ledger (see
:mod:`solo_diversity.run.callbacks.ledger`).

A resumed run keeps its history: the CSV logger appends to the same ``metrics.csv`` (Lightning's
deletes it), TensorBoard writes a new event file in the same folder, and wandb resumes the same
run. Rows the interrupted process logged after the checkpoint it resumes from are dropped (CSV) or
purged (TensorBoard, whose reader hides them), since the resumed run logs those steps again.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from solo_diversity.config.run_config import LoggerSettings
from solo_diversity.errors import UserError
from solo_diversity.run.checkpoint import checkpoint_step

log = logging.getLogger(__name__)

WANDB_WATCH_EVERY = 100  # steps between gradient histograms, as solo-learn's main_pretrain.py


class _HistoryWriter(ExperimentWriter):
    """Lightning's CSV writer, but one that keeps the rows already in ``metrics.csv``.

    Lightning deletes the file whenever its folder exists, so each resume erased the curves of
    the processes before it. This writer reads the file's header instead and appends (Lightning
    writes each row as it is logged, so a SIGKILL loses none). Every rewrite (a new column, or
    :meth:`drop_from`) goes through a temporary file, so a kill during one leaves the old file.
    """

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])

    def _rows(self) -> list[dict[str, str]]:
        with open(self.metrics_file_path, newline="") as file:
            return list(csv.DictReader(file))

    def _rewrite(self, fieldnames: list[str], rows: list[dict[str, str]]) -> None:
        tmp = Path(f"{self.metrics_file_path}.tmp")
        with tmp.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.metrics_file_path)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        self._rewrite(fieldnames, self._rows())

    def drop_from(self, step: int) -> None:
        """Remove the rows logged at ``step`` or later: the resumed run logs those steps again."""
        if not Path(self.metrics_file_path).is_file():
            return
        rows = self._rows()
        kept = [row for row in rows if int(float(row["step"])) < step]
        if len(kept) < len(rows):
            self._rewrite(self.metrics_keys, kept)


class HistoryCSVLogger(CSVLogger):
    """A CSV logger that continues a resumed run's ``metrics.csv`` (see :class:`_HistoryWriter`).

    Args:
        save_dir: ``{checkpoint.dir}/logs``; the file is ``csv/{version}/metrics.csv`` below it.
        version: the run id.
        resuming: the run continues an earlier one (False: a file left in the folder is replaced).
        resume_step: the optimizer step of the checkpoint the run resumes from, if known; rows
            the interrupted process logged from that step on are dropped.
    """

    def __init__(
        self,
        save_dir: str,
        version: str,
        *,
        resuming: bool = False,
        resume_step: int | None = None,
    ) -> None:
        super().__init__(save_dir, name="csv", version=version)
        self.resuming = resuming or resume_step is not None
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> _HistoryWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            if not self.resuming:
                Path(self.log_dir, ExperimentWriter.NAME_METRICS_FILE).unlink(missing_ok=True)
            writer = _HistoryWriter(log_dir=self.log_dir)
            if self.resume_step is not None:
                writer.drop_from(self.resume_step)
            self._experiment = writer
        return self._experiment  # type: ignore[return-value]


# Lightning's WandbLogger sets WANDB_MODE=dryrun for an offline run and wandb.init sets
# WANDB_SERVICE (its service socket) in os.environ, for good: a later run in the same process would
# stay offline, and a child process would attach to this process's service and write no run of its
# own. finish_loggers puts them back as they were before the run.
WANDB_PROCESS_ENV = ("WANDB_MODE", "WANDB_SERVICE")


def _wandb_logger(settings: LoggerSettings, version: str, resuming: bool) -> Logger:
    try:
        import wandb  # noqa: F401 - WandbLogger imports it lazily; fail here with the hint
        from lightning.pytorch.loggers import WandbLogger
    except ImportError:
        raise UserError(
            "wandb.enabled=true needs the wandb package: "
            'pip install -e ".[wandb]" torch==2.14.1 torchvision==0.29.1'
        ) from None
    save_dir = settings.root
    save_dir.mkdir(parents=True, exist_ok=True)
    before = {key: os.environ.get(key) for key in WANDB_PROCESS_ENV}
    logger = WandbLogger(
        name=settings.run_name,
        project=settings.wandb_project,
        entity=settings.wandb_entity,
        offline=settings.wandb_offline,
        save_dir=str(save_dir),
        id=version,  # the checkpoint sub-folder is the wandb run id, as upstream
        resume="allow" if resuming else None,
    )
    logger.solo_div_env_before = before  # type: ignore[attr-defined]  # for finish_loggers
    return logger


def build_loggers(
    settings: LoggerSettings,
    version: str,
    *,
    resume_from: str | Path | None = None,
) -> list[Logger]:
    """The run's loggers, in the order CSV, TensorBoard, wandb.

    Args:
        settings: the ``loggers`` list and the ``wandb`` group.
        version: the run id (the checkpoint sub-folder; the wandb run id).
        resume_from: the checkpoint an interrupted run continues from, or None for a new run.
            Its CSV rows are kept and wandb resumes the same run; rows logged after the
            checkpoint are dropped from the CSV and purged from TensorBoard, as the run logs them
            again.
    """
    names = settings.names
    root = str(settings.root)
    step = None if resume_from is None else checkpoint_step(resume_from)
    resuming = step is not None
    loggers: list[Logger] = []
    if "csv" in names:
        loggers.append(HistoryCSVLogger(root, version, resuming=resuming, resume_step=step))
    if "tensorboard" in names:
        if not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise UserError(
                "loggers=[tensorboard] needs the tensorboard package: "
                'pip install -e ".[tensorboard]" torch==2.14.1 torchvision==0.29.1'
            )
        # A SessionLog.START at purge_step makes TensorBoard drop the earlier files' events from
        # that step on (the interrupted process's steps after the checkpoint).
        loggers.append(
            TensorBoardLogger(root, name="tensorboard", version=version, purge_step=step)
        )
    if settings.wandb:
        loggers.append(_wandb_logger(settings, version, resuming))
    return loggers


def logger_callbacks(loggers: list[Logger]) -> list[pl.Callback]:
    """The learning rate per step, logged whenever a logger is on (upstream: with wandb)."""
    if not loggers:
        return []
    return [pl.callbacks.LearningRateMonitor(logging_interval="step")]


def log_run_config(
    loggers: list[Logger], record: dict[str, Any], model: pl.LightningModule
) -> None:
    """Log the resolved config (plain containers, budget plan included) and, for wandb, watch the
    gradients. The loggers get a copy: ``record`` is the run's ``args.json`` too.
    """
    params = copy.deepcopy(record)
    for logger in loggers:
        try:
            logger.log_hyperparams(params)  # type: ignore[arg-type]
            watch = getattr(logger, "watch", None)
            if watch is not None:
                watch(model, log="gradients", log_freq=WANDB_WATCH_EVERY)
        except Exception as err:
            _raise_wandb_error(err)
            raise


def _raise_wandb_error(err: Exception) -> None:
    try:
        import wandb
    except ImportError:
        return
    if isinstance(err, wandb.errors.Error):
        first = " ".join(str(err).split())[:200]
        raise UserError(
            f"wandb could not start ({first}); log in with `wandb login`, or set wandb.offline=true"
        ) from None


def finish_loggers(loggers: list[Logger]) -> None:
    """Close a wandb run so that its files are complete when the run returns (rank 0 only), and
    give the process back the wandb environment it had (see :data:`WANDB_PROCESS_ENV`).
    """
    for logger in loggers:
        run = getattr(logger, "_experiment", None)  # WandbLogger's run, only once it started
        if run is not None and hasattr(run, "finish"):
            run.finish()
        for key, value in getattr(logger, "solo_div_env_before", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
