"""Read the facts a free-written prompt states, and say what it did not understand.

:func:`tgdmat.text.parse.parse_prompt` reads TGDMat's templated sentences and ignores every other
sentence, so "Its formation energy is about 1.6 eV per atom." is lost without a word.
:func:`read_prompt` reads prompts as people write them and returns a :class:`Reading`: the facts
(a :class:`~tgdmat.text.facts.PromptFacts`, so the model path is unchanged), the stretches of
text it turned into facts, and the stretches it did not understand (with the reason).

What is read, anywhere in a sentence and in any order:

==============  ===========================================================================
fact            examples
==============  ===========================================================================
formula         ``SrTiO3``, ``Sr2Ti2O6`` (reduced to SrTiO3), ``SrTiO₃``, ``formula: C``;
                a single-element material by name: ``carbon allotrope``, ``pure carbon``,
                ``triclinic carbon, 8 atoms``
elements        ``elements: Sr, Ti, O``, ``composed of Sr, Ti and O``, ``made of carbon``
space group     ``space group 221``, ``SG #221``, ``spacegroup no. 62``, ``Pm-3m``,
                ``P6_3/mmc``, ``P63/mmc``, ``P 21/c``, ``Fd3̄m``, ``Pm3m``, ``Pmm2 (No. 25)``
crystal system  ``cubic`` ... ``triclinic``; ``rhombohedral`` → trigonal; ``isometric``,
                ``fcc``, ``bcc`` → cubic; ``hcp`` → hexagonal
properties      formation energy (per atom) / heat of formation / formation enthalpy /
                enthalpy of formation / ΔHf / E_form (Perov-5: ``heat_ref``); energy per
                atom / total energy (per atom) / energy/atom / E (``energy_per_atom``);
                band gap / bandgap / E_g; energy above (the convex) hull / E_hull /
                distance to the hull / "on the convex hull" (= 0)
==============  ===========================================================================

Values: ``-0.5``, ``−0.5``, ``+1.5``, ``1.2e-3``, ``1.2×10^-3``, ``1.2×10⁻³``, after ``is``,
``of``, ``=``, ``:``, ``about``, ``≈``, ``~``, ``around`` ... or before the name with a unit
(``a 1.1 eV band gap``); units eV/atom, eV per atom, eV atom⁻¹, meV/atom, eV, meV, and
kJ/mol-atom or kcal/mol-atom (per mole of atoms, converted with 1 eV = 96.485 kJ/mol). A value
with a per-atom energy unit and no property name is the data set's per-atom energy when it has
exactly one (Perov-5 ``heat_ref``, Carbon-24 ``energy_per_atom``).

Refused with a :class:`~tgdmat.text.facts.PromptError` that names the words: a unit of the
wrong kind for a property (``Å``, ``GPa``, ``K``, ``%`` ...), kJ/mol without "atom" (per mole of
atoms or of formula units?), eV per formula unit, an unknown word right after a value
(``2 bananas``), a decimal comma, a sign apart from its number (``− 0.5``: minus or dash?),
a fractional formula, and contradictions: two formulas with
different reduced compositions, a space group outside the stated crystal system, a space-group
number and symbol that differ, two crystal systems, elements that differ from the formula, the
same property with two values. :func:`check_composition` checks a prompt against the
composition a CSP user asked for.

Not read, and reported in :attr:`Reading.not_understood` with the reason: bounds and ranges
(``band gap above 2 eV``, ``1.2-1.5 eV``), qualified crystal systems (``pseudo-cubic``,
``hexagonal layers``, ``trigonal planar``), reference or component formulas (``CaTiO3-type``,
``TiO6 octahedra``), property names without a value, ambiguous tokens (``P4`` alone: a formula
or a space group? ``_Sentence.read_symbols`` says which context decides), numbers that belong
to no fact (atom counts, lattice constants), and sentences with no fact at all (except filler
such as TGDMat's "Below is a description of a bulk material." and "Generate the material:").

Words that are English before they are chemistry are not formulas: a single element symbol
without a count (``In``, ``As``, ``I``, ``He``, ``No``, ``Be``) is a formula only right after
"formula"/"composition"; all-capital words without digits of up to three letters (``NO``, ``CIF``,
``FCC``) likewise; other all-capital words are skipped when the neighbouring words are capitals
too (shouting), as are a few all-capital English words (``SHOW``, ``KNOW``); and a token must
parse completely (``The`` → "Th" + "e" is not a formula). A single-element material named in
words counts only when the prompt states no formula ("SrTiO3 ... the fluorine in the apical
site" is SrTiO3).

Templated sentences (TGDMat's short prompt, the Robocrystallographer first sentence) are read by
:func:`tgdmat.text.parse.read_template_sentence`, the function ``parse_prompt`` uses, so
``read_prompt(p).facts == parse_prompt(p)`` for every templated prompt. A sentence that starts
like a template but goes on freely ("The formula is SrTiO3 and the band gap is 3.2 eV.") fails the
template and is read freely; if the free reading does not yield that fact either, an error is
raised (the free reading's when it concerns the same fact, as it quotes the words).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from tgdmat.text.facts import (
    _ONE_TO_ONE,
    DATASET_PROPERTIES,
    PromptError,
    PromptFacts,
    crystal_system_of,
    element_symbols,
    space_group_number,
    standard_symbols,
)
from tgdmat.text.parse import _formula_counts, parse_number, parse_prompt, read_template_sentence

__all__ = ["FactSpan", "UnreadSpan", "Reading", "read_prompt", "check_composition",
           "space_group_number", "standard_symbols", "load_curated", "score_curated",
           "CuratedScore", "FACT_KINDS"]

#: The kinds a fact span can have besides property columns.
FACT_KINDS = ("formula", "elements", "space_group", "crystal_system")

#: kJ/mol per eV (Faraday constant / 1000; exact in the SI).
KJ_PER_MOL_PER_EV = Decimal("96.48533212331001")
#: kcal/mol per eV (thermochemical calorie, 4.184 J).
KCAL_PER_MOL_PER_EV = KJ_PER_MOL_PER_EV / Decimal("4.184")


# ============================================================================ results
@dataclass(frozen=True)
class FactSpan:
    """A stretch of the prompt read as a fact.

    Attributes:
        start, end: character offsets into the prompt (``text == prompt[start:end]``).
        text: the words.
        kind: ``"formula"``, ``"elements"``, ``"space_group"``, ``"crystal_system"`` or a
            property column (``"heat_ref"``, ``"energy_per_atom"``, ``"band_gap"`` ...).
        value: the fact (reduced formula, element tuple, 1..230, system name, float in eV(/atom)).
        unit: for properties, the unit as written (canonical spelling; "" when none).
    """

    start: int
    end: int
    text: str
    kind: str
    value: object
    unit: str = ""


@dataclass(frozen=True)
class UnreadSpan:
    """A stretch of the prompt that carries no fact the reader could read, and why."""

    start: int
    end: int
    text: str
    reason: str


@dataclass(frozen=True)
class Reading:
    """What :func:`read_prompt` understood in a prompt.

    Attributes:
        text: the prompt.
        dataset: the data set it was read for (None: any).
        facts: the facts, as the model's "text+facts" conditioning takes them.
        understood: the stretches read as facts, in text order.
        not_understood: the stretches that carry no readable fact, in text order.
    """

    text: str
    dataset: str | None
    facts: PromptFacts
    understood: tuple[FactSpan, ...]
    not_understood: tuple[UnreadSpan, ...]

    @property
    def unused(self) -> tuple[FactSpan, ...]:
        """Property facts the data set's model is not conditioned on (empty without a data set)."""
        if self.dataset is None:
            return ()
        keep = DATASET_PROPERTIES.get(self.dataset, ())
        return tuple(s for s in self.understood if s.kind not in FACT_KINDS and s.kind not in keep)

    @property
    def complete(self) -> bool:
        """True when every stretch with content was read and every fact is used."""
        return not self.not_understood and not self.unused

    def report(self) -> str:
        """A short human-readable account: understood, not understood, not used."""
        from tgdmat.text.prompts import PROPERTY_UNITS

        lines = ["understood:" if self.understood else "understood: nothing"]
        for s in self.understood:
            unit = ""
            if s.kind in PROPERTY_UNITS:
                unit = f" {PROPERTY_UNITS[s.kind]}" + (f" (written in {s.unit})"
                                                       if s.unit not in ("", PROPERTY_UNITS[s.kind])
                                                       else "")
            lines.append(f"  {s.text!r} -> {s.kind} = {_show(s.value)}{unit}")
        if self.not_understood:
            lines.append("not understood:")
            lines += [f"  {s.text!r}: {s.reason}" for s in self.not_understood]
        if self.unused:
            lines.append(f"not used by the {self.dataset} model:")
            lines += [f"  {s.text!r} -> {s.kind}" for s in self.unused]
        return "\n".join(lines)


