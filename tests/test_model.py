"""The joint model, the training loop (overfit, resume, data parallel) and the sampling API."""
from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

import tgdmat
from tgdmat.train import train
from tgdmat.config import Config, SampleConfig, TrainConfig, preset
from tgdmat.data import Splits
from tgdmat.denoiser import DenoiserConfig
from tgdmat.model import TGDMat

ROOT = Path(__file__).resolve().parents[1]

TINY = DenoiserConfig(hidden_dim=32, num_layers=2, num_freqs=8, time_dim=16, cond_proj_dim=16)


def tiny_config(task="csp", prompt="short", conditioning="text", **train_kw) -> Config:
    cfg = preset("quick", task=task, prompt=prompt, conditioning=conditioning, denoiser=TINY, prompt_variants=2)
    train = dict(epochs=2, batch_size=8, lr=3e-3, warmup_steps=2, eval_every=1, ema_decay=0.9, seed=0)
    train.update(train_kw)
    cfg.train = dataclasses.replace(cfg.train, **train)
    cfg.sample = SampleConfig(num_steps=5, batch_size=64, seed=0)
    return cfg


@pytest.fixture(scope="module")
def small_splits(perov_test):
    # 24 training crystals, 8 held out: enough to exercise every code path in seconds
    return Splits(
        train=perov_test.subset(range(24), split="train(val-holdout)"),
        val=perov_test.subset(range(24, 32), split="holdout(val)"),
        test=perov_test.subset(range(32, 40)),
        protocol="unit test",
        seed=0,
    )


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_loss_terms_and_noise_slicing(perov_test):
    torch.manual_seed(0)
    cfg = tiny_config(task="gen")
    model = TGDMat(cfg.model, text_dim=8)
    batch = perov_test.batch(range(6))
    noise = model.draw_noise(batch, torch.Generator().manual_seed(1))
    cond = model.condition(torch.randn(6, 8), None)
    full = model.loss(batch, cond, noise)
    assert set(full) >= {"loss", "lattice", "coord", "type"}
    assert all(torch.isfinite(v) for v in full.values())
    # the sum of the per-share losses over two halves equals the full-batch loss
    halves = []
    for part in (torch.tensor([0, 2, 4]), torch.tensor([1, 3, 5])):
        atoms = torch.isin(batch.batch, part)
        sub = perov_test.batch(part.tolist())
        halves.append(model.loss(sub, cond[part], noise.select(part, atoms), norm=(6, batch.frac_coords.shape[0])))
    for key in ("lattice", "coord", "type", "loss"):
        assert torch.allclose(halves[0][key] + halves[1][key], full[key], atol=1e-5)


def test_text_changes_the_prediction_and_facts_are_used(perov_test):
    from tgdmat.conditioning import FactsBatch

    torch.manual_seed(0)
    cfg = tiny_config(conditioning="text+facts")
    model = TGDMat(cfg.model, 8, property_mean=[1.0], property_std=[0.5], property_names=["heat_ref"])
    batch = perov_test.batch(range(2))
    noise = model.draw_noise(batch, torch.Generator().manual_seed(0))
    noise.drop_cond[:] = False
    emb = torch.randn(2, 8)
    f1 = FactsBatch(torch.tensor([[1.0], [2.0]]), torch.ones(2, 1, dtype=torch.bool), torch.tensor([7, 3]), torch.tensor([221, 25]))
    f2 = FactsBatch(torch.tensor([[1.5], [2.0]]), torch.ones(2, 1, dtype=torch.bool), torch.tensor([7, 3]), torch.tensor([221, 25]))
    l1 = model.loss(batch, model.condition(emb, f1), noise)["loss"]
    l2 = model.loss(batch, model.condition(emb, f2), noise)["loss"]
    l3 = model.loss(batch, model.condition(emb + 1.0, f1), noise)["loss"]
    assert not torch.isclose(l1, l2) and not torch.isclose(l1, l3)


