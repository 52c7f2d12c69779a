# SPDX-License-Identifier: MIT
"""Dataset preparation: official downloads in, the train/val indexes the data groups expect out.

Modules: ``layouts`` (readers of each official layout), ``tree`` (class-folder trees of links and
their indexes), ``cifar`` (CIFAR-100's pickles), ``dataset`` (``prepare_dataset``), ``cli``
(``solo-div data prepare``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solo_diversity.prepare.dataset import DATASETS, prepare_dataset


def __getattr__(name: str) -> Any:
    """Load :mod:`.dataset` (numpy, h5py, PIL) on first use, not when ``prepare.cli`` loads."""
    if name not in ("DATASETS", "prepare_dataset"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from solo_diversity.prepare import dataset

    return getattr(dataset, name)


__all__ = ["DATASETS", "prepare_dataset"]
