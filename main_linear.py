# SPDX-License-Identifier: MIT
"""Linear probe of a pretrained backbone with a label fraction; appends a line to the results file.

    python main_linear.py --config-name linear_div \
        "pretrained_feature_extractor='<ckpt>'" data.label_fraction=0.05
"""

import hydra
from omegaconf import DictConfig

from solo_diversity.entry import exit_on_user_error
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.report.console import console


@hydra.main(version_base="1.2", config_path="yaml_configs", config_name=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    with exit_on_user_error():
        record = run_linear(cfg).record
        console.print(
            f"Linear probe top-1: {record['accuracy']:.2f}% "
            f"({record['dataset']}, label fraction {record['label_fraction']}, "
            f"pretraining fraction {record['fraction']})"
        )


if __name__ == "__main__":
    main()
