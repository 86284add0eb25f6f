"""The three forward/reverse processes of TGDMat, one module each, one vocabulary.

==============  =====================================================  ==========================
module          process                                                state
==============  =====================================================  ==========================
``lattice``     DDPM on the lattice matrix ``L`` (cosine ``ᾱ_t``)      ``[B, 3, 3]``
``torus``       VE wrapped-normal diffusion of fractional coordinates  ``[N, 3]`` in ``[0, 1)``
``d3pm``        D3PM on atom types (absorbing or uniform)              ``[N]`` class indices
``time``        the shared integer time grid and its helpers           —
==============  =====================================================  ==========================

Every process speaks the same words (times are integers, ``t = 0`` is clean data):

* ``prior(n, generator, device)`` — a draw from ``p(x_T)``;
* ``q_sample(x_0, t, noise)`` — a draw from ``q(x_t | x_0)`` (the torus also returns its
  regression target);
* ``loss(prediction, target, …)`` — the process's training loss;
* ``reverse_step(x_t, prediction, t, s, …)`` — one step of ``p_θ(x_s | x_t)`` for any ``s < t``
  (strided chains jump with the exact posterior of the jump); the torus adds a Langevin
  ``corrector_step``.

None of them knows the network or the text: the model (:mod:`tgdmat.model`) feeds them its
predictions.
"""
from tgdmat.diffusion.d3pm import D3PM
from tgdmat.diffusion.lattice import LatticeDDPM
from tgdmat.diffusion.time import as_time, per_item, strided_timesteps, uniform_times
from tgdmat.diffusion.torus import TorusVE

__all__ = ["LatticeDDPM", "TorusVE", "D3PM", "as_time", "per_item", "strided_timesteps", "uniform_times"]
