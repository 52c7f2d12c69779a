# SPDX-License-Identifier: MIT
"""Dataset preparation: official downloads in, the train/val indexes the data groups expect out.

Modules: ``layouts`` (readers of each official layout), ``tree`` (class-folder trees of links and
their indexes), ``cifar`` (CIFAR-100's pickles), ``dataset`` (``prepare_dataset``), ``cli``
(``solo-div data prepare``).
"""

from solo_diversity.prepare.dataset import DATASETS, prepare_dataset

__all__ = ["DATASETS", "prepare_dataset"]
