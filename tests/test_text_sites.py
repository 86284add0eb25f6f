"""Site facts of Robocrystallographer descriptions (tgdmat.text.sites).

Every sentence and description below is copied from the shipped files in ``data/text/``;
``test_examples_are_shipped_text`` checks that they are there, under the ids given.
"""
from __future__ import annotations

import csv
import gzip
import re
from functools import lru_cache

import pytest

from tgdmat.paths import data_dir
from tgdmat.text.sites import (
    DescriptionFacts,
    canonical_label,
    count_word,
    ordinal_word,
    parse_description,
    parsing_report,
    sentence_shape,
    site_features,
    split_description,
)

# perov_5/test 18565: cubic perovskite, every site
CUASN3 = (
    "CuAsN3 is (Cubic) Perovskite structured and crystallizes in the cubic Pm-3m space group. "
    "Cu(1) is bonded to twelve equivalent N(1) atoms to form CuN12 cuboctahedra that share "
    "corners with twelve equivalent Cu(1)N12 cuboctahedra, faces with six equivalent Cu(1)N12 "
    "cuboctahedra, and faces with eight equivalent As(1)N6 octahedra. All Cu(1)-N(1) bond "
    "lengths are 2.67 Å. As(1) is bonded to six equivalent N(1) atoms to form AsN6 octahedra "
    "that share corners with six equivalent As(1)N6 octahedra and faces with eight equivalent "
    "Cu(1)N12 cuboctahedra. The corner-sharing octahedra are not tilted. All As(1)-N(1) bond "
    "lengths are 1.89 Å. N(1) is bonded in a linear geometry to four equivalent Cu(1) and two "
    "equivalent As(1) atoms.")
# perov_5/test 12815: two O sites, one of them an octahedron with its own tilt sentence
CSZNO2F = (
    "CsZnO2F is (Cubic) Perovskite-derived structured and crystallizes in the orthorhombic Pmm2 "
    "space group. Cs(1) is bonded to four equivalent O(1), four equivalent O(2), and four "
    "equivalent F(1) atoms to form CsO8F4 cuboctahedra that share corners with twelve equivalent "
    "Cs(1)O8F4 cuboctahedra, faces with six equivalent Cs(1)O8F4 cuboctahedra, and faces with "
    "eight equivalent Zn(1)O4F2 octahedra. All Cs(1)-O(1) bond lengths are 3.07 Å. All "
    "Cs(1)-O(2) bond lengths are 3.07 Å. All Cs(1)-F(1) bond lengths are 3.07 Å. Zn(1) is "
    "bonded to two equivalent O(1), two equivalent O(2), and two equivalent F(1) atoms to form "
    "ZnO4F2 octahedra that share corners with six equivalent Zn(1)O4F2 octahedra and faces with "
    "eight equivalent Cs(1)O8F4 cuboctahedra. The corner-sharing octahedral tilt angles range "
    "from 0-2°. Both Zn(1)-O(1) bond lengths are 2.17 Å. There is one shorter (2.13 Å) and one "
    "longer (2.21 Å) Zn(1)-O(2) bond length. Both Zn(1)-F(1) bond lengths are 2.17 Å. There are "
    "two inequivalent O sites. In the first O site, O(1) is bonded to four equivalent Cs(1) and "
    "two equivalent Zn(1) atoms to form a mixture of distorted corner and edge-sharing OCs4Zn2 "
    "octahedra. The corner-sharing octahedral tilt angles range from 0-2°. In the second O site, "
    "O(2) is bonded in a distorted linear geometry to four equivalent Cs(1) and two equivalent "
    "Zn(1) atoms. F(1) is bonded in a distorted linear geometry to four equivalent Cs(1) and two "
    "equivalent Zn(1) atoms.")
