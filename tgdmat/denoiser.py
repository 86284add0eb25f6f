"""The periodic-E(3)-equivariant denoiser: a CSPNet-style message-passing network with text.

One network serves every diffusion process of TGDMat. Given a noisy crystal
``M_t = (L_t, F_t, A_t)`` at diffusion time ``t`` and a conditioning vector ``c`` (a text
embedding), it predicts

* ``lattice_eps``  ``ε̂_L``        ``[B, 3, 3]`` — the Gaussian noise added to the lattice (DDPM);
* ``frac_score``   ``ŝ_F``        ``[N, 3]``    — the wrapped-normal score of the fractional
  coordinates (already divided by ``sqrt(σ̄_t)`` in DiffCSP's training target);
* ``type_logits``  ``p̂(A_0)``     ``[N, K]``    — logits over atom types (D3PM), or ``None``.

The architecture follows CSPNet (Jiao et al., *Crystal Structure Prediction by Joint
Equivariant Diffusion*, NeurIPS 2023, ``diffcsp/pl_modules/cspnet.py``) as TGDMat (Das et al.,
ICLR 2025, ``generate_task/model/t2mnet.py``) uses it. Each layer ``s`` updates node states
``h_i`` on the fully connected graph of every unit cell:

    m_ij      = φ_m( h_i, h_j, g(L), ψ_FT(f_j − f_i) )                      (edge message)
    h_i^{s+1} = h_i^s + φ_h( h_i, (1/N) Σ_j m_ij )                          (node update)

with ``g(L)`` an O(3)-invariant summary of the Gram matrix ``L Lᵀ`` and
``ψ_FT(d) = [sin(2πk d), cos(2πk d)]_{k=1..K_f}`` Fourier features of the fractional
difference, which are unchanged by ``d → d + integer`` (so by periodic translations and by
wrapping coordinates into ``[0, 1)``).

Symmetry (``L`` holds lattice vectors as ROWS, ``x_cart = f @ L``):

* a rotation or reflection ``x → x Rᵀ`` maps ``L → L Rᵀ`` and leaves ``f`` unchanged; ``L Lᵀ``
  is unchanged, so every node state, ``frac_score`` and ``type_logits`` are invariant, and
  ``lattice_eps = M @ L`` (``M`` an invariant ``3×3`` matrix pooled from node states) maps to
  ``lattice_eps @ Rᵀ`` — the noise ``ε_L`` is equivariant in exactly this way, because
  ``L_t = sqrt(ᾱ_t) L_0 + sqrt(1−ᾱ_t) ε_L`` maps to ``L_t Rᵀ`` when ``ε_L → ε_L Rᵀ``;
* permuting atoms inside a cell permutes the per-atom outputs (mean aggregation);
* translating all atoms of a cell, ``f → (f + τ) mod 1``, changes nothing.

Text (or any conditioning vector) enters in one of two ways (:class:`DenoiserConfig.cond_mode`):

* ``"concat"`` — TGDMat's: ``h_i^0 = W [e(a_i) ‖ τ(c) ‖ e_t(t)]``, once, at the input;
* ``"film"``  — Chemeleon's idea, one modulation per layer: ``z = MLP([e_t(t) ‖ τ(c)])`` and
  ``LN(h) → LN(h) ⊙ (1 + γ_s(z)) + β_s(z)`` before every layer and before the output heads.

``τ`` is TGDMat's projection head (Linear → GELU → Linear → dropout, residual, LayerNorm). A
learned null vector ``∅`` (:attr:`CSPDenoiser.null_cond`) replaces ``c`` for crystals without
text, which gives classifier-free guidance and the unconditional baseline.

**Per-atom grounding** (optional; :class:`Condition`). A long prompt says what each site is
(coordination, polyhedron, bond lengths, tilts); :mod:`tgdmat.text.site_vectors` turns that
into a vector ``u_i`` for every atom ``i`` (the facts of its element's sites). With
``atom_cond_dim > 0`` it enters the input, ``h_i^0 += W_u u_i``, and every FiLM modulation,
``(γ_s, β_s)_i = Γ_s(z_b(i)) + Γ'_s(u_i)``. With ``sentence_dim > 0`` each layer also lets every
atom attend over the sentence embeddings ``e_1..e_S`` of its crystal's description,

    h_i ← h_i + W_o Σ_k softmax_k(q_i·κ_k / sqrt(H/heads)) v_k ,  q_i = W_q LN(h_i),
    (κ_k, v_k) = (W_κ e_k, W_v e_k),

plus one learned always-present "null" key/value (so a crystal without text attends to it
alone). ``Γ'_s`` and ``W_o`` start at zero: a grounded network starts as the pooled one. All
of these are O(3)- and translation-invariant and permute with the atoms, so the symmetries
above are unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Condition",
    "DenoiserConfig",
    "DenoiserOutput",
    "CSPDenoiser",
    "fully_connected_edges",
    "lattice_invariants",
    "fourier_features",
    "sinusoidal_embedding",
]

_COND_MODES = ("concat", "film")
_LATTICE_FEATURES = ("lengths_angles", "gram")


# --------------------------------------------------------------------------------------------
# Configuration and output
# --------------------------------------------------------------------------------------------
@dataclass
class DenoiserConfig:
    """Hyper-parameters of :class:`CSPDenoiser`.

    The sizes default to the CSPNet of DiffCSP and TGDMat (``hidden_dim=512``, ``num_layers=6``,
    ``num_freqs=128``, ``time_dim=256``, LayerNorm, fully connected cells; ``cond_proj_dim=256``
    is TGDMat's text projection width). Two defaults are **this project's choices, not the
    paper's**: ``cond_mode="film"`` (TGDMat concatenates the text once at the input:
    ``"concat"``) and ``lattice_features="lengths_angles"`` (DiffCSP feeds the raw Gram matrix:
    ``"gram"``). :func:`tgdmat.config.preset` ``"paper_exact"`` sets the paper's two.

    Attributes:
        hidden_dim: width ``H`` of node states and edge messages.
        num_layers: number of message-passing layers.
        num_freqs: number ``K_f`` of Fourier frequencies ``k = 1..K_f`` per fractional axis
            (edge feature width ``6 K_f``).
        time_dim: width of the sinusoidal time embedding and of its MLP.
        time_scale: ``t ∈ [0, 1]`` is multiplied by this before the sinusoids. With 1000 the
            embedding equals DiffCSP's/TGDMat's, which embed the integer step ``1..1000``.
        cond_dim: width of the incoming conditioning vector ``c``.
        cond_proj_dim: width of the projected conditioning vector ``τ(c)``.
        cond_mode: ``"concat"`` (TGDMat) or ``"film"`` (per-layer scale/shift), see module doc.
        num_atom_types: ``K``, width of the type input (indices or probabilities) and logits.
        predict_types: build the type head; ``False`` for crystal structure prediction.
        layer_norm: pre-LayerNorm in every layer and before the heads (DiffCSP's ``ln: true``).
        dropout: dropout in the text projection head and on every node update.
        lattice_features: ``"lengths_angles"`` (default: ``log|a_i|`` and ``cos`` of the three
            angles, six O(1) numbers computed from ``L Lᵀ``) or ``"gram"`` (DiffCSP's nine raw
            entries of ``L Lᵀ`` in Å²).
        atom_cond_dim: width of the per-atom conditioning ``u_i`` (0: none).
        sentence_dim: width of the sentence embeddings atoms attend over (0: no attention).
        attention_heads: heads of that cross-attention.
    """

    hidden_dim: int = 512
    num_layers: int = 6
    num_freqs: int = 128
    time_dim: int = 256
    time_scale: float = 1000.0
    cond_dim: int = 384
    cond_proj_dim: int = 256
    cond_mode: str = "film"
    num_atom_types: int = 100
    predict_types: bool = True
    layer_norm: bool = True
    dropout: float = 0.0
    lattice_features: str = "lengths_angles"
    atom_cond_dim: int = 0
    sentence_dim: int = 0
    attention_heads: int = 4

    def __post_init__(self) -> None:
        for name in ("hidden_dim", "num_freqs", "time_dim", "cond_dim", "cond_proj_dim",
                     "num_atom_types"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DenoiserConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_layers < 0:
            raise ValueError(f"DenoiserConfig.num_layers must be >= 0, got {self.num_layers}")
        if self.time_dim % 2:
            raise ValueError(f"DenoiserConfig.time_dim must be even, got {self.time_dim}")
        if self.cond_mode not in _COND_MODES:
            raise ValueError(f"DenoiserConfig.cond_mode must be one of {_COND_MODES}, "
                             f"got {self.cond_mode!r}")
        if self.lattice_features not in _LATTICE_FEATURES:
            raise ValueError(f"DenoiserConfig.lattice_features must be one of "
                             f"{_LATTICE_FEATURES}, got {self.lattice_features!r}")
        for name in ("atom_cond_dim", "sentence_dim"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"DenoiserConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.sentence_dim and (self.attention_heads < 1 or self.hidden_dim % self.attention_heads):
            raise ValueError(f"DenoiserConfig.attention_heads must divide hidden_dim={self.hidden_dim}, "
                             f"got {self.attention_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"DenoiserConfig.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class DenoiserOutput:
    """What :meth:`CSPDenoiser.forward` predicts.

    Attributes:
        lattice_eps: ``[B, 3, 3]`` predicted lattice noise ``ε̂_L`` (rows, like ``L``).
        frac_score: ``[N, 3]`` predicted fractional-coordinate score ``ŝ_F``.
        type_logits: ``[N, K]`` atom-type logits, or ``None`` when ``predict_types=False``.
        features: ``[B, H]`` the invariant crystal features the lattice head reads (mean over
            atoms of the last node states), when asked for (``return_features=True``).
    """

    lattice_eps: Tensor
    frac_score: Tensor
    type_logits: Tensor | None
    features: Tensor | None = None


@dataclass
class Condition:
    """A crystal-level conditioning vector plus, optionally, per-atom grounding.

    Attributes:
        vector: ``[B, cond_dim]`` the prompt's vector ``c`` (as a plain ``cond`` tensor).
        atoms: ``[N, atom_cond_dim]`` per-atom conditioning ``u_i``, atoms in batch order, or None.
        sentences: ``[B, S, sentence_dim]`` sentence embeddings of each crystal's text, or None.
        sentence_mask: ``[B, S]`` bool, True where a sentence exists (padding False).
    """

    vector: Tensor
    atoms: Tensor | None = None
    sentences: Tensor | None = None
    sentence_mask: Tensor | None = None

    def crystals(self, start: int, stop: int, atom_offsets) -> "Condition":
        """The crystals ``start:stop`` (``atom_offsets[b]``: first atom of crystal ``b``)."""
        lo, hi = int(atom_offsets[start]), int(atom_offsets[stop])
        return Condition(
            self.vector[start:stop],
            None if self.atoms is None else self.atoms[lo:hi],
            None if self.sentences is None else self.sentences[start:stop],
            None if self.sentence_mask is None else self.sentence_mask[start:stop],
        )

    def to(self, device) -> "Condition":
        return Condition(*(None if x is None else x.to(device)
                           for x in (self.vector, self.atoms, self.sentences, self.sentence_mask)))


# --------------------------------------------------------------------------------------------
# Graph and feature helpers (pure functions)
# --------------------------------------------------------------------------------------------
def _atom_counts(batch: Tensor, num_graphs: int | None) -> Tensor:
    if batch.dim() != 1 or batch.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"batch must be a 1-D integer tensor [N], got shape {tuple(batch.shape)} "
                         f"and dtype {batch.dtype}")
    if batch.numel() == 0:
        return torch.zeros(num_graphs or 0, dtype=torch.long, device=batch.device)
    if bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted: the atoms of each crystal must be contiguous")
    if int(batch[0]) < 0:
        raise ValueError("batch holds a negative crystal index")
    n_graphs = int(batch[-1]) + 1 if num_graphs is None else int(num_graphs)
    if int(batch[-1]) >= n_graphs:
        raise ValueError(f"batch names crystal {int(batch[-1])} but there are only "
                         f"{n_graphs} crystals")
    return torch.bincount(batch.long(), minlength=n_graphs)


def fully_connected_edges(batch: Tensor, num_graphs: int | None = None) -> tuple[Tensor, Tensor]:
    """All ordered pairs ``(i, j)`` of atoms that belong to the same crystal, self-pairs included.

    The graph of one cell with ``n`` atoms has ``n²`` directed edges, so a batch has
    ``E = Σ_b n_b²``. Edges are ordered by crystal, then by ``i``, then by ``j``; ``src`` is
    therefore sorted. In :class:`CSPDenoiser` the message ``m_ij`` is computed from
    ``f_j − f_i`` and averaged into node ``i = src``.

    Self-pairs ``(i, i)`` are kept, as in DiffCSP's ``edge_style='fc'``: the lattice enters the
    network only through edge features, so without them a one-atom cell would never see its
    lattice (and its mean over neighbours would be empty). Their Fourier feature is the constant
    ``ψ(0) = [0…, 1…]``, i.e. they carry ``h_i`` and ``g(L)`` only.

    Args:
        batch: ``[N]`` long, crystal index of every atom, sorted (atoms of a crystal contiguous).
        num_graphs: number of crystals ``B`` (default ``batch[-1] + 1``).

    Returns:
        ``(src, dst)``, two ``[E]`` long tensors of global atom indices.
    """
    counts = _atom_counts(batch, num_graphs)
    device = batch.device
    if counts.numel() == 0 or int(counts.sum()) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty.clone()
    first_atom = torch.cumsum(counts, 0) - counts                      # [B] offset of crystal b
    edges_per_graph = counts * counts                                   # [B]
    first_edge = torch.cumsum(edges_per_graph, 0) - edges_per_graph     # [B]
    edge_graph = torch.repeat_interleave(
        torch.arange(counts.numel(), device=device), edges_per_graph)   # [E]
    local = torch.arange(edge_graph.numel(), device=device) - first_edge[edge_graph]
    n = counts[edge_graph]
    src = first_atom[edge_graph] + torch.div(local, n, rounding_mode="floor")
    dst = first_atom[edge_graph] + local % n
    return src, dst


def lattice_invariants(lattice: Tensor, kind: str = "lengths_angles", eps: float = 1e-8) -> Tensor:
    """O(3)-invariant features of a lattice, computed from its Gram matrix ``G = L Lᵀ``.

    ``G_ij = a_i · a_j`` is unchanged by ``L → L Rᵀ`` for any orthogonal ``R``, and it fixes the
    lattice up to such an ``R``.

    * ``"lengths_angles"`` → ``[B, 6]``: ``log|a_i| = ½ log G_ii`` and
      ``cos θ_ij = G_ij / sqrt(G_ii G_jj)`` for ``(ij) = (12), (02), (01)``, i.e. log lattice
      lengths and the cosines of α, β, γ. Same information as ``G``, but every number is O(1)
      for a clean cell of a few Å and for a pure-noise cell ``L_T ~ N(0, I)`` alike, while raw
      ``G`` entries span 10⁰–10³ Å² across Perov-5/Carbon-24/MP-20 and noise levels.
    * ``"gram"`` → ``[B, 9]``: the raw entries of ``G`` (DiffCSP, TGDMat).

    Args:
        lattice: ``[B, 3, 3]``, lattice vectors as rows.
    """
    gram = lattice @ lattice.transpose(-1, -2)
    if kind == "gram":
        return gram.reshape(-1, 9)
    if kind != "lengths_angles":
        raise ValueError(f"unknown lattice feature kind {kind!r}; use one of {_LATTICE_FEATURES}")
    diag = torch.diagonal(gram, dim1=-2, dim2=-1).clamp_min(eps)          # [B, 3] = |a_i|²
    log_len = 0.5 * torch.log(diag)
    norm = torch.sqrt(diag)
    cos = torch.stack([
        gram[:, 1, 2] / (norm[:, 1] * norm[:, 2]),
        gram[:, 0, 2] / (norm[:, 0] * norm[:, 2]),
        gram[:, 0, 1] / (norm[:, 0] * norm[:, 1]),
    ], dim=-1)
    return torch.cat([log_len, cos], dim=-1)


def fourier_features(frac_diff: Tensor, num_freqs: int) -> Tensor:
    """``ψ_FT(d) = [sin(2πk d_x), …, cos(2πk d_z)]`` for ``k = 1..num_freqs``.

    Periodic in every component with period 1, so ``d`` need not be wrapped.

    Args:
        frac_diff: ``[E, 3]`` fractional differences ``f_j − f_i``.

    Returns:
        ``[E, 6 · num_freqs]`` (all sines, then all cosines; axis-major within each).
    """
    k = torch.arange(1, num_freqs + 1, device=frac_diff.device, dtype=frac_diff.dtype)
    angle = (2.0 * math.pi) * frac_diff.unsqueeze(-1) * k                 # [E, 3, K_f]
    angle = angle.reshape(frac_diff.shape[0], -1)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


def sinusoidal_embedding(x: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Transformer positional embedding of a scalar: ``[sin(x ω_m), cos(x ω_m)]``.

    ``ω_m = max_period^(−m/(dim/2 − 1))``, ``m = 0..dim/2−1`` (DiffCSP's convention).

    Args:
        x: ``[B]`` float.

    Returns:
        ``[B, dim]``.
    """
    half = dim // 2
    scale = math.log(max_period) / max(half - 1, 1)
    freqs = torch.exp(-scale * torch.arange(half, device=x.device, dtype=x.dtype))
    arg = x.unsqueeze(-1) * freqs
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)


