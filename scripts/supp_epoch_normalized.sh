#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Supp. Figure 1: the epoch-normalized baseline, B for 400 epochs (budget.mode=epochs, so
# C = 400 N = 25.3M), seven methods, ResNet-18, probe on ImageNet-100. B is Figure 3's B.h5
# (scripts/fig3_imagenet100.sh builds it); the figure's bars are Figure 3's runs.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   imagenet100: ImageNet-100 train/val class folders (the probe)
#   FIG3_SETS: the folder of Figure 3's built sets (B.h5)
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/supp_epoch_normalized.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment supp_epoch_normalized "${BASH_SOURCE[0]}" "$@"
