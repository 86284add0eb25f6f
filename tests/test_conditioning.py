"""Numeric-aware conditioning: the facts embedding is continuous, deterministic and uses every fact."""
from __future__ import annotations

import torch

from tgdmat.conditioning import CRYSTAL_SYSTEMS, FactsBatch, FactsEncoder, fourier_value_features
from tgdmat.text import parse_prompt


def _encoder():
    torch.manual_seed(0)
    return FactsEncoder(["heat_ref"], mean=[1.4], std=[0.7], dim=32).eval()


def _facts(values, system=7, sg=221, stated=True):
    n = len(values)
    return FactsBatch(torch.tensor(values, dtype=torch.float32).reshape(n, 1),
                      torch.full((n, 1), stated, dtype=torch.bool),
                      torch.full((n,), system, dtype=torch.long), torch.full((n,), sg, dtype=torch.long))


def test_numeric_embedding_is_continuous_and_deterministic():
    enc = _encoder()
    with torch.no_grad():
        a = enc(_facts([1.0, 1.0001, 1.01, 2.5]))
        b = _encoder()(_facts([1.0, 1.0001, 1.01, 2.5]))
    assert torch.equal(a, b)  # same seed, same input → same vector
    d_tiny, d_small, d_large = ((a[0] - a[k]).norm() for k in (1, 2, 3))
    assert d_tiny < 1e-2 * d_large and d_tiny < d_small < d_large
    # Lipschitz: |FF(z) - FF(z')| <= sqrt(1 + Σ_k (2π f_k)²) |z - z'| with f_k in [0.25, 16]
    import math

    freqs = torch.exp(torch.linspace(math.log(0.25), math.log(16.0), 8))
    lipschitz = math.sqrt(1 + float(((2 * math.pi * freqs) ** 2).sum()))
    z = torch.linspace(-3, 3, 6001, dtype=torch.float64)
    steps = (fourier_value_features(z[1:]) - fourier_value_features(z[:-1])).norm(dim=-1)
    assert steps.max() <= lipschitz * float(z[1] - z[0]) * (1 + 1e-6)


def test_unstated_facts_use_learned_unknowns_and_every_fact_matters():
    enc = _encoder()
    with torch.no_grad():
        base = enc(_facts([1.0]))
        unstated = enc(_facts([1.0], stated=False))
        other_value_unstated = enc(_facts([2.0], stated=False))
        other_system = enc(_facts([1.0], system=CRYSTAL_SYSTEMS.index("orthorhombic") + 1))
        other_sg = enc(_facts([1.0], sg=25))
    assert torch.equal(unstated, other_value_unstated)  # an unstated value is ignored
    for other in (unstated, other_system, other_sg):
        assert (other - base).norm() > 1e-4


def test_facts_batch_from_parsed_prompts():
    prompts = [
        "Below is a description of a bulk material. The chemical formula is SrTiO3. The formation energy per atom "
        "is -0.1234. The spacegroup number is 221. The crystal system is cubic. Generate the material:",
        "A free-text prompt that states no facts at all.",
    ]
    fb = FactsBatch.from_facts([parse_prompt(p, dataset="perov_5") for p in prompts], ["heat_ref"])
    assert fb.values[0, 0].item() == torch.tensor(-0.1234).item() and fb.mask.tolist() == [[True], [False]]
    assert fb.crystal_system.tolist() == [CRYSTAL_SYSTEMS.index("cubic") + 1, 0]
    assert fb.space_group.tolist() == [221, 0]
