"""DDPM on the lattice matrix (Ho et al., 2020) with the cosine schedule (Nichol & Dhariwal, 2021).

The lattice ``L`` is a ``[B, 3, 3]`` tensor whose ROWS are the lattice vectors (pymatgen's
``lattice.matrix``). It is diffused as an ordinary Euclidean variable, as in DiffCSP and TGDMat:

    q(L_t | L_0) = N( sqrt(ᾱ_t) L_0 , (1 − ᾱ_t) I ),      ᾱ_t = Π_{i=1..t} (1 − β_i),

with integer time ``t ∈ {1, …, T}`` and ``t = 0`` the clean lattice (``ᾱ_0 = 1``). The network
predicts the noise ``ε̂ ≈ ε`` (``L_t = sqrt(ᾱ_t) L_0 + sqrt(1 − ᾱ_t) ε``) and is trained with the
mean-squared error. Sampling runs the reverse chain over any decreasing sequence of times
``T = τ_K > … > τ_1 > τ_0 = 0`` (e.g. 50 of 1000 steps): every step uses the closed-form jump
``t → s`` built from ``ᾱ_t / ᾱ_s`` (see :meth:`LatticeDDPM.reverse_step`).

This module knows nothing of crystals, text or networks: tensors in, tensors out.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tgdmat.diffusion.time import as_time, per_item

__all__ = ["LatticeDDPM", "cosine_alpha_bars", "linear_betas"]

_SCHEDULES = ("cosine", "linear")


def cosine_alpha_bars(num_steps: int, s: float = 0.008, max_beta: float = 0.9999,
                      min_beta: float = 1e-4) -> Tensor:
    """The cosine schedule of Nichol & Dhariwal (2021), as ``ᾱ_t`` for ``t = 0..T`` (float64).

        f(t) = cos²( (t/T + s) / (1 + s) · π/2 ),   ᾱ_t = f(t) / f(0),
        β_t  = clip( 1 − ᾱ_t / ᾱ_{t−1}, min_beta, max_beta ),   ᾱ_t ← Π_{i≤t} (1 − β_i).

    The clipping (``β ∈ [1e-4, 0.9999]``, DiffCSP's ``cosine_beta_schedule``) keeps the last
    ``β_T`` below one, so ``ᾱ_T`` is tiny (≈ 2e-10 for ``T = 1000``) but positive.

    Returns:
        ``[T + 1]`` float64 tensor with ``ᾱ_0 = 1``.
    """
    t = torch.arange(num_steps + 1, dtype=torch.float64)
    f = torch.cos((t / num_steps + s) / (1 + s) * math.pi / 2) ** 2
    raw = f / f[0]
    betas = (1 - raw[1:] / raw[:-1]).clamp(min_beta, max_beta)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def linear_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """DDPM's linear schedule ``β_t = linspace(β_start, β_end, T)``, as ``[T]`` float64."""
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)


