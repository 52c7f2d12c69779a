# SPDX-License-Identifier: MIT
"""scripts/fig3_imagenet100.sh --imagenet-index builds B and B u A_out_source, says the rest."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from solo_diversity.index import open_index

REPO = Path(__file__).resolve().parents[2]


def _cells(env: dict[str, str]) -> dict[str, list[str]]:
    out = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "solo-div") if (REPO / ".venv").is_dir() else "solo-div",
            "experiment",
            "cells",
            "fig3_imagenet100",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {c["id"]: c["missing"] for c in json.loads(out.stdout)}


def test_fig3_builds_its_sets_then_only_unbuilt_cells_are_missing(imagenet_index, tmp_path):
    sets = tmp_path / "sets"
    env = {**os.environ, "FIG3_SETS": str(sets)}
    out = subprocess.run(
        [
            "bash",
            str(REPO / "scripts" / "fig3_imagenet100.sh"),
            "--imagenet-index",
            str(imagenet_index),
            "--a-out-size",
            "20",
            "--a-out-classes",
            "5",
            "--only",
            "simclr-in_web",
            "--runs",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "r.jsonl"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 1, out.stderr  # the one cell asked for has no set yet
    assert f"fig3: {sets}/A_in_web.h5 is not built yet" in out.stdout
    assert "simclr-in_web/seed0: skipped, it needs data.train_path=" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "runs").exists()
    b, a_out = open_index(sets / "B.h5"), open_index(sets / "A_out_source.h5")
    union = open_index(sets / "b_union_a_out_source.h5", expected_dataset="imagenet100")
    assert len(union) == len(b) + len(a_out) == len(b) + 20
    assert b.dataset == "imagenet100"
    missing = _cells(env)
    # built, and planned from their own indexes: too small here for one global batch of 256
    built = (("simclr-B", "B.h5", b), ("dino-out_source", "b_union_a_out_source.h5", union))
    for cell, path, index in built:
        assert missing[cell] == [
            f"data.train_path={sets / path} (the subset has N={len(index)} images, fewer than one "
            "global batch of 256; use a larger fraction or a smaller optimizer.batch_size)"
        ], missing[cell]
    assert missing["simclr-in_web"] and missing["vicreg-out_synthetic"]
