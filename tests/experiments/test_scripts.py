# SPDX-License-Identifier: MIT
"""Each table's script: its --dry-run lists exactly the cells paired with the paper's table."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from solo_diversity.experiments.cells import list_names, load_experiment
from solo_diversity.experiments.plan import resolve_cell
from solo_diversity.index import build_index, open_index
from solo_diversity.report.match import pair_table

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
HEAD = re.compile(
    r"^# (?P<table>\w+)/(?P<cell>[\w.\-]+)/seed(?P<seed>\d+): (?P<config>\w+) N=(?P<N>[\d,]+) "
    r"E=(?P<E>[\d,.e+\-]+) D=(?P<D>[\d.e+\-]+) steps=(?P<steps>[\d,]+).* -> (?P<what>.*)$"
)


def _script(name: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SOLO_DIV_RUNS": str(tmp / "runs"),
        "SOLO_DIV_RESULTS": str(tmp / "results.jsonl"),
        "OUT": str(tmp / "out"),
    }
    return subprocess.run(
        ["bash", str(SCRIPTS / f"{name}.sh"), *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _heads(stdout: str) -> list[dict[str, str]]:
    return [m.groupdict() for line in stdout.splitlines() if (m := HEAD.match(line))]


def test_every_cell_list_has_its_script():
    have = {p.stem for p in SCRIPTS.glob("*.sh")}
    assert set(list_names()) <= have


PRETRAIN_LISTS = [n for n in list_names() if not n.startswith("mini") and n != "table3_distances"]


@pytest.mark.parametrize("name", PRETRAIN_LISTS)
def test_dry_run_lists_exactly_the_paper_cells(name, tmp_path):
    out = _script(name, "--dry-run", "--seeds", "0", "1", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    heads = _heads(out.stdout)
    pairing = pair_table(name)
    assert not pairing.unpaired_paper and not pairing.unpaired_cells
    cells = {s.cell.spec.id: s.cell for s in pairing.slots}  # every published number's cell
    assert sorted({h["cell"] for h in heads}) == sorted(cells)
    assert sorted((h["cell"], h["seed"]) for h in heads) == sorted(
        (c, s) for c in cells for s in ("0", "1")
    )
    for h in heads:
        plan = cells[h["cell"]].plan
        assert int(h["N"].replace(",", "")) == plan.N
        assert int(h["steps"].replace(",", "")) == plan.steps
        assert float(h["D"]) == pytest.approx(plan.diversity, rel=1e-5)
        assert h["config"] == cells[h["cell"]].spec.config
    probes = [line for line in out.stdout.splitlines() if "main_linear.py" in line]
    missing = {i for i, c in cells.items() if resolve_cell(c.spec).missing}  # data not there
    assert len(probes) == 2 * sum(len(c.spec.probes) for i, c in cells.items() if i not in missing)
    skipped = {h["cell"] for h in heads if h["what"].startswith("skipped, it needs ")}
    assert skipped == missing
    assert "{" not in "".join(probes)  # no command with a placeholder left in it
    assert all("max_epochs=100" in p and "probe.mode=protocol" in p for p in probes)
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_mini_paper_dry_run_is_simclr_and_both_floors_over_three_seeds(tmp_path):
    out = _script("mini_paper_fashion_mnist", "--dry-run", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    heads = _heads(out.stdout)
    floors = [h for h in heads if h["cell"] in ("simclr-raw_pixels", "simclr-random_init")]
    trained = [h for h in heads if h not in floors and h["cell"].startswith("simclr-n")]
    assert len(trained) + len(floors) == len(heads) == (4 + 2) * 3  # cells x seeds 0, 1 and 2
    assert sorted({int(h["N"].replace(",", "")) for h in trained}) == [256, 2560, 25600, 60000]
    assert {h["steps"] for h in heads} == {"1,000"}  # C = 256,000 at batch 256
    assert {h["E"] for h in trained if h["N"] == "256"} == {"1,000"}  # seen a thousand times
    assert {h["cell"]: h["what"] for h in floors} == {
        f"simclr-{k}": f"write the {k} baseline (no training), then 1 probe(s)"
        for k in ("raw_pixels", "random_init")
    }
    every = _heads(
        _script(
            "mini_paper_fashion_mnist", "--dry-run", "--all-methods", "--seeds", "0", tmp=tmp_path
        ).stdout
    )
    assert len(every) == 7 * (4 + 2)  # each method's probe recipe has its own floors


def test_help_says_the_gpu_hours_and_the_data(tmp_path):
    out = _script("table1_cifar100", "--help", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    # 21 runs x 50M images x 0.1 GPU-h per 1M, and 21 CIFAR-100 probes
    assert "about 108 GPU-hours" in out.stdout and "cifar100:" in out.stdout
    assert "--dry-run" in out.stdout and "--launcher local|slurm" in out.stdout


def test_fig3_says_which_sets_are_missing(tmp_path):
    env_free = _script("fig3_imagenet100", "--dry-run", tmp=tmp_path)
    assert env_free.returncode == 0
    out = subprocess.run(
        [
            "bash",
            str(SCRIPTS / "fig3_imagenet100.sh"),
            "--only",
            "simclr-in_web",
            "--runs",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "r.jsonl"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "FIG3_SETS"},
    )
    assert out.returncode == 1
    assert "simclr-in_web/seed0: skipped, it needs FIG3_SETS (unset)" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "runs").exists()


def test_fig3_dry_run_without_its_sets_names_them_and_runs_none(tmp_path):
    out = _script(
        "fig3_imagenet100",
        "--dry-run",
        "--only",
        "simclr-B",
        "simclr-in_source",
        "simclr-in_web",
        "--seeds",
        "0",
        tmp=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == (
        "fig3_imagenet100: 3 cell x seed, 0 done; to run: 1 pretraining(s), 1 probe(s); 2 skipped, "
        "their data is missing: FIG3_SETS (unset)"
    )
    what = {h["cell"]: h["what"] for h in _heads(out.stdout)}
    assert what == {
        "simclr-B": "skipped, it needs FIG3_SETS (unset)",
        "simclr-in_source": "pretrain, then 1 probe(s)",
        "simclr-in_web": "skipped, it needs FIG3_SETS (unset)",
    }
    assert "{FIG3_SETS}" not in out.stdout
    assert sum("main_pretrain.py" in line for line in out.stdout.splitlines()) == 1


def test_fig3_plans_n_from_a_built_set(tmp_path, monkeypatch):
    sets = tmp_path / "sets"
    built = build_index("digits", sets / "B.h5", split="train")  # stands in for B: 1,438 images
    monkeypatch.setenv("FIG3_SETS", str(sets))
    cells = load_experiment("fig3_imagenet100").cells
    b = resolve_cell(next(c for c in cells if c.id == "simclr-B"))
    assert b.missing == () and b.plan.N == len(open_index(built)) == 1438
    assert b.plan.N != b.spec.N  # the list's estimate, 63,345, is only the run key's
    assert f"-N{b.spec.N}-" in b.run_key
    web = resolve_cell(next(c for c in cells if c.id == "simclr-in_web"))
    assert web.missing == (f"data.train_path={sets}/b_union_a_in_web.h5 (not found)",)
    assert web.plan.N == web.spec.N


def test_mini_paper_only_counts_the_cells_it_runs(tmp_path):
    out = _script(
        "mini_paper_fashion_mnist",
        "--only",
        "simclr-n256",
        "dino-n2560",
        "--seeds",
        "0",
        "--dry-run",
        tmp=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(h["cell"] for h in _heads(out.stdout)) == ["dino-n2560", "simclr-n256"]
    assert out.stdout.splitlines()[-1] == (
        "mini paper (dry run): 2 cells x 1 seeds: simclr-n256 dino-n2560"
    )


def test_mini_paper_only_refuses_an_unknown_cell(tmp_path):
    out = _script("mini_paper_fashion_mnist", "--only", "a", "b", "--dry-run", tmp=tmp_path)
    assert out.returncode == 2
    assert re.fullmatch(
        r"error: mini_paper_fashion_mnist has no cell 'a'; its cells are simclr-n256, .*\n",
        out.stderr,
    ), out.stderr
    assert out.stdout == "" and not (tmp_path / "out").exists()
