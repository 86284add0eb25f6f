"""Tests for tgdmat.diffusion.torus: wrapped-normal diffusion of fractional coordinates."""
from __future__ import annotations

import math

import pytest
import torch

from tgdmat.diffusion import strided_timesteps
from tgdmat.diffusion.torus import (
    TorusVE,
    truncation_bound,
    wrap,
    wrapped_normal_log_prob,
    wrapped_normal_score,
    wrapped_normal_score_norm,
)

SIGMAS = [0.005, 0.05, 0.5]


@pytest.fixture(scope="module")
def tv() -> TorusVE:
    return TorusVE()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _points() -> torch.Tensor:
    """Many points in one period, including ones next to 0, 1/2 and 1, plus a few outside."""
    special = torch.tensor([0.0, 1e-9, 1e-6, 1e-4, 0.003, 0.4999, 0.5, 0.5001, 0.997, 1 - 1e-6,
                            1 - 1e-9, -0.3, 1.7, 2.25], dtype=torch.float64)
    return torch.cat([torch.linspace(0, 1, 997, dtype=torch.float64), special])


@pytest.mark.parametrize("sigma", SIGMAS)
def test_score_matches_finite_differences(sigma):
    x = _points()
    h = 1e-5 * sigma
    fd = (wrapped_normal_log_prob(x + h, sigma) - wrapped_normal_log_prob(x - h, sigma)) / (2 * h)
    sc = wrapped_normal_score(x, sigma)
    scale = 1 / sigma ** 2  # typical size of the score
    assert torch.allclose(sc, fd, rtol=1e-6, atol=1e-4 * scale), float((sc - fd).abs().max())
    # sign convention: the score points toward the mean 0 (mod 1)
    near = torch.tensor([0.2 * sigma, 1 - 0.2 * sigma], dtype=torch.float64)
    s = wrapped_normal_score(near, sigma)
    assert s[0] < 0 < s[1]


@pytest.mark.parametrize("sigma", [0.005, 0.05])
def test_small_sigma_score_is_gaussian(sigma):
    x = torch.linspace(-3 * sigma, 3 * sigma, 41, dtype=torch.float64)
    ref = -x / sigma ** 2
    assert torch.allclose(wrapped_normal_score(x, sigma), ref, rtol=1e-12, atol=1e-9)
    assert torch.allclose(wrapped_normal_score(x + 1, sigma), ref, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_periodicity(sigma):
    x = torch.rand(500, generator=_gen(0), dtype=torch.float64)
    for k in (-2.0, 1.0, 3.0):
        assert torch.allclose(wrapped_normal_log_prob(x + k, sigma), wrapped_normal_log_prob(x, sigma),
                              atol=1e-9)
        assert torch.allclose(wrapped_normal_score(x + k, sigma), wrapped_normal_score(x, sigma),
                              rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_density_integrates_to_one(sigma):
    x = torch.linspace(0, 1, 400_001, dtype=torch.float64)
    p = torch.exp(wrapped_normal_log_prob(x, sigma))
    assert abs(float(torch.trapezoid(p, x)) - 1) < 1e-8


def test_truncation_bound_and_default_images():
    assert truncation_bound(0.5, 3) < 1e-10
    assert truncation_bound(0.5, 2) > 1e-6  # n = 2 would not be negligible
    x = torch.linspace(-0.5, 0.5, 2001, dtype=torch.float64)
    for sigma in SIGMAS + [0.8]:
        ref_lp = wrapped_normal_log_prob(x, sigma, n_images=12)
        ref_sc = wrapped_normal_score(x, sigma, n_images=12)
        for n in (2, 3):
            d = truncation_bound(sigma, n)
            assert float((wrapped_normal_log_prob(x, sigma, n) - ref_lp).abs().max()) <= 1.01 * d + 1e-14
            assert float((wrapped_normal_score(x, sigma, n) - ref_sc).abs().max()) <= \
                2 * d * (n + 1.5) / sigma ** 2 + 1e-9


def test_score_matches_gaussian_mixture_autograd():
    """Against torch.distributions: log of an explicit mixture of shifted normals."""
    sigma = torch.tensor(0.3, dtype=torch.float64)
    x = torch.rand(200, generator=_gen(1), dtype=torch.float64).requires_grad_(True)
    k = torch.arange(-10, 11, dtype=torch.float64)
    comp = torch.distributions.Normal(-k, sigma)  # N(x + k; 0, σ²) = N(x; −k, σ²)
    logp = torch.logsumexp(comp.log_prob(x[:, None]), dim=-1)
    (grad,) = torch.autograd.grad(logp.sum(), x)
    assert torch.allclose(wrapped_normal_score(x.detach(), sigma), grad, atol=1e-9)
    assert torch.allclose(wrapped_normal_log_prob(x.detach(), sigma), logp.detach(), atol=1e-9)


def test_sigma_ladder_and_buffers(tv):
    s = tv.sigmas
    assert s.shape == (1001,) and s[0] == 0
    assert math.isclose(float(s[1]), 0.005, rel_tol=1e-6) and math.isclose(float(s[-1]), 0.5, rel_tol=1e-6)
    ratios = s[2:] / s[1:-1]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios), rtol=1e-5), "σ_t must be geometric"
    assert len(list(tv.parameters())) == 0 and tv.state_dict() == {}
    assert tv.score_norm.shape == (1001,) and bool((tv.score_norm[1:] > 0).all())
    assert bool((tv.score_norm[2:] < tv.score_norm[1:-1]).all())


