#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Data-loader throughput on solo-learn's own presets: source images/s of solo-learn's pretraining
# loader (rebuilt step for step) and of ours (torchvision, fast, batch, DALI CPU/GPU) side by side,
# same workers and batch, for ImageNet-100 symmetric / asymmetric / multi-crop (2,000 real-photo
# JPEGs, ~500x375, q90) and CIFAR symmetric / asymmetric (10,000 32 px images cut from photos);
# corpora are built on first use under datasets/bench, then reused. One table per preset with
# ratios to solo-learn's loader and the targets (fast >= 4x at 224 px, batch >= 10x at 32 px).
#   bash scripts/bench_loader.sh [--presets sym224 asym224 multicrop sym32 asym32] [--quick]
#       [--workers 2] [--batch-size-224 64] [--batch-size-32 256] [--out results/bench_loader.json]
# Run it on an otherwise idle machine: every loader shares the same cores. --quick is a rough try.
set -euo pipefail
PYTHON="${PYTHON:-python}"
# bench/ sits beside the package, not inside it: make it importable from any working directory.
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m bench.loader "$@"
