"""The fact reader for free-written prompts (tgdmat.text.reader)."""
from __future__ import annotations

import math
import warnings

import pytest

from tgdmat.text import PromptError, PromptFacts, parse_prompt
from tgdmat.text.reader import (
    FactSpan,
    Reading,
    check_composition,
    load_curated,
    read_prompt,
    score_curated,
    space_group_number,
)


def facts(text: str, dataset: str | None = None) -> PromptFacts:
    return read_prompt(text, dataset).facts


# ----------------------------------------------------------------------------- issue 16
def test_the_prompts_of_issue_16_are_read():
    r = read_prompt("Its formation energy is about 1.6148 eV per atom.", "perov_5")
    assert r.facts.properties == {"heat_ref": 1.6148} and r.complete
    assert parse_prompt("Its formation energy is about 1.6148 eV per atom.").is_empty
    f = facts("A cubic perovskite SrTiO3 with formation energy 0.5 eV/atom in space group Pm-3m.")
    assert (f.formula, f.crystal_system, f.space_group) == ("SrTiO3", "cubic", 221)
    assert f.properties == {"formation_energy_per_atom": 0.5}


def test_spans_point_into_the_prompt_and_unread_text_is_reported():
    text = ("Below is a description of a bulk material. Cubic SrTiO\u2083 (Pm-3m, No. 221), "
            "a 5-atom cell, formation energy \u22120.5 eV/atom; lattice constant 3.9 \u00c5. "
            "It should be cheap. Generate the material:")
    r = read_prompt(text, "perov_5")
    for span in (*r.understood, *r.not_understood):
        assert text[span.start:span.end] == span.text
    kinds = {s.kind: s.value for s in r.understood}
    assert kinds == {"crystal_system": "cubic", "formula": "SrTiO3", "space_group": 221,
                     "heat_ref": -0.5}
    unread = {s.text: s.reason for s in r.not_understood}
    assert "atom count" in unread["5-atom"]
    assert "3.9 \u00c5" in unread  # a number of no fact (the lattice constant is not a condition)
    assert unread["It should be cheap."] == "no fact read in this sentence"
    assert not any("Below is" in t or "Generate" in t for t in unread)  # filler is not reported
    assert not r.complete and "not understood" in r.report()


def test_properties_outside_the_data_set_are_read_and_reported_unused():
    r = read_prompt("KTaO3 with 1350 meV/atom and a band gap of 3 eV.", "perov_5")
    assert r.facts.properties == {"heat_ref": 1.35, "band_gap": 3.0}
    assert [s.kind for s in r.unused] == ["band_gap"]
    report = r.report()
    assert "heat_ref = 1.35 eV/atom (written in meV/atom)" in report
    assert "not used by the perov_5 model" in report
    assert read_prompt("band gap of 3 eV").unused == ()  # no data set: nothing to judge


# ----------------------------------------------------------------------------- formulas
@pytest.mark.parametrize("text, formula", [
    ("SrTiO3 please", "SrTiO3"),
    ("a Sr2Ti2O6 cell", "SrTiO3"),
    ("SrTiO\u2083 in its cubic phase", "SrTiO3"),
    ("(SrTiO3) cubic", "SrTiO3"),
    ("made from Sr(TiO3)2", "SrTi2O6"),
    ("try TiOsNOF", "TiOsNOF"),
    ("a C24 cell", "C"),
    ("formula: C", "C"),
    ("The composition is In.", "In"),
    ("a sodium chloride analogue, NaCl", "NaCl"),
    ("the KNOF phase", "KNOF"),
    ("a carbon allotrope", "C"),
    ("pure carbon, please", "C"),
    ("an allotrope of carbon", "C"),
    ("triclinic carbon, 8 atoms", "C"),
])
def test_formulas_anywhere(text, formula):
    assert facts(text).formula == formula


