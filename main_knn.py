# SPDX-License-Identifier: MIT
"""Offline weighted kNN of a pretrained checkpoint, as solo-learn's ``main_knn.py``; appends lines.

    python main_knn.py --config-name knn_div "pretrained_checkpoint_dir='<run folder or ckpt>'"
    python main_knn.py --config-name knn_div "pretrained_checkpoint_dir='<dir>'" \
        k=[10,20,200] temperature=[0.07,0.1] distance_function=[cosine,euclidean] \
        feature_type=[backbone,projector]
"""

import sys

import hydra
from omegaconf import DictConfig

from solo_diversity.config.probe import added_key_overrides
from solo_diversity.console import console
from solo_diversity.entry import exit_on_user_error
from solo_diversity.evaluation.knn_run import KNN_COMMAND_LINE_KEYS, run_knn


@hydra.main(version_base="1.2", config_path="yaml_configs", config_name=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    with exit_on_user_error():
        for r in run_knn(cfg):
            temperature = "" if r["temperature"] is None else f", T={r['temperature']}"
            console.print(
                f"kNN {r['feature_type']} {r['distance_function']}, k={r['k']}{temperature}: "
                f"acc@1={r['acc1']:.2f}% acc@5={r['acc5']:.2f}% ({r['dataset']}, "
                f"fraction {r['fraction']})"
            )


if __name__ == "__main__":
    # ``+dali.device=cpu`` and ``dali.device=cpu`` both work (hydra's ``++``: add or override).
    sys.argv[1:] = added_key_overrides(sys.argv[1:], KNN_COMMAND_LINE_KEYS)
    main()
