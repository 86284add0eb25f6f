import sys; sys.path.insert(0, "scripts")
from nbtools import write
write("notebooks/03_diffusion.ipynb", [
("md", r"""
# 3. The joint diffusion and the equivariant denoiser

TGDMat {cite}`das2025tgdmat` noises the three parts of a crystal at one shared time $t \in \{1..T\}$,
each with the process that suits its geometry (DiffCSP {cite}`jiao2023diffcsp`):

| part | space | forward process | what the network predicts |
| --- | --- | --- | --- |
| lattice $L$ | $\mathbb{R}^{3\times 3}$ | DDPM {cite}`ho2020ddpm`, cosine schedule {cite}`nichol2021improved`: $L_t = \sqrt{\bar\alpha_t}L_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ | the noise $\epsilon$ |
| coordinates $F$ | torus $[0,1)^{3N}$ | wrapped normal: $F_t = w(F_0 + \sigma_t \epsilon)$ | the score $\nabla \log q(F_t \mid F_0)$ |
| atom types $A$ | $\{1..100\}^N$ | D3PM {cite}`austin2021d3pm`, absorbing state | the clean types $A_0$ |

This chapter draws the three schedules, the wrapped-normal score that the coordinates are trained on,
and checks numerically that the denoiser has the symmetries of a crystal.
"""),
("code", r"""
import numpy as np
import matplotlib.pyplot as plt
import torch
from tgdmat.diffusion.lattice import LatticeDDPM
from tgdmat.diffusion.torus import TorusVE, wrapped_normal_log_prob, wrapped_normal_score
from tgdmat.diffusion.d3pm import D3PM
from tgdmat.profile import profile

SEED = 0
torch.manual_seed(SEED)
print("profile:", profile())
T = 1000
lat, tor, typ = LatticeDDPM(T), TorusVE(T), D3PM(100, T)
"""),
("code", r"""
t = np.arange(T + 1)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
axes[0].plot(t, lat.alpha_bars.numpy())
axes[0].set(xlabel="step t", ylabel=r"$\bar\alpha_t$", title="lattice: DDPM cosine schedule")
axes[1].semilogy(t[1:], tor.sigmas[1:].numpy())
axes[1].set(xlabel="step t", ylabel=r"$\sigma_t$ (fractional units)", title="coordinates: geometric σ")
axes[2].plot(t, 1 - typ.alpha_bars.numpy())
axes[2].set(xlabel="step t", ylabel="P(type is masked)", title="atom types: absorbing D3PM")
fig.tight_layout()
"""),
("md", r"""
## The wrapped normal on the circle

A coordinate diffused on the circle has the density $\sum_k \mathcal{N}(x + k; 0, \sigma^2)$. For small $\sigma$
its score is the Gaussian $-x/\sigma^2$; for large $\sigma$ the images overlap, the density flattens
towards uniform and the score vanishes. The network regresses this score divided by $\sqrt{\lambda_t}$,
$\lambda_t = \mathbb{E}[\text{score}^2]$, so the target has unit scale at every noise level.
"""),
("code", r"""
x = torch.linspace(-0.5, 0.5, 801, dtype=torch.float64)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for sigma in (0.05, 0.15, 0.3, 0.5):
    axes[0].plot(x, wrapped_normal_log_prob(x, sigma).exp(), label=f"σ = {sigma}")
    axes[1].plot(x, wrapped_normal_score(x, sigma) * sigma, label=f"σ = {sigma}")
axes[0].set(xlabel="displacement x (fractional)", ylabel="density", title="wrapped normal density")
axes[1].set(xlabel="displacement x (fractional)", ylabel="σ · score", title=r"score $\partial_x \log p$ (scaled by σ)")
axes[0].legend(); axes[1].legend()
fig.tight_layout()
"""),
("md", r"""
## Symmetries of the denoiser, checked numerically

The CSPNet-style denoiser builds messages from O(3)-invariant lattice features and Fourier features
of fractional differences. Rotating the lattice must rotate the predicted lattice noise the same way
and leave the coordinate score unchanged; permuting atoms must permute the outputs; shifting every
atom by the same vector (mod 1) must change nothing.
"""),
("code", r"""
from scipy.spatial.transform import Rotation
import tgdmat
from tgdmat.denoiser import CSPDenoiser, DenoiserConfig

torch.set_default_dtype(torch.float64)
net = CSPDenoiser(DenoiserConfig(hidden_dim=64, num_layers=2, num_freqs=16, time_dim=32, cond_dim=8)).eval()
data = tgdmat.load_dataset("carbon_24", "test", progress=False).batch(range(3))
types, F, L, b = data.atom_types - 1, data.frac_coords.double(), data.lattice.double(), data.batch
tt, c = torch.full((3,), 0.3), torch.randn(3, 8)
R = torch.tensor(Rotation.random(random_state=SEED).as_matrix())
perm = torch.cat([torch.randperm(int(n)) + int(o) for n, o in zip(data.num_atoms, data.ptr[:-1])])
shift = torch.rand(3, 3)[b]
with torch.no_grad():
    ref = net(types, F, L, b, tt, c)
    rot = net(types, F, L @ R.T, b, tt, c)
    per = net(types[perm], F[perm], L, b, tt, c)
    tra = net(types, (F + shift) % 1.0, L, b, tt, c)
checks = {
    "rotation: ε̂_L(L Rᵀ) = ε̂_L(L) Rᵀ": (rot.lattice_eps - ref.lattice_eps @ R.T).abs().max(),
    "rotation: score unchanged": (rot.frac_score - ref.frac_score).abs().max(),
    "permutation: outputs permuted": (per.frac_score - ref.frac_score[perm]).abs().max(),
    "periodic translation: unchanged": (tra.frac_score - ref.frac_score).abs().max(),
}
torch.set_default_dtype(torch.float32)
for name, err in checks.items():
    print(f"{name:40s} max |error| = {float(err):.2e}")
"""),
])