def test_tiny_model_overfits_eight_structures(perov_test, tmp_path):
    torch.set_num_threads(1)
    eight = perov_test.subset(range(8))
    splits = Splits(train=eight, val=eight, test=eight, protocol="overfit", seed=0)
    cfg = tiny_config(prompt="none", epochs=150, eval_every=1000, lr=5e-3, warmup_steps=5, ema_decay=0.5)
    cfg.model = dataclasses.replace(cfg.model, denoiser=dataclasses.replace(TINY, hidden_dim=64), cond_drop_prob=0.0)
    result = train(cfg, tmp_path / "overfit", splits=splits, device="cpu", progress=False)
    losses = [h["train_loss"] for h in result.history]
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    # stated factor: the mean loss of the last 10 epochs is at most half that of the first 10
    assert last < 0.5 * first, (first, last)


def test_resume_after_kill_equals_unbroken_run(small_splits, tmp_path):
    cfg = tiny_config(epochs=3)
    train(cfg, tmp_path / "unbroken", splits=small_splits, device="cpu", progress=False)
    train(cfg, tmp_path / "broken", splits=small_splits, device="cpu", progress=False, stop_after_epochs=1)
    first = _state(tmp_path / "broken" / "last.pt")
    assert first["epoch"] == 0
    result = train(cfg, tmp_path / "broken", splits=small_splits, device="cpu", progress=False)
    assert result.epochs_run == 2  # epochs 2 and 3: none lost, none repeated
    a, b = _state(tmp_path / "unbroken" / "last.pt"), _state(tmp_path / "broken" / "last.pt")
    assert [h["epoch"] for h in __import__("json").loads(b["history"])] == [1, 2, 3]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"]:
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    # config, seed and commit travel with the checkpoint
    assert Config.from_json(b["config"]) == cfg and b["seed"] == 0 and b["commit"]


def test_resume_refuses_a_different_config(small_splits, tmp_path):
    cfg = tiny_config(epochs=1)
    train(cfg, tmp_path / "run", splits=small_splits, device="cpu", progress=False)
    other = tiny_config(epochs=1, lr=1e-2)
    with pytest.raises(ValueError, match="different config"):
        train(other, tmp_path / "run", splits=small_splits, device="cpu", progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, cfg_json, splits, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        train(Config.from_json(cfg_json), out, splits=splits, device="cpu", progress=False)
    finally:
        torch.distributed.destroy_process_group()


def test_two_process_gloo_run_matches_one_process(small_splits, tmp_path):
    import torch.multiprocessing as mp

    cfg = tiny_config(epochs=2, batch_size=8)
    cfg.model = dataclasses.replace(cfg.model, cond_drop_prob=0.3)
    train(cfg, tmp_path / "one", splits=small_splits, device="cpu", progress=False)
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg.to_json(), small_splits, str(tmp_path / "two")), nprocs=2, join=True)
    one, two = _state(tmp_path / "one" / "last.pt"), _state(tmp_path / "two" / "last.pt")
    for key in one["model"]:
        assert torch.allclose(one["model"][key], two["model"][key], atol=1e-5, rtol=1e-4), key
    h1, h2 = (__import__("json").loads(x["history"]) for x in (one, two))
    for r1, r2 in zip(h1, h2):
        assert r1["train_loss"] == pytest.approx(r2["train_loss"], rel=1e-4)
        assert r1["holdout_loss"] == pytest.approx(r2["holdout_loss"], rel=1e-4)


