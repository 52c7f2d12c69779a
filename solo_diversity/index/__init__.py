# SPDX-License-Identifier: MIT
"""The shuffled HDF5 index: build once with a seed, then every k% subset is a nested prefix.

Modules: ``format`` (schema, fingerprint), ``sources`` / ``builtin`` (entry streams), ``writer``
(streaming atomic writer), ``build`` (``build_index``), ``reader`` (``open_index``, ``ImageIndex``),
``subset`` (``select_subset``, ``Subset``), ``splits`` (shared images and label ranges of a
training / validation pair), ``resolve`` (``ensure_index``), ``cli``.
"""

from solo_diversity.index.build import SOURCES, build_index
from solo_diversity.index.reader import ImageIndex, open_index
from solo_diversity.index.resolve import BUILTIN_DATASETS, ensure_index
from solo_diversity.index.subset import Subset, check_fraction, select_subset

__all__ = [
    "BUILTIN_DATASETS",
    "SOURCES",
    "ImageIndex",
    "Subset",
    "build_index",
    "check_fraction",
    "ensure_index",
    "open_index",
    "select_subset",
]
