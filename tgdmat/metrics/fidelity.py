"""Prompt fidelity: does a generated crystal have what its text prompt asked for?

This metric is ours (the TGDMat paper does not measure it). For each generated crystal and the
facts stated in its prompt — an object with attributes (or a dict with keys) ``formula``
(reduced formula or ``None``), ``elements`` (sequence of symbols or ``None``),
``crystal_system`` (e.g. ``"cubic"`` or ``None``) and ``space_group`` (international number
1-230 or ``None``), as returned by ``tgdmat.text.parse_prompt`` — four hit rates are reported,
each over the prompts that state that fact:

* ``formula``: ``Composition(prompt).reduced_formula == structure.composition.reduced_formula``
  (so Na2Cl2 matches NaCl: the prompt fixes the formula, not the number of formula units);
* ``elements``: the *set* of elements is equal (no element missing, none extra);
* ``crystal_system`` / ``space_group``: a hit when spglib (pymatgen's ``SpacegroupAnalyzer``,
  ``angle_tolerance`` 5°) finds the stated value at *some* distance tolerance of a ladder,
  by default symprec ∈ :data:`SYMPREC_LADDER` = (0.01, 0.02, 0.05, 0.1) Å. The first rung is
  the tolerance the short prompts were written with (``tgdmat.text.prompts.SYMPREC``), so a
  real crystal always matches its own prompt; the looser rungs let a generated crystal whose
  coordinates carry noise of order 0.01-0.1 Å still show the symmetry it was asked for. (A
  single tolerance does not work: at 0.1 Å the real Perov-5 test crystals match their own
  prompts' space group only 51 % of the time — distorted perovskites read as cubic — and
  Carbon-24's 51 %.) The output records the ladder and, per fact, how many hits were first
  found at each rung. A ladder is lenient towards low symmetry: a noisy crystal is often P1 at
  0.01 Å, so a prompt that states P1 is met by almost anything; the per-rung counts show it.

A missing structure (``None``), or one marked invalid when ``valid`` is given, counts as a miss
for every fact its prompt states; so does a structure whose symmetry cannot be determined.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np

FACTS = ("formula", "elements", "crystal_system", "space_group")
SYMMETRY_FACTS = ("crystal_system", "space_group")
#: distance tolerances (Å) at which a stated space group / crystal system is looked for; the
#: first is the one the short prompts state symmetry at (``tgdmat.text.prompts.SYMPREC``)
SYMPREC_LADDER = (0.01, 0.02, 0.05, 0.1)
CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")


def _get(facts, name):
    if facts is None:
        return None
    if isinstance(facts, Mapping):
        return facts.get(name)
    return getattr(facts, name, None)


def normalise_facts(facts, index: int | None = None) -> dict:
    """Prompt facts as ``{"formula": str|None, "elements": frozenset|None, "crystal_system":
    str|None, "space_group": int|None}`` with the formula reduced and names canonical.

    Raises ``ValueError`` (naming ``index``) for an unparsable formula or element, an unknown
    crystal system or a space group outside 1-230.
    """
    from pymatgen.core import Composition, Element

    where = f"prompt facts #{index}" if index is not None else "prompt facts"
    out = dict.fromkeys(FACTS)
    formula = _get(facts, "formula")
    if formula is not None:
        try:
            out["formula"] = Composition(str(formula)).reduced_formula
        except Exception as err:  # noqa: BLE001 - pymatgen raises several kinds
            raise ValueError(f"{where}: cannot parse formula {formula!r} ({err})") from err
    elements = _get(facts, "elements")
    if elements is not None:
        if isinstance(elements, str):
            elements = [elements]
        try:
            out["elements"] = frozenset(Element(str(e).strip()).symbol for e in elements)
        except ValueError as err:
            raise ValueError(f"{where}: unknown element in {tuple(elements)!r}") from err
        if not out["elements"]:
            out["elements"] = None
    system = _get(facts, "crystal_system")
    if system is not None:
        system = str(system).strip().lower()
        if system == "rhombohedral":
            system = "trigonal"
        if system not in CRYSTAL_SYSTEMS:
            raise ValueError(f"{where}: unknown crystal system {system!r}; expected one of {CRYSTAL_SYSTEMS}")
        out["crystal_system"] = system
    sg = _get(facts, "space_group")
    if sg is not None:
        try:
            sg_int = int(sg)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: space group must be an integer 1-230, got {sg!r}") from err
        if not 1 <= sg_int <= 230 or (isinstance(sg, float) and sg != sg_int):
            raise ValueError(f"{where}: space group must be an integer 1-230, got {sg!r}")
        out["space_group"] = sg_int
    return out


def symprec_ladder(symprec: float | Sequence[float] = 0.1) -> tuple[float, ...]:
    """The tolerances (Å, increasing) tried for symmetry facts.

    A number is the *loosest* tolerance: the rungs of :data:`SYMPREC_LADDER` below it, then it
    (0.1 -> (0.01, 0.02, 0.05, 0.1); 0.01 -> (0.01,), the prompts' own reading only). A
    sequence is the ladder itself.
    """
    if isinstance(symprec, numbers.Real):
        rungs = [r for r in SYMPREC_LADDER if r < symprec] + [float(symprec)]
    else:
        rungs = [float(r) for r in symprec]
    if not rungs or not all(r > 0 for r in rungs):
        raise ValueError(f"symprec must be positive (a tolerance or a ladder of them), got {symprec!r}")
    return tuple(sorted(set(rungs)))


def observed_facts(structure, symprec: float = 0.1, angle_tolerance: float = 5.0, symmetry: bool = True) -> dict:
    """The four facts as measured on ``structure``, symmetry read at one tolerance.

    Unlike :func:`tgdmat.text.prompts.structure_facts` (which writes prompts and raises), this
    is lenient: symmetry entries are ``None`` when spglib fails or ``symmetry=False`` (skips
    the analysis).
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    comp = structure.composition
    out = {
        "formula": comp.reduced_formula,
        "elements": frozenset(el.symbol for el in comp.elements),
        "crystal_system": None,
        "space_group": None,
    }
    if not symmetry:
        return out
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle_tolerance)
        out["space_group"] = int(sga.get_space_group_number())
        out["crystal_system"] = str(sga.get_crystal_system()).lower()
    except Exception:  # noqa: BLE001 - spglib gives up on some noisy cells: count as a miss
        pass
    return out


