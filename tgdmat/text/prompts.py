"""Short prompts: the TGDMat template built from a structure and its property values.

TGDMat (Das et al., ICLR 2025) conditions on two kinds of text. The *short* prompt is made at
load time from the crystal itself::

    Below is a description of a bulk material. The chemical formula is SrTiO3. The elements are
    Sr, Ti, O. The formation energy per atom is -0.1234. The spacegroup number is 221. The crystal
    system is cubic. Generate the material:

The opening and closing sentences are fixed; the five (Perov-5, Carbon-24) or seven (MP-20) fact
sentences in between are

* the reduced formula (pymatgen ``Composition.reduced_formula``),
* the elements, in the order pymatgen's ``Composition.elements`` lists them,
* each property of the dataset, rounded to :data:`PROPERTY_DECIMALS` decimals
  (Perov-5 ``heat_ref``; Carbon-24 ``energy_per_atom``; MP-20 ``formation_energy_per_atom``,
  ``band_gap``, ``e_above_hull``),
* the space-group number and the crystal system, both from spglib through pymatgen's
  ``SpacegroupAnalyzer`` with :data:`SYMPREC` and :data:`ANGLE_TOLERANCE` (the values TGDMat
  uses: pymatgen's defaults).

TGDMat shuffles the fact sentences once per row with Python's global ``random``. Here the order is
an explicit choice: pass a seeded generator (training: a new order each time it is drawn, the
same orders for the same seed) or nothing (evaluation: the fixed order of
:data:`DATASET_ATTRIBUTES`). The public TGDMat code states no units; ``units=True`` appends them
(eV/atom, eV), which :func:`tgdmat.text.parse.parse_prompt` reads back.

Training-time augmentation (:func:`augmented_prompt`), so that a model trained on the template
survives prompts that omit or paraphrase facts:

* paraphrase: each fact sentence is written in one of several wordings
  (:func:`attribute_wordings`: formula, elements, space group as number or Hermann–Mauguin
  symbol, crystal system, each property under its usual names, with or without eV/atom, eV per
  atom or meV/atom), drawn with the seeded generator. Every wording is read back to the same
  fact by :func:`tgdmat.text.reader.read_prompt` (the tests check all of them on real crystals).
* attribute dropout (:func:`drop_attributes`): each fact sentence is dropped independently with
  probability ``drop_prob``. When every one is dropped the prompt is :data:`NULL_PROMPT`
  (``None``): the training loop maps it to classifier-free guidance's null condition (the
  denoiser's learned "no condition", ``drop_cond = True``), not to an encoded empty string.

:func:`facts_subset` gives the facts of the kept attributes, for the "text+facts" conditioning.
With ``drop_prob=0`` and ``paraphrase=False``, :func:`augmented_prompt` returns exactly
:func:`prompt_from_facts`'s prompt (and draws the same random numbers).
"""
from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from tgdmat.text.facts import DATASET_PROPERTIES, PromptFacts, standard_symbols

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from pymatgen.core import Structure

#: spglib distance tolerance in Å for the stated space group (pymatgen's default, used by TGDMat).
SYMPREC: float = 0.01
#: spglib angle tolerance in degrees (pymatgen's default, used by TGDMat).
ANGLE_TOLERANCE: float = 5.0
#: Property values are stated rounded to this many decimals, as TGDMat does (``round(x, 4)``).
PROPERTY_DECIMALS: int = 4

HEADER = "Below is a description of a bulk material."
FOOTER = "Generate the material:"

#: Fact sentences of each dataset in the fixed (evaluation) order, TGDMat's attribute list order.
DATASET_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "perov_5": ("formula", "elements", "heat_ref", "space_group", "crystal_system"),
    "carbon_24": ("formula", "elements", "energy_per_atom", "space_group", "crystal_system"),
    "mp_20": ("formula", "elements", "formation_energy_per_atom", "band_gap", "e_above_hull",
              "space_group", "crystal_system"),
}

#: The words TGDMat uses for each property. Perov-5's ``heat_ref`` is called a formation energy.
PROPERTY_PHRASES: dict[str, str] = {
    "heat_ref": "formation energy per atom",
    "formation_energy_per_atom": "formation energy per atom",
    "energy_per_atom": "energy per atom",
    "band_gap": "band gap",
    "e_above_hull": "energy above the convex hull",
}

