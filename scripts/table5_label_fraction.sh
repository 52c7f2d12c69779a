#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Table 5: SimCLR and MoCoV3, ResNet-50 and ViT-B/16, pretrained on all of ImageNet or YFCC100M
# (C = 98e6), probed on ImageNet with 5/10/50/100% of its labels. The runs are Table 2's.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   imagenet: ImageNet-1k train/val class folders
#   yfcc100m: the YFCC100M index
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/table5_label_fraction.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment table5_label_fraction "${BASH_SOURCE[0]}" "$@"
