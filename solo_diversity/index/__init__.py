# SPDX-License-Identifier: MIT
"""The shuffled HDF5 index: build once with a seed, then every k% subset is a nested prefix.

Modules: ``format`` (schema, fingerprint), ``sources`` / ``builtin`` (entry streams), ``writer``
(streaming atomic writer), ``build`` (``build_index``), ``reader`` (``open_index``, ``ImageIndex``),
``subset`` (``select_subset``, ``Subset``), ``splits`` (shared images and label ranges of a
training / validation pair), ``resolve`` (``ensure_index``), ``cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solo_diversity.index.build import SOURCES, build_index
    from solo_diversity.index.reader import ImageIndex, open_index
    from solo_diversity.index.resolve import BUILTIN_DATASETS, ensure_index
    from solo_diversity.index.subset import Subset, check_fraction, select_subset

# Each public name and the module that defines it: loaded on first use, so that the light modules
# of this package (``catalog``, the CLI's parser) do not pull in numpy and h5py.
_HOMES = {
    "SOURCES": "build",
    "build_index": "build",
    "ImageIndex": "reader",
    "open_index": "reader",
    "BUILTIN_DATASETS": "resolve",
    "ensure_index": "resolve",
    "Subset": "subset",
    "check_fraction": "subset",
    "select_subset": "subset",
}


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


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