# carbon_24/test C-107760-8155-48: six inequivalent C sites, four bond-length forms
CARBON = (
    "C crystallizes in the triclinic P-1 space group. There are six inequivalent C sites. In the "
    "first C site, C(1) is bonded to one C(2) and three equivalent C(6) atoms to form a mixture "
    "of corner and edge-sharing CC4 trigonal pyramids. The C(1)-C(2) bond length is 1.50 Å. "
    "There are a spread of C(1)-C(6) bond distances ranging from 1.52-1.55 Å. In the second C "
    "site, C(2) is bonded to one C(1), one C(4), and two equivalent C(3) atoms to form "
    "corner-sharing CC4 tetrahedra. The C(2)-C(4) bond length is 1.54 Å. Both C(2)-C(3) bond "
    "lengths are 1.54 Å. In the third C site, C(3) is bonded to one C(5), one C(6), and two "
    "equivalent C(2) atoms to form corner-sharing CC4 tetrahedra. The C(3)-C(5) bond length is "
    "1.47 Å. The C(3)-C(6) bond length is 1.49 Å. In the fourth C site, C(4) is bonded to one "
    "C(2), one C(5), and two equivalent C(4) atoms to form corner-sharing CC4 tetrahedra. The "
    "C(4)-C(5) bond length is 1.48 Å. There is one shorter (1.56 Å) and one longer (1.59 Å) "
    "C(4)-C(4) bond length. In the fifth C site, C(5) is bonded in a trigonal planar geometry to "
    "one C(3), one C(4), and one C(5) atom. The C(5)-C(5) bond length is 1.38 Å. In the sixth C "
    "site, C(6) is bonded to one C(3) and three equivalent C(1) atoms to form a mixture of corner "
    "and edge-sharing CC4 trigonal pyramids.")

# (dataset, split, material_id, sentence) of single sentences used below
SHIPPED = [
    ("perov_5", "val", "10616", "The corner-sharing octahedral tilt angles are 40°."),
    ("perov_5", "val", "9325", "S(1) is bonded in a distorted bent 150 degrees geometry to two "
                               "equivalent Hf(1) and two equivalent O(2) atoms."),
    ("perov_5", "val", "6108", "The structure is two-dimensional and consists of one SrO ribbon "
                               "oriented in the (np.int64(0), np.int64(0), np.int64(1)) direction "
                               "and one ZrN2 sheet oriented in the (np.int64(0), np.int64(0), "
                               "np.int64(1)) direction."),
    ("perov_5", "val", "304", "CoNTeO2 is Pb(Zr_(1-x)Ti_x)O3-derived structured and crystallizes "
                              "in the orthorhombic Pmm2 space group."),
    ("perov_5", "val", "3409", "In the Ru cluster, Ru(1) is bonded in a 12-coordinate geometry "
                               "to  atoms."),
    ("perov_5", "val", "15834", "In the V cluster, V(1) is bonded in a distorted cuboctahedral "
                                "geometry to  atoms."),
    ("perov_5", "val", "10414", "In the second O site, O(2) is bonded in a single-bond geometry "
                                "to four equivalent Fe(1), one B(1), and two equivalent S(1) "
                                "atoms."),
    ("perov_5", "test", "1610", "N(1) is bonded to four equivalent Sr(1) and two equivalent In(1) "
                                "atoms to form distorted NSr4In2 octahedra that share corners "
                                "with six equivalent N(1)Sr4In2 octahedra; corners with sixteen "
                                "equivalent O(1,2)Sr4In2 octahedra; edges with four equivalent "
                                "N(1)Sr4In2 octahedra; and faces with eight equivalent "
                                "O(1,2)Sr4In2 octahedra."),
    ("carbon_24", "val", "C-189732-2937-11", "In the first C site, C(1) is bonded to one C(3); one "
                                             "C(5); and two C(7,7) atoms to form corner-sharing "
                                             "CC4 tetrahedra."),
    ("carbon_24", "val", "C-56473-8976-44", "All C(1)-C(1) bond lengths are 1.40 Å."),
    ("perov_5", "val", "", "VIrO3 crystallizes in the tetragonal P4mm space group. V(1) is bonded "
                           "in a 4-coordinate geometry to four equivalent O(1) atoms."),
]


