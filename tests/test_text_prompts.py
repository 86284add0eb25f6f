"""Short prompts, the prompt parser, and the shipped Robocrystallographer descriptions."""
from __future__ import annotations

import csv
import gzip
import random
import warnings

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from tgdmat.paths import data_dir
from tgdmat.text import (
    PromptError,
    PromptFacts,
    load_descriptions,
    parse_prompt,
    short_prompt,
    validate_prompt,
)
from tgdmat.text.facts import CRYSTAL_SYSTEM_RANGES, crystal_system_of
from tgdmat.text.parse import parse_formula, parse_number, parse_space_group, split_sentences
from tgdmat.text.prompts import (
    DATASET_ATTRIBUTES,
    FOOTER,
    HEADER,
    attribute_order,
    prompt_from_facts,
    structure_facts,
)

PEROVSKITE_SITES = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a: float = 3.905, c: float | None = None) -> Structure:
    """Ideal SrTiO3 (Pm-3m) or, with c != a, its tetragonal stretch (P4/mmm)."""
    lattice = Lattice.cubic(a) if c is None else Lattice.tetragonal(a, c)
    return Structure(lattice, ["Sr", "Ti", "O", "O", "O"], PEROVSKITE_SITES)


def rows(dataset: str, split: str = "test", n: int = 12) -> list[tuple[Structure, dict]]:
    df = pd.read_csv(data_dir() / dataset / f"{split}.csv.gz", nrows=n)
    prop = {"perov_5": "heat_ref", "carbon_24": "energy_per_atom"}[dataset]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, row in df.iterrows():
            s = Structure.from_str(row["cif"], fmt="cif").get_reduced_structure()
            out.append((s, {prop: float(row[prop])}))
    return out


# ----------------------------------------------------------------------------- template
def test_ideal_cubic_perovskite_prompt_is_exact():
    text = short_prompt(perovskite(), {"heat_ref": -0.123449}, "perov_5")
    assert text == (
        "Below is a description of a bulk material. The chemical formula is SrTiO3. "
        "The elements are Sr, Ti, O. The formation energy per atom is -0.1234. "
        "The spacegroup number is 221. The crystal system is cubic. Generate the material:"
    )


def test_symmetry_follows_the_structure():
    facts = structure_facts(perovskite(3.9, 4.1), {"heat_ref": 1.0}, "perov_5")
    assert (facts.space_group, facts.crystal_system) == (123, "tetragonal")
    # a 0.0001 Å displacement is inside SYMPREC (0.01 Å): still cubic
    s = perovskite()
    s.translate_sites([1], [1e-4 / 3.905, 0, 0])
    assert structure_facts(s, {}, None).space_group == 221
    # 0.1 Å is not: the symmetry drops to P4mm (99)
    s = perovskite()
    s.translate_sites([1], [0, 0, 0.1 / 3.905])
    assert structure_facts(s, {}, None).space_group == 99


def test_every_dataset_states_its_properties():
    s = perovskite()
    carbon = Structure(Lattice.cubic(3.57), ["C"] * 8,
                       [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0], [.25, .25, .25],
                        [.25, .75, .75], [.75, .25, .75], [.75, .75, .25]])
    t = short_prompt(carbon, {"energy_per_atom": -154.3079}, "carbon_24")
    assert "The energy per atom is -154.3079." in t and "The spacegroup number is 227." in t
    assert "The chemical formula is C." in t and "The elements are C." in t
    t = short_prompt(s, {"formation_energy_per_atom": -3.5, "band_gap": 1.75,
                         "e_above_hull": 0.0}, "mp_20")
    for sentence in ("The formation energy per atom is -3.5.", "The band gap is 1.75.",
                     "The energy above the convex hull is 0.0."):
        assert sentence in t
    assert "eV" not in t
    t = short_prompt(s, {"heat_ref": 0.5}, "perov_5", units=True)
    assert "The formation energy per atom is 0.5 eV/atom." in t


def test_prompt_needs_the_dataset_properties():
    with pytest.raises(ValueError, match="missing \\['heat_ref'\\]"):
        short_prompt(perovskite(), {}, "perov_5")
    with pytest.raises(ValueError, match="not finite"):
        short_prompt(perovskite(), {"heat_ref": float("nan")}, "perov_5")
    with pytest.raises(ValueError, match="unknown dataset 'mp20'"):
        short_prompt(perovskite(), {"heat_ref": 1.0}, "mp20")


# ----------------------------------------------------------------------------- ordering
def _facts_order(text: str) -> list[str]:
    sentences = split_sentences(text)
    assert sentences[0] == HEADER and sentences[-1] == FOOTER
    return sentences[1:-1]


