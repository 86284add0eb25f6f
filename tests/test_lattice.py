"""Tests for tgdmat.diffusion.lattice: the DDPM on lattice matrices."""
from __future__ import annotations

import math

import pytest
import torch

from tgdmat.diffusion import strided_timesteps
from tgdmat.diffusion.lattice import LatticeDDPM, cosine_alpha_bars


@pytest.fixture(scope="module")
def ddpm() -> LatticeDDPM:
    return LatticeDDPM(num_steps=1000, schedule="cosine")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_alpha_bar_monotone_in_unit_interval(schedule):
    m = LatticeDDPM(1000, schedule=schedule)
    ab = m.alpha_bars
    assert ab.shape == (1001,)
    assert ab[0] == 1.0 and m.betas[0] == 0.0
    assert bool((ab[1:] < ab[:-1]).all()), "ᾱ_t must decrease strictly"
    assert bool((ab > 0).all()) and bool((ab <= 1).all())
    assert torch.allclose(m.alphas, 1 - m.betas, atol=1e-6)
    assert torch.allclose(torch.cumprod(m.alphas.double(), 0).float(), ab, rtol=1e-4, atol=1e-12)
    assert ab[-1] < 1e-4, "the prior must be (almost) N(0, I)"
    if schedule == "cosine":
        b = m.betas[1:]
        assert float(b.min()) >= 1e-4 - 1e-9 and float(b.max()) <= 0.9999 + 1e-6
        # away from the clipped ends ᾱ_t follows cos²((t/T + s)/(1 + s) π/2) / cos²(s/(1 + s) π/2)
        t = 400
        f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        assert abs(float(ab[t]) - f(t) / f(0)) < 2e-3


def test_buffers_are_non_persistent_and_movable(ddpm):
    assert len(list(ddpm.parameters())) == 0
    assert ddpm.state_dict() == {}
    m = LatticeDDPM(10).to(torch.float64)
    assert m.alpha_bars.dtype == torch.float64


def test_q_sample_statistics(ddpm):
    L0 = torch.tensor([[4.0, 0.0, 0.0], [1.0, 5.0, 0.0], [0.5, -0.3, 6.0]])
    n = 20000
    for t in (1, 100, 500, 999):
        eps = torch.randn(n, 3, 3, generator=_gen(t))
        Lt = ddpm.q_sample(L0.expand(n, 3, 3), t, eps)
        ab = float(ddpm.alpha_bars[t])
        sd = math.sqrt(1 - ab)
        assert torch.allclose(Lt.mean(0), math.sqrt(ab) * L0, atol=5 * sd / math.sqrt(n))
        assert torch.allclose(Lt.std(0), torch.full((3, 3), sd), rtol=0.04)
    # per-crystal times
    t = torch.tensor([1, 500, 1000])
    eps = torch.randn(3, 3, 3, generator=_gen(1))
    L = L0.expand(3, 3, 3)
    got = ddpm.q_sample(L, t, eps)
    for i in range(3):
        ab = ddpm.alpha_bars[t[i]]
        assert torch.allclose(got[i], ab.sqrt() * L0 + (1 - ab).sqrt() * eps[i], atol=1e-6)
    assert torch.equal(ddpm.q_sample(L, 0, eps), L)


def test_predict_x0_inverts_q_sample(ddpm):
    L0 = torch.randn(8, 3, 3, generator=_gen(2)) * 3
    eps = torch.randn(8, 3, 3, generator=_gen(3))
    t = torch.tensor([1, 5, 50, 200, 400, 600, 800, 900])
    assert torch.allclose(ddpm.predict_x0(ddpm.q_sample(L0, t, eps), eps, t), L0, atol=1e-3)


@pytest.mark.parametrize("t", [1, 2, 10, 500, 900, 1000])
def test_p_step_with_true_eps_recovers_L0_at_s0(ddpm, t):
    L0 = torch.randn(4, 3, 3, generator=_gen(t), dtype=torch.float64) * 4
    eps = torch.randn(4, 3, 3, generator=_gen(t + 1), dtype=torch.float64)
    Lt = ddpm.q_sample(L0, t, eps)
    out = ddpm.reverse_step(Lt, eps, t, 0)  # no noise needed at s = 0
    assert torch.allclose(out, L0, atol=1e-6 * (1 + 1 / float(ddpm.alpha_bars[t]) ** 0.5))