def _show(value: object) -> str:
    return ", ".join(value) if isinstance(value, tuple) else str(value)


# ============================================================================ tables
_NUM = (r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
        r"(?:[eE][+-]?\d+"
        r"|\s*[x×*·]\s*10\s*(?:\^|\*\*)\s*\(?\s*[+-]?\d+\s*\)?"
        r"|\s*[x×*·]\s*10\s*\(\s*[+-]?\d+\s*\)"
        r"|\s*[x×*·]\s*10[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)?")
_NUMBER = re.compile(rf"(?<![\w.]){_NUM}(?!\d|\.\d)")
_DECIMAL_COMMA = re.compile(r",\d")
_EV = r"(?P<m>m|milli)?(?:(?i:ev)(?![a-z])|(?i:electron[\s-]?volts?))"
_UNITS: list[tuple[re.Pattern, str]] = [(re.compile(r"\s*" + rx), kind) for rx, kind in [
    (_EV + r"\s*(?:/|per)\s*(?:f\.?\s?u\.?|formula(?:\s+units?)?)(?![A-Za-z])", "per_fu"),
    (_EV + r"\s*(?:/\s*atoms?|per\s+atoms?|/\s*at\.?|[\s·.]?atoms?\s*(?:\^\s*\(?-1\)?|⁻¹|-1))"
     r"(?![A-Za-z])", "per_atom"),
    (_EV + r"(?![A-Za-z/])", "energy"),
    (r"(?P<kj>kJ|kcal)\s*(?:/|per)\s*mol(?:es?)?(?:\s*[-·/]\s*atoms?|\s+(?:of\s+)?atoms?|"
     r"\s*\(\s*atoms?\s*\))(?![A-Za-z])", "molar_atom"),
    (r"(?:kJ|kcal)\s*(?:/|per)\s*mol(?:es?)?(?![A-Za-z])", "molar"),
    (r"(?:kJ|kcal|J)(?![A-Za-z])", "joule"),
    (r"(?:Å|(?i:angstroms?|ångströms?|bohrs?)|nm|pm)(?:\^?3|³)?(?![A-Za-z])", "length"),
    (r"(?:GPa|MPa|kbar|bar)(?![A-Za-z])", "pressure"),
    (r"(?:K|(?i:kelvin)|°\s*C)(?![A-Za-z])", "temperature"),
    (r"(?:g\s*/\s*cm(?:\^?3|³)|g\s*cm(?:-3|⁻³))", "density"),
    (r"%", "percent"),
]]
_WRONG_UNIT = {"length": "a length", "pressure": "a pressure", "temperature": "a temperature",
               "density": "a density", "percent": "a percentage"}

# words that may follow a value without being its unit
_FUNCTION_WORDS = frozenset("""
a an the and or nor but with without in on at for from to of by as than then while whereas
which that who whose where when if since because so thus hence also too only is are was were be
being been it its this these those per each respectively computed calculated predicted measured
estimated reported obtained found given using via according relative compared vs versus i.e
e.g ie eg above below under over approximately roughly about around nearly after before
within between among making meaning indicating suggesting showing give gives giving like
unlike yet still please ideally preferably exactly precisely plus minus more less higher lower
larger smaller would should must will can could may might has have had having do does
""".split())

# property names → column ("" = a bare energy: needs a per-atom unit or Carbon-24; None = an
# energy the model is not conditioned on)
_PROPERTY_WORDS: list[tuple[str, str | None]] = [
    (r"formation[\s_-]energ(?:y|ies)(?:[\s_]*(?:per[\s_]+atom|/\s*atom))?",
     "formation_energy_per_atom"),
    (r"energ(?:y|ies)\s+of\s+formation", "formation_energy_per_atom"),
    (r"heats?\s+of\s+formation", "formation_energy_per_atom"),
    (r"formation\s+(?:heat|enthalp(?:y|ies))", "formation_energy_per_atom"),
    (r"enthalp(?:y|ies)\s+of\s+formation", "formation_energy_per_atom"),
    (r"heat[\s_]ref", "formation_energy_per_atom"),
    (r"(?-i:ΔH_?\{?f\}?|ΔH\(f\)|ΔH_?form|E_?\{?form\}?|E_f)(?![A-Za-z])",
     "formation_energy_per_atom"),
    (r"energy\s+above\s+(?:the\s+)?(?:convex\s+)?hull", "e_above_hull"),
    (r"e[\s_]above[\s_]hull", "e_above_hull"),
    (r"(?:energy\s+)?distance\s+(?:to|from)\s+(?:the\s+)?(?:convex\s+)?hull", "e_above_hull"),
    (r"(?:convex[\s-])?hull\s+(?:energy|distance)", "e_above_hull"),
    (r"(?-i:E_?\{?hull\}?)(?![A-Za-z])", "e_above_hull"),
    (r"above\s+(?:the\s+)?(?:convex\s+)?hull", "e_above_hull"),
    (r"(?:total\s+)?energ(?:y|ies)[\s_]*(?:per[\s_]+atom|/\s*atom)", "energy_per_atom"),
    (r"per[\s-]atom\s+(?:total\s+)?energ(?:y|ies)", "energy_per_atom"),
    (r"total\s+energ(?:y|ies)", "energy_per_atom"),
    (r"(?-i:E_?\{?tot(?:al)?\}?|E/atom)(?![A-Za-z])", "energy_per_atom"),
    (r"(?:cohesive|surface|binding|fermi|activation|lattice|exfoliation|strain|adsorption|"
     r"migration|kinetic|interface|interfacial|free|zero[\s-]point|vacancy|defect|bond|"
     r"ioni[sz]ation|excitation|potential|internal|gibbs|dissociation|decomposition|reaction|"
     r"mixing|atomi[sz]ation|fracture|elastic|deformation|phonon|photon|exchange|"
     r"correlation|magnetic|anisotropy)\s+energ(?:y|ies)", None),
    (r"band[\s_-]?gaps?", "band_gap"),
    (r"(?-i:E_?\{?g\}?)(?![A-Za-z])", "band_gap"),
    (r"(?:optical|electronic|fundamental|direct|indirect)\s+gaps?", "band_gap"),
    (r"gaps?", "band_gap"),
    (r"energ(?:y|ies)", ""),
    (r"(?-i:E)(?=\s*(?:=|:|≈|~))", ""),
]
_PROPERTY_RE = re.compile(
    r"(?i)(?<![\w-])(?:" + "|".join(f"(?P<p{i}>{rx})" for i, (rx, _) in enumerate(_PROPERTY_WORDS))
    + r")(?![\w])")
