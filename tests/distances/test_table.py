# SPDX-License-Identifier: MIT
from __future__ import annotations

import json

import pytest

from solo_diversity.cli import main
from solo_diversity.distances.extractors import build_extractor
from solo_diversity.distances.fid import fid
from solo_diversity.distances.samples import sample_dataset
from solo_diversity.distances.table import parse_metric
from solo_diversity.distances.vdna import vdna_distance
from solo_diversity.errors import UserError


@pytest.fixture
def paths(make_dataset):
    return {
        name: make_dataset(name, n=16, seed=seed, shift=shift)
        for name, seed, shift in [
            ("imagenet", 0, 0.0),
            ("yfcc", 1, 0.6),
            ("cars", 2, 0.2),
            ("flowers", 3, 0.9),
        ]
    }


def test_table_command_writes_json_and_a_table3_markdown(paths, registered, tmp_path, capsys):
    out = tmp_path / "table3"
    code = main(
        [
            "distance",
            "table",
            "--pretrain",
            str(paths["imagenet"]),
            str(paths["yfcc"]),
            "--downstream",
            str(paths["imagenet"]),
            str(paths["cars"]),
            str(paths["flowers"]),
            "--metrics",
            "vdna:tiny_vdna",
            "fid:tiny_fid",
            "--bins",
            "20",
            "--max-samples",
            "12",
            "--seed",
            "0",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    table = json.loads((out / "distances.json").read_text())
    assert table["pretrain"] == ["imagenet", "yfcc"]
    assert table["downstream"] == ["imagenet", "cars", "flowers"]
    assert (table["max_samples"], table["seed"], table["bins"]) == (12, 0, 20)
    assert len(table["results"]) == 2 * 2 * 3
    cells = {(r["metric"], r["pretrain"], r["downstream"]): r["value"] for r in table["results"]}
    assert cells[("fid", "imagenet", "imagenet")] == pytest.approx(0.0, abs=1e-8)
    assert cells[("vdna", "imagenet", "imagenet")] == 0.0
    # every cell equals the distance computed directly on the same samples
    a = sample_dataset(paths["yfcc"], max_samples=12, seed=0)
    b = sample_dataset(paths["cars"], max_samples=12, seed=0)
    extractor = build_extractor("tiny_fid", layered=False)
    assert cells[("fid", "yfcc", "cars")] == pytest.approx(fid(a, b, extractor).fid, rel=1e-9)
    layered = build_extractor("tiny_vdna", layered=True)
    assert cells[("vdna", "yfcc", "cars")] == vdna_distance(a, b, layered, bins=20).emd
    markdown = (out / "distances.md").read_text().splitlines()
    assert markdown[0] == "**VisualDNA (EMD) ↓**"
    assert markdown[2] == "| D_SSL | Backbone | imagenet | cars | flowers |"
    assert markdown[4].startswith("| imagenet | tiny_cnn | 0.00 | ")
    assert markdown[5].startswith("| yfcc | tiny_cnn | ")
    assert "**FID ↓**" in markdown
    assert f"wrote {out / 'distances.json'}" in capsys.readouterr().out


def test_bad_metric_is_a_user_error():
    with pytest.raises(
        UserError, match="unknown metric 'kid'; use fid, fid:<extractor> or vdna:<extractor>"
    ):
        parse_metric("kid")
