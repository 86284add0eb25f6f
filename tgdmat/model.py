"""TGDMat: the denoiser wired to the three diffusion processes, with text in every step.

A crystal ``M_0 = (L_0, F_0, A_0)`` is noised jointly at one time ``t ~ U{1..T}``:

    L_t = sqrt(ᾱ_t) L_0 + sqrt(1 − ᾱ_t) ε_L                 (DDPM, :mod:`tgdmat.diffusion.lattice`)
    F_t = w(F_0 + σ_t ε_F)                                    (wrapped normal, :mod:`tgdmat.diffusion.torus`)
    A_t ~ q(A_t | A_0) = Cat(A_0 Q̄_t)                         (D3PM, :mod:`tgdmat.diffusion.d3pm`; generation only)

and one network ``φ(L_t, F_t, A_t, t, c)`` (:class:`tgdmat.denoiser.CSPDenoiser`) predicts
``(ε̂_L, ŝ_F, p̂(A_0))`` from the conditioning vector ``c`` of the prompt
(:mod:`tgdmat.conditioning`). The training loss is

    L = λ_L ‖ε̂_L − ε_L‖² + λ_F ‖ŝ_F − ∇log q(F_t|F_0)/sqrt(λ_t)‖² + λ_A (L_vb + λ_ce L_ce),

and sampling runs the reverse chain from ``L_T ~ N(0, I)``, ``F_T ~ U[0,1)``, ``A_T`` = mask,
with a Langevin corrector on ``F`` before every predictor step (DiffCSP's predictor–corrector)
and optional classifier-free guidance ``x̂ = x̂_∅ + w (x̂_c − x̂_∅)``. In CSP mode the atom types are
given and never diffused.

This module knows no optimiser and no files: :mod:`tgdmat.train` trains it,
:mod:`tgdmat.sample` turns its outputs into pymatgen ``Structure`` objects.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from tgdmat.conditioning import FactsBatch, FactsEncoder, SiteEncoder
from tgdmat.config import ModelConfig, SampleConfig, step_lr_for
from tgdmat.denoiser import Condition, CSPDenoiser, DenoiserOutput
from tgdmat.diffusion import D3PM, LatticeDDPM, TorusVE, strided_timesteps, uniform_times

if TYPE_CHECKING:
    from tgdmat.guidance import PropertyGuide

NUM_ELEMENTS = 100


@dataclass
class Noise:
    """All randomness of one training step for ``B`` crystals / ``N`` atoms.

    Drawn for a whole (global) batch so that data-parallel ranks can slice the same draw
    (:meth:`select`); a 2-process run then sees exactly the noise of a 1-process run.
    """

    t: Tensor  # [B] long in 1..T
    eps_lattice: Tensor  # [B, 3, 3]
    eps_frac: Tensor  # [N, 3]
    type_uniform: Tensor  # [N] uniform draws for the categorical q(A_t | A_0) (gen), else empty
    drop_cond: Tensor  # [B] bool

    def select(self, crystals: Tensor, atoms: Tensor) -> "Noise":
        return Noise(
            self.t[crystals],
            self.eps_lattice[crystals],
            self.eps_frac[atoms],
            self.type_uniform[atoms] if self.type_uniform.numel() else self.type_uniform,
            self.drop_cond[crystals],
        )


class TGDMat(nn.Module):
    """The joint diffusion model.

    Args:
        cfg: :class:`tgdmat.config.ModelConfig`.
        text_dim: width of the sentence embeddings (0 for ``prompt="none"``).
        property_mean, property_std: training-split statistics of the data set's properties
            (``"text+facts"`` conditioning only).
    """

    def __init__(self, cfg: ModelConfig, text_dim: int, property_mean=None, property_std=None,
                 property_names=None):
        super().__init__()
        self.cfg = cfg
        self.text_dim = int(text_dim)
        T = cfg.num_steps
        self.lattice = LatticeDDPM(T, cfg.lattice_schedule)
        self.torus = TorusVE(T, cfg.sigma_begin, cfg.sigma_end)
        self.types = D3PM(NUM_ELEMENTS, T, kind=cfg.type_kind) if cfg.task == "gen" else None
        self.facts = None
        cond_dim = max(self.text_dim, 1)
        if cfg.conditioning == "text+facts":
            if property_names is None:
                raise ValueError("text+facts conditioning needs property_names, property_mean and property_std")
            self.facts = FactsEncoder(property_names, property_mean, property_std, dim=cfg.facts_dim)
            cond_dim = self.text_dim + cfg.facts_dim
        num_in = self.types.num_states if self.types is not None else NUM_ELEMENTS
        grounding = getattr(cfg, "grounding", "none")
        self.sites = SiteEncoder(cfg.site_dim) if "sites" in grounding else None
        den_cfg = dataclasses.replace(
            cfg.denoiser, cond_dim=cond_dim, num_atom_types=num_in, predict_types=cfg.task == "gen",
            atom_cond_dim=cfg.site_dim if self.sites is not None else 0,
            sentence_dim=self.text_dim if "attention" in grounding else 0,
        )
        self.denoiser = CSPDenoiser(den_cfg)

    @property
    def num_steps(self) -> int:
        return self.cfg.num_steps

    # ------------------------------------------------------------------ conditioning
    @property
    def grounded(self) -> bool:
        """Whether this model reads the long prompt per atom (``ModelConfig.grounding``)."""
        return getattr(self.cfg, "grounding", "none") != "none"

    def condition(self, text_emb: Tensor | None, facts: FactsBatch | None,
                  grounding: tuple | None = None) -> "Tensor | Condition | None":
        """``c`` ``[B, cond_dim]`` from a sentence embedding ``[B, d]`` and parsed facts (or ``None``).

        A grounded model (``ModelConfig.grounding``) returns a :class:`tgdmat.denoiser.Condition`
        instead; ``grounding`` is then ``(site vectors [N, F] | None, sentence embeddings
        [B, S, d] | None, mask [B, S] | None)`` (:meth:`tgdmat.conditioning.GroundingTable.lookup`).
        """
        if self.cfg.prompt == "none" or (text_emb is None and facts is None):
            return None
        if self.grounded:
            if grounding is None:
                raise ValueError("this model reads the long prompt per atom: pass grounding=(site vectors, "
                                 "sentence embeddings, mask) (GroundingTable.lookup)")
            vector = self.condition_vector(text_emb, facts)
            atoms, sentences, mask = grounding
            u = None
            if self.sites is not None:
                if atoms is None:
                    raise ValueError("this model needs per-atom site vectors")
                u = self.sites(atoms.to(vector.device))
            return Condition(vector, u,
                             None if sentences is None or self.denoiser.cfg.sentence_dim == 0 else sentences.to(vector.device),
                             None if mask is None else mask.to(vector.device))
        return self.condition_vector(text_emb, facts)

    def condition_vector(self, text_emb: Tensor | None, facts: FactsBatch | None) -> Tensor:
        """The crystal-level vector ``c = [E(prompt) ‖ φ(facts)]``."""
        parts = []
        if text_emb is not None:
            parts.append(text_emb)
        if self.facts is not None:
            if facts is None:
                raise ValueError("this model conditions on parsed facts: pass facts=FactsBatch(...)")
            parts.append(self.facts(facts))
        return torch.cat(parts, dim=-1)

    # ------------------------------------------------------------------ training
    def draw_noise(self, batch, generator: torch.Generator | None = None) -> Noise:
        """Draw the randomness of one training step for ``batch`` (a torch-geometric Batch)."""
        dev = batch.frac_coords.device
        B, N = batch.num_graphs, batch.frac_coords.shape[0]
        t = uniform_times(B, self.num_steps, generator=generator, device=dev)
        eps_l = torch.randn(B, 3, 3, generator=generator, device=dev)
        eps_f = torch.randn(N, 3, generator=generator, device=dev)
        unif = torch.rand(N, generator=generator, device=dev) if self.types is not None else torch.empty(0, device=dev)
        drop = torch.rand(B, generator=generator, device=dev) < self.cfg.cond_drop_prob
        return Noise(t, eps_l, eps_f, unif, drop)

    def loss(self, batch, cond: Tensor | None, noise: Noise, norm: tuple[int, int] | None = None) -> dict[str, Tensor]:
        """The joint loss on ``batch`` with the given noise draw.

        Args:
            batch: torch-geometric Batch (``atom_types`` Z, ``frac_coords``, ``lattice``, ``batch``).
            cond: ``[B, cond_dim]`` or ``None`` (unconditional).
            noise: from :meth:`draw_noise` (or a :meth:`Noise.select` slice of a global draw).
            norm: ``(crystals, atoms)`` of the *global* batch when this is one rank's share of
                it: each term is then a sum over this share divided by the global count, so
                that summing (DDP averages, times world size) reproduces the global mean.
        """
        B, N = batch.num_graphs, batch.frac_coords.shape[0]
        gB, gN = norm if norm is not None else (B, N)
        a0 = batch.atom_types - 1  # class index = Z − 1
        t_atom = noise.t[batch.batch]
        L_t = self.lattice.q_sample(batch.lattice, noise.t, noise.eps_lattice)
        F_t, target_f = self.torus.q_sample(batch.frac_coords, t_atom, noise.eps_frac)
        if self.types is not None:
            a_t = self.types.q_sample(a0, t_atom, uniform=noise.type_uniform)
            types_in = a_t
        else:
            types_in = a0
        drop = noise.drop_cond if cond is not None else None
        out = self.denoiser(types_in, F_t, L_t, batch.batch, noise.t.float() / self.num_steps, cond, drop)
        loss_l = self.lattice.loss(out.lattice_eps, noise.eps_lattice, count=9 * gB)
        loss_f = self.torus.loss(out.frac_score, target_f, count=3 * gN)
        total = self.cfg.cost_lattice * loss_l + self.cfg.cost_coord * loss_f
        result = {"lattice": loss_l, "coord": loss_f}
        if self.types is not None:
            parts = self.types.loss(out.type_logits[:, :NUM_ELEMENTS], a0, a_t, t_atom)
            scale = N / gN
            loss_a = parts["loss"] * scale
            result.update(type=loss_a, type_ce=parts["ce"] * scale, type_vb=parts["vb"] * scale)
            total = total + self.cfg.cost_type * loss_a
        result["loss"] = total
        return result

    def forward(self, batch, cond: Tensor | None, noise: Noise, norm: tuple[int, int] | None = None):
        """Same as :meth:`loss` (so that ``DistributedDataParallel`` can wrap the model)."""
        return self.loss(batch, cond, noise, norm)

    # ------------------------------------------------------------------ sampling
    def _predict(self, types_in, F, L, batch_idx, t: int, cond, guidance: float) -> DenoiserOutput:
        B = L.shape[0]
        tt = torch.full((B,), t / self.num_steps, device=L.device)
        if cond is None or guidance == 1.0:
            return self.denoiser(types_in, F, L, batch_idx, tt, cond)
        cond_out = self.denoiser(types_in, F, L, batch_idx, tt, cond)
        null_out = self.denoiser(types_in, F, L, batch_idx, tt, None)

        def mix(u, c):
            return None if c is None else u + guidance * (c - u)

        return DenoiserOutput(
            mix(null_out.lattice_eps, cond_out.lattice_eps),
            mix(null_out.frac_score, cond_out.frac_score),
            mix(null_out.type_logits, cond_out.type_logits),
        )

    def _guide(self, out: DenoiserOutput, guide, A, F, L, batch_idx, t: int) -> DenoiserOutput:
        """Classifier guidance in the network's units (:mod:`tgdmat.guidance`)."""
        g_f, g_l = guide.gradients(A + 1, F, L, batch_idx, t)
        lam = self.torus.score_norm[t].to(F.dtype)
        abar = self.lattice.alpha_bars[t].to(L.dtype)
        return DenoiserOutput(out.lattice_eps - guide.scale * torch.sqrt(1 - abar) * g_l,
                              out.frac_score + guide.scale * g_f / torch.sqrt(lam), out.type_logits)

    @torch.no_grad()
    def sample(
        self,
        num_atoms: Tensor,
        cond: Tensor | None,
        atom_types: Tensor | None = None,
        settings: SampleConfig | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        start: "TemplateStart | None" = None,
        guide: "PropertyGuide | None" = None,
        type_mask: Tensor | None = None,
        **overrides,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Run the reverse chain for ``B`` crystals.

        Args:
            num_atoms: ``[B]`` long atoms per crystal.
            cond: ``[B, cond_dim]`` or ``None`` (unconditional).
            atom_types: ``[N]`` long atomic numbers Z for CSP (required when ``task="csp"``).
            settings: the reverse-process settings, :class:`tgdmat.config.SampleConfig` (default:
                all ``T`` steps, the data set's Langevin step size, no guidance); keyword
                ``overrides`` replace its fields (and are checked like it):

                * ``num_steps`` — network evaluations along the chain (``None`` = every step;
                  fewer use an evenly strided schedule ending at ``t = 1``);
                * ``step_lr`` — Langevin corrector step size at ``σ_1`` (``None`` = the data
                  set's, :func:`tgdmat.config.step_lr_for`);
                * ``corrector`` — a Langevin step before each predictor step (2 evaluations);
                * ``guidance_scale`` — classifier-free guidance ``w`` (1 = conditional only);
                * ``lattice_eta`` — 1 = ancestral DDPM lattice steps (the paper), 0 = DDIM;
                * ``time_spacing`` — ``"uniform"`` or ``"quadratic"`` (short steps near t = 0).
            generator: a ``torch.Generator`` on the model's device for every random draw
                (``settings.seed`` is the caller's to apply).
            start: template-guided sampling (:class:`TemplateStart`): instead of the prior at
                ``T``, the chain starts at ``t_0 = start.t`` from a template crystal noised by the
                forward processes, ``L_{t0} = sqrt(ᾱ_{t0}) L_tpl + sqrt(1 − ᾱ_{t0}) ε_L`` and
                ``F_{t0} = w(F_tpl + σ_{t0} ε_F)``, and ``num_steps`` network evaluations take it
                from ``t_0`` to 0 (CSP only: the template's atoms pair with ``atom_types`` in order).
            guide: property guidance (:class:`tgdmat.guidance.PropertyGuide`, CSP): the gradient
                of a noise-aware predictor's log-likelihood of each crystal's target value is
                added to every predicted score (``guide.scale = 0``: exactly the unguided chain).
            type_mask: generation only, ``[K]`` (every crystal) or ``[B, K]`` (one row per
                crystal) bool over atomic numbers 1..K: types marked ``False`` get logit −∞ in
                ``p̃_θ(x̃_0 | x_t)`` at every step, so the final types (``s = 0``) are drawn among
                the allowed ones (:attr:`tgdmat.config.SampleConfig.mask_unseen_elements`,
                :attr:`~tgdmat.config.SampleConfig.restrict_to_stated_elements`).

        Returns:
            ``(atom_types Z [N], frac_coords [N, 3], lattice [B, 3, 3])``.

        Raises:
            ValueError: a setting out of range (naming it), or a non-finite result (naming the
                crystals), so a NaN never leaves this function as a structure.
        """
        sc = dataclasses.replace(settings or SampleConfig(), **overrides)
        step_lr = step_lr_for(self.cfg, sc)
        corrector, guidance_scale, lattice_eta = sc.corrector, sc.guidance_scale, sc.lattice_eta
        dev = next(self.parameters()).device
        num_atoms = torch.as_tensor(num_atoms).to(dev).long()
        if num_atoms.dim() != 1 or num_atoms.numel() == 0:
            raise ValueError(f"num_atoms must be a non-empty 1-D tensor, got shape {tuple(num_atoms.shape)}")
        if int(num_atoms.min()) < 1:
            raise ValueError(f"every crystal needs at least one atom; got num_atoms {num_atoms.tolist()[:8]}")
        t_top = self.num_steps if start is None else int(start.t)
        if not 1 <= t_top <= self.num_steps:
            raise ValueError(f"start.t must be in [1, {self.num_steps}], got {t_top}")
        k = t_top if sc.num_steps is None else sc.num_steps
        if not 1 <= k <= t_top:
            raise ValueError(f"num_steps must be in [1, {t_top}] (None = every step), got {sc.num_steps}")
        B = num_atoms.shape[0]
        batch_idx = torch.repeat_interleave(torch.arange(B, device=dev), num_atoms)
        N = batch_idx.shape[0]
        L = self.lattice.prior(B, generator=generator, device=dev)
        F = self.torus.prior(N, generator=generator, device=dev)
        if self.types is None:
            if atom_types is None or atom_types.shape != (N,):
                raise ValueError(f"CSP sampling needs atom_types [N]=[{N}] (atomic numbers)")
            A = atom_types.to(dev).long() - 1
            if N and (int(A.min()) < 0 or int(A.max()) >= NUM_ELEMENTS):
                raise ValueError(f"atom_types must be atomic numbers 1..{NUM_ELEMENTS}, got "
                                 f"{sorted(set((A + 1).tolist()))}")
        else:
            A = self.types.prior(N, generator=generator, device=dev)
        if type_mask is not None:
            if self.types is None:
                raise ValueError("type_mask is for generation models (CSP atom types are given)")
            type_mask = torch.as_tensor(type_mask, dtype=torch.bool, device=dev)
            if type_mask.shape not in ((NUM_ELEMENTS,), (B, NUM_ELEMENTS)) or not bool(type_mask.any(-1).all()):
                raise ValueError(f"type_mask must be [{NUM_ELEMENTS}] or [B={B}, {NUM_ELEMENTS}] bool with at least "
                                 f"one True per row, got shape {tuple(type_mask.shape)}")
            if type_mask.dim() == 2:  # one row per crystal → one row per atom
                type_mask = type_mask[batch_idx]
        if start is not None:
            if self.types is not None:
                raise ValueError("template starts are for CSP models (atom types given)")
            L, F = start.noised(self, B, N, generator, dev)
        grid = strided_timesteps(t_top, k, sc.time_spacing)  # [t_top, ..., 0]
        from tqdm.auto import tqdm

        if guide is not None and guide.scale:
            if self.types is not None:
                raise ValueError("property guidance is for CSP models (atom types given)")
            if guide.targets.shape != (B,):
                raise ValueError(f"guide.targets must have one value per crystal [{B}], got {tuple(guide.targets.shape)}")
        guided = guide is not None and guide.scale != 0
        for t, s in tqdm(list(zip(grid[:-1], grid[1:])), desc="sampling", disable=not progress, leave=False):
            if corrector:
                out = self._predict(A, F, L, batch_idx, t, cond, guidance_scale)
                if guided:
                    out = self._guide(out, guide, A, F, L, batch_idx, t)
                z = torch.randn(F.shape, generator=generator, device=dev) if s > 0 else torch.zeros_like(F)
                F = self.torus.corrector_step(F, out.frac_score, t, step_lr, z)
            out = self._predict(A, F, L, batch_idx, t, cond, guidance_scale)
            if guided:
                out = self._guide(out, guide, A, F, L, batch_idx, t)
            zl = torch.randn(L.shape, generator=generator, device=dev) if s > 0 and lattice_eta > 0 else None
            zf = torch.randn(F.shape, generator=generator, device=dev) if s > 0 else None
            L = self.lattice.reverse_step(L, out.lattice_eps, t, s, zl, eta=lattice_eta)
            F = self.torus.reverse_step(F, out.frac_score, t, s, zf)
            if self.types is not None:
                logits = out.type_logits[:, :NUM_ELEMENTS]
                if type_mask is not None:  # a large finite negative: exp → 0 without inf − inf
                    logits = logits.masked_fill(~type_mask, -1e9)
                A = self.types.reverse_step(A, logits, t, s, generator=generator)
        bad_atoms = torch.zeros(B, dtype=torch.long, device=dev).index_add_(
            0, batch_idx, (~torch.isfinite(F).all(1)).long())
        bad = ~torch.isfinite(L).flatten(1).all(1) | (bad_atoms > 0)
        if bool(bad.any()):
            idx = torch.nonzero(bad).flatten().tolist()
            raise ValueError(f"the reverse chain produced non-finite values for crystals {idx[:10]} of {B} "
                             f"(step_lr={step_lr}, guidance_scale={guidance_scale}); lower them")
        return A + 1, F, L


@dataclass
class TemplateStart:
    """Where a template-guided chain starts: time ``t`` and the template crystals.

    Attributes:
        t: ``t_0`` in ``1..T``; the forward processes noise the template to this time.
        lattice: ``[B, 3, 3]`` template lattices (rows), one per crystal to sample.
        frac_coords: ``[N, 3]`` template fractional coordinates, atoms in the order of the
            ``atom_types`` passed to :meth:`TGDMat.sample`.
    """

    t: int
    lattice: Tensor
    frac_coords: Tensor

    def noised(self, model: "TGDMat", B: int, N: int, generator, device) -> tuple[Tensor, Tensor]:
        """``(L_{t0}, F_{t0})`` drawn from ``q(· | template)`` at ``t0 = self.t``."""
        if tuple(self.lattice.shape) != (B, 3, 3) or tuple(self.frac_coords.shape) != (N, 3):
            raise ValueError(f"template shapes {tuple(self.lattice.shape)}, {tuple(self.frac_coords.shape)} "
                             f"do not match {B} crystals with {N} atoms")
        eps_l = torch.randn(B, 3, 3, generator=generator, device=device)
        eps_f = torch.randn(N, 3, generator=generator, device=device)
        L = model.lattice.q_sample(self.lattice.to(device).float(), self.t, eps_l)
        F, _ = model.torus.q_sample(self.frac_coords.to(device).float(), self.t, eps_f)
        return L, F
