# SPDX-License-Identifier: MIT
"""Weighted k-nearest-neighbour classification of frozen features, offline and online.

The vote is the one of Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination" (arXiv:1805.01978), as solo-learn's ``WeightedKNNClassifier`` applies it:

- ``cosine``: features are L2-normalised, ``s_ij = <f_i, g_j>``, and each of the k most similar
  training samples votes for its class with weight ``exp(s_ij / T)``.
- ``euclidean``: ``s_ij = 1 / (||f_i - g_j||_2 + 1e-5)`` and the weight is ``s_ij`` itself; the
  temperature is not used (solo-learn's ``main_knn.py`` runs euclidean once, with ``T=None``).

Class scores are the summed weights; top-1 is the best class, top-5 the best ``min(5, k, C)``
classes (solo-learn's cap: a top-5 of fewer than 5 neighbours means nothing), where a class that
no neighbour voted for never counts (solo-learn ranks those zero-score ties in whatever order the
sort leaves them). Test samples are
processed in chunks so that the (chunk, N_train) similarity matrix has at most
``max_matrix_size`` elements (solo-learn's 5e6). Unlike solo-learn, the number of classes is the
largest label + 1 rather than the number of distinct test labels, so a test set that misses a
class still scores correctly.

:class:`OnlineKNN` is the bank that a method fills during pretraining (``knn_eval.enabled``):
training features in a ring buffer, validation features in a list; :meth:`OnlineKNN.compute`
gathers the training bank over ranks and reduces the hit counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812

from solo_diversity.errors import UserError

DISTANCES = ("cosine", "euclidean")
FEATURE_TYPES = ("backbone", "projector")
EUCLIDEAN_EPSILON = 1e-5
MAX_MATRIX_SIZE = 5_000_000


def check_distance(distance: str) -> str:
    """``distance`` if it is one of :data:`DISTANCES`, else a one-line :class:`UserError`."""
    if distance not in DISTANCES:
        raise UserError(
            f"distance function {distance!r} is unknown; choose one of {', '.join(DISTANCES)}"
        )
    return distance


@dataclass(frozen=True)
class KnnHits:
    """Hit counts of one kNN evaluation: sums over test samples, so ranks can add them."""

    top1: int
    top5: int
    total: int

    def accuracies(self) -> tuple[float, float]:
        """(top-1, top-5) in percent; (-1, -1) when nothing was scored (solo-learn's value)."""
        if self.total == 0:
            return -1.0, -1.0
        return 100.0 * self.top1 / self.total, 100.0 * self.top5 / self.total


def class_scores(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    *,
    k: int,
    temperature: float | None,
    distance: str,
    num_classes: int,
) -> torch.Tensor:
    """Weighted votes of the k nearest training samples for one chunk of test samples.

    Args:
        train_feats: (N, F) training features (already L2-normalised for ``cosine``).
        train_labels: (N,) integer labels in [0, num_classes).
        test_feats: (M, F) test features (normalised like the training ones).
        k: neighbours per test sample, at most N.
        temperature: T of ``exp(s / T)`` (cosine only; ignored for euclidean).
        distance: ``cosine`` or ``euclidean``.
        num_classes: C.

    Returns:
        (M, C) summed neighbour weights per class.
    """
    if distance == "cosine":
        if temperature is None or temperature <= 0:
            raise UserError(f"temperature={temperature} must be > 0 for cosine kNN")
        top_sims, neighbours = (test_feats @ train_feats.T).topk(k, dim=1)
        weights = (top_sims / temperature).exp()
    else:
        sims = 1.0 / (torch.cdist(test_feats, train_feats) + EUCLIDEAN_EPSILON)
        weights, neighbours = sims.topk(k, dim=1)
    scores = torch.zeros(
        test_feats.size(0), num_classes, dtype=weights.dtype, device=weights.device
    )
    return scores.scatter_add_(1, train_labels[neighbours], weights)


@torch.no_grad()
def knn_hits(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    k: int = 20,
    temperature: float | None = 0.07,
    distance: str = "cosine",
    num_classes: int | None = None,
    max_matrix_size: int = MAX_MATRIX_SIZE,
) -> KnnHits:
    """Top-1 and top-5 hits of the weighted kNN classifier (see the module docstring).

    Args:
        train_feats: (N, F) features of the labelled bank.
        train_labels: (N,) labels in [0, C).
        test_feats: (M, F) features to classify.
        test_labels: (M,) their labels.
        k: neighbours; capped at N.
        temperature: T for cosine weights ``exp(s / T)``; unused for euclidean.
        distance: ``cosine`` or ``euclidean``.
        num_classes: C; by default the largest label + 1.
        max_matrix_size: bound on the elements of one (chunk, N) similarity matrix.

    Returns:
        The hit counts over the M test samples (all zero when either side is empty).
    """
    check_distance(distance)
    if k < 1:
        raise UserError(f"k={k} must be a positive number of neighbours")
    n_train, n_test = train_labels.numel(), test_labels.numel()
    if n_train == 0 or n_test == 0:
        return KnnHits(0, 0, 0)
    train_feats, test_feats = train_feats.float(), test_feats.float()
    if distance == "cosine":
        train_feats, test_feats = F.normalize(train_feats, dim=1), F.normalize(test_feats, dim=1)
    train_labels = train_labels.long().to(train_feats.device)
    test_labels = test_labels.long().to(train_feats.device)
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, n_train)
    top_n = min(5, k, num_classes)
    chunk = max(1, max_matrix_size // n_train)
    top1 = top5 = torch.zeros((), dtype=torch.long, device=train_feats.device)
    for start in range(0, n_test, chunk):
        scores = class_scores(
            train_feats,
            train_labels,
            test_feats[start : start + chunk].to(train_feats.device),
            k=k,
            temperature=temperature,
            distance=distance,
            num_classes=num_classes,
        )
        best, ranked = scores.topk(top_n, dim=1)
        # a class without votes is no prediction (upstream ranks such ties arbitrarily)
        hits = ranked.eq(test_labels[start : start + chunk, None]) & (best > 0)
        top1 = top1 + hits[:, 0].sum()
        top5 = top5 + hits.any(dim=1).sum()
    return KnnHits(int(top1), int(top5), n_test)  # one device sync, after the last chunk


def knn_accuracy(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    **kwargs: Any,
) -> tuple[float, float]:
    """(top-1, top-5) accuracy in percent of :func:`knn_hits` (same arguments)."""
    return knn_hits(train_feats, train_labels, test_feats, test_labels, **kwargs).accuracies()


def _gather_rows(x: torch.Tensor, world: int) -> torch.Tensor:
    """Concatenate (n_r, ...) tensors of every rank, whose n_r may differ, along dim 0."""
    size = torch.tensor([x.size(0)], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(int(s) for s in sizes))
    padded = x.new_zeros((longest, *x.shape[1:]))
    padded[: x.size(0)] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes, strict=True)])


