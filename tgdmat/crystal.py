"""Crystals as model tensors: pymatgen ``Structure`` ↔ torch-geometric ``Data`` and batches.

A crystal of N atoms is the triple (A, F, L) of TGDMat/DiffCSP:

* ``atom_types`` A: ``[N]`` int64 atomic numbers Z (the model's class index is Z - 1);
* ``frac_coords`` F: ``[N, 3]`` float32 fractional coordinates in [0, 1);
* ``lattice`` L: ``[1, 3, 3]`` float32, rows are the lattice vectors (Cartesian x = F L, Å).

Each ``Data`` also carries ``lattice_params`` ``[1, 6]`` (a, b, c in Å; α, β, γ in degrees),
``num_atoms`` ``[1]``, properties ``y`` ``[1, P]`` and its position in its dataset ``crystal_id`` ``[1]`` (not named *index*: torch-geometric would offset it while batching). Batching
(:func:`collate`) concatenates atoms and adds ``batch`` ``[ΣN]`` — the crystal each atom belongs
to — which is all the denoiser needs to build the fully connected graph inside each cell
(Σ Nᵢ² edges; see :func:`tgdmat.denoiser.fully_connected_edges`). Periodic images never need
explicit edges: the denoiser sees fractional differences through periodic Fourier features.
"""
from __future__ import annotations

import numpy as np
import torch


def wrap_frac(frac: np.ndarray) -> np.ndarray:
    """Wrap fractional coordinates into [0, 1) (``np.mod`` can return exactly 1.0 for -1e-17)."""
    out = np.mod(np.asarray(frac, dtype=np.float64), 1.0)
    out[out >= 1.0] -= 1.0
    return out


def canonicalise(structure, niggli: bool = True):
    """The canonical form of a crystal, as CDVAE/DiffCSP/TGDMat build it (``build_crystal``).

    Niggli reduction (unless ``niggli=False``), the lattice rebuilt from its parameters
    ``(a, b, c, α, β, γ)`` (so its orientation is the standard one), bare elements (oxidation
    states dropped) and fractional coordinates wrapped into [0, 1). Raises ``ValueError`` for a
    disordered structure.
    """
    from pymatgen.core import Lattice, Structure

    if not structure.is_ordered:
        raise ValueError(f"{structure.composition.reduced_formula}: disordered structures are not supported")
    reduced = structure.get_reduced_structure(reduction_algo="niggli") if niggli else structure
    lattice = Lattice.from_parameters(*reduced.lattice.parameters)
    numbers = [site.specie.Z for site in reduced]
    return Structure(lattice, numbers, wrap_frac(reduced.frac_coords), coords_are_cartesian=False)


def make_data(atom_types, frac_coords, lattice, properties=None, crystal_id: int = -1):
    """Build a torch-geometric ``Data`` from arrays (shapes in the module docstring)."""
    from torch_geometric.data import Data

    z = torch.tensor(np.asarray(atom_types), dtype=torch.long)
    frac = torch.tensor(np.asarray(frac_coords), dtype=torch.float32).reshape(-1, 3)
    lat = torch.tensor(np.asarray(lattice), dtype=torch.float32).reshape(1, 3, 3)
    if z.ndim != 1 or z.shape[0] != frac.shape[0]:
        raise ValueError(f"atom_types {tuple(z.shape)} and frac_coords {tuple(frac.shape)} disagree")
    props = torch.zeros(1, 0) if properties is None else torch.as_tensor(np.asarray(properties), dtype=torch.float32).reshape(1, -1)
    return Data(
        atom_types=z,
        frac_coords=frac,
        lattice=lat,
        lattice_params=lattice_params(lat),
        num_atoms=torch.tensor([z.shape[0]], dtype=torch.long),
        y=props,
        crystal_id=torch.tensor([crystal_id], dtype=torch.long),
        num_nodes=z.shape[0],
    )


def structure_to_data(structure, properties=None, crystal_id: int = -1, canonical: bool = True):
    """pymatgen ``Structure`` → ``Data``; canonicalised first (see :func:`canonicalise`)."""
    if canonical:
        structure = canonicalise(structure)
    z = np.array([site.specie.Z for site in structure], dtype=np.int64)
    return make_data(z, structure.frac_coords, structure.lattice.matrix, properties, crystal_id)


