"""Math tests of the CSPNet-style denoiser: symmetries, batching, conditioning, gradients."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from tgdmat.denoiser import (
    CSPDenoiser,
    DenoiserConfig,
    fully_connected_edges,
    lattice_invariants,
)

SIZES = (1, 5, 3, 8)          # atoms per crystal in the test batch (1-atom cell included)
K = 11                        # small type vocabulary
COND_DIM = 7
TOL = dict(rtol=1e-9, atol=1e-10)


def small_cfg(**kw) -> DenoiserConfig:
    base = dict(hidden_dim=24, num_layers=2, num_freqs=5, time_dim=16, cond_dim=COND_DIM,
                cond_proj_dim=12, num_atom_types=K)
    base.update(kw)
    return DenoiserConfig(**base)


def make_model(seed: int = 0, **kw) -> CSPDenoiser:
    torch.manual_seed(seed)
    return CSPDenoiser(small_cfg(**kw)).double().eval()


def make_batch(sizes=SIZES, seed: int = 1, k: int = K):
    g = torch.Generator().manual_seed(seed)
    n_graphs, n_atoms = len(sizes), sum(sizes)
    batch = torch.repeat_interleave(torch.arange(n_graphs), torch.tensor(sizes))
    types = torch.randint(0, k, (n_atoms,), generator=g)
    frac = torch.rand(n_atoms, 3, generator=g, dtype=torch.float64)
    # plausible cells: a few Å, not orthogonal
    lattice = 4.0 * torch.eye(3, dtype=torch.float64) + torch.randn(n_graphs, 3, 3, generator=g,
                                                                    dtype=torch.float64)
    t = torch.rand(n_graphs, generator=g, dtype=torch.float64)
    cond = torch.randn(n_graphs, COND_DIM, generator=g, dtype=torch.float64)
    return dict(atom_types=types, frac_coords=frac, lattice=lattice, batch=batch, t=t, cond=cond)


def random_orthogonal(seed: int, reflect: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if (torch.det(q) < 0) != reflect:
        q[:, 0] = -q[:, 0]
    assert torch.allclose(q @ q.T, torch.eye(3, dtype=torch.float64))
    return q


def assert_outputs_close(a, b, **tol):
    tol = tol or TOL
    torch.testing.assert_close(a.lattice_eps, b.lattice_eps, **tol)
    torch.testing.assert_close(a.frac_score, b.frac_score, **tol)
    torch.testing.assert_close(a.type_logits, b.type_logits, **tol)


MODES = [dict(cond_mode="film"), dict(cond_mode="concat"),
         dict(cond_mode="concat", lattice_features="gram", layer_norm=False)]


# ------------------------------------------------------------------------------ graph
def test_fully_connected_edges_lists_every_pair_within_each_crystal():
    batch = torch.tensor([0, 0, 1, 1, 1, 2])
    src, dst = fully_connected_edges(batch)
    assert src.numel() == 2 ** 2 + 3 ** 2 + 1
    pairs = set(zip(src.tolist(), dst.tolist()))
    expected = {(i, j) for grp in ([0, 1], [2, 3, 4], [5]) for i in grp for j in grp}
    assert pairs == expected and len(pairs) == src.numel()
    assert bool((src[1:] >= src[:-1]).all())           # sorted by source atom
    assert bool((batch[src] == batch[dst]).all())


def test_fully_connected_edges_rejects_unsorted_batch():
    with pytest.raises(ValueError, match="sorted"):
        fully_connected_edges(torch.tensor([0, 1, 0]))


def test_lattice_invariants_are_lengths_and_angle_cosines():
    lat = torch.tensor([[[3.0, 0, 0], [1.0, 2.0, 0], [0.5, 0.5, 4.0]]], dtype=torch.float64)
    feats = lattice_invariants(lat)[0]
    a, b, c = lat[0]
    cos = lambda u, v: (u @ v) / (u.norm() * v.norm())  # noqa: E731
    expected = torch.stack([a.norm().log(), b.norm().log(), c.norm().log(),
                            cos(b, c), cos(a, c), cos(a, b)])
    torch.testing.assert_close(feats, expected)
    assert lattice_invariants(lat, "gram").shape == (1, 9)


# ------------------------------------------------------------------------------ symmetries
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reflect", [False, True])
def test_rotation_and_reflection_equivariance(mode, reflect):
    model, data = make_model(**mode), make_batch()
    rot = random_orthogonal(seed=3 + reflect, reflect=reflect)
    out = model(**data)
    rotated = dict(data, lattice=data["lattice"] @ rot.T)             # x_cart → x_cart Rᵀ
    out_r = model(**rotated)
    torch.testing.assert_close(out_r.lattice_eps, out.lattice_eps @ rot.T, **TOL)
    torch.testing.assert_close(out_r.frac_score, out.frac_score, **TOL)
    torch.testing.assert_close(out_r.type_logits, out.type_logits, **TOL)
    # and the test is not vacuous: the lattice output really moved
    assert not torch.allclose(out_r.lattice_eps, out.lattice_eps, atol=1e-3)


@pytest.mark.parametrize("mode", MODES)
def test_permutation_within_crystals(mode):
    model, data = make_model(**mode), make_batch()
    g = torch.Generator().manual_seed(5)
    perm = torch.cat([torch.nonzero(data["batch"] == b).flatten()[
        torch.randperm(int((data["batch"] == b).sum()), generator=g)] for b in range(len(SIZES))])
    assert not torch.equal(perm, torch.arange(perm.numel()))
    out = model(**data)
    permuted = dict(data, atom_types=data["atom_types"][perm], frac_coords=data["frac_coords"][perm])
    out_p = model(**permuted)
    torch.testing.assert_close(out_p.frac_score, out.frac_score[perm], **TOL)
    torch.testing.assert_close(out_p.type_logits, out.type_logits[perm], **TOL)
    torch.testing.assert_close(out_p.lattice_eps, out.lattice_eps, **TOL)


@pytest.mark.parametrize("mode", MODES)
def test_periodic_translation_invariance(mode):
    model, data = make_model(**mode), make_batch()
    g = torch.Generator().manual_seed(6)
    tau = torch.rand(len(SIZES), 3, generator=g, dtype=torch.float64)   # one shift per crystal
    shifted = dict(data, frac_coords=(data["frac_coords"] + tau[data["batch"]]) % 1.0)
    # an integer shift of single atoms (another image of the same crystal) must not matter either
    jump = torch.randint(-2, 3, data["frac_coords"].shape, generator=g).double()
    out, out_s = model(**data), model(**shifted)
    out_j = model(**dict(data, frac_coords=data["frac_coords"] + jump))
    assert_outputs_close(out_s, out, rtol=1e-7, atol=1e-8)   # mod 1 rounds at ~1e-16 · 2πk
    assert_outputs_close(out_j, out, rtol=1e-7, atol=1e-8)


def test_outputs_depend_on_positions_and_lattice():
    """Guards against the symmetry tests passing because an input is ignored."""
    model, data = make_model(), make_batch()
    out = model(**data)
    moved = data["frac_coords"].clone()
    moved[1] += 0.1                       # one atom of crystal 1 moves relative to the others
    out_m = model(**dict(data, frac_coords=moved))
    assert not torch.allclose(out_m.frac_score[1:6], out.frac_score[1:6], atol=1e-6)
    stretched = data["lattice"].clone()
    stretched[2, 0] *= 1.3
    out_l = model(**dict(data, lattice=stretched))
    b2 = data["batch"] == 2
    assert not torch.allclose(out_l.frac_score[b2], out.frac_score[b2], atol=1e-6)


# ------------------------------------------------------------------------------ batching
@pytest.mark.parametrize("mode", MODES[:2])
def test_crystals_in_a_batch_do_not_interact(mode):
    model, data = make_model(**mode), make_batch()
    out = model(**data)
    for b, n in enumerate(SIZES):
        sel = data["batch"] == b
        alone = model(atom_types=data["atom_types"][sel], frac_coords=data["frac_coords"][sel],
                      lattice=data["lattice"][b:b + 1], batch=torch.zeros(n, dtype=torch.long),
                      t=data["t"][b:b + 1], cond=data["cond"][b:b + 1])
        torch.testing.assert_close(alone.lattice_eps[0], out.lattice_eps[b], **TOL)
        torch.testing.assert_close(alone.frac_score, out.frac_score[sel], **TOL)
        torch.testing.assert_close(alone.type_logits, out.type_logits[sel], **TOL)


# ------------------------------------------------------------------------------ conditioning
@pytest.mark.parametrize("cond_mode", ["film", "concat"])
def test_conditioning_changes_outputs_and_drop_equals_null(cond_mode):
    model, data = make_model(cond_mode=cond_mode), make_batch()
    out = model(**data)
    other = model(**dict(data, cond=data["cond"] + 1.0))
    for field in ("lattice_eps", "frac_score", "type_logits"):
        assert not torch.allclose(getattr(other, field), getattr(out, field), atol=1e-6), field
    later = model(**dict(data, t=data["t"] * 0.5))
    assert not torch.allclose(later.frac_score, out.frac_score, atol=1e-6)

    drop = torch.tensor([True, False, True, False])
    mixed = model(**data, drop_cond=drop)
    null = model(**dict(data, cond=None))
    atom_drop = drop[data["batch"]]
    torch.testing.assert_close(mixed.lattice_eps[drop], null.lattice_eps[drop], **TOL)
    torch.testing.assert_close(mixed.frac_score[atom_drop], null.frac_score[atom_drop], **TOL)
    torch.testing.assert_close(mixed.type_logits[atom_drop], null.type_logits[atom_drop], **TOL)
    torch.testing.assert_close(mixed.lattice_eps[~drop], out.lattice_eps[~drop], **TOL)
    torch.testing.assert_close(mixed.frac_score[~atom_drop], out.frac_score[~atom_drop], **TOL)
    # the null embedding is a real parameter: changing it changes the unconditional output
    with torch.no_grad():
        model.null_cond.add_(0.5)
    assert not torch.allclose(model(**dict(data, cond=None)).frac_score, null.frac_score, atol=1e-6)


def test_index_and_one_hot_types_agree():
    model, data = make_model(), make_batch()
    one_hot = torch.nn.functional.one_hot(data["atom_types"], K).double()
    assert_outputs_close(model(**dict(data, atom_types=one_hot)), model(**data))
    soft = torch.softmax(torch.randn(one_hot.shape, dtype=torch.float64), -1)
    assert not torch.allclose(model(**dict(data, atom_types=soft)).frac_score,
                              model(**data).frac_score, atol=1e-6)


# ------------------------------------------------------------------------------ training
@pytest.mark.parametrize("mode", MODES + [dict(predict_types=False)])
def test_gradient_reaches_every_parameter(mode):
    model = make_model(**mode).train()
    data = make_batch()
    drop = torch.tensor([True, False, False, True])       # both text and null paths are used
    out = model(**data, drop_cond=drop)
    g = torch.Generator().manual_seed(9)
    loss = (out.lattice_eps * torch.randn(out.lattice_eps.shape, generator=g, dtype=torch.float64)).sum()
    loss = loss + (out.frac_score * torch.randn(out.frac_score.shape, generator=g,
                                                dtype=torch.float64)).sum()
    if out.type_logits is not None:
        loss = loss + torch.nn.functional.cross_entropy(out.type_logits, data["atom_types"])
    else:
        assert model.type_head is None
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("sizes", [(5,) * 6, (24,) * 3], ids=["perov5-like", "carbon24-like"])
def test_shapes_for_dataset_like_batches(sizes):
    torch.manual_seed(0)
    model = CSPDenoiser(small_cfg(num_atom_types=100, cond_dim=384))        # float32, as trained
    data = make_batch(sizes, k=100)
    data = {k: (v.float() if v.is_floating_point() else v) for k, v in data.items()}
    data["cond"] = torch.randn(len(sizes), 384)
    out = model(**data)
    n = sum(sizes)
    assert out.lattice_eps.shape == (len(sizes), 3, 3)
    assert out.frac_score.shape == (n, 3)
    assert out.type_logits.shape == (n, 100)
    assert all(torch.isfinite(x).all() for x in (out.lattice_eps, out.frac_score, out.type_logits))
    csp = CSPDenoiser(dataclasses.replace(small_cfg(num_atom_types=100, cond_dim=384),
                                          predict_types=False))
    assert csp(**data).type_logits is None


def test_default_config_builds_with_reference_sizes():
    model = CSPDenoiser(DenoiserConfig())
    cfg = model.cfg
    assert (cfg.hidden_dim, cfg.num_layers, cfg.num_freqs, cfg.time_dim) == (512, 6, 128, 256)
    assert model.null_cond.shape == (384,)
    assert 10e6 < model.num_parameters() < 20e6


# ------------------------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors():
    model, data = make_model(), make_batch()
    with pytest.raises(ValueError, match="atom_types"):
        bad = data["atom_types"].clone()
        bad[0] = K
        model(**dict(data, atom_types=bad))
    with pytest.raises(ValueError, match="cond"):
        model(**dict(data, cond=data["cond"][:, :3]))
    with pytest.raises(ValueError, match="lattice"):
        model(**dict(data, lattice=data["lattice"][:, :2]))
    with pytest.raises(ValueError, match="no atoms"):
        model(**dict(data, lattice=torch.cat([data["lattice"], data["lattice"][:1]]),
                     t=torch.cat([data["t"], data["t"][:1]]), cond=None))
    with pytest.raises(ValueError, match="cond_mode"):
        DenoiserConfig(cond_mode="cross_attention")