_ON_HULL = re.compile(r"(?i)\bon\s+the\s+(?:convex\s+)?hull\b")
_PER_ATOM_KEYS = ("heat_ref", "formation_energy_per_atom", "energy_per_atom", "e_above_hull")

_BOUND_WORDS = frozenset("""below above under over less more greater higher lower exceeding exceeds
exceed least most up within between < > ≤ ≥ <= >= max min maximum minimum smaller larger bigger
beyond not no never from range ranging""".split())
_CONNECTORS = frozenset("""is of = : was be equals equal to approximately approx approx. about
around roughly ~ ≈ ∼ ≃ near nearly close some a an value its should must would will has have
having with ( ) , ca. circa per atom ideally exactly precisely target""".split())
_ADJECTIVES_BEFORE = (r"(?:(?:direct|indirect|optical|electronic|fundamental|calculated|computed|"
                      r"predicted|estimated|DFT|PBE|HSE06|HSE|GGA|LDA|experimental|measured|"
                      r"target|desired|theoretical)\s+){0,2}")
_VALUE_BEFORE = re.compile(rf"(?<![\w.])(?P<num>{_NUM})(?P<unit>\s*\S+(?:\s+per\s+atom)?)\s*"
                           rf"{_ADJECTIVES_BEFORE}\Z")
_ATOM_COUNT_AFTER = re.compile(r"(?i)\s*-?\s*atoms?\b")
_RANGE_AFTER = re.compile(rf"\s*(?:-|to|and)\s*{_NUM}")

_GAP_TOKEN = re.compile(r"\s*(?:([=:≈~∼≃,()\[\]#])|([^\s=:≈~∼≃,()\[\]#;]+))")

_SG_CUE = re.compile(
    r"(?i)(?<![\w-])(?:space[\s_-]?groups?"
    r"(?:[\s_]+(?:numbers?|no\.?|num\.?|symbols?|types?)(?![\w]))?"
    r"|spacegroups?(?:_number)?|spg|s\.g\.|sg)(?![\w])")
_SG_NUMBER = re.compile(r"(\d+)(?!\d|\.\d)")
_SYMBOL_CHARS = r"(?:[0-9mnabcde/_]|-(?=\d)|[\u0304\u0305¯])"
_SYMBOL_SPACED = re.compile(rf"[PABCFIR](?: ?{_SYMBOL_CHARS})*(?![\w/])")
_SYMBOL_STANDALONE = re.compile(rf"(?<![\w/\-])[PABCFIR]{_SYMBOL_CHARS}*(?![\w/])")
_SG_AFTER_SYMBOL = re.compile(
    r"(?i)\s*(?:\(\s*(?:(?:space\s*group\s*)?(?:no\.?|number|#)\s*)?(?P<a>\d+)\s*\)"
    r"|,?\s*(?:no\.|#)\s*(?P<b>\d+)(?![\d.]))")
_SG_CONTEXT_AFTER = re.compile(
    r"(?i)^\s*(?:symmetry|space[\s_-]?group|spacegroup|\(\s*(?:no\.|#)?\s*\d+\s*\))")
_NO_NUMBER = re.compile(r"\(\s*(?:No\.|#)\s*(\d+)\s*\)")

_SYSTEM_WORDS = {"cubic": "cubic", "isometric": "cubic", "fcc": "cubic", "bcc": "cubic",
                 "tetragonal": "tetragonal", "orthorhombic": "orthorhombic",
                 "hexagonal": "hexagonal", "hcp": "hexagonal", "trigonal": "trigonal",
                 "rhombohedral": "trigonal", "monoclinic": "monoclinic", "triclinic": "triclinic"}
_SYSTEM_RE = re.compile(r"(?i)(?<![\w])(" + "|".join(_SYSTEM_WORDS) + r")(?![\w])")
_SYSTEM_QUALIFIED_BEFORE = re.compile(
    r"(?i)(?:\b(?:pseudo|quasi|non|not|distorted|distortion\s+of|derived\s+from|parent|than|unlike|"
    r"rather\s+than|instead\s+of|from)|pseudo-|quasi-|non-)[\s-]*(?:the\s+|a\s+|an\s+)?\Z")
_SHAPE_NOUNS = (r"planar|prismatic|prisms?|(?:bi)?pyramid\w*|coordinat\w*|geometry|rings?|"
                r"layers?|sheets?|channels?|tunnels?|motifs?|pores?|cages?|honeycomb|windows?|"
                r"faces?")
# up to two adjectives between a word and the noun it describes ("distorted corner-sharing")
_ADJECTIVES = (r"(?:[\s-]+(?:[a-z]+-[a-z]+(?:-[a-z]+)*|[a-z]+(?:ed|ing|al|ar|ic|ous)|square|bent|"
               r"regular|irregular)){0,2}")
_SYSTEM_SHAPE_AFTER = re.compile(rf"(?i)^(?:-like\b|{_ADJECTIVES}[\s-]+(?:{_SHAPE_NOUNS})\b)")
_HEXAGONAL_SETTING_AFTER = re.compile(r"(?i)^\s*(?:setting|axes|cell\s+of\s+a\s+rhombohedral)\b")

_ELEMENTS_CUE = re.compile(
    r"(?i)\b(?:(?:the\s+)?(?:constituent\s+|chemical\s+)?elements|constituents|"
    r"(?:consists?|consisting|composed|made(?:\s+up)?)\s+(?:only\s+|solely\s+|entirely\s+|"
    r"exclusively\s+|purely\s+)?of|contain(?:s|ing)\s+only)\b"
    r"\s*(?:(?:are|is|include|:|=)\s*)?(?:(?:only|just|the\s+elements)\s+)?")
_LIST_SEP = re.compile(r"\s*,\s*(?:and\s+|&\s*)?|\s+and\s+|\s*&\s*|\s*/\s*")

_FORMULA_CANDIDATE = re.compile(r"(?<![\w\-/.#])\(?[A-Z][A-Za-z0-9().]*")
_FORMULA_POSITION = re.compile(
    r"(?i)\b(?:formula|composition|stoichiometry)(?:\s+(?:is|of|should\s+be|must\s+be|would\s+be)"
    r"|\s*[:=])?\s*\Z")
_PROTOTYPE_AFTER = re.compile(
    r"(?i)^(?:-?(?:type|like|based|derived|structured|prototype|analog(?:ue)?s?)\b"
    r"|\s+(?:type|prototype|structure\s+type|analog(?:ue)?s?)\b)")
