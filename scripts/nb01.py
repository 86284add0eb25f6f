import sys; sys.path.insert(0, "scripts")
from nbtools import write
write("notebooks/01_data.ipynb", [
("md", r"""
# 1. Crystal data

A crystal in TGDMat is a triple $\mathcal{M} = (A, F, L)$: atom types $A \in \{1..100\}^N$,
fractional coordinates $F \in [0,1)^{N\times 3}$ and a lattice $L \in \mathbb{R}^{3\times3}$ whose rows
are the cell vectors, so that Cartesian positions are $X = F L$. This chapter loads the benchmark
data sets of CDVAE {cite}`xie2022cdvae` — Perov-5 {cite}`castelli2012perovskites` and Carbon-24
{cite}`pickard2020carbon` — into that form.

Every structure is canonicalised as in the literature: Niggli-reduced, its lattice rebuilt from the
six parameters $(a, b, c, \alpha, \beta, \gamma)$ (a fixed orientation), coordinates wrapped into
$[0, 1)$. The parsed arrays are cached by the file's sha256, so the second load is instant.
"""),
("code", r"""
import time
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import torch
import tgdmat
from tgdmat.profile import profile

SEED = 0
torch.manual_seed(SEED); np.random.seed(SEED)
print("profile:", profile())
"""),
("md", r"""
## Splits and protocol

The official training splits are not shipped, so we **train on the official `val` split minus a
seeded 10 % held-out slice** (for model selection) and **report on the official `test` split**.
"""),
("code", r"""
splits = {}
rows = []
for name in ("perov_5", "carbon_24"):
    t0 = time.perf_counter()
    s = tgdmat.load_splits(name, holdout_fraction=0.1, seed=SEED, progress=False)
    splits[name] = s
    rows.append({"data set": name, "train (val − hold-out)": len(s.train), "hold-out": len(s.val),
                 "test": len(s.test), "atoms per cell": f"{s.test.num_atoms.min()}–{s.test.num_atoms.max()}",
                 "property": list(s.test.properties)[0], "load time (s)": round(time.perf_counter() - t0, 2)})
pd.DataFrame(rows).set_index("data set")
"""),
("md", r"""
## What the data look like

Cell sizes, atom counts and the property each data set is conditioned on (`heat_ref`, the heat of
formation per atom, for Perov-5; `energy_per_atom` for Carbon-24), on the training split.
"""),
("code", r"""
fig, axes = plt.subplots(2, 3, figsize=(11, 5.5))
for row, name in enumerate(splits):
    train = splits[name].train
    prop = list(train.properties)[0]
    for k, label in enumerate("abc"):
        axes[row, 0].hist(train.lattice_params[:, k], bins=40, histtype="step", label=label)
    axes[row, 0].set(xlabel="lattice length (Å)", ylabel="crystals", title=f"{name}: cell lengths")
    axes[row, 0].legend()
    axes[row, 1].hist(train.num_atoms, bins=np.arange(0.5, 25.5, 1.0), color="C2")
    axes[row, 1].set(xlabel="atoms per cell", ylabel="crystals", title=f"{name}: atoms per cell")
    axes[row, 2].hist(train.properties[prop], bins=40, color="C3")
    axes[row, 2].set(xlabel=f"{prop} (eV/atom)", ylabel="crystals", title=f"{name}: property")
fig.tight_layout()
"""),
("md", r"""
## One crystal, as the model sees it

A data set indexes to records with a pymatgen `Structure`; batches are torch-geometric objects whose
`batch` vector says which crystal each atom belongs to — all the denoiser needs to build the fully
connected graph inside each cell.
"""),
("code", r"""
test = splits["perov_5"].test
rec = test[0]
print(rec.material_id, rec.structure.composition.reduced_formula, rec.properties)
print(rec.structure.lattice)
batch = test.batch(range(4))
{k: tuple(v.shape) for k, v in batch.to_dict().items() if torch.is_tensor(v)}
"""),
("code", r"""
from ase.visualize.plot import plot_atoms
from pymatgen.io.ase import AseAtomsAdaptor

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (name, i) in zip(axes, [("perov_5", 0), ("carbon_24", 0)]):
    s = splits[name].test[i].structure
    plot_atoms(AseAtomsAdaptor.get_atoms(s * (2, 2, 1)), ax, radii=0.4, rotation="10x,20y,0z")
    ax.set_title(f"{name}: {s.composition.reduced_formula}, {len(s)} atoms (2×2×1 cells)")
    ax.set_xlabel("x (Å)"); ax.set_ylabel("y (Å)")
fig.tight_layout()
"""),
])
