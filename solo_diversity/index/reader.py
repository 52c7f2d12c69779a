# SPDX-License-Identifier: MIT
"""Read-only access to an index file: :func:`open_index` and :class:`ImageIndex`.

Opening validates the format and reads only the attributes and class names; :func:`check_root`
says in one line when a paths index's image folder has moved. The HDF5 handle is
opened lazily and re-opened in each process (a pickled or forked copy never reuses its parent's
handle), so an :class:`ImageIndex` is safe to hand to DataLoader workers.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from solo_diversity.errors import UserError
from solo_diversity.index.format import PAYLOAD_DATASET, validate_attrs

READ_CACHE_BYTES = 8 << 20  # HDF5 chunk cache per open file
LABEL_READ_BLOCK = 1 << 22  # labels read per slice when gathering at scattered positions
ROOT_SAMPLE = 16  # entries of a paths index looked for under its root before a run


def _open_h5(path: Path) -> h5py.File:
    return h5py.File(path, "r", rdcc_nbytes=READ_CACHE_BYTES)


class ImageIndex:
    """A shuffled index file: entries 0..N-1 in stored order, their labels and class names.

    Attributes:
        path: the file.
        dataset: dataset name, e.g. ``"cifar100"``.
        split: split name, e.g. ``"train"``.
        kind: ``"paths"`` or ``"bytes"``.
        root: folder the paths are relative to (``None`` for bytes indexes).
        seed: the seed that fixed the order.
        source: where the entries came from.
        fingerprint: hex sha256 of the ordered entries and labels.
        class_names: class names, index = class id.
        num_classes: ``len(class_names)`` (0 when unlabeled).
        has_labels: whether entries carry class ids.
        created: ISO time of the build.
        origin_sources: the inputs of a set built from several indexes (a union), each a dict
            with ``path`` and ``fingerprint``; empty for any other index.
        has_origin: whether entries record which of ``origin_sources`` they came from.

    """

    def __init__(self, path: str | Path, attrs: dict[str, Any], class_names: list[str]) -> None:
        self.path = Path(path)
        self.dataset = str(attrs["dataset"])
        self.split = str(attrs["split"])
        self.kind = str(attrs["kind"])
        self.root = Path(attrs["root"]) if attrs["root"] else None
        self.seed = int(attrs["seed"])
        self.source = str(attrs["source"])
        self.fingerprint = str(attrs["fingerprint"])
        self.created = str(attrs["created"])
        self.class_names = class_names
        self.num_classes = len(class_names)
        self.has_labels = self.num_classes > 0
        self.origin_sources: list[dict[str, Any]] = json.loads(attrs.get("origin_sources") or "[]")
        self.has_origin = bool(self.origin_sources)
        self._len = int(attrs["num_samples"])
        self._h5: h5py.File | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._pid = -1

    def __repr__(self) -> str:
        return (
            f"ImageIndex({str(self.path)!r}, dataset={self.dataset!r}, split={self.split!r}, "
            f"kind={self.kind!r}, n={self._len}, classes={self.num_classes}, seed={self.seed})"
        )

    def __len__(self) -> int:
        return self._len

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"], state["_datasets"], state["_pid"] = None, {}, -1
        return state

    def _dataset(self, name: str) -> h5py.Dataset:
        """The named HDF5 dataset, from a handle opened by this process (cached)."""
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = _open_h5(self.path)
            self._datasets = {}
            self._pid = os.getpid()
        if name not in self._datasets:
            self._datasets[name] = self._h5[name]
        return self._datasets[name]

    def close(self) -> None:
        """Close this process's file handle (it reopens on the next read)."""
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5, self._datasets, self._pid = None, {}, -1

    def _check(self, position: int) -> int:
        position = int(position)
        if not 0 <= position < self._len:
            raise IndexError(
                f"position {position} out of range for an index of {self._len} entries"
            )
        return position

    def _read_int(self, name: str, positions: range | np.ndarray | None) -> np.ndarray:
        ds = self._dataset(name)
        if positions is None:
            return np.asarray(ds[:], dtype=np.int64)
        if isinstance(positions, range) and positions.step == 1:
            return np.asarray(ds[positions.start : positions.stop], dtype=np.int64)
        pos = np.asarray(positions, dtype=np.int64)
        out = np.empty(pos.shape, dtype=np.int64)
        if pos.size == 0:
            return out
        if pos.min() < 0 or pos.max() >= self._len:
            raise IndexError(f"positions outside 0..{self._len - 1}")
        order = np.argsort(pos, kind="stable")
        sorted_pos = pos[order]
        lo = 0
        while lo < len(sorted_pos):  # one slice per LABEL_READ_BLOCK span of positions
            start = int(sorted_pos[lo])
            hi = int(np.searchsorted(sorted_pos, start + LABEL_READ_BLOCK, side="left"))
            block = ds[start : int(sorted_pos[hi - 1]) + 1]
            out[order[lo:hi]] = block[sorted_pos[lo:hi] - start]
            lo = hi
        return out

    def labels(self, positions: range | np.ndarray | None = None) -> np.ndarray:
        """Labels of all entries, or of ``positions``.

        Args:
            positions: ``None`` (all), a ``range`` with step 1 (one slice read), or an int array
                (M,) of positions in any order (read slice by slice over their span).

        Returns:
            (N,) or (M,) int64; -1 where unlabeled.

        """
        return self._read_int("labels", positions)

    def source_positions(self, positions: range | np.ndarray | None = None) -> np.ndarray:
        """Row of each entry in the unshuffled source (e.g. the ``load_digits`` row), for tracing.

        Args:
            positions: as for :meth:`labels`.

        Returns:
            (N,) or (M,) int64.

        """
        return self._read_int("source_position", positions)

    def origins(self, positions: range | np.ndarray | None = None) -> np.ndarray:
        """Which input of :attr:`origin_sources` each entry came from (a union's provenance).

        Args:
            positions: as for :meth:`labels`.

        Returns:
            (N,) or (M,) int64 indexes into :attr:`origin_sources`.

        Raises:
            ValueError: the index records no origins (it was not built from several inputs).

        """
        if not self.has_origin:
            raise ValueError(f"index {self.path} records no origins (it is not a union)")
        return self._read_int("origin", positions)

    def entry_names(self, lo: int = 0, hi: int | None = None) -> list[str]:
        """Stored names of entries ``lo..hi-1`` in one read (see :meth:`entry_name`)."""
        hi = self._len if hi is None else hi
        if self.kind != "paths":
            rows = self._read_int("source_position", range(lo, hi))
            return [f"#{int(row)}" for row in rows]
        values = self._dataset("paths")[lo:hi]
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]

    def entry_name(self, position: int) -> str:
        """The stored relative path, or ``"#<source_position>"`` for an embedded image."""
        position = self._check(position)
        if self.kind == "paths":
            value = self._dataset("paths")[position]
            return value.decode("utf-8") if isinstance(value, bytes) else str(value)
        return f"#{int(self._dataset('source_position')[position])}"

    def file_path(self, position: int) -> Path:
        """Absolute file of a ``paths`` entry (``root / path``); ValueError for a bytes index."""
        if self.kind != "paths":
            raise ValueError(f"index {self.path} embeds its images; it has no file paths")
        name = self.entry_name(position)
        return self.root / name if self.root is not None else Path(name)

    def read_bytes(self, position: int) -> bytes:
        """The encoded image of entry ``position`` (read from disk for a ``paths`` index).

        Raises:
            OSError: the file of a ``paths`` entry cannot be read (the loader skips it).

        """
        if self.kind == "paths":
            return self.file_path(position).read_bytes()
        return self._dataset("images")[self._check(position)].tobytes()

    def read_many(self, positions: Sequence[int]) -> list[bytes | OSError]:
        """The encoded images of several entries, in the given order, from one HDF5 read.

        One fancy read of the sorted distinct positions replaces one h5py call per entry
        (~0.2 ms each, as much as decoding a small JPEG). A ``paths`` entry whose file cannot be
        read gives its ``OSError`` in its place, for the loader to skip as it skips bad images.
        """
        pos = np.asarray([self._check(p) for p in positions], dtype=np.int64)
        if pos.size == 0:
            return []
        unique, inverse = np.unique(pos, return_inverse=True)
        name = "paths" if self.kind == "paths" else "images"
        rows = self._dataset(name)[unique]
        out: list[bytes | OSError] = []
        for k in inverse.tolist():
            row = rows[k]
            if self.kind != "paths":
                out.append(row.tobytes())
                continue
            rel = row.decode("utf-8") if isinstance(row, bytes) else str(row)
            try:
                out.append((self.root / rel if self.root is not None else Path(rel)).read_bytes())
            except OSError as err:
                out.append(err)
        return out


def open_index(path: str | Path, *, expected_dataset: str | None = None) -> ImageIndex:
    """Open and validate an index file.

    Args:
        path: the ``.h5`` file.
        expected_dataset: when given, the dataset the index must hold.

    Returns:
        An :class:`ImageIndex` (no entries read yet).

    Raises:
        UserError: missing file, not HDF5 or corrupt, not a solo-diversity index, or holding another
            dataset than ``expected_dataset``.

    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"index file not found: {file}")
    try:
        with _open_h5(file) as f:
            attrs = {key: _python_value(value) for key, value in f.attrs.items()}
            validate_attrs(attrs, str(file))
            payload = PAYLOAD_DATASET[attrs["kind"]]
            names = [payload, "labels", "source_position", "class_names"]
            if attrs.get("origin_sources"):
                names.append("origin")
            for name in names:
                if name not in f:
                    raise UserError(f"{file} is a corrupt index: dataset {name!r} missing")
                if name != "class_names" and f[name].shape != (int(attrs["num_samples"]),):
                    raise UserError(
                        f"{file} is a corrupt index: {name!r} has shape {f[name].shape}"
                    )
            class_names = [_python_value(name) for name in f["class_names"][:]]
    except OSError as err:
        raise _unreadable_file(file, err) from err
    if expected_dataset is not None and attrs["dataset"] != expected_dataset:
        raise UserError(
            f"index {file} holds dataset {attrs['dataset']!r}, "
            f"but the config asks for {expected_dataset!r}"
        )
    return ImageIndex(file, attrs, class_names)


def _unreadable_file(file: Path, err: OSError) -> UserError:
    """The one line for an index file HDF5 cannot open: not HDF5, truncated, or corrupt."""
    message = _first_line(err)
    rebuild = "rebuild it with `solo-div index build`"
    if "file signature not found" in message:
        size = file.stat().st_size
        return UserError(
            f"cannot read index {file}: not an HDF5 file ({size} bytes, no HDF5 signature); "
            f"an index is made by `solo-div index build`"
        )
    truncated = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", message)
    if truncated:
        return UserError(
            f"cannot read index {file}: the file is truncated ({truncated.group(1)} of "
            f"{truncated.group(2)} bytes; an interrupted copy?); copy it again or {rebuild}"
        )
    return UserError(
        f"cannot read index {file}: not an HDF5 file or corrupt ({message}); {rebuild}"
    )


def check_root(index: ImageIndex, *, sample: int = ROOT_SAMPLE) -> None:
    """Check that a ``paths`` index's image folder is where the index says.

    A folder that was moved or renamed would otherwise make every read fail one by one; this
    looks at the root and at the first ``sample`` entries (existence only, no decoding).

    Args:
        index: an opened index (a ``bytes`` index passes at once).
        sample: entries to look for under the root.

    Raises:
        UserError: the root is not a folder, or none of the sampled entries exists under it.

    """
    if index.kind != "paths" or len(index) == 0:
        return
    try:
        _check_root(index, sample)
    finally:
        index.close()  # the caller may rewrite the file next (``solo-div index relocate``)


def _check_root(index: ImageIndex, sample: int) -> None:
    names = [index.entry_name(position) for position in range(min(sample, len(index)))]
    if all(Path(name).is_absolute() for name in names):
        return  # a list of absolute paths does not depend on the root
    fix = (
        f"rebuild the index with `solo-div index build`, or point it at the folder's new place "
        f"with `solo-div index relocate {index.path} NEW_ROOT`"
    )
    root = index.root if index.root is not None else Path()
    if not root.is_dir():
        raise UserError(
            f"index {index.path} reads its images from {root}, which is not a folder "
            f"(moved or renamed?); {fix}"
        )
    if not any(index.file_path(position).exists() for position in range(len(names))):
        raise UserError(
            f"none of the first {len(names)} images of index {index.path} is under {root} "
            f"(e.g. {names[0]}); was the folder moved or replaced? {fix}"
        )


def _python_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _first_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]
