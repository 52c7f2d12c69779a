# SPDX-License-Identifier: MIT
"""The visit proof on exact count vectors, and ``solo-div ledger show`` on real and bad runs."""

from __future__ import annotations

import json
import re
import shutil

import lightning.pytorch as pl
import numpy as np
import pytest

from solo_diversity.cli import main
from solo_diversity.index import open_index, select_subset
from solo_diversity.run.callbacks import trainer_visit_proof
from solo_diversity.run.pretrain import run_pretrain
from solo_diversity.run.substitution import (
    inferred_unreadable,
    spread_visits,
    substituted_visits,
    unreadable_entries,
)
from solo_diversity.run.visits import (
    misses_feasible,
    pass_layout,
    replayed_visits,
    visit_proof,
)

# 25 steps of G=64 over N=1,438 (22 steps a pass, 30 images dropped a pass): C_eff = 1,600.
RUN = [
    "optimizer.batch_size=64",
    "budget.C=1600",
    "+backbone.kwargs.width=8",
    "data.val_path=null",
    "checkpoint.every_n_steps=10",
    "checkpoint.keep_prev=true",
]


def _proof(counts, outside=0, *, global_batch=4, steps=3, seed=None):
    return visit_proof(np.array(counts), outside, global_batch=global_batch, steps=steps, seed=seed)


def test_pass_layout_counts_whole_passes_the_last_pass_and_the_dropped_tail():
    assert pass_layout(10, 4, 3) == (1, 4, 2)  # 2 steps a pass, 8 kept, 2 dropped
    assert pass_layout(1438, 64, 25) == (1, 192, 30)
    assert pass_layout(8, 4, 4) == (2, 0, 0)


def test_without_dropped_tails_every_image_is_seen_floor_or_ceil_times():
    # N=8, G=4, 3 steps: one whole pass and 4 images of the next; E' = 12/8 = 1.5.
    proof = _proof([2, 2, 2, 2, 1, 1, 1, 1], global_batch=4, steps=3)
    assert proof["allowed"] == [1, 2] and proof["visits_ok"] and proof["problems"] == []
    assert proof["histogram"] == {"1": 4, "2": 4} and proof["epochs_seen"] == 1.5


def test_one_image_seen_once_too_often_fails():
    proof = _proof([2, 2, 2, 2, 2, 1, 1, 1], global_batch=4, steps=3)
    assert not proof["visits_ok"]
    assert proof["problems"] == ["the counts total 13 visits; 3 steps of 4 images make 12"]
    moved = _proof([3, 2, 2, 2, 1, 1, 1, 0], global_batch=4, steps=3)  # same total
    assert moved["problems"] == [
        "1 images seen more than 2 times (once per pass at most)",
        "1 images seen fewer than 1 times",
    ]


def test_a_visit_outside_the_subset_fails():
    proof = _proof([2, 2, 2, 2, 1, 1, 1, 1], outside=1, global_batch=4, steps=3)
    assert proof["outside"] == 1 and not proof["visits_ok"]
    assert proof["problems"] == ["1 visits to images outside the subset"]


def test_an_unseen_image_fails_unless_the_dropped_tails_explain_it():
    # N=8, G=4, one whole pass (E = 1), nothing dropped: an unseen image is wrong.
    assert _proof([2, 1, 1, 1, 1, 1, 1, 0], global_batch=4, steps=2)["problems"] == [
        "1 images seen more than 1 times (once per pass at most)",
        "1 images seen fewer than 1 times",
    ]
    # N=10, G=4: a pass keeps 8 and drops 2, so 2 unseen images after one pass are correct.
    assert _proof([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], global_batch=4, steps=2)["visits_ok"]
    # 3 steps (E' = 1.2): the last pass saw 4 images, so at most 4 of 8 can be seen twice.
    assert _proof([2, 2, 2, 2, 1, 1, 1, 1, 0, 0], global_batch=4, steps=3)["visits_ok"]
    proof = _proof([0, 0, 0, 0, 2, 2, 2, 2, 2, 2], global_batch=4, steps=3)
    assert proof["feasible"] is False and proof["problems"] == [
        "4 images seen fewer than 2 times (4 unseen) cannot come from 1 whole passes dropping "
        "2 images each and a last pass leaving 6 out"
    ]


