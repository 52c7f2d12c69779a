#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Supp. Table 3: MoCoV3 with ResNet-50/101 and ViT-S/16, ViT-B/16, ImageNet subsets of 10/50/100%
# at C = 98e6 and 294e6, probed on ImageNet. The ResNet-50 and ViT-B/16 cells are Table 4's runs.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   imagenet: ImageNet-1k train/val class folders
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/supp_architectures.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment supp_architectures "${BASH_SOURCE[0]}" "$@"