@lru_cache(maxsize=None)
def shipped(dataset: str, split: str) -> dict[str, str]:
    path = data_dir() / "text" / f"{dataset}_{split}.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return {row["material_id"]: row["text"] for row in csv.DictReader(fh)}


def one(sentence: str) -> DescriptionFacts:
    facts = parse_description(sentence)
    assert facts.unparsed == [], facts.unparsed
    return facts


# --------------------------------------------------------------------------------------------
def test_examples_are_shipped_text():
    assert shipped("perov_5", "test")["18565"] == CUASN3
    assert shipped("perov_5", "test")["12815"] == CSZNO2F
    assert shipped("carbon_24", "test")["C-107760-8155-48"] == CARBON
    for dataset, split, mid, sentence in SHIPPED:
        texts = shipped(dataset, split)
        if mid:
            assert sentence in texts[mid]
        else:
            assert any(t.startswith(sentence) for t in texts.values())


# ------------------------------------------------------------------------------- splitting
def test_split_ends_at_full_stops_not_decimals_or_symbols():
    parts = split_description(CUASN3)
    assert len(parts) == 7
    assert parts[0].endswith("Pm-3m space group.")
    assert parts[2] == "All Cu(1)-N(1) bond lengths are 2.67 Å."
    two_d = split_description(SHIPPED[2][3] + " There are two inequivalent O sites.")
    assert len(two_d) == 2 and "np.int64(0)" in two_d[0]
    assert split_description("In Pm-3m. Sites, e.g. Ti(1), at 1.5 Å. Next.") == [
        "In Pm-3m.", "Sites, e.g. Ti(1), at 1.5 Å.", "Next."]
    assert split_description("") == [] and split_description("No stop") == ["No stop"]


@pytest.mark.parametrize("dataset", ["perov_5", "carbon_24"])
def test_split_round_trips_on_shipped_texts(dataset):
    for text in shipped(dataset, "val").values():
        parts = split_description(text)
        assert " ".join(parts).split() == text.split()
        assert "".join(parts) == re.sub(r"(?<=\.)\s+", "", text.strip())
        assert all(p.endswith(".") for p in parts)


# ------------------------------------------------------------------------------ bond lengths
def test_bond_length_forms_and_exact_numbers():
    f = one("All C(1)-C(1) bond lengths are 1.40 Å.")
    (b,) = f.sites["C(1)"].bonds
    assert (b.form, b.values, b.counts, b.neighbour) == ("all", (1.40,), None, "C(1)")
    assert b.values[0] == float("1.40")

    f = one("Both Zn(1)-O(1) bond lengths are 2.17 Å.")
    (b,) = f.sites["Zn(1)"].bonds
    assert (b.form, b.values, b.counts, b.element) == ("both", (2.17,), (2,), "O")

    f = one("There is one shorter (2.13 Å) and one longer (2.21 Å) Zn(1)-O(2) bond length.")
    (b,) = f.sites["Zn(1)"].bonds
    assert (b.form, b.values, b.counts) == ("shorter_longer", (2.13, 2.21), (1, 1))
    assert (b.min, b.max) == (float("2.13"), float("2.21"))

    f = one("There are two shorter (2.63 Å) and two longer (2.64 Å) Zn(1)-N(1) bond lengths.")
    assert f.sites["Zn(1)"].bonds[0].counts == (2, 2)

    f = one("There are a spread of C(1)-C(6) bond distances ranging from 1.52-1.55 Å.")
    (b,) = f.sites["C(1)"].bonds
    assert (b.form, b.values, b.counts) == ("spread", (1.52, 1.55), None)

    f = one("The C(3)-C(6) bond length is 1.49 Å.")
    (b,) = f.sites["C(3)"].bonds
    assert (b.form, b.values, b.counts, b.neighbour) == ("single", (1.49,), (1,), "C(6)")
    assert f.kinds == ["bond_lengths"]