def test_misses_feasible_is_the_gale_ryser_condition():
    # images 0 and 1 fell in both dropped tails
    assert misses_feasible(np.array([0, 0, 2, 2, 2, 2, 2, 2, 2, 2]), 2, [2, 2])
    assert not misses_feasible(np.array([0, 1, 1, 2, 2, 2, 2, 2, 2, 2]), 2, [6, 0])
    assert misses_feasible(np.array([1, 1, 1, 1, 1, 1, 2, 2, 2, 2]), 2, [6, 0])


def test_the_sampler_replay_is_exact_and_catches_a_swap():
    counts = replayed_visits(10, 4, 7, seed=3)
    assert counts.sum() == 28 and counts.max() <= 4
    assert _proof(counts, global_batch=4, steps=7, seed=3)["exact"] is True
    swapped = counts.copy()
    low, high = int(np.argmin(counts)), int(np.argmax(counts))
    swapped[low] += 1
    swapped[high] -= 1
    proof = _proof(swapped, global_batch=4, steps=7, seed=3)
    assert proof["exact"] is False
    assert proof["problems"][-1] == "2 images' counts differ from the sampler's order (seed 3)"


def test_an_unreadable_entrys_visits_go_to_the_next_readable_one_wrapping():
    unreadable = np.array([False, True, True, False, False, True])
    planned = np.array([1, 2, 3, 4, 5, 6])
    assert substituted_visits(planned, unreadable).tolist() == [7, 0, 0, 9, 5, 0]
    # entry 3's 9 visits spread over itself, 1 and 2; entry 0's 7 over itself and 5
    spread = spread_visits(np.array([7, 0, 0, 9, 5, 0]), unreadable)
    assert sorted(spread.tolist()) == [3, 3, 3, 3, 4, 5]


def test_the_fewest_unreadable_entries_are_inferred_through_unvisited_ones():
    planned = np.array([1, 1, 0, 1, 1, 0, 1, 1])
    # entry 1 skipped (its visit passes through the unplanned 2 to 3); 7 wraps round to 0
    counts = np.array([2, 0, 0, 2, 1, 0, 1, 0])
    inferred = inferred_unreadable(counts, planned)
    assert np.flatnonzero(inferred).tolist() == [1, 2, 7]  # not 5: nothing passed through it
    assert substituted_visits(planned, inferred).tolist() == counts.tolist()


def test_a_run_with_substituted_images_is_proven_under_the_rule():
    planned = replayed_visits(40, 8, 7, seed=1)  # one pass of 5 steps and 2 steps of the next
    unreadable = np.zeros(40, dtype=bool)
    unreadable[[3, 4, 39]] = True
    counts = substituted_visits(planned, unreadable)
    assert counts.max() > 2  # more than the passes allow one image, without the rule
    for known in (unreadable, None):  # recorded by the run, or inferred by ledger show
        proof = visit_proof(counts, 0, global_batch=8, steps=7, seed=1, unreadable=known)
        assert proof["visits_ok"] and proof["exact"] and proof["feasible"], proof["problems"]
        assert proof["unreadable"] == int(inferred_unreadable(counts, planned).sum())
    no_seed = visit_proof(counts, 0, global_batch=8, steps=7, unreadable=unreadable)
    assert no_seed["visits_ok"] and no_seed["exact"] is None and no_seed["unreadable"] == 3
    # Told that another entry was the unreadable one, the counts no longer fit.
    wrong = unreadable.copy()
    wrong[[39, 10]] = False, True  # 39 readable (yet unvisited), 10 unreadable (yet visited)
    proof = visit_proof(counts, 0, global_batch=8, steps=7, seed=1, unreadable=wrong)
    assert not proof["visits_ok"] and proof["problems"][0] == "1 unreadable images were visited"
    assert re.fullmatch(
        r"\d+ images' counts differ from the sampler's order with 3 unreadable images replaced "
        r"\(seed 1\)",
        proof["problems"][-1],
    )