_PROTOTYPE_BEFORE = re.compile(
    r"(?i)\b(?:like|isostructural\s+(?:with|to)|analogous\s+to|similar\s+to|related\s+to|"
    r"derived\s+from|than|unlike|instead\s+of|rather\s+than|same\s+structure\s+as|parent)\s+"
    r"(?:the\s+|a\s+|an\s+)?\Z")
_COMPONENT_AFTER = re.compile(
    rf"^(?:\s*(?:,|and|or|/)\s*\(?[A-Z][A-Za-z0-9()]*)*{_ADJECTIVES}[\s-]+"
    r"(?:frameworks?|ribbons?|wires?|tubes?|columns?|strands?|octahedr\w*|tetrahedr\w*|"
    r"cuboctahedr\w*|polyhedr\w*|(?:bi)?pyramid\w*|prisms?|layers?|planes?|sheets?|slabs?|units?|"
    r"groups?|clusters?|chains?|molecules?|anions?|cations?|ions?|sublattices?|dimers?|rings?|"
    r"ligands?|blocks?|cages?)\b")
# all-capital English words of four letters or more that spell element symbols (shorter
# all-capital words without digits are never formulas outside a formula position)
_CAPS_WORDS = frozenset("""SHOW KNOW UPON SOON NOON BOOK HOOK COOK SNOW SHOP SHIP FISH PUSH WISH
PICK PINK SPIN COPY BUSY INFO NOUN UNION""".split())

_MATERIAL_BEFORE = re.compile(r"(?i)(?:\b(?:pure|elemental|only)\s+|\ball-|\b(?:allotropes?|"
                              r"polymorphs?|forms?|phases?|modifications?)\s+of\s+)\Z")
_MATERIAL_NOUN_AFTER = re.compile(r"(?i)^[\s-]+(?:allotropes?|polymorphs?|phases?|structures?|"
                                  r"crystals?|frameworks?|networks?|solids?|forms?|"
                                  r"modifications?|atoms|cells?|materials?|lattices?|foams?|"
                                  r"clathrates?|schwarzites?|fullerites?|samples?|compounds?|"
                                  r"systems?)\b")
_MATERIAL_HEAD_AFTER = re.compile(r"(?i)^\s*(?:[,.;:()]|$|(?:with|in|that|which|having|whose|"
                                  r"adopting|crystalli[sz]ing|at|lying)\b)")
_NOT_MATERIAL_AFTER = re.compile(r"(?i)^(?:-(?:\d|doped|based|free|rich|poor|containing|"
                                 r"substituted|deficient)|\s+(?:dopants?|vacanc\w+|sites?|"
                                 r"impurit\w+|"
                                 r"substitution|content|atoms?\s+(?:in|of|on)\b))")
_NOT_MATERIAL_BEFORE = re.compile(r"(?i)\b(?:with|and|or|of|containing|contains|without|no|"
                                  r"doped\s+with|traces?\s+of|free\s+of)\s+\Z")
_FILLER = [re.compile(r"(?i)^below is a description of a bulk material$"),
           re.compile(r"(?i)^(?:please\s+)?(?:generate|create|design|make|produce|propose|suggest|"
                      r"give\s+me)(?:\s+(?:the|a|an|one|me))?(?:\s+new)?(?:\s+(?:material|crystal|"
                      r"structure|compound))?(?:\s+please)?$")]
_NO_SPLIT_AFTER = re.compile(r"(?i)(?:\b(?:e\.g|i\.e|cf|vs|approx|ca|resp|fig|eq|ref|al)\.)\Z")
_SPLIT = re.compile(r"(?<=[.!?;])\s+|\s*\n\s*")


@lru_cache(maxsize=1)
def _element_names() -> dict[str, str]:
    """English element name (lower case; British and American spellings) → symbol."""
    from pymatgen.core.periodic_table import Element

    names = {el.long_name.lower(): el.symbol for el in Element}
    names.update({"aluminum": "Al", "aluminium": "Al", "cesium": "Cs", "caesium": "Cs",
                  "sulfur": "S", "sulphur": "S"})
    return names


@lru_cache(maxsize=1)
def _element_name_re() -> re.Pattern:
    names = sorted(_element_names(), key=len, reverse=True)
    return re.compile(r"(?i)(?<![\w-])(" + "|".join(names) + r")(?![\w])")


def _formula_counts_of(token: str, sentence: str = "") -> dict[str, int] | None:
    """Element counts of ``token`` if it parses completely as a formula, else None.

    Raises PromptError (naming ``sentence``) for a token that is a formula but for a
    fractional count (``Ba0.5Sr0.5TiO3``): generation needs whole atoms.
    """
    try:
        return _formula_counts(token, sentence, "formula")
    except PromptError as exc:
        if "fractional" in str(exc):
            raise
        return None


def _reduced(counts: dict[str, int]) -> str:
    from pymatgen.core import Composition

    return Composition(counts).reduced_formula


