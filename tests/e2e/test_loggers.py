# SPDX-License-Identifier: MIT
"""CSV, TensorBoard and offline wandb loggers: each holds the plan, images seen and the ledger."""

from __future__ import annotations

import csv
import os

import pytest
import yaml
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from solo_diversity.config.loggers import logger_names, wandb_entity
from solo_diversity.errors import UserError
from solo_diversity.run.loggers import WANDB_PROCESS_ENV
from solo_diversity.run.pretrain import run_pretrain
from tests.e2e.wandb_records import read_run

RUN = [
    "optimizer.batch_size=32",
    "budget.C=1000",  # 31 steps of 32 images: C_eff = 992
    "+backbone.kwargs.width=8",
    "data.val_path=null",
    "++loggers=[csv,tensorboard]",
    "wandb.enabled=true",
    "wandb.offline=true",
    "+log_every_n_steps=1",
]


def test_csv_tensorboard_and_offline_wandb_hold_plan_images_and_ledger(
    compose_cfg, tmp_path, monkeypatch
):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    for key in WANDB_PROCESS_ENV:
        monkeypatch.delenv(key, raising=False)
    result = run_pretrain(compose_cfg(overrides=RUN))
    # the offline run leaves no wandb mode or service socket behind for later runs or children
    assert not {key for key in WANDB_PROCESS_ENV if key in os.environ}
    version = result.checkpoint.parent.name
    logs = tmp_path / "trained_models" / "logs"

    with open(logs / "csv" / version / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    seen = [float(r["images_seen"]) for r in rows if r.get("images_seen")]
    assert seen == [32.0 * k for k in range(1, 32)]
    (final,) = [r for r in rows if r.get("ledger/images_seen")]
    assert float(final["ledger/images_seen"]) == 992 and float(final["ledger/match"]) == 1.0
    hparams = yaml.safe_load((logs / "csv" / version / "hparams.yaml").read_text())
    assert hparams["budget_plan"]["C_eff"] == 992 and hparams["budget/steps"] == 31

    (events,) = (logs / "tensorboard" / version).glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert [e.value for e in acc.Scalars("images_seen")] == [32.0 * k for k in range(1, 32)]
    assert [e.value for e in acc.Scalars("ledger/C_eff")] == [992.0]
    tb_hparams = yaml.safe_load((logs / "tensorboard" / version / "hparams.yaml").read_text())
    assert tb_hparams["budget_plan"]["global_batch"] == 32

    (run_file,) = (logs / "wandb").glob(f"offline-run-*-{version}/run-{version}.wandb")
    run = read_run(run_file)
    assert (run["id"], run["name"], run["project"]) == (version, "simclr-digits", "solo-diversity")
    assert run["config"]["budget_plan"]["C_eff"] == 992 and run["config"]["budget/N"] == 1438
    assert [h["images_seen"] for h in run["history"] if "images_seen" in h][-1] == 992
    assert run["summary"]["ledger/images_seen"] == 992 and run["summary"]["ledger/match"] == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[csv,mlflow]", "loggers: unknown logger 'mlflow'; choose from csv, tensorboard"),
        ("[wandb]", "loggers=[...wandb] is not a file logger; set wandb.enabled=true"),
        ("[csv,csv]", "loggers=['csv', 'csv'] names a logger twice"),
    ],
)
def test_a_bad_loggers_list_is_one_line(value, message):
    with pytest.raises(UserError) as err:
        logger_names(OmegaConf.create(f"loggers: {value}"))
    assert str(err.value) == message


def test_loggers_default_and_none():
    assert logger_names(OmegaConf.create({"loggers": ["tensorboard"]})) == ["tensorboard"]
    assert logger_names(OmegaConf.create({"loggers": []})) == []


def test_solo_learn_entity_none_string_means_no_entity():
    assert wandb_entity("None") is None and wandb_entity(None) is None
    assert wandb_entity("unitn-mhug") == "unitn-mhug"


def test_our_configs_select_offline_wandb_as_a_group(compose_cfg):
    cfg = compose_cfg(overrides=["wandb=offline"])
    assert (cfg.wandb.enabled, cfg.wandb.offline, cfg.wandb.entity) == (True, True, None)