def test_evaluation_order_is_fixed():
    s = perovskite()
    a = short_prompt(s, {"heat_ref": 0.1}, "perov_5")
    b = short_prompt(s, {"heat_ref": 0.1}, "perov_5", rng=None)
    assert a == b
    assert attribute_order("mp_20") == list(DATASET_ATTRIBUTES["mp_20"])
    assert _facts_order(a)[0].startswith("The chemical formula")


def test_seeded_training_order():
    s = perovskite()
    props = {"heat_ref": 0.1}
    same = {short_prompt(s, props, "perov_5", rng=7) for _ in range(3)}
    assert len(same) == 1
    orders = {short_prompt(s, props, "perov_5", rng=seed) for seed in range(20)}
    assert len(orders) >= 10  # 5! = 120 orders; 20 seeds give many distinct ones
    fixed = short_prompt(s, props, "perov_5")
    for t in orders:  # same sentences, same header/footer, only the order changes
        assert t.startswith(HEADER) and t.endswith(FOOTER)
        assert sorted(_facts_order(t)) == sorted(_facts_order(fixed))
    # a generator advances: successive prompts differ, and the sequence repeats for a seed
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    seq1 = [short_prompt(s, props, "perov_5", rng=g1) for _ in range(6)]
    seq2 = [short_prompt(s, props, "perov_5", rng=g2) for _ in range(6)]
    assert seq1 == seq2 and len(set(seq1)) > 1
    r1, r2 = random.Random(5), random.Random(5)
    assert attribute_order("mp_20", r1) == attribute_order("mp_20", r2)
    with pytest.raises(TypeError):
        attribute_order("perov_5", "seed")


# ----------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("dataset", ["perov_5", "carbon_24"])
def test_parser_round_trip_on_real_rows(dataset):
    for i, (s, props) in enumerate(rows(dataset)):
        facts = structure_facts(s, props, dataset)
        for rng in (None, i, 100 + i):
            for units in (False, True):
                text = short_prompt(s, props, dataset, rng=rng, units=units)
                parsed = parse_prompt(text, dataset=dataset)
                assert parsed == facts, text
                assert prompt_from_facts(parsed, dataset, rng=rng, units=units) == text


def test_round_trip_mp20_and_perov_names():
    facts = structure_facts(perovskite(), {"formation_energy_per_atom": -2.25e-3,
                                           "band_gap": 3.2, "e_above_hull": 0.0123}, "mp_20")
    text = prompt_from_facts(facts, "mp_20", rng=1)
    assert parse_prompt(text) == facts
    # TGDMat calls Perov-5's heat_ref a "formation energy per atom"
    t = short_prompt(perovskite(), {"heat_ref": 1.5}, "perov_5")
    assert parse_prompt(t).properties == {"formation_energy_per_atom": 1.5}
    assert parse_prompt(t, dataset="perov_5").properties == {"heat_ref": 1.5}


def test_parse_robocrys_first_sentence():
    text = ("SrTiO3 is (Cubic) Perovskite structured and crystallizes in the cubic Pm-3m space "
            "group. Sr(1) is bonded to twelve equivalent O(1) atoms. All Sr(1)-O(1) bond lengths "
            "are 2.76 Å.")
    facts = parse_prompt(text)
    assert (facts.formula, facts.crystal_system, facts.space_group) == ("SrTiO3", "cubic", 221)
    assert parse_prompt("C crystallizes in the hexagonal P6_3/mmc space group.").space_group == 194


@pytest.mark.parametrize("dataset", ["perov_5", "carbon_24"])
def test_shipped_long_prompts_parse_and_agree(dataset):
    desc = pd.read_csv(data_dir() / "text" / f"{dataset}_test.csv.gz", nrows=12)
    agree = 0
    for (s, props), text in zip(rows(dataset), desc["text"]):
        facts = parse_prompt(text)
        ours = structure_facts(s, props, dataset)
        assert facts.formula == ours.formula
        assert facts.crystal_system == crystal_system_of(facts.space_group)
        agree += facts.space_group == ours.space_group
    assert agree >= 11  # robocrys uses the same spglib tolerances


# ----------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("written, value, unit", [
    ("-0.1234", -0.1234, ""),
    ("0.1234", 0.1234, ""),
    ("+2.5E+02", 250.0, ""),
    ("1e-3", 1e-3, ""),
    ("-1.54e2 eV/atom", -154.0, "eV/atom"),
    ("1.2×10^-3", 1.2e-3, ""),
    ("1.2 x 10^(-3)", 1.2e-3, ""),
    ("1.2*10**-3", 1.2e-3, ""),
    ("1.2×10⁻³", 1.2e-3, ""),
    ("\u22120.5", -0.5, ""),
    ("-154.2502 eV/atom", -154.2502, "eV/atom"),
    ("12 meV/atom", 0.012, "meV/atom"),
    ("-1.2345 meV/atom", -0.0012345, "meV/atom"),
    ("3.2 eV", 3.2, "eV"),
    ("0.7 eV per atom", 0.7, "eV/atom"),
    (".5", 0.5, ""),
])
def test_numbers_are_exact(written, value, unit):
    got, got_unit = parse_number(written)
    assert got == value and got_unit == unit  # exact float equality, no tolerance
    text = f"The band gap is {written}. The crystal system is cubic."
    facts = parse_prompt(text)
    assert facts.properties == {"band_gap": value}
    assert facts.units == {"band_gap": unit}


