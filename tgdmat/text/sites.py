"""Site facts of a Robocrystallographer description: what each site's sentences state, as numbers.

A long prompt (:func:`tgdmat.text.descriptions.load_descriptions`) names every inequivalent site
and states its coordination, geometry, neighbours, polyhedron, connectivity, bond lengths and
tilt angles. :func:`parse_description` turns the text into a :class:`DescriptionFacts`:

* global facts: formula, mineral prototype (and whether the structure is "-like" or
  "-derived" from it), crystal system, space-group symbol, dimensionality and the structural
  components ("one C sheet oriented in the (1, 0, 0) direction", "one Cu cluster inside a CdN3
  framework"), and the "There are two inequivalent O sites" counts;
* per site (:class:`SiteFacts`, keyed by the label, e.g. ``"Ti(1)"`` or a merged label such as
  ``"O(1,2)"``): element, coordination number, geometry and polyhedron words, neighbours with
  counts, connectivity (corner/edge/face-sharing, and the counted "shares corners with six
  equivalent Ti(1)O6 octahedra" partners), bond lengths per neighbour (every form robocrys
  writes: "All …", "Both …", "The … bond length is …", "There is one shorter (…) and one longer
  (…) …", "There are a spread of … bond distances ranging from …-… Å") and octahedral tilts.

Numbers are ``float(token)`` of the written decimal (``"1.97"`` → ``1.97``), counts are ints
(``"six"`` → 6, ``"twelve-coordinate"`` / ``"12-coordinate"`` → 12).

Every sentence gets a kind (:data:`SENTENCE_KINDS`); a sentence no rule reads completely gets
the kind ``"unknown"`` and is listed in :attr:`DescriptionFacts.unparsed` — nothing is dropped
silently. :func:`parsing_report` runs the parser over many descriptions and counts kinds, forms,
coverage and the most frequent shapes of the sentences not understood
(``benchmarks/bench_site_parser.py`` writes it for the shipped texts).

:func:`site_features` gathers, for one element, the facts of all its sites (what the per-atom
conditioning gives each atom: the facts of its own element's sites).

The grammar is robocrys 0.2.13's (the version the shipped texts were written with). Two of its
quirks are read as written: orientations printed as ``(np.int64(1), np.int64(0), np.int64(0))``
and empty neighbour lists in clusters (``"Cu(1) is bonded in a 1-coordinate geometry to  atoms."``:
coordination 1 from the geometry words, no neighbours).

The geometry names are those of matminer's CrystalNN fingerprint that robocrys reports; each
implies a coordination number (:data:`GEOMETRY_COORDINATION`), and every polyhedron word has its
geometry (:data:`POLYHEDRON_GEOMETRY`), so each site gets one ``shape`` word from either form.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "SENTENCE_KINDS", "Neighbour", "BondLengths", "SharedPolyhedron", "SiteFacts", "Component",
    "DescriptionFacts", "split_description", "parse_description", "site_features",
    "sentence_shape", "parsing_report", "count_word", "ordinal_word", "element_of",
    "canonical_label", "GEOMETRY_COORDINATION", "POLYHEDRON_GEOMETRY",
]

#: every kind a sentence can get; ``"unknown"`` is "not understood"
SENTENCE_KINDS = ("formula_space_group", "structure", "inequivalent_sites", "site",
                  "bond_lengths", "tilt", "unknown")

#: coordination number each geometry name stands for (CrystalNN's motif names, as robocrys
#: writes them; "bent 120 degrees" / "bent 150 degrees" are read as "bent" plus an angle)
GEOMETRY_COORDINATION = {
    "single-bond": 1,
    "L-shaped": 2, "water-like": 2, "bent": 2, "linear": 2,
    "trigonal planar": 3, "trigonal non-coplanar": 3, "T-shaped": 3,
    "square co-planar": 4, "tetrahedral": 4, "rectangular see-saw-like": 4, "see-saw-like": 4,
    "trigonal pyramidal": 4,
    "pentagonal planar": 5, "square pyramidal": 5, "trigonal bipyramidal": 5,
    "hexagonal planar": 6, "octahedral": 6, "pentagonal pyramidal": 6,
    "hexagonal pyramidal": 7, "pentagonal bipyramidal": 7,
    "body-centered cubic": 8, "hexagonal bipyramidal": 8,
    "cuboctahedral": 12,
}
#: the geometry of each polyhedron word of "to form … TiO6 octahedra"
POLYHEDRON_GEOMETRY = {
    "octahedra": "octahedral", "tetrahedra": "tetrahedral", "cuboctahedra": "cuboctahedral",
    "trigonal pyramids": "trigonal pyramidal", "square pyramids": "square pyramidal",
    "trigonal bipyramids": "trigonal bipyramidal", "pentagonal pyramids": "pentagonal pyramidal",
    "hexagonal pyramids": "hexagonal pyramidal",
    "pentagonal bipyramids": "pentagonal bipyramidal",
    "hexagonal bipyramids": "hexagonal bipyramidal",
}

# --------------------------------------------------------------------------------------------
# words → numbers
# --------------------------------------------------------------------------------------------
_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen"]
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_WORDS: dict[str, int] = {w: i for i, w in enumerate(_UNITS)}
_WORDS.update(_TENS)
for _t, _v in _TENS.items():
    for _u in range(1, 10):
        _WORDS[f"{_t}-{_UNITS[_u]}"] = _v + _u
_IRREGULAR_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                       "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
_ORDINALS: dict[str, int] = {}
for _w, _v in _WORDS.items():
    _last = _w.split("-")[-1]
    _head = _w[: len(_w) - len(_last)]
    if _last in _IRREGULAR_ORDINALS:
        _ORDINALS[_head + _IRREGULAR_ORDINALS[_last]] = _v
    elif _last.endswith("y"):
        _ORDINALS[_head + _last[:-1] + "ieth"] = _v
    else:
        _ORDINALS[_head + _last + "th"] = _v


def count_word(word: str) -> int:
    """``"six"`` → 6, ``"twenty-four"`` → 24, ``"12"`` → 12 (case-insensitive); ValueError else."""
    w = word.strip().lower()
    if w.isdigit():
        return int(w)
    if w in _WORDS:
        return _WORDS[w]
    raise ValueError(f"not a count: {word!r}")


def ordinal_word(word: str) -> int:
    """``"first"`` → 1, ``"twelfth"`` → 12, ``"twenty-third"`` → 23; ValueError else."""
    w = word.strip().lower()
    if w in _ORDINALS:
        return _ORDINALS[w]
    raise ValueError(f"not an ordinal: {word!r}")


# --------------------------------------------------------------------------------------------
# sentences
# --------------------------------------------------------------------------------------------
_ABBREVIATIONS = ("e.g", "i.e", "approx", "cf", "vs", "ca", "Fig", "Ref", "No", "np")
# a sentence ends at "." followed by white space and then a character that can start a sentence
_END = re.compile(r"\.(?=\s+[A-Z(\"'0-9])")


def split_description(text: str) -> list[str]:
    """The sentences of ``text``, each ending with its full stop, surrounding blanks stripped.

    A sentence ends at a full stop followed by white space and a capital letter, digit, quote or
    bracket: ``"… 1.97 Å. All …"`` splits, ``"1.97"``, ``"Pm-3m"`` and ``"np.int64(1)"`` do not (no
    blank after the stop). A stop right after a known abbreviation (``e.g.``, ``i.e.``, ``approx.``,
    ``cf.``, ``vs.``, ``Fig.``, ``No.``) does not end a sentence. Joining the pieces with single
    spaces gives back ``text`` with runs of white space between sentences collapsed.
    """
    out: list[str] = []
    start = 0
    for m in _END.finditer(text):
        head = text[start:m.start()]
        word = re.search(r"([A-Za-z.]+)$", head)
        if word and word.group(1) in _ABBREVIATIONS:
            continue
        piece = text[start:m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


# --------------------------------------------------------------------------------------------
# facts
# --------------------------------------------------------------------------------------------
_LABEL = r"[A-Z][a-z]?\(\d+(?:,\d+)*\)"
_NUM = r"\d+(?:\.\d+)?"
_COUNT = r"[a-z]+(?:-[a-z]+)?|\d+"
_DASH = r"[-\u2013\u2012\u2014\u2212]"


def canonical_label(label: str) -> str:
    """``"C(1,1)"`` → ``"C(1)"``, ``"C(3,1)"`` → ``"C(1,3)"``, ``"C(1)#2"`` → ``"C(1)"``.

    robocrys merges the labels of sites it finds equivalent ("O(1,2)") and sometimes repeats a
    number ("two C(7,7) atoms"); the bond sentences may spell the same site "C(7)".
    """
    m = re.fullmatch(r"([A-Z][a-z]?)\((\d+(?:,\d+)*)\)(?:#\d+)?", label)
    if not m:
        raise ValueError(f"not a site label: {label!r}")
    numbers = sorted({int(x) for x in m.group(2).split(",")})
    return f"{m.group(1)}({','.join(map(str, numbers))})"


def element_of(label: str) -> str:
    """``"Ti(1)"`` → ``"Ti"``, ``"O(1,2)"`` → ``"O"``."""
    m = re.fullmatch(r"([A-Z][a-z]?)\(\d+(?:,\d+)*\)(?:#\d+)?", label)
    if not m:
        raise ValueError(f"not a site label: {label!r}")
    return m.group(1)


@dataclass
class Neighbour:
    """``count`` atoms of the site ``label`` ("two equivalent O(1)": 2, ``equivalent=True``)."""

    label: str
    count: int
    equivalent: bool

    @property
    def element(self) -> str:
        return element_of(self.label)


@dataclass
class BondLengths:
    """One bond-length sentence: site–neighbour lengths as written.

    Attributes:
        neighbour: the neighbour's label (the second label of "Ti(1)-O(1)").
        form: ``"all"`` (All … are x), ``"both"`` (Both … are x), ``"single"`` (The … bond
            length is x), ``"shorter_longer"`` (There is/are n shorter (x) and m longer (y)),
            ``"spread"`` (… bond distances ranging from x-y).
        values: the lengths in Å in the order written (one, or two for shorter/longer and
            spread).
        counts: how many bonds each value stands for when the sentence says so (both: 2,
            single: 1, shorter/longer: n and m), else ``None`` (all, spread: the neighbour count
            of the site sentence).
    """

    neighbour: str
    form: str
    values: tuple[float, ...]
    counts: tuple[int, ...] | None

    @property
    def element(self) -> str:
        return element_of(self.neighbour)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)


@dataclass
class SharedPolyhedron:
    """"shares corners with six equivalent Ti(1)O6 octahedra": kind corner, 6, Ti(1), TiO6."""

    kind: str               # "corner", "edge" or "face"
    count: int
    label: str              # the partner's site label
    formula: str            # the partner polyhedron's formula with the centre's element
    polyhedron: str         # "octahedra", "cuboctahedra", …
    equivalent: bool


@dataclass
class SiteFacts:
    """What the description says about one inequivalent site.

    Attributes:
        label, element: ``"Ti(1)"``, ``"Ti"``.
        ordinal: n of "In the n-th O site" (None when the element has one site).
        component: "In the CdN3 framework, …" → ``"CdN3 framework"`` (None outside components).
        coordination: the number of bonded atoms: the sum of the neighbour counts; when no
            neighbour is listed (robocrys' clusters: "… geometry to  atoms"), the n of
            "n-coordinate", else the number the geometry name implies.
        coordination_source: ``"neighbours"``, ``"stated"`` or ``"geometry"`` (which rule gave
            :attr:`coordination`), None without one.
        stated_coordination: the n of "in a n-coordinate geometry" if written. robocrys writes
            it when no geometry fits well, as the fingerprint's most likely coordination; it
            can differ from the neighbours listed ("a 4-coordinate geometry to two S(1), two
            O(1), and two O(2) atoms").
        geometry: the geometry words without "distorted" and without an n-coordinate
            (``"linear"``, ``"see-saw-like"``, ``"trigonal planar"``, ``"bent"``), or None.
        bent_angle: 150.0 for "bent 150 degrees".
        polyhedron, polyhedron_formula: ``"octahedra"``, ``"TiO6"`` of "to form … TiO6 octahedra".
        distorted: "distorted" qualifies the geometry or the polyhedron.
        neighbours: :class:`Neighbour` list in the order written.
        connectivity: sorted subset of ``("corner", "edge", "face")`` the polyhedron shares,
            from "corner-sharing", "a mixture of corner and edge-sharing" and the
            "that share corners with …" clause.
        shares: the counted partners of "that share corners with …, edges with …".
        mixture: "a mixture of … -sharing" was written.
        bonds: :class:`BondLengths` sentences about this site ("Ti(1)-O(1) …"), in order.
        implied_bonds: the same lengths seen from the other end. robocrys states each bond
            once, under the site described first, so "All Ti(1)-O(1) bond lengths are 1.97 Å"
            gives O(1) a Ti(1) bond of 1.97 Å (form ``"implied_<form>"``, ``counts`` None); a
            pair the site's own sentences state is not repeated here. Labels are matched after
            :func:`canonical_label` ("C(7,7)" is "C(7)").
        tilt_min, tilt_max: octahedral tilt angles in degrees ("not tilted" → 0, 0).
        tilt_polyhedron: the tilted polyhedra's word ("octahedra").
        sentences: indices (into :attr:`DescriptionFacts.sentences`) of the site's sentences.
    """

    label: str
    element: str
    ordinal: int | None = None
    component: str | None = None
    coordination: int | None = None
    coordination_source: str | None = None
    stated_coordination: int | None = None
    geometry: str | None = None
    bent_angle: float | None = None
    polyhedron: str | None = None
    polyhedron_formula: str | None = None
    distorted: bool = False
    neighbours: list[Neighbour] = field(default_factory=list)
    connectivity: tuple[str, ...] = ()
    shares: list[SharedPolyhedron] = field(default_factory=list)
    mixture: bool = False
    bonds: list[BondLengths] = field(default_factory=list)
    implied_bonds: list[BondLengths] = field(default_factory=list)
    tilt_min: float | None = None
    tilt_max: float | None = None
    tilt_polyhedron: str | None = None
    sentences: list[int] = field(default_factory=list)

    def all_bonds(self, implied: bool = True) -> list[BondLengths]:
        """:attr:`bonds`, followed by :attr:`implied_bonds` when ``implied``."""
        return self.bonds + self.implied_bonds if implied else list(self.bonds)

    def bond_range(self, element: str | None = None, implied: bool = True
                   ) -> tuple[float, float] | None:
        """(min, max) bond length to neighbours of ``element`` (all neighbours when None)."""
        vals = [v for b in self.all_bonds(implied) if element is None or b.element == element
                for v in b.values]
        return (min(vals), max(vals)) if vals else None

    def bond_ranges(self, implied: bool = True) -> dict[str, tuple[float, float]]:
        """neighbour element → (min, max) bond length, elements in the order first written."""
        out: dict[str, tuple[float, float]] = {}
        for b in self.all_bonds(implied):
            lo, hi = out.get(b.element, (b.min, b.max))
            out[b.element] = (min(lo, b.min), max(hi, b.max))
        return out

    def neighbour_counts(self) -> dict[str, int]:
        """neighbour element → number of bonded atoms."""
        out: dict[str, int] = {}
        for n in self.neighbours:
            out[n.element] = out.get(n.element, 0) + n.count
        return out

    @property
    def shape(self) -> str | None:
        """One geometry word: :attr:`geometry`, or the polyhedron's (octahedra → octahedral)."""
        if self.geometry:
            return self.geometry
        if self.polyhedron:
            return POLYHEDRON_GEOMETRY.get(self.polyhedron, self.polyhedron)
        return None

    @property
    def geometry_coordination(self) -> int | None:
        """The coordination number :attr:`shape` implies (None for "n-coordinate" / unknown)."""
        return GEOMETRY_COORDINATION.get(self.shape) if self.shape else None

    def geometry_words(self) -> set[str]:
        """Geometry and polyhedron words, plus "distorted" when it was written."""
        words = {w for w in (self.geometry, self.polyhedron) if w}
        if self.distorted:
            words.add("distorted")
        return words

    def as_dict(self) -> dict:
        """JSON-ready facts of the site."""
        return {
            "label": self.label, "element": self.element, "ordinal": self.ordinal,
            "component": self.component, "coordination": self.coordination,
            "coordination_source": self.coordination_source,
            "stated_coordination": self.stated_coordination,
            "shape": self.shape, "geometry": self.geometry, "bent_angle": self.bent_angle,
            "polyhedron": self.polyhedron, "polyhedron_formula": self.polyhedron_formula,
            "distorted": self.distorted,
            "neighbours": [(n.label, n.count) for n in self.neighbours],
            "connectivity": list(self.connectivity),
            "shares": [(s.kind, s.count, s.label, s.polyhedron) for s in self.shares],
            "bond_lengths": {el: list(r) for el, r in self.bond_ranges().items()},
            "tilt": None if self.tilt_min is None else [self.tilt_min, self.tilt_max],
        }


@dataclass
class Component:
    """A structural unit: "one C sheet oriented in the (1, 0, 0) direction", "a CdN3 framework"."""

    count: int
    formula: str
    kind: str                     # framework, sheet, ribbon, cluster, molecule, atom
    orientations: tuple[tuple[int, int, int], ...] = ()   # Miller indices, in the order written
    host: bool = False            # the "inside a … framework" part


@dataclass
class DescriptionFacts:
    """Facts of one description; ``kinds[i]`` is the kind of ``sentences[i]``.

    Attributes:
        formula, mineral, mineral_relation: "SrTiO3 is (Cubic) Perovskite-derived structured"
            → ``"SrTiO3"``, ``"(Cubic) Perovskite"``, ``"derived"`` (``"like"``, ``"exact"``;
            None without a prototype).
        crystal_system, space_group: ``"cubic"``, ``"Pm-3m"`` (the symbol as written).
        dimensionality: 0..3 from "The structure is two-dimensional"; 3 when no structure
            sentence says it (robocrys writes "The structure consists of …" without a
            dimensionality, or leaves the sentence out, for a three-dimensional structure).
        dimensionality_stated: the text names the dimensionality.
        components: :class:`Component` list of "The structure consists of …".
        inequivalent_sites: element → n of "There are n inequivalent <element> sites" (summed
            over components when each states its own count).
        inequivalent_statements: (component or None, element, n) of each such sentence ("In the
            C framework, there are fourteen inequivalent C sites" counts that framework's sites).
        sites: label → :class:`SiteFacts`, in the order written. When robocrys uses one
            label for two inequivalent sites ("In the first C site, C(1) …" and "In the fifth C
            site, C(1) …"), the second is kept under ``"C(1)#2"`` (its :attr:`SiteFacts.label`
            stays ``"C(1)"``); the bond sentences that follow a site sentence belong to it.
        tilts: (site label or None, min, max) of every tilt sentence.
        unparsed: sentences no rule read completely (kind ``"unknown"``).
        bond_forms: form of every bond-length sentence, in order.
    """

    text: str
    sentences: list[str]
    kinds: list[str]
    formula: str | None = None
    mineral: str | None = None
    mineral_relation: str | None = None
    crystal_system: str | None = None
    space_group: str | None = None
    dimensionality: int = 3
    dimensionality_stated: bool = False
    components: list[Component] = field(default_factory=list)
    inequivalent_sites: dict[str, int] = field(default_factory=dict)
    inequivalent_statements: list[tuple[str | None, str, int]] = field(default_factory=list)
    sites: dict[str, SiteFacts] = field(default_factory=dict)
    tilts: list[tuple[str | None, float, float]] = field(default_factory=list)
    bond_forms: list[str] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)

    @property
    def elements(self) -> list[str]:
        """Elements with at least one site, in the order first described."""
        return list(dict.fromkeys(s.element for s in self.sites.values()))

    def sites_of(self, element: str) -> list[SiteFacts]:
        """The sites of ``element`` in the order written."""
        return [s for s in self.sites.values() if s.element == element]

    @property
    def understood(self) -> float:
        """Share of sentences with a known kind (1.0 for an empty text)."""
        return 1.0 - len(self.unparsed) / len(self.sentences) if self.sentences else 1.0


# --------------------------------------------------------------------------------------------
# sentence rules
# --------------------------------------------------------------------------------------------
_SYSTEMS = "triclinic|monoclinic|orthorhombic|tetragonal|trigonal|hexagonal|cubic"
_RE_FORMULA_SG = re.compile(
    rf"(?P<formula>\S+) (?:is (?P<mineral>.+?) structured and )?crystallizes in the "
    rf"(?P<system>{_SYSTEMS}) (?P<sg>\S+) space group\.")
_DIMS = {"zero": 0, "one": 1, "two": 2, "three": 3, "0": 0, "1": 1, "2": 2, "3": 3}
_RE_STRUCTURE = re.compile(
    r"The structure (?:is (?P<dim>zero|one|two|three|[0-3])-dimensional"
    r"(?: and consists of (?P<comp1>.+))?|consists of (?P<comp2>.+))\.")
# robocrys' component shapes (by dimensionality 3, 2, 1, 0) and its molecule / atom groups
_UNIT_KINDS = ("framework", "sheet", "ribbon", "cluster", "molecule", "atom")
_HKL = r"\((?:np\.int64\()?-?\d+\)?, (?:np\.int64\()?-?\d+\)?, (?:np\.int64\()?-?\d+\)?\)"
_RE_HKL_NUMBERS = re.compile(r"(?:np\.int64\()?(-?\d+)\)?")
_RE_UNIT = re.compile(
    rf"(?P<n>{_COUNT}|an?) (?P<formula>\S+) (?P<kind>{'|'.join(_UNIT_KINDS)})s?"
    rf"(?: oriented in the (?P<orient>{_HKL}(?:(?:, and |, | and ){_HKL})*) directions?)?")
_RE_HOST = re.compile(rf" inside an? (?P<formula>\S+) (?P<kind>{'|'.join(_UNIT_KINDS)})$")
_RE_INEQ = re.compile(rf"There (?:are|is) (?P<n>{_COUNT}) inequivalent (?P<el>[A-Z][a-z]?) "
                      r"sites?\.")
_RE_PREFIX_COMPONENT = re.compile(
    rf"In the (?P<formula>\S+) (?P<kind>{'|'.join(_UNIT_KINDS)}), ")
_RE_PREFIX_SITE = re.compile(r"In the (?P<ord>[a-z]+(?:-[a-z]+)?) (?P<el>[A-Z][a-z]?) site, ")
_RE_SITE = re.compile(
    rf"(?P<label>{_LABEL}) is bonded (?:in an? (?P<geom>.+?) geometry )?to (?P<nbrs>.*?) "
    rf"atoms?(?: to form (?P<form>.+))?\.")
_RE_NEIGHBOUR = re.compile(rf"(?P<n>{_COUNT}) (?P<eq>equivalent )?(?P<label>{_LABEL})")
_NB_SEP = re.compile(r"(?:[,;] and |[,;] | and )")
_RE_N_COORD = re.compile(rf"(?P<n>{_COUNT})-coordinate")
_RE_BENT = re.compile(rf"bent (?P<a>{_NUM}) degrees")
_CONN = r"(?:corner|edge|face)"
_RE_POLY = re.compile(
    rf"(?P<mix>a mixture of )?(?P<dist>distorted )?"
    rf"(?P<conn>{_CONN}(?:(?:, and |, | and ){_CONN})*-sharing )?"
    rf"(?P<formula>[A-Z][A-Za-z0-9()]*) (?P<poly>[a-z][a-z -]*?)"
    rf"(?: that share (?P<shares>.+))?")
_RE_SHARE = re.compile(
    rf"(?P<kind>corner|edge|face)s? with (?P<n>{_COUNT}) (?P<eq>equivalent )?"
    rf"(?P<label>{_LABEL})(?P<formula>[A-Za-z0-9()]*) (?P<poly>[a-z][a-z -]*?)"
    rf"(?=[,;] and |[,;] | and |$)")
_PAIR = rf"(?P<a>{_LABEL}){_DASH}(?P<b>{_LABEL})"
_BOND_RULES = (
    ("all", re.compile(rf"All {_PAIR} bond lengths are (?P<x>{_NUM}) Å\.")),
    ("both", re.compile(rf"Both {_PAIR} bond lengths are (?P<x>{_NUM}) Å\.")),
    ("single", re.compile(rf"The {_PAIR} bond length is (?P<x>{_NUM}) Å\.")),
    ("shorter_longer", re.compile(
        rf"There (?:is|are) (?P<n>{_COUNT}) shorter \((?P<x>{_NUM}) Å\) and (?P<m>{_COUNT}) "
        rf"longer \((?P<y>{_NUM}) Å\) {_PAIR} bond lengths?\.")),
    ("spread", re.compile(
        rf"There (?:is|are) a spread of {_PAIR} bond (?:distances|lengths) ranging from "
        rf"(?P<x>{_NUM}){_DASH}(?P<y>{_NUM}) Å\.")),
)
_RE_TILT_NONE = re.compile(r"The (?P<conn>[a-z, -]+-sharing )?(?P<poly>[a-z]+) are not tilted\.")
_RE_TILT_ONE = re.compile(
    rf"The (?P<conn>[a-z, -]+-sharing )?(?P<poly>[a-z]+) (?:are tilted|tilt angle is) "
    rf"(?P<x>{_NUM})°\.")
_RE_TILT_ARE = re.compile(
    rf"The (?P<conn>[a-z, -]+-sharing )?(?P<poly>[a-z]+) tilt angles? (?:are|is) "
    rf"(?P<x>{_NUM})°\.")
_RE_TILT_RANGE = re.compile(
    rf"The (?P<conn>[a-z, -]+-sharing )?(?P<poly>[a-z]+) tilt angles range from "
    rf"(?P<x>{_NUM}){_DASH}(?P<y>{_NUM})°\.")
_POLY_NOUNS = {"octahedral": "octahedra", "tetrahedral": "tetrahedra"}


class _Unread(Exception):
    """A sentence no rule reads completely."""


def _neighbours(text: str) -> list[Neighbour]:
    if not text.strip():
        return []
    out = []
    for part in _NB_SEP.split(text):
        m = _RE_NEIGHBOUR.fullmatch(part)
        if not m:
            raise _Unread(part)
        out.append(Neighbour(m["label"], count_word(m["n"]), bool(m["eq"])))
    return out


def _shares(text: str) -> list[SharedPolyhedron]:
    out, pos = [], 0
    for m in _RE_SHARE.finditer(text):
        gap = text[pos:m.start()]
        if gap not in ("", ", ", "; ", ", and ", "; and ", " and "):
            raise _Unread(gap)
        out.append(SharedPolyhedron(m["kind"], count_word(m["n"]), m["label"], _partner_formula(
            m["label"], m["formula"]), m["poly"], bool(m["eq"])))
        pos = m.end()
    if pos != len(text) or not out:
        raise _Unread(text[pos:])
    return out


def _partner_formula(label: str, rest: str) -> str:
    return element_of(label) + rest


def _parse_site(m: re.Match, site: SiteFacts) -> None:
    site.neighbours = _neighbours(m["nbrs"])
    geom = m["geom"]
    if geom is not None:
        g = geom
        if g.startswith("distorted "):
            site.distorted = True
            g = g[len("distorted "):]
        c = _RE_N_COORD.fullmatch(g)
        b = _RE_BENT.fullmatch(g)
        if c:
            site.stated_coordination = count_word(c["n"])
        elif b:
            site.geometry = "bent"
            site.bent_angle = float(b["a"])
        else:
            if not re.fullmatch(r"[a-zA-Z][a-zA-Z -]*", g):
                raise _Unread(geom)
            site.geometry = g
    form = m["form"]
    if form is not None:
        p = _RE_POLY.fullmatch(form)
        if not p:
            raise _Unread(form)
        site.mixture = bool(p["mix"])
        site.distorted = site.distorted or bool(p["dist"])
        site.polyhedron = p["poly"]
        site.polyhedron_formula = p["formula"]
        kinds = set(re.findall(_CONN, p["conn"] or ""))
        if p["shares"]:
            site.shares = _shares(p["shares"])
            kinds |= {s.kind for s in site.shares}
        site.connectivity = tuple(k for k in ("corner", "edge", "face") if k in kinds)
    if site.neighbours:
        site.coordination = sum(n.count for n in site.neighbours)
        site.coordination_source = "neighbours"
    elif site.stated_coordination is not None:
        site.coordination = site.stated_coordination
        site.coordination_source = "stated"
    elif site.geometry_coordination is not None:
        site.coordination = site.geometry_coordination
        site.coordination_source = "geometry"


def _components(text: str) -> list[Component]:
    out: list[Component] = []
    host = _RE_HOST.search(text)
    if host:
        text = text[:host.start()]
    pos = 0
    for m in _RE_UNIT.finditer(text):
        gap = text[pos:m.start()]
        if gap not in ("", ", ", " and ", ", and "):
            raise _Unread(gap)
        orient = tuple(
            tuple(int(x) for x in _RE_HKL_NUMBERS.findall(hkl))
            for hkl in re.findall(_HKL, m["orient"] or ""))
        n = 1 if m["n"] in ("a", "an") else count_word(m["n"])
        out.append(Component(n, m["formula"], m["kind"], orient))
        pos = m.end()
    if pos != len(text) or not out:
        raise _Unread(text[pos:])
    if host:
        out.append(Component(1, host["formula"], host["kind"], (), host=True))
    return out


def _mineral(name: str) -> tuple[str, str]:
    for suffix, relation in (("-like", "like"), ("-derived", "derived")):
        if name.endswith(suffix):
            return name[: -len(suffix)], relation
    return name, "exact"


def parse_description(text: str) -> DescriptionFacts:
    """The facts of one Robocrystallographer description (see the module docstring)."""
    sentences = split_description(text)
    facts = DescriptionFacts(text=text, sentences=sentences, kinds=[])
    current: SiteFacts | None = None
    component: str | None = None
    for i, sentence in enumerate(sentences):
        try:
            kind, current, component = _read_sentence(facts, i, sentence, current, component)
        except (_Unread, ValueError):
            kind = "unknown"
        if kind == "unknown":
            facts.unparsed.append(sentence)
        facts.kinds.append(kind)
    _imply_bonds(facts)
    return facts


def _imply_bonds(facts: DescriptionFacts) -> None:
    """Fill :attr:`SiteFacts.implied_bonds` (each stated bond seen from its other end).

    A label that names several described sites (robocrys repeats a symmetry label such as
    "C(1)" for two inequivalent sites, kept as ``"C(1)"`` and ``"C(1)#2"``) cannot say which of
    them a bond reaches, so each of them gets it. Identical (partner, lengths) pairs are kept once.
    """
    by_label: dict[str, list[SiteFacts]] = {}
    for key, site in facts.sites.items():
        by_label.setdefault(canonical_label(key), []).append(site)
    for site in facts.sites.values():
        for b in site.bonds:
            for other in by_label.get(canonical_label(b.neighbour), []):
                if other is site:
                    continue
                if canonical_label(site.label) in {canonical_label(x.neighbour)
                                                   for x in other.bonds}:
                    continue
                if any(x.neighbour == site.label and x.values == b.values
                       for x in other.implied_bonds):
                    continue
                other.implied_bonds.append(
                    BondLengths(site.label, "implied_" + b.form, b.values, None))


def _site(facts: DescriptionFacts, label: str) -> SiteFacts:
    if label not in facts.sites:
        facts.sites[label] = SiteFacts(label, element_of(label))
    return facts.sites[label]


def _read_sentence(facts: DescriptionFacts, i: int, s: str, current: SiteFacts | None,
                   component: str | None) -> tuple[str, SiteFacts | None, str | None]:
    """(kind, current site, current component) after reading sentence ``i``; raises _Unread."""
    m = _RE_FORMULA_SG.fullmatch(s)
    if m:
        if facts.formula is not None:
            raise _Unread("second formula sentence")
        facts.formula = m["formula"]
        if m["mineral"]:
            facts.mineral, facts.mineral_relation = _mineral(m["mineral"])
        facts.crystal_system, facts.space_group = m["system"], m["sg"]
        return "formula_space_group", None, None
    m = _RE_STRUCTURE.fullmatch(s)
    if m:
        if m["dim"]:
            facts.dimensionality = _DIMS[m["dim"]]
            facts.dimensionality_stated = True
        comp = m["comp1"] or m["comp2"]
        if comp:
            facts.components.extend(_components(comp))
        return "structure", None, None
    for kind, rule in _BOND_RULES:
        m = rule.fullmatch(s)
        if m:
            owner = current if current is not None and current.label == m["a"] else \
                _site(facts, m["a"])
            if kind == "shorter_longer":
                values = (float(m["x"]), float(m["y"]))
                counts: tuple[int, ...] | None = (count_word(m["n"]), count_word(m["m"]))
            elif kind == "spread":
                values, counts = (float(m["x"]), float(m["y"])), None
            else:
                values = (float(m["x"]),)
                counts = {"all": None, "both": (2,), "single": (1,)}[kind]
            owner.bonds.append(BondLengths(m["b"], kind, values, counts))
            owner.sentences.append(i)
            facts.bond_forms.append(kind)
            return "bond_lengths", owner, component
    tilt = None
    m = _RE_TILT_NONE.fullmatch(s)
    if m:
        tilt = (0.0, 0.0, m["poly"])
    else:
        m = _RE_TILT_ONE.fullmatch(s) or _RE_TILT_ARE.fullmatch(s)
        if m:
            tilt = (float(m["x"]), float(m["x"]), m["poly"])
        else:
            m = _RE_TILT_RANGE.fullmatch(s)
            if m:
                tilt = (float(m["x"]), float(m["y"]), m["poly"])
    if tilt is not None:
        poly = _POLY_NOUNS.get(tilt[2], tilt[2])
        if current is not None:
            current.tilt_min, current.tilt_max, current.tilt_polyhedron = tilt[0], tilt[1], poly
            current.sentences.append(i)
        facts.tilts.append((current.label if current else None, tilt[0], tilt[1]))
        return "tilt", current, component
    # prefixes: "In the CdN3 framework, ", "In the first O site, " (either, both, in this order)
    ordinal = None
    el = None
    rest = s
    m = _RE_PREFIX_COMPONENT.match(rest)
    if m:
        component = f"{m['formula']} {m['kind']}"
        rest = rest[m.end():]
    m = _RE_PREFIX_SITE.match(rest)
    if m:
        ordinal, el = ordinal_word(m["ord"]), m["el"]
        rest = rest[m.end():]
    if rest is not s:
        rest = rest[0].upper() + rest[1:]
    m = _RE_INEQ.fullmatch(rest)
    if m and ordinal is None:
        n = count_word(m["n"])
        facts.inequivalent_sites[m["el"]] = facts.inequivalent_sites.get(m["el"], 0) + n
        facts.inequivalent_statements.append((component, m["el"], n))
        return "inequivalent_sites", None, component
    m = _RE_SITE.fullmatch(rest)
    if m:
        site = SiteFacts(m["label"], element_of(m["label"]), ordinal=ordinal, component=component)
        if el is not None and el != site.element:
            raise _Unread("site element differs from the 'In the n-th X site' element")
        _parse_site(m, site)
        site.sentences.append(i)
        label = site.label
        if label in facts.sites:
            # robocrys may describe one merged label twice (e.g. "C(2)" as the 2nd and 3rd site);
            # keep every description under a distinct key
            k = 2
            while f"{label}#{k}" in facts.sites:
                k += 1
            label = f"{label}#{k}"
        facts.sites[label] = site
        return "site", site, component
    raise _Unread(s)


# --------------------------------------------------------------------------------------------
# per element
# --------------------------------------------------------------------------------------------
def site_features(facts: DescriptionFacts, element: str, implied_bonds: bool = True) -> dict:
    """The facts of all sites of ``element``: one entry per site and an aggregate.

    This is what an atom of ``element`` is conditioned on: the description cannot say which
    inequivalent site a given atom sits on (it names sites, not atoms), so every atom of an
    element gets the facts of all of that element's sites.

    Several inequivalent sites of one element ("There are two inequivalent O sites") are
    combined with every site counting once: the text does not say how many atoms each site has,
    so nothing is weighted by multiplicity.

    * ``coordination``: mean, min and max of the sites' coordination numbers
      (:attr:`SiteFacts.coordination`);
    * ``bond_lengths``: neighbour element → [min, max] over all sites' bond lengths (with the
      lengths stated under the neighbour's site when ``implied_bonds``; see
      :attr:`SiteFacts.implied_bonds`; without them the O sites of a perovskite have none);
    * ``neighbour_counts``: neighbour element → [min, max] number of bonded atoms per site;
    * ``shapes``: sorted union of the sites' :attr:`SiteFacts.shape` words ("octahedral",
      "linear", …); ``geometry`` is the same plus ``"distorted"`` when any site is distorted;
    * ``polyhedra``, ``connectivity``: sorted unions ("octahedra"; "corner", "edge", "face");
    * ``tilt``: [min, max] over the sites with a tilt sentence;
    * ``bent_angles``: the angles of "bent n degrees" geometries, sorted;
    * ``sites``: :meth:`SiteFacts.as_dict` of each site in the order written.

    Absent facts are ``None`` (or empty). ``n_sites`` is 0 when the text has no site of
    ``element`` (an element the description does not mention).
    """
    sites = facts.sites_of(element)
    cns = [s.coordination for s in sites if s.coordination is not None]
    bonds: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for s in sites:
        for el, (lo, hi) in s.bond_ranges(implied_bonds).items():
            cur = bonds.setdefault(el, [lo, hi])
            cur[0], cur[1] = min(cur[0], lo), max(cur[1], hi)
        for el, n in s.neighbour_counts().items():
            cur = counts.setdefault(el, [n, n])
            cur[0], cur[1] = min(cur[0], n), max(cur[1], n)
    tilts = [(s.tilt_min, s.tilt_max) for s in sites if s.tilt_min is not None]
    shapes = {s.shape for s in sites if s.shape}
    return {
        "element": element,
        "n_sites": len(sites),
        "sites": [s.as_dict() for s in sites],
        "coordination": None if not cns else {
            "mean": sum(cns) / len(cns), "min": min(cns), "max": max(cns)},
        "bond_lengths": bonds,
        "neighbour_counts": counts,
        "shapes": sorted(shapes),
        "geometry": sorted(shapes | ({"distorted"} if any(s.distorted for s in sites)
                                     else set())),
        "polyhedra": sorted({s.polyhedron for s in sites if s.polyhedron}),
        "connectivity": sorted({c for s in sites for c in s.connectivity}),
        "tilt": None if not tilts else [min(t[0] for t in tilts), max(t[1] for t in tilts)],
        "bent_angles": sorted(s.bent_angle for s in sites if s.bent_angle is not None),
    }


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
_ORDINAL_WORDS = sorted(_ORDINALS, key=len, reverse=True)
_COUNT_WORDS = sorted((w for w in _WORDS if w != "zero"), key=len, reverse=True)
_RE_SHAPE_ORD = re.compile(r"\b(?:" + "|".join(map(re.escape, _ORDINAL_WORDS)) + r")\b")
_RE_SHAPE_CNT = re.compile(r"\b(?:" + "|".join(map(re.escape, _COUNT_WORDS)) + r")\b")


def sentence_shape(sentence: str) -> str:
    """``sentence`` with labels → ``<site>``, numbers → ``<x>``, count words → ``<n>``,
    ordinals → ``<nth>`` and formulas (two or more capitalised element tokens) → ``<formula>``."""
    s = re.sub(_LABEL, "<site>", sentence)
    s = re.sub(r"np\.int64\((-?\d+)\)", r"\1", s)
    s = re.sub(r"-?\d+(?:\.\d+)?", "<x>", s)
    s = re.sub(r"\b(?:[A-Z][a-z]?(?:<x>|\d)*){2,}\b|\b[A-Z][a-z]?\d+\b", "<formula>", s)
    s = _RE_SHAPE_ORD.sub("<nth>", s)
    s = _RE_SHAPE_CNT.sub("<n>", s)
    return s


def parsing_report(texts: Iterable[str] | Mapping[str, str], top: int = 20) -> dict:
    """How well :func:`parse_description` reads ``texts`` (an iterable or id → text mapping).

    Returns counts of descriptions, sentences per kind and per bond-length form, the number
    and share of sentences not understood, the ``top`` most frequent shapes of those sentences
    (with one example each), the share of sites with a coordination number / bond lengths /
    geometry or polyhedron words / neighbours / tilt, and consistency checks (the stated
    "n inequivalent X sites" against the sites read, "n-coordinate" against the neighbour sum,
    bond partners against the site's neighbours, the coordination the geometry name implies
    against the neighbour sum), and the ``top`` most frequent words of each vocabulary (site
    shapes, polyhedra, connectivity, mineral prototypes, crystal systems, dimensionality,
    components).
    """
    if isinstance(texts, Mapping):
        texts = texts.values()
    kinds: Counter = Counter()
    forms: Counter = Counter()
    shapes: Counter = Counter()
    examples: dict[str, str] = {}
    n_desc = n_fully = 0
    sites = Counter()
    checks = Counter()
    vocab: dict[str, Counter] = {k: Counter() for k in (
        "shape", "polyhedron", "connectivity", "mineral", "crystal_system", "dimensionality",
        "component")}
    for text in texts:
        f = parse_description(text)
        n_desc += 1
        n_fully += not f.unparsed
        kinds.update(f.kinds)
        forms.update(f.bond_forms)
        vocab["mineral"][f"{f.mineral} ({f.mineral_relation})" if f.mineral else "none"] += 1
        vocab["crystal_system"][str(f.crystal_system)] += 1
        vocab["dimensionality"][f"{f.dimensionality}" + ("" if f.dimensionality_stated
                                                         else " (not stated)")] += 1
        vocab["component"].update(c.kind + (" (host)" if c.host else "") for c in f.components)
        for s in f.unparsed:
            sh = sentence_shape(s)
            shapes[sh] += 1
            examples.setdefault(sh, s)
        for comp, el, n in f.inequivalent_statements:
            checks["inequivalent_statements"] += 1
            checks["inequivalent_match"] += n == sum(
                1 for s in f.sites_of(el) if comp is None or s.component == comp)
        for s in f.sites.values():
            sites["total"] += 1
            vocab["shape"][("distorted " if s.distorted else "") + str(s.shape)] += 1
            vocab["polyhedron"][str(s.polyhedron)] += 1
            vocab["connectivity"][("mixture of " if s.mixture else "")
                                  + ("+".join(s.connectivity) or "none")] += 1
            sites["coordination"] += s.coordination is not None
            sites["bond_lengths"] += bool(s.bonds)
            sites["geometry_or_polyhedron"] += bool(s.geometry or s.polyhedron)
            sites["shape"] += s.shape is not None
            sites["polyhedron"] += s.polyhedron is not None
            sites["neighbours"] += bool(s.neighbours)
            sites["tilt"] += s.tilt_min is not None
            sites["connectivity"] += bool(s.connectivity)
            if s.coordination_source is not None:
                sites["coordination_from_" + s.coordination_source] += 1
            if s.geometry_coordination is not None and s.neighbours:
                checks["geometry_coordination"] += 1
                checks["geometry_coordination_matches_neighbours"] += (
                    s.geometry_coordination == s.coordination)
            if s.stated_coordination is not None and s.neighbours:
                checks["stated_coordination"] += 1
                checks["stated_coordination_matches_neighbours"] += (
                    s.stated_coordination == s.coordination)
            sites["bond_lengths_with_implied"] += bool(s.bonds or s.implied_bonds)
            nb = {canonical_label(n.label) for n in s.neighbours}
            for b in s.bonds:
                checks["bond_sentences"] += 1
                checks["bond_partner_is_a_neighbour"] += canonical_label(b.neighbour) in nb
    n_sent = sum(kinds.values())
    n_unknown = kinds.get("unknown", 0)
    total = sites.pop("total", 0)
    return {
        "descriptions": n_desc,
        "descriptions_fully_understood": n_fully,
        "sentences": n_sent,
        "sentences_per_kind": {k: kinds.get(k, 0) for k in SENTENCE_KINDS},
        "bond_length_forms": dict(forms.most_common()),
        "not_understood": n_unknown,
        "share_understood": (1.0 - n_unknown / n_sent) if n_sent else 1.0,
        "top_not_understood_shapes": [
            {"shape": sh, "count": n, "example": examples[sh]}
            for sh, n in shapes.most_common(top)],
        "distinct_not_understood_shapes": len(shapes),
        "sites": total,
        "share_of_sites_with": {k: (sites[k] / total if total else 0.0)
                                for k in ("coordination", "coordination_from_neighbours",
                                          "coordination_from_stated",
                                          "coordination_from_geometry", "shape", "bond_lengths",
                                          "bond_lengths_with_implied", "neighbours",
                                          "geometry_or_polyhedron", "polyhedron",
                                          "connectivity", "tilt")},
        "checks": dict(checks),
        "vocabulary": {k: dict(c.most_common(top)) for k, c in vocab.items()},
    }
