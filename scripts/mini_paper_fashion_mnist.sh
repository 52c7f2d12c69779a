#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The CPU-scale mini paper: Table 1's protocol on Fashion-MNIST, in about 35 minutes on 2 cores.
# SimCLR, MoCoV3 and BYOL (all 7 methods with --all-methods), seeds 0 and 1, at C = 12,800 images
# over N = 64, 400, 2,560 and 12,800 (E = 200, 32, 5, 1), each followed by solo-learn's linear
# evaluation protocol on 10% of the labels; then the table and the accuracy-against-D plot through
# `solo-div report`. The cells: yaml_configs/experiments/mini_paper_fashion_mnist.yaml.
# Data: Fashion-MNIST's IDX files from Debian's dataset-fashion-mnist package, or a torchvision
# download when online; the indexes are built into ./datasets/fashion_mnist on the first run.
# Cost: no GPU; about 1.3 min per cell and seed on 2 CPU cores.
# Usage: bash scripts/mini_paper_fashion_mnist.sh [--all-methods] [--only CELL ...] [--seeds 0 1]
#        [--out DIR] [--dry-run] [any flag of solo-div experiment run]
# --only runs just the cells named (any method; ids: solo-div experiment cells TABLE --format ids).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
TABLE=mini_paper_fashion_mnist
OUT=${OUT:-results/mini_paper}
methods='^(simclr|mocov3|byol)-'
seeds=(0 1)
only=()
rest=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) experiment_help "$TABLE" "${BASH_SOURCE[0]}"; exit 0 ;;
    --all-methods) methods='.'; shift ;;
    --out) OUT=$2; shift 2 ;;
    --seeds) seeds=(); shift; while [[ $# -gt 0 && "$1" != --* ]]; do seeds+=("$1"); shift; done ;;
    --only) shift; while [[ $# -gt 0 && "$1" != --* ]]; do only+=("$1"); shift; done
      if [[ ${#only[@]} == 0 ]]; then echo "error: --only needs cell ids" >&2; exit 2; fi ;;
    *) rest+=("$1"); shift ;;
  esac
done
if [[ ${#only[@]} -gt 0 ]]; then
  cells=("${only[@]}")  # experiment run refuses an unknown id in one line
else
  mapfile -t cells < <("$SOLO_DIV" experiment cells "$TABLE" --format ids | grep -E "$methods")
fi
dry_run=0
for arg in ${rest[@]+"${rest[@]}"}; do [[ "$arg" == "--dry-run" ]] && dry_run=1; done
for split in train test; do
  index="datasets/fashion_mnist/$split.h5"
  if [[ $dry_run == 0 && ! -f "$index" ]]; then  # a dry run neither needs nor writes data
    mkdir -p datasets/fashion_mnist
    "$SOLO_DIV" index build fashion_mnist "$index" --split "$split" > /dev/null
    echo "built $index"
  fi
done
start=$(date +%s)
code=0
"$SOLO_DIV" experiment run "$TABLE" --only "${cells[@]}" --seeds "${seeds[@]}" \
  --results "$OUT/results.jsonl" --runs "$OUT/runs" ${rest[@]+"${rest[@]}"} || code=$?
[[ $code == 2 ]] && exit 2  # a bad flag or cell id, said in one line
if [[ $dry_run == 1 ]]; then
  echo "mini paper (dry run): ${#cells[@]} cells x ${#seeds[@]} seeds: ${cells[*]}"
  exit "$code"
fi
echo "mini paper: $(( $(date +%s) - start )) s for ${#cells[@]} cells x ${#seeds[@]} seeds"
if [[ -f "$OUT/results.jsonl" ]]; then
  "$SOLO_DIV" report "$OUT/results.jsonl" --out "$OUT/report" --tables "$TABLE"
fi
exit "$code"
