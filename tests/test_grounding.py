"""Per-atom grounding of long prompts (issue 22): site vectors, sentence memory, the grounded denoiser."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import HashEncoder

from tgdmat.conditioning import GroundingTable, SiteEncoder, build_grounding, sentence_embeddings_for
from tgdmat.config import ConfigError, ModelConfig
from tgdmat.denoiser import Condition, CSPDenoiser, DenoiserConfig
from tgdmat.text.site_vectors import (
    MASK_SLICE,
    SHAPES,
    SITE_NUMBERS,
    SITE_VECTOR_DIM,
    atom_site_vectors,
    element_site_vectors,
)
from tgdmat.text.sites import split_description

SRTIO3 = (
    "SrTiO3 is (Cubic) Perovskite structured and crystallizes in the cubic Pm-3m space group. "
    "Sr(1) is bonded to twelve equivalent O(1) atoms to form SrO12 cuboctahedra that share corners with "
    "twelve equivalent Sr(1)O12 cuboctahedra, faces with six equivalent Sr(1)O12 cuboctahedra, and faces "
    "with eight equivalent Ti(1)O6 octahedra. All Sr(1)-O(1) bond lengths are 2.76 Å. "
    "Ti(1) is bonded to six equivalent O(1) atoms to form TiO6 octahedra that share corners with six "
    "equivalent Ti(1)O6 octahedra and faces with eight equivalent Sr(1)O12 cuboctahedra. "
    "The corner-sharing octahedra are not tilted. All Ti(1)-O(1) bond lengths are 1.95 Å. "
    "O(1) is bonded in a distorted linear geometry to four equivalent Sr(1) and two equivalent Ti(1) atoms."
)
CN = {name: i for i, (name, _) in enumerate(SITE_NUMBERS)}


def _number(v, name):
    return v[CN[name]] * dict(SITE_NUMBERS)[name]


def test_each_atom_gets_the_facts_of_its_own_element():
    vec = element_site_vectors(SRTIO3, ["Sr", "Ti", "O", "Ba"])
    assert _number(vec["Sr"], "coordination_mean") == pytest.approx(12)
    assert _number(vec["Ti"], "coordination_mean") == pytest.approx(6)
    assert _number(vec["O"], "coordination_mean") == pytest.approx(6)
    assert _number(vec["Ti"], "bond_min") == pytest.approx(1.95)
    assert _number(vec["Sr"], "bond_max") == pytest.approx(2.76)
    # O gets the bonds stated under Sr and Ti (implied), both lengths
    assert _number(vec["O"], "bond_min") == pytest.approx(1.95) and _number(vec["O"], "bond_max") == pytest.approx(2.76)
    assert _number(vec["Ti"], "tilt_max") == pytest.approx(0.0) and vec["Ti"][MASK_SLICE][CN["tilt_max"]] == 1
    assert vec["Sr"][MASK_SLICE][CN["tilt_max"]] == 0
    # geometry words go to their own element
    off = 2 * len(SITE_NUMBERS) + 1
    assert vec["Ti"][off + SHAPES.index("octahedral")] == 1 and vec["Sr"][off + SHAPES.index("octahedral")] == 0
    assert vec["Sr"][off + SHAPES.index("cuboctahedral")] == 1
    # an element the text never names gets zeros
    assert not vec["Ba"].any() and vec["Sr"].shape == (SITE_VECTOR_DIM,)


def test_permuting_atoms_permutes_their_vectors():
    symbols = ["Sr", "Ti", "O", "O", "O"]
    perm = [3, 0, 4, 1, 2]
    a = atom_site_vectors(SRTIO3, symbols)
    b = atom_site_vectors(SRTIO3, [symbols[i] for i in perm])
    np.testing.assert_array_equal(b, a[perm])
    assert not np.array_equal(a[0], a[1])


def test_a_long_description_reaches_the_model_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("TGDMAT_CACHE", str(tmp_path))
    long_text = " ".join([SRTIO3] * 6)               # ~6× MiniLM's 256-token window
    enc = HashEncoder(dim=6)
    bank, index, counts = sentence_embeddings_for([long_text, SRTIO3], enc)
    n = len(split_description(long_text))
    assert counts == [n, len(split_description(SRTIO3))] and n > 20
    assert (index[0] >= 0).sum() == n                  # every sentence has a row, none cut
    assert bank.shape[0] == len(set(split_description(long_text)))  # repeated sentences encoded once


def test_grounding_table_lookup_follows_the_batch_order():
    class DS:  # the two fields build_grounding reads
        atom_types = np.array([38, 22, 8, 8, 8, 22, 8, 8, 8, 38])
        offsets = np.array([0, 5, 10])

        def __len__(self):
            return 2

    enc = HashEncoder(dim=6)
    table = build_grounding(DS(), [SRTIO3, "Ti(1) is bonded to six equivalent O(1) atoms."], "sites+attention", enc)
    assert isinstance(table, GroundingTable) and table.atom_vectors.shape == (10, SITE_VECTOR_DIM)
    atoms, sent, mask = table.lookup(torch.tensor([1, 0]))
    np.testing.assert_array_equal(atoms[:5].numpy(), table.atom_vectors[5:].numpy())
    assert sent.shape[0] == 2 and mask[0].sum() == 1 and mask[1].sum() == len(split_description(SRTIO3))
    assert table.mentioned_pct == pytest.approx(60.0)   # crystal 1 describes only its Ti site


# ------------------------------------------------------------------------------ denoiser
def _net(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = DenoiserConfig(hidden_dim=24, num_layers=2, num_freqs=4, time_dim=16, cond_dim=7, cond_proj_dim=8,
                         num_atom_types=11, atom_cond_dim=5, sentence_dim=6, attention_heads=4, **kw)
    net = CSPDenoiser(cfg).double().eval()
    with torch.no_grad():  # leave the zero initialisation, so that the grounding paths matter
        for p in net.parameters():
            if p.abs().sum() == 0 and p.dim() > 0:
                p.normal_(0, 0.3)
    return net


def _batch(sizes=(3, 1, 4), seed=1):
    g = torch.Generator().manual_seed(seed)
    B, N = len(sizes), sum(sizes)
    batch = torch.repeat_interleave(torch.arange(B), torch.tensor(sizes))
    lat = 4.0 * torch.eye(3, dtype=torch.float64) + torch.randn(B, 3, 3, generator=g, dtype=torch.float64)
    cond = Condition(torch.randn(B, 7, generator=g, dtype=torch.float64),
                     torch.randn(N, 5, generator=g, dtype=torch.float64),
                     torch.randn(B, 4, 6, generator=g, dtype=torch.float64),
                     torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool))
    return dict(atom_types=torch.randint(0, 11, (N,), generator=g), frac_coords=torch.rand(N, 3, generator=g, dtype=torch.float64),
                lattice=lat, batch=batch, t=torch.rand(B, generator=g, dtype=torch.float64), cond=cond)


TOL = dict(rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", ["film", "concat"])
def test_grounded_denoiser_keeps_every_symmetry(mode):
    net, d = _net(cond_mode=mode), _batch()
    out = net(**d)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)))
    rot = net(**dict(d, lattice=d["lattice"] @ q.T))
    torch.testing.assert_close(rot.lattice_eps, out.lattice_eps @ q.T, **TOL)
    torch.testing.assert_close(rot.frac_score, out.frac_score, **TOL)
    tau = torch.rand(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    sh = net(**dict(d, frac_coords=(d["frac_coords"] + tau[d["batch"]]) % 1.0))
    torch.testing.assert_close(sh.frac_score, out.frac_score, rtol=1e-7, atol=1e-8)
    # permuting the atoms of crystal 2 together with their conditioning permutes the outputs
    perm = torch.tensor([0, 1, 2, 3, 6, 4, 7, 5])
    c = d["cond"]
    p_out = net(**dict(d, atom_types=d["atom_types"][perm], frac_coords=d["frac_coords"][perm],
                       cond=Condition(c.vector, c.atoms[perm], c.sentences, c.sentence_mask)))
    torch.testing.assert_close(p_out.frac_score, out.frac_score[perm], **TOL)
    torch.testing.assert_close(p_out.lattice_eps, out.lattice_eps, **TOL)


def test_grounding_is_used_and_dropping_it_equals_the_null_condition():
    net, d = _net(), _batch()
    out = net(**d)
    c = d["cond"]
    other_atoms = net(**dict(d, cond=Condition(c.vector, c.atoms + 1.0, c.sentences, c.sentence_mask)))
    other_sent = net(**dict(d, cond=Condition(c.vector, c.atoms, c.sentences + 1.0, c.sentence_mask)))
    assert not torch.allclose(other_atoms.frac_score, out.frac_score, atol=1e-6)
    assert not torch.allclose(other_sent.frac_score, out.frac_score, atol=1e-6)
    # padding sentences are ignored
    padded = c.sentences.clone()
    padded[0, 2:] = 99.0
    same = net(**dict(d, cond=Condition(c.vector, c.atoms, padded, c.sentence_mask)))
    torch.testing.assert_close(same.frac_score, out.frac_score, **TOL)
    drop = torch.tensor([True, False, True])
    mixed = net(**d, drop_cond=drop)
    null = net(**dict(d, cond=None))
    atoms = drop[d["batch"]]
    torch.testing.assert_close(mixed.frac_score[atoms], null.frac_score[atoms], **TOL)
    torch.testing.assert_close(mixed.frac_score[~atoms], out.frac_score[~atoms], **TOL)


def test_a_fresh_grounded_network_starts_as_the_pooled_one():
    torch.manual_seed(0)
    cfg = DenoiserConfig(hidden_dim=24, num_layers=2, num_freqs=4, time_dim=16, cond_dim=7, cond_proj_dim=8,
                         num_atom_types=11, atom_cond_dim=5, sentence_dim=6)
    net = CSPDenoiser(cfg).double().eval()
    d = _batch()
    c = d["cond"]
    a = net(**d).frac_score
    b = net(**dict(d, cond=Condition(c.vector, torch.zeros_like(c.atoms), c.sentences * 0, c.sentence_mask))).frac_score
    torch.testing.assert_close(a, b, **TOL)


def test_site_encoder_masks_unstated_numbers():
    enc = SiteEncoder(dim=8).double()
    v = torch.zeros(2, SITE_VECTOR_DIM, dtype=torch.float64)
    v[1, 0] = 0.5  # a number without its mask bit is ignored
    out = enc(v)
    torch.testing.assert_close(out[0], out[1])


def test_grounding_needs_long_prompts_and_csp():
    ModelConfig(task="csp", prompt="long", grounding="sites")
    with pytest.raises(ConfigError, match="grounding"):
        ModelConfig(task="csp", prompt="short", grounding="sites")
    with pytest.raises(ConfigError, match="grounding"):
        ModelConfig(task="gen", prompt="long", grounding="attention")
    with pytest.raises(ConfigError, match="grounding must be one of"):
        ModelConfig(task="csp", prompt="long", grounding="everything")
