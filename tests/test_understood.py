"""Prompts as people write them reach the model, and the user is told what was understood (issue 16)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CKPT = ROOT / "results" / "checkpoints" / "perov_5_csp_long_text_facts.pt"
FREE = "A cubic perovskite SrTiO3 with formation energy 500 meV/atom in space group Pm-3m. Make it pretty."


def test_free_written_facts_condition_the_model_and_are_recorded():
    import tgdmat

    gen = tgdmat.from_pretrained(CKPT, device="cpu")
    templated = ("Below is a description of a bulk material. The chemical formula is SrTiO3. The elements are Sr, "
                 "Ti, O. The formation energy per atom is 0.5. The spacegroup number is 221. The crystal system is "
                 "cubic. Generate the material:")
    free, tmpl = gen.read(FREE).facts, gen.read(templated).facts
    assert (free.formula, free.space_group, free.crystal_system, free.properties) == \
        (tmpl.formula, tmpl.space_group, tmpl.crystal_system, tmpl.properties) == ("SrTiO3", 221, "cubic", {"heat_ref": 0.5})
    # the facts half of the conditioning vector is identical for the two wordings
    text_dim = gen.model.text_dim
    c_free, c_tmpl = gen.condition([FREE], 1), gen.condition([templated], 1)
    assert torch.allclose(c_free[:, text_dim:], c_tmpl[:, text_dim:])
    out = gen.sample_csp(["SrTiO3"], prompts=[FREE], n_samples=1, progress=False, num_steps=5)[0][0]
    assert out.properties["understood"] == {"formula": "SrTiO3", "crystal_system": "cubic", "space_group": 221,
                                            "heat_ref": 0.5}
    assert out.properties["not_understood"] == ["Make it pretty."]


def test_cli_says_what_it_understood(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "tgdmat", "sample", "--checkpoint", str(CKPT), "--formula", "SrTiO3",
                           "--prompt", FREE, "--steps", "5", "--threads", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "'formation energy 500 meV/atom' -> heat_ref = 0.5 eV/atom (written in meV/atom)" in proc.stdout
    assert "not understood:" in proc.stdout and "'Make it pretty.'" in proc.stdout
    assert "warning:" in proc.stderr and "not understood (ignored)" in proc.stderr
    record = json.loads((tmp_path / "samples.json").read_text())[0]
    assert record["understood"]["heat_ref"] == 0.5 and record["not_understood"] == ["Make it pretty."]
    proc = subprocess.run([sys.executable, "-m", "tgdmat", "sample", "--checkpoint", str(CKPT), "--formula", "SrTiO3",
                           "--prompt", "Un matériau bleu.", "--steps", "5", "--threads", "1", "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0 and "understood: nothing" in proc.stdout and "no fact" in proc.stderr