class LatticeDDPM(nn.Module):
    """Gaussian DDPM for the lattice matrix ``L`` (``[B, 3, 3]``, rows = lattice vectors).

    Args:
        num_steps: ``T``; times are integers ``1..T``, ``t = 0`` is clean data.
        schedule: ``"cosine"`` (Nichol & Dhariwal, ``s = 0.008``; DiffCSP/TGDMat) or
            ``"linear"`` (Ho et al., ``β_t`` from ``beta_start`` to ``beta_end``).
        beta_start, beta_end: end points of the linear schedule.
        cosine_s: offset ``s`` of the cosine schedule.

    Buffers (non-persistent, float32, indexed ``0..T``): ``betas`` (``β_0 = 0``), ``alphas``
    (``α_t = 1 − β_t``), ``alpha_bars`` (``ᾱ_t``, ``ᾱ_0 = 1``) and ``log_alpha_bars``
    (``log ᾱ_t``, computed in float64 so jump coefficients ``1 − ᾱ_t/ᾱ_s`` stay accurate).

    ``t`` and ``s`` arguments accept a python int (same time for the whole batch) or an integer
    tensor ``[B]`` (one time per crystal).
    """

    betas: Tensor
    alphas: Tensor
    alpha_bars: Tensor
    log_alpha_bars: Tensor

    def __init__(self, num_steps: int = 1000, schedule: str = "cosine", beta_start: float = 1e-4,
                 beta_end: float = 0.02, cosine_s: float = 0.008):
        super().__init__()
        if int(num_steps) < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {_SCHEDULES}, got {schedule!r}")
        self.num_steps = int(num_steps)
        self.schedule = schedule
        if schedule == "cosine":
            abar = cosine_alpha_bars(self.num_steps, s=cosine_s)
        else:
            if not 0 < beta_start <= beta_end < 1:
                raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
            b = linear_betas(self.num_steps, beta_start, beta_end)
            abar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - b, 0)])
        log_abar = torch.log(abar)
        betas = torch.cat([torch.zeros(1, dtype=torch.float64), 1 - abar[1:] / abar[:-1]])
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alphas", (1 - betas).float(), persistent=False)
        self.register_buffer("alpha_bars", abar.float(), persistent=False)
        self.register_buffer("log_alpha_bars", log_abar.float(), persistent=False)

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}, schedule={self.schedule!r}"

    # ------------------------------------------------------------------ helpers
    def _time(self, t: int | Tensor, name: str = "t", allow_zero: bool = False) -> Tensor:
        return as_time(t, self.num_steps, name, self.alpha_bars.device, allow_zero)

    def prior(self, batch_size: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> Tensor:
        """``L_T ~ N(0, I)``, ``[B, 3, 3]`` float32 (the generator must live on ``device``)."""
        device = self.alpha_bars.device if device is None else device
        return torch.randn(batch_size, 3, 3, generator=generator, device=device)

    # ------------------------------------------------------------------ forward process
    def q_sample(self, L0: Tensor, t: int | Tensor, eps: Tensor) -> Tensor:
        """Noise a clean lattice: ``L_t = sqrt(ᾱ_t) L_0 + sqrt(1 − ᾱ_t) ε``.

        Args:
            L0: ``[B, 3, 3]`` clean lattices (any shape ``[B, ...]`` works).
            t: int or ``[B]`` long, in ``0..T``.
            eps: ``[B, 3, 3]`` standard normal noise ``ε`` (pass it explicitly; it is also the
                regression target of the network).

        Returns:
            ``L_t`` with the shape of ``L0``.
        """
        if eps.shape != L0.shape:
            raise ValueError(f"eps shape {tuple(eps.shape)} != L0 shape {tuple(L0.shape)}")
        abar = per_item(self.alpha_bars[self._time(t, allow_zero=True)], L0)
        return abar.sqrt() * L0 + (1 - abar).sqrt() * eps

    @staticmethod
    def loss(eps_hat: Tensor, eps: Tensor, count: int | None = None) -> Tensor:
        """``L_lattice = Σ ‖ε̂ − ε‖² / count`` (DDPM's simple loss), a scalar.

        ``count`` defaults to the number of entries (the mean); data-parallel ranks pass the
        entry count of the *global* batch so that their shares add up to the global mean.
        """
        if eps_hat.shape != eps.shape:
            raise ValueError(f"eps_hat shape {tuple(eps_hat.shape)} != eps shape {tuple(eps.shape)}")
        return ((eps_hat - eps) ** 2).sum() / (eps.numel() if count is None else count)

    def predict_x0(self, L_t: Tensor, eps_hat: Tensor, t: int | Tensor) -> Tensor:
        """Invert ``q_sample`` with the predicted noise: ``L̂_0 = (L_t − sqrt(1 − ᾱ_t) ε̂) / sqrt(ᾱ_t)``.

        Shapes: ``L_t``, ``eps_hat`` ``[B, 3, 3]``; ``t`` int or ``[B]`` in ``1..T``. Returns
        ``[B, 3, 3]``. Near ``t = T`` (``ᾱ_T ≈ 2e-10`` with the cosine schedule) this divides by a
        tiny number: use it for monitoring, not inside the sampler.
        """
        abar = per_item(self.alpha_bars[self._time(t)], L_t)
        return (L_t - (1 - abar).sqrt() * eps_hat) / abar.sqrt()

    # ------------------------------------------------------------------ reverse process
    def reverse_step(self, L_t: Tensor, eps_hat: Tensor, t: int | Tensor, s: int | Tensor,
               noise: Tensor | None = None, eta: float = 1.0) -> Tensor:
        """One reverse step from time ``t`` to any earlier time ``s < t`` (``s = 0`` is the end).

        With ``α_{t|s} = ᾱ_t / ᾱ_s`` and ``β_{t|s} = 1 − α_{t|s}``, the DDPM posterior of a jump is

            q(L_s | L_t, L_0) = N( μ̃, β̃_{t|s} I ),   β̃_{t|s} = (1 − ᾱ_s)/(1 − ᾱ_t) · β_{t|s},
            μ̃ = 1/sqrt(α_{t|s}) · ( L_t − β_{t|s} / sqrt(1 − ᾱ_t) · ε ),

        which for ``s = t − 1`` is DiffCSP's ``c0 (L_t − c1 ε̂) + σ_t z``. This method uses the
        equivalent DDIM form (Song et al., 2021) so that ``eta`` interpolates to a deterministic
        sampler:

            L̂_0 = (L_t − sqrt(1 − ᾱ_t) ε̂) / sqrt(ᾱ_t),      σ² = η² β̃_{t|s},
            L_s  = sqrt(ᾱ_s) L̂_0 + sqrt(1 − ᾱ_s − σ²) ε̂ + σ z,   z = ``noise``.

        ``eta = 1`` (default) is exactly the ancestral DDPM step above; ``eta = 0`` is DDIM. At
        ``s = 0`` the variance is zero and the step returns the mean ``L̂_0`` (no noise used).
        With coarse strides the fixed variance ``β̃`` shrinks the spread of the samples: with the
        exact ``ε̂`` of Gaussian data (std 0.5) the sample std is 0.499 / 0.480 / 0.444 after
        1000 / 100 / 25 steps (η = 1) and 0.499 / 0.495 / 0.469 (η = 0).

        Args:
            L_t: ``[B, 3, 3]`` current lattices.
            eps_hat: ``[B, 3, 3]`` predicted noise ``ε̂(L_t, t)``.
            t: int or ``[B]`` long, in ``1..T``.
            s: int or ``[B]`` long, ``0 <= s < t``.
            noise: ``[B, 3, 3]`` standard normal ``z``; may be ``None`` only where ``σ = 0``
                (``s = 0`` or ``eta = 0``).
            eta: DDIM stochasticity ``η ∈ [0, 1]``.

        Returns:
            ``L_s``, ``[B, 3, 3]``.
        """
        tt, ss = self._time(t), self._time(s, "s", allow_zero=True)
        if bool((ss >= tt).any()):
            raise ValueError("reverse_step needs s < t for every crystal")
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        abar_t = self.alpha_bars[tt].double()
        abar_s = self.alpha_bars[ss].double()
        # β_{t|s} = 1 − ᾱ_t/ᾱ_s, accurate for small jumps via expm1 of the log difference.
        beta_ts = -torch.expm1(self.log_alpha_bars[tt].double() - self.log_alpha_bars[ss].double())
        var = eta ** 2 * (1 - abar_s) / (1 - abar_t) * beta_ts
        c_x0 = abar_s.sqrt() / abar_t.sqrt()                     # multiplies L_t
        c_eps = (1 - abar_s - var).clamp_min(0).sqrt() - abar_s.sqrt() * (1 - abar_t).sqrt() / abar_t.sqrt()
        out = per_item(c_x0, L_t) * L_t + per_item(c_eps, L_t) * eps_hat
        if bool((var > 0).any()):
            if noise is None:
                raise ValueError("reverse_step needs `noise` (standard normal, shape of L_t) when s > 0 "
                                 "and eta > 0")
            if noise.shape != L_t.shape:
                raise ValueError(f"noise shape {tuple(noise.shape)} != L_t shape {tuple(L_t.shape)}")
            out = out + per_item(var.sqrt(), L_t) * noise
        return out