def test_p_step_one_step_equals_ddpm_posterior(ddpm):
    """s = t − 1: DiffCSP's c0 (L_t − c1 ε̂) + σ_t z with σ_t² = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)."""
    g = _gen(5)
    Lt, eps_hat, z = (torch.randn(6, 3, 3, generator=g, dtype=torch.float64) for _ in range(3))
    for t in (1, 2, 37, 500, 1000):
        beta = 1 - ddpm.alphas[t].double()   # (betas near 1 lose digits in float32; alphas do not)
        ab_t, ab_s = ddpm.alpha_bars[t].double(), ddpm.alpha_bars[t - 1].double()
        sigma = (beta * (1 - ab_s) / (1 - ab_t)).sqrt()
        ref = (Lt - beta / (1 - ab_t).sqrt() * eps_hat) / (1 - beta).sqrt() + sigma * z
        got = ddpm.reverse_step(Lt, eps_hat, t, t - 1, noise=z)
        assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5), t


def test_p_step_jump_equals_gaussian_posterior(ddpm):
    """For any s < t the step is the exact posterior q(L_s | L_t, L̂_0) with the jump ᾱ_t/ᾱ_s."""
    g = _gen(6)
    L0, eps, z = (torch.randn(5, 3, 3, generator=g, dtype=torch.float64) for _ in range(3))
    for t, s in [(1000, 980), (700, 300), (50, 1), (400, 0)]:
        ab_t, ab_s = ddpm.alpha_bars[t].double(), ddpm.alpha_bars[s].double()
        Lt = ddpm.q_sample(L0, t, eps)
        a = ab_t / ab_s
        mean = (ab_s.sqrt() * (1 - a) / (1 - ab_t)) * L0 + (a.sqrt() * (1 - ab_s) / (1 - ab_t)) * Lt
        var = (1 - ab_s) / (1 - ab_t) * (1 - a)
        got = ddpm.reverse_step(Lt, eps, t, s, noise=z)
        assert torch.allclose(got, mean + var.sqrt() * z, rtol=1e-5, atol=1e-5), (t, s)


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_jumps_preserve_forward_marginals(ddpm, eta):
    """Point-mass data L_0, true ε: L_t ~ q(L_t|L_0) then a jump gives L_s ~ q(L_s|L_0)."""
    n = 20000
    L0 = torch.tensor([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0], [1.0, 1.0, 5.0]])
    for k, (t, s) in enumerate([(1000, 750), (600, 200), (300, 299), (80, 10)]):
        eps = torch.randn(n, 3, 3, generator=_gen(10 + k))
        z = torch.randn(n, 3, 3, generator=_gen(20 + k))
        Lt = ddpm.q_sample(L0.expand(n, 3, 3), t, eps)
        Ls = ddpm.reverse_step(Lt, eps, t, s, noise=z, eta=eta)
        ab = float(ddpm.alpha_bars[s])
        sd = math.sqrt(1 - ab)
        assert torch.allclose(Ls.mean(0), math.sqrt(ab) * L0, atol=5 * sd / math.sqrt(n) + 1e-4)
        assert torch.allclose(Ls.std(0), torch.full((3, 3), sd), rtol=0.04), (t, s)


def _gaussian_chain(ddpm, steps, eta, mu, tau, n, seed):
    g = _gen(seed)
    L = ddpm.prior(n, generator=g).double()
    grid = strided_timesteps(ddpm.num_steps, steps)
    for t, s in zip(grid[:-1], grid[1:]):
        ab = ddpm.alpha_bars[t].double()
        eps_hat = (1 - ab).sqrt() * (L - ab.sqrt() * mu) / (ab * tau ** 2 + 1 - ab)
        noise = torch.randn(n, 3, 3, generator=g, dtype=torch.float64) if s > 0 else None
        L = ddpm.reverse_step(L, eps_hat, t, s, noise=noise, eta=eta)
    return L


