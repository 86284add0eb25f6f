"""Read the constraints a prompt states: formula, elements, crystal system, space group, values.

The parser reads sentence by sentence. A sentence that states a fact must state it correctly;
any other sentence is free text and is ignored, so a user's own prompt works and only the facts
it states are checked. Recognised statements (case-insensitive; a final ``.`` is dropped):

=========================  =====================================================================
sentence                   examples
=========================  =====================================================================
formula                    ``The chemical formula is SrTiO3`` / ``The formula is Sr(TiO3)2``
elements                   ``The elements are Sr, Ti, O`` / ``... are Sr, Ti and O``
space group                ``The spacegroup number is 221`` / ``The space group is Pm-3m``
crystal system             ``The crystal system is cubic``
property                   ``The formation energy per atom is -0.1234``; ``The band gap is 1.2 eV``;
                           ``The energy per atom is -1.54e+2 eV/atom``; ``... is 1.2×10^-3``
Robocrystallographer       ``SrTiO3 is (Cubic) Perovskite structured and crystallizes in the cubic
                           Pm-3m space group``
=========================  =====================================================================

Numbers: optional sign (``-``, ``+``, ``−``), decimals, exponents written ``1e-3``, ``1.2E+03``,
``1.2×10^-3``, ``1.2 x 10^(-3)``, ``1.2*10**-3`` or ``1.2×10⁻³``, then an optional unit (eV/atom,
eV per atom, meV/atom, eV, meV). A value is converted to eV(/atom) with decimal arithmetic, so
``float`` of the stated decimal is returned exactly (``-0.1234`` → ``float("-0.1234")``).

Free-written prompts: this parser reads only the sentences above and ignores every other one
silently. :func:`tgdmat.text.reader.read_prompt` reads free-written prompts (paraphrases, "key:
value" lists, symbols, units) and reports what it did not understand; it reads templated
sentences with :func:`read_template_sentence`, the function :func:`parse_prompt` uses, so both
give identical facts on templated prompts; use :func:`tgdmat.text.reader.read_prompt` for prompts people write.

Anything impossible raises :class:`PromptError` naming the sentence and the part: a malformed
number, an unknown unit, an unparseable formula or one with an unknown element, a zero or
fractional atom count, a space group outside 1..230, an unknown crystal system, a crystal system
that contradicts the space group, elements that contradict the formula, or one fact stated twice
with different values.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from tgdmat.text.facts import (
    CRYSTAL_SYSTEM_RANGES,
    PromptError,
    PromptFacts,
    crystal_system_of,
    element_symbols,
)

__all__ = ["PromptError", "PromptFacts", "parse_prompt", "parse_number",
           "parse_formula", "parse_space_group", "split_sentences", "read_template_sentence"]

# words for each property → canonical column name
_PROPERTY_NAMES: dict[str, str] = {
    "formation energy per atom": "formation_energy_per_atom",
    "formation energy": "formation_energy_per_atom",
    "formation_energy_per_atom": "formation_energy_per_atom",
    "heat_ref": "heat_ref",
    "heat ref": "heat_ref",
    "energy per atom": "energy_per_atom",
    "energy_per_atom": "energy_per_atom",
    "band gap": "band_gap",
    "bandgap": "band_gap",
    "band_gap": "band_gap",
    "energy above the convex hull": "e_above_hull",
    "energy above convex hull": "e_above_hull",
    "energy above the hull": "e_above_hull",
    "energy above hull": "e_above_hull",
    "e_above_hull": "e_above_hull",
}

# written unit (lower case, spaces removed) → (decimal exponent to eV, canonical spelling)
_UNITS: dict[str, tuple[int, str]] = {
    "ev/atom": (0, "eV/atom"), "evperatom": (0, "eV/atom"), "ev/at": (0, "eV/atom"),
    "ev/at.": (0, "eV/atom"), "evatom^-1": (0, "eV/atom"), "evatom-1": (0, "eV/atom"),
    "mev/atom": (-3, "meV/atom"), "mevperatom": (-3, "meV/atom"),
    "mevatom^-1": (-3, "meV/atom"), "mevatom-1": (-3, "meV/atom"),
    "ev": (0, "eV"), "mev": (-3, "meV"),
}

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2012": "-", "\u2010": "-",
                              "\u00a0": " ", "\u202f": " "})

_NUMBER = re.compile(
    r"""^(?P<sign>[+-])?
        (?P<mant>\d+(?:\.\d*)?|\.\d+)
        (?:
            [eE](?P<e1>[+-]?\d+)
          | \s*[x×*·]\s*10\s*(?:\^|\*\*)?\s*\(?\s*(?P<e2>[+-]?\d+)\s*\)?
        )?
        (?:\s*(?P<rest>\S.*))?$""",
    re.VERBOSE,
)

_PROP_ALT = "|".join(sorted((re.escape(k) for k in _PROPERTY_NAMES), key=len, reverse=True))
_RE_FORMULA = re.compile(r"^the (?:chemical |reduced )?formula is\b\s*(?P<v>.*)$", re.I)
_RE_ELEMENTS = re.compile(r"^the (?:chemical )?elements? (?:are|is)\b\s*(?P<v>.*)$", re.I)
_RE_SPACEGROUP = re.compile(r"^the space[ _-]?group(?: number)? is\b\s*(?P<v>.*)$", re.I)
_RE_SYSTEM = re.compile(r"^the crystal system is\b\s*(?P<v>.*)$", re.I)
_RE_PROPERTY = re.compile(rf"^the (?P<name>{_PROP_ALT}) is\b\s*(?P<v>.*)$", re.I)
_RE_ROBOCRYS = re.compile(
    r"^(?P<formula>\S+) (?:is .+ structured and )?crystallizes in the "
    r"(?P<system>[A-Za-z]+) (?P<symbol>\S+) space group$"
)
_FACT_PARTS = frozenset({"formula", "elements", "space_group", "crystal_system"})
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def split_sentences(text: str) -> list[str]:
    """Split at ``.``, ``!``, ``?``, ``;`` or ``:`` followed by white space (so ``1.5`` stays)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _body(sentence: str) -> str:
    body = " ".join(sentence.split())
    if body and body[-1] in ".!?;:":
        body = body[:-1].rstrip()
    return body


