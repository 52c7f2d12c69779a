#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Data-loader throughput: source images/s for 2 views of 224 px (solo-learn's symmetric preset) on a
# corpus of ~2,000 real-photo JPEGs (~500x375, q90; built on first use, then reused).
#   bash scripts/bench_loader.sh [--num-images 2000] [--workers 2] [--out results/bench_loader.json]
# Run it on an otherwise idle machine: every loader shares the same cores.
set -euo pipefail
PYTHON="${PYTHON:-python}"
exec "$PYTHON" -m solo_diversity.data.bench "$@"