#: Units appended when ``units=True``: energies per atom in eV/atom, the band gap in eV.
PROPERTY_UNITS: dict[str, str] = {
    "heat_ref": "eV/atom",
    "formation_energy_per_atom": "eV/atom",
    "energy_per_atom": "eV/atom",
    "band_gap": "eV",
    "e_above_hull": "eV/atom",
}


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASET_PROPERTIES:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {sorted(DATASET_PROPERTIES)}"
        )


def format_value(value: float, decimals: int = PROPERTY_DECIMALS) -> str:
    """The number as the prompt states it: ``str(round(value, decimals))`` (TGDMat's format).

    ``-0.0`` is written ``0.0`` so a rounded tiny negative value does not read as a sign.
    """
    rounded = round(float(value), decimals)
    if rounded == 0.0:
        rounded = 0.0
    return str(rounded)


def symmetry(structure: "Structure", symprec: float = SYMPREC,
             angle_tolerance: float = ANGLE_TOLERANCE) -> tuple[int, str]:
    """(space-group number 1..230, crystal system) of ``structure`` from spglib via pymatgen."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle_tolerance)
    return int(sga.get_space_group_number()), str(sga.get_crystal_system())


def structure_facts(structure: "Structure", properties: Mapping[str, float] | None = None,
                    dataset: str | None = None, decimals: int | None = PROPERTY_DECIMALS,
                    symprec: float = SYMPREC,
                    angle_tolerance: float = ANGLE_TOLERANCE) -> PromptFacts:
    """The facts a short prompt states about ``structure``.

    Args:
        structure: a pymatgen ``Structure`` (ordered, one species per site).
        properties: property values by column name; with ``dataset`` only that dataset's
            properties are kept (each must be present and finite), without it all are kept.
        dataset: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20"``, or None.
        decimals: round property values as the prompt states them (None keeps them unrounded).

    Returns:
        :class:`PromptFacts` with the reduced formula, elements (composition order), crystal
        system, space-group number and properties.
    """
    if not structure.is_ordered:
        raise ValueError("short prompts need an ordered structure (one species per site)")
    if len(structure) == 0:
        raise ValueError("short prompts need a structure with at least one site")
    props: dict[str, float] = {}
    properties = dict(properties or {})
    if dataset is not None:
        _check_dataset(dataset)
        keys: Sequence[str] = DATASET_PROPERTIES[dataset]
        missing = [k for k in keys if k not in properties]
        if missing:
            raise ValueError(
                f"{dataset} short prompts need the properties {list(keys)}; missing {missing}"
            )
    else:
        keys = list(properties)
    for key in keys:
        try:
            value = float(properties[key])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"property {key!r} is not a number: {properties[key]!r}") from exc
        if not math.isfinite(value):
            raise ValueError(f"property {key!r} is not finite: {value!r}")
        if decimals is not None:
            value = float(format_value(value, decimals))
        props[key] = value
    space_group, crystal_system = symmetry(structure, symprec, angle_tolerance)
    comp = structure.composition
    return PromptFacts(
        formula=comp.reduced_formula,
        elements=tuple(el.symbol for el in comp.elements),
        crystal_system=crystal_system,
        space_group=space_group,
        properties=props,
    )


def _sentence(attr: str, facts: PromptFacts, units: bool, decimals: int) -> str:
    if attr == "formula":
        return f"The chemical formula is {facts.formula}."
    if attr == "elements":
        return f"The elements are {', '.join(facts.elements or ())}."
    if attr == "space_group":
        return f"The spacegroup number is {facts.space_group}."
    if attr == "crystal_system":
        return f"The crystal system is {facts.crystal_system}."
    value = format_value(facts.properties[attr], decimals)
    unit = f" {PROPERTY_UNITS[attr]}" if units else ""
    return f"The {PROPERTY_PHRASES[attr]} is {value}{unit}."


def attribute_order(dataset: str, rng: "random.Random | np.random.Generator | int | None" = None
                    ) -> list[str]:
    """Order of the fact sentences: fixed without ``rng``, a seeded permutation with one.

    ``rng`` may be an ``int`` seed, a ``random.Random`` or a ``numpy.random.Generator``; a
    generator advances, so successive calls give fresh orders that repeat for the same seed.
    """
    _check_dataset(dataset)
    attrs = list(DATASET_ATTRIBUTES[dataset])
    if rng is None:
        return attrs
    if isinstance(rng, bool):
        raise TypeError("rng must be None, an int seed, random.Random or numpy Generator")
    if isinstance(rng, int):
        rng = random.Random(rng)
    if isinstance(rng, random.Random):
        rng.shuffle(attrs)
        return attrs
    if hasattr(rng, "permutation"):
        return [attrs[i] for i in rng.permutation(len(attrs))]
    raise TypeError(
        f"rng must be None, an int seed, random.Random or numpy Generator, not {type(rng).__name__}"
    )


def prompt_from_facts(facts: PromptFacts, dataset: str,
                      rng: "random.Random | np.random.Generator | int | None" = None,
                      units: bool = False, decimals: int = PROPERTY_DECIMALS) -> str:
    """Write the short prompt that states ``facts`` (see :func:`short_prompt`)."""
    order = attribute_order(dataset, rng)
    body = " ".join(_sentence(a, facts, units, decimals) for a in order)
    return f"{HEADER} {body} {FOOTER}"


def short_prompt(structure: "Structure", properties: Mapping[str, float], dataset: str,
                 rng: "random.Random | np.random.Generator | int | None" = None,
                 units: bool = False) -> str:
    """TGDMat's short prompt for one crystal.

    Args:
        structure: pymatgen ``Structure`` (TGDMat uses the Niggli-reduced cell; the stated facts
            do not depend on the cell choice).
        properties: the row's property values; the dataset's columns
            (:data:`DATASET_PROPERTIES`) must be present and finite.
        dataset: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20"``.
        rng: None for the fixed evaluation order; a seed / ``random.Random`` /
            ``numpy.random.Generator`` for the shuffled training order.
        units: append eV/atom (eV for the band gap) to values; TGDMat states none.

    Returns:
        ``"Below is a description of a bulk material. <facts> Generate the material:"``.
    """
    facts = structure_facts(structure, properties, dataset)
    return prompt_from_facts(facts, dataset, rng=rng, units=units)


# ============================================================================ augmentation
#: What :func:`augmented_prompt` returns for the text when every attribute was dropped: the
#: training loop maps it to classifier-free guidance's null condition (``drop_cond = True``).
NULL_PROMPT = None

#: Wordings of each fact sentence; the first is TGDMat's (``{formula}``; ``{comma}`` "Sr, Ti, O",
#: ``{and_}`` "Sr, Ti and O"; ``{number}``, ``{symbol}``; ``{system}``, ``{a_system}`` "a cubic").
WORDINGS: dict[str, tuple[str, ...]] = {
    "formula": (
        "The chemical formula is {formula}.",
        "Its chemical formula is {formula}.",
        "The formula is {formula}.",
        "Formula: {formula}.",
        "The composition is {formula}.",
        "It has the reduced formula {formula}.",
    ),
    "elements": (
        "The elements are {comma}.",
        "Elements: {comma}.",
        "It is composed of {and_}.",
        "It consists of the elements {and_}.",
        "The constituent elements are {and_}.",
    ),
    "space_group": (
        "The spacegroup number is {number}.",
        "The space group number is {number}.",
        "It belongs to space group {number}.",
        "Space group: {number}.",
        "Its space group is No. {number}.",
        "The space group is {symbol}.",
        "It crystallizes in the {symbol} space group.",
        "Space group symbol: {symbol}.",
        "It has {symbol} symmetry (space group {number}).",
    ),
    "crystal_system": (
        "The crystal system is {system}.",
        "Crystal system: {system}.",
        "It is {a_system} crystal.",
        "It belongs to the {system} crystal system.",
        "The structure has {system} symmetry.",
        "The lattice is {system}.",
    ),
    "property": (
        "The {name} is {value}.",
        "Its {name} is {value}.",
        "It has a {name} of {value}.",
        "{Name}: {value}.",
        "The {name} is about {value}.",
        "The {name} should be {value}.",
    ),
}

#: Names people use for each property (the first is TGDMat's).
PROPERTY_NAMES: dict[str, tuple[str, ...]] = {
    "heat_ref": ("formation energy per atom", "formation energy", "heat of formation",
                 "formation enthalpy", "enthalpy of formation"),
    "formation_energy_per_atom": ("formation energy per atom", "formation energy",
                                  "heat of formation", "formation enthalpy",
                                  "enthalpy of formation"),
    "energy_per_atom": ("energy per atom", "total energy per atom", "total energy"),
    "band_gap": ("band gap", "bandgap", "electronic band gap"),
    "e_above_hull": ("energy above the convex hull", "energy above hull",
                     "distance to the convex hull"),
}

#: Ways to write a value of each property: ``{v}`` in eV(/atom), ``{mv}`` in meV(/atom).
VALUE_FORMS: dict[str, tuple[str, ...]] = {
    "heat_ref": ("{v}", "{v} eV/atom", "{v} eV per atom", "{mv} meV/atom"),
    "formation_energy_per_atom": ("{v}", "{v} eV/atom", "{v} eV per atom", "{mv} meV/atom"),
    "energy_per_atom": ("{v}", "{v} eV/atom", "{v} eV per atom"),
    "band_gap": ("{v}", "{v} eV", "{mv} meV"),
    "e_above_hull": ("{v}", "{v} eV/atom", "{v} eV per atom", "{mv} meV/atom"),
}


def _milli(text: str) -> str:
    """The decimal ``text`` times 1000, written without an exponent ("-0.1234" → "-123.4")."""
    scaled = Decimal(text).scaleb(3)
    return format(scaled.normalize() if scaled != 0 else Decimal(0), "f")


def attribute_wordings(attr: str, facts: PromptFacts, dataset: str,
                       decimals: int = PROPERTY_DECIMALS) -> list[str]:
    """Every wording of the sentence stating ``attr`` of ``facts``; the first is TGDMat's."""
    _check_dataset(dataset)
    if attr == "formula":
        fields = {"formula": facts.formula}
    elif attr == "elements":
        els = list(facts.elements or ())
        and_ = els[0] if len(els) == 1 else f"{', '.join(els[:-1])} and {els[-1]}"
        fields = {"comma": ", ".join(els), "and_": and_}
    elif attr == "space_group":

        fields = {"number": facts.space_group, "symbol": standard_symbols()[facts.space_group]}
    elif attr == "crystal_system":
        system = facts.crystal_system
        fields = {"system": system, "a_system": f"{'an' if system[0] in 'aeiou' else 'a'} {system}"}
    else:
        value = format_value(facts.properties[attr], decimals)
        return [frame.format(name=name, Name=name[0].upper() + name[1:],
                             value=form.format(v=value, mv=_milli(value)))
                for frame in WORDINGS["property"] for name in PROPERTY_NAMES[attr]
                for form in VALUE_FORMS[attr]]
    return [w.format(**fields) for w in WORDINGS[attr]]


