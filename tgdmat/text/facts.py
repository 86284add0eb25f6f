"""The facts a prompt states about a crystal, and the error raised for impossible ones.

Both directions use this record: :func:`tgdmat.text.prompts.structure_facts` fills it from a
structure, :func:`tgdmat.text.parse.parse_prompt` fills it from text. Generation uses
``formula`` to fix atom counts; metrics compare a generated structure's facts with the prompt's
(:meth:`PromptFacts.compare`) to measure prompt fidelity.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

#: Space-group numbers of each crystal system (International Tables, inclusive ranges).
CRYSTAL_SYSTEM_RANGES: dict[str, tuple[int, int]] = {
    "triclinic": (1, 2),
    "monoclinic": (3, 15),
    "orthorhombic": (16, 74),
    "tetragonal": (75, 142),
    "trigonal": (143, 167),
    "hexagonal": (168, 194),
    "cubic": (195, 230),
}


class PromptError(ValueError):
    """A prompt states something impossible or unreadable.

    Attributes:
        sentence: the sentence that holds the problem ("" for the whole prompt).
        part: which fact is wrong: ``"prompt"``, ``"formula"``, ``"elements"``,
            ``"crystal_system"``, ``"space_group"`` or a property name.
    """

    def __init__(self, message: str, sentence: str = "", part: str = "prompt"):
        self.sentence = sentence
        self.part = part
        where = f" in sentence {sentence!r}" if sentence else ""
        super().__init__(f"{part}: {message}{where}")


def crystal_system_of(space_group: int) -> str:
    """Crystal system of a space-group number 1..230."""
    if isinstance(space_group, bool) or not isinstance(space_group, int):
        raise TypeError(f"space group must be an int, not {type(space_group).__name__}")
    for system, (lo, hi) in CRYSTAL_SYSTEM_RANGES.items():
        if lo <= space_group <= hi:
            return system
    raise ValueError(f"space group {space_group} is outside 1..230")


@lru_cache(maxsize=1)
def element_symbols() -> frozenset[str]:
    """The 118 element symbols H..Og (pymatgen's ``Element``; no D/T isotope aliases)."""
    from pymatgen.core.periodic_table import Element

    return frozenset(el.symbol for el in Element)


@dataclass(frozen=True)
class PromptFacts:
    """Constraints stated by a prompt; ``None`` (or absent key) means "not stated".

    Attributes:
        formula: reduced formula, e.g. ``"SrTiO3"`` (pymatgen ``reduced_formula`` spelling).
        elements: element symbols in the stated order.
        crystal_system: one of :data:`CRYSTAL_SYSTEM_RANGES`' keys (lower case).
        space_group: International Tables number 1..230.
        properties: property name → value in the dataset's unit (eV/atom, eV for band gaps).
        units: property name → unit as written in the prompt ("" when none was written).
    """

    formula: str | None = None
    elements: tuple[str, ...] | None = None
    crystal_system: str | None = None
    space_group: int | None = None
    properties: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_empty(self) -> bool:
        """True when the prompt states no fact at all (free text only)."""
        return (self.formula is None and self.elements is None and self.crystal_system is None
                and self.space_group is None and not self.properties)

    def composition(self):
        """pymatgen ``Composition`` of the reduced formula (None when no formula is stated)."""
        if self.formula is None:
            return None
        from pymatgen.core import Composition

        return Composition(self.formula)

    def compare(self, other: "PromptFacts", rel_tol: float = 0.0,
                abs_tol: float = 0.0) -> dict[str, bool]:
        """Which of *our* stated facts ``other`` agrees with (facts we do not state are skipped).

        Elements compare as sets; properties with ``math.isclose(rel_tol, abs_tol)``.
        Use it with ``other = structure_facts(generated)`` for prompt fidelity.
        """
        out: dict[str, bool] = {}
        if self.formula is not None:
            out["formula"] = self.formula == other.formula
        if self.elements is not None:
            out["elements"] = other.elements is not None and set(self.elements) == set(
                other.elements)
        if self.crystal_system is not None:
            out["crystal_system"] = self.crystal_system == other.crystal_system
        if self.space_group is not None:
            out["space_group"] = self.space_group == other.space_group
        for key, value in self.properties.items():
            theirs = other.properties.get(key)
            out[key] = theirs is not None and math.isclose(value, theirs, rel_tol=rel_tol,
                                                           abs_tol=abs_tol)
        return out


#: Property columns of each dataset, in the order TGDMat's data loader lists them.
DATASET_PROPERTIES: dict[str, tuple[str, ...]] = {
    "perov_5": ("heat_ref",),
    "carbon_24": ("energy_per_atom",),
    "mp_20": ("formation_energy_per_atom", "band_gap", "e_above_hull"),
}

#: look-alike characters people type (minus signs, dashes, thin spaces, subscript digits) → ASCII
_ONE_TO_ONE = str.maketrans({
    "\u2212": "-", "\u2013": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-", "\u2014": ",",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\u2019": "'",
    **{chr(0x2080 + d): str(d) for d in range(10)},  # subscripts ₀..₉ (SrTiO₃, P6₃/mmc)
})


@lru_cache(maxsize=1)
def _space_group_table() -> dict[str, int]:
    """Hermann–Mauguin symbol (spaces and underscores removed) → number, from spglib.

    Short, full and "international" symbols of all 530 settings; underscore-free spellings
    (P63/mmc) and bar-less cubic spellings (Pm3m) are added where they name one group only.
    """
    import spglib

    table: dict[str, int] = {}
    for hall in range(1, 531):
        sg = spglib.get_spacegroup_type(hall)
        for name in (sg.international_short, sg.international, sg.international_full):
            table.setdefault(name.replace(" ", "").replace("_", ""), int(sg.number))
    aliases: dict[str, set[int]] = {}
    for name, number in table.items():
        if number >= 195 and "-3" in name:
            aliases.setdefault(name.replace("-3", "3"), set()).add(number)
    for alias, numbers in aliases.items():
        if len(numbers) == 1 and alias not in table:
            table[alias] = numbers.pop()
    return table


@lru_cache(maxsize=1)
def standard_symbols() -> dict[int, str]:
    """Number → spglib's short Hermann–Mauguin symbol of the standard setting (``P6_3/mmc``)."""
    import spglib

    out: dict[int, str] = {}
    for hall in range(1, 531):
        sg = spglib.get_spacegroup_type(hall)
        out.setdefault(int(sg.number), sg.international_short)
    return out


def space_group_number(symbol: str) -> int | None:
    """Number 1..230 of a Hermann–Mauguin symbol (``Pm-3m``, ``P6_3/mmc``, ``P 21/c``) or None."""
    key = re.sub(r"(\d)[\u0304\u0305¯]", r"-\1", symbol.translate(_ONE_TO_ONE))
    key = re.sub(r"¯(\d)", r"-\1", key).replace(" ", "").replace("_", "")
    return _space_group_table().get(key)
