#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Figure 3: seven methods x {B, B u A for six sets A}, ResNet-18, C = 50e6, linear probe on
# ImageNet-100. B is half of each ImageNet-100 class; B u A_In_Source is all of ImageNet-100.
# With --imagenet-index IN.h5 (an index of ImageNet-1k train, WNID classes) it first builds into
# FIG3_SETS what is not there yet: B.h5, A_in_source.h5 and A_out_source.h5 (solo-div build
# source), then B u A for every A present: A_out_source.h5, and A_{in,out}_{web,synthetic}.h5 once
# the web and synthetic builders have written them (solo-div build web | synthetic). Cells whose
# set is missing are skipped, each with one line naming it.
# Data (as each data group's paths under the workdir's datasets/, or --set data.train_path=...):
#   imagenet100: ImageNet-100 train/val class folders (the probe's)
#   FIG3_SETS: the folder of the built sets (env, or --sets DIR)
# Cost: --help prints its GPU-hours (the cost model of solo-div experiment list, one seed).
# Usage: FIG3_SETS=DIR bash scripts/fig3_imagenet100.sh [--imagenet-index IN.h5] [--seed S]
#        [--a-out-size 65000] [--a-out-classes 100]
#        [--dry-run] [--only CELL ...] [--seeds 0 1 2] [--launcher slurm ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
imagenet=${IMAGENET_INDEX:-}
set_seed=0
source_args=()
dry=0
rest=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) experiment_help fig3_imagenet100 "${BASH_SOURCE[0]}"; exit 0 ;;
    --imagenet-index) imagenet=$2; shift 2 ;;
    --sets) export FIG3_SETS=$2; shift 2 ;;
    --seed) set_seed=$2; shift 2 ;;
    --a-out-size|--a-out-classes) source_args+=("$1" "$2"); shift 2 ;;
    --dry-run) dry=1; rest+=("$1"); shift ;;
    *) rest+=("$1"); shift ;;
  esac
done
run() { if [[ $dry == 1 ]]; then printf '%q ' "$@"; echo; else "$@"; fi; }
if [[ -n "$imagenet" ]]; then
  sets=${FIG3_SETS:?set FIG3_SETS (or --sets DIR): the folder for the built sets}
  if [[ ! -f "$sets/B.h5" ]]; then
    run "$SOLO_DIV" build source --imagenet "$imagenet" --out "$sets" --seed "$set_seed" \
      ${source_args[@]+"${source_args[@]}"}
  fi
  for a in in_web in_synthetic out_source out_web out_synthetic; do
    part="$sets/A_$a.h5" union="$sets/b_union_a_$a.h5"
    if [[ -f "$union" ]]; then continue; fi
    if [[ -f "$part" || ( $dry == 1 && $a == out_source ) ]]; then
      run "$SOLO_DIV" index union "$sets/B.h5" "$part" --out "$union" --seed "$set_seed" \
        --dataset imagenet100
    else
      echo "fig3: $part is not built yet; its B u A cells are skipped"
    fi
  done
fi
run_experiment fig3_imagenet100 "${BASH_SOURCE[0]}" ${rest[@]+"${rest[@]}"}