def parse_number(text: str, sentence: str = "", part: str = "value") -> tuple[float, str]:
    """Parse ``"<number> [unit]"`` → (value converted to eV or eV/atom, unit as canonically spelt).

    The value is the float nearest to the stated decimal times the unit's power of ten
    (decimal arithmetic, one rounding), so the stated digits come back exactly.
    """
    raw = text.strip()
    norm = raw.translate(_MINUS_SIGNS)
    # a unicode superscript exponent: 10⁻³ → 10^-3
    norm = re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)", lambda m: "10^" + m.group(1).translate(_SUPERSCRIPTS),
                  norm)
    match = _NUMBER.match(norm)
    if not match:
        raise PromptError(f"malformed number {raw!r}", sentence, part)
    rest = match.group("rest")
    scale, unit = 0, ""
    if rest is not None:
        key = rest.lower().replace(" ", "")
        if key in _UNITS:
            scale, unit = _UNITS[key]
        elif rest[0].isalpha() and not re.match(r"^[eE][+-]?\d*$", rest):
            raise PromptError(f"unknown unit {rest!r} after the number (known: eV/atom, "
                              f"eV per atom, meV/atom, eV, meV)", sentence, part)
        else:
            raise PromptError(f"malformed number {raw!r}", sentence, part)
    exponent = int(match.group("e1") or match.group("e2") or 0) + scale
    if abs(exponent) > 400:
        raise PromptError(f"exponent of {raw!r} is out of range", sentence, part)
    try:
        value = Decimal((match.group("sign") or "") + match.group("mant")).scaleb(exponent)
        result = float(value)
    except (InvalidOperation, OverflowError, ValueError) as exc:  # pragma: no cover - guarded
        raise PromptError(f"malformed number {raw!r}", sentence, part) from exc
    if not math.isfinite(result):
        raise PromptError(f"number {raw!r} is too large", sentence, part)
    return result, unit


_FORMULA_TOKEN = re.compile(r"([A-Z][a-z]?)|(\d+(?:\.\d+)?)|(\()|(\))|(\s+)|(.)")


