#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Supp. Table 2: Barlow Twins and BYOL, ResNet-50, ImageNet 10%/100% or YFCC100M, C = 98e6,
# probed on six sets.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   imagenet: ImageNet-1k train/val class folders
#   yfcc100m: the YFCC100M index
#   downstream: stanford_cars, flowers102, oxford_pets, places365, food101
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/supp_noncontrastive.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment supp_noncontrastive "${BASH_SOURCE[0]}" "$@"