def _as_generator(rng: "random.Random | np.random.Generator | int"
                  ) -> "random.Random | np.random.Generator":
    if isinstance(rng, bool) or rng is None:
        raise TypeError("rng must be an int seed, random.Random or numpy Generator")
    return random.Random(rng) if isinstance(rng, int) else rng


def _index(rng: "random.Random | np.random.Generator", n: int) -> int:
    return rng.randrange(n) if isinstance(rng, random.Random) else int(rng.integers(n))


def drop_attributes(attributes: Sequence[str], drop_prob: float,
                    rng: "random.Random | np.random.Generator | int") -> list[str]:
    """The attributes kept when each is dropped independently with probability ``drop_prob``.

    One uniform draw per attribute, in order; the kept ones keep their order. An empty list
    means the null prompt (see :data:`NULL_PROMPT`).
    """
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob must be in [0, 1], not {drop_prob!r}")
    rng = _as_generator(rng)
    return [a for a in attributes if not float(rng.random()) < drop_prob]


def facts_subset(facts: PromptFacts, attributes: Sequence[str]) -> PromptFacts:
    """``facts`` restricted to ``attributes`` (what a prompt stating only those says)."""
    keep = set(attributes)
    return replace(
        facts,
        formula=facts.formula if "formula" in keep else None,
        elements=facts.elements if "elements" in keep else None,
        crystal_system=facts.crystal_system if "crystal_system" in keep else None,
        space_group=facts.space_group if "space_group" in keep else None,
        properties={k: v for k, v in facts.properties.items() if k in keep},
        units={k: v for k, v in facts.units.items() if k in keep},
    )