def test_an_entry_taken_for_unreadable_that_reads_fine_stays_a_problem(digits_indexes):
    subset = select_subset(open_index(digits_indexes["train"]), -1)
    planned = replayed_visits(len(subset), 64, 10, seed=0)
    skipped = np.zeros(len(subset), dtype=bool)
    skipped[np.flatnonzero(planned)[:2]] = True  # two good digits "skipped" without cause
    counts = substituted_visits(planned, skipped)
    confirmed = unreadable_entries(subset, counts, planned)  # reads the two: they decode
    assert not confirmed.any()
    proof = visit_proof(counts, 0, global_batch=64, steps=10, seed=0, unreadable=confirmed)
    assert not proof["visits_ok"] and proof["unreadable"] == 0
    assert re.fullmatch(r"\d+ images' counts differ .* \(seed 0\)", proof["problems"][-1])


def _row(out: str, label: str) -> list[str]:
    (line,) = [line for line in out.splitlines() if re.search(rf"│\s*{re.escape(label)} │", line)]
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def _histogram(out: str) -> dict[int, int]:
    bars = re.findall(r"^\s*(\d+) visits?\s+│█*\s+([\d,]+) images$", out, flags=re.MULTILINE)
    return {int(v): int(n.replace(",", "")) for v, n in bars}


def _show(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["ledger", "show", *map(str, args)]) == 0
    return capsys.readouterr().out


class ProofAtEnd(pl.Callback):
    """Record :func:`trainer_visit_proof` at the end of training, as the budget ledger can."""

    def on_train_end(self, trainer, pl_module):
        self.proof = trainer_visit_proof(trainer)


def test_ledger_show_on_a_finished_and_an_unfinished_run(compose_cfg, tmp_path, capsys):
    at_end = ProofAtEnd()
    result = run_pretrain(compose_cfg(overrides=RUN), callbacks=[at_end])
    run_dir = result.checkpoint.parent
    ledger = json.loads((run_dir / "ledger.json").read_text())
    visits = np.load(run_dir / "visits.npz")
    counts = visits["counts"].astype(np.int64)
    written = json.loads((run_dir / "visits.json").read_text())
    assert written["visits_ok"] and written["exact"] and written["images_seen"] == 1600
    assert written["allowed"] == [0, 2] and written["dropped_per_pass"] == 30
    assert at_end.proof == written

    out = _show(capsys, run_dir)
    assert f"run {run_dir} (finished)" in out
    assert _row(out, "images") == ["images", "1,600", f"{ledger['images_seen']:,}"]
    assert _row(out, "optimizer steps") == ["optimizer steps", "25", "25"]
    assert _row(out, "match")[-1] == "yes" and _row(out, "resumes")[-1] == "0"
    assert _row(out, "visits per image (min)")[1] == str(counts.min())
    assert _row(out, "visits per image (max)")[1:] == [str(counts.max()), "<= 2"]
    assert _row(out, "images unseen")[1] == str(int((counts == 0).sum()))
    assert _row(out, "visits outside the subset")[1:] == ["0", "0"]
    assert _row(out, "visits ok")[1] == "yes"
    assert _row(out, "equal to the sampler's replay")[1] == "yes"
    histogram = _histogram(out)
    assert histogram == {v: n for v, n in enumerate(np.bincount(counts).tolist()) if n}
    assert sum(histogram.values()) == ledger["N"] == 1438
    assert sum(v * n for v, n in histogram.items()) == ledger["images_seen"] == 1600

    report = json.loads(_show(capsys, run_dir.parent, "--json"))  # the method folder: newest run
    assert report["run"] == str(run_dir) and report["status"] == "finished"
    assert report["visits"] == {**written, "problems": []}
    assert (report["plan"]["C_eff"], report["optimizer_steps"], report["match"]) == (1600, 25, True)

    step10 = next(run_dir.glob("*-step=10.ckpt"))
    report = json.loads(_show(capsys, step10, "--json"))
    assert report["status"] == "unfinished" and report["match"] is None
    assert (report["images_seen"], report["optimizer_steps"]) == (640, 10)
    assert report["visits"]["images_seen"] == 640 and report["visits"]["exact"] is True
    assert report["visits"]["histogram"] == {"0": 798, "1": 640}

    killed = tmp_path / "killed"  # a run folder whose training stopped after step 20
    killed.mkdir()
    step20 = next(run_dir.glob("*-step=20.ckpt"))
    for name in ("args.json", step20.name, step20.name + ".sha256"):
        shutil.copy(run_dir / name, killed / name)
    out = _show(capsys, killed)
    assert f"run {killed} (unfinished)" in out and _row(out, "match")[-1] == "unfinished"
    assert _row(out, "images") == ["images", "1,600", "1,280"]
    assert _row(out, "visits ok")[1] == "yes"
    assert sum(_histogram(out).values()) == 1438
    assert sum(v * n for v, n in _histogram(out).items()) == 1280


