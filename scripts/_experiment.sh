#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Shared by the per-table scripts: `--help` (the script's header, what the table needs and costs,
# the flags), everything else goes to `solo-div experiment run TABLE`, whose flags these are:
#   --dry-run            every cell: config, overrides, N, E, D, steps, and the probe commands
#   --only CELL [...]    just these cells (ids: solo-div experiment cells TABLE --format ids)
#   --seeds S [...]      pretraining seeds (default 0)
#   --devices G --nodes M
#   --launcher local|slurm|submitit_local   (slurm: --partition --account --timeout-min ...)
#   --results FILE --runs DIR --workdir DIR  (or SOLO_DIV_RESULTS, SOLO_DIV_RUNS, SOLO_DIV_WORKDIR)
#   --set KEY=VALUE ...  pretraining overrides, e.g. data.train_path=/data/cifar100/train.h5
# Idempotent: a cell whose probe line is in the results file is skipped, a finished pretraining
# without its line is only probed, an interrupted one resumes from its last checkpoint.
set -euo pipefail

_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${SOLO_DIV:-}" ]]; then
  if [[ -x "$_repo/.venv/bin/solo-div" ]]; then SOLO_DIV="$_repo/.venv/bin/solo-div"; else SOLO_DIV=solo-div; fi
fi

experiment_help() {  # $1: the table, $2: the calling script
  sed -n '2,/^set -/p' "$2" | sed -n 's/^# \{0,1\}//p' | grep -v '^SPDX'
  echo
  "$SOLO_DIV" experiment about "$1"
  echo
  echo "Flags (solo-div experiment run):"
  awk '/whose flags these are:/ {on = 1; next} /^set -/ {exit} on {sub(/^# ?/, ""); print}' \
    "${BASH_SOURCE[0]}"
}

run_experiment() {  # $1: the table; the rest: the flags above
  local table=$1 script=$2
  shift 2
  for arg in "$@"; do
    if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then experiment_help "$table" "$script"; return 0; fi
  done
  "$SOLO_DIV" experiment run "$table" "$@"
}
