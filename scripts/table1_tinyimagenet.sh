#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Table 1(b): seven methods x TinyImageNet subsets of 10/50/100%, ResNet-18, C = 50e6 images, then
# the linear probe on TinyImageNet (all labels). E = 5000/1000/500 epochs.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   tinyimagenet: TinyImageNet train/val class folders (data.train_path / data.val_path)
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/table1_tinyimagenet.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment table1_tinyimagenet "${BASH_SOURCE[0]}" "$@"
