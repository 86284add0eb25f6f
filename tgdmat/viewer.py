"""Crystal pictures that need neither a kernel nor a network: 3-D views and 2-D projections.

* :func:`crystal_views_html` — an HTML fragment with one rotatable 3-D view per crystal, drawn by
  3Dmol.js. The script (version :data:`VIEWER_VERSION`, BSD-3-Clause) ships inside the package
  (``tgdmat/_static/3Dmol-min.js``) and is *inlined* into the HTML, so a static page (the book)
  shows the views offline; no ``<script src="https://...">`` is ever emitted. Inline it once per
  page (``include_script=True`` on the first fragment) or once per output (a live notebook).
* :func:`projection_figure` — matplotlib projections of the unit cells along ``c`` with an element
  key and axes in Å (:func:`tgdmat.plot.plot_structure`).
* :func:`cif_download_link` — a ``data:`` link that saves a crystal as CIF from a static page.

The colours of both pictures are the same per element (:func:`element_colour`), so the key of the
projection reads the 3-D view too.

    from IPython.display import HTML
    HTML(crystal_views_html(structures, titles=[s.composition.reduced_formula for s in structures]))
"""
from __future__ import annotations

import base64
import html
import json
import uuid
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

#: the bundled 3Dmol.js (npm package ``3dmol``; see ``tgdmat/_static/README.md``)
VIEWER_FILE = Path(__file__).resolve().parent / "_static" / "3Dmol-min.js"
VIEWER_VERSION = "2.5.5"
VIEWER_SHA256 = "f7cc78921ae72e7623e89cdd111434f58c2efddd2ffda1cd212644b406fb8016"
#: marks an inlined copy of the script (tests and readers can find it in a page)
SCRIPT_MARKER = f"tgdmat-3dmol-{VIEWER_VERSION}"


@lru_cache(maxsize=1)
def viewer_script() -> str:
    """The bundled 3Dmol.js source (about 0.5 MB); raises ``FileNotFoundError`` naming the file."""
    if not VIEWER_FILE.is_file():
        raise FileNotFoundError(f"the bundled 3-D viewer {VIEWER_FILE} is missing: reinstall tgdmat "
                                "(it is package data of tgdmat/_static)")
    return VIEWER_FILE.read_text(encoding="utf-8")


def script_tag() -> str:
    """``<script>`` that defines ``window.$3Dmol`` from the inlined bundle (runs once per page).

    The bundle is a UMD module: where a page has RequireJS (``define.amd``; Jupyter Book adds it
    on pages with widgets, classic Jupyter always has it) it would register an anonymous AMD
    module instead of the global, so ``define``, ``module`` and ``exports`` are shadowed.
    """
    src = viewer_script().replace("</script", "<\\/script")
    return (f'<script data-tgdmat="{SCRIPT_MARKER}">\n'
            "if (!window.$3Dmol) { (function () { var define, module, exports;\n"
            f"{src}\n"
            "}).call(window); }\n</script>")


def element_colour(z: int) -> str:
    """``"#rrggbb"`` of element ``z``, the colour :func:`tgdmat.plot.plot_structure` draws it in."""
    from matplotlib.colors import to_hex

    from tgdmat.plot import _colour

    return to_hex(_colour(int(z)))


def _symbol(z: int) -> str:
    from pymatgen.core.periodic_table import Element

    return Element.from_Z(int(z)).symbol


def _as_structure(item):
    from pymatgen.core import Structure

    if isinstance(item, str):
        return Structure.from_str(item, fmt="cif")
    return item


def to_cif(structure) -> str:
    """CIF text of a pymatgen ``Structure`` (P1, as written by pymatgen's ``CifWriter``)."""
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(structure))


def element_key_html(zs: Sequence[int]) -> str:
    """A one-line key: a coloured disc and the symbol of every element in ``zs``."""
    items = []
    for z in sorted(set(int(z) for z in zs)):
        items.append(f'<span style="display:inline-block;margin-right:0.8em;white-space:nowrap">'
                     f'<span style="display:inline-block;width:0.9em;height:0.9em;border-radius:50%;'
                     f'border:1px solid #333;vertical-align:middle;background:{element_colour(z)}"></span> '
                     f'{html.escape(_symbol(z))}</span>')
    return '<div class="tgdmat-element-key" style="font-size:0.85em">' + "".join(items) + "</div>"


def cif_download_link(structure, filename: str = "crystal.cif", label: str | None = None) -> str:
    """An ``<a download>`` link whose ``data:`` URI holds the crystal's CIF (works offline)."""
    cif = structure if isinstance(structure, str) else to_cif(structure)
    b64 = base64.b64encode(cif.encode("utf-8")).decode("ascii")
    return (f'<a download="{html.escape(filename)}" href="data:chemical/x-cif;base64,{b64}">'
            f"{html.escape(label or 'download ' + filename)}</a>")