class OnlineKNN:
    """The kNN bank of a pretraining run (solo-learn's ``knn_eval``), bounded in memory.

    Training features go into a ring buffer of ``capacity`` rows per rank (the newest win), so the
    bank never outgrows what it was sized for however long the gap between validations; the
    validation features of one pass are kept whole. :meth:`compute` scores them and empties both.

    Args:
        feature_dim: F.
        num_classes: C.
        capacity: rows of the training ring buffer on this rank.
        k: neighbours.
        temperature: T (cosine only).
        distance: ``cosine`` or ``euclidean``.
    """

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        capacity: int,
        *,
        k: int = 20,
        temperature: float = 0.07,
        distance: str = "euclidean",
    ):
        if capacity < 1:
            raise UserError(f"knn_eval.max_train_features={capacity} must be >= 1")
        if k < 1:
            raise UserError(f"knn_eval.k={k} must be a positive number of neighbours")
        self.distance = check_distance(distance)
        self.feature_dim, self.num_classes, self.capacity = feature_dim, num_classes, capacity
        self.k, self.temperature = k, temperature
        self._bank: torch.Tensor | None = None
        self._bank_labels: torch.Tensor | None = None
        self._next = 0
        self._filled = 0
        self._test: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def num_train(self) -> int:
        """Training rows held on this rank."""
        return self._filled

    @property
    def num_test(self) -> int:
        """Validation rows held on this rank."""
        return sum(y.numel() for _, y in self._test)

    @torch.no_grad()
    def add_train(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Store (B, F) features whose (B,) label is not -1, overwriting the oldest rows."""
        keep = labels != -1
        feats, labels = feats.detach()[keep], labels[keep]
        n = labels.numel()
        if n == 0:
            return
        if self._bank is None or self._bank.device != feats.device:
            self._bank = feats.new_empty((self.capacity, self.feature_dim), dtype=torch.float32)
            self._bank_labels = labels.new_empty((self.capacity,), dtype=torch.long)
            self._next = self._filled = 0
        assert self._bank_labels is not None
        if n > self.capacity:
            feats, labels, n = feats[-self.capacity :], labels[-self.capacity :], self.capacity
        rows = (torch.arange(n, device=feats.device) + self._next) % self.capacity
        self._bank[rows] = feats.float()
        self._bank_labels[rows] = labels.long()
        self._next = (self._next + n) % self.capacity
        self._filled = min(self.capacity, self._filled + n)

    @torch.no_grad()
    def add_test(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Store a validation batch: (B, F) features and (B,) labels (-1 rows are dropped)."""
        keep = labels != -1
        self._test.append((feats.detach()[keep].float(), labels[keep].long()))

    def reset(self) -> None:
        """Empty both banks (the training ring buffer keeps its memory)."""
        self._next = self._filled = 0
        self._test = []

    def banks(
        self, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Banks of this rank: (train (n, F), train labels (n,), test (m, F), test labels (m,))."""
        here = self._bank.device if self._bank is not None else (device or torch.device("cpu"))
        if self._bank is not None and self._bank_labels is not None:
            train, train_labels = self._bank[: self._filled], self._bank_labels[: self._filled]
        else:
            train = torch.empty((0, self.feature_dim), device=here)
            train_labels = torch.empty((0,), dtype=torch.long, device=here)
        if self._test:
            test = torch.cat([f for f, _ in self._test]).to(here)
            test_labels = torch.cat([y for _, y in self._test]).to(here)
        else:
            test = torch.empty((0, self.feature_dim), device=here)
            test_labels = torch.empty((0,), dtype=torch.long, device=here)
        return train, train_labels, test, test_labels

    @torch.no_grad()
    def compute(self, device: torch.device | None = None) -> tuple[float, float]:
        """Score the validation features against the training bank of every rank, then reset.

        Under ``torch.distributed`` every rank must call this: the training banks are gathered
        (each rank saw other images) and the hit counts summed, so all ranks return the same
        (top-1, top-5) in percent, or (-1, -1) when either bank is empty everywhere.

        Args:
            device: where to allocate empty banks (default: the bank's, else the CPU).
        """
        train, train_labels, test, test_labels = self.banks(device)
        here = train.device
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if world > 1:
            train, train_labels = _gather_rows(train, world), _gather_rows(train_labels, world)
        hits = knn_hits(
            train,
            train_labels,
            test,
            test_labels,
            k=self.k,
            temperature=self.temperature,
            distance=self.distance,
            num_classes=self.num_classes,
        )
        if world > 1:
            counts = torch.tensor([hits.top1, hits.top5, hits.total], device=here)
            dist.all_reduce(counts)
            hits = KnnHits(*(int(c) for c in counts))
        self.reset()
        return hits.accuracies()