@pytest.mark.parametrize("text", [
    "In a cubic cell.", "As cubic as possible.", "I want it cubic.", "He said: cubic.",
    "No, make it cubic.", "Be careful: cubic.", "The structure is cubic.", "It is cubic.",
    "SHOW ME A NEW MATERIAL.", "NO CARBON HERE.", "Give me a CIF of an FCC metal.",
    "HOW ABOUT A CUBIC ONE?", "Use the HSE06 functional with PBE and DFT+U.",
    "An ABX3 perovskite.", "Pm-3m symmetry.", "P6_3/mmc symmetry.", "C2/m symmetry.",
    "Sr(1) is bonded to twelve equivalent O(1) atoms.", "Ti-O bonds are short.",
    "It has TiO6 octahedra.", "It has corner-sharing TiO6 and NbO6 octahedra.",
    "A perovskite of the CaTiO3 type.", "GdFeO3-type tilts.", "Isostructural with BaTiO3.",
    "The B-site Be is unusual.", "A carbon-doped perovskite.", "Oxygen vacancies matter.",
    "at 300 K and 10 GPa",
])
def test_english_words_and_references_are_not_formulas(text):
    assert facts(text).formula is None


def test_reference_compounds_and_ambiguous_tokens_are_reported():
    unread = {s.text: s.reason for s in read_prompt(
        "A GdFeO3-type distorted SrZrO3 with TiO6 octahedra; P4.").not_understood}
    assert "reference compound" in unread["GdFeO3"]
    assert "part of the structure" in unread["TiO6"]
    assert "formula or space group" in unread["P4"]
    assert facts("A GdFeO3-type distorted SrZrO3.").formula == "SrZrO3"


def test_a_named_element_yields_to_a_stated_formula():
    r = read_prompt("SrTiO3 is the host. The fluorine in the apical site is ordered.")
    assert r.facts.formula == "SrTiO3"
    assert any("formula is stated elsewhere" in u.reason for u in r.not_understood)


# ----------------------------------------------------------------------------- space groups
@pytest.mark.parametrize("text, number", [
    ("space group 221", 221), ("SG #221", 221), ("spacegroup no. 62", 62),
    ("space group number: 24", 24), ("sg=12", 12), ("Pm-3m", 221), ("Pm3m", 221),
    ("P6_3/mmc", 194), ("P63/mmc", 194), ("P6\u2083/mmc", 194), ("space group P 21/c", 14),
    ("P2_1/c", 14), ("Fd-3m", 227), ("Fd3\u0304m", 227), ("I4_1/amd", 141), ("R-3m", 166),
    ("Pnma", 62), ("Pmm2 (No. 25)", 25), ("in the C2/m space group", 12),
    ("a triclinic P1 cell", 1), ("space group P1", 1), ("P1 symmetry", 1),
    ("It crystallizes in the Pm space group.", 6), ("monoclinic Pm carbon", 6),
    ("I2_12_12_1", 24), ("Cmcm", 63),
])
def test_space_groups(text, number):
    assert facts(text).space_group == number


def test_symbol_table():
    assert space_group_number("P 1 21/c 1") == 14
    assert space_group_number("Fm-3m") == space_group_number("Fm3m") == 225
    assert space_group_number("Xyz") is None


# ----------------------------------------------------------------------------- crystal systems
@pytest.mark.parametrize("text, system", [
    ("a cubic perovskite", "cubic"), ("rhombohedral carbon", "trigonal"),
    ("Hexagonal carbon", "hexagonal"), ("orthorhombic", "orthorhombic"),
    ("an fcc lattice", "cubic"), ("isometric", "cubic"),
    ("crystal system: monoclinic", "monoclinic"),
    ("pseudo-cubic", None), ("a non-cubic phase", None), ("graphite-like hexagonal layers", None),
    ("trigonal planar carbon", None), ("rhombohedral carbon in the hexagonal setting", "trigonal"),
])
def test_crystal_systems(text, system):
    assert facts(text).crystal_system == system