def test_property_values_of_every_shipped_row_come_back_exactly():
    for dataset, prop in (("perov_5", "heat_ref"), ("carbon_24", "energy_per_atom")):
        df = pd.read_csv(data_dir() / dataset / "test.csv.gz", usecols=[prop])
        for v in df[prop]:
            stated = round(float(v), 4)
            got, _ = parse_number(str(stated))
            assert got == stated


# ----------------------------------------------------------------------------- errors
BAD = [
    ("The formation energy per atom is 1.2.3.", "formation_energy_per_atom", "malformed"),
    ("The band gap is large.", "band_gap", "malformed number 'large'"),
    ("The band gap is .", "band_gap", "malformed number ''"),
    ("The band gap is 1e.", "band_gap", "malformed"),
    ("The band gap is 1,234.", "band_gap", "malformed"),
    ("The band gap is --1.", "band_gap", "malformed"),
    ("The band gap is nan.", "band_gap", "malformed"),
    ("The band gap is 2 bananas.", "band_gap", "unknown unit 'bananas'"),
    ("The band gap is 5 kJ/mol.", "band_gap", "unknown unit"),
    ("The band gap is 1e999.", "band_gap", "out of range"),
    ("The band gap is 9e308.", "band_gap", "too large"),
    ("The chemical formula is .", "formula", "empty formula"),
    ("The chemical formula is srtio3.", "formula", "cannot parse"),
    ("The chemical formula is SrTiO3!.", "formula", "cannot parse"),
    ("The chemical formula is Sr(TiO3.", "formula", "unbalanced"),
    ("The chemical formula is XyO3.", "formula", "unknown element 'Xy'"),
    ("The chemical formula is Sr0TiO3.", "formula", "zero atom count"),
    ("The chemical formula is Sr0.5TiO3.", "formula", "fractional"),
    ("The chemical formula is 3.", "formula", "without an element"),
    ("The elements are Sr, Xy, O.", "elements", "unknown element 'Xy'"),
    ("The elements are Sr, Ti, Sr.", "elements", "listed twice"),
    ("The elements are .", "elements", "no elements"),
    ("The spacegroup number is 0.", "space_group", "outside 1..230"),
    ("The spacegroup number is 231.", "space_group", "outside 1..230"),
    ("The spacegroup number is -5.", "space_group", "outside 1..230"),
    ("The spacegroup number is 12.5.", "space_group", "neither"),
    ("The space group is Xyz.", "space_group", "neither"),
    ("The crystal system is cubicish.", "crystal_system", "unknown crystal system"),
    ("The crystal system is .", "crystal_system", "unknown crystal system"),
]


@pytest.mark.parametrize("sentence, part, message", BAD)
def test_bad_facts_name_the_sentence_and_part(sentence, part, message):
    text = f"Below is a description of a bulk material. {sentence} Generate the material:"
    with pytest.raises(PromptError) as info:
        parse_prompt(text)
    err = info.value
    assert err.part == part
    assert message in str(err)
    assert sentence in str(err) and err.sentence == sentence
    if sentence in READ_AS_PARAPHRASE:  # the free-text reader reads it: accepted, with that fact
        assert validate_prompt(text) == text
        return
    with pytest.raises(PromptError):
        validate_prompt(text)


#: template-form sentences the template parser refuses but the free-text reader reads exactly
READ_AS_PARAPHRASE = {"The chemical formula is SrTiO3!."}


def test_a_paraphrased_template_sentence_is_accepted_and_read():
    from tgdmat.text.reader import read_prompt

    text = "Below is a description of a bulk material. The formation energy per atom is about 1.9571. Generate the material:"
    with pytest.raises(PromptError):
        parse_prompt(text)                      # the template parser refuses "about"
    assert validate_prompt(text) == text        # the reader reads it
    assert read_prompt(text, dataset="perov_5").facts.properties == {"heat_ref": 1.9571}
    with pytest.raises(PromptError, match="Xy"):
        validate_prompt("The elements are Sr, Xy, O.")


