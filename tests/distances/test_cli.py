# SPDX-License-Identifier: MIT
from __future__ import annotations

import json

import pytest

from solo_diversity.cli import main


def test_fid_command_prints_and_writes_json(make_dataset, registered, tmp_path, capsys):
    a, b = make_dataset("a", n=20), make_dataset("b", n=20, shift=0.5)
    out = tmp_path / "fid.json"
    code = main(
        [
            "distance",
            "fid",
            f"{a}:0.5",
            str(b),
            "--feature-extractor",
            "tiny_fid",
            "--max-samples",
            "8",
            "--seed",
            "3",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    record = json.loads(out.read_text())
    assert (record["a"], record["b"], record["n_a"], record["n_b"]) == ("a:0.5", "b", 8, 8)
    assert record["fid"] > 0
    assert capsys.readouterr().out.startswith(f"FID(a:0.5, b) = {record['fid']:.4f}  [tiny_cnn, ")


def test_vdna_command_reuses_saved_vdnas(make_dataset, registered, tmp_path, capsys):
    a, b = make_dataset("a", n=12), make_dataset("b", n=12, shift=0.5)
    args = [
        "distance",
        "vdna",
        str(a),
        str(b),
        "--extractor",
        "tiny_vdna",
        "--bins",
        "30",
        "--json",
        str(tmp_path / "v.json"),
    ]
    assert main(args) == 0
    first = json.loads((tmp_path / "v.json").read_text())
    assert main(args) == 0
    second = json.loads((tmp_path / "v.json").read_text())
    assert not first["cached_a"] and second["cached_a"] and second["cached_b"]
    assert first["emd"] == second["emd"] > 0
    assert "VisualDNA EMD(a, b) = " in capsys.readouterr().out


def test_missing_weights_exit_with_the_offline_message(make_dataset, tmp_path, capsys):
    a = make_dataset("a", n=4)
    with pytest.raises(SystemExit) as exit_info:
        main(["distance", "fid", str(a), str(a), "--weights", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: Inception weights not found at {tmp_path / 'nowhere'}/")
    assert "place the file there (download: https://" in err and "\n" not in err


def test_fid_with_a_batchnorm_torchvision_extractor(make_dataset, tmp_path, capsys):
    # resnet18's BatchNorm has 0-d num_batches_tracked buffers, which the weights fingerprint
    # (the feature cache's key) once failed on
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    a, b = make_dataset("a", n=4), make_dataset("b", n=4, shift=0.5)
    args = [
        "distance",
        "fid",
        str(a),
        str(b),
        "--feature-extractor",
        "torchvision:resnet18",
        "--weights",
        str(tmp_path / "r18.pth"),
        "--json",
        str(tmp_path / "fid.json"),
    ]
    assert main(args) == 0
    record = json.loads((tmp_path / "fid.json").read_text())
    assert (record["n_a"], record["n_b"], record["extractor"]) == (4, 4, "torchvision:resnet18")
    assert record["fid"] > 0
    assert capsys.readouterr().out.startswith(
        f"FID(a, b) = {record['fid']:.4f}  [torchvision:resnet18, n=4 vs 4]"
    )
