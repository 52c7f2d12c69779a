# SPDX-License-Identifier: MIT
"""Feature extractors for distances: a small registry, local weight files and offline errors.

Two kinds of :class:`Extractor` exist. *Pooled* ones map (B, 3, H, W) to (B, D) and feed FID:
``inception`` (clean-fid's own TorchScript Inception-v3 in "clean" mode), and
``torchvision:<arch>`` / ``timm:<name>`` with a local weight file. *Layered* ones map
(B, 3, H, W) to ``{layer: (B, C, h, w)}`` and feed VisualDNA: ``mugs_vit_base`` (vdna's MUGS
ViT-B/16) and ``dinov2_vit_base`` (DINOv2 ViT-B/14 from timm, wired through vdna's custom-extractor
interface). Weights never download silently into odd places: each extractor names the file it
reads; when the file is missing and a download fails, a one-line ``UserError`` says what to place
where. Layered weights live under ``$SOLO_DIV_WEIGHTS`` (default ``~/.cache/solo-diversity``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from solo_diversity.errors import UserError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/" + INCEPTION_FILE
)
VDNA_HUB_REPO = "bramtoula/visual-dna-models"


@dataclass
class Extractor:
    """A frozen network plus the input convention it expects.

    Attributes:
        name: registry name, e.g. ``"inception"``.
        module: eval-mode network; pooled: (B, 3, H, W) -> (B, D); layered:
            (B, 3, H, W) -> {layer: (B, C, h, w)}.
        input_size: ``(H, W)`` the clean resize produces.
        scale: factor on [0, 255] pixels before normalising.
        mean: per-channel mean, after scaling.
        std: per-channel std, after scaling.
        layers: layered extractors only: neurons (channels) per layer.
        ranges_path: layered only: JSON of per-neuron activation ranges (read, or written once).
    """

    name: str
    module: nn.Module
    input_size: tuple[int, int]
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layers: dict[str, int] | None = None
    ranges_path: Path | None = field(default=None)

    @property
    def slug(self) -> str:
        """The name made safe for file names (no ``:``, ``/`` or ``.``)."""
        return "".join(c if c.isalnum() or c in "_-" else "_" for c in self.name)

    @cached_property
    def fingerprint(self) -> str:
        """Hex sha256 of the module's state (names, shapes, values): its weights' cache key.

        Values are hashed as raw bytes; 0-d buffers (BatchNorm's ``num_batches_tracked``) are
        flattened first, since a 0-d tensor cannot be viewed as bytes of another element size.
        """
        digest = hashlib.sha256()
        for key, value in self.module.state_dict().items():
            digest.update(key.encode())
            tensor = value.detach().cpu().contiguous()
            digest.update(str(tuple(tensor.shape)).encode())
            raw = tensor.reshape(-1).view(torch.uint8) if tensor.numel() else None
            digest.update(raw.numpy().tobytes() if raw is not None else b"")
        return digest.hexdigest()


Builder = Callable[[Path | None], Extractor]
POOLED: dict[str, Builder] = {}
LAYERED: dict[str, Builder] = {}


def register_extractor(name: str, *, layered: bool) -> Callable[[Builder], Builder]:
    """Decorator adding ``builder(weights: Path | None) -> Extractor`` to a registry."""

    def add(builder: Builder) -> Builder:
        (LAYERED if layered else POOLED)[name] = builder
        return builder

    return add


def build_extractor(name: str, *, layered: bool, weights: str | Path | None = None) -> Extractor:
    """Build a registered extractor, or ``torchvision:<arch>`` / ``timm:<name>`` (pooled only).

    Args:
        name: registry name.
        layered: ``True`` for VisualDNA extractors, ``False`` for FID (pooled) ones.
        weights: a weight file (or folder) overriding the default location.

    Returns:
        The :class:`Extractor`, in eval mode with gradients off.

    Raises:
        UserError: unknown name (the message lists the valid ones) or missing weights.
    """
    registry = LAYERED if layered else POOLED
    path = Path(weights).expanduser() if weights is not None else None
    if not layered and name.startswith(("torchvision:", "timm:")):
        library, _, arch = name.partition(":")
        extractor = (_torchvision if library == "torchvision" else _timm)(name, arch, path)
    elif name in registry:
        extractor = registry[name](path)
    else:
        extra = ", torchvision:<arch>, timm:<name>" if not layered else ""
        kind = "--extractor" if layered else "--feature-extractor"
        raise UserError(
            f"unknown {kind} {name!r}; choose from {', '.join(sorted(registry))}{extra}"
        )
    extractor.module.eval().requires_grad_(False)
    return extractor


def weights_root() -> Path:
    """``$SOLO_DIV_WEIGHTS``, else ``~/.cache/solo-diversity``: where layered weights live."""
    return Path(os.environ.get("SOLO_DIV_WEIGHTS", "~/.cache/solo-diversity")).expanduser()


def missing_file(what: str, path: Path, source: str) -> UserError:
    """The one-line offline error: which file to place where, and where it comes from."""
    return UserError(f"{what} not found at {path}: place the file there (download: {source})")


def _require(path: Path, what: str, source: str) -> Path:
    if not path.is_file():
        raise missing_file(what, path, source)
    return path


# ---------------------------------------------------------------- FID: clean-fid's Inception


def inception_default_dir() -> Path:
    """The folder clean-fid itself downloads its Inception file to (``/tmp``; ``./`` on Windows)."""
    return Path("./" if platform.system() == "Windows" else "/tmp")


@register_extractor("inception", layered=False)
def inception(weights: Path | None) -> Extractor:
    """clean-fid's TorchScript Inception-v3 (pool3, 2048-d), fed [0, 255] images at 299x299.

    ``weights`` may be the file ``inception-2015-12-05.pt`` or its folder; by default clean-fid's
    own location is used and, when the file is absent, clean-fid's downloader is tried once.
    """
    from cleanfid.downloads_helper import check_download_inception
    from cleanfid.inception_torchscript import InceptionV3W

    if weights is not None:
        folder = weights.parent if weights.suffix == ".pt" else weights
        if weights.suffix == ".pt" and weights.name != INCEPTION_FILE:
            raise UserError(f"Inception weights must be named {INCEPTION_FILE}, got {weights}")
        _require(folder / INCEPTION_FILE, "Inception weights", INCEPTION_URL)
    else:
        folder = inception_default_dir()
        if not (folder / INCEPTION_FILE).is_file():
            log.info("downloading %s to %s", INCEPTION_URL, folder)
            try:
                check_download_inception(fpath=str(folder))
            except OSError as err:  # URLError is an OSError
                (folder / INCEPTION_FILE).unlink(missing_ok=True)
                raise missing_file(
                    "Inception weights", folder / INCEPTION_FILE, INCEPTION_URL
                ) from err
    module = InceptionV3W(str(folder), download=False, resize_inside=False)
    return Extractor("inception", module, (299, 299), scale=1.0)


class _Pooled(nn.Module):
    """Flatten any network output to (B, D)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


def _load_state(path: Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def _torchvision(name: str, arch: str, weights: Path | None) -> Extractor:
    import torchvision

    if arch not in torchvision.models.list_models():
        raise UserError(f"unknown torchvision model {arch!r}; see torchvision.models.list_models()")
    if weights is None:
        raise UserError(f"{name} needs --weights PATH to a local state_dict (.pth) file")
    net = torchvision.models.get_model(arch, weights=None)
    net.load_state_dict(_load_state(_require(weights, f"{name} weights", "torchvision")))
    for head in ("fc", "classifier", "heads", "head"):
        if hasattr(net, head):
            setattr(net, head, nn.Identity())
            break
    return Extractor(name, _Pooled(net), (224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)


def _timm(name: str, arch: str, weights: Path | None) -> Extractor:
    import timm

    if not timm.is_model(arch):
        raise UserError(f"unknown timm model {arch!r}; see timm.list_models()")
    if weights is None:
        raise UserError(f"{name} needs --weights PATH to a local .pth or .safetensors file")
    _require(weights, f"{name} weights", "the model's timm / Hugging Face page")
    net: Any = timm.create_model(
        arch, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(weights)}
    )
    cfg: dict[str, Any] = dict(net.pretrained_cfg)
    _, height, width = cfg.get("input_size", (3, 224, 224))
    mean, std = tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
    return Extractor(name, _Pooled(net), (height, width), mean=mean, std=std)


# ---------------------------------------------------------------- VisualDNA: ViT-B extractors


class TokenLayers(nn.Module):
    """Run a ViT and return each block's tokens and the final norm's as (B, C, N, 1) maps.

    This is the layout vdna uses for its ViT extractors: every token of every block is one spatial
    sample of each of the C neurons.

    Args:
        vit: the transformer.
        blocks: its transformer blocks, in order.
        norm: the final LayerNorm.
        run: ``run(x)`` executes the forward pass (hooks collect the outputs).
    """

    def __init__(
        self,
        vit: nn.Module,
        blocks: nn.ModuleList,
        norm: nn.Module,
        run: Callable[[torch.Tensor], Any],
    ) -> None:
        super().__init__()
        self.vit = vit
        self._names = [f"block_{i}" for i in range(len(blocks))] + ["last_norm"]
        self._run = run
        self._out: dict[str, torch.Tensor] = {}
        for name, layer in zip(self._names, [*blocks, norm], strict=True):
            layer.register_forward_hook(self._keep(name))

    def _keep(self, name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            self._out[name] = output

        return hook

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._out = {}
        self._run(x)
        return {n: self._out[n].permute(0, 2, 1).unsqueeze(3) for n in self._names}


def mugs_files() -> tuple[Path, Path]:
    """(weights.pth, activation_ranges.json) of vdna's MUGS ViT-B/16, mirroring the hub layout."""
    folder = weights_root() / "vdna" / "Mugs" / "mugs_vit_base"
    return folder / "weights.pth", folder / "activation_ranges.json"


def _fetch_from_vdna_hub(path: Path, what: str) -> Path:
    """Return ``path``, downloading it from vdna's hub repository when absent."""
    if path.is_file():
        return path
    relative = path.relative_to(weights_root() / "vdna").as_posix()
    url = f"https://huggingface.co/{VDNA_HUB_REPO}/resolve/main/{relative}"
    try:
        from huggingface_hub import hf_hub_download

        log.info("downloading %s to %s", url, path)
        hf_hub_download(
            repo_id=VDNA_HUB_REPO, filename=relative, local_dir=str(weights_root() / "vdna")
        )
    except Exception as err:  # any hub/network failure -> the offline message
        raise missing_file(what, path, url) from err
    return _require(path, what, url)


def mugs_vit_base(weights: Path | None = None, *, random_init: bool = False) -> Extractor:
    """MUGS ViT-B/16 as in vdna (Zhou et al., arXiv:2203.14415): 12 blocks + norm, 768 neurons each.

    Args:
        weights: a folder holding ``weights.pth`` and ``activation_ranges.json`` (default: under
            :func:`weights_root`, fetched from vdna's hub when online).
        random_init: skip the weights (for timing the architecture only).
    """
    from vdna.networks.mugs_vit import vit_base

    default_weights, default_ranges = mugs_files()
    if weights is not None:
        default_weights, default_ranges = (
            weights / "weights.pth",
            weights / "activation_ranges.json",
        )
    if not random_init:
        if weights is None:
            path = _fetch_from_vdna_hub(default_weights, "MUGS ViT-B/16 weights")
            _fetch_from_vdna_hub(default_ranges, "MUGS activation ranges")
        else:
            hub = f"https://huggingface.co/{VDNA_HUB_REPO}/resolve/main/Mugs/mugs_vit_base/"
            path = _require(default_weights, "MUGS ViT-B/16 weights", hub + "weights.pth")
            _require(default_ranges, "MUGS activation ranges", hub + "activation_ranges.json")
    vit = vit_base(num_relation_blocks=1)
    if not random_init:
        vit.load_state_dict(_load_state(path), strict=True)
    module = TokenLayers(vit, vit.blocks, vit.norm, vit)
    layers = {f"block_{i}": 768 for i in range(12)} | {"last_norm": 768}
    return Extractor(
        "mugs_vit_base",
        module,
        (224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        layers=layers,
        ranges_path=None if random_init else default_ranges,
    )


def dinov2_folder() -> Path:
    """Where ``dinov2_vit_base`` looks for ``weights.pth`` and writes ``activation_ranges.json``."""
    return weights_root() / "dinov2_vit_base"


def dinov2_vit_base(weights: Path | None = None, *, random_init: bool = False) -> Extractor:
    """DINOv2 ViT-B/14 (Oquab et al., arXiv:2304.07193) via timm at 224 px; 12 blocks + norm.

    DINOv2 ships only patch-14 models; the paper's "ViT-B/16 (DINOv2)" is this network. The weight
    file may be torch hub's ``dinov2_vitb14_pretrain.pth`` or timm's ``model.safetensors``; timm
    converts either.

    Args:
        weights: the weight file or its folder (default :func:`dinov2_folder`/``weights.pth``).
        random_init: skip the weights (for timing the architecture only).
    """
    import timm

    folder = (
        dinov2_folder() if weights is None else (weights if weights.is_dir() else weights.parent)
    )
    file = weights if weights is not None and not weights.is_dir() else folder / "weights.pth"
    source = (
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth "
        "or hf.co/timm/vit_base_patch14_dinov2.lvd142m"
    )
    kwargs: dict[str, Any] = {"img_size": 224, "num_classes": 0}
    if not random_init:
        _require(file, "DINOv2 ViT-B/14 weights", source)
        kwargs |= {"pretrained": True, "pretrained_cfg_overlay": {"file": str(file)}}
    vit: Any = timm.create_model("vit_base_patch14_dinov2", **kwargs)
    module = TokenLayers(vit, vit.blocks, vit.norm, vit.forward_features)
    layers = {f"block_{i}": 768 for i in range(12)} | {"last_norm": 768}
    return Extractor(
        "dinov2_vit_base",
        module,
        (224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        layers=layers,
        ranges_path=None if random_init else folder / "activation_ranges.json",
    )


register_extractor("mugs_vit_base", layered=True)(mugs_vit_base)
register_extractor("dinov2_vit_base", layered=True)(dinov2_vit_base)
