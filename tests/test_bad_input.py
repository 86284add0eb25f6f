"""Bad input at the edges (issue 17): nothing destroyed, nothing NaN, no silent reinterpretation,
one clear line instead of a traceback.

Numbered as in the issue: 1 overwriting runs, 2 NaN / negative settings, 3 zero / negative counts,
4 contradictions and out-of-domain requests, 5 one-line errors, 6 ``--threads`` everywhere
(7, compositional validity in bounded time, is in ``test_validity_fast.py``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tgdmat.config import Config, ConfigError, SampleConfig, TrainConfig, preset
from tgdmat.denoiser import DenoiserConfig
from tgdmat.model import TGDMat

ROOT = Path(__file__).resolve().parent.parent
CKPT = ROOT / "results" / "checkpoints" / "perov_5_csp_quick.pt"
TINY = DenoiserConfig(hidden_dim=16, num_layers=1, num_freqs=4, time_dim=8, cond_proj_dim=8)
SROTIO3_PROMPT = ("Below is a description of a bulk material. The chemical formula is BaZrO3. "
                  "The elements are Ba, Zr, O.")


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tgdmat", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:") or ": error:" in ln]
    assert len(errors) == 1, proc.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def tiny_generator(task: str = "csp", T: int = 12, elements=(8, 22, 38), hist=None, prompt: str = "none"):
    """A random-weight model wrapped like a loaded checkpoint (no data; the encoder is never loaded)."""
    from tgdmat.sample import CrystalGenerator

    cfg = preset("quick", task=task, prompt=prompt, denoiser=TINY, num_steps=T)
    cfg.sample = SampleConfig(num_steps=4, batch_size=8, seed=0)
    torch.manual_seed(0)
    model = TGDMat(cfg.model, text_dim=0)
    return CrystalGenerator(model, cfg, ["heat_ref"], hist or {5: 10}, torch.device("cpu"),
                            {"train_elements": list(elements)})


def tiny_train_config(**train_kw) -> Config:
    cfg = preset("quick", task="csp", prompt="none", denoiser=TINY)
    cfg.train = dataclasses.replace(cfg.train, epochs=2, batch_size=8, warmup_steps=1, eval_every=1, seed=0, **train_kw)
    return cfg


@pytest.fixture(scope="module")
def tiny_splits(perov_test):
    from tgdmat.data import Splits

    return Splits(train=perov_test.subset(range(8), split="train(val-holdout)"),
                  val=perov_test.subset(range(8, 12), split="holdout(val)"),
                  test=perov_test.subset(range(12, 16)), protocol="unit test", seed=0)


# ---------------------------------------------------------------------------------- 1. overwriting
def test_1_cli_no_resume_refuses_a_folder_that_holds_a_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    original = {name: os.urandom(64) for name in ("best.pt", "last.pt", "log.csv", "config.json")}
    for name, data in original.items():
        (run / name).write_bytes(data)
    proc = cli("train", "--no-resume", "--epochs", "1", "--out", str(run))
    assert_one_line_error(proc, str(run), "already holds a run", "--overwrite")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == original


def test_1_overwrite_replaces_and_resume_names_changed_fields(tiny_splits, tmp_path):
    from tgdmat.train import CheckpointError, RunExistsError, train

    cfg = tiny_train_config()
    train(cfg, tmp_path, splits=tiny_splits, device="cpu", progress=False, stop_after_epochs=1)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(RunExistsError, match="overwrite"):
        train(cfg, tmp_path, splits=tiny_splits, device="cpu", progress=False, resume=False)
    assert (tmp_path / "last.pt").read_bytes() == before
    changed = tiny_train_config()
    changed.train = dataclasses.replace(changed.train, epochs=3, lr=5e-3)
    with pytest.raises(CheckpointError) as err:
        train(changed, tmp_path, splits=tiny_splits, device="cpu", progress=False)
    assert "train.epochs: 2 → 3" in str(err.value) and "train.lr: 0.002 → 0.005" in str(err.value)
    result = train(changed, tmp_path, splits=tiny_splits, device="cpu", progress=False, overwrite=True)
    assert result.epochs_run == 3 and len(json.loads((tmp_path / "log.json").read_text())) == 3


# ---------------------------------------------------------------------------------- 2. NaN / negative
@pytest.mark.parametrize("option, value, field", [("--guidance", "nan", "guidance_scale"),
                                                  ("--step-lr", "nan", "step_lr"),
                                                  ("--guidance", "-5", "guidance_scale")])
def test_2_cli_refuses_non_finite_and_negative_settings(tmp_path, option, value, field):
    proc = cli("sample", "--checkpoint", str(CKPT), "--formula", "SrTiO3", option, value, "--out", str(tmp_path))
    assert_one_line_error(proc, f"SampleConfig.{field}")
    assert not list(tmp_path.glob("*.cif"))


FUZZ_VALUES = [math.nan, math.inf, -math.inf, 0, -1, 1e12, 2.5]


@pytest.mark.parametrize("field", ["num_steps", "step_lr", "guidance_scale", "lattice_eta", "batch_size", "seed"])
def test_2_fuzz_sample_config_never_yields_nan_or_another_chain_length(field):
    gen = tiny_generator(T=12)
    calls = []
    gen.model.denoiser.register_forward_hook(lambda *a: calls.append(1))
    for value in FUZZ_VALUES:
        try:
            sc = dataclasses.replace(gen.config.sample, **{field: value})
        except ConfigError as err:
            assert field in str(err)
            continue
        calls.clear()
        try:
            out = gen.sample_csp(["SrTiO3"], n_samples=2, progress=False, **dataclasses.asdict(sc))
        except ValueError as err:  # refused before or after the chain: it names the setting
            assert any(k in str(err) for k in ("num_steps", "non-finite", "step_lr")), str(err)
            continue
        steps = sc.num_steps if sc.num_steps is not None else gen.model.num_steps
        per_step = 2 if sc.corrector else 1
        guided = 1  # prompt-free model: guidance never doubles the evaluations
        batches = math.ceil(2 / sc.batch_size)
        assert len(calls) == steps * per_step * guided * batches, (field, value, len(calls))
        for s in (x for group in out for x in group):
            assert np.isfinite(s.lattice.matrix).all() and np.isfinite(s.frac_coords).all()


def test_2_train_config_values_are_checked():
    for field, value in [("lr", math.nan), ("epochs", 0), ("batch_size", 0), ("ema_decay", 1.0),
                         ("holdout_fraction", 0.0), ("grad_clip", -1.0), ("seed", 1.5), ("eval_every", 0)]:
        with pytest.raises(ConfigError, match=f"TrainConfig.{field}"):
            TrainConfig(**{field: value})


# ---------------------------------------------------------------------------------- 3. zero / negative counts
def test_3_zero_steps_and_counts_are_errors_not_defaults(tmp_path):
    proc = cli("sample", "--checkpoint", str(CKPT), "--formula", "SrTiO3", "--steps", "0", "--out", str(tmp_path))
    assert_one_line_error(proc, "SampleConfig.num_steps")
    for n in ("0", "-1"):
        proc = cli("sample", "--checkpoint", str(CKPT), "--formula", "SrTiO3", "--n", n, "--out", str(tmp_path))
        assert proc.returncode == 2 and "--n: expected a whole number >= 1" in proc.stderr
    assert not list(tmp_path.glob("*.cif"))
    gen = tiny_generator(task="gen")
    from tgdmat.sample import RequestError

    with pytest.raises(RequestError, match="at least one atom"):
        gen.generate(None, n=1, num_atoms=[0], progress=False)
    with pytest.raises(RequestError, match="n must be"):
        gen.generate(None, n=0, progress=False)
    with pytest.raises(ConfigError, match="SampleConfig.batch_size"):
        gen.generate(None, n=1, progress=False, batch_size=0)
    with pytest.raises(ValueError, match="num_steps"):
        gen.model.sample(torch.tensor([5]), None, num_steps=0)
    # None means every step of the chain, never a silent substitute for a falsy value
    calls = []
    gen.model.denoiser.register_forward_hook(lambda *a: calls.append(1))
    gen.model.sample(torch.tensor([5]), None, num_steps=None, corrector=False)
    assert len(calls) == gen.model.num_steps


# ---------------------------------------------------------------------------------- 4. contradictions
def test_4_cli_composition_contradicting_the_prompt(tmp_path):
    proc = cli("sample", "--checkpoint", str(CKPT), "--formula", "SrTiO3", "--prompt", SROTIO3_PROMPT,
               "--out", str(tmp_path))
    assert_one_line_error(proc, "SrTiO3", "BaZrO3")


def test_4_requests_checked_against_prompt_and_model():
    from tgdmat.sample import RequestError

    gen = tiny_generator(task="gen", elements=(8, 22, 38, 56, 40), hist={5: 30, 10: 2}, prompt="short")
    with pytest.raises(RequestError, match="7 atoms cannot hold the prompt's formula SrTiO3"):
        gen.check_request(7, "The chemical formula is SrTiO3.")
    assert gen.check_request(10, "The chemical formula is SrTiO3.") == []
    warnings_ = gen.check_request(500, "The chemical formula is SrTiO3.")
    assert any("outside the trained range 5–10" in w for w in warnings_)
    warnings_ = gen.check_request(5, "Ein blaues Material aus Italien.")
    assert any("no fact" in w for w in warnings_)
    pu = [94, 22, 8, 8, 8]
    with pytest.raises(RequestError, match="Pu never occurs in the perov_5 training split"):
        gen.check_request(pu)
    assert any("Pu never occurs" in w for w in gen.check_request(pu, allow_unseen_elements=True))
    with pytest.raises(RequestError, match=r"Og \(Z=118\) cannot be represented"):
        gen.check_request([118, 22, 8, 8, 8], allow_unseen_elements=True)
    with pytest.raises(RequestError, match="elements"):
        gen.check_request([38, 22, 8, 8, 8], "The elements are Ba, Zr, O.")


def test_4_unknown_element_and_unseen_element_cli(tmp_path):
    proc = cli("sample", "--checkpoint", str(CKPT), "--formula", "SrTiX3", "--out", str(tmp_path))
    assert_one_line_error(proc, "'X' is not a chemical element")
    proc = cli("sample", "--checkpoint", str(CKPT), "--formula", "PuTiO3", "--out", str(tmp_path))
    assert_one_line_error(proc, "Pu never occurs", "--allow-unseen-elements")


# ---------------------------------------------------------------------------------- 5. one-line errors
def test_5_corrupt_and_crafted_checkpoints(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(CKPT.read_bytes()[:50_000])
    proc = cli("sample", "--checkpoint", str(corrupt), "--formula", "SrTiO3", "--out", str(tmp_path))
    assert_one_line_error(proc, str(corrupt), "truncated, corrupt")
    assert "weights_only=False" not in proc.stderr

    class Crafted:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    crafted = tmp_path / "crafted.pt"
    torch.save({"format": 1, "config": "{}", "model": Crafted()}, crafted)
    proc = cli("sample", "--checkpoint", str(crafted), "--formula", "SrTiO3", "--out", str(tmp_path))
    assert_one_line_error(proc, str(crafted), "refused without running them")
    assert not (tmp_path / "pwned").exists() and "weights_only" not in proc.stderr


def test_5_prompt_error_and_bad_reference_csv(tmp_path):
    proc = cli("sample", "--checkpoint", str(CKPT), "--formula", "SrTiO3", "--prompt",
               "The spacegroup number is 999.", "--out", str(tmp_path))
    assert_one_line_error(proc, "999")
    bad = tmp_path / "ref.csv"
    bad.write_text(",material_id,cif,heat_ref\n0,x-1,not a cif,0.1\n")
    gen = tmp_path / "gen.json"
    gen.write_text(json.dumps([None]))
    proc = cli("evaluate", str(gen), "--dataset", "perov_5", "--reference", str(bad), "--predictor", "none",
               "--quiet", "--workers", "1")
    assert_one_line_error(proc, str(bad))


def test_5_debug_shows_the_traceback(tmp_path):
    proc = cli("sample", "--checkpoint", str(tmp_path / "missing.pt"), "--formula", "SrTiO3", "--out",
               str(tmp_path), "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_5_configs_migrate_and_unknown_fields_are_named():
    cfg = preset("quick")
    old = json.loads(cfg.to_json())
    del old["sample"]["lattice_eta"]  # a field added after a checkpoint was written
    assert Config.from_json(old).sample.lattice_eta == 1.0
    old["train"]["warp_drive"] = 9
    with pytest.raises(ConfigError, match="warp_drive"):
        Config.from_json(old)


def test_5_corrupt_property_model_cache_is_rebuilt():
    from tgdmat.predictors import convert_checkpoint, load_cdvae_predictor

    path = convert_checkpoint("perov_5")
    path.write_bytes(b"\xff" * 64)
    with pytest.warns(UserWarning, match="rebuilt"):
        predictor = load_cdvae_predictor("perov_5")
    assert predictor is not None and path.stat().st_size > 1000


# ---------------------------------------------------------------------------------- 6. --threads everywhere
def test_6_every_verb_takes_threads():
    from tgdmat.cli.main import build_parser
    from tgdmat.cli.evaluate import build_parser as eval_parser

    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    for verb in ("train", "sample", "csp"):
        assert "--threads" in verbs[verb]._option_string_actions, verb
    assert "--threads" in eval_parser()._option_string_actions
    assert "--skip-bad" in eval_parser()._option_string_actions


def test_data_root_option_points_every_verb_at_a_folder_and_refuses_a_wrong_one(tmp_path, monkeypatch, capsys):
    from tgdmat.cli.main import _take_data_root, main
    from tgdmat.paths import data_dir

    # setenv first, so that teardown restores the state before this test (delenv of an absent
    # variable records nothing, and the CLI below sets TGDMAT_DATA itself)
    monkeypatch.setenv("TGDMAT_DATA", "set-by-this-test")
    monkeypatch.delenv("TGDMAT_DATA")
    root = tmp_path / "mydata"
    (root / "perov_5").mkdir(parents=True)
    assert _take_data_root(["--data-root", str(root), "csp", "--help"]) == ["csp", "--help"]
    assert data_dir() == root.resolve()
    monkeypatch.delenv("TGDMAT_DATA")
    assert _take_data_root([f"--data-root={root}", "train"]) == ["train"] and data_dir() == root.resolve()
    monkeypatch.delenv("TGDMAT_DATA")
    for bad, words in [(tmp_path / "missing", "no such folder"), (tmp_path, "holds none of")]:
        assert main(["--data-root", str(bad), "csp", "--checkpoint", "x.pt"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --data-root") and words in err and len(err.splitlines()) == 1
    assert "TGDMAT_DATA" not in os.environ


def test_time_spacing_changes_the_grid_not_the_number_of_evaluations(tmp_path):
    gen = tiny_generator(T=12)
    calls = []
    gen.model.denoiser.register_forward_hook(lambda *a: calls.append(1))
    out = {}
    for spacing in ("uniform", "quadratic"):
        calls.clear()
        s = gen.sample_csp(["SrTiO3"], n_samples=1, progress=False, num_steps=5, time_spacing=spacing, seed=3)[0][0]
        out[spacing] = (len(calls), s)
    assert out["uniform"][0] == out["quadratic"][0] == 5 * 2  # predictor + corrector per step
    assert not np.allclose(out["uniform"][1].frac_coords, out["quadratic"][1].frac_coords)
    # every step: the two spacings are the same chain, bit for bit
    a = gen.sample_csp(["SrTiO3"], n_samples=1, progress=False, num_steps=12, time_spacing="uniform", seed=3)[0][0]
    b = gen.sample_csp(["SrTiO3"], n_samples=1, progress=False, num_steps=12, time_spacing="quadratic", seed=3)[0][0]
    assert np.array_equal(a.frac_coords, b.frac_coords) and np.array_equal(a.lattice.matrix, b.lattice.matrix)
    proc = cli("sample", "--checkpoint", str(CKPT), "--formula", "SrTiO3", "--time-spacing", "log", "--out", str(tmp_path))
    assert proc.returncode == 2 and "--time-spacing" in proc.stderr


def test_4b_many_request_warnings_are_counted_not_flooded():
    """A benchmark over thousands of prompts shows a few warnings and counts the rest by kind."""
    import warnings

    gen = tiny_generator(task="gen", elements=(8, 22, 38, 56, 40), hist={5: 30, 10: 2}, prompt="short")
    msgs = [f"prompt {i}: no fact (formula, ...) was understood in the prompt 'x{i}'" for i in range(12)]
    msgs += [f"prompt {i}: 500 atoms is outside the trained range 5–10 atoms per cell" for i in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gen._warn(msgs + msgs[:4])  # repeats are warned once
    texts = [str(w.message) for w in caught]
    assert texts[:gen.WARN_SHOWN] == msgs[:gen.WARN_SHOWN] and len(texts) == gen.WARN_SHOWN + 1
    assert texts[-1] == ("... and 10 more request warnings like these: 7 × prompt with no fact understood; "
                         "3 × atom count outside the trained range")


def test_4c_text_only_models_do_not_call_unread_words_ignored():
    """A text-only model reads every word through its encoder; only a text+facts model ignores unread spans."""
    gen = tiny_generator(task="gen", elements=(8, 22, 38, 56, 40), hist={5: 30, 10: 2}, prompt="short")
    prompt = "The chemical formula is SrTiO3. It should be cheap."
    assert gen.config.model.conditioning == "text"
    assert not any("ignored" in w for w in gen.check_request(5, prompt))
    gen.config.model.conditioning = "text+facts"
    assert any("not understood (ignored): 'It should be cheap.'" in w for w in gen.check_request(5, prompt))
    # a model trained on Robocrystallographer descriptions: their site sentences are never the fact reader's
    gen.config.model.prompt = "long"
    description = ("SrTiO3 is (Cubic) Perovskite structured and crystallizes in the cubic Pm-3m space group. "
                   "Sr(1) is bonded to twelve equivalent O(1) atoms to form SrO12 cuboctahedra.")
    assert not any("ignored" in w for w in gen.check_request(5, description))


def test_4d_a_model_trained_without_a_fact_says_so_and_does_not_use_it():
    """``ModelConfig.never_stated``: the fact's embedding was never trained, so a prompt stating it is warned
    about and the fact is left out of the conditioning."""
    gen = tiny_generator(task="gen", elements=(8, 22, 38, 56, 40), hist={5: 30, 10: 2}, prompt="short")
    prompt = "The chemical formula is SrTiO3. The heat_ref is 0.5."
    assert not any("never stated" in w for w in gen.check_request(5, prompt))
    gen.config.model.never_stated = ("heat_ref",)
    warned = [w for w in gen.check_request(5, prompt) if "never stated" in w]
    assert len(warned) == 1 and "heat_ref never stated: not used" in warned[0]
    facts = gen.usable_facts(gen.read(prompt).facts)
    assert "heat_ref" not in facts.properties and facts.formula == "SrTiO3"
    assert not any("never stated" in w for w in gen.check_request(5, "The chemical formula is SrTiO3."))