@pytest.mark.parametrize("eta,fine", [(1.0, 1000), (0.0, 250)])
def test_strided_chains_sample_gaussian_data(eta, fine):
    """Data L_0 ~ N(μ, τ²) elementwise has the exact ε̂(L_t) = sqrt(1−ᾱ)(L_t − sqrt(ᾱ) μ)/(ᾱτ² + 1 − ᾱ).
    A fine chain reproduces N(μ, τ²); strided chains keep the mean and, as expected for a fixed
    (posterior) variance, shrink the spread a little more the coarser the stride."""
    ddpm = LatticeDDPM(1000)
    mu = torch.tensor([[4.0, 0.0, 0.0], [-1.0, 5.0, 0.0], [0.0, 2.0, 6.0]], dtype=torch.float64)
    tau, n = 0.5, 2000
    stds = {}
    for steps in (fine, 100, 25):
        L = _gaussian_chain(ddpm, steps, eta, mu, tau, n, seed=steps)
        assert torch.allclose(L.mean(0), mu, atol=0.06), steps
        stds[steps] = float(L.std(0).mean())
    assert abs(stds[fine] - tau) < 0.02, stds
    assert stds[25] < stds[100] < stds[fine] + 0.01, stds
    assert stds[25] > 0.85 * tau, stds


def test_strided_timesteps():
    assert strided_timesteps(1000, 1000) == list(range(1000, -1, -1))
    assert strided_timesteps(1000, 4) == [1000, 750, 500, 250, 0]
    g = strided_timesteps(1000, 50)
    assert len(g) == 51 and g[0] == 1000 and g[-1] == 0 and all(a > b for a, b in zip(g, g[1:]))
    with pytest.raises(ValueError):
        strided_timesteps(10, 11)


@pytest.mark.parametrize("k", [1, 2, 7, 50, 100, 400, 999, 1000])
def test_quadratic_timesteps_are_k_strict_jumps_dense_near_zero(k):
    g = strided_timesteps(1000, k, "quadratic")
    assert len(g) == k + 1 and g[0] == 1000 and g[-1] == 0
    assert all(a > b for a, b in zip(g, g[1:])), g
    u = strided_timesteps(1000, k)
    if 1 < k <= 500:
        # the last jump (near t = 0) is shorter than the uniform grid's, the first one longer
        assert g[-2] - g[-1] < u[-2] - u[-1] and g[0] - g[1] > u[0] - u[1]
    # past the single steps at the start (i < k²/T) the points sit at round(T (i/k)²)
    i = max(1, k // 2)
    if k <= 500:
        assert g[k - i] == round(1000 * (i / k) ** 2)
    assert strided_timesteps(1000, 1000, "quadratic") == list(range(1000, -1, -1))


def test_time_spacing_is_checked_and_old_configs_default_to_uniform():
    from tgdmat.config import Config, ConfigError, SampleConfig

    with pytest.raises(ValueError, match="time spacing"):
        strided_timesteps(1000, 10, "cosine")
    with pytest.raises(ConfigError, match="time_spacing"):
        SampleConfig(time_spacing="log")
    old = Config().to_json().replace(', "time_spacing": "uniform"', "")
    assert "time_spacing" not in old
    assert Config.from_json(old).sample.time_spacing == "uniform"
    # the CLI spells the choices out (it parses without importing torch): they must stay the same
    import argparse

    from tgdmat.cli.main import build_parser
    from tgdmat.diffusion.time import TIME_SPACINGS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    choices = {tuple(act.choices) for q in sub.choices.values() for act in q._actions if act.dest == "time_spacing"}
    assert choices == {TIME_SPACINGS}


def test_bad_inputs_raise(ddpm):
    L = torch.zeros(2, 3, 3)
    with pytest.raises(ValueError, match="s < t"):
        ddpm.reverse_step(L, L, 5, 5, noise=L)
    with pytest.raises(ValueError, match="noise"):
        ddpm.reverse_step(L, L, 5, 4)
    with pytest.raises(ValueError, match=r"\[1, 1000\]"):
        ddpm.reverse_step(L, L, 0, 0)
    with pytest.raises(ValueError, match="integer"):
        ddpm.q_sample(L, 0.5, L)
    with pytest.raises(ValueError, match="shape"):
        ddpm.q_sample(L, 3, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="schedule"):
        LatticeDDPM(10, schedule="sigmoid")
    # η = 0 (DDIM) needs no noise
    assert ddpm.reverse_step(L, L, 5, 4, eta=0.0).shape == (2, 3, 3)


def test_cosine_alpha_bars_end_values():
    ab = cosine_alpha_bars(1000)
    assert ab.dtype == torch.float64 and ab[0] == 1.0 and 0 < float(ab[-1]) < 1e-8
