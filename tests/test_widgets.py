"""The interactive sampling panel (tgdmat.widgets) and the offline crystal pictures (tgdmat.viewer).

The panel is driven the way a reader drives it: fields are set and the Sample button's click
handler is called, without a display or a front end. Few steps and one sample keep it fast.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "results" / "gallery_perov_5.json"
CDN_HOSTS = ("cdn.jsdelivr", "unpkg.com", "cdnjs", "3dmol.org", "3dmol.csb.pitt.edu", "googleapis")

pytest.importorskip("ipywidgets")

#: elements of the training splits (official val minus the held-out slice), as the checkpoints' configs make them
_TRAIN_ELEMENTS = {
    "carbon_24": [6],
    "perov_5": [3, 4, 5, 7, 8, 9, 11, 12, 13, 14, 16, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 37,
                38, 39, 40, 41, 42, 44, 45, 46, 47, 48, 49, 50, 51, 52, 55, 56, 57, 72, 73, 74, 75, 76, 77, 78, 79, 80,
                81, 82, 83],
}


@pytest.fixture(scope="module")
def panel():
    from tgdmat.widgets import sampling_panel

    p = sampling_panel(device="cpu", num_steps=3, n=1)
    # CSP requests are checked against the training split's elements, which a fresh test cache
    # would rebuild from the CSVs (~30 s for both data sets); that check has its own tests, so
    # here the CSP models are told their (known) element sets up front.
    for label, path in p.checkpoints.items():
        if "csp" in path.name:
            p.checkpoint.value = label
            p.generator().info.setdefault("train_elements", _TRAIN_ELEMENTS[p.dataset])
    p.checkpoint.value = next(iter(p.checkpoints))
    return p


def _structures():
    """Three small crystals built by hand (no data set to load): cubic SrTiO3, CsCl, a carbon cell."""
    from pymatgen.core import Lattice, Structure

    srtio3 = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                       [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    carbon = Structure(Lattice.hexagonal(2.46, 6.7), ["C"] * 4,
                       [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    return [srtio3, cscl, carbon]


def _html_outputs(panel) -> str:
    return "".join(o["data"].get("text/html", "") for o in panel.results.outputs)


def _select(panel, file_name: str):
    label = next(k for k, v in panel.checkpoints.items() if v.name == file_name)
    panel.checkpoint.value = label
    panel.steps.value, panel.n.value = 3, 1


def test_panel_builds_without_a_display(panel):
    import ipywidgets as W

    from tgdmat.widgets import CHECKPOINTS

    assert isinstance(panel.box, W.VBox)
    assert set(panel.checkpoint.options) == set(CHECKPOINTS)  # all committed checkpoints are offered
    assert panel.structures == [] and panel.results.outputs == ()  # building samples nothing
    assert panel.steps.value == 3 and panel.n.value == 1
    # the understood facts are shown before any click
    assert "formula = SrTiO3" in panel.understood.value and "space_group = 221" in panel.understood.value
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_sample_click_generates_and_shows_understood_facts(panel):
    from pymatgen.core import Structure

    from tgdmat.viewer import SCRIPT_MARKER

    _select(panel, "perov_5_gen_text_facts.pt")
    panel.value.value = "1.2"
    panel.sample_button.click()
    assert panel.error is None, panel.error
    assert len(panel.structures) == 1 and isinstance(panel.structures[0], Structure)
    facts = panel.structures[0].properties["understood"]
    assert facts["formula"] == "SrTiO3" and facts["space_group"] == 221 and facts["heat_ref"] == pytest.approx(1.2)
    assert "The formation energy per atom is 1.2 eV/atom." in panel.prompt_sent
    row = panel.rows[0]
    assert {"structural_valid", "compositional_valid", "valid", "space_group", "prompt_facts_met"} <= set(row)
    assert set(row["prompt_facts_met"]) == {"formula", "elements", "crystal_system", "space_group"} - {"elements"}
    html = _html_outputs(panel)
    assert "prompt sent" in html and SCRIPT_MARKER in html and "data:chemical/x-cif;base64," in html
    assert any("image/png" in o["data"] for o in panel.results.outputs)  # the 2-D projection
    assert "heat_ref = 1.2" in panel.understood.value
    assert not panel.sample_button.disabled
    # by default a generated crystal holds only the elements the prompt names (Sr, Ti, O here)
    assert panel.stated_elements.value and not panel.stated_elements.disabled
    panel.n.value = 4
    panel.sample_button.click()
    assert panel.error is None, panel.error
    assert all({el.symbol for el in s.composition.elements} <= {"Sr", "Ti", "O"} for s in panel.structures)


def test_csp_models_sample_the_composition(panel):
    _select(panel, "perov_5_csp_long_text_facts.pt")
    assert panel.stated_elements.disabled and panel.seen_elements.disabled  # CSP models are given their atoms
    panel.sample_button.click()
    assert panel.error is None, panel.error
    assert [s.composition.reduced_formula for s in panel.structures] == ["SrTiO3"]
    _select(panel, "carbon_24_csp_text_facts.pt")
    assert panel.formula.value == "C" and panel.atoms.value == 8
    panel.sample_button.click()
    assert panel.error is None, panel.error
    assert len(panel.structures[0]) == 8 and panel.structures[0].composition.reduced_formula == "C"
    # a CSP model without a composition says what is missing instead of failing
    panel.formula.value, panel.prompt.value = "", "A hexagonal cell."
    panel.sample_button.click()
    assert panel.structures == [] and "needs a composition" in panel.error and "needs a composition" in panel.status.value


def test_contradictions_and_unread_words_are_shown(panel):
    _select(panel, "perov_5_gen_text_facts.pt")
    panel.space_group.value = ""
    panel.prompt.value = "A tetragonal oxynitride; its band gap is above 2 eV."
    assert "band gap is above 2 eV" in panel.understood.value and "not understood" in panel.understood.value
    panel.prompt.value = "The formula is BaTiO3."  # the formula field still says SrTiO3
    assert "contradicts" in panel.understood.value
    panel.sample_button.click()
    assert panel.structures == [] and "two different formulas" in panel.error


def test_compose_prompt_adds_template_sentences_before_the_footer():
    from tgdmat.text.reader import read_prompt
    from tgdmat.widgets import compose_prompt

    p = compose_prompt("Below is a description of a bulk material. Generate the material:", "SrTiO3", "Pm-3m", "0.5")
    assert p == ("Below is a description of a bulk material. The chemical formula is SrTiO3. The space group is "
                 "Pm-3m. The formation energy per atom is 0.5 eV/atom. Generate the material:")
    facts = read_prompt(p, "perov_5").facts
    assert (facts.formula, facts.space_group, facts.properties) == ("SrTiO3", 221, {"heat_ref": 0.5})
    assert compose_prompt("A cubic crystal", space_group="221") == "A cubic crystal. The spacegroup number is 221."
    assert compose_prompt("", "", "", "") is None


def _strip_bundled_script(html: str) -> str:
    from tgdmat.viewer import script_tag

    tag = script_tag()
    assert html.count(tag) == 1, "the bundled viewer is inlined exactly once"
    return html.replace(tag, "")


def test_offline_viewer_html_inlines_the_script_and_fetches_nothing():
    from tgdmat.viewer import SCRIPT_MARKER, crystal_views_html, viewer_script

    structures = _structures()[:2]
    html = crystal_views_html(structures, titles=["a", "b"], downloads=["a.cif", "b.cif"])
    assert SCRIPT_MARKER in html and viewer_script()[:2000] in html  # the bundled 3Dmol.js itself
    assert not re.search(r"<script[^>]*\ssrc=", html, re.I), "no external script"
    assert not any(host in html.lower() for host in CDN_HOSTS)
    rest = _strip_bundled_script(html)
    assert not re.search(r"https?://", rest), "the HTML around the bundled script names no URL"
    assert rest.count("$3Dmol.createViewer") == 2 and rest.count("download=") == 2
    assert crystal_views_html(structures, include_script=False).count(SCRIPT_MARKER) == 0


def test_bundled_viewer_is_the_recorded_version_with_its_licence():
    from tgdmat.viewer import VIEWER_FILE, VIEWER_SHA256, VIEWER_VERSION

    data = VIEWER_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == VIEWER_SHA256
    assert len(data) < 1_000_000
    assert f"3dmol v{VIEWER_VERSION}" in (VIEWER_FILE.parent / "3Dmol-min.js.LICENSE.txt").read_text()
    assert "BSD" in (VIEWER_FILE.parent / "3Dmol-LICENSE.txt").read_text()
    readme = (VIEWER_FILE.parent / "README.md").read_text()
    assert VIEWER_VERSION in readme and VIEWER_SHA256 in readme
    assert "</script" not in data.decode("utf-8").lower()  # safe to inline


def test_cif_download_link_holds_the_crystal():
    from pymatgen.core import Structure

    from tgdmat.viewer import cif_download_link

    s = _structures()[0]
    link = cif_download_link(s, "x.cif")
    b64 = re.search(r"base64,([A-Za-z0-9+/=]+)", link).group(1)
    back = Structure.from_str(base64.b64decode(b64).decode(), fmt="cif")
    assert back.composition.reduced_formula == s.composition.reduced_formula and len(back) == len(s)


def test_projection_figure_has_axis_labels_and_an_element_key():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tgdmat.viewer import projection_figure

    structures = _structures()
    fig = projection_figure(structures, ncols=2)
    used = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(used) == 3 and len(fig.axes) == 4  # the spare panel is switched off
    for ax, s in zip(used, structures):
        assert ax.get_xlabel() == "x (Å)" and ax.get_ylabel() == "y (Å)"
        key = {t.get_text() for t in ax.get_legend().get_texts()}
        assert key == {el.symbol for el in s.composition.elements}
    plt.close(fig)


@pytest.mark.skipif(not GALLERY.is_file(), reason="results/gallery_perov_5.json not made yet")
def test_committed_gallery_holds_readable_crystals():
    from pymatgen.core import Structure

    res = json.loads(GALLERY.read_text())
    assert res["command"].startswith("python benchmarks/make_gallery.py --checkpoint results/checkpoints/")
    assert 4 <= len(res["entries"]) <= 10
    sources = {e["source"].split(" ")[0] for e in res["entries"]}
    assert {"TGDMat", "free-written"} <= sources  # template and free-written prompts
    n = 0
    for e in res["entries"]:
        assert e["prompt"] and isinstance(e["understood"], dict)
        for s in e["samples"]:
            st = Structure.from_str(s["cif"], fmt="cif")
            assert st.composition.reduced_formula == s["formula"] and len(st) == s["num_atoms"]
            assert isinstance(s["valid"], bool)
            n += 1
    assert n == res["summary"]["n_samples"]
