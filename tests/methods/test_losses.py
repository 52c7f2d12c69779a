# SPDX-License-Identifier: MIT
"""Each loss against an independent, loop-based computation of its formula on fixed tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch

from solo_diversity.methods.losses import (
    barlow_loss,
    byol_loss,
    make_dino_loss,
    mocov3_loss,
    sinkhorn_codes,
    swav_loss,
    teacher_temperature,
    vicreg_loss,
)


def _inputs(*shape: int, n: int = 2, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=torch.float64).float() for _ in range(n)]


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_mocov3_matches_cross_entropy_over_keys() -> None:
    q, k = _inputs(4, 3)
    t = 0.2
    total = 0.0
    for i in range(4):
        logits = [_cos(q[i].tolist(), k[j].tolist()) / t for j in range(4)]
        total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
    assert mocov3_loss(q, k, t).item() == pytest.approx(2 * t * total / 4, rel=1e-5)


def test_byol_is_two_minus_two_cosine() -> None:
    p, z = _inputs(5, 4)
    expected = 2 - 2 * sum(_cos(p[i].tolist(), z[i].tolist()) for i in range(5)) / 5
    assert byol_loss(p, z).item() == pytest.approx(expected, rel=1e-5)


def test_byol_stops_the_gradient_of_the_target() -> None:
    p, z = (x.requires_grad_() for x in _inputs(5, 4))
    byol_loss(p, z).backward()
    assert z.grad is None and p.grad is not None


def _var_term(z: torch.Tensor) -> float:
    n, d = z.shape
    out = 0.0
    for j in range(d):
        col = z[:, j].tolist()
        mean = sum(col) / n
        var = sum((c - mean) ** 2 for c in col) / (n - 1)
        out += max(0.0, 1 - math.sqrt(var + 1e-4))
    return out / d


def _cov_term(z: torch.Tensor) -> float:
    n, d = z.shape
    means = [sum(z[:, j].tolist()) / n for j in range(d)]
    out = 0.0
    for a in range(d):
        for b in range(d):
            if a != b:
                c = sum((z[i, a].item() - means[a]) * (z[i, b].item() - means[b]) for i in range(n))
                out += (c / (n - 1)) ** 2
    return out / d


def test_vicreg_matches_the_three_terms_without_halving_the_variance() -> None:
    z1, z2 = _inputs(6, 3)
    z1 = z1 * 0.3  # std below 1 so the variance hinge is active
    mse = ((z1 - z2) ** 2).mean().item()
    expected = 25 * mse + 25 * (_var_term(z1) + _var_term(z2)) + 1 * (_cov_term(z1) + _cov_term(z2))
    assert vicreg_loss(z1, z2).item() == pytest.approx(expected, rel=1e-5)


def test_barlow_twins_matches_scaled_cross_correlation() -> None:
    z1, z2 = _inputs(6, 3)
    lamb, scale = 0.0051, 0.1

    def norm(z: torch.Tensor) -> list[list[float]]:
        n, d = z.shape
        cols = []
        for j in range(d):
            col = z[:, j].tolist()
            mean = sum(col) / n
            var = sum((c - mean) ** 2 for c in col) / n  # biased, as BatchNorm in training mode
            cols.append([(c - mean) / math.sqrt(var + 1e-5) for c in col])
        return cols

    a, b = norm(z1), norm(z2)
    total = 0.0
    for i in range(3):
        for j in range(3):
            c = sum(x * y for x, y in zip(a[i], b[j], strict=True)) / 6
            total += (1 - c) ** 2 if i == j else lamb * c**2
    assert barlow_loss(z1, z2, lamb, scale).item() == pytest.approx(scale * total, rel=1e-5)


def test_dino_matches_cross_entropy_over_other_views_and_moves_the_center() -> None:
    t0, t1, s0, s1, s2 = _inputs(4, 5, n=5)
    loss_fn = make_dino_loss(5, student_temperature=0.1, teacher_temperature=0.07)
    t_temp = 0.05

    def softmax(v: list[float]) -> list[float]:
        m = max(v)
        e = [math.exp(x - m) for x in v]
        return [x / sum(e) for x in e]

    total, terms = 0.0, 0
    for ti, teacher in enumerate((t0, t1)):
        for si, student in enumerate((s0, s1, s2)):
            if si == ti:
                continue
            per = 0.0
            for b in range(4):
                q = softmax([x / t_temp for x in teacher[b].tolist()])  # centre starts at 0
                s = softmax([x / 0.1 for x in student[b].tolist()])
                per += -sum(qk * math.log(sk) for qk, sk in zip(q, s, strict=True))
            total += per / 4
            terms += 1
    loss = loss_fn(teacher_out=[t0, t1], student_out=[s0, s1, s2], teacher_temp=t_temp)
    assert loss.item() == pytest.approx(total / terms, rel=1e-5)
    expected_center = 0.1 * torch.cat([t0, t1]).mean(dim=0)
    torch.testing.assert_close(loss_fn.center.reshape(-1), expected_center)


def test_teacher_temperature_warms_up_linearly_then_stays() -> None:
    assert teacher_temperature(0, 10, 0.04, 0.07) == 0.04
    assert teacher_temperature(5, 10, 0.04, 0.07) == pytest.approx(0.055)
    assert teacher_temperature(9, 10, 0.04, 0.07) < 0.07
    assert teacher_temperature(10, 10, 0.04, 0.07) == 0.07
    assert teacher_temperature(0, 0, 0.04, 0.07) == 0.07


def _sinkhorn_reference(scores: torch.Tensor, iters: int, eps: float) -> torch.Tensor:
    """solo-learn's SinkhornKnopp, written out with its per-iteration division by K."""
    q = [[math.exp(x / eps) for x in row] for row in scores.T.tolist()]  # K x B
    k, b = len(q), len(q[0])
    s = sum(map(sum, q))
    q = [[x / s for x in row] for row in q]
    for _ in range(iters):
        q = [[x / sum(row) / k for x in row] for row in q]
        cols = [sum(q[r][c] for r in range(k)) for c in range(b)]
        q = [[q[r][c] / cols[c] / b for c in range(b)] for r in range(k)]
    return torch.tensor([[q[r][c] * b for r in range(k)] for c in range(b)])


def test_sinkhorn_codes_match_solo_learn_algorithm() -> None:
    (scores,) = _inputs(6, 4, n=1)
    scores = torch.tanh(scores)  # cosine-like scores
    codes = sinkhorn_codes(scores, iterations=3, epsilon=0.5)
    torch.testing.assert_close(
        codes, _sinkhorn_reference(scores, 3, 0.5).float(), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(6))


def test_swav_loss_averages_swapped_cross_entropies() -> None:
    p0, p1, p2 = _inputs(4, 5, n=3)
    a0, a1 = (torch.softmax(x, dim=1) for x in _inputs(4, 5, n=2, seed=1))
    t = 0.1
    losses = []
    for ai, a in enumerate((a0, a1)):
        for vi, p in enumerate((p0, p1, p2)):
            if vi == ai:
                continue
            per = 0.0
            for b in range(4):
                row = [x / t for x in p[b].tolist()]
                m = max(row)
                lse = m + math.log(sum(math.exp(x - m) for x in row))
                per += -sum(ak * (x - lse) for ak, x in zip(a[b].tolist(), row, strict=True))
            losses.append(per / 4)
    assert swav_loss([p0, p1, p2], [a0, a1], t).item() == pytest.approx(
        sum(losses) / len(losses), rel=1e-5
    )
