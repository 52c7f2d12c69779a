#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Figure 3: seven methods x {B, B u A for six sets A}, ResNet-18, C = 50e6, linear probe on
# ImageNet-100. B is 50% of ImageNet-100; B u A_In_Source is all of it. The other five B u A sets
# come from the dataset builders: point FIG3_SETS at the folder that holds them (one sub-folder or
# index per set, named as below); until then those cells list FIG3_SETS as missing.
# N of a built set: B (round(0.5 * 126,689) = 63,345) + A (65,000) = 128,345.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   imagenet100: ImageNet-100 train/val class folders
#   FIG3_SETS: folder of the built B u A sets (b_union_a_{in,out}_{web,synthetic}, b_union_a_out_source)
# Cost: about 345 GPU-hours for one seed, estimated from the paper's figures (see --help).
# Usage: bash scripts/fig3_imagenet100.sh [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
run_experiment fig3_imagenet100 "${BASH_SOURCE[0]}" "$@"