# ----------------------------------------------------------------------------- numbers and units
@pytest.mark.parametrize("text, key, value, unit", [
    ("formation energy -0.5", "formation_energy_per_atom", -0.5, ""),
    ("formation energy \u22120.5 eV/atom", "formation_energy_per_atom", -0.5, "eV/atom"),
    ("heat of formation of 1.2e-3 eV per atom", "formation_energy_per_atom", 1.2e-3, "eV/atom"),
    ("formation enthalpy 1.2\u00d710^-3", "formation_energy_per_atom", 1.2e-3, ""),
    ("enthalpy of formation = 1.2\u00d710\u207b\u00b3 eV atom\u207b\u00b9",
     "formation_energy_per_atom", 1.2e-3, "eV/atom"),
    ("\u0394Hf \u2248 0.5", "formation_energy_per_atom", 0.5, ""),
    ("E_form ~0.5 eV/atom", "formation_energy_per_atom", 0.5, "eV/atom"),
    ("formation energy: about 1.6 eV/atom", "formation_energy_per_atom", 1.6, "eV/atom"),
    ("formation energy of 350 meV/atom", "formation_energy_per_atom", 0.35, "meV/atom"),
    ("total energy per atom -154.3079 eV", "energy_per_atom", -154.3079, "eV"),
    ("energy/atom: -154.2706", "energy_per_atom", -154.2706, ""),
    ("an energy of -154.31 eV/atom", "energy_per_atom", -154.31, "eV/atom"),
    ("E = -154.4 eV/atom", "energy_per_atom", -154.4, "eV/atom"),
    ("band gap of 1.1 eV", "band_gap", 1.1, "eV"),
    ("bandgap: 1100 meV", "band_gap", 1.1, "meV"),
    ("a 1.1 eV direct band gap", "band_gap", 1.1, "eV"),
    ("E_g = 3.2 eV", "band_gap", 3.2, "eV"),
    ("energy above hull 12 meV/atom", "e_above_hull", 0.012, "meV/atom"),
    ("0.02 eV/atom above the convex hull", "e_above_hull", 0.02, "eV/atom"),
    ("it lies on the convex hull", "e_above_hull", 0.0, ""),
    ("energy at 10 GPa is -154.3 eV/atom", "energy_per_atom", -154.3, "eV/atom"),
])
def test_property_values_are_exact(text, key, value, unit):
    f = facts(text)
    assert f.properties == {key: value}  # exact float equality for decimal inputs
    assert f.units == {key: unit}


def test_molar_energies():
    f = facts("heat of formation of -337.71 kJ/mol-atom")
    assert math.isclose(f.properties["formation_energy_per_atom"], -337.71 / 96.48533212331001,
                        rel_tol=1e-12)
    assert facts("formation energy -23.06 kcal per mole of atoms").properties[
        "formation_energy_per_atom"] == pytest.approx(-1.0, abs=1e-4)


@pytest.mark.parametrize("text, part, words", [
    ("The band gap is 3 \u00c5.", "band_gap", "'3 \u00c5' is a length"),
    ("formation energy of 2 GPa", "formation_energy_per_atom", "'2 GPa' is a pressure"),
    ("formation energy: 5 %", "formation_energy_per_atom", "percentage"),
    ("formation energy of -0.5 kJ/mol", "formation_energy_per_atom",
     "'-0.5 kJ/mol': per mole of atoms or of formula units"),
    ("formation energy 0.5 eV/f.u.", "formation_energy_per_atom", "per formula unit"),
    ("band gap of 2 bananas", "band_gap", "unknown unit 'bananas'"),
    ("E_g = 1,6 eV", "band_gap", "'1,6': write decimals with a point"),
    ("Ba0.5Sr0.5TiO3, cubic", "formula", "fractional atom count"),
    ("space group 231", "space_group", "outside 1..230"),
    ("formation energy \u2212 0.5 eV/atom", "formation_energy_per_atom",
     "'\u2212 0.5 eV/atom': a sign apart from its number"),
])
def test_impossible_values_name_the_words(text, part, words):
    with pytest.raises(PromptError) as info:
        read_prompt(text)
    assert info.value.part == part
    assert words in str(info.value)


