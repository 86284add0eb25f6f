"""Property-guided sampling (issue 15): the noise-aware predictor and classifier guidance."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tgdmat.config import ModelConfig
from tgdmat.data import load_splits
from tgdmat.denoiser import DenoiserConfig
from tgdmat.guidance import (
    PropertyGuide,
    evaluate_by_time,
    load_noisy_property,
    save_noisy_property,
    train_noisy_property,
)
from tgdmat.model import TGDMat

TINY = DenoiserConfig(hidden_dim=32, num_layers=2, num_freqs=8, time_dim=16, cond_proj_dim=8)


@pytest.fixture(scope="module")
def predictor():
    splits = load_splits("perov_5")
    train, hold = splits.train.subset(range(192)), splits.val.subset(range(64))
    cfg = ModelConfig(task="csp", dataset="perov_5", prompt="none")
    model, summary = train_noisy_property(cfg, train, hold, denoiser=TINY, epochs=10, batch_size=64, lr=3e-3,
                                          seed=0, progress=False)
    return model, summary, hold


def test_noise_aware_predictor_is_better_on_cleaner_crystals(predictor):
    model, summary, hold = predictor
    rmse = evaluate_by_time(model, hold, times=(0, 1000))
    spread = float(np.std(hold.properties[model.property_name]))
    assert rmse[0] < rmse[1000]
    assert rmse[1000] == pytest.approx(spread, rel=0.35)  # pure noise: about the mean's error
    assert set(summary["holdout_rmse_by_t"]) >= {0, 100, 1000}


def test_checkpoint_round_trip(predictor, tmp_path):
    model, summary, hold = predictor
    save_noisy_property(model, tmp_path / "p.pt", summary)
    again = load_noisy_property(tmp_path / "p.pt")
    s = [hold.structure(i) for i in range(4)]
    np.testing.assert_allclose(again.predict(s), model.predict(s), rtol=1e-6)


def _csp_model(seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(task="csp", dataset="perov_5", prompt="none", denoiser=TINY)
    return TGDMat(cfg, text_dim=0).eval()


def _sample(model, hold, guide, seed=1):
    ids = list(range(8))
    b = hold.batch(ids)
    gen = torch.Generator().manual_seed(seed)
    return model.sample(b.num_atoms, None, b.atom_types, generator=gen, num_steps=20, guide=guide)


def test_guidance_strength_zero_is_the_unguided_sampler(predictor):
    model, _, hold = predictor
    net = _csp_model()
    plain = _sample(net, hold, None)
    zero = _sample(net, hold, PropertyGuide(model, torch.zeros(8), scale=0.0))
    for a, b in zip(plain, zero):
        assert torch.equal(a, b)


def test_guidance_moves_the_predicted_property_toward_the_target(predictor):
    model, _, hold = predictor
    net = _csp_model()
    y = torch.as_tensor(hold.properties[model.property_name][:8], dtype=torch.float32)
    target = y * 0 + float(y.mean()) + 2.0 * model.std          # far from every crystal
    target[0] = float("nan")                                     # crystal 0: no stated value, not guided

    def distance(guide):
        A, F, L = _sample(net, hold, guide)
        batch = torch.repeat_interleave(torch.arange(8), hold.batch(list(range(8))).num_atoms)
        with torch.no_grad():
            pred = model(A, F, L, batch, torch.zeros(8, dtype=torch.long)) * model.std + model.mean
        return (pred - target)[1:].abs().mean(), (A, F, L)

    d0, plain = distance(PropertyGuide(model, target, scale=0.0))
    d1, guided = distance(PropertyGuide(model, target, scale=20.0))
    assert d1 < d0
    assert torch.equal(guided[0], plain[0])  # atom types are never changed (CSP)
