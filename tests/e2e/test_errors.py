# SPDX-License-Identifier: MIT
"""Each bad input to a pretraining run gets its own one-line message."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from contextlib import chdir
from pathlib import Path

import pytest

from solo_diversity.entry import exit_on_user_error, path_error_line
from solo_diversity.errors import UserError
from solo_diversity.run.pretrain import run_pretrain
from tests import zygote
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.fraction=0"], r"^data.fraction=0 must be in \(0, 1\], or -1 for all images$"),
        (["data.fraction=1.5"], r"^data.fraction=1.5 must be in \(0, 1\], or -1 for all images$"),
        (["budget.C=100"], r"^budget C=100 images is smaller than one global batch of 128 images$"),
        (
            ["data.fraction=0.05"],
            r"^the subset has N=72 images, fewer than one global batch of 128",
        ),
        (["method=simclrr"], r"^unknown method 'simclrr'; choose one of .*simclr"),
        (["backbone.name=resnet19"], r"^unknown backbone 'resnet19'; choose one of .*resnet18"),
        (
            ["+budget.c=5"],
            r"^unknown key budget.c; the budget group takes C, mode, epochs, reference_size, "
            r"epoch_keys, allow_late_switches$",
        ),
        (["data.dataset=cifar100"], r"holds dataset 'digits'.*cifar100"),
    ],
)
def test_bad_run_inputs(compose_cfg, overrides, message):
    with pytest.raises(UserError, match=message):
        run_pretrain(compose_cfg(overrides=overrides))


def test_missing_index_of_a_dataset_that_cannot_be_built(compose_cfg, tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(UserError, match="nope.h5"):
        run_pretrain(compose_cfg(overrides=["data.dataset=custom", f"data.train_path={missing}"]))


def test_corrupt_index(compose_cfg, tmp_path):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(UserError, match="corrupt.h5"):
        run_pretrain(compose_cfg(overrides=[f"data.train_path={corrupt}"]))


def test_the_entry_point_prints_one_line_and_exits_2(tmp_path):
    proc = zygote.run(
        [
            sys.executable,
            str(REPO / "main_pretrain.py"),
            "--config-name",
            "simclr_div",
            "data.fraction=2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines()[-1]
        == "error: data.fraction=2 must be in (0, 1], or -1 for all images"
    )
    assert "Traceback" not in proc.stderr


# Process-level faults: the machine, not the config, is what is wrong.

TINY = [
    "--config-name", "simclr_div", "optimizer.batch_size=32", "budget.C=64",
    "+backbone.kwargs.width=8", "data.num_workers=0", "++budget.allow_late_switches=true",
]  # fmt: skip


def _pretrain(cwd: Path, *args: str, **streams) -> subprocess.CompletedProcess[str]:
    """main_pretrain.py on the tiny config in ``cwd``; ``streams`` redirect stdout/stderr."""
    return zygote.run(
        [sys.executable, str(REPO / "main_pretrain.py"), *TINY, *args],
        cwd=cwd, text=True, timeout=300, check=False,
        **{"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **streams},
    )  # fmt: skip


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only tmpfs (we are root, as in tests/config/test_bad_config.py), unmounted after."""
    folder = tmp_path / "ro"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_working_directory_is_one_line(read_only_folder):
    proc = _pretrain(read_only_folder)  # the default data folder, datasets/, is built here first
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"error: .*datasets/digits.*\(Read-only file system\).*", last), last
    assert list(read_only_folder.iterdir()) == []


def test_a_checkpoint_dir_relative_to_a_read_only_working_directory(compose_cfg, read_only_folder):
    """The run's data is elsewhere; only its checkpoints would go to the working directory."""
    cfg = compose_cfg(overrides=["checkpoint.dir=trained_models", "data.val_path=null"])
    with chdir(read_only_folder), pytest.raises(UserError) as err:
        run_pretrain(cfg)
    assert str(err.value) == (
        f"checkpoint.dir: cannot write in {read_only_folder} (Read-only file system); give a "
        "writable folder, or run from a writable folder"
    )


