# SPDX-License-Identifier: MIT
"""One prepared GPU check (``scripts/gpu_check.sh``): five stages, each under a time limit.

GPU time comes rarely and briefly, so every GPU path is checked and measured in one call of about
8 minutes on one H100: (1) SimCLR ResNet-18 pretraining on the DALI GPU path, then with batch
augmentation on the device, each with an exact ledger; (2) SIGKILL and resume against an
uninterrupted twin (max |dw|, visit counts); (3) the GPU rows of ``bench_loader`` at 224 and
32 px beside its CPU rows; (4) the GPU rows of ``bench_pretrain`` with the bare model's rate;
(5) the synthetic builder at 768 px on random SD-2.1-shaped weights. Each stage is a list of the
command lines a user would type (``main_pretrain.py``, ``solo-div``, the bench scripts), so
``--dry-run`` prints them. The stages make their own small data under OUT. A stage that fails or
runs out of time is recorded and the next one runs. Results: ``OUT/gpu_check.json`` and
``OUT/gpu_check.md``, one row per stage with its key figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import gpu_check_helpers as helpers

NO_GPU = "gpu_check: no CUDA device visible; nothing to check (run it on a GPU machine)"
ME = "bench.gpu_check"
#: ResNet-18 with solo-learn's CIFAR stem on 2 x 32 px crops (bench_pretrain's cifar preset).
MODEL = (
    "data=cifar100",
    "data.crop_size=32",
    "augmentations=cifar_symmetric",
    "backbone.name=resnet18",
    "++backbone.small_input_stem=true",
)
#: bench_loader's presets, each its own command and JSON: the 32 px one first, as it is quicker,
#: so that a stage stopped at its limit still reports it.
LOADER_PRESETS = ("sym32", "sym224")
GPU_RUN = (
    "accelerator=gpu",
    "devices=1",
    "precision=bf16-mixed",
    "optimizer.batch_size=256",
    "scheduler.warmup_epochs=0",
    "data.val_path=null",
    "data.num_workers=8",
    "++seed=0",
    "++enable_progress_bar=false",
)


@dataclass(frozen=True)
class Stage:
    """One check: its command lines, run in order, and the time they share.

    Attributes:
        name: short id (the report's row).
        what: the check in words.
        commands: argv lists, run from the repository root one after the other.
        timeout_s: the time limit of all its commands together.
        figures: reads the stage's key figures from OUT after it ran.
    """

    name: str
    what: str
    commands: tuple[tuple[str, ...], ...]
    timeout_s: int
    figures: Callable[[Path], dict[str, Any]]


def _solo_div() -> tuple[str, ...]:
    """``solo-div`` of this Python's environment; its module when the command is not installed."""
    beside = Path(sys.executable).parent / "solo-div"
    return (str(beside),) if beside.exists() else (sys.executable, "-m", "solo_diversity.cli")


def _pretrain(*overrides: str) -> tuple[str, ...]:
    return (sys.executable, "main_pretrain.py", "--config-name", "simclr_div", *overrides)


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _ledgers(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted(root.glob("*/*/*/ledger.json")):
        ledger, run = json.loads(path.read_text()), path.parents[2].name
        out[f"{run}.match"] = ledger.get("match")
        out[f"{run}.images_seen"] = ledger.get("images_seen")
    return out


def _loader_rates(out: Path) -> dict[str, Any]:
    reports = [_read(out / f"bench_loader_{preset}.json") for preset in LOADER_PRESETS]
    return {
        f"{name}.{row['key']}": row["images_per_s"]
        for report in reports
        if report
        for name, preset in report["presets"].items()
        for row in preset["rows"]
    }


def _pretrain_rates(out: Path) -> dict[str, Any]:
    report = _read(out / "bench_pretrain.json") or {"rows": []}
    return {r["row"]: r["images_per_s"] for r in report["rows"]}


def _synthetic(out: Path) -> dict[str, Any]:
    return {"images": len(list((out / "synthetic").glob("images/*/*.png")))}


def _argv(head: tuple[str, ...], words: str, *more: str) -> tuple[str, ...]:
    """A command line: the program (its path may hold spaces), fixed words split on spaces, then
    arguments that may hold spaces (paths).
    """
    return (*head, *words.split(), *more)


def stages(out: Path) -> list[Stage]:
    """The five stages, their commands writing under ``out`` (absolute)."""
    data, me, solo_div = out / "data", (sys.executable, "-m", ME), _solo_div()
    photos_index, small_index = data / "photos.h5", data / "small" / "index.h5"
    pretrain = [*MODEL, *GPU_RUN, f"budget.C={256 * 40}", f"++data.index_cache={data}"]
    on_photos = ["data.dataset=bench_photos", f"data.train_path={photos_index}"]
    on_small = ["data.dataset=bench_small", f"data.train_path={small_index}"]
    resume = [*MODEL, *GPU_RUN, *on_small, "budget.C=8192", "checkpoint.every_n_steps=8"]
    return [
        Stage(
            "pretrain",
            "SimCLR ResNet-18, bf16: DALI nvJPEG, then batch augmentation on the device",
            (
                _argv(me, "make-data", str(data)),
                _argv(
                    solo_div,
                    "index build folder",
                    str(photos_index),
                    "--root",
                    str(data / "photos"),
                    "--dataset",
                    "bench_photos",
                ),
                _pretrain(
                    *pretrain,
                    *on_photos,
                    "data.format=dali",
                    "++dali.device=gpu",
                    f"checkpoint.dir={out / 'pretrain' / 'dali_gpu'}",
                ),
                _pretrain(
                    *pretrain,
                    *on_small,
                    "++data.augment_backend=batch",
                    "++data.batch_augment_on=device",
                    f"checkpoint.dir={out / 'pretrain' / 'batch_on_device'}",
                ),
            ),
            110,
            lambda o: _ledgers(o / "pretrain"),
        ),
        Stage(
            "resume",
            "SIGKILL after the first step checkpoint, auto_resume, against an uninterrupted twin",
            (
                _argv(
                    me,
                    "resume-check",
                    str(out / "resume"),
                    "--",
                    *resume,
                    "auto_resume.enabled=true",
                ),
            ),
            100,
            lambda o: _read(o / "resume" / "resume.json") or {},
        ),
        Stage(
            "bench_loader",
            "loader img/s at 224 and 32 px: DALI GPU and batch-on-device beside the CPU rows",
            tuple(
                _argv(
                    ("bash",),
                    f"scripts/bench_loader.sh --presets {preset} --quick --workers 8",
                    "--corpus-root",
                    str(data / "bench"),
                    "--out",
                    str(out / f"bench_loader_{preset}.json"),
                )
                for preset in LOADER_PRESETS
            ),
            90,
            _loader_rates,
        ),
        Stage(
            "bench_pretrain",
            "end-to-end img/s, ResNet-18 at 32 px, batch 256: solo-learn's loader, ours, DALI "
            "GPU, and the bare model",
            (
                _argv(
                    ("bash",),
                    "scripts/bench_pretrain.sh --preset cifar"
                    " --rows a,fast,batch,dali_gpu,bare --batch-size 256 --steps 20 --warmup 3"
                    " --num-images 6144 --workers 8"
                    " --accelerator gpu",
                    "--corpus",
                    str(data / "bench_pretrain"),
                    "--out",
                    str(out / "bench_pretrain.json"),
                ),
            ),
            90,
            _pretrain_rates,
        ),
        Stage(
            "synthetic",
            "synthetic builder, random SD-2.1-shaped weights (fp16), 8 images at 768 px",
            (
                _argv(me, "sd21-weights", str(out / "sd21")),
                _argv(
                    solo_div,
                    "build synthetic --per-class 8 --size 768 --steps 20 --batch 8"
                    " --device cuda --dtype fp16 --dataset synthetic_check",
                    "--weights",
                    str(out / "sd21"),
                    "--classes",
                    str(data / "classes.txt"),
                    "--out",
                    str(out / "synthetic"),
                ),
            ),
            80,
            _synthetic,
        ),
    ]


def _run_command(cmd: Sequence[str], log: Any, limit_s: float) -> str:
    """Run one command (its own process group) into ``log``; "ok", "failed" or "timed out"."""
    env = {**os.environ, "PYTHON": sys.executable}  # the bench scripts run this Python
    proc = subprocess.Popen(
        list(cmd),
        cwd=helpers.REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        return "ok" if proc.wait(timeout=max(limit_s, 1.0)) == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return "timed out"


def run_stage(stage: Stage, out: Path, timeout_s: int) -> dict[str, Any]:
    """Run a stage's commands until one fails or the time is up; its row of the report."""
    log_path = out / "logs" / f"{stage.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start, status = time.monotonic(), "ok"
    with log_path.open("w") as log:
        for cmd in stage.commands:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            status = _run_command(cmd, log, timeout_s - (time.monotonic() - start))
            if status != "ok":
                break
    seconds = round(time.monotonic() - start, 1)
    try:
        figures = stage.figures(out)
    except (OSError, KeyError, ValueError, TypeError) as err:
        figures = {"unreadable": f"{type(err).__name__}: {err}"}
    return {
        "stage": stage.name,
        "what": stage.what,
        "status": status,
        "seconds": seconds,
        "timeout_s": timeout_s,
        "figures": figures,
        "log": str(log_path),
    }


def markdown(rows: Sequence[dict[str, Any]], device: str) -> str:
    """The report as a Markdown table: one row per stage."""
    lines = [
        f"# GPU check on {device}",
        "",
        "| stage | status | seconds | key figures |",
        "|---|---|---|---|",
    ]
    for row in rows:
        figures = ", ".join(f"{k}={_short(v)}" for k, v in row["figures"].items()) or "-"
        lines.append(f"| {row['stage']} | {row['status']} | {row['seconds']} | {figures} |")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def dry_run(out: Path, timeout_s: int | None) -> str:
    """The stages in order, each with its time limit and its commands, one per line."""
    lines = []
    for number, stage in enumerate(stages(out), start=1):
        limit = timeout_s or stage.timeout_s
        lines.append(f"stage {number} {stage.name} (timeout {limit} s): {stage.what}")
        lines += [f"  $ {' '.join(cmd)}" for cmd in stage.commands]
    return "\n".join(lines)


def check(out: Path, timeout_s: int | None) -> list[dict[str, Any]]:
    """Run the five stages on the visible GPU; write ``gpu_check.json`` and ``gpu_check.md``.

    Both files are rewritten after every stage, so a call cut short keeps the stages it ran.
    """
    import torch

    device = torch.cuda.get_device_name(0)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for stage in stages(out):
        rows.append(run_stage(stage, out, timeout_s or stage.timeout_s))
        print(
            f"gpu_check: {stage.name}: {rows[-1]['status']} in {rows[-1]['seconds']} s", flush=True
        )
        report = {"device": device, "torch": torch.__version__, "stages": rows}
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "gpu_check.md").write_text(markdown(rows, device))
    return rows


def _helper(argv: Sequence[str]) -> int:
    """The sub-commands the stages call: ``make-data``, ``resume-check``, ``sd21-weights``."""
    if len(argv) < 2:
        print(f"error: {argv[0]} needs a folder: gpu_check {argv[0]} FOLDER", file=sys.stderr)
        return 2
    name, folder, rest = argv[0], Path(argv[1]).resolve(), list(argv[2:])
    if name == "make-data":
        print(json.dumps(helpers.make_data(folder)))
    elif name == "resume-check":
        print(json.dumps(helpers.resume_check(folder, [a for a in rest if a != "--"])))
    else:
        print(helpers.save_sd21_shaped(folder))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``gpu_check.sh [OUT] [--dry-run] [--stage-timeout S]``; exits 0 without a GPU."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("make-data", "resume-check", "sd21-weights"):
        return _helper(argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("results/gpu_check"))
    parser.add_argument("--dry-run", action="store_true", help="list the stages and commands")
    parser.add_argument("--stage-timeout", type=int, help="seconds per stage (default: its own)")
    args = parser.parse_args(argv)
    if args.stage_timeout is not None and args.stage_timeout < 1:
        parser.error(f"--stage-timeout must be >= 1 s, got {args.stage_timeout}")
    out = args.out.resolve()
    if args.dry_run:
        print(dry_run(out, args.stage_timeout))
        return 0
    import torch

    if not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    rows = check(out, args.stage_timeout)
    print(f"gpu_check: {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
