"""The periodic DimeNet++ forward pass of CDVAE's regressors, in plain PyTorch.

**Network.** torch-geometric's DimeNet++ blocks (``BesselBasisLayer``, ``EmbeddingBlock``,
``InteractionPPBlock``, ``OutputPPBlock``) with the checkpoint's hyper-parameters (128 hidden,
4 blocks, int 64, basis 8, out 256, 7 spherical, 6 radial, cutoff 7 Å, envelope exponent 5) and
three changes, none of which alters the function CDVAE trained: the output blocks' ``lin_up`` gets
the bias CDVAE's copy had (so every ``encoder.*`` key loads strictly); the smooth-cutoff envelope
``u(x) = 1/x + a x^{p−1} + b x^p + c x^{p+1}`` (x = d/c) is not zeroed past the cutoff, as in the
torch-geometric 2.0.1 CDVAE trained with; the spherical basis is :class:`SphericalBasis`, the same
functions evaluated in float64 without sympy (torch-geometric's sympy construction takes about a
minute here; the predictions differ by < 4e-5 eV/atom). The prediction is the per-crystal mean of
the per-atom outputs rescaled by the scaler: ``y = σ · mean_i P_i + μ``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from tgdmat.predictors.graphs import CrystalGraph

MAX_Z = 94  # DimeNet's embedding has 95 rows, indexed by atomic number


def triplets(edge_index: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of edges ``(k→j, j→i)`` sharing atom ``j`` with ``k ≠ i`` (by index, as CDVAE).

    Args:
        edge_index: ``[2, E]``, row 0 source, row 1 target.
        num_nodes: ``N``.

    Returns:
        ``idx_kj, idx_ji``: ``[T]`` edge indices of the incoming edge ``k→j`` and of ``j→i``.
    """
    src, dst = edge_index
    num_edges = src.numel()
    # Edges grouped by target: the edges arriving at atom j are order[start[j] : start[j] + count[j]].
    order = torch.argsort(dst, stable=True)
    count = torch.bincount(dst, minlength=num_nodes)
    start = torch.cumsum(count, 0) - count
    per_edge = count[src]  # edge j→i pairs with every edge arriving at j
    idx_ji = torch.repeat_interleave(torch.arange(num_edges, device=src.device), per_edge)
    first = torch.cumsum(per_edge, 0) - per_edge
    local = torch.arange(idx_ji.numel(), device=src.device) - first[idx_ji]
    idx_kj = order[start[src[idx_ji]] + local]
    keep = src[idx_kj] != dst[idx_ji]
    return idx_kj[keep], idx_ji[keep]


class _Envelope(torch.nn.Module):
    """Smooth cutoff ``u(x) = 1/x + a x^{p-1} + b x^p + c x^{p+1}`` (p = exponent + 1), not zeroed past 1.

    torch-geometric 2.0.1 (the version CDVAE trained with) applied it without the ``x < 1`` mask
    that later versions add; CrystalNN bonds may be longer than the 7 Å cutoff.
    """

    def __init__(self, exponent: int) -> None:
        super().__init__()
        self.p = exponent + 1
        self.a = -(self.p + 1) * (self.p + 2) / 2
        self.b = self.p * (self.p + 2)
        self.c = -self.p * (self.p + 1) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        return 1.0 / x + self.a * x.pow(p - 1) + self.b * x.pow(p) + self.c * x.pow(p + 1)


def spherical_bessel(num_orders: int, x: torch.Tensor) -> torch.Tensor:
    """Spherical Bessel functions ``j_0 … j_{L-1}`` at ``x > 0``, ``[..., L]`` (use float64).

    For ``x ≥ 2`` the upward recurrence ``j_0 = sin x / x``, ``j_1 = sin x / x² − cos x / x``,
    ``j_{l+1} = (2l+1)/x · j_l − j_{l−1}``; below, where it loses digits, the power series
    ``j_l(x) = x^l / (2l+1)!! · Σ_k (−x²/2)^k / (k! (2l+3)(2l+5)…(2l+2k+1))`` (20 terms).
    """
    s, c = torch.sin(x), torch.cos(x)
    rec = [s / x, s / x**2 - c / x]
    for l in range(1, num_orders - 1):
        rec.append((2 * l + 1) / x * rec[l] - rec[l - 1])
    small = x < 2.0
    xs = torch.where(small, x, torch.ones_like(x))
    out = []
    for l in range(num_orders):
        term = xs**l / math.prod(range(1, 2 * l + 2, 2))
        total = term
        for k in range(1, 20):
            term = term * (-(xs**2) / 2) / (k * (2 * l + 2 * k + 1))
            total = total + term
        out.append(torch.where(small, total, rec[l]))
    return torch.stack(out, dim=-1)