def _formula_counts(text: str, sentence: str, part: str) -> dict[str, int]:
    """Parse a formula with parentheses into integer counts; raises PromptError."""
    tokens = [(m.lastindex, m.group(0)) for m in _FORMULA_TOKEN.finditer(text)]
    tokens = [t for t in tokens if t[0] != 5]  # drop white space
    pos = 0
    symbols = element_symbols()

    def amount() -> int:
        nonlocal pos
        if pos < len(tokens) and tokens[pos][0] == 2:
            literal = tokens[pos][1]
            pos += 1
            if "." in literal and float(literal) != int(float(literal)):
                raise PromptError(f"formula {text!r} has a fractional atom count {literal} "
                                  "(only ordered crystals with whole atoms)", sentence, part)
            n = int(float(literal))
            if n == 0:
                raise PromptError(f"formula {text!r} has a zero atom count", sentence, part)
            return n
        return 1

    def group(depth: int) -> dict[str, int]:
        nonlocal pos
        counts: dict[str, int] = {}
        while pos < len(tokens):
            kind, lit = tokens[pos]
            if kind == 1:
                pos += 1
                if lit not in symbols:
                    raise PromptError(f"unknown element {lit!r} in formula {text!r}", sentence,
                                      part)
                n = amount()
                counts[lit] = counts.get(lit, 0) + n
            elif kind == 3:
                pos += 1
                inner = group(depth + 1)
                if pos >= len(tokens) or tokens[pos][0] != 4:
                    raise PromptError(f"unbalanced '(' in formula {text!r}", sentence, part)
                pos += 1
                n = amount()
                for el, c in inner.items():
                    counts[el] = counts.get(el, 0) + c * n
            elif kind == 4:
                if depth == 0:
                    raise PromptError(f"unbalanced ')' in formula {text!r}", sentence, part)
                return counts
            elif kind == 2:
                raise PromptError(f"formula {text!r} has a number {lit!r} without an element",
                                  sentence, part)
            else:
                raise PromptError(f"cannot parse formula {text!r} at {lit!r} (write element "
                                  "symbols with capitals, e.g. SrTiO3)", sentence, part)
        return counts

    counts = group(0)
    if not counts:
        raise PromptError(f"empty formula {text!r}", sentence, part)
    return counts


def parse_formula(text: str, sentence: str = "", part: str = "formula") -> str:
    """Validate a formula and return its reduced form (pymatgen spelling), e.g. Sr2Ti2O6 → SrTiO3."""
    from pymatgen.core import Composition

    counts = _formula_counts(text.strip(), sentence, part)
    return Composition(counts).reduced_formula


@lru_cache(maxsize=1)
def _symbol_table() -> dict[str, int]:
    import spglib

    table: dict[str, int] = {}
    for hall in range(1, 531):
        sg = spglib.get_spacegroup_type(hall)
        for name in (sg.international_short, sg.international, sg.international_full):
            table.setdefault(name.replace(" ", ""), int(sg.number))
    return table


def parse_space_group(text: str, sentence: str = "", part: str = "space_group") -> int:
    """A space-group number 1..230, or a Hermann–Mauguin symbol (``Pm-3m``, ``P6_3/mmc``)."""
    value = text.strip()
    if re.fullmatch(r"[+-]?\d+", value):
        number = int(value)
        if not 1 <= number <= 230:
            raise PromptError(f"space group {number} is outside 1..230", sentence, part)
        return number
    symbol = value.replace(" ", "")
    table = _symbol_table()
    if symbol in table:
        return table[symbol]
    raise PromptError(f"{value!r} is neither a space-group number 1..230 nor a "
                      "Hermann-Mauguin symbol", sentence, part)


def _parse_elements(text: str, sentence: str) -> tuple[str, ...]:
    parts = [p.strip() for p in re.split(r",|\band\b|&", text) if p.strip()]
    if not parts:
        raise PromptError("no elements listed", sentence, "elements")
    symbols = element_symbols()
    seen: list[str] = []
    for p in parts:
        if p not in symbols:
            raise PromptError(f"unknown element {p!r}", sentence, "elements")
        if p in seen:
            raise PromptError(f"element {p!r} listed twice", sentence, "elements")
        seen.append(p)
    return tuple(seen)


def _parse_system(text: str, sentence: str) -> str:
    value = text.strip().lower()
    if value not in CRYSTAL_SYSTEM_RANGES:
        raise PromptError(f"unknown crystal system {text.strip()!r} (expected one of "
                          f"{', '.join(CRYSTAL_SYSTEM_RANGES)})", sentence, "crystal_system")
    return value