def facts_without(facts: PromptFacts, attributes: Sequence[str]) -> PromptFacts:
    """``facts`` with ``attributes`` left out: the complement of :func:`facts_subset`."""
    omit = set(attributes)
    return facts_subset(facts, [a for a in ("formula", "elements", "crystal_system", "space_group", *facts.properties)
                                if a not in omit])


def augmented_prompt(facts: PromptFacts, dataset: str,
                     rng: "random.Random | np.random.Generator | int | None" = None,
                     paraphrase: bool = False, drop_prob: float = 0.0, units: bool = False,
                     decimals: int = PROPERTY_DECIMALS, never: Sequence[str] = ()
                     ) -> tuple[str | None, tuple[str, ...]]:
    """A training prompt for ``facts`` with paraphrase and attribute dropout.

    Args:
        facts: the crystal's facts (:func:`structure_facts` with the data set).
        dataset: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20"``.
        rng: int seed, ``random.Random`` or ``numpy.random.Generator`` (advances); None only
            without paraphrase and dropout (then: the fixed evaluation order).
        paraphrase: draw each sentence's wording from :func:`attribute_wordings`.
        drop_prob: probability of dropping each fact sentence (:func:`drop_attributes`).
        units: units in TGDMat's wording (paraphrases choose their own).
        never: attributes never stated (``ModelConfig.never_stated``): removed from the order
            before dropout, so they cost no random draws.

    Returns:
        ``(text, kept)``: the prompt and the attributes it states, in sentence order; ``text``
        is :data:`NULL_PROMPT` (None) when all were dropped. Draws: the sentence order (as
        :func:`prompt_from_facts`), then one per attribute for dropout when ``drop_prob > 0``,
        then one per kept sentence for its wording when ``paraphrase``.
    """
    if rng is None and (paraphrase or drop_prob > 0):
        raise ValueError("paraphrase and attribute dropout need rng (a seed or a generator)")
    if rng is not None:
        rng = _as_generator(rng)
    order = attribute_order(dataset, rng)
    unknown = set(never) - set(order)
    if unknown:
        raise ValueError(f"{dataset} prompts have no attribute {sorted(unknown)}; they state {sorted(order)}")
    order = [a for a in order if a not in set(never)]
    kept = drop_attributes(order, drop_prob, rng) if drop_prob > 0 else order
    if not kept:
        return NULL_PROMPT, ()
    if paraphrase:
        sentences = []
        for attr in kept:
            options = attribute_wordings(attr, facts, dataset, decimals)
            sentences.append(options[_index(rng, len(options))])
    else:
        sentences = [_sentence(a, facts, units, decimals) for a in kept]
    return f"{HEADER} {' '.join(sentences)} {FOOTER}", tuple(kept)


