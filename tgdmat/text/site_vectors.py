"""Per-atom site vectors: what a Robocrystallographer description says about each atom's sites, as numbers.

:func:`tgdmat.text.sites.site_features` gathers, for one element, the facts of every site of that
element that the description names. This module writes them as one fixed-width vector
(:data:`SITE_VECTOR_DIM` floats), the input of the per-atom conditioning
(:class:`tgdmat.conditioning.SiteEncoder`):

=========================  =====  =======================================================
block                      width  content
=========================  =====  =======================================================
numbers                    9      :data:`SITE_NUMBERS`, each divided by its scale (0 if absent)
number mask                9      1 where the number was stated
mentioned                  1      1 when the description names a site of the element
shape                      24     multi-hot of the sites' geometry words (:data:`SHAPES`)
distorted                  1      any site "distorted"
polyhedra                  10     multi-hot of the polyhedron words (:data:`POLYHEDRA`)
connectivity               3      corner / edge / face sharing
neighbour counts           100    per neighbour element Z: mean bonded count / 12
neighbour bond lengths     100    per neighbour element Z: mid-range bond length / 3 Å
=========================  =====  =======================================================

The description names sites, not atoms (``"Ti(1)"``, ``"O(1,2)"``), so every atom of an element
gets the vector of *all* sites of its element (several inequivalent O sites are pooled: min/max
of their numbers, unions of their words; see :func:`site_features`). Nothing here depends on
the order of atoms: the vector of an atom is a function of its element and the text, so
permuting atoms permutes the vectors.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tgdmat.text.sites import (
    GEOMETRY_COORDINATION,
    POLYHEDRON_GEOMETRY,
    DescriptionFacts,
    parse_description,
    site_features,
)

__all__ = ["SITE_NUMBERS", "SHAPES", "POLYHEDRA", "CONNECTIVITY", "SITE_VECTOR_DIM", "NUMBERS_SLICE",
           "MASK_SLICE", "site_vector", "element_site_vectors", "atom_site_vectors"]

#: the numbers of a site vector and the scale each is divided by
SITE_NUMBERS: tuple[tuple[str, float], ...] = (
    ("coordination_mean", 12.0), ("coordination_min", 12.0), ("coordination_max", 12.0),
    ("bond_min", 3.0), ("bond_max", 3.0),  # Å, over all neighbour elements
    ("tilt_min", 90.0), ("tilt_max", 90.0),  # degrees
    ("n_sites", 4.0),
    ("bent_angle", 180.0),  # degrees, smallest "bent n degrees"
)
SHAPES: tuple[str, ...] = tuple(GEOMETRY_COORDINATION)
POLYHEDRA: tuple[str, ...] = tuple(POLYHEDRON_GEOMETRY)
CONNECTIVITY: tuple[str, ...] = ("corner", "edge", "face")
NUM_ELEMENTS = 100

_N = len(SITE_NUMBERS)
NUMBERS_SLICE = slice(0, _N)
MASK_SLICE = slice(_N, 2 * _N)
_MENTIONED = 2 * _N
_SHAPE0 = _MENTIONED + 1
_DISTORTED = _SHAPE0 + len(SHAPES)
_POLY0 = _DISTORTED + 1
_CONN0 = _POLY0 + len(POLYHEDRA)
_COUNT0 = _CONN0 + len(CONNECTIVITY)
_BOND0 = _COUNT0 + NUM_ELEMENTS
SITE_VECTOR_DIM = _BOND0 + NUM_ELEMENTS


def _z(symbol: str) -> int | None:
    from pymatgen.core.periodic_table import Element

    try:
        z = Element(symbol).Z
    except ValueError:
        return None
    return z if 1 <= z <= NUM_ELEMENTS else None


def site_vector(features: dict) -> np.ndarray:
    """The :data:`SITE_VECTOR_DIM` float32 vector of one element's :func:`site_features`."""
    v = np.zeros(SITE_VECTOR_DIM, dtype=np.float32)
    if not features.get("n_sites"):
        return v
    cn = features.get("coordination") or {}
    bonds = features.get("bond_lengths") or {}
    lows = [lo for lo, _ in bonds.values()]
    highs = [hi for _, hi in bonds.values()]
    tilt = features.get("tilt")
    bent = features.get("bent_angles") or []
    numbers = {
        "coordination_mean": cn.get("mean"), "coordination_min": cn.get("min"), "coordination_max": cn.get("max"),
        "bond_min": min(lows) if lows else None, "bond_max": max(highs) if highs else None,
        "tilt_min": tilt[0] if tilt else None, "tilt_max": tilt[1] if tilt else None,
        "n_sites": features["n_sites"], "bent_angle": min(bent) if bent else None,
    }
    for i, (name, scale) in enumerate(SITE_NUMBERS):
        x = numbers[name]
        if x is not None:
            v[i] = float(x) / scale
            v[_N + i] = 1.0
    v[_MENTIONED] = 1.0
    for word in features.get("shapes", ()):
        if word in SHAPES:
            v[_SHAPE0 + SHAPES.index(word)] = 1.0
    v[_DISTORTED] = float("distorted" in features.get("geometry", ()))
    for word in features.get("polyhedra", ()):
        if word in POLYHEDRA:
            v[_POLY0 + POLYHEDRA.index(word)] = 1.0
    for word in features.get("connectivity", ()):
        if word in CONNECTIVITY:
            v[_CONN0 + CONNECTIVITY.index(word)] = 1.0
    for el, (lo, hi) in (features.get("neighbour_counts") or {}).items():
        z = _z(el)
        if z is not None:
            v[_COUNT0 + z - 1] = 0.5 * (lo + hi) / 12.0
    for el, (lo, hi) in bonds.items():
        z = _z(el)
        if z is not None:
            v[_BOND0 + z - 1] = 0.5 * (lo + hi) / 3.0
    return v


def element_site_vectors(description: str | DescriptionFacts, elements: Sequence[str]) -> dict[str, np.ndarray]:
    """``element → site vector`` for ``elements`` (an element the text never names gets zeros)."""
    facts = parse_description(description) if isinstance(description, str) else description
    return {el: site_vector(site_features(facts, el)) for el in dict.fromkeys(elements)}


def atom_site_vectors(description: str | DescriptionFacts, symbols: Sequence[str]) -> np.ndarray:
    """``[n, SITE_VECTOR_DIM]``: row ``i`` is the site vector of atom ``i``'s element ``symbols[i]``."""
    table = element_site_vectors(description, symbols)
    if not len(symbols):
        return np.zeros((0, SITE_VECTOR_DIM), dtype=np.float32)
    return np.stack([table[s] for s in symbols])
