#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Table 2: SimCLR and MoCoV3, ResNet-50 and ViT-B/16, pretrained on ImageNet subsets of
# 10/20/50/100% or on YFCC100M with C = 98e6 (one YFCC epoch, 77 ImageNet epochs), each probed on
# six sets with all their labels.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   imagenet: ImageNet-1k train/val class folders
#   yfcc100m: the YFCC100M index (98.17M image paths, solo-div index build list ...)
#   downstream: stanford_cars, flowers102, oxford_pets, places365, food101 (the probes' data paths)
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/table2_imagenet_yfcc.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment table2_imagenet_yfcc "${BASH_SOURCE[0]}" "$@"