def _mean_by_index(values: Tensor, index: Tensor, counts: Tensor) -> Tensor:
    """Mean of ``values [M, D]`` over rows sharing ``index [M]`` (``counts [S]`` rows each)."""
    out = values.new_zeros(counts.numel(), values.shape[-1])
    out.index_add_(0, index, values)
    return out / counts.clamp_min(1).unsqueeze(-1).to(values.dtype)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------
class TextProjection(nn.Module):
    """TGDMat's projection head ``τ``: ``LN(p + Dropout(W₂ GELU(p)))`` with ``p = W₁ c``.

    ``[B, cond_dim] → [B, out_dim]``.
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.fc = nn.Linear(out_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, cond: Tensor) -> Tensor:
        p = self.proj(cond)
        return self.norm(p + self.dropout(self.fc(F.gelu(p))))


class CSPLayer(nn.Module):
    """One message-passing layer (see module docstring for the equations).

    The first linear map of ``φ_m`` acts on the concatenation ``[h_i ‖ h_j ‖ g(L) ‖ ψ_ij]``.
    It is stored as one ``nn.Linear`` (same parameters as DiffCSP) but applied block-wise,
    ``W_i h_i + W_j h_j + W_g g(L) + W_ψ ψ_ij``, with the first three computed per node or per
    crystal and gathered onto edges: identical output, ~2× fewer edge FLOPs.
    """

    def __init__(self, hidden_dim: int, lattice_dim: int, fourier_dim: int,
                 layer_norm: bool = True, film_dim: int = 0, dropout: float = 0.0,
                 atom_dim: int = 0, sentence_attention: bool = False, attention_heads: int = 4):
        super().__init__()
        h = hidden_dim
        self.hidden_dim, self.lattice_dim, self.fourier_dim = h, lattice_dim, fourier_dim
        self.edge_in = nn.Linear(2 * h + lattice_dim + fourier_dim, h)
        self.edge_out = nn.Linear(h, h)
        self.node_mlp = nn.Sequential(nn.Linear(2 * h, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU())
        self.norm = nn.LayerNorm(h) if layer_norm else nn.Identity()
        self.film = nn.Linear(film_dim, 2 * h) if film_dim > 0 else None
        self.atom_film = None
        if film_dim > 0 and atom_dim > 0:
            self.atom_film = nn.Linear(atom_dim, 2 * h)
            nn.init.zeros_(self.atom_film.weight)
            nn.init.zeros_(self.atom_film.bias)
        self.attention = SentenceAttention(h, attention_heads) if sentence_attention else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, lat_feat: Tensor, fourier: Tensor, src: Tensor, dst: Tensor,
                node_graph: Tensor, counts: Tensor, film_cond: Tensor | None = None,
                atom_cond: Tensor | None = None, memory: tuple | None = None) -> Tensor:
        """Args: ``h [N, H]``, ``lat_feat [B, G]``, ``fourier [E, 6K_f]``, ``src, dst [E]``,
        ``node_graph [N]``, ``counts [B]``, ``film_cond [B, Z]`` or ``None``, ``atom_cond
        [N, U]`` or ``None``, ``memory`` = ``(keys [B, S+1, H], mask [B, S+1])`` of the sentences
        or ``None``. Returns ``[N, H]``.
        """
        x = self.norm(h)
        if self.film is not None:
            if film_cond is None:
                raise ValueError("this CSPLayer was built for FiLM and needs film_cond")
            mod = self.film(film_cond)[node_graph]
            if self.atom_film is not None and atom_cond is not None:
                mod = mod + self.atom_film(atom_cond)
            scale, shift = mod.chunk(2, dim=-1)
            x = x * (1.0 + scale) + shift
        hd = self.hidden_dim
        w = self.edge_in.weight
        w_i, w_j = w[:, :hd], w[:, hd:2 * hd]
        w_g, w_f = w[:, 2 * hd:2 * hd + self.lattice_dim], w[:, 2 * hd + self.lattice_dim:]
        # per-node parts: W_i h_i + W_g g(L_b(i)) + bias, and W_j h_j
        node_i = F.linear(x, w_i, self.edge_in.bias) + F.linear(lat_feat, w_g)[node_graph]
        node_j = F.linear(x, w_j)                                          # [N, H]
        pre = F.linear(fourier, w_f)                                       # [E, H]
        pre = pre.add_(node_i.index_select(0, src)).add_(node_j.index_select(0, dst))
        msg = F.silu(self.edge_out(F.silu(pre)))                           # m_ij  [E, H]
        agg = _mean_by_index(msg, src, counts[node_graph])                 # [N, H]
        h = h + self.dropout(self.node_mlp(torch.cat([x, agg], dim=-1)))
        if self.attention is not None and memory is not None:
            h = h + self.dropout(self.attention(h, node_graph, *memory))
        return h


class SentenceAttention(nn.Module):
    """Cross-attention of atoms to their own crystal's sentence embeddings (module docstring).

    ``forward(h [N, H], node_graph [N], memory [B, S, H], mask [B, S]) → [N, H]``; ``memory``
    already holds the learned null slot at position 0 (mask True there).
    """

    def __init__(self, hidden_dim: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(hidden_dim)
        self.q = nn.Linear(hidden_dim, hidden_dim)
        self.kv = nn.Linear(hidden_dim, 2 * hidden_dim)
        self.out = nn.Linear(hidden_dim, hidden_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: Tensor, node_graph: Tensor, memory: Tensor, mask: Tensor) -> Tensor:
        n, hd = h.shape
        nh = self.heads
        d = hd // nh
        q = self.q(self.norm(h)).view(n, nh, d)                            # [N, h, d]
        k, v = self.kv(memory).chunk(2, dim=-1)                            # [B, S, H] each
        b, s, _ = memory.shape
        k = k.view(b, s, nh, d)[node_graph]                                # [N, S, h, d]
        v = v.view(b, s, nh, d)[node_graph]
        scores = torch.einsum("nhd,nshd->nhs", q, k) / math.sqrt(d)        # [N, h, S]
        scores = scores.masked_fill(~mask[node_graph].unsqueeze(1), float("-inf"))
        w = torch.softmax(scores, dim=-1)
        return self.out(torch.einsum("nhs,nshd->nhd", w, v).reshape(n, hd))


class CSPDenoiser(nn.Module):
    """Periodic-E(3)-equivariant denoiser ``(ε̂_L, ŝ_F, p̂_A) = φ(L_t, F_t, A_t, t, c)``.

    See the module docstring for the equations and symmetries. Build with a
    :class:`DenoiserConfig`; the network knows nothing of noise schedules.

    Attributes:
        null_cond: ``[cond_dim]`` learned "no text" vector ``∅`` that replaces ``c`` where
            ``cond is None`` or ``drop_cond`` is true. Initialised with norm ≈ 1, like an
            L2-normalised sentence embedding.
    """

    def __init__(self, cfg: DenoiserConfig | None = None):
        super().__init__()
        cfg = DenoiserConfig() if cfg is None else cfg
        self.cfg = cfg
        h, k = cfg.hidden_dim, cfg.num_atom_types
        self.lattice_dim = 9 if cfg.lattice_features == "gram" else 6
        self.fourier_dim = 6 * cfg.num_freqs

        self.type_embed = nn.Linear(k, h)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, cfg.time_dim), nn.SiLU(),
                                      nn.Linear(cfg.time_dim, cfg.time_dim))
        self.null_cond = nn.Parameter(torch.randn(cfg.cond_dim) / math.sqrt(cfg.cond_dim))
        self.cond_proj = TextProjection(cfg.cond_dim, cfg.cond_proj_dim, cfg.dropout)
        ctx_dim = cfg.time_dim + cfg.cond_proj_dim
        if cfg.cond_mode == "concat":
            self.input_proj = nn.Linear(h + ctx_dim, h)
            self.film_mlp = None
            film_dim = 0
        else:
            self.input_proj = None
            self.film_mlp = nn.Sequential(nn.Linear(ctx_dim, h), nn.SiLU())
            film_dim = h
        self.layers = nn.ModuleList(
            CSPLayer(h, self.lattice_dim, self.fourier_dim, cfg.layer_norm, film_dim, cfg.dropout,
                     atom_dim=cfg.atom_cond_dim, sentence_attention=cfg.sentence_dim > 0,
                     attention_heads=cfg.attention_heads)
            for _ in range(cfg.num_layers))
        # per-atom grounding (module docstring): input term, null rows, sentence memory
        self.atom_in = self.null_atom = self.sentence_proj = self.null_sentence = None
        if cfg.atom_cond_dim:
            self.atom_in = nn.Linear(cfg.atom_cond_dim, h)
            nn.init.zeros_(self.atom_in.weight)
            nn.init.zeros_(self.atom_in.bias)
            self.null_atom = nn.Parameter(torch.zeros(cfg.atom_cond_dim))
        if cfg.sentence_dim:
            self.sentence_proj = nn.Linear(cfg.sentence_dim, h)
            self.null_sentence = nn.Parameter(torch.randn(h) / math.sqrt(h))
        self.final_norm = nn.LayerNorm(h) if cfg.layer_norm else nn.Identity()
        self.final_film = nn.Linear(film_dim, 2 * h) if film_dim else None
        self.frac_head = nn.Linear(h, 3, bias=False)
        self.lattice_head = nn.Linear(h, 9, bias=False)
        self.type_head = nn.Linear(h, k) if cfg.predict_types else None

    # ---------------------------------------------------------------- input handling
    def _embed_types(self, atom_types: Tensor, n_atoms: int) -> Tensor:
        k = self.cfg.num_atom_types
        if atom_types.dtype in (torch.int64, torch.int32):
            if atom_types.shape != (n_atoms,):
                raise ValueError(f"integer atom_types must have shape [N]=[{n_atoms}], "
                                 f"got {tuple(atom_types.shape)}")
            if n_atoms and (int(atom_types.min()) < 0 or int(atom_types.max()) >= k):
                raise ValueError(f"atom_types indices must lie in [0, {k}), got range "
                                 f"[{int(atom_types.min())}, {int(atom_types.max())}]")
            # Row a of Wᵀ plus bias == Linear(one_hot(a)): the two input kinds agree.
            return F.embedding(atom_types.long(), self.type_embed.weight.t()) + self.type_embed.bias
        if atom_types.is_floating_point():
            if atom_types.shape != (n_atoms, k):
                raise ValueError(f"float atom_types must have shape [N, K]=[{n_atoms}, {k}], "
                                 f"got {tuple(atom_types.shape)}")
            return self.type_embed(atom_types)
        raise ValueError(f"atom_types must be long indices [N] or float [N, K], got {atom_types.dtype}")

    def _conditioning(self, cond: Tensor | None, drop_cond: Tensor | None, n_graphs: int,
                      like: Tensor) -> Tensor:
        null = self.null_cond.to(like.dtype).expand(n_graphs, -1)
        if cond is None:
            return null
        if cond.shape != (n_graphs, self.cfg.cond_dim):
            raise ValueError(f"cond must have shape [B, cond_dim]=[{n_graphs}, "
                             f"{self.cfg.cond_dim}], got {tuple(cond.shape)}")
        if drop_cond is None:
            return cond.to(like.dtype)
        if drop_cond.shape != (n_graphs,) or drop_cond.dtype != torch.bool:
            raise ValueError(f"drop_cond must be a bool tensor [B]=[{n_graphs}], got "
                             f"{drop_cond.dtype} {tuple(drop_cond.shape)}")
        return torch.where(drop_cond.unsqueeze(-1), null, cond.to(like.dtype))

    def _grounding(self, cond: "Condition | None", drop_cond: Tensor | None, batch: Tensor,
                   n_graphs: int, like: Tensor) -> tuple[Tensor | None, tuple | None]:
        """``(u [N, U] | None, (memory [B, S+1, H], mask [B, S+1]) | None)``; null rows where dropped."""
        cfg = self.cfg
        n_atoms = batch.shape[0]
        dropped = None if drop_cond is None else drop_cond[batch]
        atoms = memory = None
        if cfg.atom_cond_dim:
            null = self.null_atom.to(like.dtype).expand(n_atoms, -1)
            u = None if cond is None else cond.atoms
            if u is None:
                atoms = null
            else:
                if u.shape != (n_atoms, cfg.atom_cond_dim):
                    raise ValueError(f"Condition.atoms must have shape [N, atom_cond_dim]=[{n_atoms}, "
                                     f"{cfg.atom_cond_dim}], got {tuple(u.shape)}")
                atoms = u.to(like.dtype) if dropped is None else torch.where(dropped.unsqueeze(-1), null, u.to(like.dtype))
        if cfg.sentence_dim:
            null = self.null_sentence.to(like.dtype).view(1, 1, -1).expand(n_graphs, 1, -1)
            true = torch.ones(n_graphs, 1, dtype=torch.bool, device=like.device)
            e = None if cond is None else cond.sentences
            if e is None:
                memory = (null, true)
            else:
                if e.dim() != 3 or e.shape[0] != n_graphs or e.shape[-1] != cfg.sentence_dim:
                    raise ValueError(f"Condition.sentences must have shape [B, S, sentence_dim]=[{n_graphs}, S, "
                                     f"{cfg.sentence_dim}], got {tuple(e.shape)}")
                mask = cond.sentence_mask if cond.sentence_mask is not None else \
                    torch.ones(e.shape[:2], dtype=torch.bool, device=e.device)
                if drop_cond is not None:
                    mask = mask & ~drop_cond.unsqueeze(-1)
                memory = (torch.cat([null, self.sentence_proj(e.to(like.dtype))], dim=1),
                          torch.cat([true, mask], dim=1))
        return atoms, memory

    # ---------------------------------------------------------------- forward
    def forward(self, atom_types: Tensor, frac_coords: Tensor, lattice: Tensor, batch: Tensor,
                t: Tensor, cond: "Tensor | Condition | None" = None,
                drop_cond: Tensor | None = None, return_features: bool = False) -> DenoiserOutput:
        """Predict lattice noise, fractional score and type logits for a batch of crystals.

        Args:
            atom_types: ``[N]`` long type indices in ``[0, K)``, or ``[N, K]`` float
                probabilities / (noisy) one-hot rows.
            frac_coords: ``[N, 3]`` fractional coordinates (any real values; only ``f mod 1``
                matters).
            lattice: ``[B, 3, 3]``, lattice vectors as rows (``x_cart = f @ L``).
            batch: ``[N]`` long crystal index of every atom, sorted; every crystal needs ≥1 atom.
            t: ``[B]`` (or scalar) diffusion time in ``[0, 1]`` (``step / T``).
            cond: ``[B, cond_dim]`` conditioning vectors, a :class:`Condition` (vector plus
                per-atom grounding), or ``None`` for "no text" everywhere.
            drop_cond: ``[B]`` bool; ``True`` rows use :attr:`null_cond` instead of ``cond``.

        Returns:
            :class:`DenoiserOutput` with ``lattice_eps [B,3,3]``, ``frac_score [N,3]`` and
            ``type_logits [N,K]`` (``None`` if ``predict_types`` is false).
        """
        cfg = self.cfg
        if lattice.dim() != 3 or lattice.shape[1:] != (3, 3):
            raise ValueError(f"lattice must have shape [B, 3, 3], got {tuple(lattice.shape)}")
        n_graphs = lattice.shape[0]
        if frac_coords.dim() != 2 or frac_coords.shape[1] != 3:
            raise ValueError(f"frac_coords must have shape [N, 3], got {tuple(frac_coords.shape)}")
        n_atoms = frac_coords.shape[0]
        if batch.shape != (n_atoms,):
            raise ValueError(f"batch must have shape [N]=[{n_atoms}], got {tuple(batch.shape)}")
        counts = _atom_counts(batch, n_graphs)
        if bool((counts == 0).any()):
            empty = torch.nonzero(counts == 0).flatten().tolist()
            raise ValueError(f"crystals {empty[:10]} of the batch have no atoms")
        t = torch.as_tensor(t, dtype=lattice.dtype, device=lattice.device)
        if t.dim() == 0:
            t = t.expand(n_graphs)
        if t.shape != (n_graphs,):
            raise ValueError(f"t must have shape [B]=[{n_graphs}] or be a scalar, got {tuple(t.shape)}")

        # graph and geometric features (all O(3)-invariant and periodic-translation-invariant)
        src, dst = fully_connected_edges(batch, n_graphs)
        fourier = fourier_features(frac_coords[dst] - frac_coords[src], cfg.num_freqs)
        lat_feat = lattice_invariants(lattice, cfg.lattice_features)

        # context: time embedding e_t(t) and projected conditioning τ(c)
        grounded = isinstance(cond, Condition)
        if grounded or cfg.atom_cond_dim or cfg.sentence_dim:
            if cond is not None and not grounded:
                raise ValueError("this denoiser is grounded per atom: pass cond=Condition(...) (or None)")
            atom_cond, memory = self._grounding(cond, drop_cond, batch, n_graphs, lattice)
            cond = None if cond is None else cond.vector
        else:
            atom_cond = memory = None
        t_emb = self.time_mlp(sinusoidal_embedding(t * cfg.time_scale, cfg.time_dim))
        c_emb = self.cond_proj(self._conditioning(cond, drop_cond, n_graphs, lattice))
        ctx = torch.cat([t_emb, c_emb], dim=-1)                             # [B, T + P]

        h = self._embed_types(atom_types, n_atoms).to(lattice.dtype)        # [N, H]
        film_cond = None
        if self.input_proj is not None:                                     # "concat"
            h = self.input_proj(torch.cat([h, ctx[batch]], dim=-1))
        else:                                                               # "film"
            film_cond = self.film_mlp(ctx)                                  # [B, H]
        if atom_cond is not None:
            h = h + self.atom_in(atom_cond)                                 # h_i^0 += W_u u_i

        for layer in self.layers:
            h = layer(h, lat_feat, fourier, src, dst, batch, counts, film_cond, atom_cond, memory)

        h = self.final_norm(h)
        if self.final_film is not None:
            scale, shift = self.final_film(film_cond)[batch].chunk(2, dim=-1)
            h = h * (1.0 + scale) + shift

        frac_score = self.frac_head(h)                                      # [N, 3]
        pooled = _mean_by_index(h, batch, counts)                           # [B, H]
        m = self.lattice_head(pooled).view(n_graphs, 3, 3)                  # invariant M
        lattice_eps = m @ lattice                                           # ε̂_L = M L
        type_logits = self.type_head(h) if self.type_head is not None else None
        return DenoiserOutput(lattice_eps=lattice_eps, frac_score=frac_score,
                              type_logits=type_logits, features=pooled if return_features else None)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
