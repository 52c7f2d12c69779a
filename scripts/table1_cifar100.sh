#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Table 1(a): seven methods x CIFAR-100 subsets of 10/50/100%, ResNet-18, C = 50e6 images, then
# solo-learn's linear probe on CIFAR-100 (all labels). E = 10000/2000/1000 epochs.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   cifar100: CIFAR-100 train/test as h5 (data.train_path / data.val_path)
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/table1_cifar100.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment table1_cifar100 "${BASH_SOURCE[0]}" "$@"