def _spherical_bessel_zeros(num_orders: int, num_roots: int) -> np.ndarray:
    """``z_{l,n}``: the first ``num_roots`` positive zeros of ``j_l``, ``[L, K]`` (rounded to float32
    like torch-geometric's ``Jn_zeros``). Zeros of ``j_l`` interlace those of ``j_{l-1}``."""
    from scipy.optimize import brentq
    from scipy.special import spherical_jn

    zeros = np.zeros((num_orders, num_roots))
    points = np.arange(1, num_roots + num_orders) * np.pi  # zeros of j_0
    zeros[0] = points[:num_roots]
    for l in range(1, num_orders):
        points = np.array([brentq(lambda r: spherical_jn(l, r), points[m], points[m + 1])
                           for m in range(len(points) - 1)])
        zeros[l] = points[:num_roots]
    return zeros.astype(np.float32).astype(np.float64)


class SphericalBasis(torch.nn.Module):
    """DimeNet's 2-D spherical Fourier-Bessel basis of a triplet (plain torch, no sympy).

    For edge length ``d`` (of ``k→j``) and triplet angle ``α``:

        a_{l,n}(d, α) = u(d/c) · sqrt(2)/|j_{l+1}(z_{l,n})| · j_l(z_{l,n} d/c) · sqrt((2l+1)/4π) P_l(cos α)

    with ``u`` the envelope, ``z_{l,n}`` the zeros of ``j_l`` and ``P_l`` the Legendre polynomials;
    flattened as index ``l·K + n`` — the same numbers as torch-geometric's ``SphericalBasisLayer``,
    which builds them with sympy (tens of seconds per model here).

    Returns ``[T, L·K]``.
    """

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float, envelope_exponent: int) -> None:
        super().__init__()
        from scipy.special import spherical_jn

        self.num_spherical, self.num_radial, self.cutoff = num_spherical, num_radial, cutoff
        self.envelope = _Envelope(envelope_exponent)
        zeros = _spherical_bessel_zeros(num_spherical, num_radial)
        orders = np.arange(num_spherical)[:, None]
        norm = np.sqrt(2.0) / np.abs(spherical_jn(orders + 1, zeros))
        prefactor = np.sqrt((2 * np.arange(num_spherical) + 1) / (4 * np.pi))
        # from_numpy stays on the CPU even inside a ``torch.device("meta")`` context (see the loader)
        self.register_buffer("zeros", torch.from_numpy(zeros), persistent=False)
        self.register_buffer("norm", torch.from_numpy(norm), persistent=False)
        self.register_buffer("prefactor", torch.from_numpy(prefactor), persistent=False)

    def forward(self, dist: torch.Tensor, angle: torch.Tensor, idx_kj: torch.Tensor) -> torch.Tensor:
        L, K = self.num_spherical, self.num_radial
        x = dist.double() / self.cutoff  # [E]
        j = spherical_bessel(L, x[:, None, None] * self.zeros)  # [E, L, K, L]: all orders at each z_{l,n}
        j = torch.diagonal(j, dim1=1, dim2=3).transpose(1, 2)  # [E, L, K]: order l at z_{l,n}
        rbf = self.envelope(x)[:, None, None] * self.norm * j
        cos = torch.cos(angle.double())
        legendre = [torch.ones_like(cos), cos]
        for l in range(1, L - 1):
            legendre.append(((2 * l + 1) * cos * legendre[l] - l * legendre[l - 1]) / (l + 1))
        cbf = torch.stack(legendre[:L], dim=-1) * self.prefactor  # [T, L]
        return (rbf[idx_kj] * cbf[:, :, None]).reshape(-1, L * K).to(dist.dtype)