def _fake_finished_run(folder):
    """A run folder as a finished run leaves it (N=8, G=4, 3 steps), without training."""
    folder.mkdir(parents=True)
    plan = {"C": 12, "N": 8, "N_ref": 8, "global_batch": 4, "steps": 3, "mode": "images"}
    plan |= {"C_eff": 12, "E": 1.5, "D": 2 / 3}
    ledger = {**plan, "images_seen": 12, "optimizer_steps": 3, "world_size": 1, "resumes": 0}
    (folder / "ledger.json").write_text(json.dumps({**ledger, "match": True}))
    counts = np.array([2, 2, 2, 2, 1, 1, 1, 1], dtype=np.uint8)
    np.savez_compressed(folder / "visits.npz", counts=counts, positions=np.arange(8), outside=0)
    return folder


def test_a_hand_written_finished_run_shows_without_a_seed(tmp_path, capsys):
    run = _fake_finished_run(tmp_path / "simclr" / "abc")
    report = json.loads(_show(capsys, run, "--json"))
    assert report["visits"]["visits_ok"] and report["visits"]["exact"] is None
    assert "not checked" in _show(capsys, run)


def test_ledger_show_exits_1_when_the_visit_proof_fails(tmp_path, capsys):
    run = _fake_finished_run(tmp_path / "simclr" / "abc")
    counts = np.array([3, 2, 2, 2, 1, 1, 1, 0], dtype=np.uint8)  # one image seen three times
    np.savez_compressed(run / "visits.npz", counts=counts, positions=np.arange(8), outside=0)
    capsys.readouterr()
    assert main(["ledger", "show", str(run), "--json"]) == 1
    out, err = capsys.readouterr()
    assert not json.loads(out)["visits"]["visits_ok"]
    assert err == ("ledger check failed: 1 images seen more than 2 times (once per pass at most)\n")


def test_ledger_show_exits_1_when_the_ledger_does_not_match(tmp_path, capsys):
    run = _fake_finished_run(tmp_path / "simclr" / "abc")
    ledger = json.loads((run / "ledger.json").read_text())
    (run / "ledger.json").write_text(json.dumps({**ledger, "match": False}))
    capsys.readouterr()
    assert main(["ledger", "show", str(run)]) == 1
    assert capsys.readouterr().err == (
        "ledger check failed: the counted images or steps differ from the plan\n"
    )


def _error(capsys, path) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["ledger", "show", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_missing_folder_is_one_line(tmp_path, capsys):
    assert _error(capsys, tmp_path / "nope") == (
        f"error: {tmp_path / 'nope'} does not exist; give a run folder, a checkpoint or a "
        "method folder\n"
    )


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert _error(capsys, tmp_path / "empty") == (
        f"error: {tmp_path / 'empty'} is not a run: no ledger.json, args.json or *.ckpt in it or "
        "its folders\n"
    )


def test_a_corrupt_visits_file_is_one_line(tmp_path, capsys):
    run = _fake_finished_run(tmp_path / "run")
    (run / "visits.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    assert _error(capsys, run).startswith(
        f"error: {run / 'visits.npz'} is not a readable visits file (BadZipFile: "
    )


def test_a_corrupt_ledger_json_is_one_line(tmp_path, capsys):
    run = _fake_finished_run(tmp_path / "run")
    (run / "ledger.json").write_text('{"C": 12,')
    assert _error(capsys, run).startswith(
        f"error: {run / 'ledger.json'} is not a readable JSON file (JSONDecodeError: "
    )


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, capsys):
    bogus = tmp_path / "run" / "x.ckpt"
    bogus.parent.mkdir()
    bogus.write_text("not a checkpoint")
    assert _error(capsys, bogus).startswith(f"error: {bogus} does not load as a checkpoint (")


def test_a_run_folder_without_an_intact_checkpoint_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "args.json").write_text("{}")
    assert _error(capsys, run) == (
        f"error: {run} has no ledger.json and no intact checkpoint: nothing to show yet\n"
    )
