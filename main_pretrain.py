# SPDX-License-Identifier: MIT
"""Budget-normalized SSL pretraining, as solo-learn's ``main_pretrain.py`` is used.

python main_pretrain.py --config-name simclr_div
python main_pretrain.py --config-name simclr_div data.fraction=0.1 budget.C=2e5
python main_pretrain.py --config-path <solo-learn>/scripts/pretrain/cifar \
    --config-name simclr.yaml budget.C=50e6

Ctrl-C or SIGTERM saves at the next optimizer step and exits 128 + the signal number with one line
saying how to resume (``auto_resume.enabled=true``); a second Ctrl-C stops at once. Under SLURM
(``#SBATCH --signal=USR1@90``) the requeue signal saves the same way and requeues the job, which
resumes from that checkpoint when its command has ``auto_resume.enabled=true``.
"""

import sys

import hydra
from omegaconf import DictConfig

from solo_diversity.entry import check_standard_streams, exit_on_user_error


@hydra.main(version_base="1.2", config_path="yaml_configs", config_name=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    from solo_diversity.run.pretrain import run_pretrain  # after the stream check (below)

    with exit_on_user_error():
        run_pretrain(cfg)


if __name__ == "__main__":
    # A closed stdout or stderr is checked before Lightning is imported: it replaces a closed
    # stderr with /dev/null, and any file opened later could take the closed descriptor.
    check_standard_streams()
    from solo_diversity.config.overrides import budget_overrides

    # solo-learn's YAMLs have no budget group: a bare ``budget.C=...`` becomes hydra's
    # ``++budget.C=...`` (add or override) before hydra reads the command line. DDP children
    # re-run this script with the rewritten sys.argv, which the rewrite leaves unchanged.
    sys.argv[1:] = budget_overrides(sys.argv[1:])
    main()
