#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Schedule semantics: Table 1(a)'s cells (seven methods x CIFAR-100 subsets of 10/50/100%,
# ResNet-18, C = 50e6, probe on CIFAR-100) under both readings of the epoch-counted keys, side by
# side: budget.epoch_keys=subset (solo-learn's and the paper's; Table 1(a)'s own runs, shared) and
# budget.epoch_keys=reference (every fraction warms up and switches at the same images seen).
# `solo-div report` prints the two columns beside the paper's Table 1(a).
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   cifar100: CIFAR-100 train/test as h5 (data.train_path / data.val_path)
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/supp_schedule_semantics.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment supp_schedule_semantics "${BASH_SOURCE[0]}" "$@"