def test_bond_lengths_with_en_dashes_as_in_the_brief():
    f = one("There are a spread of C(1)\u2013C(1) bond distances ranging from 1.52\u20131.58 Å.")
    assert f.sites["C(1)"].bonds[0].values == (1.52, 1.58)
    f = one("All Ti(1)\u2013O(1) bond lengths are 1.97 Å.")
    assert f.sites["Ti(1)"].bond_range("O") == (1.97, 1.97)


# ------------------------------------------------------------------------------ coordination
def test_count_words_and_ordinals():
    assert [count_word(w) for w in ("one", "six", "twelve", "sixteen", "twenty-four", "8")] == \
        [1, 6, 12, 16, 24, 8]
    assert [ordinal_word(w) for w in ("first", "second", "third", "fifth", "eighth", "ninth",
                                      "twelfth", "twentieth", "twenty-first", "twenty-fourth")] \
        == [1, 2, 3, 5, 8, 9, 12, 20, 21, 24]
    with pytest.raises(ValueError):
        count_word("several")


def test_coordination_from_neighbours_numbers_and_words():
    s = one(SHIPPED[6][3]).sites["O(2)"]          # four Fe, one B, two S; single-bond geometry
    assert s.ordinal == 2 and s.coordination == 7 and s.coordination_source == "neighbours"
    assert s.neighbour_counts() == {"Fe": 4, "B": 1, "S": 2}
    assert s.geometry == "single-bond" and s.geometry_coordination == 1

    s = one(SHIPPED[4][3]).sites["Ru(1)"]         # cluster: "12-coordinate … to  atoms"
    assert (s.coordination, s.coordination_source, s.stated_coordination) == (12, "stated", 12)
    assert s.neighbours == [] and s.component == "Ru cluster" and s.geometry is None

    s = one(SHIPPED[5][3]).sites["V(1)"]          # cluster: "distorted cuboctahedral … to  atoms"
    assert (s.coordination, s.coordination_source) == (12, "geometry")
    assert s.distorted and s.shape == "cuboctahedral"

    s = one("Ti(1) is bonded in a twelve-coordinate geometry to  atoms.").sites["Ti(1)"]
    assert s.coordination == 12

    s = parse_description(SHIPPED[-1][3]).sites["V(1)"]
    assert (s.stated_coordination, s.coordination) == (4, 4)

    s = one(SHIPPED[1][3]).sites["S(1)"]
    assert (s.geometry, s.bent_angle, s.distorted, s.coordination) == ("bent", 150.0, True, 4)


def test_neighbour_lists_with_semicolons_and_merged_labels():
    s = one(SHIPPED[8][3]).sites["C(1)"]
    assert [(n.label, n.count, n.equivalent) for n in s.neighbours] == [
        ("C(3)", 1, False), ("C(5)", 1, False), ("C(7,7)", 2, False)]
    assert s.coordination == 4 and s.polyhedron == "tetrahedra" and s.connectivity == ("corner",)
    assert canonical_label("C(7,7)") == "C(7)" and canonical_label("O(2,1)") == "O(1,2)"

    s = one(SHIPPED[7][3]).sites["N(1)"]
    assert s.distorted and s.polyhedron_formula == "NSr4In2"
    assert [(x.kind, x.count, x.label, x.formula, x.polyhedron) for x in s.shares] == [
        ("corner", 6, "N(1)", "NSr4In2", "octahedra"),
        ("corner", 16, "O(1,2)", "OSr4In2", "octahedra"),
        ("edge", 4, "N(1)", "NSr4In2", "octahedra"),
        ("face", 8, "O(1,2)", "OSr4In2", "octahedra")]
    assert s.connectivity == ("corner", "edge", "face")


