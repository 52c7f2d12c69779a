# SPDX-License-Identifier: MIT
"""What ``data prepare`` writes by default is what a run of the data group opens, unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from solo_diversity.cli import main
from solo_diversity.config.pretrain import PRETRAIN_DEFAULTS
from solo_diversity.index import ensure_index
from tests.conftest import CONFIG_DIR
from tests.prepare import fakes


def test_a_run_of_the_data_group_opens_the_prepared_indexes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fakes.tinyimagenet(tmp_path / "dl", ["n01443537", "n01629819"], 1, {"val_0.JPEG": "n01629819"})
    assert main(["data", "prepare", "tinyimagenet", "--from", str(tmp_path / "dl")]) == 0
    written = sorted(Path("datasets/.indexes").glob("*.h5"))
    stamps = [p.stat().st_mtime_ns for p in written]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        data = compose(config_name="simclr_div", overrides=["data=tinyimagenet"]).data
    opened = [
        ensure_index(
            data.dataset,
            data[key],
            split=split,
            seed=int(data.index_seed),
            data_format=data.format,
            cache_dir=Path(PRETRAIN_DEFAULTS["data.index_cache"]),
        )
        for key, split in (("train_path", "train"), ("val_path", "test"))
    ]
    assert sorted(opened) == written and len(written) == 2
    assert [p.stat().st_mtime_ns for p in written] == stamps


def test_a_missing_from_path_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as exit_:
        main(["data", "prepare", "food101", "--from", str(missing), "--out", str(tmp_path / "d")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --from {missing} does not exist; give the folder or archive of the download"
    )
    assert not (tmp_path / "d").exists()
