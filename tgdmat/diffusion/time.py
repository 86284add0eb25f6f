"""Time on the shared integer grid ``t ∈ {0, 1, …, T}`` of the three diffusion processes.

Every process (:mod:`lattice`, :mod:`torus`, :mod:`d3pm`) indexes its schedule by an integer
``t`` (``t = 0`` is clean data) and takes per-crystal ``[B]`` or per-atom ``[N]`` times. These
helpers check times, broadcast per-item coefficients, draw training times and build the strided
sampling grid, once for all three.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["as_time", "per_item", "uniform_times", "strided_timesteps", "TIME_SPACINGS"]


TIME_SPACINGS = ("uniform", "quadratic")


def strided_timesteps(num_steps: int, num_sampling_steps: int, spacing: str = "uniform") -> list[int]:
    """A decreasing integer time grid ``[T, …, 0]`` with exactly ``num_sampling_steps`` jumps.

    ``spacing="uniform"`` spaces the times evenly: ``strided_timesteps(1000, 1000) == [1000, 999,
    …, 1, 0]``; ``strided_timesteps(1000, 4) == [1000, 750, 500, 250, 0]``.

    ``spacing="quadratic"`` places time ``i`` of ``k`` at ``T (i/k)²`` (the quadratic schedule of
    DDIM, Song et al. 2021): short jumps near ``t = 0``, where the noise is small and the geometry is
    settled, long ones near ``T``. Where ``T (i/k)²`` would repeat an integer the grid takes single
    steps instead, so every jump is at least 1 and there are always ``k`` of them.

    Consecutive pairs ``(t, s)`` are the jumps to feed to the ``reverse_step`` methods of the three
    diffusion processes.
    """
    if not 1 <= num_sampling_steps <= num_steps:
        raise ValueError(f"num_sampling_steps must be in [1, {num_steps}], got {num_sampling_steps}")
    if spacing not in TIME_SPACINGS:
        raise ValueError(f"time spacing must be one of {TIME_SPACINGS}, got {spacing!r}")
    k = num_sampling_steps
    if spacing == "uniform":
        grid = torch.linspace(num_steps, 0, k + 1, dtype=torch.float64).round().long()
        return [int(v) for v in grid]
    up = [0]  # increasing: 0 = t_0 < t_1 < … < t_k = T
    for i in range(1, k + 1):
        want = round(num_steps * (i / k) ** 2)
        # at least one step above the last time, and room left for the remaining k - i jumps
        up.append(min(max(want, up[-1] + 1), num_steps - (k - i)))
    return up[::-1]


def as_time(t: int | Tensor, num_steps: int, name: str, device: torch.device,
             allow_zero: bool) -> Tensor:
    """Check an integer time (python int or integer tensor) and return it as a long tensor."""
    tt = torch.as_tensor(t, device=device)
    if tt.is_floating_point() or tt.is_complex() or tt.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer time step (int or integer tensor), got {tt.dtype}")
    tt = tt.long()
    lo = 0 if allow_zero else 1
    if tt.numel() and (int(tt.min()) < lo or int(tt.max()) > num_steps):
        raise ValueError(f"{name} must lie in [{lo}, {num_steps}], got range "
                         f"[{int(tt.min())}, {int(tt.max())}]")
    return tt


def per_item(values: Tensor, like: Tensor) -> Tensor:
    """Broadcast a scalar or a per-item coefficient ``[B]`` (crystals) / ``[N]`` (atoms) against ``like``."""
    values = values.to(like.dtype)
    if values.dim() == 0:
        return values
    if values.shape[0] != like.shape[0]:
        raise ValueError(f"time tensor has {values.shape[0]} entries but the data has "
                         f"{like.shape[0]} rows (per-atom processes take one time per atom: t[batch])")
    return values.reshape(values.shape[0], *([1] * (like.dim() - 1)))


def uniform_times(n: int, num_steps: int, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> Tensor:
    """Training times ``t ~ U{1..T}``, ``[n]`` long (DiffCSP's ``uniform_sample_t``)."""
    return torch.randint(1, num_steps + 1, (n,), generator=generator, device=device)
