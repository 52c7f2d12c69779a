# SPDX-License-Identifier: MIT
"""The weighted kNN core: known answers, an independent numpy vote, chunking, the online bank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from solo_diversity.errors import UserError
from solo_diversity.methods.knn import OnlineKNN, class_scores, knn_accuracy, knn_hits


def class_directions(
    n: int, classes: int, dim: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of a "backbone" that maps class c to direction e_c (plus small noise)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    feats = torch.eye(dim)[labels] * 3.0 + 0.1 * torch.randn(n, dim, generator=g)
    return feats, labels


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_separable_classes_score_100_percent(distance):
    train, y_train = class_directions(500, 10, 16, seed=0)
    test, y_test = class_directions(200, 10, 16, seed=1)
    assert knn_accuracy(
        train, y_train, test, y_test, k=20, temperature=0.07, distance=distance
    ) == (100.0, 100.0)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_shuffled_labels_score_near_chance(distance):
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(2000, 16, generator=g), torch.randn(1000, 16, generator=g)
    y_train = torch.randint(0, 10, (2000,), generator=g)
    y_test = torch.randint(0, 10, (1000,), generator=g)
    acc1, acc5 = knn_accuracy(train, y_train, test, y_test, k=20, distance=distance)
    assert 6.0 < acc1 < 14.0 and 40.0 < acc5 < 60.0  # chance: 10% and 50%


def numpy_votes(train, y_train, test, k, temperature, distance, num_classes):
    """The vote written as a per-sample loop over sorted neighbours (independent of the code)."""
    train, test = np.asarray(train, np.float64), np.asarray(test, np.float64)
    scores = np.zeros((len(test), num_classes))
    for i, q in enumerate(test):
        if distance == "cosine":
            a = train / np.linalg.norm(train, axis=1, keepdims=True)
            sim = a @ (q / np.linalg.norm(q))
            weight = np.exp(sim / temperature)
        else:
            sim = 1.0 / (np.sqrt(((train - q) ** 2).sum(axis=1)) + 1e-5)
            weight = sim
        for j in np.argsort(-sim, kind="stable")[:k]:
            scores[i, y_train[j]] += weight[j]
    return scores


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_vote_equals_an_independent_numpy_computation(distance):
    g = torch.Generator().manual_seed(3)
    train, test = torch.randn(30, 4, generator=g), torch.randn(9, 4, generator=g)
    y_train, y_test = (
        torch.randint(0, 6, (30,), generator=g),
        torch.randint(0, 6, (9,), generator=g),
    )
    expected = numpy_votes(train.numpy(), y_train.numpy(), test.numpy(), 4, 0.1, distance, 6)
    prepared = (
        (torch.nn.functional.normalize(train), torch.nn.functional.normalize(test))
        if distance == "cosine"
        else (train, test)
    )
    got = class_scores(
        prepared[0], y_train, prepared[1], k=4, temperature=0.1, distance=distance, num_classes=6
    )
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-5)
    ranked = np.argsort(-expected, axis=1, kind="stable")
    top1 = int((ranked[:, 0] == y_test.numpy()).sum())
    voted = np.take_along_axis(expected, ranked, axis=1) > 0  # classes no neighbour chose: none
    top4 = int(((ranked == y_test.numpy()[:, None]) & voted)[:, :4].any(axis=1).sum())  # min(5,k,C)
    hits = knn_hits(train, y_train, test, y_test, k=4, temperature=0.1, distance=distance)
    assert (hits.top1, hits.top5, hits.total) == (top1, top4, 9)


def test_chunking_does_not_change_the_result():
    g = torch.Generator().manual_seed(4)
    train, test = torch.randn(300, 8, generator=g), torch.randn(101, 8, generator=g)
    y_train, y_test = (
        torch.randint(0, 5, (300,), generator=g),
        torch.randint(0, 5, (101,), generator=g),
    )
    whole = knn_hits(train, y_train, test, y_test, k=7)
    assert knn_hits(train, y_train, test, y_test, k=7, max_matrix_size=300 * 3) == whole
    assert knn_hits(train, y_train, test, y_test, k=7, max_matrix_size=1) == whole  # 1 row a chunk


def test_a_test_set_missing_classes_still_scores():
    train, y_train = class_directions(100, 5, 8, seed=0)
    test, y_test = class_directions(50, 5, 8, seed=1)
    keep = y_test >= 3  # only classes 3 and 4 (solo-learn would count 2 classes and fail)
    assert knn_accuracy(train, y_train, test[keep], y_test[keep], k=5) == (100.0, 100.0)


def test_k_above_the_bank_size_is_capped_and_top5_follows_k():
    train, y_train = class_directions(3, 3, 4, seed=0)
    test, y_test = class_directions(6, 3, 4, seed=1)
    hits = knn_hits(train, y_train, test, y_test, k=50, distance="euclidean")
    assert hits == hits.__class__(top1=6, top5=6, total=6)


def test_unknown_distance_is_one_line():
    x, y = class_directions(10, 2, 4, seed=0)
    with pytest.raises(
        UserError,
        match=r"^distance function 'manhattan' is unknown; choose one "
        r"of cosine, euclidean$",
    ):
        knn_hits(x, y, x, y, distance="manhattan")


def test_non_positive_k_is_one_line():
    x, y = class_directions(10, 2, 4, seed=0)
    with pytest.raises(UserError, match=r"^k=0 must be a positive number of neighbours$"):
        knn_hits(x, y, x, y, k=0)


def test_online_bank_keeps_the_newest_rows_and_drops_unlabelled():
    knn = OnlineKNN(2, 3, capacity=4, k=1, distance="euclidean")
    knn.add_train(torch.tensor([[9.0, 9.0], [0.0, 0.0]]), torch.tensor([2, -1]))
    assert knn.num_train == 1
    far = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0], [0.0, -10.0]])
    knn.add_train(far, torch.tensor([0, 1, 0, 1]))  # overwrites the first row: capacity 4
    assert knn.num_train == 4
    knn.add_test(torch.tensor([[9.0, 9.0], [1.0, 0.0]]), torch.tensor([2, -1]))
    assert knn.num_test == 1
    # (9, 9) is nearest to (10, 0) or (0, 10) now that its own class-2 row was overwritten
    assert knn.compute() == (0.0, 0.0)
    assert knn.num_train == knn.num_test == 0  # compute empties both banks


def test_online_bank_matches_the_offline_function():
    train, y_train = torch.randn(64, 8), torch.randint(0, 4, (64,))
    test, y_test = torch.randn(20, 8), torch.randint(0, 4, (20,))
    knn = OnlineKNN(8, 4, capacity=100, k=5, temperature=0.1, distance="cosine")
    for i in range(0, 64, 16):
        knn.add_train(train[i : i + 16], y_train[i : i + 16])
    knn.add_test(test[:10], y_test[:10])
    knn.add_test(test[10:], y_test[10:])
    expected = knn_accuracy(train, y_train, test, y_test, k=5, temperature=0.1, num_classes=4)
    assert knn.compute() == expected


def test_online_bank_without_features_reports_minus_one():
    assert OnlineKNN(4, 2, capacity=8).compute() == (-1.0, -1.0)
