# SPDX-License-Identifier: MIT
"""``solo-div build synthetic`` on a tiny random pipeline saved offline: the scheduler, prompts and
per-image seeds, regeneration from a recorded seed, shards, interrupt and resume, the index, and
bad input as one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from solo_diversity.builders.synthetic import cli
from solo_diversity.builders.synthetic import generate as syn
from solo_diversity.builders.synthetic.cli import main
from solo_diversity.errors import UserError
from solo_diversity.index import open_index
from tests.builders.tiny_sd import save_tiny_pipeline

CLASSES = ("tench", "goldfish", "great white shark")
PER_CLASS = 3  # batch 2: batches [0, 1] and [2] per class


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: the tiny pipeline is fastest so, and a busy CPU is not fought over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return save_tiny_pipeline(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def pipe(weights):
    return syn.load_pipeline(weights, "cpu")


def settings_for(weights: Path, **changes) -> syn.Settings:
    base = {
        "classes": CLASSES,
        "wnids": ("", "", ""),
        "per_class": PER_CLASS,
        "seed": 5,
        "size": 32,
        "steps": 2,
        "guidance": 7.5,
        "batch": 2,
        "weights": syn.weights_fingerprint(weights),
    }
    return syn.Settings(**{**base, **changes})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, pipe, weights) -> tuple[Path, syn.ShardResult]:
    """One uninterrupted single-shard run: 3 classes x 3 images at 32 px, 2 steps."""
    out = tmp_path_factory.mktemp("reference")
    return out, syn.build_shard(pipe, settings_for(weights), out, syn.Shard(0, 1))


def pixels(out: Path) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(out)): np.asarray(Image.open(p))
        for p in sorted((out / syn.IMAGES_DIR).rglob("*.png"))
    }


def records(out: Path) -> list[dict]:
    rows = []
    for manifest in sorted((out / syn.MANIFEST_DIR).glob("*.jsonl")):
        rows += [json.loads(line) for line in manifest.read_text().splitlines()]
    return rows


def same_pixels(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """The same images: every pixel equal, up to one grey level in at most 0.1% of the values.

    The same pipeline run twice on the same batch may round a value differently (oneDNN picks
    kernels by memory alignment: measured, one value in 3,072 moved by one level), while a wrong
    seed, prompt or batch changes nearly every pixel by tens of levels.
    """
    if a.keys() != b.keys():
        return False
    for k in a:
        diff = np.abs(a[k].astype(np.int16) - b[k].astype(np.int16))
        if a[k].shape != b[k].shape or diff.max() > 1 or (diff > 0).mean() > 1e-3:
            return False
    return True


def test_scheduler_is_dpmsolver_pp_with_the_papers_betas(pipe):
    from diffusers import DPMSolverMultistepScheduler

    config = pipe.scheduler.config
    assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler)  # the saved one was DDIM
    assert (config.beta_start, config.beta_end) == (0.00085, 0.012)
    assert (config.beta_schedule, config.algorithm_type, config.solver_order) == (
        "scaled_linear",
        "dpmsolver++",
        2,
    )
    assert pipe.safety_checker is None  # the tiny weights ship none


def test_prompts_and_distinct_seeds_are_recorded(reference):
    out, result = reference
    rows = records(out)
    assert result.generated == len(rows) == len(CLASSES) * PER_CLASS
    assert {r["prompt"] for r in rows} == {f"A photo of a {c}" for c in CLASSES}
    assert all(r["prompt"] == f"A photo of a {CLASSES[r['class']]}" for r in rows)
    seeds = [r["seed"] for r in rows]
    assert len(set(seeds)) == len(seeds)
    assert seeds == [syn.image_seed(5, r["class"], r["image"]) for r in rows]
    assert {(r["steps"], r["guidance"], r["size"]) for r in rows} == {(2, 7.5, 32)}


def test_one_image_regenerated_from_its_recorded_seed_is_identical(reference, weights):
    out, _ = reference
    row = next(r for r in records(out) if (r["class"], r["image"]) == (1, 2))  # a batch of one
    fresh = syn.load_pipeline(weights, "cpu")
    image = fresh(
        prompt=row["prompt"],
        generator=torch.Generator("cpu").manual_seed(row["seed"]),
        num_inference_steps=row["steps"],
        guidance_scale=row["guidance"],
        height=row["size"],
        width=row["size"],
    ).images[0]
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(out / row["file"])))


def test_two_shards_split_classes_and_match_one_shard(reference, pipe, weights, tmp_path):
    settings = settings_for(weights)
    first = syn.build_shard(pipe, settings, tmp_path, syn.Shard(0, 2))
    assert first.index is None  # shard 1 has not run yet
    second = syn.build_shard(pipe, settings, tmp_path, syn.Shard(1, 2))
    assert second.index == tmp_path / "index.h5"  # the last shard writes the index
    by_shard = {
        m.stem: {json.loads(line)["class"] for line in m.read_text().splitlines()}
        for m in (tmp_path / syn.MANIFEST_DIR).glob("*.jsonl")
    }
    assert by_shard == {"shard-0-of-2": {0, 2}, "shard-1-of-2": {1}}
    assert same_pixels(pixels(tmp_path), pixels(reference[0]))


def test_interrupt_then_resume_gives_the_uninterrupted_pixels(reference, pipe, weights, tmp_path):
    settings = settings_for(weights)

    def stop_after_three(record: dict) -> None:
        if len(records(tmp_path)) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        syn.build_shard(pipe, settings, tmp_path, syn.Shard(0, 1), after_image=stop_after_three)
    files = sorted((tmp_path / syn.IMAGES_DIR).rglob("*"))
    assert [p.name for p in files if p.is_file()] == ["00000.png", "00001.png", "00002.png"]
    # What a SIGKILL could leave: a temporary file and a manifest line cut short.
    (tmp_path / syn.IMAGES_DIR / "0001").mkdir(exist_ok=True)
    (tmp_path / syn.IMAGES_DIR / "0001" / ".00000.png.tmp").write_bytes(b"\x89PNG half")
    with open(tmp_path / syn.MANIFEST_DIR / "shard-0-of-1.jsonl", "a") as f:
        f.write('{"file": "images/0001/0000')
    resumed = syn.build_shard(pipe, settings, tmp_path, syn.Shard(0, 1))
    assert (resumed.generated, resumed.skipped) == (6, 3)
    assert not [p for p in (tmp_path / syn.IMAGES_DIR).rglob(".*")]
    files = [r["file"] for r in records(tmp_path)]
    assert len(files) == len(set(files)) == 9
    assert same_pixels(pixels(tmp_path), pixels(reference[0]))


def test_index_has_count_labels_and_class_names(reference):
    out, result = reference
    assert result.index == out / "index.h5"
    index = open_index(result.index)
    assert len(index) == 9 and index.class_names == list(CLASSES)
    assert np.bincount(index.labels()).tolist() == [3, 3, 3]
    for i in range(len(index)):
        assert index.entry_name(i).startswith(f"images/{index.labels([i])[0]:04d}/")
        assert index.file_path(i).is_file()
    source = json.loads(index.source)
    assert source["scheduler"]["algorithm_type"] == "dpmsolver++" and source["seed"] == 5
    beside = (out / "index.h5.manifest.jsonl").read_text().splitlines()
    assert len(beside) == 9 and all("seed" in json.loads(line) for line in beside)


@pytest.mark.parametrize(
    ("wnids", "names"),
    [(("n01440764", "n01443537"), ["n01440764", "n01443537"]), (("n01440764", ""), ["a", "b"])],
)
def test_index_class_names_are_wnids_when_every_class_has_one(
    pipe, weights, tmp_path, wnids, names
):
    settings = settings_for(weights, classes=("a", "b"), wnids=wnids, per_class=1)
    index = open_index(syn.build_shard(pipe, settings, tmp_path, syn.Shard(0, 1)).index)
    assert index.class_names == names
    assert json.loads(index.source)["classes"] == ["a", "b"]  # the prompts' names


def test_collect_rewrites_the_index(reference, tmp_path, capsys):
    out, _ = reference
    target = tmp_path / "again.h5"
    assert main(["build", "synthetic", "--collect", "--out", str(out), "--index", str(target)]) == 0
    assert len(open_index(target)) == 9


def test_collect_before_all_shards_is_one_line(pipe, weights, tmp_path):
    syn.build_shard(pipe, settings_for(weights, per_class=1), tmp_path, syn.Shard(0, 2))
    with pytest.raises(UserError, match="1 of 3 images .* not made yet"):
        syn.collect(tmp_path)


def test_resume_with_other_settings_is_refused(reference, pipe, weights):
    with pytest.raises(UserError, match="other guidance, seed"):
        syn.build_shard(
            pipe, settings_for(weights, seed=6, guidance=3.0), reference[0], syn.Shard(0, 1)
        )


def test_missing_weights_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "no-weights"
    argv = ["build", "synthetic", "--weights", str(missing), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--classes", str(tmp_path / "c.txt")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(missing) in err and "stable-diffusion-2-1" in err and "save_pretrained" in err


@pytest.mark.slow  # a child process imports torch and diffusers: about 8 s on 2 busy cores
def test_cli_runs_a_shard_in_a_child_process(reference, weights, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("n01440764\ttench\ngoldfish\n# a comment\nn01491361\tgreat white shark\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "RANK": "1"}
    env["WORLD_SIZE"] = "2"  # torchrun's second of two processes
    argv = ["build", "synthetic", "--weights", str(weights), "--classes", str(classes)]
    argv += ["--out", str(tmp_path), "--per-class", "3", "--seed", "5", "--size", "32"]
    argv += ["--steps", "2", "--batch", "2", "--device", "cpu"]
    child = [sys.executable, "-m", "solo_diversity.builders.synthetic.cli", *argv]
    done = subprocess.run(child, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "shard-1-of-2: 3 images made" in done.stdout
    made = pixels(tmp_path)
    assert made.keys() == {k for k in pixels(reference[0]) if k.startswith("images/0001/")}
    assert same_pixels(made, {k: v for k, v in pixels(reference[0]).items() if k in made})


@pytest.mark.slow  # a child process imports torch and diffusers: about 8 s on 2 busy cores
def test_sigterm_to_a_child_then_resume(reference, pipe, weights, tmp_path):
    """SIGTERM as soon as the child has written one image: exit 143, nothing partial; resuming
    finishes the set, and its first batch of each class equals the reference's."""
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    argv = ["build", "synthetic", "--weights", str(weights), "--classes", str(classes)]
    argv += ["--out", str(tmp_path / "set"), "--per-class", "40", "--seed", "5", "--size", "32"]
    argv += ["--steps", "2", "--batch", "2", "--device", "cpu", "--shard", "0/1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "solo_diversity.builders.synthetic.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    manifest = tmp_path / "set" / syn.MANIFEST_DIR / "shard-0-of-1.jsonl"
    deadline = time.monotonic() + 60
    while not (manifest.is_file() and manifest.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143 and "run the same command again to resume" in err
    made = len(records(tmp_path / "set"))
    assert 0 < made < 120 and not list((tmp_path / "set").rglob(".*.tmp"))
    resumed = syn.build_shard(
        pipe, settings_for(weights, per_class=40), tmp_path / "set", syn.Shard(0, 1)
    )
    assert (resumed.skipped, resumed.generated) == (made, 120 - made)
    files = [r["file"] for r in records(tmp_path / "set")]
    assert len(files) == len(set(files)) == 120
    first = {
        k: v for k, v in pixels(reference[0]).items() if k.endswith(("00000.png", "00001.png"))
    }
    assert same_pixels(first, {k: v for k, v in pixels(tmp_path / "set").items() if k in first})


ARRAY = {"SLURM_ARRAY_TASK_COUNT": "3"}


@pytest.mark.parametrize(
    ("env", "shard"),
    [
        ({}, (0, 1)),
        ({"RANK": "3", "WORLD_SIZE": "8"}, (3, 8)),
        ({"SLURM_PROCID": "2", "SLURM_NTASKS": "4"}, (2, 4)),
        ({**ARRAY, "SLURM_ARRAY_TASK_ID": "1"}, (1, 3)),
        ({**ARRAY, "SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "5"}, (1, 3)),
        ({**ARRAY, "SLURM_ARRAY_TASK_ID": "2", "RANK": "1", "WORLD_SIZE": "4"}, (9, 12)),
    ],
)
def test_shard_from_launcher_environment(env, shard):
    assert cli.shard_from_env(env) == syn.Shard(*shard)


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2", "0/0"])
def test_bad_shard_is_one_line(text):
    with pytest.raises(UserError, match="--shard must be K/M"):
        cli.parse_shard(text)


def test_shards_cover_every_class_once():
    owners = [[k for k in range(4) if syn.Shard(k, 4).owns(c)] for c in range(10)]
    assert all(len(o) == 1 for o in owners)


def test_classes_file_with_and_without_wnids(tmp_path):
    listing = tmp_path / "c.txt"
    listing.write_text("n01440764\ttench\n\n# skip\ngoldfish\n")
    assert cli.read_classes(listing) == (("tench", "goldfish"), ("n01440764", ""))
    listing.write_text("cat\ncat\n")
    with pytest.raises(UserError, match="repeats cat"):
        cli.read_classes(listing)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give --classes FILE"),
        (["--classes", "{listing}", "--size", "30"], "--size must be a multiple of 8"),
        (["--classes", "{listing}", "--per-class", "0"], "--per-class must be >= 1"),
        (["--classes", "{listing}", "--shard", "2/2"], "--shard must be K/M"),
        (["--classes", "{missing}"], "no such file"),
    ],
)
def test_bad_cli_input_is_one_line_exit_2(weights, tmp_path, capsys, extra, message):
    listing = tmp_path / "c.txt"
    listing.write_text("cat\n")
    fill = {"listing": str(listing), "missing": str(tmp_path / "none.txt")}
    argv = ["build", "synthetic", "--weights", str(weights), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, *(a.format(**fill) for a in extra)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and message in err


def test_auto_device_and_dtype_on_a_cpu_only_machine(monkeypatch):
    from solo_diversity.builders.synthetic.cli import resolve_device, resolve_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", {}) == "cpu" and resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda:0") == torch.float16
    with pytest.raises(UserError, match="no CUDA device"):
        resolve_device("cuda", {})
    with pytest.raises(UserError, match="--dtype must be"):
        resolve_dtype("bf8", "cpu")


def test_weights_fingerprint_ignores_a_download_cache(weights, tmp_path):
    import shutil

    copy = shutil.copytree(weights, tmp_path / "copy")
    (copy / ".cache").mkdir()
    (copy / ".cache" / "lock").write_text("x")
    assert syn.weights_fingerprint(copy) == syn.weights_fingerprint(weights)
    (copy / "unet" / "config.json").write_text("{}")
    assert syn.weights_fingerprint(copy) != syn.weights_fingerprint(weights)
