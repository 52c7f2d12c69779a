# SPDX-License-Identifier: MIT
"""solo-learn's pretraining YAMLs for the seven methods, typed out as upstream ships them.

``scripts/pretrain/{cifar,imagenet-100}/<method>.yaml`` with their ``augmentations/`` and
``wandb/`` groups: every key and value as in solo-learn's repository (comments dropped), so the
tests run the files users have. :func:`write_suite` writes one suite's folder.
"""

from __future__ import annotations

from pathlib import Path

METHODS = ("simclr", "mocov3", "vicreg", "dino", "byol", "barlow", "swav")
SUITES = ("cifar", "imagenet-100")

HEADER = """defaults:
  - _self_
{augmentations}  - wandb: private.yaml
  - override hydra/hydra_logging: disabled
  - override hydra/job_logging: disabled

hydra:
  output_subdir: null
  run:
    dir: .

"""

TAIL = """scheduler:
  name: "warmup_cosine"
checkpoint:
  enabled: True
  dir: "trained_models"
  frequency: 1
auto_resume:
  enabled: True

max_epochs: {max_epochs}
devices: {devices}
sync_batchnorm: True
accelerator: "gpu"
strategy: "ddp"
precision: 16-mixed
"""

LARS = """  kwargs:
    clip_lr: True
    eta: 0.02
    exclude_bias_n_norm: True
"""


def _data(suite: str, train: str, val: str) -> str:
    if suite == "cifar":
        return f"""data:
  dataset: cifar10
  train_path: "./datasets"
  val_path: "{val}"
  format: "image_folder"
  num_workers: 4
"""
    return f"""data:
  dataset: imagenet100
  train_path: "{train}"
  val_path: "{val}"
  format: "dali"
  num_workers: 4
"""


def _optimizer(lr: str, classifier_lr: str, wd: str, batch: int) -> str:
    return (
        f"""optimizer:
  name: "lars"
  batch_size: {batch}
  lr: {lr}
  classifier_lr: {classifier_lr}
  weight_decay: {wd}
"""
        + LARS
    )


# (augmentation group or None, method block, data paths (train, val) for imagenet-100 / cifar val)
def _method(method: str, suite: str) -> tuple[str | None, str, str, tuple[str, str, str]]:
    big = suite == "imagenet-100"
    ds_a = ("datasets/imagenet100/train", "datasets/imagenet100/val", "datasets/imagenet100/val")
    ds_b = ("./datasets/imagenet-100/train", "./datasets/imagenet-100/val", "./datasets")
    if method == "simclr":
        hidden, out = ("4096", "512") if big else ("2048", "256")
        block = f"""method: "simclr"
backbone:
  name: "resnet18"
method_kwargs:
  proj_hidden_dim: {hidden}
  proj_output_dim: {out}
  temperature: 0.2
"""
        return "symmetric.yaml", block, "0.3" if big else "0.4", ds_a
    if method == "mocov3":
        block = """method: "mocov3"
backbone:
  name: "resnet18"
method_kwargs:
  proj_hidden_dim: 4096
  proj_output_dim: 256
  pred_hidden_dim: 4096
  temperature: 0.2
momentum:
  base_tau: 0.99
  final_tau: 1.0
"""
        return "asymmetric.yaml", block, "0.3", ds_b
    if method == "vicreg":
        block = """method: "vicreg"
backbone:
  name: "resnet18"
method_kwargs:
  proj_hidden_dim: 2048
  proj_output_dim: 2048
  sim_loss_weight: 25.0
  var_loss_weight: 25.0
  cov_loss_weight: 1.0
"""
        return ("vicreg.yaml" if big else None), block, "0.3", ds_a
    if method == "dino":
        warm = "  warmup_teacher_temperature_epochs: 50\n" if big else ""
        block = f"""method: "dino"
backbone:
  name: "resnet18"
method_kwargs:
  proj_hidden_dim: 2048
  proj_output_dim: 256
  num_prototypes: 4096
{warm}momentum:
  base_tau: 0.9995
  final_tau: 1.0
"""
        return "asymmetric.yaml", block, "0.3", ds_b
    if method == "byol":
        block = f"""method: "byol"
backbone:
  name: "resnet18"
method_kwargs:
  proj_hidden_dim: 4096
  proj_output_dim: 256
  pred_hidden_dim: {8192 if big else 4096}
momentum:
  base_tau: 0.99
  final_tau: 1.0
"""
        return "asymmetric.yaml", block, "0.5" if big else "1.0", ds_b
    if method == "barlow":
        block = """method: "barlow_twins"
backbone:
  name: "resnet18"
method_kwargs:
  proj_hidden_dim: 2048
  proj_output_dim: 2048
  scale_loss: 0.1
"""
        return "asymmetric.yaml", block, "0.3", ds_b
    block = """method: "swav"
backbone:
  name: "resnet18"
method_kwargs:
  proj_hidden_dim: 2048
  queue_size: 3840
  proj_output_dim: 128
  num_prototypes: 3000
  epoch_queue_starts: 50
  freeze_prototypes_epochs: 2
  temperature: 0.1
"""
    return "symmetric.yaml", block, "0.6", ds_a