def arrays_to_structure(atom_types, frac_coords, lattice):
    """Arrays (Z ``[N]``, F ``[N,3]``, L ``[3,3]``) → pymatgen ``Structure``."""
    from pymatgen.core import Lattice, Structure

    def _np(x):
        return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

    z = _np(atom_types).astype(int).reshape(-1)
    lat = Lattice(_np(lattice).astype(np.float64).reshape(3, 3))
    return Structure(lat, z.tolist(), _np(frac_coords).astype(np.float64).reshape(-1, 3), coords_are_cartesian=False)


def data_to_structure(data):
    """``Data`` (one crystal) → pymatgen ``Structure``."""
    return arrays_to_structure(data.atom_types, data.frac_coords, data.lattice)


def arrays_to_structures(atom_types, frac_coords, lattice, num_atoms) -> list:
    """Concatenated arrays of ``B`` crystals → ``B`` Structures.

    ``atom_types`` Z ``[N]``, ``frac_coords`` ``[N, 3]``, ``lattice`` ``[B, 3, 3]``, ``num_atoms`` ``[B]``
    (atoms of crystal ``b`` are the ``num_atoms[b]`` rows after those of crystals ``< b``).
    """
    counts = [int(k) for k in (num_atoms.tolist() if hasattr(num_atoms, "tolist") else num_atoms)]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return [
        arrays_to_structure(atom_types[offsets[i] : offsets[i + 1]], frac_coords[offsets[i] : offsets[i + 1]], lattice[i])
        for i in range(len(counts))
    ]


def batch_to_structures(batch) -> list:
    """A ``Batch`` (or anything with ``atom_types``, ``frac_coords``, ``lattice``, ``num_atoms``) → Structures."""
    return arrays_to_structures(batch.atom_types, batch.frac_coords, batch.lattice, batch.num_atoms)


def collate(data_list):
    """Batch ``Data`` objects: atoms concatenated, ``batch`` index added, lattices stacked ``[B,3,3]``."""
    from torch_geometric.data import Batch

    return Batch.from_data_list(list(data_list))


def lattice_params(lattice: torch.Tensor) -> torch.Tensor:
    """Lattice matrices ``[B,3,3]`` (rows = vectors) → ``[B,6]`` (a, b, c in Å; α, β, γ in degrees).

    α = ∠(b, c), β = ∠(a, c), γ = ∠(a, b).
    """
    lattice = lattice.reshape(-1, 3, 3)
    lengths = lattice.norm(dim=-1)
    a, b, c = lattice[:, 0], lattice[:, 1], lattice[:, 2]

    def angle(u, v, nu, nv):
        cos = (u * v).sum(-1) / (nu * nv)
        return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))

    angles = torch.stack(
        [
            angle(b, c, lengths[:, 1], lengths[:, 2]),
            angle(a, c, lengths[:, 0], lengths[:, 2]),
            angle(a, b, lengths[:, 0], lengths[:, 1]),
        ],
        dim=-1,
    )
    return torch.cat([lengths, angles], dim=-1)


def lattice_from_params(params: torch.Tensor) -> torch.Tensor:
    """``[B,6]`` (a, b, c, α, β, γ in degrees) → ``[B,3,3]`` in pymatgen's orientation (c along z)."""
    params = params.reshape(-1, 6)
    a, b, c = params[:, 0], params[:, 1], params[:, 2]
    al, be, ga = (torch.deg2rad(params[:, k]) for k in (3, 4, 5))
    cos_al, cos_be, cos_ga = torch.cos(al), torch.cos(be), torch.cos(ga)
    sin_al, sin_be = torch.sin(al), torch.sin(be)
    val = ((cos_al * cos_be - cos_ga) / (sin_al * sin_be)).clamp(-1.0, 1.0)
    gamma_star = torch.arccos(val)
    zeros = torch.zeros_like(a)
    va = torch.stack([a * sin_be, zeros, a * cos_be], dim=-1)
    vb = torch.stack([-b * sin_al * torch.cos(gamma_star), b * sin_al * torch.sin(gamma_star), b * cos_al], dim=-1)
    vc = torch.stack([zeros, zeros, c], dim=-1)
    return torch.stack([va, vb, vc], dim=1)