def test_score_norm_limits_and_monte_carlo(tv):
    # small σ: Fisher information of a Gaussian, 1/σ²
    assert math.isclose(float(tv.score_norm[1]), 1 / 0.005 ** 2, rel_tol=1e-5)
    # Monte Carlo as in DiffCSP's sigma_norm (fixed generator), at a few levels
    n = 200_000
    for t in (1, 300, 600, 800, 1000):
        sigma = tv.sigmas[t].double()
        x = sigma * torch.randn(n, generator=_gen(t), dtype=torch.float64)
        mc = float((wrapped_normal_score(x, sigma) ** 2).mean())
        assert math.isclose(float(tv.score_norm[t]), mc, rel_tol=0.02), (t, float(tv.score_norm[t]), mc)
    # large σ: first Fourier mode, WN ≈ 1 + 2ρ cos 2πx with ρ = exp(−2π²σ²) ⇒ E[s²] ≈ 8π²ρ²
    rho = math.exp(-2 * math.pi ** 2 * 0.25)
    assert math.isclose(float(tv.score_norm[-1]), 8 * math.pi ** 2 * rho ** 2, rel_tol=0.01)
    # quadrature converged
    sig = tv.sigmas[1:].double()[::50]
    a = wrapped_normal_score_norm(sig, num_nodes=128)
    b = wrapped_normal_score_norm(sig, num_nodes=2048)
    assert torch.allclose(a, b, rtol=1e-10)


def test_q_sample_wraps_and_targets(tv):
    n = 1000
    f0 = torch.rand(n, 3, generator=_gen(2))
    eps = torch.randn(n, 3, generator=_gen(3))
    # smallest σ: target ≈ −ε (the normalised −(x − x0)/σ²)
    ft, target = tv.q_sample(f0, 1, eps)
    assert bool(((ft >= 0) & (ft < 1)).all())
    d = (ft - f0) - torch.round(ft - f0)
    assert torch.allclose(d, 0.005 * eps, atol=1e-6)
    assert torch.allclose(target, -eps, atol=1e-4)
    # per-atom times and the general formula
    t = torch.randint(1, 1001, (n,), generator=_gen(4))
    ft, target = tv.q_sample(f0, t, eps)
    sig = tv.sigmas[t][:, None]
    ref = wrapped_normal_score(sig * eps, sig) / tv.score_norm[t][:, None].sqrt()
    assert torch.allclose(target, ref, atol=1e-5)
    # the normalised target has unit second moment on average over ε (that is what λ_t is for)
    big = torch.randn(200_000, 1, generator=_gen(5))
    for tt in (1, 500, 1000):
        _, tg = tv.q_sample(torch.zeros_like(big), tt, big)
        assert math.isclose(float((tg ** 2).mean()), 1.0, rel_tol=0.02), tt
    assert tv.loss(target, target) == 0
    assert math.isclose(float(tv.loss(target + 1, target)), 1.0, rel_tol=1e-6)


def _exact_pred(tv: TorusVE, f: torch.Tensor, t: int, mu: torch.Tensor, tau: float) -> torch.Tensor:
    """Normalised score of p_t = WN(μ, sqrt(τ² + σ_t²)), the noised version of data WN(μ, τ)."""
    sig = math.sqrt(tau ** 2 + float(tv.sigmas[t]) ** 2)
    return wrapped_normal_score(f - mu, sig) / tv.score_norm[t].double().sqrt()