OPTIMIZER = {  # method -> (classifier_lr, weight_decay on cifar, on imagenet-100)
    "simclr": ("0.1", "1e-4", "1e-4"),
    "mocov3": ("0.3", "1e-6", "1e-6"),
    "vicreg": ("0.1", "1e-4", "1e-4"),
    "dino": ("0.1", "1e-6", "1e-6"),
    "byol": ("0.1", "1e-5", "1e-6"),
    "barlow": ("0.1", "1e-4", "1e-4"),
    "swav": ("0.1", "1e-6", "1e-6"),
}

VICREG_AUGMENTATIONS = """augmentations:
  - rrc:
      enabled: True
      crop_min_scale: 0.2
      crop_max_scale: 1.0
    color_jitter:
      enabled: True
      brightness: 0.4
      contrast: 0.4
      saturation: 0.2
      hue: 0.1
      prob: 0.8
    grayscale:
      enabled: True
      prob: 0.2
    gaussian_blur:
      enabled: {blur}
      prob: {blur_prob}
    solarization:
      enabled: True
      prob: 0.1
    equalization:
      enabled: False
      prob: 0.0
    horizontal_flip:
      enabled: True
      prob: 0.5
    crop_size: {crop}
    num_crops: 2
"""


def method_yaml(method: str, suite: str) -> str:
    """The text of ``scripts/pretrain/<suite>/<method>.yaml``."""
    big = suite == "imagenet-100"
    group, block, lr, (train, val, cifar_val) = _method(method, suite)
    augmentations = f"  - augmentations: {group}\n" if group else ""
    name = "barlow_twins" if method == "barlow" else method
    text = HEADER.format(augmentations=augmentations)
    text += f'name: "{name}-{"imagenet100" if big else "cifar10"}"\n' + block
    text += _data(suite, train, val if big else cifar_val)
    if method == "vicreg":
        text += VICREG_AUGMENTATIONS.format(
            blur="True" if big else "False",
            blur_prob="0.5" if big else "0.0",
            crop=224 if big else 32,
        )
    classifier_lr, wd_cifar, wd_big = OPTIMIZER[method]
    text += _optimizer(lr, classifier_lr, wd_big if big else wd_cifar, 128 if big else 256)
    return text + TAIL.format(max_epochs=400 if big else 1000, devices="[0, 1]" if big else "[0]")


def augmentation_yaml(views: list[tuple[str, str, str, str]], crop: int, crops: int) -> str:
    """One preset: per view (crop_min_scale, "brightness/contrast/saturation/hue", blur, solar)."""
    out = []
    for min_scale, jitter, blur, solar in views:
        brightness, contrast, saturation, hue = jitter.split("/")
        out.append(f"""- rrc:
    enabled: True
    crop_min_scale: {min_scale}
    crop_max_scale: 1.0
  color_jitter:
    prob: 0.8
    brightness: {brightness}
    contrast: {contrast}
    saturation: {saturation}
    hue: {hue}
  grayscale:
    prob: 0.2
  gaussian_blur:
    prob: {blur}
  solarization:
    prob: {solar}
  equalization:
    prob: 0.0
  horizontal_flip:
    prob: 0.5
  crop_size: {crop}
  num_crops: {crops}
""")
    return "\n".join(out)


def augmentation_groups(suite: str) -> dict[str, str]:
    """``augmentations/*.yaml`` of a suite that the seven methods use."""
    crop = 224 if suite == "imagenet-100" else 32
    strong = ("0.08", "0.8/0.8/0.8/0.2", "0.5", "0.0")
    if suite == "cifar":
        asym = [
            ("0.08", "0.4/0.4/0.2/0.1", "0.0", "0.0"),
            ("0.08", "0.4/0.4/0.2/0.1", "0.0", "0.2"),
        ]
    else:
        asym = [
            ("0.08", "0.4/0.4/0.2/0.1", "1.0", "0.0"),
            ("0.08", "0.4/0.4/0.2/0.1", "0.1", "0.2"),
        ]
    groups = {
        "symmetric.yaml": augmentation_yaml([strong], crop, 2),
        "asymmetric.yaml": augmentation_yaml(asym, crop, 1),
    }
    if suite == "imagenet-100":
        groups["vicreg.yaml"] = augmentation_yaml(
            [("0.2", "0.4/0.4/0.2/0.1", "0.5", "0.1")], crop, 2
        )
    return groups


WANDB_PRIVATE = """enabled: True
entity: None
project: "solo-learn"
"""


def write_suite(root: Path, suite: str) -> Path:
    """Write ``<root>/<suite>/``: the seven method YAMLs and their groups; returns the folder."""
    folder = root / suite
    (folder / "augmentations").mkdir(parents=True, exist_ok=True)
    (folder / "wandb").mkdir(exist_ok=True)
    for method in METHODS:
        (folder / f"{method}.yaml").write_text(method_yaml(method, suite))
    for name, text in augmentation_groups(suite).items():
        (folder / "augmentations" / name).write_text(text)
    (folder / "wandb" / "private.yaml").write_text(WANDB_PRIVATE)
    return folder