# ------------------------------------------------------------------------------------ tilts
@pytest.mark.parametrize("sentence, tilt", [
    ("The corner-sharing octahedra are not tilted.", (0.0, 0.0)),
    ("The corner-sharing octahedral tilt angles range from 0-25°.", (0.0, 25.0)),
    ("The corner-sharing octahedral tilt angles are 40°.", (40.0, 40.0)),
    ("The corner-sharing octahedra are tilted 12°.", (12.0, 12.0)),
    ("The corner-sharing octahedral tilt angles range from 0\u201331°.", (0.0, 31.0)),
])
def test_tilt_forms(sentence, tilt):
    text = ("Ti(1) is bonded to six equivalent O(1) atoms to form corner-sharing TiO6 octahedra. "
            + sentence)
    f = one(text)
    assert f.kinds == ["site", "tilt"]
    s = f.sites["Ti(1)"]
    assert (s.tilt_min, s.tilt_max, s.tilt_polyhedron) == (*tilt, "octahedra")
    assert f.tilts == [("Ti(1)", *tilt)]


# ------------------------------------------------------------------------------ global facts
def test_global_sentences():
    f = one(SHIPPED[3][3])
    assert (f.formula, f.mineral, f.mineral_relation, f.crystal_system, f.space_group) == (
        "CoNTeO2", "Pb(Zr_(1-x)Ti_x)O3", "derived", "orthorhombic", "Pmm2")
    f = one(SHIPPED[2][3])
    assert f.dimensionality == 2 and f.dimensionality_stated
    assert [(c.count, c.formula, c.kind, c.orientations) for c in f.components] == [
        (1, "SrO", "ribbon", ((0, 0, 1),)), (1, "ZrN2", "sheet", ((0, 0, 1),))]
    f = one("The structure consists of one Cu cluster inside a CdN3 framework.")
    assert f.dimensionality == 3 and not f.dimensionality_stated
    assert [(c.formula, c.kind, c.host) for c in f.components] == [
        ("Cu", "cluster", False), ("CdN3", "framework", True)]
    f = one("C is Clathrate-like structured and crystallizes in the triclinic P1 space group.")
    assert (f.mineral, f.mineral_relation, f.space_group) == ("Clathrate", "like", "P1")
    f = one("The structure is three-dimensional.")
    assert f.dimensionality == 3 and f.dimensionality_stated


def test_unknown_sentences_are_listed_not_dropped():
    text = CUASN3 + " Its band gap is 3.1 eV. It is shiny."
    f = parse_description(text)
    assert f.unparsed == ["Its band gap is 3.1 eV.", "It is shiny."]
    assert f.kinds[-2:] == ["unknown", "unknown"] and len(f.kinds) == len(f.sentences) == 9
    assert f.understood == pytest.approx(7 / 9)
    assert sentence_shape("There is one shorter (2.13 Å) and one longer (2.21 Å) Zn(1)-O(2) "
                          "bond length.") == ("There is <n> shorter (<x> Å) and <n> longer "
                                              "(<x> Å) <site>-<site> bond length.")


