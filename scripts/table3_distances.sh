#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Table 3 of Hammoud et al. (arXiv:2403.13808): VisualDNA (MUGS, DINOv2) and FID (Inception)
# between each pretraining set {ImageNet, YFCC100M} and each of the six downstream sets, at most
# 50,000 images each: 36 cells, each one `solo-div distance vdna|fid` writing
# <distances>/<cell>.json; `solo-div report ... --distances DIR` prints them beside the paper's.
# Data: INDEX_DIR (default datasets/indexes under the workdir) holds imagenet_train.h5,
#   yfcc100m_train.h5 and <downstream>_train.h5 (solo-div index build ...); the extractor weights
#   (docs/distances.md).
# Idempotent: a cell with its JSON is skipped; features and VDNAs are cached beside each index.
# Usage: bash scripts/table3_distances.sh [--dry-run] [--only CELL ...] [--distances DIR]
#        (env: INDEX_DIR, SOLO_DIV_DISTANCES, DEVICE (cpu), WORKERS (4))
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
export INDEX_DIR=${INDEX_DIR:-datasets/indexes}
run_experiment table3_distances "${BASH_SOURCE[0]}" "$@" \
  --distance-args "--device ${DEVICE:-cpu} --num-workers ${WORKERS:-4}"
