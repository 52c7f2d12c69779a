#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Table 3 of Hammoud et al. (arXiv:2403.13808): VisualDNA (MUGS, DINOv2) and FID (Inception)
# between each pretraining set {ImageNet, YFCC100M} and each downstream set, <= 50k images each.
# Needs the indexes below (solo-div index build ...) and the weights (see README "Distances").
# Idempotent: features and VDNAs are cached beside each index, so a rerun only fills what's missing.
# Usage: bash scripts/table3_distances.sh [--dry-run]   (env: INDEX_DIR, OUT, DEVICE, WORKERS)
set -euo pipefail
INDEX_DIR=${INDEX_DIR:-datasets/indexes}
OUT=${OUT:-results/table3}
DEVICE=${DEVICE:-cpu}
WORKERS=${WORKERS:-4}
cmd=(solo-div distance table
  --pretrain "$INDEX_DIR/imagenet_train.h5" "$INDEX_DIR/yfcc100m_train.h5"
  --downstream "$INDEX_DIR/imagenet_train.h5" "$INDEX_DIR/stanford_cars_train.h5"
               "$INDEX_DIR/flowers102_train.h5" "$INDEX_DIR/oxford_pets_train.h5"
               "$INDEX_DIR/places365_train.h5" "$INDEX_DIR/food101_train.h5"
  --metrics vdna:mugs_vit_base vdna:dinov2_vit_base fid:inception
  --max-samples 50000 --bins 1000 --device "$DEVICE" --num-workers "$WORKERS" --out "$OUT")
if [[ "${1:-}" == "--dry-run" ]]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
"${cmd[@]}"