class PeriodicDimeNetPlusPlus(torch.nn.Module):
    """DimeNet++ (Gasteiger et al. 2020) on periodic bond graphs, as CDVAE's ``DimeNetPlusPlusWrap``.

    Built from torch-geometric's DimeNet++ blocks (``BesselBasisLayer``, ``EmbeddingBlock``,
    ``InteractionPPBlock``, ``OutputPPBlock``) with CDVAE's bias on the output blocks' ``lin_up``,
    the unmasked envelope of torch-geometric 2.0.1 and :class:`SphericalBasis`; its state-dict
    keys are those of ``torch_geometric.nn.models.DimeNetPlusPlus`` (plus the ``lin_up`` biases),
    so CDVAE's ``encoder.*`` tensors load strictly.
    """

    def __init__(self, encoder: dict) -> None:
        super().__init__()
        from torch_geometric.nn.models.dimenet import (
            BesselBasisLayer,
            EmbeddingBlock,
            InteractionPPBlock,
            OutputPPBlock,
        )
        from torch_geometric.nn.resolver import activation_resolver

        act = activation_resolver("swish")
        h, L, K = encoder["hidden_channels"], encoder["num_spherical"], encoder["num_radial"]
        self.cutoff = float(encoder["cutoff"])
        self.rbf = BesselBasisLayer(K, self.cutoff, encoder["envelope_exponent"])
        self.rbf.envelope = _Envelope(encoder["envelope_exponent"])
        self.sbf = SphericalBasis(L, K, self.cutoff, encoder["envelope_exponent"])
        self.emb = EmbeddingBlock(K, h, act)
        self.output_blocks = torch.nn.ModuleList()
        for _ in range(encoder["num_blocks"] + 1):
            block = OutputPPBlock(K, h, encoder["out_emb_channels"], encoder["num_targets"],
                                  encoder["num_output_layers"], act)
            block.lin_up = torch.nn.Linear(h, encoder["out_emb_channels"], bias=True)
            self.output_blocks.append(block)
        self.interaction_blocks = torch.nn.ModuleList(
            InteractionPPBlock(h, encoder["int_emb_size"], encoder["basis_emb_size"], L, K,
                               encoder["num_before_skip"], encoder["num_after_skip"], act)
            for _ in range(encoder["num_blocks"])
        )

    def forward(self, atom_types: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor,
                batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """Per-crystal mean of the per-atom outputs ``P_i`` (standardised units).

        Args:
            atom_types: ``[N]`` atomic numbers.
            edge_index: ``[2, E]`` (source j, target i).
            edge_vec: ``[E, 3]`` ``r_ji = x_j + n·L − x_i`` (Å).
            batch: ``[N]`` crystal index of each atom; num_graphs: ``B``.

        Returns:
            ``[B, num_targets]``.
        """
        num_nodes = atom_types.numel()
        j, i = edge_index
        idx_kj, idx_ji = triplets(edge_index, num_nodes)
        dist = edge_vec.norm(dim=-1)
        r_ji, r_kj = edge_vec[idx_ji], edge_vec[idx_kj]
        angle = torch.atan2(torch.linalg.cross(r_ji, r_kj).norm(dim=-1), (r_ji * r_kj).sum(dim=-1))

        rbf = self.rbf(dist)
        sbf = self.sbf(dist, angle, idx_kj)
        x = self.emb(atom_types, rbf, i, j)
        P = self.output_blocks[0](x, rbf, i, num_nodes=num_nodes)
        for interaction, output in zip(self.interaction_blocks, self.output_blocks[1:]):
            x = interaction(x, rbf, sbf, idx_kj, idx_ji)
            P = P + output(x, rbf, i, num_nodes=num_nodes)
        total = torch.zeros(num_graphs, P.shape[1], dtype=P.dtype, device=P.device).index_add_(0, batch, P)
        counts = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(P.dtype)
        return total / counts[:, None]


def collate_graphs(graphs: Sequence[CrystalGraph], device: torch.device):
    """Concatenate graphs; edge vectors computed in float64, then cast to float32."""
    n_atoms = torch.tensor([g.num_atoms for g in graphs])
    n_edges = torch.tensor([g.num_edges for g in graphs])
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    lattice = torch.from_numpy(np.stack([g.lattice for g in graphs]))  # [B, 3, 3]
    frac = torch.from_numpy(np.concatenate([g.frac_coords for g in graphs]))
    batch = torch.repeat_interleave(torch.arange(len(graphs)), n_atoms)
    pos = torch.einsum("ni,nij->nj", frac, lattice[batch])
    edge_index = torch.from_numpy(np.concatenate([g.edge_index for g in graphs], axis=1))
    edge_index = edge_index + torch.repeat_interleave(offsets, n_edges)[None, :]
    images = torch.from_numpy(np.concatenate([g.to_jimages for g in graphs])).to(torch.float64)
    edge_graph = torch.repeat_interleave(torch.arange(len(graphs)), n_edges)
    edge_vec = pos[edge_index[0]] + torch.einsum("ei,eij->ej", images, lattice[edge_graph]) - pos[edge_index[1]]
    atom_types = torch.from_numpy(np.concatenate([g.atom_types for g in graphs]))
    return (atom_types.to(device), edge_index.to(device), edge_vec.to(torch.float32).to(device),
            batch.to(device), len(graphs))