def probe_prompt(facts: PromptFacts, dataset: str, omit: Sequence[str] = (), paraphrase: Sequence[str] = (),
                 rng: "random.Random | np.random.Generator | int | None" = None,
                 decimals: int = PROPERTY_DECIMALS) -> str | None:
    """The evaluation prompt (fixed order, TGDMat's wording) with some sentences left out or reworded.

    For the omission / paraphrase table: ``omit`` attributes are not stated; each ``paraphrase``
    attribute gets one of its *other* wordings (drawn with ``rng``: a seed or a generator), the
    rest keep the template sentence. Returns :data:`NULL_PROMPT` when everything is omitted.
    """
    order = attribute_order(dataset)
    unknown = (set(omit) | set(paraphrase)) - set(order)
    if unknown:
        raise ValueError(f"{dataset} prompts have no attribute {sorted(unknown)}; they state {order}")
    if paraphrase and rng is None:
        raise ValueError("paraphrase needs rng (a seed or a generator)")
    gen = _as_generator(rng) if rng is not None else None
    sentences = []
    for attr in order:
        if attr in omit:
            continue
        if attr in paraphrase:
            others = attribute_wordings(attr, facts, dataset, decimals)[1:]
            sentences.append(others[_index(gen, len(others))])
        else:
            sentences.append(_sentence(attr, facts, False, decimals))
    if not sentences:
        return NULL_PROMPT
    return f"{HEADER} {' '.join(sentences)} {FOOTER}"