def _benchmark(name: str):
    """A script of benchmarks/ imported as a module (they are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.fixture(scope="module")
def trained(small_splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    paths = {}
    for task in ("csp", "gen"):
        cfg = tiny_config(task=task, epochs=1)
        train(cfg, out / task, splits=small_splits, device="cpu", progress=False)
        paths[task] = out / task / "best.pt"
    return paths


def test_sample_csp_keeps_composition(trained, perov_test):
    gen = tgdmat.from_pretrained(trained["csp"], device="cpu")
    assert not gen.model.training
    targets = [perov_test[i].structure for i in range(3)]
    prompts = [tgdmat.text.short_prompt(s, perov_test[i].properties, "perov_5") for i, s in enumerate(targets)]
    out = gen.sample_csp(targets, prompts=prompts, n_samples=2, progress=False)
    assert len(out) == 3 and all(len(o) == 2 for o in out)
    for target, samples in zip(targets, out):
        for s in samples:
            assert s.composition == target.composition
            assert np.isfinite(s.lattice.matrix).all() and s.volume > 0
    again = gen.sample_csp(targets, prompts=prompts, n_samples=2, progress=False)
    assert np.allclose(out[0][0].frac_coords, again[0][0].frac_coords)  # seeded
    other = gen.sample_csp(targets, prompts=prompts, n_samples=2, progress=False, seed=5)
    assert not np.allclose(out[0][0].frac_coords, other[0][0].frac_coords)
    formula = gen.sample_csp(["SrTiO3"], n_samples=1, progress=False)[0][0]
    assert formula.composition.reduced_formula == "SrTiO3" and len(formula) == 5


def test_generate_uses_prompt_formula_and_training_counts(trained, tmp_path):
    gen = tgdmat.from_pretrained(trained["gen"], device="cpu")
    prompt = ("Below is a description of a bulk material. The chemical formula is SrTiO3. The elements are Sr, Ti, O. "
              "The formation energy per atom is 0.5. The spacegroup number is 221. The crystal system is cubic. "
              "Generate the material:")
    out = gen.generate([prompt], n=3, progress=False, guidance_scale=2.0)
    assert len(out) == 3 and all(len(s) == 5 for s in out)
    assert all(np.isfinite(s.lattice.matrix).all() and s.volume > 0 for s in out)
    assert all(1 <= site.specie.Z <= 100 for s in out for site in s)
    free = gen.generate(None, n=4, progress=False)
    assert [len(s) for s in free] == [5, 5, 5, 5]  # Perov-5: every training crystal has 5 atoms
    paths = tgdmat.sample.write_cifs(free, tmp_path / "cif")
    from pymatgen.core import Structure

    assert Structure.from_file(paths[0]).composition == free[0].composition
    with pytest.raises(ValueError):
        gen.generate(["   "], n=1, progress=False)


def test_mask_unseen_elements_draws_only_training_elements(trained):
    """A one-epoch model draws almost any of the 100 types; masked, only the training split's."""
    gen = tgdmat.from_pretrained(trained["gen"], device="cpu")
    seen = gen.training_elements
    assert gen.settings(mask_unseen_elements=True, num_steps=None).mask_unseen_elements
    assert gen.settings().num_steps == gen.config.sample.num_steps  # None overrides leave the checkpoint's
    free = gen.generate(None, n=32, progress=False, num_steps=20)
    assert {site.specie.Z for s in free for site in s} - seen  # the paper's sampler leaves the training set
    masked = gen.generate(None, n=32, progress=False, num_steps=20, mask_unseen_elements=True)
    assert {site.specie.Z for s in masked for site in s} <= seen
    assert [len(s) for s in masked] == [len(s) for s in free]
    only_o = torch.zeros(100, dtype=torch.bool)
    only_o[7] = True  # Z = 8
    A, _, _ = gen.model.sample(torch.tensor([3, 2]), None, num_steps=5, type_mask=only_o)
    assert set(A.tolist()) == {8}
    with pytest.raises(ValueError, match="at least one True"):
        gen.model.sample(torch.tensor([3]), None, num_steps=5, type_mask=torch.zeros(100, dtype=torch.bool))