# ============================================================================ reading a sentence
class _Sentence:
    """Reads one sentence: collects fact spans and unread spans with offsets into the prompt."""

    def __init__(self, norm: str, original: str, start: int, dataset: str | None):
        self.s = norm  # normalised sentence text (same length as the original)
        self.original = original
        self.offset = start
        self.dataset = dataset
        self.taken: list[tuple[int, int]] = []
        self.facts: list[FactSpan] = []
        self.unread: list[UnreadSpan] = []
        self.cues: list[tuple[int, int]] = []  # other facts' words, where a value search stops
        self.weak: list[FactSpan] = []  # single-element materials named in words
        self.pending_cues: list[tuple[int, int]] = []  # "space group" with nothing after it

    # -------------------------------------------------------------- bookkeeping
    def free(self, a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in self.taken)

    def fact(self, a: int, b: int, kind: str, value: object, unit: str = "") -> None:
        self.taken.append((a, b))
        self.facts.append(FactSpan(self.offset + a, self.offset + b, self.original[a:b], kind,
                                   value, unit))

    def skip(self, a: int, b: int, reason: str) -> None:
        self.taken.append((a, b))
        self.unread.append(UnreadSpan(self.offset + a, self.offset + b, self.original[a:b],
                                      reason))

    def error(self, message: str, part: str) -> PromptError:
        return PromptError(message, self.original.strip(), part)

    def read(self) -> None:
        s = self.s
        self.cues = ([m.span() for m in _SG_CUE.finditer(s)]
                     + [m.span() for m in _PROPERTY_RE.finditer(s)]
                     + [m.span() for m in re.finditer(r"(?i)\b(?:formula|composition)\b", s)])
        self.read_space_group_cues()
        self.read_properties()
        self.read_symbols()
        self.settle_cues()
        self.read_systems()
        self.read_element_lists()
        self.read_formulas()
        self.read_material_names()
        self.read_loose_numbers()

    # -------------------------------------------------------------- values and units
    def value_at(self, m: re.Match, key: str, strict: bool):
        """(value, unit, end) of the number ``m`` for property ``key``; None when not a value.

        ``strict``: the number follows the property's name through connector words only, so a
        unit of the wrong kind or an unknown word after it is an error rather than a reason to
        look further.
        """
        s, a, b = self.s, m.start(), m.end()
        if _ATOM_COUNT_AFTER.match(s, b):
            return None
        if _DECIMAL_COMMA.match(s, b):
            if strict:
                raise self.error(f"{s[a:b + 2]!r}: write decimals with a point "
                                 f"({s[a:b]}.{s[b + 1]}...), not a comma", key)
            return None
        for rx, kind in _UNITS:
            u = rx.match(s, b)
            if not u:
                continue
            words = self.original[a:u.end()]
            if kind in ("per_atom", "energy"):
                scale = "meV" if u["m"] else "eV"
                unit = scale + ("/atom" if kind == "per_atom" else "")
                value, _ = parse_number(f"{m.group(0)} {unit}", words, key)
                return value, unit, u.end()
            if kind == "molar_atom" and key != "band_gap":
                number, _ = parse_number(m.group(0), words, key)
                per_ev = KJ_PER_MOL_PER_EV if u["kj"] == "kJ" else KCAL_PER_MOL_PER_EV
                return float(Decimal(number) / per_ev), f"{u['kj']}/mol-atom", u.end()
            if not strict:
                return None
            if kind == "per_fu":
                raise self.error(f"{words!r} is per formula unit; state {key} per atom "
                                 "(eV/atom)", key)
            if kind in ("molar", "joule"):
                raise self.error(f"{words!r}: per mole of atoms or of formula units? write "
                                 "eV/atom or kJ/mol-atom", key)
            if kind == "molar_atom":
                raise self.error(f"{words!r}: a band gap is not per atom; write eV", key)
            raise self.error(f"{words!r} is {_WRONG_UNIT[kind]}, not an energy: {key} needs "
                             "eV/atom (or meV/atom, eV)", key)
        word = re.match(r"\s*([A-Za-z][\w/^.-]*)", s[b:])
        if word:
            w = word.group(1).rstrip(".")
            if w.lower() not in _FUNCTION_WORDS and not (w.isupper() and len(w) > 1):
                if strict:
                    raise self.error(f"unknown unit {w!r} after the number {s[a:b]!r} (known: "
                                     "eV/atom, eV per atom, meV/atom, eV, meV, kJ/mol-atom); if "
                                     f"{w!r} is not a unit, put a comma after the number", key)
                return None
        value, _ = parse_number(m.group(0), self.original[a:b], key)
        return value, "", b

    # -------------------------------------------------------------- properties
    def property_key(self, m: re.Match) -> str | None:
        """Column for a property-name match; None: an energy the model does not know."""
        key = _PROPERTY_WORDS[int(m.lastgroup[1:])][1]
        if key == "formation_energy_per_atom" and self.dataset == "perov_5":
            return "heat_ref"
        return key

    def read_properties(self) -> None:
        s = self.s
        respectively = re.search(r"(?i)\brespectively\b", s) is not None
        for m in _PROPERTY_RE.finditer(s):
            if not self.free(*m.span()):
                continue
            key = self.property_key(m)
            if key is None:
                self.skip(*m.span(), "an energy the model is not conditioned on")
                continue
            if respectively:
                self.skip(*m.span(), "values given 'respectively' are not matched to names")
                continue
            found = self.value_before(m, key) or self.value_after(m, key)
            if found is None:
                continue
            a, b, key, value, unit = found
            self.fact(a, b, key, value, unit)
        for m in _ON_HULL.finditer(s):
            if self.free(*m.span()):
                self.fact(*m.span(), "e_above_hull", 0.0)

    def resolve_bare(self, key: str, unit: str) -> str | None:
        """A bare "energy" is the energy per atom with a per-atom unit or in Carbon-24."""
        if key != "":
            return key
        if unit.endswith("/atom") or unit.endswith("mol-atom") or self.dataset == "carbon_24":
            return "energy_per_atom"
        return None

    def value_before(self, m: re.Match, key: str):
        prefix = self.s[:m.start()]
        hit = _VALUE_BEFORE.search(prefix)
        if not hit or not self.free(hit.start(), m.start()):
            return None
        num = _NUMBER.match(prefix, hit.start("num"))
        if num is None or num.end() != hit.end("num"):
            return None
        got = self.value_at(num, key or "energy_per_atom", strict=False)
        if got is None or not got[1] or got[2] != hit.end("unit"):
            return None
        value, unit, _ = got
        key = self.resolve_bare(key, unit)
        if key is None:
            return None
        return hit.start(), m.end(), key, value, unit

    def value_after(self, m: re.Match, key: str):
        """Scan up to eight words after the name for the value; record why when there is none."""
        s, pos, gap, bound = self.s, m.end(), [], None
        while len(gap) < 8 and pos < len(s):
            ws = re.match(r"\s*", s[pos:]).end() + pos
            num = _NUMBER.match(s, ws)
            if num and not self.free(*num.span()):
                break
            if num:
                strict = all(w.lower() in _CONNECTORS for w in gap)
                got = self.value_at(num, key or "energy_per_atom", strict)
                if got is None:  # an atom count, a condition (at 10 GPa): keep looking
                    gap.append(num.group(0))
                    pos = _skip_unit(s, num.end())
                    continue
                value, unit, end = got
                if sign := re.search(r"(?<!\S)[+-]\s+\Z", s[:num.start()]):
                    raise self.error(f"{self.original[sign.start():end]!r}: a sign apart from its "
                                     "number; write it attached (-0.5) or drop the dash", key)
                if bound is not None:
                    self.skip(m.start(), end, f"a bound ({bound!r}), not a value")
                    return None
                if rng := _RANGE_AFTER.match(s, end):
                    self.skip(m.start(), rng.end(), "a range, not a value")
                    return None
                resolved = self.resolve_bare(key, unit)
                if resolved is None:
                    self.skip(m.start(), end, "which energy? say 'formation energy' or "
                                              "'energy per atom' (or give eV/atom)")
                    return None
                return m.start(), end, resolved, value, unit
            tok = _GAP_TOKEN.match(s, pos)
            if not tok or tok.end() == pos:
                break
            if any(a <= tok.start(2 if tok.group(2) else 1) < b for a, b in self.cues
                   if (a, b) != m.span()):
                break
            word = tok.group(1) or tok.group(2)
            if word.lower().rstrip(".") in _BOUND_WORDS:
                bound = bound or word
            gap.append(word)
            pos = tok.end()
        self.skip(*m.span(), "a property named without a value")
        return None

    # -------------------------------------------------------------- space groups
    def sg_number(self, a: int, b: int, number: int) -> None:
        if not 1 <= number <= 230:
            raise self.error(f"{self.original[a:b]!r}: space group {number} is outside 1..230",
                             "space_group")
        self.fact(a, b, "space_group", number)

    def sg_symbol_at(self, pos: int, spaced: bool) -> tuple[int, int] | None:
        """(end, number) of the longest Hermann–Mauguin symbol starting at ``pos``."""
        rx = _SYMBOL_SPACED if spaced else _SYMBOL_STANDALONE
        m = rx.match(self.s, pos)
        if not m:
            return None
        text = m.group(0)
        cuts = [len(text)] + [i for i in range(len(text) - 1, 0, -1) if text[i] == " "]
        for cut in cuts:
            number = space_group_number(text[:cut])
            if number is not None:
                return pos + cut, number
        return None

    def read_space_group_cues(self) -> None:
        s = self.s
        for cue in _SG_CUE.finditer(s):
            if not self.free(*cue.span()):
                continue
            pos = cue.end()
            for _ in range(6):  # the number or symbol within five words of the cue
                ws = pos + re.match(r"[\s:=#(]*", s[pos:]).end()
                if num := _SG_NUMBER.match(s, ws):
                    if not _ATOM_COUNT_AFTER.match(s, num.end()):
                        self.sg_number(cue.start(), num.end(), int(num.group(1)))
                    break
                if hit := self.sg_symbol_at(ws, spaced=True):
                    self.fact(cue.start(), hit[0], "space_group", hit[1])
                    self.number_after_symbol(hit[0])
                    break
                tok = _GAP_TOKEN.match(s, ws)
                if (not tok or tok.end() == ws or re.match(r"[+-]?\d", s[ws:])
                        or any(a <= ws < b for a, b in self.cues if (a, b) != cue.span())):
                    break
                pos = tok.end()
            if self.free(*cue.span()):
                self.pending_cues.append(cue.span())

    def settle_cues(self) -> None:
        """A cue right after a symbol ("the C2/m space group") belongs to it; others are unread."""
        ends = [f.end - self.offset for f in self.facts if f.kind == "space_group"]
        for a, b in self.pending_cues:
            if any(e <= a and not self.s[e:a].strip() for e in ends):
                self.taken.append((a, b))
            else:
                self.skip(a, b, "a space group named without a number or symbol")

    def number_after_symbol(self, end: int) -> None:
        if m := _SG_AFTER_SYMBOL.match(self.s, end):
            g = "a" if m.group("a") else "b"
            self.sg_number(m.start(g), m.end(g), int(m.group(g)))

    def read_symbols(self) -> None:
        """Hermann–Mauguin symbols without a cue, and "(No. 221)".

        A symbol that is also a formula or an element (P1, C2, P4, Pm) needs context: "symmetry"
        or "space group" after it, a crystal-system word before it, or a crystal system stated
        in the sentence that it belongs to ("Triclinic carbon (P1)").
        """
        s = self.s
        systems = {_SYSTEM_WORDS[w.lower()] for w in _SYSTEM_RE.findall(s)}
        for m in _SYMBOL_STANDALONE.finditer(s):
            if not self.free(*m.span()):
                continue
            hit = self.sg_symbol_at(m.start(), spaced=False)
            if hit is None or hit[0] != m.end():
                continue
            sym = m.group(0)
            needs_context = (_formula_ok(sym) or sym in element_symbols()
                             or (len(sym) < 3 and not re.search(r"[-/_]", sym)))
            before = s[:m.start()]
            context = (_SG_CONTEXT_AFTER.match(s[m.end():]) is not None
                       or re.search(r"(?i)(?:" + "|".join(_SYSTEM_WORDS) + r")\s+\Z", before)
                       or systems == {crystal_system_of(hit[1])})
            if needs_context and not context:
                if _formula_ok(sym):
                    self.skip(*m.span(), f"a formula or space group {sym}? write 'space group "
                                         f"{sym}' or 'formula {sym}'")
                continue
            self.fact(m.start(), m.end(), "space_group", hit[1])
            self.number_after_symbol(m.end())
        for m in _NO_NUMBER.finditer(s):
            if self.free(*m.span(1)):
                self.sg_number(m.start(1), m.end(1), int(m.group(1)))

    # -------------------------------------------------------------- crystal systems
    def read_systems(self) -> None:
        s = self.s
        for m in _SYSTEM_RE.finditer(s):
            if not self.free(*m.span()):
                continue
            word = m.group(1).lower()
            system = _SYSTEM_WORDS[word]
            if q := _SYSTEM_QUALIFIED_BEFORE.search(s[:m.start()]):
                self.skip(q.start(), m.end(), "a qualified crystal system (not read)")
            elif shape := _SYSTEM_SHAPE_AFTER.match(s[m.end():]):
                self.skip(m.start(), m.end() + shape.end(), "a local shape, not the crystal system")
            elif system == "hexagonal" and _HEXAGONAL_SETTING_AFTER.match(s[m.end():]):
                self.skip(m.start(), m.end(), "a setting of the cell, not the crystal system")
            else:
                self.fact(m.start(), m.end(), "crystal_system", system)

    # -------------------------------------------------------------- elements
    def element_at(self, pos: int) -> tuple[int, str] | None:
        s = self.s
        sym = re.match(r"[A-Z][a-z]?(?![A-Za-z0-9])", s[pos:])
        if sym and sym.group(0) in element_symbols():
            return pos + sym.end(), sym.group(0)
        name = _element_name_re().match(s, pos)
        if name:
            return name.end(), _element_names()[name.group(1).lower()]
        return None

    def read_element_lists(self) -> None:
        s = self.s
        for cue in _ELEMENTS_CUE.finditer(s):
            if not self.free(*cue.span()):
                continue
            pos, found, end = cue.end(), [], None
            while (item := self.element_at(pos)) is not None and self.free(pos, item[0]):
                if item[1] in found:
                    raise self.error(f"element {item[1]!r} listed twice in "
                                     f"{self.original[cue.start():item[0]]!r}", "elements")
                found.append(item[1])
                end = item[0]
                sep = _LIST_SEP.match(s, end)
                if not sep or sep.end() == end:
                    break
                pos = sep.end()
                nxt = re.match(r"[A-Z][a-z]?(?![A-Za-z0-9])", s[pos:])
                if nxt and self.element_at(pos) is None:  # "Sr, Xy, O": never drop a listed symbol
                    raise self.error(f"unknown element symbol {nxt.group(0)!r} in "
                                     f"{self.original[cue.start():pos + nxt.end()]!r}", "elements")
            if found:
                self.fact(cue.start(), end, "elements", tuple(found))

    # -------------------------------------------------------------- formulas
    def read_formulas(self) -> None:
        s = self.s
        for m in _FORMULA_CANDIDATE.finditer(s):
            a, b = m.span()
            token = m.group(0)
            if token.startswith("(") and token.count("(") > token.count(")"):
                a, token = a + 1, token[1:]
            while token.endswith(".") or (token.endswith(")")
                                          and token.count(")") > token.count("(")):
                b, token = b - 1, token[:-1]
            if not token or not self.free(a, b):
                continue
            counts = _formula_counts_of(token, self.original.strip())
            if counts is None:
                continue
            position = _FORMULA_POSITION.search(s[:a]) is not None
            if not position and not self.looks_like_formula(token, a, b):
                continue
            if _PROTOTYPE_AFTER.match(s[b:]) or _PROTOTYPE_BEFORE.search(s[:a]):
                self.skip(a, b, "a reference compound (structure type), not the formula")
            elif not position and _COMPONENT_AFTER.match(s[b:]):
                self.skip(a, b, "a part of the structure (polyhedra, layers ...), not the formula")
            else:
                self.fact(a, b, "formula", _reduced(counts))

    def looks_like_formula(self, token: str, a: int, b: int) -> bool:
        """The rules of the module docstring for a token outside a formula position."""
        digits = any(c.isdigit() for c in token)
        symbols = re.findall(r"[A-Z][a-z]?", token)
        if not digits and len(symbols) < 2:
            return False
        if not digits and token.isupper():
            if len(token) <= 3 or token in _CAPS_WORDS:
                return False
            around = re.findall(r"[A-Za-z]+", self.s[max(0, a - 30):a])[-1:] + \
                re.findall(r"[A-Za-z]+", self.s[b:b + 30])[:1]
            if any(w.isupper() and len(w) > 1 for w in around):
                return False
        return True

    def read_material_names(self) -> None:
        """A single-element material named in words: carbon allotrope, pure carbon ...

        These are weak: :func:`read_prompt` keeps them only when no formula is stated.
        """
        s = self.s
        for m in _element_name_re().finditer(s):
            if not self.free(*m.span()):
                continue
            before, after = s[:m.start()], s[m.end():]
            if _NOT_MATERIAL_AFTER.match(after):
                continue
            strong = _MATERIAL_BEFORE.search(before) or _MATERIAL_NOUN_AFTER.match(after)
            if not strong and (_NOT_MATERIAL_BEFORE.search(before)
                               or not _MATERIAL_HEAD_AFTER.match(after)):
                continue
            value = _reduced({_element_names()[m.group(1).lower()]: 1})
            self.weak.append(FactSpan(self.offset + m.start(), self.offset + m.end(),
                                      self.original[m.start():m.end()], "formula", value))

    # -------------------------------------------------------------- left-over numbers
    def read_loose_numbers(self) -> None:
        s = self.s
        per_atom = [k for k in _dataset_properties(self.dataset) if k in _PER_ATOM_KEYS]
        for m in _NUMBER.finditer(s):
            if not self.free(*m.span()):
                continue
            if count := _ATOM_COUNT_AFTER.match(s, m.end()):
                self.skip(m.start(), count.end(), "an atom count (not a condition; a formula "
                                                  "fixes the atoms)")
                continue
            got = self.value_at(m, "value", strict=False)
            if got and got[1].endswith(("/atom", "mol-atom")):
                bounded = re.search(r"(?i)\b(?:below|above|under|over|less\s+than|more\s+than|"
                                    r"up\s+to|at\s+most|at\s+least|within|between)\s+\Z",
                                    s[:m.start()])
                if len(per_atom) == 1 and not bounded and not _RANGE_AFTER.match(s, got[2]):
                    self.fact(m.start(), got[2], per_atom[0], got[0], got[1])
                    continue
                self.skip(m.start(), got[2], "a per-atom energy without a property name")
                continue
            self.skip(m.start(), _skip_unit(s, m.end()), "a number that belongs to no fact")


