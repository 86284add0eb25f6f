"""Discrete denoising diffusion (D3PM, Austin et al. 2021) over atom types.

Atom types are class indices ``a ∈ {0, …, K−1}`` (``a = Z − 1``, ``K = 100`` elements). Two
corruption kinds are supported; both have transition matrices of the form

    Q_t = α_t I + (1 − α_t) 1 πᵀ,     q(x_t = j | x_{t−1} = i) = [Q_t]_{ij}   (rows = "from"),

with a stationary row vector ``π`` and ``α_t = 1 − β_t``:

* ``"uniform"``: ``π = 1/K`` on the ``K`` classes (``K' = K`` states);
* ``"absorbing"``: one extra MASK state ``m = K`` is appended and ``π = e_m`` (``K' = K + 1``
  states); a type either stays or is masked, and a mask stays a mask.

Because ``(aI + (1−a)1πᵀ)(bI + (1−b)1πᵀ) = ab I + (1−ab) 1πᵀ``, every product is closed form:

    Q̄_t = Q_1 ⋯ Q_t = ᾱ_t I + (1 − ᾱ_t) 1πᵀ,                   ᾱ_t = Π_{i≤t} α_i,
    Q_{s→t} = Q_{s+1} ⋯ Q_t = r I + (1 − r) 1πᵀ,   r = ᾱ_t / ᾱ_s   (any s < t),

which is what lets the sampler jump from ``t`` to any ``s < t`` (strided sampling). The
posterior of a jump (Bayes' rule, D3PM Eq. 3 generalised) is

    q(x_s | x_t, x_0) = [Q_{s→t}]_{x_s, x_t} · [x_0 Q̄_s]_{x_s} / [x_0 Q̄_t]_{x_t},

and the model's reverse step (x0-parameterisation) marginalises it over the network's
``p̃_θ(x̃_0 | x_t) = softmax(x0_logits)``:

    p_θ(x_s | x_t) = Σ_{x̃_0} q(x_s | x_t, x̃_0) p̃_θ(x̃_0 | x_t)                    (reverse="marginal")

so the cross-entropy optimum ``p̃_θ = q(x_0 | x_t)`` gives exactly the true reverse process
``q(x_s | x_t)``. D3PM's Eq. 4 (and TGDMat's code) instead sums the JOINT,
``p_θ ∝ Σ q(x_s, x_t | x̃_0) p̃_θ(x̃_0 | x_t) = [Q_{s→t}]_{x_s,x_t} [p̃_θ Q̄_s]_{x_s}``
(``reverse="joint"``), which skips the division by ``q(x_t | x̃_0)``. For absorbing diffusion
``q(x_t | x̃_0)`` does not depend on ``x̃_0`` wherever ``p_θ`` is not already fixed, so the two
coincide exactly; for uniform diffusion they differ.

Widths (important when wiring a network): the network READS ``x_t`` with ``num_states = K'``
possible values (101 for absorbing: it needs an embedding for the mask) and WRITES
``x0_logits`` of width ``num_classes = K`` (100): ``x_0`` is never the mask.

What TGDMat's public code does (``generate_task/model/diffusion.py``): absorbing diffusion whose
rate is the lattice's cosine ``β_t`` (``ᾱ_t`` of Nichol & Dhariwal), hybrid loss
``0.001 · L_vb + L_ce``; it uses class 99 (Z = 100, fermium) as the absorbing state instead of
adding one, and starts sampling from uniformly random types rather than from the all-mask
prior. The defaults here follow its kind, schedule and loss weights, with a separate mask state.

This module knows nothing of crystals, text or networks: tensors in, tensors out.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tgdmat.diffusion.lattice import cosine_alpha_bars, linear_betas
from tgdmat.diffusion.time import as_time

__all__ = ["D3PM"]

_KINDS = ("uniform", "absorbing")
_SCHEDULES = ("cosine", "linear", "jsd")
_REVERSE = ("marginal", "joint")


def _alpha_bars(schedule: str, num_steps: int) -> Tensor:
    """``ᾱ_t`` for ``t = 0..T`` (float64) for a named schedule."""
    if schedule == "cosine":
        return cosine_alpha_bars(num_steps)
    if schedule == "linear":
        b = linear_betas(num_steps)
    else:  # "jsd": β_t = 1/(T − t + 1)  ⇒  ᾱ_t = 1 − t/T
        t = torch.arange(1, num_steps + 1, dtype=torch.float64)
        b = 1.0 / (num_steps - t + 1)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - b, 0)])


def _log_delta_plus_const(index: Tensor, width: int, diag: Tensor, off: Tensor) -> Tensor:
    """``log(v)`` for rows ``v_j = diag`` if ``j == index`` else ``off``; ``[N, width]``.

    ``diag`` and ``off`` are ``[N, 1]`` (``off`` may be 0). Only ``2N`` logarithms are taken: a
    ``log`` over a mostly-zero ``[N, K]`` tensor is an order of magnitude slower on CPU.
    """
    hit = index.unsqueeze(-1) == torch.arange(width, device=index.device)
    return torch.where(hit, torch.log(diag), torch.log(off))


def _categorical(probs: Tensor, generator: torch.Generator | None = None,
                 uniform: Tensor | None = None) -> Tensor:
    """One draw per row of ``probs`` ``[N, C]`` (rows need not be normalised) by inverse CDF.

    ``index = min{j : cdf_j > u · cdf_C}``, ``u ~ U[0, 1)``; classes of probability zero are never
    returned. Much faster than ``torch.multinomial`` for many rows on CPU.
    """
    n = probs.shape[0]
    if uniform is None:
        uniform = torch.rand(n, generator=generator, device=probs.device, dtype=probs.dtype)
    elif uniform.shape != (n,):
        raise ValueError(f"uniform must have shape [N]=[{n}], got {tuple(uniform.shape)}")
    cdf = probs.cumsum(-1)
    u = uniform.to(cdf.dtype).unsqueeze(-1) * cdf[:, -1:]
    idx = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    # u·cdf_C may round up to cdf_C: fall back to the last class of positive probability.
    c = probs.shape[-1]
    last = c - 1 - (probs > 0).flip(-1).to(torch.uint8).argmax(-1)
    return torch.where(idx >= c, last, idx)


class D3PM(nn.Module):
    """D3PM over ``K`` atom types with uniform or absorbing (mask) corruption.

    Args:
        num_classes: ``K`` real classes (atom type index ``Z − 1``).
        num_steps: ``T``; times are integers ``1..T``, ``t = 0`` is clean data.
        kind: ``"absorbing"`` (default, TGDMat) or ``"uniform"``.
        schedule: how ``ᾱ_t`` decays: ``"cosine"`` (default; Nichol & Dhariwal with ``s = 0.008``
            and β clipped to ``[1e-4, 0.9999]``: the lattice schedule, as in TGDMat), ``"linear"``
            (DDPM ``β_t`` from 1e-4 to 0.02; ``ᾱ_T ≈ 4e-5``) or ``"jsd"`` (``β_t = 1/(T−t+1)``,
            ``ᾱ_t = 1 − t/T``: D3PM's schedule for absorbing diffusion, linear in mutual
            information, fully masked at ``T``).
        vb_weight, ce_weight: the hybrid loss is ``vb_weight · L_vb + ce_weight · L_ce``.
            Defaults ``(0.001, 1.0)`` are TGDMat's; D3PM's paper writes
            ``L_vb + λ L_ce`` with ``λ = 0.001`` on CIFAR-10, i.e. ``(1.0, 0.001)``.
        reverse: ``"marginal"`` (default) or ``"joint"`` (D3PM Eq. 4); see the module docstring.

    Buffers (non-persistent, float32, indexed ``0..T``): ``alpha_bars`` (``ᾱ_0 = 1``),
    ``log_alpha_bars`` (from float64) and ``stationary`` (``π``, ``[K']``).

    ``t``/``s`` arguments are a python int or an integer tensor with one entry per atom ``[N]``.
    """

    alpha_bars: Tensor
    log_alpha_bars: Tensor
    stationary: Tensor

    def __init__(self, num_classes: int = 100, num_steps: int = 1000, kind: str = "absorbing",
                 schedule: str = "cosine", vb_weight: float = 0.001, ce_weight: float = 1.0,
                 reverse: str = "marginal"):
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if int(num_steps) < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        if schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {_SCHEDULES}, got {schedule!r}")
        if reverse not in _REVERSE:
            raise ValueError(f"reverse must be one of {_REVERSE}, got {reverse!r}")
        if vb_weight < 0 or ce_weight < 0:
            raise ValueError(f"loss weights must be >= 0, got vb={vb_weight}, ce={ce_weight}")
        self.num_classes = int(num_classes)
        self.num_steps = int(num_steps)
        self.kind = kind
        self.schedule = schedule
        self.vb_weight = float(vb_weight)
        self.ce_weight = float(ce_weight)
        self.reverse = reverse
        abar = _alpha_bars(schedule, self.num_steps)
        log_abar = torch.log(abar)            # −inf where ᾱ_t = 0 ("jsd" at t = T)
        if kind == "uniform":
            pi = torch.full((self.num_classes,), 1.0 / self.num_classes)
        else:
            pi = torch.zeros(self.num_classes + 1)
            pi[-1] = 1.0
        self.register_buffer("alpha_bars", abar.float(), persistent=False)
        self.register_buffer("log_alpha_bars", log_abar.float(), persistent=False)
        self.register_buffer("stationary", pi, persistent=False)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, num_states={self.num_states}, "
                f"num_steps={self.num_steps}, kind={self.kind!r}, schedule={self.schedule!r}, "
                f"reverse={self.reverse!r}")

    # ------------------------------------------------------------------ sizes
    @property
    def num_states(self) -> int:
        """``K'``: values ``x_t`` can take (``K + 1`` for absorbing: the last one is the mask)."""
        return self.num_classes + (1 if self.kind == "absorbing" else 0)

    @property
    def mask_index(self) -> int | None:
        """Index of the mask state (``K``) for absorbing diffusion, else ``None``."""
        return self.num_classes if self.kind == "absorbing" else None

    # ------------------------------------------------------------------ checks
    def _time(self, t: int | Tensor, name: str = "t", allow_zero: bool = False) -> Tensor:
        return as_time(t, self.num_steps, name, self.alpha_bars.device, allow_zero)

    def _states(self, x: Tensor, name: str, num: int) -> Tensor:
        if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"{name} must be integer class indices, got {x.dtype}")
        if x.dim() != 1:
            raise ValueError(f"{name} must have shape [N], got {tuple(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= num):
            raise ValueError(f"{name} indices must lie in [0, {num}), got range "
                             f"[{int(x.min())}, {int(x.max())}]")
        return x.long()

    def _coef(self, values: Tensor, n: int) -> Tensor:
        """Scalar or ``[N]`` → ``[N, 1]``."""
        if values.dim() == 0:
            return values.expand(n).unsqueeze(-1)
        if values.shape != (n,):
            raise ValueError(f"time tensor must be a scalar or have shape [N]=[{n}], "
                             f"got {tuple(values.shape)}")
        return values.unsqueeze(-1)

    def _log_p0(self, x0: Tensor) -> Tensor:
        """``log p(x_0)`` over the ``K'`` states, ``[N, K']`` (mask column −inf)."""
        if x0.is_floating_point():
            if x0.dim() != 2 or x0.shape[1] != self.num_classes:
                raise ValueError(f"x0 probabilities must have shape [N, K]=[N, {self.num_classes}], "
                                 f"got {tuple(x0.shape)}")
            logp = torch.log(x0)
        else:
            x0 = self._states(x0, "x0", self.num_classes)
            ones = torch.ones(x0.shape[0], 1, device=x0.device)
            logp = _log_delta_plus_const(x0, self.num_classes, ones, torch.zeros_like(ones))
        if self.kind == "absorbing":
            logp = torch.cat([logp, logp.new_full((logp.shape[0], 1), float("-inf"))], dim=1)
        return logp

    # ------------------------------------------------------------------ matrices
    def _matrix(self, a: Tensor) -> Tensor:
        """``a I + (1 − a) 1πᵀ`` for a tensor of coefficients ``a`` → ``[..., K', K']``."""
        a = a.to(self.stationary.dtype)[..., None, None]
        eye = torch.eye(self.num_states, device=a.device, dtype=a.dtype)
        return a * eye + (1 - a) * self.stationary.expand(self.num_states, -1)

    def transition(self, t: int | Tensor) -> Tensor:
        """One-step matrix ``Q_t`` (``[Q_t]_{ij} = q(x_t=j | x_{t−1}=i)``), ``t`` in ``1..T``.

        Returns ``[K', K']`` for an int ``t``, ``[..., K', K']`` for a tensor of times.
        """
        tt = self._time(t)
        return self._matrix(torch.exp(self.log_alpha_bars[tt] - self.log_alpha_bars[tt - 1]))

    def cumulative(self, t: int | Tensor) -> Tensor:
        """``Q̄_t = Q_1 ⋯ Q_t = ᾱ_t I + (1 − ᾱ_t) 1πᵀ`` (``Q̄_0 = I``), ``[..., K', K']``."""
        return self._matrix(self.alpha_bars[self._time(t, allow_zero=True)])

    def jump(self, s: int | Tensor, t: int | Tensor) -> Tensor:
        """``Q_{s→t} = Q_{s+1} ⋯ Q_t = r I + (1 − r) 1πᵀ``, ``r = ᾱ_t/ᾱ_s``, for ``s < t``."""
        tt, ss = self._time(t), self._time(s, "s", allow_zero=True)
        if bool((ss >= tt).any()):
            raise ValueError("jump needs s < t")
        return self._matrix(torch.exp(self.log_alpha_bars[tt] - self.log_alpha_bars[ss]))

    # ------------------------------------------------------------------ forward process
    def q_probs(self, x0: Tensor, t: int | Tensor) -> Tensor:
        """``q(x_t | x_0) = x_0 Q̄_t = ᾱ_t x_0 + (1 − ᾱ_t) π``, ``[N, K']``.

        Args:
            x0: ``[N]`` class indices in ``0..K−1`` or ``[N, K]`` probabilities.
            t: int or ``[N]`` long, in ``0..T``.
        """
        if x0.is_floating_point():
            p0 = torch.exp(self._log_p0(x0))
        else:
            x0 = self._states(x0, "x0", self.num_classes)
            p0 = (x0.unsqueeze(-1) == torch.arange(self.num_states, device=x0.device)).float()
        abar = self._coef(self.alpha_bars[self._time(t, allow_zero=True)], p0.shape[0]).to(p0.dtype)
        return abar * p0 + (1 - abar) * self.stationary.to(p0.dtype)

    def q_sample(self, x0: Tensor, t: int | Tensor, generator: torch.Generator | None = None,
                 uniform: Tensor | None = None) -> Tensor:
        """Draw ``x_t ~ q(x_t | x_0)``; ``x0`` ``[N]`` indices → ``[N]`` long in ``0..K'−1``.

        The randomness is one uniform number per atom (inverse CDF): pass them as ``uniform``
        ``[N]`` in ``[0, 1)``, or a ``generator`` living on the device of ``x0``.
        """
        return _categorical(self.q_probs(x0, t), generator, uniform)

    def prior(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> Tensor:
        """``x_T ~ π``: all masks (absorbing) or uniform classes (uniform), ``[n]`` long."""
        device = self.alpha_bars.device if device is None else device
        if self.kind == "absorbing":
            return torch.full((n,), self.num_classes, dtype=torch.long, device=device)
        return torch.randint(0, self.num_classes, (n,), generator=generator, device=device)

    # ------------------------------------------------------------------ posteriors
    def _posterior(self, log_p0: Tensor, x_t: Tensor, t: int | Tensor, s: int | Tensor) -> Tensor:
        """``log( [Q_{s→t}]_{·, x_t} ⊙ [p0 Q̄_s] )`` normalised over ``x_s``, ``[N, K']``.

        ``log_p0`` ``[N, K']`` holds ``log p0(x_0)`` (mask column −inf); ``p0`` need not sum to 1.
        """
        n = log_p0.shape[0]
        x_t = self._states(x_t, "x_t", self.num_states)
        if x_t.shape[0] != n:
            raise ValueError(f"x_t has {x_t.shape[0]} entries but x0 has {n}")
        tt, ss = self._time(t), self._time(s, "s", allow_zero=True)
        if bool((ss >= tt).any()):
            raise ValueError("the posterior needs s < t for every atom")
        dtype = log_p0.dtype
        log_r = self._coef(self.log_alpha_bars[tt] - self.log_alpha_bars[ss], n).to(dtype)
        log_abar_s = self._coef(self.log_alpha_bars[ss], n).to(dtype)
        log_1m_abar_s = torch.log(-torch.expm1(log_abar_s))          # −inf at s = 0
        pi = self.stationary.to(dtype)
        # Column x_t of Q_{s→t}: r δ_{x_s, x_t} + (1 − r) π_{x_t}.
        off = -torch.expm1(log_r) * pi[x_t].unsqueeze(-1)
        log_col = _log_delta_plus_const(x_t, self.num_states, torch.exp(log_r) + off, off)
        # log(p0 Q̄_s) = log(ᾱ_s p0 + (1 − ᾱ_s) (Σ p0) π); p0 may be unnormalised (reverse="marginal").
        # Written so that no logaddexp sees two −inf (absorbing) and gradients stay finite.
        if self.kind == "uniform":
            log_mass = torch.logsumexp(log_p0, dim=-1, keepdim=True)
            log_b = torch.logaddexp(log_abar_s + log_p0, log_1m_abar_s + log_mass + torch.log(pi))
        else:
            log_mass = torch.logsumexp(log_p0[:, :-1], dim=-1, keepdim=True)
            log_b = torch.cat([log_abar_s + log_p0[:, :-1], log_1m_abar_s + log_mass], dim=1)
        return torch.log_softmax(log_col + log_b, dim=-1)

    def posterior_logits(self, x0: Tensor, x_t: Tensor, t: int | Tensor, s: int | Tensor) -> Tensor:
        """``log q(x_s | x_t, x_0)`` for any ``0 <= s < t`` (normalised log-probabilities).

            q(x_s | x_t, x_0) ∝ [Q_{s→t}]_{x_s, x_t} · [x_0 Q̄_s]_{x_s}.

        Args:
            x0: ``[N]`` class indices, or ``[N, K]`` probabilities (then this is the posterior
                of ``x_s`` under the prior ``x_0 ~ x0``, which is :meth:`p_logits`' formula).
            x_t: ``[N]`` states in ``0..K'−1`` (must be reachable from ``x0``).
            t: int or ``[N]`` long in ``1..T``; ``s``: int or ``[N]`` long, ``s < t``.

        Returns:
            ``[N, K']`` log-probabilities (``−inf`` for impossible states; at ``s = 0`` the mask
            is impossible).
        """
        return self._posterior(self._log_p0(x0), x_t, t, s)

    def p_logits(self, x0_logits: Tensor, x_t: Tensor, t: int | Tensor, s: int | Tensor) -> Tensor:
        """Model reverse step ``log p_θ(x_s | x_t)`` from the network's ``x0_logits`` ``[N, K]``.

            marginal:  p_θ(x_s | x_t) = Σ_{x̃_0} q(x_s | x_t, x̃_0) p̃_θ(x̃_0 | x_t),
            joint:     p_θ(x_s | x_t) ∝ [Q_{s→t}]_{x_s, x_t} · [p̃_θ Q̄_s]_{x_s},

        with ``p̃_θ = softmax(x0_logits)``. The marginal form is the joint form applied to
        ``p̃'(x̃_0) ∝ p̃_θ(x̃_0) / q(x_t | x̃_0)`` (zero where ``x_t`` is unreachable from ``x̃_0``).

        Args:
            x0_logits: ``[N, K]`` (no mask column).
            x_t: ``[N]`` states in ``0..K'−1``.
            t: int or ``[N]`` long in ``1..T``; ``s``: int or ``[N]`` long, ``s < t``.

        Returns ``[N, K']`` normalised log-probabilities (differentiable in ``x0_logits``).
        """
        if x0_logits.dim() != 2 or x0_logits.shape[1] != self.num_classes:
            raise ValueError(f"x0_logits must have shape [N, K]=[N, {self.num_classes}] "
                             f"(no mask column), got {tuple(x0_logits.shape)}")
        log_p0 = torch.log_softmax(x0_logits, dim=-1)
        if self.reverse == "marginal":
            n = x0_logits.shape[0]
            x_t_ = self._states(x_t, "x_t", self.num_states)
            if x_t_.shape[0] != n:
                raise ValueError(f"x_t has {x_t_.shape[0]} entries but x0_logits has {n}")
            abar_t = self._coef(self.alpha_bars[self._time(t)], n).to(log_p0.dtype)
            # q(x_t | x̃_0) = ᾱ_t δ_{x̃_0, x_t} + (1 − ᾱ_t) π_{x_t}, for the K real classes x̃_0
            # (the mask x_t = K is never "hit": its column is (1 − ᾱ_t) for every x̃_0).
            off = (1 - abar_t) * self.stationary.to(log_p0.dtype)[x_t_].unsqueeze(-1)
            log_q_col = _log_delta_plus_const(x_t_, self.num_classes, abar_t + off, off)
            # divide by q(x_t | x̃_0); x̃_0 that cannot produce x_t (log q = −inf) get weight 0
            log_p0 = torch.where(torch.isfinite(log_q_col), log_p0 - log_q_col,
                                 torch.full_like(log_p0, float("-inf")))
        if self.kind == "absorbing":
            log_p0 = torch.cat([log_p0, log_p0.new_full((log_p0.shape[0], 1), float("-inf"))], dim=1)
        return self._posterior(log_p0, x_t, t, s)

    # ------------------------------------------------------------------ training
    def loss(self, x0_logits: Tensor, x0: Tensor, x_t: Tensor, t: int | Tensor,
             s: int | Tensor | None = None) -> dict[str, Tensor]:
        """Hybrid loss ``vb_weight · L_vb + ce_weight · L_ce`` (D3PM Eq. 5), averaged over atoms.

            L_vb = KL( q(x_s | x_t, x_0) ‖ p_θ(x_s | x_t) ),   s = t − 1 by default
                   (at t = 1 this is −log p_θ(x_0 | x_1), D3PM's L_0 term),
            L_ce = −log p̃_θ(x_0 | x_t) = cross_entropy(x0_logits, x_0).

        Args:
            x0_logits: ``[N, K]`` network output.
            x0: ``[N]`` true classes; ``x_t``: ``[N]`` noisy states from :meth:`q_sample`.
            t: int or ``[N]`` long in ``1..T``; ``s``: optional earlier time (default ``t − 1``).

        Returns:
            ``{"loss", "vb", "ce"}`` scalars (``loss`` is the weighted sum).
        """
        tt = self._time(t)
        ss = tt - 1 if s is None else s
        log_q = self.posterior_logits(x0, x_t, tt, ss)
        log_p = self.p_logits(x0_logits, x_t, tt, ss)
        q = torch.exp(log_q)
        kl = torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q)).sum(-1)
        vb = kl.mean()
        ce = F.cross_entropy(x0_logits, self._states(x0, "x0", self.num_classes))
        return {"loss": self.vb_weight * vb + self.ce_weight * ce, "vb": vb, "ce": ce}

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def reverse_step(self, x_t: Tensor, x0_logits: Tensor, t: int | Tensor, s: int | Tensor,
                     generator: torch.Generator | None = None, final: str = "argmax") -> Tensor:
        """Draw ``x_s ~ p_θ(x_s | x_t)`` for any ``s < t``; returns ``[N]`` long.

        Where ``s = 0`` the result is a clean type in ``0..K−1`` (never the mask):
        ``final="argmax"`` takes the most probable one under ``p_θ(x_0 | x_t)`` (for absorbing
        diffusion, unmasked atoms keep their type and masked ones take the argmax of
        ``x0_logits``), ``final="sample"`` samples it. The generator must live on the device of
        ``x0_logits``.
        """
        if final not in ("argmax", "sample"):
            raise ValueError(f"final must be 'argmax' or 'sample', got {final!r}")
        log_p = self.p_logits(x0_logits, x_t, t, s)
        drawn = _categorical(torch.exp(log_p), generator)
        ss = self._coef(self._time(s, "s", allow_zero=True), x_t.shape[0]).squeeze(-1)
        if final == "argmax":
            drawn = torch.where(ss == 0, log_p.argmax(-1), drawn)
        return drawn