@pytest.mark.parametrize("text, reason", [
    ("band gap above 2 eV", "a bound"),
    ("formation energy below 0 eV/atom", "a bound"),
    ("band gap 1.2-1.5 eV", "a range"),
    ("band gap between 1 and 2 eV", "a bound"),
    ("a large band gap", "without a value"),
    ("energy -154.3", "which energy?"),
    ("cohesive energy 7 eV/atom", "not conditioned on"),
    ("formation energies and band gaps of 0.5 and 1.1, respectively", "respectively"),
])
def test_what_is_not_a_value_is_reported(text, reason):
    r = read_prompt(text)
    assert not r.facts.properties
    assert any(reason in u.reason for u in r.not_understood), r.report()


def test_dataset_rules():
    assert facts("formation energy 1.5", "perov_5").properties == {"heat_ref": 1.5}
    assert facts("energy -154.3", "carbon_24").properties == {"energy_per_atom": -154.3}
    # an unnamed per-atom energy is the data set's only per-atom energy
    assert facts("SrTiO3 at 1.5 eV/atom", "perov_5").properties == {"heat_ref": 1.5}
    assert facts("carbon at -154.1 eV/atom", "carbon_24").properties == {
        "energy_per_atom": -154.1}
    assert facts("SrTiO3 at 1.5 eV/atom").properties == {}
    assert facts("SrTiO3 at 1.5 eV/atom", "mp_20").properties == {}  # two per-atom energies


# ----------------------------------------------------------------------------- lists and order
def test_key_value_lists_and_several_facts_per_sentence():
    f = facts("formula: SrTiO3; space group: 221; band gap: 1.1 eV; crystal system: cubic")
    assert (f.formula, f.space_group, f.crystal_system, f.properties) == (
        "SrTiO3", 221, "cubic", {"band_gap": 1.1})
    g = facts("band gap 1.1 eV, Pm-3m, cubic, formula SrTiO3 and elements Sr, Ti and O")
    assert g == PromptFacts("SrTiO3", ("Sr", "Ti", "O"), "cubic", 221, {"band_gap": 1.1})
    h = facts("-0.5 eV/atom formation energy and 1.1 eV band gap")
    assert h.properties == {"formation_energy_per_atom": -0.5, "band_gap": 1.1}
    assert facts("It is composed of strontium, titanium and oxygen.").elements == (
        "Sr", "Ti", "O")


# ----------------------------------------------------------------------------- contradictions
@pytest.mark.parametrize("text, part, words", [
    ("SrTiO3 or rather BaZrO3", "formula", "'SrTiO3' (SrTiO3) and 'BaZrO3' (BaZrO3)"),
    ("space group 62, cubic", "crystal_system", "'space group 62' is space group 62"),
    ("a cubic Pnma perovskite", "crystal_system", "'cubic' says cubic"),
    ("band gap 1 eV, band gap 2 eV", "band_gap", "'band gap 1 eV' (1.0) and 'band gap 2 eV'"),
    ("heat of formation 1.2; formation energy 1.3", "formation_energy_per_atom", "twice"),
    ("Pm-3m (No. 62)", "space_group", "'Pm-3m' (221) and '62' (62)"),
    ("cubic and tetragonal", "crystal_system", "two different crystal systems"),
    ("made of Sr, Ti and N: SrTiO3", "elements", "'made of Sr, Ti and N'"),
])
def test_contradictions_name_the_words(text, part, words):
    with pytest.raises(PromptError) as info:
        read_prompt(text)
    assert info.value.part == part
    assert words in str(info.value)


def test_the_same_fact_twice_is_fine():
    assert facts("Sr2Ti2O6, i.e. SrTiO3; Pm-3m (No. 221); cubic, a cubic cell").formula == "SrTiO3"


