"""Pictures of crystals that render offline: a 2-D projection of the unit cell with an element key.

    fig, axes = plt.subplots(1, 3)
    for ax, s in zip(axes, structures):
        plot_structure(s, ax=ax, title=s.composition.reduced_formula)
"""
from __future__ import annotations

import numpy as np


def _colour(z: int):
    import matplotlib.pyplot as plt

    return plt.get_cmap("tab20")((z * 7) % 20)


def plot_structure(structure, ax=None, axis: int = 2, title: str | None = None, legend: bool = True):
    """Draw ``structure`` projected along lattice vector ``axis`` (0, 1, 2 = a, b, c).

    Atoms are discs sized by covalent radius and coloured by element, drawn in depth order;
    the cell is the parallelogram of the other two lattice vectors. Axes are Cartesian Å.
    Returns the matplotlib axes.
    """
    import matplotlib.pyplot as plt
    from pymatgen.core.periodic_table import Element

    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    lat = np.asarray(structure.lattice.matrix, dtype=float)
    keep = [i for i in range(3) if i != axis]
    normal = np.cross(lat[keep[0]], lat[keep[1]])
    normal /= np.linalg.norm(normal) or 1.0
    e1 = lat[keep[0]] / (np.linalg.norm(lat[keep[0]]) or 1.0)
    e2 = np.cross(normal, e1)
    cart = np.asarray(structure.cart_coords, dtype=float)
    xy = np.stack([cart @ e1, cart @ e2], axis=1)
    depth = cart @ normal
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float)
    cell = corners @ np.stack([lat[keep[0]] @ np.stack([e1, e2], 1), lat[keep[1]] @ np.stack([e1, e2], 1)])
    ax.plot(cell[:, 0], cell[:, 1], color="0.4", lw=1)
    zs = [site.specie.Z for site in structure]
    for i in np.argsort(depth):
        r = Element.from_Z(zs[i]).atomic_radius or 1.0
        ax.add_patch(plt.Circle(xy[i], 0.35 * float(r), color=_colour(zs[i]), ec="k", lw=0.5, alpha=0.9))
    if legend:
        seen = sorted(set(zs))
        handles = [plt.Line2D([], [], marker="o", ls="", color=_colour(z), mec="k", label=Element.from_Z(z).symbol)
                   for z in seen]
        ax.legend(handles=handles, fontsize=7, loc="upper right", frameon=False, handletextpad=0.1)
    pad = 1.5
    ax.set_xlim(min(xy[:, 0].min(), cell[:, 0].min()) - pad, max(xy[:, 0].max(), cell[:, 0].max()) + pad)
    ax.set_ylim(min(xy[:, 1].min(), cell[:, 1].min()) - pad, max(xy[:, 1].max(), cell[:, 1].max()) + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    if title:
        ax.set_title(title, fontsize=9)
    return ax
