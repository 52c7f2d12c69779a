#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The CPU-scale mini paper: Table 1's protocol on Fashion-MNIST, in about an hour on 2 idle cores.
# SimCLR (all 7 methods with --all-methods), seeds 0, 1 and 2, at C = 256,000 images over
# N = 256, 2,560, 25,600 and 60,000 (E = 1,000, 100, 10 and 4.3), each followed by solo-learn's
# linear evaluation protocol on 10% of the labels; the same probe on raw pixels and on the backbone
# at random initialisation (no pretraining) as the floors; then the table, the CSV/JSON aggregates
# and the accuracy-against-D figure through `solo-div report`. The cells:
# yaml_configs/experiments/mini_paper_fashion_mnist.yaml.
# Data: Fashion-MNIST's IDX files from Debian's dataset-fashion-mnist package, a folder given with
# --fashion-mnist-root, or a torchvision download when online; the indexes are built into
# ./datasets/fashion_mnist on the first run.
# Cost: no GPU; about 4.5 min per cell and seed (3.5 pretraining, 1 probing) on 2 idle CPU cores.
# --smoke runs the same path in about 2 minutes (CI): C = 2,048 at batch 64, seed 0, the smallest
# and the largest N and the raw-pixel floor, 1 probe epoch; its results go to
# results/mini_paper_smoke.
# Usage: bash scripts/mini_paper_fashion_mnist.sh [--all-methods] [--only CELL ...] [--seeds 0 1 2]
#        [--out DIR] [--smoke] [--fashion-mnist-root DIR] [--dry-run] [any flag of experiment run]
# --only runs just the cells named (any method; ids: solo-div experiment cells TABLE --format ids).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_experiment.sh"
TABLE=mini_paper_fashion_mnist
OUT=${OUT:-results/mini_paper}
methods='^simclr-'
seeds=(0 1 2)
only=()
rest=()
smoke=0
shrink=()  # the smoke's pretraining overrides, which the report must know to find its cells
root=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) experiment_help "$TABLE" "${BASH_SOURCE[0]}"; exit 0 ;;
    --all-methods) methods='.'; shift ;;
    --smoke) smoke=1; shift ;;
    --fashion-mnist-root) root=(--root "$2"); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --seeds) seeds=(); shift; while [[ $# -gt 0 && "$1" != --* ]]; do seeds+=("$1"); shift; done ;;
    --only) shift; while [[ $# -gt 0 && "$1" != --* ]]; do only+=("$1"); shift; done
      if [[ ${#only[@]} == 0 ]]; then echo "error: --only needs cell ids" >&2; exit 2; fi ;;
    *) rest+=("$1"); shift ;;
  esac
done
if [[ $smoke == 1 ]]; then  # the same path, tiny: a CI check that it runs end to end
  OUT=${OUT/%mini_paper/mini_paper_smoke}
  seeds=(0)
  only=(simclr-n256 simclr-n60000 simclr-raw_pixels)
  shrink=(budget.C=2048 optimizer.batch_size=64 scheduler.warmup_epochs=0)
  rest+=(--set "${shrink[@]}" --probe-set max_epochs=1 "scheduler.lr_decay_steps=[1]")
fi
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
    "$SOLO_DIV" index build fashion_mnist "$index" --split "$split" ${root[@]+"${root[@]}"} > /dev/null
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
  "$SOLO_DIV" report "$OUT/results.jsonl" --out "$OUT/report" --tables "$TABLE" \
    ${shrink[@]+--set "${shrink[@]}"}
fi
exit "$code"
