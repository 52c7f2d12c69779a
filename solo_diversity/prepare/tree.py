# SPDX-License-Identifier: MIT
"""From a parsed official layout to what a data group reads: class-folder trees and their indexes.

A :class:`Layout` lists every image of the official download with its class name, per split. The
data groups of these datasets read ``datasets/<name>/{train,val}`` as class sub-folders
(``data.format: image_folder``), so :func:`write_tree` links each image into that tree (symbolic
links: nothing is copied) and :func:`index_tree` builds the two indexes where a run looks for them
(:func:`~solo_diversity.index.resolve.ensure_index`, splits ``train`` and ``test``). Every class
gets a folder in both splits, even an empty one, so a label means the same class in both indexes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from solo_diversity.errors import UserError
from solo_diversity.index.resolve import ensure_index

log = logging.getLogger(__name__)

SPLITS = {"train": "train", "val": "test"}  # output folder -> split name runs open it with
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass
class Layout:
    """Every image of an official download, by split, with its class name.

    Attributes:
        classes: all class names (folder names of the tree; no ``/``).
        splits: ``{"train": [(image, class name), ...], "val": [...]}``.

    """

    classes: list[str]
    splits: dict[str, list[tuple[Path, str]]] = field(default_factory=dict)


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a file named like an archive this module can unpack."""
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack(archive: Path, into: Path) -> Path:
    """Unpack a ``.zip``/``.tar[.gz]`` archive into ``into`` (once) and return ``into``.

    An archive is unpacked rather than read in place because the trees link to single files.
    """
    if into.is_dir() and any(into.iterdir()):
        log.info("using %s, unpacked before from %s", into, archive)
        return into
    into.mkdir(parents=True, exist_ok=True)
    log.info("unpacking %s into %s", archive, into)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                z.extractall(into)
        else:
            with tarfile.open(archive) as t:
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                t.extractall(into, **safe)  # type: ignore[arg-type]
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as err:
        shutil.rmtree(into, ignore_errors=True)
        raise UserError(f"cannot unpack {archive}: {' '.join(str(err).split())}") from None
    return into


def find_root(source: Path, marker: str) -> Path | None:
    """The folder holding ``marker`` (a relative path): ``source`` or one of its sub-folders."""
    if (source / marker).exists():
        return source
    if source.is_dir():
        for child in sorted(source.iterdir()):
            if child.is_dir() and (child / marker).exists():
                return child
    return None


def _check_target(out: Path) -> None:
    for folder in SPLITS:
        target = out / folder
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise UserError(f"{target} already exists; remove it to prepare this dataset again")


def write_tree(layout: Layout, out: Path) -> dict[str, Path]:
    """Link every image of ``layout`` into ``out/{train,val}/<class>/``; return the two folders.

    Args:
        layout: the parsed download.
        out: the dataset's folder, e.g. ``datasets/tinyimagenet``.

    Returns:
        ``{"train": out/train, "val": out/val}``.

    """
    _check_target(out)
    folders = {folder: out / folder for folder in SPLITS}
    try:
        for folder, top in folders.items():
            _link_split(layout, folder, top)
    except (UserError, OSError):
        for top in folders.values():  # a half-made tree would block the next try
            shutil.rmtree(top, ignore_errors=True)
        raise
    return folders


def _link_split(layout: Layout, folder: str, top: Path) -> None:
    for name in layout.classes:
        (top / name).mkdir(parents=True, exist_ok=True)
    for image, name in layout.splits[folder]:
        link = top / name / image.name
        if link.is_symlink():
            raise UserError(f"two {folder} images are named {image.name} in class {name}")
        os.symlink(image.resolve(), link)


def index_tree(
    dataset: str, folders: dict[str, Path], *, seed: int, cache_dir: Path
) -> dict[str, Path]:
    """Build the indexes a run opens for ``folders`` (the cache path of ``ensure_index``)."""
    return {
        folder: ensure_index(
            dataset,
            path,
            split=SPLITS[folder],
            seed=seed,
            data_format="image_folder",
            cache_dir=cache_dir,
        )
        for folder, path in folders.items()
    }