def test_restrict_to_stated_elements_draws_each_crystal_among_its_prompts_elements(trained):
    """Per crystal: a prompt naming Sr, Ti, O gets only those; one naming Ba, Zr, O only those;
    a prompt that names no element is not restricted (a one-epoch model leaves any set)."""
    gen = tgdmat.from_pretrained(trained["gen"], device="cpu")
    sto = "The chemical formula is SrTiO3. Generate the material:"
    bzo = "The elements are Ba, Zr, O. The crystal system is cubic. Generate the material:"
    free = "The crystal system is cubic. Generate the material:"
    assert gen.stated_elements(sto) == {38, 22, 8} and gen.stated_elements(bzo) == {56, 40, 8}
    assert gen.stated_elements(free) is None
    out = gen.generate([sto, bzo, free], n=8, num_atoms=[5, 5, 5], progress=False, num_steps=20,
                       restrict_to_stated_elements=True)
    zs = [{site.specie.Z for site in s} for s in out]
    assert all(z <= {38, 22, 8} for z in zs[:8]) and all(z <= {56, 40, 8} for z in zs[8:16])
    assert set().union(*zs[16:]) - {38, 22, 8, 56, 40}  # the free prompt is not restricted
    plain = gen.generate([sto], n=8, num_atoms=[5], progress=False, num_steps=20)
    assert set().union(*({site.specie.Z for site in s} for s in plain)) - {38, 22, 8}  # the paper's sampler
    # with mask_unseen_elements: the stated elements the model saw (one stated, unseen element is dropped)
    seen = gen.training_elements
    unseen = min(set(range(1, 95)) - seen)
    from pymatgen.core import Element

    odd = f"The elements are Sr, {Element.from_Z(unseen).symbol}, O. Generate the material:"
    both = gen.generate([odd], n=8, num_atoms=[5], progress=False, num_steps=20, restrict_to_stated_elements=True,
                        mask_unseen_elements=True)
    assert set().union(*({site.specie.Z for site in s} for s in both)) <= ({38, 8} & seen or {38, 8, unseen})
    # per-crystal masks at the model level: shape checked, every row needs an allowed type
    rows = torch.zeros(2, 100, dtype=torch.bool)
    rows[0, 7], rows[1, 13] = True, True  # O for crystal 0, Si for crystal 1
    A, _, _ = gen.model.sample(torch.tensor([3, 2]), None, num_steps=5, type_mask=rows)
    assert A.tolist() == [8, 8, 8, 14, 14]
    with pytest.raises(ValueError, match="one True per row"):
        gen.model.sample(torch.tensor([3, 2]), None, num_steps=5, type_mask=torch.zeros(2, 100, dtype=torch.bool))
    with pytest.raises(ValueError, match="got shape"):
        gen.model.sample(torch.tensor([3, 2]), None, num_steps=5, type_mask=torch.ones(3, 100, dtype=torch.bool))


def test_checkpoints_load_without_pickle(trained):
    ckpt = torch.load(trained["csp"], map_location="cpu", weights_only=True)
    assert ckpt["format"] == 1 and isinstance(ckpt["config"], str)


def test_csp_benchmark_returns_one_of_k_draws(trained, perov_test):
    from tgdmat.benchmark import csp_benchmark

    gen = tgdmat.from_pretrained(trained["csp"], device="cpu")
    seen = []

    def predictor(structures):  # stand-in property: the lattice length
        seen.append(len(structures))
        return np.array([s.lattice.a for s in structures])

    res = csp_benchmark(gen, perov_test, limit=3, select_from=4, predictor=predictor, progress=False)
    assert seen == [12]  # 3 targets × 4 draws, scored once
    assert res["draws_per_target"] == 4 and res["selection"]["returned_per_target"] == 1
    assert res["selection"]["targets_with_stated_value"] == 3
    assert res["selection"]["first_draw_metrics"]["n_predictions"] == 3
    assert res["metrics"]["n_predictions"] == 3 and res["metrics"]["k_max"] == 1
    plain = csp_benchmark(gen, perov_test, limit=3, progress=False)
    assert plain["draws_per_target"] == 1 and "selection" not in plain
    pt = plain["per_target"]  # what paired comparisons read (tgdmat.metrics.compare)
    assert pt["material_id"] == [str(i) for i in perov_test.material_ids[:3]] and len(pt["rms"]) == 3
    assert sum(r is not None for r in pt["rms"]) == plain["metrics"]["n_hits"]
    assert "per_target_rms" not in plain["metrics"]
    with pytest.raises(ValueError, match="n_samples=1"):
        csp_benchmark(gen, perov_test, n_samples=2, select_from=2, limit=2, progress=False)