@pytest.mark.parametrize("steps,step_lr", [(100, 0.0), (100, 1e-5), (25, 0.0)])
def test_sampling_with_exact_score_reaches_target(tv, steps, step_lr):
    """Data WN(μ, τ): the reverse chain from U[0,1)³ must end with mean resultant
    E[cos 2π(F − μ)] = exp(−2π²τ²) and E[sin 2π(F − μ)] = 0."""
    mu = torch.tensor([0.1, 0.5, 0.97], dtype=torch.float64)
    tau, n = 0.05, 2000
    g = _gen(steps)
    f = tv.prior(n, generator=g).double()
    assert float(torch.cos(2 * math.pi * (f - mu)).mean()) < 0.05  # starts uniform
    grid = strided_timesteps(tv.num_steps, steps)
    for t, s in zip(grid[:-1], grid[1:]):
        if step_lr > 0:
            z = torch.randn(n, 3, generator=g, dtype=torch.float64)
            f = tv.corrector_step(f, _exact_pred(tv, f, t, mu, tau), t, step_lr, z)
        z = torch.randn(n, 3, generator=g, dtype=torch.float64) if s > 0 else None
        f = tv.reverse_step(f, _exact_pred(tv, f, t, mu, tau), t, s, z)
    assert bool(((f >= 0) & (f < 1)).all())
    R = torch.cos(2 * math.pi * (f - mu)).mean(0)
    S = torch.sin(2 * math.pi * (f - mu)).mean(0)
    target = math.exp(-2 * math.pi ** 2 * tau ** 2)  # 0.952
    assert torch.allclose(R, torch.full_like(R, target), atol=0.012), R
    assert bool((S.abs() < 0.025).all()), S


def test_corrector_samples_the_current_level(tv):
    """Langevin with the exact score of WN(μ, σ_t) at a fixed level converges to WN(μ, σ_t);
    ε = step_lr (σ_t/σ_1)² = 0.02 σ_t² with step_lr = 0.02 σ_1²."""
    t = 600
    sigma = float(tv.sigmas[t])
    mu = torch.tensor([0.3, 0.0, 0.8], dtype=torch.float64)
    n = 2000
    g = _gen(7)
    f = tv.prior(n, generator=g).double()
    lam = tv.score_norm[t].double().sqrt()
    step_lr = 0.02 * tv.sigma_begin ** 2
    for _ in range(300):
        pred = wrapped_normal_score(f - mu, sigma) / lam
        f = tv.corrector_step(f, pred, t, step_lr, torch.randn(n, 3, generator=g, dtype=torch.float64))
    R = torch.cos(2 * math.pi * (f - mu)).mean(0)
    target = math.exp(-2 * math.pi ** 2 * sigma ** 2)
    assert torch.allclose(R, torch.full_like(R, target), atol=0.025), (R, target)


def test_predictor_step_formula(tv):
    f = torch.rand(10, 3, generator=_gen(8), dtype=torch.float64)
    pred = torch.randn(10, 3, generator=_gen(9), dtype=torch.float64)
    z = torch.randn(10, 3, generator=_gen(10), dtype=torch.float64)
    for t, s in [(1000, 999), (700, 300), (1, 0), (50, 0)]:
        st, ss = tv.sigmas[t].double(), tv.sigmas[s].double()
        score = pred * tv.score_norm[t].double().sqrt()
        ref = f + (st ** 2 - ss ** 2) * score + (ss ** 2 * (st ** 2 - ss ** 2) / st ** 2).sqrt() * z
        got = tv.reverse_step(f, pred, t, s, z if s > 0 else None)
        assert torch.allclose(got, wrap(ref), atol=1e-6), (t, s)
    # per-atom times
    t = torch.full((10,), 400)
    s = torch.arange(10) * 30
    got = tv.reverse_step(f, pred, t, s, z)
    for i in range(10):
        assert torch.allclose(got[i], tv.reverse_step(f[i:i + 1], pred[i:i + 1], 400, int(s[i]),
                                                        z[i:i + 1])[0], atol=1e-9)


def test_wrap():
    x = torch.tensor([-1e-9, -0.25, 0.0, 0.999, 1.0, 3.5, -2.0])
    w = wrap(x)
    assert bool(((w >= 0) & (w < 1)).all())
    assert torch.allclose(w, torch.tensor([0.0, 0.75, 0.0, 0.999, 0.0, 0.5, 0.0]), atol=1e-6)


def test_bad_inputs_raise(tv):
    f = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"\[1, 1000\]"):
        tv.q_sample(f, 0, f)
    with pytest.raises(ValueError, match="s < t"):
        tv.reverse_step(f, f, 5, 5, f)
    with pytest.raises(ValueError, match="noise"):
        tv.reverse_step(f, f, 5, 4)
    with pytest.raises(ValueError, match="rows"):
        tv.q_sample(f, torch.ones(3, dtype=torch.long), f)
    with pytest.raises(ValueError, match="sigma"):
        wrapped_normal_score(f, 0.0)
    with pytest.raises(ValueError):
        TorusVE(10, sigma_begin=0.5, sigma_end=0.1)