def _symmetry_hits(structure, want: dict, ladder: Sequence[float], angle_tolerance: float) -> dict:
    """For each symmetry fact ``want`` states: the first rung of ``ladder`` at which
    ``structure`` shows it, or ``None`` (a miss). Stops once every stated fact is found."""
    found = {f: None for f in SYMMETRY_FACTS if want[f] is not None}
    for rung in ladder:
        if all(v is not None for v in found.values()):
            break
        have = observed_facts(structure, rung, angle_tolerance)
        for f, hit in found.items():
            if hit is None and have[f] == want[f]:
                found[f] = rung
    return found


def prompt_fidelity(
    structures: Sequence,
    facts: Sequence,
    symprec: float | Sequence[float] = 0.1,
    angle_tolerance: float = 5.0,
    valid: Sequence[bool] | None = None,
    return_per_sample: bool = False,
) -> dict:
    """Hit rates (percent) of formula, elements, crystal system and space group.

    ``structures``: N pymatgen structures (or ``None``); ``facts``: N prompt-fact objects or
    dicts (or ``None`` for a prompt that states nothing); ``symprec``: the loosest tolerance of
    the ladder or the ladder itself (:func:`symprec_ladder`); ``valid``: optional N booleans —
    invalid crystals then count as misses.

    Returns, for each fact, ``<fact>_match_pct`` (``None`` when no prompt states it) and
    ``<fact>_n_stated``; for the symmetry facts ``<fact>_hits_by_symprec`` ({rung: hits first
    found there}); ``symprec_ladder`` and ``angle_tolerance``. With ``return_per_sample`` also
    ``per_sample`` (N dicts fact -> True/False/None = not stated) and ``per_sample_hit_symprec``
    (N dicts symmetry fact -> rung of the hit, or None).
    """
    if len(structures) != len(facts):
        raise ValueError(f"prompt_fidelity: {len(structures)} structures but {len(facts)} prompt facts")
    if valid is not None and len(valid) != len(structures):
        raise ValueError(f"prompt_fidelity: {len(valid)} validity flags for {len(structures)} structures")
    ladder = symprec_ladder(symprec)
    stated = {f: 0 for f in FACTS}
    hits = {f: 0 for f in FACTS}
    by_rung = {f: dict.fromkeys(map(str, ladder), 0) for f in SYMMETRY_FACTS}
    per_sample, per_sample_rung = [], []
    for i, (s, raw) in enumerate(zip(structures, facts)):
        want = normalise_facts(raw, index=i)
        row = dict.fromkeys(FACTS)
        rung_row = dict.fromkeys(SYMMETRY_FACTS)
        usable = s is not None and (valid is None or bool(valid[i]))
        have = observed_facts(s, symmetry=False) if usable else None
        if usable:
            rung_row.update(_symmetry_hits(s, want, ladder, angle_tolerance))
        for f in FACTS:
            if want[f] is None:
                continue
            stated[f] += 1
            if f in SYMMETRY_FACTS:
                ok = rung_row[f] is not None
                if ok:
                    by_rung[f][str(rung_row[f])] += 1
            else:
                ok = have is not None and have[f] == want[f]
            hits[f] += int(ok)
            row[f] = bool(ok)
        per_sample.append(row)
        per_sample_rung.append(rung_row)
    out: dict = {"symprec_ladder": list(ladder), "angle_tolerance": angle_tolerance, "n": len(structures),
                 "invalid_counts_as_miss": valid is not None}
    for f in FACTS:
        out[f"{f}_n_stated"] = stated[f]
        out[f"{f}_match_pct"] = float(100.0 * hits[f] / stated[f]) if stated[f] else None
    for f in SYMMETRY_FACTS:
        out[f"{f}_hits_by_symprec"] = by_rung[f]
    if return_per_sample:
        out["per_sample"] = per_sample
        out["per_sample_hit_symprec"] = per_sample_rung
    return out


def fidelity_arrays(per_sample: Sequence[dict]) -> dict[str, np.ndarray]:
    """Per-sample results as float arrays (1 hit, 0 miss, NaN not stated), shape [N] each."""
    return {f: np.array([np.nan if r[f] is None else float(r[f]) for r in per_sample]) for f in FACTS}