def test_csp_benchmark_with_a_work_folder_resumes_and_scores_the_same_draws(trained, perov_test, tmp_path):
    from tgdmat.benchmark import csp_benchmark

    gen = tgdmat.from_pretrained(trained["csp"], device="cpu")
    work = tmp_path / "work"
    res = csp_benchmark(gen, perov_test, limit=3, n_samples=2, progress=False, work=work, num_steps=2, batch_size=2)
    assert res["resumable"]["batches_total"] == 3 and res["resumable"]["crystals_this_call"] == 6
    again = csp_benchmark(gen, perov_test, limit=3, n_samples=2, progress=False, work=work, num_steps=2, batch_size=2)
    assert again["resumable"]["batches_this_call"] == 0 and again["seconds"]["sampling_per_crystal"] is None
    assert again["metrics"] == res["metrics"] and again["per_target"] == res["per_target"]
    with pytest.raises(ValueError, match="other settings"):
        csp_benchmark(gen, perov_test, limit=3, n_samples=2, progress=False, work=work, num_steps=3, batch_size=2)
    with pytest.raises(ValueError, match="resumable"):
        csp_benchmark(gen, perov_test, limit=3, select_from=2, progress=False, work=work)


def test_csp_benchmark_unconditional_passes_no_prompt_and_omission_none_uses_it(trained, perov_test, monkeypatch):
    from tgdmat.benchmark import csp_benchmark

    gen = tgdmat.from_pretrained(trained["csp"], device="cpu")
    seen = []
    real = gen.sample_csp

    def spy(targets, prompts=None, **kw):
        seen.append(prompts)
        return real(targets, prompts=prompts, **kw)

    monkeypatch.setattr(gen, "sample_csp", spy)
    res = csp_benchmark(gen, perov_test, limit=2, progress=False, unconditional=True, num_steps=2)
    assert seen[-1] is None and res["prompts"] == "none"
    csp_benchmark(gen, perov_test, limit=2, progress=False, num_steps=2)
    assert seen[-1] is not None and len(seen[-1]) == 2  # the split's evaluation prompts
    with pytest.raises(ValueError, match="unconditional"):
        csp_benchmark(gen, perov_test, limit=2, progress=False, unconditional=True, prompts=["a", "b"])
    # the omission benchmark's "none" condition is the null prompt, not the template
    bench = _benchmark("bench_prompt_omission")
    assert bench.prompts_for("none", [], "perov_5", 0) is None
    assert "unconditional=prompts is None" in (ROOT / "benchmarks" / "bench_prompt_omission.py").read_text()


def test_training_logs_a_held_out_match_rate(small_splits, tmp_path):
    cfg = tiny_config(epochs=1, eval_csp_samples=4)
    result = train(cfg, tmp_path / "run", splits=small_splits, device="cpu", progress=False)
    rate = result.history[-1]["holdout_match_rate_pct"]
    assert rate in (0.0, 25.0, 50.0, 75.0, 100.0)  # 4 held-out crystals, one draw each
    assert "holdout_match_rate_pct" in (tmp_path / "run" / "log.csv").read_text().splitlines()[0]


