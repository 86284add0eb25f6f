"""Resumable large sampling runs (issue 21): a killed run neither loses nor duplicates samples."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tgdmat import sample_set
from tgdmat.config import SampleConfig, preset
from tgdmat.denoiser import DenoiserConfig
from tgdmat.model import TGDMat
from tgdmat.sample import CrystalGenerator, RequestError

TINY = DenoiserConfig(hidden_dim=16, num_layers=1, num_freqs=4, time_dim=8, cond_proj_dim=8)


def tiny_gen_model():
    cfg = preset("quick", task="gen", prompt="none", denoiser=TINY, num_steps=10)
    cfg.sample = SampleConfig(num_steps=3, batch_size=8, seed=0)
    torch.manual_seed(0)
    return CrystalGenerator(TGDMat(cfg.model, text_dim=0), cfg, ["heat_ref"], {5: 3, 6: 1},
                            torch.device("cpu"), {"train_elements": [8, 22, 38]})


def test_killed_run_resumes_without_losing_or_duplicating(tmp_path):
    gen = tiny_gen_model()
    request = sample_set.training_requests(gen, 10, seed=3)
    assert set(request.num_atoms) <= {5, 6} and len(request.num_atoms) == 10
    broken = tmp_path / "broken"
    first = sample_set.run(gen, request, broken, batch_size=4, seed=1, progress=False, stop_after_batches=1)
    assert first["batches_done"] == 1 and "samples" not in first and not (broken / "samples.json").exists()
    (broken / "batches" / "batch_00002.json.tmp").write_text("half a file")  # debris of a kill: ignored
    second = sample_set.run(gen, request, broken, batch_size=4, seed=1, progress=False)
    assert second["batches_this_call"] == 2 and second["batches_done"] == 3
    whole = sample_set.run(gen, request, tmp_path / "whole", batch_size=4, seed=1, progress=False)
    a = json.loads((broken / "samples.json").read_text())
    b = json.loads((tmp_path / "whole" / "samples.json").read_text())
    assert [r["index"] for r in a] == list(range(10)) and a == b
    from pymatgen.core import Structure

    structures = [Structure.from_str(r["cif"], fmt="cif") for r in a]
    assert [len(s) for s in structures] == request.num_atoms
    assert all(np.isfinite(s.lattice.matrix).all() for s in structures)
    assert all(1 <= site.specie.Z <= 100 for s in structures for site in s)
    assert whole["batches_this_call"] == 3


def test_a_folder_made_for_other_requests_is_refused(tmp_path):
    gen = tiny_gen_model()
    sample_set.run(gen, sample_set.training_requests(gen, 4, seed=0), tmp_path, batch_size=4, progress=False)
    # a folder written before request.json recorded the checkpoint resumes (and records it now) ...
    meta = json.loads((tmp_path / "request.json").read_text())
    del meta["checkpoint_sha256"]
    (tmp_path / "request.json").write_text(json.dumps(meta))
    sample_set.run(gen, sample_set.training_requests(gen, 4, seed=0), tmp_path, batch_size=4, progress=False)
    assert "checkpoint_sha256" in json.loads((tmp_path / "request.json").read_text())
    # ... but not one made with another checkpoint
    gen.info["checkpoint_sha256"] = "another"
    with pytest.raises(ValueError, match="checkpoint_sha256 differ"):
        sample_set.run(gen, sample_set.training_requests(gen, 4, seed=0), tmp_path, batch_size=4, progress=False)
    gen.info.pop("checkpoint_sha256")
    with pytest.raises(ValueError, match="other settings or requests"):
        sample_set.run(gen, sample_set.training_requests(gen, 4, seed=9), tmp_path, batch_size=4, progress=False)


def tiny_csp_model():
    cfg = preset("quick", task="csp", prompt="none", denoiser=TINY, num_steps=10)
    cfg.sample = SampleConfig(num_steps=3, batch_size=4, seed=5)
    torch.manual_seed(0)
    return CrystalGenerator(TGDMat(cfg.model, text_dim=0), cfg, ["heat_ref"], {5: 3, 6: 1},
                            torch.device("cpu"), {"train_elements": [8, 22, 38], "checkpoint_sha256": "abc"})


def test_a_killed_csp_run_resumes_to_the_same_draws(tmp_path):
    gen = tiny_csp_model()
    comps = ["SrTiO3", "Sr2Ti2O6", "TiO2", "SrO", "Ti2O3"]
    broken = tmp_path / "broken"
    with pytest.warns(UserWarning) as caught:
        sample_set.run_csp(gen, comps, None, tmp_path / "warned", n_samples=2, progress=False, stop_after_batches=2)
    said = [str(w.message) for w in caught if "trained range" in str(w.message)]
    # each request is checked once, up front, and named by its index in the whole run (not in its batch)
    assert [m.split(":")[0] for m in said] == ["composition 1 (Sr2Ti2O6)", "composition 2 (TiO2)",
                                               "composition 3 (SrO)"]
    # ... and not again while each batch is sampled (the batches go straight to the chains)
    assert len(caught) == len({str(w.message) for w in caught})
    preds, first = sample_set.run_csp(gen, comps, None, broken, n_samples=2, progress=False, stop_after_batches=1)
    # batch_size 4 // 2 draws = 2 targets per batch: 3 batches, one written
    assert preds is None and first["batches_total"] == 3 and first["crystals_this_call"] == 4
    preds, second = sample_set.run_csp(gen, comps, None, broken, n_samples=2, progress=False)
    assert second["batches_this_call"] == 2 and second["crystals_this_call"] == 6
    whole, _ = sample_set.run_csp(gen, comps, None, tmp_path / "whole", n_samples=2, progress=False)
    assert [len(g) for g in preds] == [2] * 5
    assert [[len(s) for s in g] for g in preds] == [[5, 5], [10, 10], [3, 3], [2, 2], [5, 5]]
    for a, b in zip(preds, whole):
        for x, y in zip(a, b):
            assert x.composition == y.composition
            assert np.array_equal(x.frac_coords, y.frac_coords) and np.array_equal(x.lattice.matrix, y.lattice.matrix)
    # batch b uses seed + b: the second batch is not a copy of the first one's noise
    assert not np.allclose(preds[0][0].lattice.matrix, preds[2][0].lattice.matrix)
    again, third = sample_set.run_csp(gen, comps, None, broken, n_samples=2, progress=False)
    assert third["batches_this_call"] == 0 and len(again) == 5


def test_a_csp_folder_made_with_other_settings_is_refused(tmp_path):
    gen = tiny_csp_model()
    sample_set.run_csp(gen, ["SrTiO3", "TiO2"], None, tmp_path, n_samples=1, progress=False)
    with pytest.raises(ValueError, match=r"other settings or requests .*num_steps|sampling"):
        sample_set.run_csp(gen, ["SrTiO3", "TiO2"], None, tmp_path, n_samples=1, progress=False, num_steps=4)
    with pytest.raises(ValueError, match="digest"):
        sample_set.run_csp(gen, ["SrTiO3", "SrO"], None, tmp_path, n_samples=1, progress=False)


def test_a_csp_run_refuses_unknown_options_and_bad_draw_counts(tmp_path):
    gen = tiny_csp_model()
    with pytest.raises(TypeError, match="unknown option.*template_t"):
        sample_set.run_csp(gen, ["SrTiO3"], None, tmp_path, n_samples=1, progress=False, template_t=5)
    for bad in (0, 2.0, True):
        with pytest.raises(RequestError, match="n_samples must be a whole number"):
            sample_set.run_csp(gen, ["SrTiO3"], None, tmp_path, n_samples=bad, progress=False)
    with pytest.raises(RequestError, match="got 2 prompts for 1 compositions"):
        sample_set.run_csp(gen, ["SrTiO3"], ["SrTiO3", "TiO2"], tmp_path, n_samples=1, progress=False)
    assert not any(tmp_path.iterdir())  # refused before any folder or batch was written
