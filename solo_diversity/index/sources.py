# SPDX-License-Identifier: MIT
"""Entry sources over files on disk: ``folder`` (class sub-folders), ``flat`` (no labels), ``list``.

A source is a :class:`Source`: the entry iterator plus what the index records about it.
Iterators walk in a deterministic order (sorted directory listings, list-file order) so the same
seed gives the same index on every machine, and they stream: memory is bounded by the largest
single directory. Files are not opened at build time for path indexes (too costly at 100M); the
data loader skips unreadable ones. With ``embed=True`` the file bytes are stored instead, and
unreadable files are skipped with a warning.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from solo_diversity.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
LIST_SUFFIXES_CSV = frozenset({".csv"})


@dataclass
class Source:
    """An entry stream and what the index records about it.

    Attributes:
        kind: ``"paths"`` (payloads are path strings relative to ``root``) or ``"bytes"``.
        entries: ``(payload, label)`` pairs in a deterministic order; label -1 when unlabeled.
        class_names: names of classes 0..K-1 (empty when unlabeled).
        root: folder the paths are relative to (``None`` for bytes).
        dataset: the dataset name recorded when the caller gives none.
        description: the ``source`` attribute, e.g. ``"folder:/data/imagenet/train"``.
        source_rows: (N,) row of each streamed entry in the original data, when the stream is a
            selection of it (a built-in split); ``None`` means the stream position itself.

    """

    kind: str
    entries: Iterable[tuple[str | bytes, int]]
    class_names: list[str]
    root: Path | None
    dataset: str
    description: str
    source_rows: np.ndarray | None = None


def existing_dir(root: str | Path | None, what: str) -> Path:
    """Return ``root`` resolved, or raise :class:`UserError` if it is not a directory."""
    if root is None:
        raise UserError(f"source {what!r} needs root=<folder>")
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"{what} source folder does not exist: {path}")
    return path


def _listing(folder: Path) -> list[tuple[str, bool]]:
    """Sorted ``(name, is a folder)`` of ``folder``'s entries, hidden ones left out.

    Links are followed; a link that loops on itself, or a folder that cannot be listed, is a
    one-line :class:`UserError`.
    """
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if not e.name.startswith(".")]
    except OSError as err:
        raise UserError(f"cannot list folder {folder} ({err.strerror or err})") from None
    listing = []
    for entry in entries:
        try:
            listing.append((entry.name, entry.is_dir()))
        except OSError as err:  # ELOOP: a symbolic link that points, in the end, to itself
            raise UserError(
                f"{folder / entry.name} cannot be followed ({err.strerror or err}); remove the "
                "symbolic link loop or move it out of the folder"
            ) from None
    return sorted(listing)


def _folder_id(folder: Path) -> tuple[int, int]:
    stat = folder.stat()
    return stat.st_dev, stat.st_ino


def walk_images(root: Path, rel: str = "") -> Iterator[str]:
    """Yield image files under ``root/rel`` as posix paths relative to ``root``, in sorted order.

    Hidden names are skipped; in each directory files come before sub-directories. Linked folders
    are followed, but one that leads back to a folder the walk is inside (a loop, which would
    otherwise nest until the system refuses) is a one-line :class:`UserError`.
    """
    stack = [(rel, tuple({_folder_id(root), _folder_id(root / rel)}))]
    while stack:
        current, inside = stack.pop()
        base = root / current if current else root
        subdirs = []
        for name, is_dir in _listing(base):
            child = f"{current}/{name}" if current else name
            if is_dir:
                folder = _folder_id(root / child)
                if folder in inside:
                    raise UserError(
                        f"{root / child} links back to a folder that contains it (a symbolic "
                        "link loop); remove the link or move it out of the folder"
                    )
                subdirs.append((child, (*inside, folder)))
            elif os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                yield child
        stack.extend(reversed(subdirs))


def embedded(entries: Iterable[tuple[str, int]], root: Path) -> Iterator[tuple[bytes, int]]:
    """Read each path's bytes (relative to ``root``); skip unreadable files with a warning."""
    skipped = 0
    for rel, label in entries:
        try:
            yield (root / rel).read_bytes(), label
        except OSError as err:
            skipped += 1
            log.warning("skipping unreadable file %s: %s", rel, err)
    if skipped:
        log.warning("embedded index skipped %d unreadable files", skipped)


def _no_images(root: Path) -> UserError:
    exts = ", ".join(sorted(IMAGE_EXTENSIONS))
    return UserError(f"no image files under {root} (extensions: {exts})")


def _maybe_embed(
    entries: Iterable[tuple[str, int]], root: Path, embed: bool | None
) -> tuple[str, Iterable]:
    return ("bytes", embedded(entries, root)) if embed else ("paths", entries)


