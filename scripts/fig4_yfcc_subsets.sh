#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Figure 4: SimCLR and MoCoV3, ResNet-50 and ViT-B/16, pretrained on YFCC100M subsets of
# 0.1/1/10/100% (D = 0.001 ... 1) with C = 98e6, probed on ImageNet. The 100% cells are Table 2's
# YFCC runs (same run_key).
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   yfcc100m: the YFCC100M index
#   imagenet: ImageNet-1k train/val class folders (the probe)
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/fig4_yfcc_subsets.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment fig4_yfcc_subsets "${BASH_SOURCE[0]}" "$@"
