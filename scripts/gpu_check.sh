#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The first thing to run on a GPU machine: one call of about 8 minutes on one H100, no network,
# that checks and measures every GPU path in five stages, each under a time limit:
#   1 pretrain        SimCLR ResNet-18 (bf16) on DALI nvJPEG, then with batch augmentation on the
#                     device, each with an exact ledger
#   2 resume          SIGKILL after a step checkpoint, auto_resume, max |dw| against a twin run
#   3 bench_loader    GPU rows (DALI GPU, batch on device) at 224 and 32 px beside the CPU rows
#   4 bench_pretrain  end-to-end img/s at 32 px, batch 256: solo-learn's loader, ours, DALI GPU,
#                     and the bare model
#   5 synthetic       the synthetic builder at 768 px on random SD-2.1-shaped weights, 8 images
# Its small data are made under OUT. Results: OUT/gpu_check.json and OUT/gpu_check.md (one row per
# stage: ok / failed / timed out, seconds, key figures); each stage's output is in OUT/logs/.
#   bash scripts/gpu_check.sh [OUT] [--dry-run] [--stage-timeout S]
# OUT defaults to results/gpu_check. --dry-run lists the stages and their commands. Without a GPU
# it prints one line and exits 0.
set -euo pipefail
PYTHON="${PYTHON:-python}"
# bench/ sits beside the package, not inside it: make it importable from any working directory.
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m bench.gpu_check "$@"