def _view_js(div_id: str, cif: str, colours: dict[str, int]) -> str:
    data = json.dumps({"cif": cif, "colours": colours}).replace("</", "<\\/")
    return f"""<script>
(function () {{
  var d = {data};
  function draw() {{
    var el = document.getElementById("{div_id}");
    if (!el || !window.$3Dmol) return false;
    if (el.getAttribute("data-drawn")) return true;
    var v = $3Dmol.createViewer(el, {{backgroundColor: "white"}});
    var m = v.addModel(d.cif, "cif", {{doAssembly: true, normalizeAssembly: true}});
    var scheme = {{prop: "elem", map: d.colours}};
    v.setStyle({{}}, {{sphere: {{scale: 0.3, colorscheme: scheme}}, stick: {{radius: 0.1, colorscheme: scheme}}}});
    v.addUnitCell(m, {{box: {{color: "gray"}}, alabel: "a", blabel: "b", clabel: "c"}});
    v.zoomTo();
    v.rotate(-25, "x");  // tilt the cell a little so that it reads as 3-D
    v.rotate(30, "y");
    v.render();
    el.setAttribute("data-drawn", "1");
    return true;
  }}
  if (!draw()) {{
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
    else setTimeout(draw, 50);
  }}
}})();
</script>"""


def crystal_view_html(structure, title: str | None = None, caption: str | None = None, width: int = 260,
                      height: int = 260, download: str | None = None) -> str:
    """One 3-D view (a ``<figure>``) of ``structure`` (a ``Structure`` or CIF text), without the script.

    ``title`` goes above the view, ``caption`` below it with the element key; ``download``
    (a file name) adds a CIF download link. Put :func:`script_tag` once on the page before or
    after it (or use :func:`crystal_views_html`).
    """
    s = _as_structure(structure)
    cif = to_cif(s)
    zs = [site.specie.Z for site in s]
    colours = {_symbol(z): int(element_colour(z)[1:], 16) for z in set(zs)}
    div_id = f"tgdmat-view-{uuid.uuid4().hex[:12]}"
    parts = [f'<figure class="tgdmat-crystal" style="display:inline-block;vertical-align:top;margin:4px;'
             f'width:{width}px">']
    if title:
        parts.append(f'<div style="font-weight:600;font-size:0.9em">{html.escape(title)}</div>')
    parts.append(f'<div id="{div_id}" style="width:{width}px;height:{height}px;position:relative;'
                 f'border:1px solid #ccc"></div>')
    parts.append("<figcaption>" + element_key_html(zs))
    if caption:
        parts.append(f'<div style="font-size:0.8em">{html.escape(caption)}</div>')
    if download:
        parts.append(f'<div style="font-size:0.8em">{cif_download_link(cif, download)}</div>')
    parts.append("</figcaption></figure>")
    parts.append(_view_js(div_id, cif, colours))
    return "\n".join(parts)


def crystal_views_html(structures: Sequence, titles: Sequence[str] | None = None,
                       captions: Sequence[str] | None = None, downloads: Sequence[str] | None = None,
                       include_script: bool = True, width: int = 260, height: int = 260) -> str:
    """3-D views of ``structures`` (``Structure`` objects or CIF texts) side by side, as HTML.

    ``include_script``: inline the bundled 3Dmol.js (about 0.5 MB) — once per page is enough;
    a second copy is harmless (it does nothing when ``$3Dmol`` exists). The fragment loads
    nothing from the network.
    """
    n = len(structures)
    titles = list(titles) if titles is not None else [None] * n
    captions = list(captions) if captions is not None else [None] * n
    downloads = list(downloads) if downloads is not None else [None] * n
    views = [crystal_view_html(s, t, c, width, height, d) for s, t, c, d in zip(structures, titles, captions, downloads)]
    body = '<div class="tgdmat-crystal-views">' + "\n".join(views) + "</div>"
    return (script_tag() + "\n" + body) if include_script else body


def projection_figure(structures: Sequence, titles: Sequence[str] | None = None, ncols: int = 4, axis: int = 2,
                      size: float = 2.8):
    """Matplotlib figure: every crystal projected along lattice vector ``axis`` (default ``c``).

    One panel per crystal (:func:`tgdmat.plot.plot_structure`: atoms coloured by element with a
    key in each panel, the cell outline, axes labelled ``x (Å)`` / ``y (Å)``). Returns the figure.
    """
    import matplotlib.pyplot as plt

    from tgdmat.plot import plot_structure

    structures = [_as_structure(s) for s in structures]
    n = len(structures)
    if n == 0:
        raise ValueError("projection_figure: no structures")
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    titles = list(titles) if titles is not None else [s.composition.reduced_formula for s in structures]
    for ax, s, t in zip(axes.flat, structures, titles):
        plot_structure(s, ax=ax, axis=axis, title=t, legend=True)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig
