# SPDX-License-Identifier: MIT
"""Built-in datasets, embedded as PNG bytes: ``digits``, ``fashion_mnist``, ``torchvision``.

- ``digits``: scikit-learn's bundled ``load_digits`` (1,797 real 8x8 digits, values 0..16 scaled to
  0..255), split 80/20 per class by :data:`DIGITS_SPLIT_SEED`, which is independent of the index
  seed, so train and test never overlap whatever seed shuffles them.
- ``fashion_mnist``: the standard IDX ``.gz`` files, from a given folder, the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or a torchvision download.
- ``torchvision``: CIFAR-10/100 downloaded by torchvision into ``root``; offline, a one-line
  :class:`UserError` saying which archive to place where. The network is probed with a short
  timeout first so an offline machine fails in seconds.
"""

from __future__ import annotations

import gzip
import io
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from solo_diversity.errors import UserError
from solo_diversity.index.format import builtin_split, round_half_up
from solo_diversity.index.sources import Source

log = logging.getLogger(__name__)

DIGITS_SPLIT_SEED = 1797
DIGITS_TEST_FRACTION = 0.2
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
PROBE_TIMEOUT_S = 3.0


def encode_png(image: np.ndarray) -> bytes:
    """Encode a uint8 image, (H, W) grey or (H, W, 3) RGB, as PNG bytes (deterministic)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_entries(images: np.ndarray, labels: np.ndarray) -> Iterator[tuple[bytes, int]]:
    for image, label in zip(images, labels.tolist(), strict=True):
        yield encode_png(image), int(label)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask (N,) choosing round(fraction * n_c) random members of every class c.

    Args:
        labels: (N,) int class ids.
        fraction: share of each class to hold out.
        seed: the split seed.

    Returns:
        (N,) bool, True for held-out entries.

    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        mask[members[: round_half_up(fraction * len(members))]] = True
    return mask


def digits_source(*, split: str = "train") -> Source:
    """scikit-learn's handwritten digits as 8x8 grey PNGs, train (80%) or test (20%) per class."""
    from sklearn.datasets import load_digits

    which = builtin_split(split)
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    test = stratified_holdout(labels, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)
    keep = np.flatnonzero(test if which == "test" else ~test)
    return Source(
        kind="bytes",
        entries=_png_entries(images[keep], labels[keep]),
        class_names=[str(i) for i in range(10)],
        root=None,
        dataset="digits",
        description=f"digits:sklearn.load_digits split_seed={DIGITS_SPLIT_SEED}",
        source_rows=keep.astype(np.int64),
    )


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) of unsigned bytes: images (N, H, W) or labels (N,)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise UserError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def online(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def fashion_mnist_source(*, root: str | Path | None = None, split: str = "train") -> Source:
    """Fashion-MNIST as 28x28 grey PNGs from IDX files; downloaded into ``root`` as a last resort.

    Looked for in ``root``, ``root/FashionMNIST/raw`` (torchvision's layout) and
    ``/usr/share/datasets/fashion-mnist``, in that order. A ``root`` that does not exist is a
    one-line :class:`UserError` (a typo would otherwise index the system copy without a word), and
    taking the system copy although a ``root`` was given is logged as a warning.
    """
    prefix = "train" if builtin_split(split) == "train" else "t10k"
    if root is not None and not Path(root).expanduser().is_dir():
        raise UserError(
            f"fashion_mnist root {root} does not exist; give the folder with "
            f"{prefix}-images-idx3-ubyte.gz (create it to download there), or no root to use "
            f"{FASHION_MNIST_SYSTEM_DIR}"
        )
    folders = [Path(root), Path(root) / "FashionMNIST" / "raw"] if root is not None else []
    folders.append(FASHION_MNIST_SYSTEM_DIR)
    for folder in folders:
        images_file = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
        labels_file = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
        if images_file and labels_file:
            if root is not None and folder == FASHION_MNIST_SYSTEM_DIR:
                log.warning("no Fashion-MNIST IDX files in %s; using %s", root, folder)
            break
    else:
        if root is None:
            raise UserError(
                "Fashion-MNIST not found: apt-get install dataset-fashion-mnist (IDX files in "
                f"{FASHION_MNIST_SYSTEM_DIR}) or give root=<folder with "
                f"{prefix}-images-idx3-ubyte.gz>"
            )
        _torchvision_download("fashion_mnist", Path(root), train=prefix == "train")
        images_file = _find_idx(folders[1], f"{prefix}-images-idx3-ubyte")
        labels_file = _find_idx(folders[1], f"{prefix}-labels-idx1-ubyte")
        assert images_file and labels_file, "torchvision download left no IDX files"
    images, labels = read_idx(images_file), read_idx(labels_file)
    if len(images) != len(labels):
        raise UserError(
            f"{images_file} has {len(images)} images but {labels_file} {len(labels)} labels"
        )
    return Source(
        kind="bytes",
        entries=_png_entries(images, labels.astype(np.int64)),
        class_names=list(FASHION_MNIST_CLASSES),
        root=None,
        dataset="fashion_mnist",
        description=f"fashion_mnist:{images_file.parent}",
    )


@dataclass(frozen=True)
class TorchvisionSpec:
    """How to fetch one torchvision dataset and what to tell an offline user."""

    class_name: str
    title: str
    files: str
    url: str
    host: str
    port: int = 443


TORCHVISION_DATASETS = {
    "cifar10": TorchvisionSpec(
        "CIFAR10",
        "CIFAR-10",
        "cifar-10-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/",
        "www.cs.toronto.edu",
    ),
    "cifar100": TorchvisionSpec(
        "CIFAR100",
        "CIFAR-100",
        "cifar-100-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/",
        "www.cs.toronto.edu",
    ),
    "fashion_mnist": TorchvisionSpec(
        "FashionMNIST",
        "Fashion-MNIST",
        "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "
        "(or apt-get install dataset-fashion-mnist)",
        "https://github.com/zalandoresearch/fashion-mnist",
        "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        80,
    ),
}


class _LabelledImages(Protocol):
    """What the torchvision datasets here expose: the images, their labels, the class names."""

    data: Any  # (N, H, W[, C]) uint8, an array or a tensor
    targets: Any  # (N,) integer labels, a list or a tensor
    classes: list[str]


def _torchvision_download(name: str, root: Path, *, train: bool) -> _LabelledImages:
    """Return the torchvision dataset, from ``root`` if present, else downloaded there."""
    import torchvision.datasets as tvd

    spec = TORCHVISION_DATASETS[name]
    cls: Callable[..., _LabelledImages] = getattr(tvd, spec.class_name)
    offline = (
        f"{spec.title} is not available offline: place {spec.files} in {root} (from {spec.url})"
    )
    root.mkdir(parents=True, exist_ok=True)
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:
        pass  # not extracted yet
    if not (root / spec.files).is_file() and not online(spec.host, spec.port):
        raise UserError(offline)
    log.info("fetching %s into %s", spec.title, root)
    try:
        return cls(str(root), train=train, download=True)
    except (OSError, RuntimeError) as err:
        raise UserError(f"{offline}; the download failed: {_one_line(err)}") from err


def torchvision_source(
    *, name: str | None, root: str | Path | None, split: str = "train"
) -> Source:
    """A torchvision dataset (``cifar10``, ``cifar100``, ``fashion_mnist``) as PNG bytes.

    Args:
        name: which dataset.
        root: folder for torchvision's files (downloaded there when online).
        split: ``train`` or ``test`` (``val`` = test).

    Returns:
        The :class:`Source`.

    """
    if name not in TORCHVISION_DATASETS:
        raise UserError(
            f"unknown torchvision dataset {name!r}; valid: {', '.join(TORCHVISION_DATASETS)}"
        )
    if root is None:
        raise UserError(f"torchvision source {name!r} needs root=<download folder>")
    if name == "fashion_mnist":
        return fashion_mnist_source(root=root, split=split)
    which = builtin_split(split)
    folder = Path(root).expanduser().resolve()
    dataset = _torchvision_download(name, folder, train=which == "train")
    images = np.asarray(dataset.data, dtype=np.uint8)
    labels = np.asarray(dataset.targets, dtype=np.int64)
    return Source(
        kind="bytes",
        entries=_png_entries(images, labels),
        class_names=list(dataset.classes),
        root=None,
        dataset=name,
        description=f"torchvision:{name}:{folder}",
    )
