#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Table 4: MoCoV3, ResNet-50 and ViT-B/16, ImageNet subsets of 10/50/100% at C = 98e6 and the
# tripled 294e6, probed on ImageNet. The C = 98e6 cells are Table 2's runs (same run_key).
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   imagenet: ImageNet-1k train/val class folders
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/table4_normalization.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment table4_normalization "${BASH_SOURCE[0]}" "$@"