def read_template_sentence(sentence: str, dataset: str | None = None
                           ) -> list[tuple[str, object, str]] | None:
    """The facts one templated sentence states, or None when it is not a templated sentence.

    Returns ``(part, value, unit)`` triples (``unit`` is "" except for properties); raises
    :class:`PromptError` when the sentence has a template's form but an impossible value.
    :func:`parse_prompt` and :func:`tgdmat.text.reader.read_prompt` both read templated
    sentences with it, so the two agree on them by construction.
    """
    body = _body(sentence)
    if m := _RE_FORMULA.match(body):
        return [("formula", parse_formula(m["v"], sentence), "")]
    if m := _RE_ELEMENTS.match(body):
        return [("elements", _parse_elements(m["v"], sentence), "")]
    if m := _RE_SPACEGROUP.match(body):
        return [("space_group", parse_space_group(m["v"], sentence), "")]
    if m := _RE_SYSTEM.match(body):
        return [("crystal_system", _parse_system(m["v"], sentence), "")]
    if m := _RE_PROPERTY.match(body):
        key = _PROPERTY_NAMES[m["name"].lower()]
        if key == "formation_energy_per_atom" and dataset == "perov_5":
            key = "heat_ref"
        value, unit = parse_number(m["v"], sentence, key)
        return [(key, value, unit)]
    if m := _RE_ROBOCRYS.match(body):
        return [("formula", parse_formula(m["formula"], sentence), ""),
                ("crystal_system", _parse_system(m["system"], sentence), ""),
                ("space_group", parse_space_group(m["symbol"], sentence), "")]
    return None


def parse_prompt(text: str, dataset: str | None = None) -> PromptFacts:
    """Extract the facts a prompt states.

    Args:
        text: a short prompt, a Robocrystallographer description, or free text.
        dataset: if ``"perov_5"``, "formation energy per atom" is reported under ``heat_ref``
            (the column TGDMat's Perov-5 prompt describes with those words).

    Only the templated sentences of the module docstring are read; every other sentence is
    ignored. :func:`tgdmat.text.reader.read_prompt` reads templated sentences exactly as here and
    free-written ones too (paraphrases, "key: value" lists, symbols like Pm-3m, units), and says
    what it did not understand: use it for prompts people write.

    Returns:
        :class:`PromptFacts`; facts the prompt does not state are ``None`` / absent.

    Raises:
        PromptError: see the module docstring; the message names the sentence and the part.
    """
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be a str, not {type(text).__name__}")
    found: dict[str, tuple[object, str]] = {}  # part → (value, sentence)
    properties: dict[str, float] = {}
    units: dict[str, str] = {}

    def put(part: str, value: object, sentence: str) -> None:
        if part in found and found[part][0] != value:
            raise PromptError(f"stated twice with different values ({found[part][0]!r} in "
                              f"{found[part][1]!r}, {value!r} here)", sentence, part)
        found.setdefault(part, (value, sentence))

    for sentence in split_sentences(text):
        for part, value, unit in read_template_sentence(sentence, dataset) or ():
            put(part, value, sentence)
            if part not in _FACT_PARTS:
                properties[part] = value
                units[part] = unit

    def get(part: str):
        return found[part][0] if part in found else None

    facts = PromptFacts(formula=get("formula"), elements=get("elements"),
                        crystal_system=get("crystal_system"), space_group=get("space_group"),
                        properties=properties, units=units)
    if facts.space_group is not None and facts.crystal_system is not None:
        implied = crystal_system_of(facts.space_group)
        if implied != facts.crystal_system:
            raise PromptError(
                f"crystal system {facts.crystal_system!r} contradicts space group "
                f"{facts.space_group} (which is {implied})", found["crystal_system"][1],
                "crystal_system")
    if facts.formula is not None and facts.elements is not None:
        from_formula = {el.symbol for el in facts.composition().elements}
        if from_formula != set(facts.elements):
            raise PromptError(
                f"elements {', '.join(facts.elements)} contradict formula {facts.formula} "
                f"({', '.join(sorted(from_formula))})", found["elements"][1], "elements")
    return facts