# ---------------------------------------------------------------------------- end to end
def test_perovskite_end_to_end():
    f = parse_description(CUASN3)
    assert f.unparsed == [] and f.kinds == ["formula_space_group", "site", "bond_lengths", "site",
                                            "tilt", "bond_lengths", "site"]
    assert (f.formula, f.mineral, f.mineral_relation, f.crystal_system, f.space_group) == (
        "CuAsN3", "(Cubic) Perovskite", "exact", "cubic", "Pm-3m")
    assert f.dimensionality == 3 and f.elements == ["Cu", "As", "N"]
    assert list(f.sites) == ["Cu(1)", "As(1)", "N(1)"]

    cu, as_, n = f.sites["Cu(1)"], f.sites["As(1)"], f.sites["N(1)"]
    assert (cu.coordination, cu.polyhedron, cu.polyhedron_formula, cu.shape) == (
        12, "cuboctahedra", "CuN12", "cuboctahedral")
    assert [(x.label, x.count, x.equivalent) for x in cu.neighbours] == [("N(1)", 12, True)]
    assert cu.connectivity == ("corner", "face") and not cu.distorted
    assert [(x.kind, x.count, x.label, x.polyhedron) for x in cu.shares] == [
        ("corner", 12, "Cu(1)", "cuboctahedra"), ("face", 6, "Cu(1)", "cuboctahedra"),
        ("face", 8, "As(1)", "octahedra")]
    assert cu.bond_ranges() == {"N": (2.67, 2.67)} and cu.tilt_min is None

    assert (as_.coordination, as_.polyhedron, as_.shape, as_.connectivity) == (
        6, "octahedra", "octahedral", ("corner", "face"))
    assert (as_.tilt_min, as_.tilt_max) == (0.0, 0.0)
    assert as_.bond_ranges() == {"N": (1.89, 1.89)}

    assert (n.geometry, n.coordination, n.polyhedron) == ("linear", 6, None)
    assert n.neighbour_counts() == {"Cu": 4, "As": 2}
    assert n.bonds == []                                   # stated once, under Cu and As
    assert n.bond_ranges() == {"Cu": (2.67, 2.67), "As": (1.89, 1.89)}
    assert n.bond_ranges(implied=False) == {}
    assert [b.form for b in n.implied_bonds] == ["implied_all", "implied_all"]


def test_perovskite_with_two_oxygen_sites():
    f = parse_description(CSZNO2F)
    assert f.unparsed == [] and f.inequivalent_sites == {"O": 2}
    assert f.mineral_relation == "derived"
    o1, o2 = f.sites_of("O")
    assert (o1.label, o1.ordinal, o2.label, o2.ordinal) == ("O(1)", 1, "O(2)", 2)
    assert o1.mixture and o1.distorted and o1.connectivity == ("corner", "edge")
    assert (o1.polyhedron, o1.coordination, o1.tilt_max) == ("octahedra", 6, 2.0)
    assert (o2.geometry, o2.distorted, o2.tilt_min) == ("linear", True, None)
    zn = f.sites["Zn(1)"]
    assert zn.bond_ranges() == {"O": (2.13, 2.21), "F": (2.17, 2.17)}
    assert (zn.tilt_min, zn.tilt_max) == (0.0, 2.0)


def test_carbon_with_six_inequivalent_sites():
    f = parse_description(CARBON)
    assert f.unparsed == [] and f.inequivalent_sites == {"C": 6}
    assert (f.formula, f.mineral, f.crystal_system, f.space_group) == (
        "C", None, "triclinic", "P-1")
    assert list(f.sites) == [f"C({i})" for i in range(1, 7)]
    assert [s.ordinal for s in f.sites.values()] == [1, 2, 3, 4, 5, 6]
    assert [s.coordination for s in f.sites.values()] == [4, 4, 4, 4, 3, 4]
    assert [s.shape for s in f.sites.values()] == [
        "trigonal pyramidal", "tetrahedral", "tetrahedral", "tetrahedral", "trigonal planar",
        "trigonal pyramidal"]
    c1 = f.sites["C(1)"]
    assert c1.mixture and c1.connectivity == ("corner", "edge")
    assert [(b.neighbour, b.form, b.values) for b in c1.bonds] == [
        ("C(2)", "single", (1.50,)), ("C(6)", "spread", (1.52, 1.55))]
    assert f.sites["C(4)"].bonds[1].values == (1.56, 1.59)
    assert f.sites["C(2)"].bonds[1].form == "both"
    assert f.bond_forms == ["single", "spread", "single", "both", "single", "single", "single",
                            "shorter_longer", "single"]
    # C(6) states no bond; its C(1) and C(3) bonds come from those sites' sentences
    assert f.sites["C(6)"].bonds == []
    assert f.sites["C(6)"].bond_range("C") == (1.49, 1.55)