def test_a_checkpoint_dir_name_too_long_for_the_file_system(compose_cfg, tmp_path):
    name = "a" * 300
    with pytest.raises(UserError) as err:
        run_pretrain(compose_cfg(overrides=[f"checkpoint.dir={tmp_path / name}"]))
    assert str(err.value) == (
        f"checkpoint.dir: the folder name {'a' * 24}... is 300 bytes, longer than the 255 a name "
        "may have here; give a shorter checkpoint.dir"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_named_datasets_in_the_working_directory(compose_cfg, tmp_path, capfd):
    """The default data folder is a file: the digits index cannot be built under it."""
    (tmp_path / "datasets").write_text("notes")
    cfg = compose_cfg(overrides=["data.train_path=datasets/digits/train.h5", "data.val_path=null"])
    with chdir(tmp_path), pytest.raises(SystemExit) as stop:
        with exit_on_user_error():
            run_pretrain(cfg)
    assert stop.value.code == 2
    err = capfd.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert re.fullmatch(r"error: .*datasets/digits.*(Not a directory|is a file).*", last), last
    assert (tmp_path / "datasets").read_text() == "notes"


def test_a_path_under_a_file_names_the_file(tmp_path):
    """The line any entry point prints for a folder that a file blocks (relative or not)."""
    (tmp_path / "datasets").write_text("notes")
    with chdir(tmp_path):  # the line is made where the error happened, as in an entry point
        with pytest.raises(OSError) as err:
            Path("datasets/digits").mkdir(parents=True, exist_ok=True)
        line = path_error_line(err.value)
    assert line == (
        f"datasets in the working directory {tmp_path} is a file, so datasets/digits cannot be "
        "created; move it or give a path outside it"
    )
    with pytest.raises(OSError) as err:
        (tmp_path / "datasets" / "digits").mkdir(parents=True, exist_ok=True)
    assert path_error_line(err.value) == (
        f"{tmp_path / 'datasets'} is a file, so {tmp_path / 'datasets' / 'digits'} cannot be "
        "created; move it or give a path outside it"
    )


def test_a_loggers_folder_in_a_read_only_working_directory(read_only_folder, compose_cfg, capfd):
    """Without checkpoints nothing is checked before the loggers write: the entry's line."""
    cfg = compose_cfg(
        overrides=[
            "checkpoint.dir=trained_models",
            "checkpoint.enabled=false",
            "data.val_path=null",
        ]
    )
    with chdir(read_only_folder), pytest.raises(SystemExit) as stop:
        with exit_on_user_error():
            run_pretrain(cfg)
    assert stop.value.code == 2
    last = capfd.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(r"error: .*trained_models.*\(Read-only file system\).*", last), last


def test_stdout_to_dev_full_is_one_line_on_stderr(tmp_path):
    with open("/dev/full", "w") as full:
        proc = _pretrain(tmp_path, stdout=full)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: standard output (fd 1) cannot be written (No space left on device); run with "
        "both streams writable, e.g. > run.log 2>&1\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("closed", "name", "said_on"), [(">&-", "standard output (fd 1)", "stderr"),
                                    ("2>&-", "standard error (fd 2)", "stdout")],
)  # fmt: skip
def test_a_closed_stream_is_one_line_on_the_other(tmp_path, closed, name, said_on):
    command = shlex.join([sys.executable, str(REPO / "main_pretrain.py"), *TINY])
    proc = subprocess.run(
        f"exec {command} {closed}",
        shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert getattr(proc, said_on) == (
        f"error: {name} is closed; run with both streams writable, e.g. > run.log 2>&1\n"
    )


def test_both_streams_unwritable_exit_2_in_silence(tmp_path):
    with open("/dev/full", "w") as full:
        proc = _pretrain(tmp_path, stdout=full, stderr=full)
    assert proc.returncode == 2
    assert list(tmp_path.iterdir()) == []