def test_inconsistent_facts():
    with pytest.raises(PromptError) as info:
        parse_prompt("The spacegroup number is 62. The crystal system is cubic.")
    assert info.value.part == "crystal_system" and "orthorhombic" in str(info.value)
    assert "The crystal system is cubic." in str(info.value)
    with pytest.raises(PromptError) as info:
        parse_prompt("The chemical formula is SrTiO3. The elements are Sr, Ti, N.")
    assert info.value.part == "elements"
    with pytest.raises(PromptError) as info:
        parse_prompt("The band gap is 1.0. Later: the band gap is 2.0.")
    assert info.value.part == "band_gap" and "twice" in str(info.value)
    # the same fact twice with the same value is fine
    assert parse_prompt("The band gap is 1.0. The band gap is 1.0 eV.").properties == {
        "band_gap": 1.0}


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_prompt_is_an_error(text):
    with pytest.raises(PromptError, match="empty") as info:
        validate_prompt(text)
    assert info.value.part == "prompt"


def test_free_text_is_accepted():
    text = "  A wide-gap cubic oxide perovskite, please.  "
    assert validate_prompt(text) == text.strip()
    assert parse_prompt(text).is_empty
    with pytest.raises(TypeError):
        validate_prompt(None)
    with pytest.raises(TypeError):
        parse_prompt(b"The formula is SrTiO3.")


def test_parts_and_tables():
    assert parse_formula("Sr2Ti2O6") == "SrTiO3"
    assert parse_formula("Sr(TiO3)2") == "SrTi2O6"
    assert parse_space_group("Pm-3m") == 221 and parse_space_group("P2_1/c") == 14
    for system, (lo, hi) in CRYSTAL_SYSTEM_RANGES.items():
        assert crystal_system_of(lo) == system and crystal_system_of(hi) == system
    with pytest.raises(ValueError):
        crystal_system_of(231)


def test_compare_reports_fidelity():
    stated = parse_prompt("The chemical formula is SrTiO3. The spacegroup number is 221. "
                          "The formation energy per atom is 0.5.")
    ok = structure_facts(perovskite(), {"formation_energy_per_atom": 0.5})
    assert stated.compare(ok) == {"formula": True, "space_group": True,
                                  "formation_energy_per_atom": True}
    bad = structure_facts(perovskite(3.9, 4.1), {})
    assert stated.compare(bad) == {"formula": True, "space_group": False,
                                   "formation_energy_per_atom": False}
    assert PromptFacts().is_empty


# ----------------------------------------------------------------------------- descriptions
ROW_COUNTS = {("perov_5", "val"): 3787, ("perov_5", "test"): 3785,
              ("carbon_24", "val"): 2032, ("carbon_24", "test"): 2030}


@pytest.mark.parametrize("dataset, split", sorted(ROW_COUNTS))
def test_description_files_match_the_data(dataset, split):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback expected: every shipped row is described
        desc = load_descriptions(dataset, split)
    assert len(desc) == ROW_COUNTS[(dataset, split)]
    assert desc.n_fallback == 0 and set(desc.status.values()) == {"ok"}
    ids = pd.read_csv(data_dir() / dataset / f"{split}.csv.gz", usecols=["material_id"])
    assert list(desc) == ids["material_id"].astype(str).tolist()
    assert all(t.endswith(".") and "crystallizes in the" in t for t in desc.values())


def _write_gz_csv(path, header, rows_):
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows_)


def test_failed_and_missing_rows_fall_back_to_the_short_prompt(tmp_path):
    src = pd.read_csv(data_dir() / "perov_5" / "test.csv.gz", nrows=3)
    (tmp_path / "perov_5").mkdir()
    (tmp_path / "text").mkdir()
    src.to_csv(tmp_path / "perov_5" / "test.csv.gz", index=False)
    ids = src["material_id"].astype(str).tolist()
    _write_gz_csv(tmp_path / "text" / "perov_5_test.csv.gz", ["material_id", "text", "status",
                                                             "seconds"],
                  [[ids[0], "X crystallizes in the cubic Pm-3m space group.", "ok", "1.0"],
                   [ids[1], "", "error: ValueError: boom", "0.5"]])
    with pytest.warns(UserWarning, match="2 of 3 rows"):
        desc = load_descriptions("perov_5", "test", root=tmp_path)
    assert list(desc) == ids and desc.fallback_ids == ids[1:]
    assert desc.status[ids[2]] == "missing"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Structure.from_str(src["cif"][1], fmt="cif")
    assert desc[ids[1]] == short_prompt(s, {"heat_ref": float(src["heat_ref"][1])}, "perov_5")
    with pytest.raises(ValueError, match="2 rows have no description"):
        load_descriptions("perov_5", "test", root=tmp_path, fallback=False)
    # an id the data file does not have is an error, naming the file
    _write_gz_csv(tmp_path / "text" / "perov_5_test.csv.gz", ["material_id", "text", "status",
                                                             "seconds"],
                  [["nope", "t.", "ok", "1"]])
    with pytest.raises(ValueError, match="not in"):
        load_descriptions("perov_5", "test", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m tgdmat.text.descriptions"):
        load_descriptions("perov_5", "val", root=tmp_path)
