"""The experiment cell lists (yaml_configs/experiments) against the paper's stored tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from solo_diversity.cli import main
from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import list_names, load_experiment
from solo_diversity.experiments.plan import resolve_cell
from solo_diversity.index import build_index
from solo_diversity.report.match import pair_table
from solo_diversity.report.paper_tables import load_paper_table

CONFIGS = Path(__file__).resolve().parents[2] / "yaml_configs"
LISTS = [
    "fig3_imagenet100",
    "fig4_yfcc_subsets",
    "mini_paper_fashion_mnist",
    "supp_architectures",
    "supp_budget_sweep",
    "supp_epoch_normalized",
    "supp_label_fraction_in_domain",
    "supp_noncontrastive",
    "supp_schedule_semantics",
    "table1_cifar100",
    "table1_tinyimagenet",
    "table2_imagenet_yfcc",
    "table4_normalization",
    "table5_label_fraction",
]
DISTANCE_LISTS = ["table3_distances"]


def test_every_table_has_a_cell_list():
    assert list_names(CONFIGS) == sorted(LISTS + DISTANCE_LISTS)


@pytest.mark.parametrize("name", LISTS)
def test_cell_list_is_exactly_the_paper_table(name):
    pairing = pair_table(name, CONFIGS)
    paper = load_paper_table(pairing.experiment.paper)
    assert pairing.unpaired_paper == ()
    assert pairing.unpaired_cells == ()
    assert len(pairing.slots) == len(paper.cells())
    for slot in pairing.slots:  # method, backbone, data, C, N and probe agree, cell by cell
        p, c = slot.paper, slot.cell
        assert (p.method, p.backbone, p.pretrain_dataset) == (c.method, c.backbone, c.pretrain_set)
        assert p.probe_dataset == slot.probe.dataset
        assert (p.label_fraction or 1.0) == slot.probe.label_fraction
        assert abs(c.plan.N - p.N) <= paper.n_rel_tol * p.N
        assert slot.probe.mode == "protocol"


def _copy_configs(tmp_path: Path) -> Path:
    root = tmp_path / "yaml_configs"
    shutil.copytree(CONFIGS, root)
    return root


def test_a_drifted_cell_list_no_longer_pairs(tmp_path):
    root = _copy_configs(tmp_path)
    path = root / "experiments" / "table1_cifar100.yaml"
    path.write_text(path.read_text().replace("data.fraction: 0.5", "data.fraction: 0.4"))
    pairing = pair_table("table1_cifar100", root)
    assert len(pairing.unpaired_paper) == 7 and len(pairing.unpaired_cells) == 7


def test_resolved_cell_plan_numbers():
    exp = load_experiment("table1_cifar100", CONFIGS)
    cell = resolve_cell(exp.cell("simclr-f0.1"), CONFIGS)
    assert (cell.method, cell.backbone, cell.dataset, cell.plan.N) == (
        "simclr",
        "resnet18",
        "cifar100",
        5000,
    )
    assert (cell.plan.C, cell.plan.epochs, cell.plan.diversity) == (50_000_000, 10_000, 1e-4)
    assert cell.plan.steps == 50_000_000 // 256 == 195_312
    assert (cell.plan.epoch_keys, cell.warmup_steps) == ("subset", 190)  # 10 x (5,000 // 256)
    four = resolve_cell(exp.cell("simclr-f0.1"), CONFIGS, devices=4)  # the global batch is kept
    assert (four.plan.global_batch, four.plan.steps, four.lr) == (256, 195_312, cell.lr)


def test_epoch_normalized_cells_fix_the_epochs():
    exp = load_experiment("supp_epoch_normalized", CONFIGS)
    cell = resolve_cell(exp.cell("dino-B-e400"), CONFIGS)
    assert (cell.plan.mode, cell.plan.N, cell.plan.C) == ("epochs", 63_345, 400 * 63_345)
    assert cell.plan.epochs == 400


def test_tables_that_share_a_run_share_its_run_key():
    def key(table, cell_id):
        return resolve_cell(load_experiment(table, CONFIGS).cell(cell_id), CONFIGS).run_key

    shared = {
        key("table2_imagenet_yfcc", "mocov3-resnet50-in0.1"),
        key("table4_normalization", "resnet50-C98M-f0.1"),
        key("supp_architectures", "C98M-f0.1-resnet50"),
        key("supp_label_fraction_in_domain", "mocov3-resnet50-f0.1"),
    }
    assert len(shared) == 1
    assert key("supp_budget_sweep", "simclr-f0.5-C50M") == key("table1_tinyimagenet", "simclr-f0.5")
    assert key("table1_cifar100", "simclr-f0.1") != key("table1_cifar100", "simclr-f0.5")


def test_fig3_cells_say_which_sets_are_missing(tmp_path, monkeypatch):
    exp = load_experiment("fig3_imagenet100", CONFIGS)
    monkeypatch.delenv("FIG3_SETS", raising=False)
    assert resolve_cell(exp.cell("simclr-in_source"), CONFIGS).missing == ()  # ImageNet-100 itself
    assert resolve_cell(exp.cell("simclr-B"), CONFIGS).missing == ("FIG3_SETS (unset)",)
    assert resolve_cell(exp.cell("simclr-in_web"), CONFIGS).missing == ("FIG3_SETS (unset)",)
    monkeypatch.setenv("FIG3_SETS", str(tmp_path))
    missing = resolve_cell(exp.cell("simclr-in_web"), CONFIGS).missing
    assert missing == (f"data.train_path={tmp_path}/b_union_a_in_web.h5 (not found)",)
    (tmp_path / "b_union_a_in_web.h5").write_bytes(b"")  # there, but no index: cannot run
    (unreadable,) = resolve_cell(exp.cell("simclr-in_web"), CONFIGS).missing
    assert unreadable.startswith(f"data.train_path={tmp_path}/b_union_a_in_web.h5 (unreadable: ")
    (tmp_path / "b_union_a_in_web.h5").unlink()
    build_index("digits", tmp_path / "b_union_a_in_web.h5", split="test")
    assert resolve_cell(exp.cell("simclr-in_web"), CONFIGS).missing == ()


def test_cli_overrides_for_one_cell(capsys):
    argv = [
        "experiment",
        "cells",
        "table1_cifar100",
        "--only",
        "simclr-f0.1",
        "--configs",
        str(CONFIGS),
    ]
    assert main([*argv, "--format", "overrides"]) == 0
    assert capsys.readouterr().out == (
        "data=cifar100 backbone.name=resnet18 budget.C=50e6 data.fraction=0.1\n"
    )
    assert main([*argv, "--format", "probes"]) == 0
    assert capsys.readouterr().out == (
        "simclr-f0.1\tcifar100\t1\tprotocol\tdata.label_fraction=1 probe.mode=protocol\n"
    )
    assert main([*argv, "--json"]) == 0
    (cell,) = json.loads(capsys.readouterr().out)
    assert (cell["config"], cell["N"], cell["E"], cell["steps"]) == (
        "simclr_div",
        5000,
        10000,
        195312,
    )
    assert cell["probes"][0]["dataset"] == "cifar100"


def test_cli_ids_and_tsv(capsys):
    assert main(["experiment", "cells", "table5_label_fraction", "--format", "ids"]) == 0
    ids = capsys.readouterr().out.split()
    assert len(ids) == 8 and ids[0] == "simclr-resnet50-in1.0"
    assert main(["experiment", "cells", "table5_label_fraction", "--format", "tsv"]) == 0
    first = capsys.readouterr().out.splitlines()[0].split("\t")
    assert first[:2] == ["simclr-resnet50-in1.0", "simclr_div"]
    # SimCLR's ImageNet recipe: global batch 4096 (SimCLR's run.py), 98M images
    assert first[3:7] == ["1281167", "76.4928", "0.0130731", str(98_000_000 // 4096)]


def test_cli_unknown_table_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "cells", "table9"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: unknown experiment table 'table9'; choose one of fig3_")


def test_cli_unknown_cell_is_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["experiment", "cells", "table1_cifar100", "--only", "simclr-f0.3"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: table1_cifar100 has no cell 'simclr-f0.3'; its cells are simclr")


def _write_list(root: Path, body: dict) -> None:
    (root / "experiments" / "broken.yaml").write_text(yaml.safe_dump(body))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"paper": "x", "axes": [], "oops": 1}, "has unknown key 'oops'"),
        (
            {"axes": [{"name": "m", "values": [{"key": "a", "config": "simclr_div"}]}]},
            "has no 'paper' key",
        ),
        (
            {"paper": "x", "axes": [{"name": "m", "values": [{"config": "simclr_div"}]}]},
            "a value of axis 'm' has no key",
        ),
        (
            {"paper": "x", "axes": [{"name": "m", "values": [{"key": "a"}]}]},
            "cell 'a' has no config",
        ),
        (
            {
                "paper": "x",
                "base": {"probes": [{"dataset": "c", "mode": "fast"}]},
                "axes": [{"name": "m", "values": [{"key": "a", "config": "simclr_div"}]}],
            },
            "probe mode 'fast' is not one of protocol, features",
        ),
        (
            {
                "paper": "x",
                "axes": [
                    {
                        "name": "m",
                        "values": [
                            {"key": "a", "config": "simclr_div"},
                            {"key": "a", "config": "byol_div"},
                        ],
                    }
                ],
                "base": {"probes": [{"dataset": "c"}]},
            },
            "cell ids repeat (a)",
        ),
    ],
)
def test_malformed_cell_list_errors(tmp_path, body, message):
    root = _copy_configs(tmp_path)
    _write_list(root, body)
    with pytest.raises(UserError) as err:
        load_experiment("broken", root)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_status_says_what_is_left_to_run(tmp_path, capsys):
    def key(cell_id):
        return resolve_cell(
            load_experiment("table1_cifar100", CONFIGS).cell(cell_id), CONFIGS
        ).run_key

    runs = tmp_path / "runs"
    finished = runs / key("simclr-f0.5") / "seed0" / "pretrain" / "v1"
    finished.mkdir(parents=True)
    (finished / "ledger.json").write_text("{}")
    (finished / "last.ckpt").write_bytes(b"x")
    crashed = runs / key("simclr-f1.0") / "seed0" / "pretrain" / "v1"
    crashed.mkdir(parents=True)
    (crashed / "step-100.ckpt").write_bytes(b"x")
    results = tmp_path / "linear.jsonl"
    ckpt = f"{runs}/{key('simclr-f0.1')}/seed0/pretrain/v1/last.ckpt"
    results.write_text(
        json.dumps(
            {
                "method": "simclr",
                "dataset": "cifar100",
                "acc1": 38.0,
                "label_fraction": 1.0,
                "seed": 0,
                "checkpoint": ckpt,
            }
        )
        + "\n"
    )
    argv = [
        "experiment",
        "status",
        "table1_cifar100",
        "--results",
        str(results),
        "--runs",
        str(runs),
        "--seeds",
        "0",
        "1",
        "--format",
        "tsv",
    ]
    assert main(argv) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 42
    state = {(r[0], r[1]): r[3] for r in rows}
    assert state[("simclr-f0.1", "0")] == "done"
    assert state[("simclr-f0.1", "1")] == "pretrain"
    assert state[("simclr-f0.5", "0")] == "probe"
    assert state[("simclr-f1.0", "0")] == "resume"
    assert sum(v == "pretrain" for v in state.values()) == 39
    assert rows[0] == ["simclr-f0.1", "0", "cifar100@1", "done", f"{key('simclr-f0.1')}/seed0"]


def test_list_tsv_gives_cells_and_gpu_hours(capsys):
    assert main(["experiment", "list", "--format", "tsv"]) == 0
    rows = {r.split("\t")[0]: r.split("\t") for r in capsys.readouterr().out.splitlines()}
    assert sorted(rows) == sorted([*LISTS, *DISTANCE_LISTS, "total"])
    assert rows["table2_imagenet_yfcc"][1:4] == ["table2_imagenet_yfcc", "20", "120"]
    assert rows["table1_cifar100"][2:5] == ["21", "21", "108"]
    assert rows["table3_distances"][2:4] == ["36", "0"]
    total = rows.pop("total")
    naive = sum(float(r[4]) for r in rows.values())
    assert float(total[4]) < naive - 3000  # Tables 4, 5 and the supplement reuse Table 2's runs


def test_readme_states_the_deduplicated_total():
    import re

    from solo_diversity.experiments.cost import all_costs

    readme = (CONFIGS.parent / "README.md").read_text()
    stated = re.search(r"prints: about ([\d,]+) GPU-hours for one seed", readme)
    assert stated is not None
    assert int(stated.group(1).replace(",", "")) == round(all_costs(CONFIGS).total, -2)