def test_cli_selection_result_names_the_regressor_that_chose(tmp_path):
    import json

    from tgdmat.cli.main import main
    from tgdmat.paths import results_dir, sha256_file

    out = tmp_path / "sel.json"
    ck = results_dir() / "checkpoints" / "perov_5_csp_quick.pt"
    assert main(["csp", "--checkpoint", str(ck), "--split", "test", "--limit", "2", "--steps", "2",
                 "--select-from", "2", "--threads", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    reg = results_dir() / "checkpoints" / "regressor_perov_5.pt"
    assert res["draws_per_target"] == 2
    assert {i["path"].split("/")[-1]: i["sha256"] for i in res["inputs"]}["regressor_perov_5.pt"] == sha256_file(reg)


def test_cli_csp_work_folder_is_resumable(tmp_path, capsys):
    import json

    from tgdmat.cli.main import main
    from tgdmat.paths import results_dir

    ck = results_dir() / "checkpoints" / "perov_5_csp_quick.pt"
    args = ["csp", "--checkpoint", str(ck), "--split", "test", "--limit", "3", "--steps", "2", "--batch-size", "2",
            "--threads", "1", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "r.json")]
    assert main(args) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["resumable"]["batches_total"] == 2 and len(list((tmp_path / "w" / "batches").glob("*.json"))) == 2
    assert main(args[:-6] + ["--batch-size", "3"] + args[-4:]) == 2  # same folder, other settings: refused
    assert "other settings" in capsys.readouterr().err


def test_generation_step_benchmark_scores_each_setting_on_the_held_out_slice(tmp_path):
    import json

    bench = _benchmark("bench_gen_steps")
    ck = ROOT / "results" / "checkpoints" / "perov_5_gen_text_facts.pt"
    out = tmp_path / "steps.json"
    assert bench.main(["--checkpoint", str(ck), "--n", "3", "--steps", "2", "4", "--limit-reference", "6",
                       "--threads", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["num_steps"] for r in res["rows"]] == [2, 4]
    assert [r["network_evaluations"] for r in res["rows"]] == [4, 8]  # predictor + corrector per step
    assert res["split"].endswith("holdout(val)") and "test" not in res["split"]
    assert res["n_reference"] == 6 and 0 <= res["real_training_crystals"]["cov_p_pct"] <= 100
    assert any(i["path"].endswith("perov_5_gen_text_facts.pt") for i in res["inputs"])
    from tgdmat.cli.main import run_script
    from tgdmat.checkpoint import CheckpointError

    csp = ROOT / "results" / "checkpoints" / "perov_5_csp_quick.pt"
    with pytest.raises(CheckpointError, match="perov_5_csp_quick.pt: a csp model; a generation"):
        bench.main(["--checkpoint", str(csp), "--out", str(tmp_path / "x.json")])
    # as a script: one line on stderr, exit status 2, no traceback
    assert run_script(lambda: bench.main(["--checkpoint", str(csp), "--out", str(tmp_path / "x.json")])) == 2
    assert not (tmp_path / "x.json").exists()


def test_generation_guidance_benchmark_scores_fidelity_on_the_held_out_slice(tmp_path):
    import json

    bench = _benchmark("bench_gen_guidance")
    ck = ROOT / "results" / "checkpoints" / "perov_5_gen_text_facts.pt"
    out = tmp_path / "w.json"
    assert bench.main(["--checkpoint", str(ck), "--guidance", "1", "2", "--steps", "3", "--limit", "4",
                       "--mask-unseen-elements", "--threads", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["guidance_scale"] for r in res["rows"]] == [1.0, 2.0]
    assert [r["restrict_to_stated_elements"] for r in res["rows"]] == [False, False]
    assert [r["network_evaluations"] for r in res["rows"]] == [6, 12]  # guidance doubles the evaluations
    assert res["split"].endswith("holdout(val)") and res["n_prompts"] == 4
    assert res["real_crystals"]["formula_match_pct"] == 100.0  # the slice's own crystals state their formulas
    assert res["best"] in res["rows"] and all(0 <= r["mean_fidelity_pct"] <= 100 for r in res["rows"])
    both = tmp_path / "both.json"
    assert bench.main(["--checkpoint", str(ck), "--guidance", "2", "--steps", "3", "--limit", "4",
                       "--restrict-to-stated-elements", "both", "--threads", "1", "--out", str(both)]) == 0
    rows = json.loads(both.read_text())["rows"]
    assert [r["restrict_to_stated_elements"] for r in rows] == [False, True]
    assert rows[0]["network_evaluations"] == rows[1]["network_evaluations"]  # the mask costs no evaluation
    with pytest.raises(SystemExit):
        bench.main(["--checkpoint", str(ck), "--guidance", "-1", "--out", str(tmp_path / "x.json")])


def test_from_pretrained_refuses_a_model_of_the_wrong_task_by_name():
    from tgdmat.checkpoint import CheckpointError

    ck = ROOT / "results" / "checkpoints" / "perov_5_gen_text_facts.pt"
    with pytest.raises(CheckpointError, match="perov_5_gen_text_facts.pt: a gen model; a structure prediction"):
        tgdmat.from_pretrained(ck, device="cpu", task="csp")
    assert tgdmat.from_pretrained(ck, device="cpu", task="gen").config.model.task == "gen"
    with pytest.raises(ValueError, match="task must be"):
        tgdmat.from_pretrained(ck, device="cpu", task="CSP")