def _skip_unit(s: str, end: int) -> int:
    for rx, _ in _UNITS:
        if u := rx.match(s, end):
            return u.end()
    return end


def _formula_ok(token: str) -> bool:
    try:
        return _formula_counts_of(token) is not None
    except PromptError:
        return False


def _dataset_properties(dataset: str | None) -> tuple[str, ...]:
    if dataset is None:
        return ()
    return DATASET_PROPERTIES.get(dataset, ())


# ============================================================================ the reader
def _sentences(norm: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: split after . ! ? ; or at a line break.

    No split after an abbreviation (e.g., approx., ...) or before a digit or a lower-case
    letter ("spacegroup no. 62", "approx. 1.6").
    """
    spans, start = [], 0
    for m in _SPLIT.finditer(norm):
        before, after = norm[start:m.start()], norm[m.end():m.end() + 1]
        if "\n" not in m.group(0) and before.endswith(".") and (
                _NO_SPLIT_AFTER.search(before) or after[:1].isdigit() or after[:1].islower()):
            continue
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(norm)))
    out = []
    for a, b in spans:
        while a < b and norm[a].isspace():
            a += 1
        while b > a and norm[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out


def _is_filler(sentence: str) -> bool:
    body = " ".join(sentence.split()).rstrip(".!?;: ")
    return any(rx.match(body) for rx in _FILLER)


def read_prompt(text: str, dataset: str | None = None) -> Reading:
    """Read the facts a prompt states and report what was not understood.

    Args:
        text: any prompt: TGDMat's template, a Robocrystallographer description, free text.
        dataset: ``"perov_5"`` reads formation energies as ``heat_ref``; a data set with one
            per-atom energy (Perov-5, Carbon-24) takes an unnamed eV/atom value as it;
            Carbon-24 reads a bare "energy" as ``energy_per_atom``; :attr:`Reading.unused`
            lists properties its model is not conditioned on.

    Returns:
        :class:`Reading`.

    Raises:
        TypeError: ``text`` is not a str.
        PromptError: an impossible or contradictory fact (see the module docstring); the
            message quotes the words.
    """
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be a str, not {type(text).__name__}")
    norm = text.translate(_ONE_TO_ONE)
    facts: list[FactSpan] = []
    unread: list[UnreadSpan] = []
    weak: list[FactSpan] = []
    sentence_of: dict[int, str] = {}
    empty: list[tuple[int, int]] = []  # sentences that carry nothing read
    for a, b in _sentences(norm):
        original = text[a:b]
        if _is_filler(original):
            continue
        spans, skipped, named = _read_sentence(norm[a:b], original, a, dataset)
        for span in spans + named:
            sentence_of[id(span)] = original
        if not spans and not skipped and not named and re.search(r"\w", original):
            empty.append((a, b))
        facts += spans
        unread += skipped
        weak += named
    if any(f.kind == "formula" for f in facts):
        unread += [UnreadSpan(w.start, w.end, w.text, "an element named; the formula is stated "
                              "elsewhere") for w in weak]
    else:
        facts = sorted(facts + weak, key=lambda f: f.start)
    unread += [UnreadSpan(a, b, text[a:b], "no fact read in this sentence") for a, b in empty]
    return Reading(text, dataset, _combine(facts, sentence_of), tuple(facts),
                   tuple(sorted(unread, key=lambda u: u.start)))


def _read_sentence(norm: str, original: str, start: int, dataset: str | None):
    """(facts, unread, weak material names) of one sentence: the template, else free reading."""
    try:
        template = read_template_sentence(original, dataset)
    except PromptError as template_error:
        try:
            read = _read_free(norm, original, start, dataset)
        except PromptError as free_error:  # the more specific message when about the same part
            raise (free_error if free_error.part == template_error.part else template_error) \
                from None
        if not any(s.kind == template_error.part for s in read[0]):
            raise template_error from None
        return read
    if template is None:
        return _read_free(norm, original, start, dataset)
    end = start + len(original)
    return [FactSpan(start, end, original, part, value, unit)
            for part, value, unit in template], [], []


def _read_free(norm: str, original: str, start: int, dataset: str | None):
    reader = _Sentence(norm, original, start, dataset)
    reader.read()
    return sorted(reader.facts, key=lambda f: f.start), reader.unread, reader.weak


def _combine(spans: list[FactSpan], sentence_of: dict[int, str]) -> PromptFacts:
    """One value per kind; contradictions raise PromptError quoting both stretches."""
    first: dict[str, FactSpan] = {}
    for span in spans:
        seen = first.get(span.kind)
        if seen is None:
            first[span.kind] = span
            continue
        same = (set(seen.value) == set(span.value) if span.kind == "elements"
                else seen.value == span.value)
        if not same:
            what = {"formula": "two different formulas",
                    "crystal_system": "two different crystal systems",
                    "space_group": "two different space groups",
                    "elements": "two different element lists"}.get(
                        span.kind, f"{span.kind} stated twice with different values")
            raise PromptError(f"{what}: {seen.text!r} ({_show(seen.value)}) and {span.text!r} "
                              f"({_show(span.value)})", sentence_of[id(span)], span.kind)
    props = {k: s.value for k, s in first.items() if k not in FACT_KINDS}
    units = {k: s.unit for k, s in first.items() if k not in FACT_KINDS}

    def get(kind: str):
        return first[kind].value if kind in first else None

    facts = PromptFacts(formula=get("formula"), elements=get("elements"),
                        crystal_system=get("crystal_system"), space_group=get("space_group"),
                        properties=props, units=units)
    if facts.space_group is not None and facts.crystal_system is not None:
        implied = crystal_system_of(facts.space_group)
        if implied != facts.crystal_system:
            sg, cs = first["space_group"], first["crystal_system"]
            raise PromptError(f"{sg.text!r} is space group {facts.space_group} ({implied}), but "
                              f"{cs.text!r} says {facts.crystal_system}",
                              sentence_of[id(cs)], "crystal_system")
    if facts.formula is not None and facts.elements is not None:
        from_formula = {el.symbol for el in facts.composition().elements}
        if from_formula != set(facts.elements):
            el, fo = first["elements"], first["formula"]
            raise PromptError(f"elements {el.text!r} ({_show(facts.elements)}) contradict the "
                              f"formula {fo.text!r} ({facts.formula})", sentence_of[id(el)],
                              "elements")
    return facts


def check_composition(stated: Reading | PromptFacts, requested) -> None:
    """Check a prompt against the composition a CSP user asked for (``--formula SrTiO3``).

    Args:
        stated: a :class:`Reading` or the :class:`PromptFacts` of the prompt.
        requested: formula string or pymatgen ``Composition``.

    Raises:
        PromptError: the prompt's formula (reduced) or element list differs from ``requested``;
            the message names both.
    """
    from pymatgen.core import Composition

    facts = stated.facts if isinstance(stated, Reading) else stated
    spans: dict[str, FactSpan] = {}
    for span in stated.understood if isinstance(stated, Reading) else ():
        spans.setdefault(span.kind, span)
    comp = Composition(requested) if isinstance(requested, str) else requested
    wanted = comp.reduced_formula
    if facts.formula is not None and facts.formula != wanted:
        words = spans["formula"].text if "formula" in spans else facts.formula
        raise PromptError(f"the prompt states the formula {words!r} ({facts.formula}) but the "
                          f"requested composition is {wanted}", part="formula")
    if facts.elements is not None and set(facts.elements) != {e.symbol for e in comp.elements}:
        words = spans["elements"].text if "elements" in spans else ", ".join(facts.elements)
        raise PromptError(f"the prompt states the elements {words!r} but the requested "
                          f"composition is {wanted}", part="elements")


# ============================================================================ curated set
def load_curated(path: str | Path | None = None) -> list[dict]:
    """The curated free-written prompts (``data/prompts/curated.json``) with their facts."""
    if path is None:
        from tgdmat.paths import data_dir

        path = data_dir() / "prompts" / "curated.json"
    return json.loads(Path(path).read_text(encoding="utf-8"))["cases"]


@dataclass
class CuratedScore:
    """Per fact kind: facts expected, read, read correctly; precision and recall.

    ``properties`` pools every property column. ``errors`` lists ``(text, message)`` of prompts
    that raised, ``misses`` ``(text, kind, expected, got)`` of every wrong or missing fact.
    """

    counts: dict[str, dict[str, int]]
    errors: list[tuple[str, str]]
    misses: list[tuple[str, str, object, object]]

    def precision(self, kind: str) -> float:
        c = self.counts[kind]
        return c["correct"] / c["read"] if c["read"] else 1.0

    def recall(self, kind: str) -> float:
        c = self.counts[kind]
        return c["correct"] / c["expected"] if c["expected"] else 1.0

    def table(self) -> str:
        rows = [f"{'kind':<15}{'expected':>9}{'read':>6}{'correct':>8}{'precision':>10}"
                f"{'recall':>8}"]
        for kind, c in self.counts.items():
            rows.append(f"{kind:<15}{c['expected']:>9}{c['read']:>6}{c['correct']:>8}"
                        f"{self.precision(kind):>10.3f}{self.recall(kind):>8.3f}")
        return "\n".join(rows)


def score_curated(cases: list[dict] | None = None, abs_tol: float = 5e-5) -> CuratedScore:
    """Score :func:`read_prompt` on the curated prompts, per fact kind.

    A fact counts as correct when it equals the expected one (elements as sets, properties
    within ``abs_tol`` eV(/atom)). A prompt that raises counts every expected fact as missed.
    """
    cases = load_curated() if cases is None else cases
    kinds = (*FACT_KINDS, "properties")
    counts = {k: {"expected": 0, "read": 0, "correct": 0} for k in kinds}
    errors, misses = [], []
    for case in cases:
        want = case["facts"]
        try:
            got = read_prompt(case["text"], case.get("dataset")).facts
        except PromptError as exc:
            errors.append((case["text"], str(exc)))
            got = PromptFacts()
        pairs = [(k, want.get(k), getattr(got, k)) for k in FACT_KINDS]
        keys = set(want.get("properties", {})) | set(got.properties)
        pairs += [("properties", want.get("properties", {}).get(k), got.properties.get(k))
                  for k in sorted(keys)]
        for kind, expected, value in pairs:
            c = counts[kind]
            c["expected"] += expected is not None
            c["read"] += value is not None
            if kind == "elements" and expected is not None and value is not None:
                ok = set(expected) == set(value)
            elif kind == "properties" and expected is not None and value is not None:
                ok = math.isclose(expected, value, rel_tol=0.0, abs_tol=abs_tol)
            else:
                ok = expected is not None and expected == value
            c["correct"] += ok
            if (expected is not None or value is not None) and not ok:
                misses.append((case["text"], kind, expected, value))
    return CuratedScore(counts, errors, misses)


def validate_prompt(text: str, dataset: str | None = None) -> str:
    """Check a user's prompt and return it stripped of surrounding white space.

    Free text is accepted; the facts it states must be possible and must not contradict each
    other. A sentence in TGDMat's template form is held to the template parser
    (:func:`tgdmat.text.parse.parse_prompt`: "The crystal system is cubicish." is an error), unless
    the free-text reader reads it as a fact — a paraphrase such as "The formation energy per
    atom is about 1.96." is accepted, as :func:`read_prompt` understands it.

    Raises:
        TypeError: ``text`` is not a str.
        PromptError: the prompt is empty / white space only, or states an impossible or
            contradicting fact (the message names the words).
    """
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be a str, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise PromptError("the prompt is empty (or only white space); describe the material, "
                          "e.g. 'The chemical formula is SrTiO3. The crystal system is cubic.'",
                          part="prompt")
    try:
        parse_prompt(stripped, dataset=dataset)
    except PromptError as err:
        reading = read_prompt(stripped, dataset=dataset)  # its own errors name the words
        sentence = err.sentence or ""
        lo = stripped.find(sentence) if sentence else -1
        if lo < 0:
            raise
        hi = lo + len(sentence)
        if not any(s.start < hi and s.end > lo for s in reading.understood):
            raise
    else:
        read_prompt(stripped, dataset=dataset)
    return stripped