def folder_source(*, root: str | Path | None, embed: bool | None = None) -> Source:
    """Class sub-folders of ``root`` (sorted names = classes 0..K-1), images found recursively.

    Args:
        root: the dataset folder, e.g. ``imagenet/train`` holding ``n01440764/...``.
        embed: store file bytes instead of paths.

    Returns:
        The :class:`Source`.

    """
    top = existing_dir(root, "folder")
    classes = [name for name, is_dir in _listing(top) if is_dir]
    if not classes:
        raise UserError(
            f"no class sub-folders in {top}; use source 'flat' for a folder without classes"
        )

    def entries() -> Iterator[tuple[str, int]]:
        count = 0
        for label, name in enumerate(classes):
            before = count
            for rel in walk_images(top, name):
                count += 1
                yield rel, label
            if count == before:
                log.warning("class folder %s has no images", top / name)
        if count == 0:
            raise _no_images(top)

    kind, stream = _maybe_embed(entries(), top, embed)
    return Source(kind, stream, classes, None if embed else top, top.name, f"folder:{top}")


def flat_source(*, root: str | Path | None, embed: bool | None = None) -> Source:
    """Every image under ``root`` (recursively, sorted), unlabeled (labels -1).

    Args:
        root: the folder to scan.
        embed: store file bytes instead of paths.

    Returns:
        The :class:`Source`.

    """
    top = existing_dir(root, "flat")

    def entries() -> Iterator[tuple[str, int]]:
        count = 0
        for rel in walk_images(top):
            count += 1
            yield rel, -1
        if count == 0:
            raise _no_images(top)

    kind, stream = _maybe_embed(entries(), top, embed)
    return Source(kind, stream, [], None if embed else top, top.name, f"flat:{top}")


def _csv_records(
    list_path: Path, path_column: str, label_column: str
) -> tuple[bool, Iterator[tuple[str, str]]]:
    """Check the CSV header; return whether it has labels and a stream of (path, label text)."""
    with open(list_path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), None)
    if not header or path_column not in header:
        cols = ", ".join(header or []) or "none"
        raise UserError(f"CSV {list_path} has no {path_column!r} column (columns: {cols})")
    has_labels = label_column in header

    def records() -> Iterator[tuple[str, str]]:
        with open(list_path, newline="", encoding="utf-8") as f:
            for lineno, row in enumerate(csv.DictReader(f), start=2):
                path = (row.get(path_column) or "").strip()
                label = (row.get(label_column) or "").strip() if has_labels else ""
                if not path:
                    continue
                if has_labels and not label:
                    raise UserError(f"CSV {list_path} line {lineno}: empty {label_column!r} value")
                yield path, label

    return has_labels, records()


def _label_vocabulary(values: set[str]) -> tuple[list[str], dict[str, int]]:
    """Class names and the label-text -> id map: integers are ids, anything else sorted names."""
    if values and all(v.isdigit() for v in values):
        return [str(i) for i in range(max(int(v) for v in values) + 1)], {v: int(v) for v in values}
    names = sorted(values)
    return names, {name: i for i, name in enumerate(names)}


def _txt_entries(list_path: Path) -> Iterator[tuple[str, int]]:
    with open(list_path, encoding="utf-8") as f:
        for line in f:
            path = line.strip()
            if path and path[0] != "#":
                yield path, -1


def list_source(
    *,
    list_path: str | Path | None,
    root: str | Path | None = None,
    embed: bool | None = None,
    path_column: str = "path",
    label_column: str = "label",
) -> Source:
    """Paths from a list file: a ``.csv`` with a header, or a text file with one path a line.

    In a CSV, ``path_column`` is required and ``label_column`` optional. Integer labels are class
    ids (class names ``"0".."K-1"``); any other labels are class names, sorted to ids. A text list
    is unlabeled. Paths are relative to ``root`` (default: the list file's folder) or absolute.

    Args:
        list_path: the list file.
        root: folder the listed paths are relative to.
        embed: store file bytes instead of paths.
        path_column: CSV column holding the paths.
        label_column: CSV column holding the labels.

    Returns:
        The :class:`Source`.

    """
    if list_path is None:
        raise UserError("source 'list' needs list_path=<file.csv|file.txt>")
    listing = Path(list_path).expanduser().resolve()
    if not listing.is_file():
        raise UserError(f"list file does not exist: {listing}")
    base = existing_dir(root, "list") if root is not None else listing.parent
    class_names: list[str] = []
    entries: Iterator[tuple[str, int]]
    if listing.suffix.lower() in LIST_SUFFIXES_CSV:
        has_labels, records = _csv_records(listing, path_column, label_column)
        if has_labels:  # a first streaming pass learns the label vocabulary
            class_names, to_id = _label_vocabulary({label for _, label in records})
            records = _csv_records(listing, path_column, label_column)[1]
            entries = ((path, to_id[label]) for path, label in records)
        else:
            entries = ((path, -1) for path, _ in records)
    else:
        entries = _txt_entries(listing)

    kind, stream = _maybe_embed(entries, base, embed)
    return Source(
        kind, stream, class_names, None if embed else base, listing.stem, f"list:{listing}"
    )
