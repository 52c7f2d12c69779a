# SPDX-License-Identifier: MIT
"""``build_index``: pick a source by name, stream it through the shuffling writer.

The registry :data:`SOURCES` maps each source name to a factory taking keyword options; an unknown
name or option is a :class:`UserError` listing what is valid.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from solo_diversity.errors import UserError
from solo_diversity.index.builtin import digits_source, fashion_mnist_source, torchvision_source
from solo_diversity.index.format import check_seed
from solo_diversity.index.sources import Source, flat_source, folder_source, list_source
from solo_diversity.index.writer import IndexMeta, write_index

log = logging.getLogger(__name__)

GENERIC_OPTIONS = frozenset(
    {"root", "split", "embed"}
)  # dropped where a source has no use for them
EMBEDDED_ONLY = frozenset({"digits", "fashion_mnist", "torchvision"})
SOURCES: dict[str, Callable[..., Source]] = {
    "folder": folder_source,
    "flat": flat_source,
    "list": list_source,
    "torchvision": torchvision_source,
    "digits": digits_source,
    "fashion_mnist": fashion_mnist_source,
}


def make_source(source: str, /, **options: Any) -> Source:
    """Build the :class:`Source` called ``source`` with the options its factory accepts.

    Args:
        source: a key of :data:`SOURCES`.
        **options: the factory's keyword arguments (``root``, ``split``, ``embed``,
            ``list_path``, ...); ``None`` values are dropped when the factory does not take them.

    Returns:
        The source.

    """
    if source not in SOURCES:
        raise UserError(f"unknown index source {source!r}; valid: {', '.join(SOURCES)}")
    factory = SOURCES[source]
    accepted = set(inspect.signature(factory).parameters)
    embed = options.pop("embed", None)
    if source in EMBEDDED_ONLY:
        if embed is False:
            raise UserError(
                f"source {source!r} always embeds its images; embed=False is not possible"
            )
    else:
        options["embed"] = embed
    unknown = sorted(
        k
        for k, v in options.items()
        if k not in accepted and k not in GENERIC_OPTIONS and v is not None
    )
    if unknown:
        raise UserError(
            f"source {source!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(accepted))}"
        )
    return factory(**{k: v for k, v in options.items() if k in accepted})


def build_index(
    source: str,
    out_path: str | Path,
    *,
    seed: int = 0,
    dataset: str | None = None,
    split: str = "train",
    root: str | Path | None = None,
    embed: bool | None = None,
    **source_kw: Any,
) -> Path:
    """Build a shuffled index file from a named source.

    Args:
        source: ``folder``, ``flat``, ``list``, ``torchvision``, ``digits`` or ``fashion_mnist``.
        out_path: the ``.h5`` file to write (replaced atomically if it exists).
        seed: the shuffle seed; the same seed gives the same order and fingerprint.
        dataset: the dataset name to record (default: the source's, e.g. the folder name).
        split: split name to record; built-in datasets also select their split with it.
        root: the folder to scan (folder/flat), paths' base (list), download folder (torchvision),
            IDX folder (fashion_mnist).
        embed: store encoded bytes instead of paths (folder/flat/list; built-ins always embed).
        **source_kw: source options: ``list_path``, ``path_column``, ``label_column`` (list),
            ``name`` (torchvision).

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    """
    seed = check_seed(seed)
    src = make_source(source, root=root, split=split, embed=embed, **source_kw)
    meta = IndexMeta(
        dataset=dataset or src.dataset,
        split=split,
        kind=src.kind,
        root=str(src.root) if src.root is not None else "",
        seed=seed,
        source=src.description,
        class_names=tuple(src.class_names),
    )
    log.info("building %s index of %s (%s) into %s", meta.kind, meta.dataset, meta.source, out_path)
    return write_index(src.entries, out_path, meta, source_rows=src.source_rows)
