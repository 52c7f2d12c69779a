# SPDX-License-Identifier: MIT
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from solo_diversity.data.decode import decode_image
from solo_diversity.distances.extractors import (
    INCEPTION_FILE,
    build_extractor,
    dinov2_vit_base,
    mugs_vit_base,
)
from solo_diversity.distances.features import clean_resize, compute_features
from solo_diversity.distances.samples import sample_dataset
from solo_diversity.errors import UserError


class _PoolProject(nn.Module):
    """(B, 3, 299, 299) -> (B, 2048, 1, 1): average colour, then a fixed linear map."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(299)
        self.proj = nn.Conv2d(3, 2048, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(x))


class _FakeInceptionFile(nn.Module):
    """The interface clean-fid's InceptionV3W uses from the TorchScript file: ``.layers``."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _PoolProject()

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return self.layers(x)


def test_inception_runs_through_clean_fids_model_with_a_placed_file(make_dataset, tmp_path):
    torch.manual_seed(0)
    scripted = torch.jit.script(_FakeInceptionFile())
    scripted.save(str(tmp_path / INCEPTION_FILE))
    extractor = build_extractor("inception", layered=False, weights=tmp_path)
    assert type(extractor.module).__name__ == "InceptionV3W"  # clean-fid's own wrapper
    assert extractor.input_size == (299, 299) and extractor.scale == 1.0
    sample = sample_dataset(make_dataset("a", n=3))
    feats = compute_features(sample, extractor)
    # clean-fid's convention: [0, 255] pixels at 299x299, normalised as (x - 128) / 128
    img = clean_resize(decode_image(sample.index.read_bytes(1)), (299, 299))
    mean_colour = ((img - 128) / 128).reshape(-1, 3).mean(0)
    proj = scripted.layers.proj
    expected = proj.weight.detach().numpy()[:, :, 0, 0] @ mean_colour + proj.bias.detach().numpy()
    assert feats.shape == (3, 2048)
    np.testing.assert_allclose(feats[1], expected, rtol=1e-4, atol=1e-4)


def test_missing_inception_file_says_what_to_place_where(tmp_path):
    with pytest.raises(UserError) as err:
        build_extractor("inception", layered=False, weights=tmp_path / "weights")
    message = str(err.value)
    assert message == (
        f"Inception weights not found at {tmp_path / 'weights' / INCEPTION_FILE}: place the file "
        "there (download: https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
        f"metrics/{INCEPTION_FILE})"
    )
    assert "\n" not in message


def test_missing_dinov2_weights_say_what_to_place_where(tmp_path, monkeypatch):
    monkeypatch.setenv("SOLO_DIV_WEIGHTS", str(tmp_path))
    with pytest.raises(
        UserError,
        match=(
            f"DINOv2 ViT-B/14 weights not found at {tmp_path / 'dinov2_vit_base' / 'weights.pth'}"
            ": place the file there \\(download: https://dl.fbaipublicfiles.com/dinov2/"
        ),
    ):
        build_extractor("dinov2_vit_base", layered=True)


def test_missing_mugs_weights_say_what_to_place_where(tmp_path):
    with pytest.raises(
        UserError,
        match=(
            f"MUGS ViT-B/16 weights not found at {tmp_path / 'weights.pth'}: place the file there"
        ),
    ):
        build_extractor("mugs_vit_base", layered=True, weights=tmp_path)


def test_torchvision_extractor_needs_local_weights(tmp_path):
    with pytest.raises(UserError, match="torchvision:resnet18 needs --weights PATH"):
        build_extractor("torchvision:resnet18", layered=False)
    with pytest.raises(UserError, match="torchvision:resnet18 weights not found at"):
        build_extractor("torchvision:resnet18", layered=False, weights=tmp_path / "r18.pth")


def test_torchvision_extractor_with_a_local_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.get_model("resnet18", weights=None)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    extractor = build_extractor("torchvision:resnet18", layered=False, weights=tmp_path / "r18.pth")
    x = torch.randn(2, 3, 64, 64)
    net.fc = nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(extractor.module(x), net.eval()(x))


def test_unknown_extractor_lists_the_valid_names():
    with pytest.raises(
        UserError, match="unknown --extractor 'clip'; choose from dinov2_vit_base, mugs_vit_base"
    ):
        build_extractor("clip", layered=True)
    with pytest.raises(
        UserError,
        match="unknown --feature-extractor 'vgg'; choose from inception, "
        "torchvision:<arch>, timm:<name>",
    ):
        build_extractor("vgg", layered=False)


@pytest.mark.slow  # two random-init ViT-B/16 builds: ~10 s each on 2 cores
@pytest.mark.parametrize(("build", "tokens"), [(mugs_vit_base, 197), (dinov2_vit_base, 257)])
def test_vit_extractors_give_vdna_layer_maps(build, tokens):
    extractor = build(random_init=True)
    with torch.no_grad():
        out = extractor.module.eval()(torch.zeros(1, 3, 224, 224))
    assert list(out) == [f"block_{i}" for i in range(12)] + ["last_norm"]
    assert all(v.shape == (1, 768, tokens, 1) for v in out.values())
    assert extractor.layers == {name: 768 for name in out}


def test_the_weights_fingerprint_covers_0d_batchnorm_buffers(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    first = build_extractor("torchvision:resnet18", layered=False, weights=tmp_path / "r18.pth")
    again = build_extractor("torchvision:resnet18", layered=False, weights=tmp_path / "r18.pth")
    assert first.fingerprint == again.fingerprint and len(first.fingerprint) == 64
    net.bn1.num_batches_tracked.fill_(7)  # only a 0-d buffer differs
    torch.save(net.state_dict(), tmp_path / "r18b.pth")
    other = build_extractor("torchvision:resnet18", layered=False, weights=tmp_path / "r18b.pth")
    assert other.fingerprint != first.fingerprint
