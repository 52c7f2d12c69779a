# SPDX-License-Identifier: MIT
"""A pretraining run folder as solo-learn's own ``main_pretrain.py`` leaves it.

solo-learn's ``Checkpointer`` writes ``{checkpoint.dir}/{method}/{run id}/args.json`` (the whole
parsed config, ``OmegaConf.to_container`` plus ``wandb_run_id``) and, through Lightning's
``trainer.save_checkpoint``, ``{name}-{run id}-ep={epoch}.ckpt`` beside it. :func:`write_run`
writes both for an ImageNet-100 SimCLR ResNet-18 trained on two GPUs with DDP, 16-bit mixed
precision, SyncBatchNorm and ``dali.device: gpu`` (solo-learn writes it whenever DALI imports),
on image folders. The layout was read from a run of solo-learn's main_pretrain.py; the weights
are random and the projector is narrowed (64 -> 32) to keep the file small.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tests.evaluation.probe_inputs import torchvision_resnet18

RUN_ID = "3kq9x2ab"  # wandb's run id, also the folder name
NAME = "simclr-imagenet100"


def _augmentation(crop_size: int) -> dict[str, Any]:
    """solo-learn's ``augmentations/symmetric.yaml`` as args.json stores it (one entry)."""
    return {
        "rrc": {"enabled": True, "crop_min_scale": 0.08, "crop_max_scale": 1.0},
        "color_jitter": {
            "prob": 0.8,
            "brightness": 0.8,
            "contrast": 0.8,
            "saturation": 0.8,
            "hue": 0.2,
        },
        "grayscale": {"prob": 0.2},
        "gaussian_blur": {"prob": 0.5},
        "solarization": {"prob": 0.0},
        "equalization": {"prob": 0.0},
        "horizontal_flip": {"prob": 0.5},
        "crop_size": crop_size,
        "num_crops": 2,
    }


def solo_learn_args(train: Path, val: Path, crop_size: int) -> dict[str, Any]:
    """The args.json of ``scripts/pretrain/imagenet-100/simclr.yaml data.format=image_folder``."""
    return {
        "name": NAME,
        "method": "simclr",
        "backbone": {"name": "resnet18", "kwargs": {}},
        "method_kwargs": {"proj_hidden_dim": 64, "proj_output_dim": 32, "temperature": 0.2},
        "data": {
            "dataset": "imagenet100",
            "train_path": str(train),
            "val_path": str(val),
            "format": "image_folder",
            "num_workers": 4,
            "no_labels": False,
            "fraction": -1,
            "num_classes": 100,
            "num_large_crops": 2,
            "num_small_crops": 0,
        },
        "optimizer": {
            "name": "lars",
            "batch_size": 128,
            "lr": 0.3,
            "classifier_lr": 0.1,
            "weight_decay": 0.0001,
            "kwargs": {"clip_lr": True, "eta": 0.02, "exclude_bias_n_norm": True, "momentum": 0.9},
            "exclude_bias_n_norm_wd": False,
        },
        "scheduler": {
            "name": "warmup_cosine",
            "lr_decay_steps": None,
            "min_lr": 0.0,
            "warmup_start_lr": 3e-05,
            "warmup_epochs": 10,
            "interval": "step",
        },
        "checkpoint": {
            "enabled": True,
            "dir": "trained_models",
            "frequency": 1,
            "keep_prev": False,
        },
        "auto_resume": {"enabled": True, "max_hours": 36},
        "max_epochs": 400,
        "devices": [0, 1],
        "sync_batchnorm": True,
        "accelerator": "gpu",
        "strategy": "ddp",
        "precision": "16-mixed",
        "augmentations": [_augmentation(crop_size)],
        "wandb": {"enabled": True, "entity": None, "project": "solo-learn", "offline": False},
        "dali": {"device": "gpu", "encode_indexes_into_labels": False},
        "debug_augmentations": False,
        "seed": 5,
        "resume_from_checkpoint": None,
        "num_nodes": 1,
        "accumulate_grad_batches": 1,
        "knn_eval": {"enabled": False, "k": 20, "distance_func": "euclidean"},
        "performance": {"disable_channel_last": False},
        "wandb_run_id": RUN_ID,
    }


def solo_learn_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """SimCLR's state dict under solo-learn's names: backbone, 2-layer projector, classifier."""
    torch.manual_seed(seed)
    state = {f"backbone.{k}": v for k, v in torchvision_resnet18(False).state_dict().items()}
    state |= {
        "projector.0.weight": torch.randn(64, 512) * 0.05,
        "projector.0.bias": torch.zeros(64),
        "projector.2.weight": torch.randn(32, 64) * 0.1,
        "projector.2.bias": torch.zeros(32),
        "classifier.weight": torch.randn(100, 512) * 0.01,
        "classifier.bias": torch.zeros(100),
    }
    return state


def write_run(root: Path, train: Path, val: Path, crop_size: int = 32) -> Path:
    """Write the run folder under ``root/trained_models/simclr/``; returns its checkpoint."""
    folder = root / "trained_models" / "simclr" / RUN_ID
    folder.mkdir(parents=True)
    (folder / "args.json").write_text(json.dumps(solo_learn_args(train, val, crop_size)))
    checkpoint = folder / f"{NAME}-{RUN_ID}-ep=399.ckpt"
    torch.save(
        {
            "epoch": 399,
            "global_step": 39_600,
            "pytorch-lightning_version": "2.1.0",
            "state_dict": solo_learn_state(),
            "loops": {},
            "callbacks": {},
            "optimizer_states": [],
            "lr_schedulers": [],
        },
        checkpoint,
    )
    return checkpoint
