# SPDX-License-Identifier: MIT
"""The paper's source sets for Figure 3, written as indexes from an ImageNet train index.

From an index whose class names are WNIDs: ``B.h5`` is half of each ImageNet-100 class,
``A_in_source.h5`` the other half, and ``A_out_source.h5`` a fixed number of images spread evenly
over classes drawn with the seed from outside ImageNet-100. The ImageNet-100 list is the 100
classes of Tian et al.'s CMC (arXiv:1906.05849), shipped as ``imagenet100.txt`` beside this module
(the same list as the ``imagenet100.txt`` of the CMC repository, HobbitLong/CMC). B and A_in are
the leading and trailing halves of each class in the index's shuffled order, so they depend on
the index's seed only; the seed given here picks the A_out classes and shuffles all three sets.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from solo_diversity.builders.source.sets import pick_out_classes, split_half, uniform_take
from solo_diversity.errors import UserError
from solo_diversity.index.algebra import write_selection
from solo_diversity.index.reader import ImageIndex, open_index

log = logging.getLogger(__name__)

WNID = re.compile(r"n\d{8}")
SET_FILES = {"B": "B.h5", "A_in_source": "A_in_source.h5", "A_out_source": "A_out_source.h5"}
A_OUT_SIZE = 65_000  # the paper's |A|
A_OUT_CLASSES = 100


def imagenet100_wnids() -> list[str]:
    """The 100 WNIDs of ImageNet-100 (CMC's list), in the order of that list."""
    text = resources.files("solo_diversity.builders.source").joinpath("imagenet100.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class SourcePlan:
    """The chosen positions of each set in the ImageNet index, before anything is written.

    Attributes:
        positions: set name -> (M,) sorted positions in the ImageNet index.
        out_classes: the WNIDs the A_out set draws from, sorted.
    """

    positions: dict[str, np.ndarray]
    out_classes: list[str]


def plan_source_sets(
    index: ImageIndex,
    *,
    seed: int,
    a_out_size: int = A_OUT_SIZE,
    a_out_classes: int = A_OUT_CLASSES,
    in_classes: list[str] | None = None,
) -> SourcePlan:
    """Choose B, A_in_source and A_out_source from an ImageNet index (nothing written).

    Args:
        index: an index whose class names are WNIDs.
        seed: draws the A_out classes.
        a_out_size: images in A_out_source, spread evenly over its classes.
        a_out_classes: how many classes outside ImageNet-100 A_out draws from.
        in_classes: the in-distribution WNIDs (default: ImageNet-100).

    Returns:
        The positions of each set.

    Raises:
        UserError: class names that are not WNIDs, ImageNet-100 classes missing from the index,
            too few other classes, or a class with fewer images than its share of A_out.
    """
    wnids = imagenet100_wnids() if in_classes is None else in_classes
    names = index.class_names
    if not names or not all(WNID.fullmatch(name) for name in names):
        bad = next((name for name in names if not WNID.fullmatch(name)), "none")
        raise UserError(
            f"{index.path} is not an ImageNet index: its class names must be WNIDs like "
            f"n01440764 (found {bad!r})"
        )
    lookup = {name: i for i, name in enumerate(names)}
    labels = index.labels()
    counts = np.bincount(labels[labels >= 0], minlength=len(names))
    missing = [w for w in wnids if w not in lookup or counts[lookup[w]] == 0]
    if missing:
        raise UserError(
            f"{index.path} lacks {len(missing)} of the ImageNet-100 classes (no images of e.g. "
            f"{', '.join(missing[:3])}); is it ImageNet-1k train?"
        )
    if a_out_size < 1 or a_out_classes < 1:
        raise UserError(
            f"--a-out-size and --a-out-classes must be positive, got {a_out_size}, {a_out_classes}"
        )
    in_ids = np.array([lookup[w] for w in wnids], dtype=np.int64)
    b, a_in = split_half(labels, in_ids)
    present = np.flatnonzero(counts)  # a class without images cannot be drawn for A_out
    out_ids = pick_out_classes(present, in_ids, a_out_classes, seed)
    a_out = uniform_take(labels, out_ids, a_out_size)
    return SourcePlan(
        positions={"B": b, "A_in_source": a_in, "A_out_source": a_out},
        out_classes=[names[int(i)] for i in out_ids],
    )


def build_source_sets(
    imagenet: str | Path,
    out_dir: str | Path,
    *,
    seed: int,
    a_out_size: int = A_OUT_SIZE,
    a_out_classes: int = A_OUT_CLASSES,
) -> dict[str, Path]:
    """Write ``B.h5``, ``A_in_source.h5`` and ``A_out_source.h5`` into ``out_dir``.

    Every set is chosen before the first is written, so a bad input writes nothing; a failure while
    writing removes the sets this call already wrote.

    Args:
        imagenet: the ImageNet train index (class names are WNIDs).
        out_dir: the folder to write into (created).
        seed: draws the A_out classes and shuffles the three sets.
        a_out_size: images in A_out_source (the paper: 65,000).
        a_out_classes: classes outside ImageNet-100 A_out draws from (the paper: 100).

    Returns:
        Set name -> the index written.
    """
    index = open_index(imagenet)
    plan = plan_source_sets(index, seed=seed, a_out_size=a_out_size, a_out_classes=a_out_classes)
    folder = Path(out_dir)
    written: dict[str, Path] = {}
    try:
        for name, positions in plan.positions.items():
            # B and A_in are ImageNet-100 images: a data=imagenet100 run opens them as such.
            dataset = None if name == "A_out_source" else "imagenet100"
            written[name] = write_selection(
                index, positions, folder / SET_FILES[name], seed=seed, note=name, dataset=dataset
            )
            log.info("%s: %d images", written[name], len(positions))
    except BaseException:
        for path in written.values():
            path.unlink(missing_ok=True)
        raise
    return written
