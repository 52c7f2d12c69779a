#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end pretraining throughput: source images/s of a budgeted SimCLR run (batch 256; 2 warm-up
# steps, 10 timed ones, then 1 that carries the checkpoint save) through run_pretrain with each data
# path (augment_backend torchvision, fast, batch; data.format=dali on the CPU, and on the GPU when
# one is visible), against (a) the same model and Lightning loop fed by solo-learn's CIFAR loader
# and against `bare`, the same model's forward+backward+optimizer step alone on fixed random crops
# (no Lightning, loader or augmentation: the ceiling; column "x bare", target >= 70% end to end);
# plus the budget machinery's cost (ledger, visit ledger, epoch sampler, checkpoint hooks, guards)
# in ms per step and as a share of the step (limit 1%), from Lightning's SimpleProfiler.
# --preset picks the model:
#   cifar (default)  ResNet-18 with the CIFAR stem, 2 x 32 px crops of solo-learn's CIFAR symmetric
#                    preset; rows a,torchvision,fast,batch,dali,dali_gpu,bare
#   mini_paper       the mini paper's model (data=fashion_mnist): small_cnn, 2 x 28 px crops of
#                    scale 0.2, bf16-mixed, channels_last, augment_backend=batch, 2 loader workers,
#                    budget.epoch_keys=reference, no LR warmup; rows batch,bare
# The 10,000-image synthetic corpus (32 px, or 28 px for mini_paper) is built on first use under
# datasets/, then reused.
#   bash scripts/bench_pretrain.sh [--preset cifar|mini_paper] [--steps 10] [--warmup 2]
#     [--batch-size 256] [--workers 2] [--num-images 10000] [--accelerator auto|cpu|gpu]
#     [--out results/bench_pretrain.json] [--rows a,torchvision,fast,batch,dali,dali_gpu,bare]
#     [--quick]
#   bash scripts/bench_pretrain.sh --preset mini_paper   # end to end against bare (target 70%)
# Run it on an otherwise idle machine: the loader workers and the model share the same cores.
set -euo pipefail
PYTHON="${PYTHON:-python}"
# bench/ sits beside the package, not inside it: make it importable from any working directory.
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m bench.pretrain "$@"