def test_check_composition_names_both():
    reading = read_prompt("A cubic BaZrO3 perovskite.")
    check_composition(reading, "BaZrO3")
    check_composition(reading, "Ba2Zr2O6")  # compared reduced
    with pytest.raises(PromptError) as info:
        check_composition(reading, "SrTiO3")
    assert "'BaZrO3'" in str(info.value) and "SrTiO3" in str(info.value)
    assert info.value.part == "formula"
    with pytest.raises(PromptError, match="elements"):
        check_composition(read_prompt("made of Ba, Zr and O"), "SrTiO3")
    check_composition(PromptFacts(), "SrTiO3")  # nothing stated: nothing to contradict


# ----------------------------------------------------------------------------- templates
def _short_prompts(dataset):
    from tgdmat.conditioning import build_prompts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (prompts,), _ = build_prompts(dataset, progress=False)
    return prompts


@pytest.mark.parametrize("fixture", ["perov_test", "carbon_test"])
def test_every_shipped_short_prompt_reads_as_parse_prompt(fixture, request):
    dataset = request.getfixturevalue(fixture)
    prompts = _short_prompts(dataset)
    assert len(prompts) == len(dataset)
    for p in prompts:
        for ds in (dataset.name, None):
            reading, parsed = read_prompt(p, ds), parse_prompt(p, ds)
            assert reading.facts == parsed and reading.facts.units == parsed.units, p
            assert not reading.not_understood, p
    assert read_prompt(prompts[0]).facts == parse_prompt(prompts[0])


@pytest.mark.parametrize("dataset", ["perov_5", "carbon_24"])
def test_shipped_long_prompts_read_as_parse_prompt(dataset):
    from tgdmat.text.descriptions import load_descriptions

    texts = list(load_descriptions(dataset, "test").values())[::50]
    for t in texts:
        assert read_prompt(t, dataset).facts == parse_prompt(t, dataset), t[:200]


def test_template_sentences_that_go_on_freely():
    f = facts("The formula is SrTiO3 and the band gap is 3.2 eV.")
    assert (f.formula, f.properties) == ("SrTiO3", {"band_gap": 3.2})
    assert facts("The formation energy is about 1.6 eV/atom.").properties == {
        "formation_energy_per_atom": 1.6}
    # a templated sentence that the free reading cannot rescue keeps the template's error
    for text, message in [("The band gap is 2 bananas.", "unknown unit 'bananas'"),
                          ("The crystal system is cubicish.", "unknown crystal system"),
                          ("The chemical formula is srtio3.", "cannot parse")]:
        with pytest.raises(PromptError, match=message) as info:
            read_prompt(text)
        assert info.value.sentence == text


def test_reader_reads_what_the_template_parser_ignores():
    text = "A wide-gap cubic oxide perovskite, SrTiO3, with formation energy 1.5 eV/atom."
    assert parse_prompt(text).is_empty  # templated sentences only, as before
    facts = read_prompt(text, "perov_5").facts
    assert facts.formula == "SrTiO3" and facts.crystal_system == "cubic" and facts.properties == {"heat_ref": 1.5}
    with pytest.raises(TypeError):
        read_prompt(None)
    assert isinstance(read_prompt(""), Reading) and read_prompt("").facts.is_empty
    assert isinstance(read_prompt("Pm-3m").understood[0], FactSpan)


# ----------------------------------------------------------------------------- curated set
def test_curated_prompts_per_fact_kind():
    cases = load_curated()
    assert len(cases) >= 30
    assert {c["dataset"] for c in cases} == {"perov_5", "carbon_24"}
    score = score_curated(cases)
    print("\ncurated free-written prompts, all:\n" + score.table())
    held_out = score_curated([c for c in cases if c["batch"] == "held-out"])
    print("held-out batch (written after the reader):\n" + held_out.table())
    assert not score.errors, score.errors
    for kind, c in score.counts.items():
        if c["expected"]:
            assert score.recall(kind) >= 0.95, (kind, score.misses)
        if c["read"]:
            assert score.precision(kind) >= 0.95, (kind, score.misses)