def test_a_label_used_for_two_sites_keeps_both():
    text = shipped("carbon_24", "val")["C-189732-2937-11"]
    f = parse_description(text)
    assert f.unparsed == [] and f.inequivalent_sites == {"C": 14}
    assert len(f.sites) == 14 and len(f.sites_of("C")) == 14
    assert list(f.sites)[:5] == ["C(1)", "C(2)", "C(3)", "C(4)", "C(1)#2"]
    first, fifth = f.sites["C(1)"], f.sites["C(1)#2"]
    assert (first.ordinal, fifth.ordinal, fifth.label) == (1, 5, "C(1)")
    # "There is one shorter (1.50 Å) and one longer (1.53 Å) C(1)-C(7,7)" follows the first,
    # "… (1.50 Å) and one longer (1.54 Å) C(1)-C(7,7)" the fifth
    assert first.bond_range("C", implied=False) == (1.46, 1.53)
    assert fifth.bond_range("C", implied=False) == (1.46, 1.54)
    # C(7) (two sites, no sentence of its own) sees both C(1) sites' bonds
    c7 = f.sites["C(7)"]
    assert c7.bonds == [] and (1.5, 1.54) in [b.values for b in c7.implied_bonds]
    assert f.sites["C(7)#2"].bond_ranges() == c7.bond_ranges()


# --------------------------------------------------------------------------- site_features
def test_site_features_gathers_one_elements_sites_only():
    f = parse_description(CSZNO2F)
    o = site_features(f, "O")
    assert o["n_sites"] == 2 and [s["label"] for s in o["sites"]] == ["O(1)", "O(2)"]
    assert all(s["element"] == "O" for s in o["sites"])
    assert o["coordination"] == {"mean": 6.0, "min": 6, "max": 6}
    assert o["shapes"] == ["linear", "octahedral"]
    assert o["geometry"] == ["distorted", "linear", "octahedral"]
    assert o["polyhedra"] == ["octahedra"] and o["connectivity"] == ["corner", "edge"]
    assert o["tilt"] == [0.0, 2.0]
    assert o["neighbour_counts"] == {"Cs": [4, 4], "Zn": [2, 2]}
    # O's bond lengths are stated under Cs and Zn; only those to O's neighbours appear
    assert o["bond_lengths"] == {"Cs": [3.07, 3.07], "Zn": [2.13, 2.21]}
    assert site_features(f, "O", implied_bonds=False)["bond_lengths"] == {}

    zn = site_features(f, "Zn")
    assert zn["n_sites"] == 1 and zn["bond_lengths"] == {"O": [2.13, 2.21], "F": [2.17, 2.17]}
    sr = site_features(f, "Sr")
    assert (sr["n_sites"], sr["sites"], sr["coordination"], sr["bond_lengths"], sr["tilt"],
            sr["shapes"]) == (0, [], None, {}, None, [])

    c = site_features(parse_description(CARBON), "C")
    assert c["n_sites"] == 6
    assert c["coordination"] == {"mean": 23 / 6, "min": 3, "max": 4}
    assert c["bond_lengths"] == {"C": [1.38, 1.59]}
    assert c["shapes"] == ["tetrahedral", "trigonal planar", "trigonal pyramidal"]


def test_parsing_report_counts():
    r = parsing_report({"a": CUASN3, "b": CARBON + " Unheard of 3 things."}, top=5)
    assert r["descriptions"] == 2 and r["descriptions_fully_understood"] == 1
    assert r["not_understood"] == 1 and r["sentences"] == 7 + 17 + 1
    assert r["top_not_understood_shapes"] == [
        {"shape": "Unheard of <x> things.", "count": 1, "example": "Unheard of 3 things."}]
    assert r["sentences_per_kind"]["site"] == 9 and r["sentences_per_kind"]["tilt"] == 1
    assert r["share_of_sites_with"]["coordination"] == 1.0
    assert r["checks"]["inequivalent_match"] == r["checks"]["inequivalent_statements"] == 1
