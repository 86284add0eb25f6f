"""Tests for tgdmat.diffusion.d3pm: discrete diffusion over atom types."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from tgdmat.diffusion.d3pm import D3PM
from tgdmat.diffusion import strided_timesteps

KINDS = ["absorbing", "uniform"]
SCHEDULES = ["cosine", "linear", "jsd"]
K, T = 5, 40


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _small(kind: str, schedule: str = "cosine", reverse: str = "marginal") -> D3PM:
    return D3PM(num_classes=K, num_steps=T, kind=kind, schedule=schedule, reverse=reverse)


def test_defaults_follow_tgdmat():
    d = D3PM()
    assert d.kind == "absorbing" and d.schedule == "cosine"
    assert d.num_classes == 100 and d.num_states == 101 and d.mask_index == 100
    assert (d.vb_weight, d.ce_weight) == (0.001, 1.0)
    assert len(list(d.parameters())) == 0 and d.state_dict() == {}
    u = D3PM(kind="uniform")
    assert u.num_states == 100 and u.mask_index is None
    # the type schedule is the lattice's cosine ᾱ_t
    from tgdmat.diffusion.lattice import LatticeDDPM
    assert torch.allclose(d.alpha_bars, LatticeDDPM(1000).alpha_bars)


@pytest.mark.parametrize("kind,schedule", list(itertools.product(KINDS, SCHEDULES)))
def test_matrices_are_stochastic_and_compose(kind, schedule):
    d = _small(kind, schedule)
    Kp = d.num_states
    prod = torch.eye(Kp, dtype=torch.float64)
    assert torch.allclose(d.cumulative(0).double(), prod)
    for t in range(1, T + 1):
        Q = d.transition(t).double()
        assert Q.shape == (Kp, Kp)
        assert bool((Q >= 0).all()) and torch.allclose(Q.sum(1), torch.ones(Kp, dtype=torch.float64), atol=1e-6)
        prod = prod @ Q
        Qbar = d.cumulative(t).double()
        assert bool((Qbar >= 0).all()) and torch.allclose(Qbar.sum(1), torch.ones(Kp, dtype=torch.float64),
                                                          atol=1e-6)
        assert torch.allclose(Qbar, prod, atol=1e-5), t
    # the chain ends at (or very near) the stationary distribution (linear needs T ≈ 1000 for that)
    if schedule != "linear":
        assert torch.allclose(d.cumulative(T)[0], d.stationary, atol=5e-4)
    # jumps Q_{s→t} = Q_{s+1} ⋯ Q_t
    for s, t in [(0, 1), (0, T), (3, 17), (T - 1, T), (10, 30)]:
        ref = torch.eye(Kp, dtype=torch.float64)
        for i in range(s + 1, t + 1):
            ref = ref @ d.transition(i).double()
        assert torch.allclose(d.jump(s, t).double(), ref, atol=1e-5), (s, t)
    if kind == "absorbing":
        m = d.mask_index
        Q = d.transition(5)
        assert Q[m, m] == 1 and bool((Q[m, :m] == 0).all())  # the mask is absorbing


def test_product_of_1000_cosine_steps():
    d = D3PM(num_classes=4, num_steps=1000, kind="uniform")
    prod = torch.eye(4, dtype=torch.float64)
    for t in range(1, 1001):
        prod = prod @ d.transition(t).double()
        if t in (1, 10, 500, 999, 1000):
            assert torch.allclose(d.cumulative(t).double(), prod, atol=2e-5), t


_PRODUCTS: dict = {}


def _product(d: D3PM, s: int, t: int) -> torch.Tensor:
    """Q_{s+1} ⋯ Q_t multiplied out in float64 (cached per process and schedule)."""
    key = (d.kind, d.schedule, d.num_classes, d.num_steps, s, t)
    if key not in _PRODUCTS:
        m = torch.eye(d.num_states, dtype=torch.float64)
        for i in range(s + 1, t + 1):
            m = m @ d.transition(i).double()
        _PRODUCTS[key] = m
    return _PRODUCTS[key]


def _brute_posterior(d: D3PM, x0: int, xt: int, t: int, s: int) -> torch.Tensor:
    """Bayes' rule with explicit matrix products:
    q(x_s|x_t,x0) = Q_{s→t}[x_s,x_t] Q̄_s[x0,x_s] / Q̄_t[x0,x_t]."""
    jump, qbar_s, qbar_t = _product(d, s, t), _product(d, 0, s), _product(d, 0, t)
    return jump[:, xt] * qbar_s[x0, :] / qbar_t[x0, xt]


@pytest.mark.parametrize("kind", KINDS)
def test_posterior_is_bayes_rule(kind):
    d = _small(kind, "jsd")
    for t, s in [(1, 0), (2, 1), (20, 19), (T, T - 1), (T, 0), (30, 7), (12, 0)]:
        for x0 in range(K):
            for xt in range(d.num_states):
                if float(d.cumulative(t)[x0, xt]) == 0:
                    continue  # x_t unreachable from x0
                ref = _brute_posterior(d, x0, xt, t, s)
                got = torch.exp(d.posterior_logits(torch.tensor([x0]), torch.tensor([xt]), t, s)[0]).double()
                assert math.isclose(float(got.sum()), 1.0, rel_tol=1e-5)
                assert bool((got >= 0).all())
                assert torch.allclose(got, ref, atol=1e-5), (t, s, x0, xt)
                if s == 0 and d.mask_index is not None:
                    assert float(got[d.mask_index]) == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_jump_posteriors_match_composition(kind):
    """q(x_s | x_t, x0) = Σ_u q(x_s | x_u, x0) q(x_u | x_t, x0) for s < u < t."""
    d = _small(kind)
    for (t, u, s) in [(30, 20, 5), (T, 25, 0), (10, 9, 8)]:
        for x0 in range(K):
            for xt in range(d.num_states):
                if float(d.cumulative(t)[x0, xt]) == 0:
                    continue
                direct = torch.exp(d.posterior_logits(torch.tensor([x0]), torch.tensor([xt]), t, s)[0]).double()
                q_u = torch.exp(d.posterior_logits(torch.tensor([x0]), torch.tensor([xt]), t, u)[0]).double()
                comp = torch.zeros_like(direct)
                for xu in range(d.num_states):
                    if q_u[xu] > 0:
                        comp += q_u[xu] * torch.exp(
                            d.posterior_logits(torch.tensor([x0]), torch.tensor([xu]), u, s)[0]).double()
                assert torch.allclose(direct, comp, atol=1e-5), (t, u, s, x0, xt)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", ["marginal", "joint"])
def test_p_logits_brute_force(kind, reverse):
    d = _small(kind, reverse=reverse)
    g = _gen(0)
    n = 6
    logits = torch.randn(n, K, generator=g, dtype=torch.float64) * 2
    p0 = torch.softmax(logits, -1)
    for t, s in [(1, 0), (15, 14), (T, 3)]:
        xt = d.q_sample(torch.randint(0, K, (n,), generator=g), t, g)
        got = torch.exp(d.p_logits(logits, xt, t, s))
        for i in range(n):
            ref = torch.zeros(d.num_states, dtype=torch.float64)
            for x0 in range(K):
                q_t = float(d.cumulative(t)[x0, xt[i]])
                if q_t == 0:
                    continue
                post = _brute_posterior(d, x0, int(xt[i]), t, s)  # q(x_s | x_t, x0)
                ref += p0[i, x0] * (post if reverse == "marginal" else post * q_t)
            ref = ref / ref.sum()
            assert torch.allclose(got[i], ref, atol=1e-5), (t, s, i)
    # with a one-hot x0 prediction the model step is the true posterior
    x0 = torch.randint(0, K, (n,), generator=g)
    xt = d.q_sample(x0, 20, g)
    sharp = torch.nn.functional.one_hot(x0, K).double() * 60.0
    assert torch.allclose(torch.exp(d.p_logits(sharp, xt, 20, 10)),
                          torch.exp(d.posterior_logits(x0, xt, 20, 10)).double(), atol=1e-6)


def test_absorbing_marginal_equals_joint():
    a, b = _small("absorbing", reverse="marginal"), _small("absorbing", reverse="joint")
    g = _gen(1)
    logits = torch.randn(50, K, generator=g)
    t = torch.randint(1, T + 1, (50,), generator=g)
    xt = a.q_sample(torch.randint(0, K, (50,), generator=g), t, g)
    s = (t - 1 - torch.randint(0, 5, (50,), generator=g)).clamp_min(0)
    assert torch.allclose(torch.exp(a.p_logits(logits, xt, t, s)), torch.exp(b.p_logits(logits, xt, t, s)),
                          atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_q_sample_frequencies_match_q_probs(kind):
    d = _small(kind)
    n = 40_000
    for x0c, t in [(2, 5), (0, 20), (4, 35)]:
        x0 = torch.full((n,), x0c)
        xt = d.q_sample(x0, t, _gen(t))
        freq = torch.bincount(xt, minlength=d.num_states).double() / n
        p = d.q_probs(x0[:1], t)[0].double()
        assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-6)
        assert bool((freq - p).abs().le(4 * (p * (1 - p) / n).sqrt() + 1e-4).all()), (freq, p)
    # determinism: same generator seed, same draws
    x0 = torch.randint(0, K, (100,), generator=_gen(3))
    assert torch.equal(d.q_sample(x0, 7, _gen(4)), d.q_sample(x0, 7, _gen(4)))
    u = torch.rand(100, generator=_gen(5))
    assert torch.equal(d.q_sample(x0, 7, uniform=u), d.q_sample(x0, 7, uniform=u.clone()))
    assert torch.equal(d.q_sample(x0, 0, uniform=u), x0)  # t = 0 is the clean data


@pytest.mark.parametrize("kind", KINDS)
def test_loss_nonnegative_and_zero_for_perfect_prediction(kind):
    d = _small(kind)
    g = _gen(5)
    n = 64
    x0 = torch.randint(0, K, (n,), generator=g)
    for t in (1, 2, 3, 20, T):
        xt = d.q_sample(x0, t, g)
        logits = torch.randn(n, K, generator=g, requires_grad=True)
        out = d.loss(logits, x0, xt, t)
        assert set(out) == {"loss", "vb", "ce"}
        vb, ce, total = (float(out[k].detach()) for k in ("vb", "ce", "loss"))
        assert vb >= -1e-6 and ce >= 0 and total >= 0
        assert math.isclose(total, 0.001 * vb + ce, rel_tol=1e-6)
        out["loss"].backward()
        assert torch.isfinite(logits.grad).all()
        # VB equals the KL computed by hand
        log_q = d.posterior_logits(x0, xt, t, t - 1)
        log_p = d.p_logits(logits.detach(), xt, t, t - 1)
        q = log_q.exp()
        kl = torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q)).sum(-1).mean()
        assert math.isclose(vb, float(kl), rel_tol=1e-5, abs_tol=1e-7)
    for t in (1, 2, 3, 5):
        xt = d.q_sample(x0, t, g)
        perfect = torch.nn.functional.one_hot(x0, K).float() * 40.0
        out = d.loss(perfect, x0, xt, t)
        assert float(out["vb"]) < 1e-5 and float(out["ce"]) < 1e-5, (t, out)
    # at t = 1 the VB term is −log p(x0 | x1)
    xt = d.q_sample(x0, 1, g)
    logits = torch.randn(n, K, generator=g)
    vb = d.loss(logits, x0, xt, 1)["vb"]
    nll = -d.p_logits(logits, xt, 1, 0).gather(1, x0[:, None]).mean()
    assert math.isclose(float(vb), float(nll), rel_tol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_p_sample_at_zero_never_masks(kind):
    d = _small(kind)
    g = _gen(6)
    n = 500
    logits = torch.randn(n, K, generator=g) * 3
    for t in (1, 5, T):
        xt = d.q_sample(torch.randint(0, K, (n,), generator=g), t, g)
        for final in ("argmax", "sample"):
            x0 = d.reverse_step(xt, logits, t, 0, generator=g, final=final)
            assert x0.dtype == torch.long and bool(((x0 >= 0) & (x0 < K)).all())
        if kind == "absorbing":
            x0 = d.reverse_step(xt, logits, t, 0, generator=g)
            keep = xt != d.mask_index
            assert torch.equal(x0[keep], xt[keep])  # unmasked atoms keep their type
            assert torch.equal(x0[~keep], logits.argmax(-1)[~keep])
    prior = d.prior(n, generator=g)
    x = d.reverse_step(prior, logits, T, 0, generator=g)
    assert bool((x < K).all())
    if kind == "absorbing":
        assert bool((prior == d.mask_index).all())
    else:
        assert bool(((prior >= 0) & (prior < K)).all()) and len(prior.unique()) == K


@pytest.mark.parametrize("kind", KINDS)
def test_strided_reverse_chain_with_exact_posterior_recovers_data(kind):
    """Data x0 ~ d. The CE-optimal network p̃(x0|x_t) ∝ d(x0) q(x_t|x0) makes every (strided)
    reverse step exact, so the chain must end with frequencies ≈ d."""
    model = D3PM(num_classes=4, num_steps=100, kind=kind)
    data = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    n = 8000
    g = _gen(7)
    for steps in (100, 10, 1):
        x = model.prior(n, generator=g)
        grid = strided_timesteps(100, steps)
        for t, s in zip(grid[:-1], grid[1:]):
            qbar = model.cumulative(t).double()          # [K', K']
            logits = torch.log(data)[None, :] + torch.log(qbar[:4, x].T)
            x = model.reverse_step(x, logits, t, s, generator=g, final="sample")
        freq = torch.bincount(x, minlength=4).double() / n
        assert freq.numel() == 4 and torch.allclose(freq, data, atol=0.02), (steps, freq)


def test_categorical_inverse_cdf_edges():
    from tgdmat.diffusion.d3pm import _categorical
    p = torch.tensor([[0.0, 0.2, 0.0, 0.8, 0.0]]).expand(5, 5)
    u = torch.tensor([0.0, 0.19999, 0.2, 0.9999999, 1.0])  # u = 1 exceeds the contract on purpose
    assert _categorical(p, uniform=u).tolist() == [1, 1, 3, 3, 3]
    freq = torch.bincount(_categorical(p[:1].expand(20000, 5), _gen(9)), minlength=5).double() / 20000
    assert freq[0] == freq[2] == freq[4] == 0 and abs(float(freq[1]) - 0.2) < 0.015


def test_bad_inputs_raise():
    d = _small("absorbing")
    x = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="x0_logits"):
        d.p_logits(torch.zeros(3, K + 1), x, 2, 1)
    with pytest.raises(ValueError, match="s < t"):
        d.posterior_logits(x, x, 2, 2)
    with pytest.raises(ValueError, match="x_t"):
        d.posterior_logits(x, torch.full((3,), K + 1), 2, 1)
    with pytest.raises(ValueError, match="x0"):
        d.q_probs(torch.full((3,), K), 2)  # the mask is not a clean type
    with pytest.raises(ValueError, match="kind"):
        D3PM(kind="gaussian")
    with pytest.raises(ValueError, match="final"):
        d.reverse_step(x, torch.zeros(3, K), 2, 1, final="mode")
