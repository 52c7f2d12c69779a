# SPDX-License-Identifier: MIT
"""Linear evaluation of a pretrained backbone (solo-learn's protocol by default); appends a line
to the results file. solo-learn's own linear YAMLs run unchanged:

    python main_linear.py --config-name linear_div \
        "pretrained_feature_extractor='<ckpt>'" data.label_fraction=0.05
    python main_linear.py --config-path <solo-learn>/scripts/linear/imagenet-100 \
        --config-name simclr.yaml "pretrained_feature_extractor='<ckpt>'"
"""

import sys

import hydra
from omegaconf import DictConfig

from solo_diversity.config.probe import LINEAR_COMMAND_LINE_KEYS, added_key_overrides
from solo_diversity.console import console
from solo_diversity.entry import exit_on_user_error
from solo_diversity.evaluation.linear import run_linear


@hydra.main(version_base="1.2", config_path="yaml_configs", config_name=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    with exit_on_user_error():
        record = run_linear(cfg).record
        mode = (
            "solo-learn protocol"
            if record["probe_mode"] == "protocol"
            else "features mode (not the paper's protocol)"
        )
        console.print(
            f"Linear probe, {mode}: top-1 {record['acc1']:.2f}%, top-5 {record['acc5']:.2f}% "
            f"({record['dataset']}, label fraction {record['label_fraction']}, "
            f"pretraining fraction {record['fraction']}, {record['wall_seconds']:.0f} s)"
        )


if __name__ == "__main__":
    # solo-learn's linear YAMLs lack results, probe.mode, seed, ...: ``results=x`` becomes hydra's
    # ``++results=x`` (add or override), so these keys read the same on every config.
    sys.argv[1:] = added_key_overrides(sys.argv[1:], LINEAR_COMMAND_LINE_KEYS)
    main()
