# SPDX-License-Identifier: MIT
"""Budget-normalized SSL pretraining, as solo-learn's ``main_pretrain.py`` is used.

python main_pretrain.py --config-name simclr_div
python main_pretrain.py --config-name simclr_div data.fraction=0.1 budget.C=2e5
python main_pretrain.py --config-path <solo-learn>/scripts/pretrain/cifar --config-name simclr.yaml
"""

import hydra
from omegaconf import DictConfig

from solo_diversity.entry import exit_on_user_error
from solo_diversity.pretrain import run_pretrain


@hydra.main(version_base="1.2", config_path="yaml_configs", config_name=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    with exit_on_user_error():
        run_pretrain(cfg)


if __name__ == "__main__":
    main()
