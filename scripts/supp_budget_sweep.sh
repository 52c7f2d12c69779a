#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Supp. Table 1: SimCLR and MoCoV3 on TinyImageNet subsets of 10/50/100% at C = 5/10/25/50/100e6,
# ResNet-18, probe on TinyImageNet. The C = 50e6 cells are Table 1(b)'s runs (same run_key).
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   tinyimagenet: TinyImageNet train/val class folders
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: bash scripts/supp_budget_sweep.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment supp_budget_sweep "${BASH_SOURCE[0]}" "$@"
