"""Interactive sampling in a live kernel (Jupyter, Colab): a panel of ipywidgets.

    from tgdmat.widgets import sampling_panel
    panel = sampling_panel()      # builds the controls; nothing is sampled yet
    panel                         # show it, write a prompt, press "Sample"

The panel has a prompt box and fact fields (formula, space group, the data set's property value,
atoms per cell) that are added to the prompt as TGDMat's template sentences; a checkpoint
choice (a generation model, or a CSP model that needs a composition); guidance scale, steps,
number of samples and seed; and a *Sample* button. While you type it shows what the prompt is
understood as (:meth:`tgdmat.sample.CrystalGenerator.read`: the facts the model is conditioned
on, and the words it did not understand, with the reason). A click samples and shows every
crystal's formula, symmetry, validity (:func:`tgdmat.metrics.crystal_validity`), which stated
facts it meets (:func:`tgdmat.metrics.prompt_fidelity`), a CIF download link, a 3-D view and a
2-D projection with an element key (:mod:`tgdmat.viewer`; both work offline).

Everything a click produced stays on the panel object (:attr:`SamplingPanel.structures`,
``.reading``, ``.prompt_sent``, ``.validity``, ``.error``), so a notebook can use the crystals
afterwards. ``ipywidgets`` (the ``book`` extra) is imported when a panel is built.
"""
from __future__ import annotations

import html
import os
import warnings
from pathlib import Path

#: the committed checkpoints the panel offers: label -> file name in ``results/checkpoints``
CHECKPOINTS: dict[str, str] = {
    "Perov-5 · generation · text+facts": "perov_5_gen_text_facts.pt",
    "Perov-5 · CSP · long text+facts": "perov_5_csp_long_text_facts.pt",
    "Carbon-24 · CSP · text+facts": "carbon_24_csp_text_facts.pt",
}

#: what the prompt box starts with, per data set (fact fields fill in the rest)
EXAMPLE_PROMPTS: dict[str, dict[str, str]] = {
    "perov_5": {"text": "Below is a description of a bulk material. The crystal system is cubic. Generate the material:",
                "formula": "SrTiO3", "space_group": "221", "value": "", "atoms": "0"},
    "carbon_24": {"text": "A carbon allotrope with a hexagonal cell.", "formula": "C", "space_group": "",
                  "value": "", "atoms": "8"},
}


def default_checkpoints(folder: str | os.PathLike | None = None) -> dict[str, Path]:
    """The :data:`CHECKPOINTS` present in ``folder`` (default: the committed ``results/checkpoints``)."""
    if folder is None:
        from tgdmat.paths import results_dir

        folder = results_dir() / "checkpoints"
    folder = Path(folder)
    found = {label: folder / name for label, name in CHECKPOINTS.items() if (folder / name).is_file()}
    if not found:
        raise FileNotFoundError(f"none of the checkpoints {sorted(CHECKPOINTS.values())} is in {folder}")
    return found


def compose_prompt(text: str = "", formula: str = "", space_group: str = "", value: str = "",
                   dataset: str = "perov_5") -> str | None:
    """The prompt the model gets: ``text`` plus one template sentence per filled fact field.

    The sentences are TGDMat's (``The chemical formula is SrTiO3.``, ``The spacegroup number is
    221.`` — or ``The space group is Pm-3m.`` for a symbol —, ``The formation energy per atom is
    1.2 eV/atom.``) and go before a closing ``Generate the material:`` when the text has one.
    Returns ``None`` when everything is empty (an unconditioned sample).
    """
    from tgdmat.text.facts import DATASET_PROPERTIES
    from tgdmat.text.prompts import FOOTER, PROPERTY_PHRASES, PROPERTY_UNITS

    text = (text or "").strip()
    sentences = []
    if formula and formula.strip():
        sentences.append(f"The chemical formula is {formula.strip()}.")
    if space_group and space_group.strip():
        sg = space_group.strip()
        sentences.append(f"The spacegroup number is {sg}." if sg.isdigit() else f"The space group is {sg}.")
    if value is not None and str(value).strip():
        prop = DATASET_PROPERTIES[dataset][0]
        sentences.append(f"The {PROPERTY_PHRASES[prop]} is {str(value).strip()} {PROPERTY_UNITS[prop]}.")
    if not sentences:
        return text or None
    extra = " ".join(sentences)
    if text.endswith(FOOTER):
        head = text[: -len(FOOTER)].rstrip()
        return f"{head} {extra} {FOOTER}".strip()
    if text and text[-1] not in ".!?:":
        text += "."
    return f"{text} {extra}".strip()


def _show(value) -> str:
    if isinstance(value, (tuple, list, frozenset, set)):
        return ", ".join(map(str, value))
    return str(value)


def reading_html(reading) -> str:
    """HTML of a :class:`tgdmat.text.reader.Reading`: the prompt with understood words in green
    and not-understood ones in orange (hover for the reason), then both lists."""
    from tgdmat.text.prompts import PROPERTY_UNITS

    marks = sorted([(s.start, s.end, "ok", f"{s.kind} = {_show(s.value)}") for s in reading.understood]
                   + [(s.start, s.end, "no", s.reason) for s in reading.not_understood])
    out, pos = [], 0
    for a, b, kind, note in marks:
        if a < pos:  # overlapping marks: keep the first
            continue
        out.append(html.escape(reading.text[pos:a]))
        colour = "#c8f0c8" if kind == "ok" else "#ffd9a8"
        out.append(f'<span title="{html.escape(note)}" style="background:{colour}">{html.escape(reading.text[a:b])}</span>')
        pos = b
    out.append(html.escape(reading.text[pos:]))
    parts = ['<div class="tgdmat-reading">',
             '<div style="font-family:monospace;font-size:0.85em;padding:4px;border:1px solid #ddd">'
             + "".join(out) + "</div>"]
    if reading.understood:
        rows = []
        for s in reading.understood:
            unit = f" {PROPERTY_UNITS[s.kind]}" if s.kind in PROPERTY_UNITS else ""
            rows.append(f"<tr><td>{html.escape(s.text)}</td><td><b>{html.escape(s.kind)}</b> = "
                        f"{html.escape(_show(s.value))}{html.escape(unit)}</td></tr>")
        parts.append('<table style="font-size:0.85em;margin-left:0"><tr><th>understood: words</th><th>read as</th></tr>'
                     + "".join(rows) + "</table>")
    else:
        parts.append("<div><b>understood:</b> nothing (the sample is conditioned on the sentence embedding "
                     "alone)</div>")
    if reading.not_understood:
        items = "".join(f"<li><span style='background:#ffd9a8'>{html.escape(s.text)}</span>: "
                        f"{html.escape(s.reason)}</li>" for s in reading.not_understood)
        parts.append(f'<div style="font-size:0.85em"><b>not understood (ignored):</b><ul>{items}</ul></div>')
    unused = reading.unused
    if unused:
        items = ", ".join(html.escape(f"{s.text} ({s.kind})") for s in unused)
        parts.append(f'<div style="font-size:0.85em"><b>not used by the {html.escape(str(reading.dataset))} '
                     f"model:</b> {items}</div>")
    parts.append("</div>")
    return "".join(parts)


def describe(structures, reading=None) -> list[dict]:
    """One plain dict per crystal: formula, atoms, space group and crystal system (spglib at
    0.1 Å), validity, and — when a reading is given — which stated facts it meets."""
    from tgdmat.metrics import crystal_validity, observed_facts, prompt_fidelity

    rows = []
    hits = [None] * len(structures)
    if reading is not None and not reading.facts.is_empty:
        fid = prompt_fidelity(structures, [reading.facts] * len(structures), return_per_sample=True)
        hits = fid["per_sample"]
    for s, hit in zip(structures, hits):
        v = crystal_validity(s, time_limit_s=2.0)
        seen = observed_facts(s, symprec=0.1)
        rows.append({"formula": s.composition.reduced_formula, "num_atoms": len(s),
                     "space_group": seen["space_group"], "crystal_system": seen["crystal_system"],
                     "structural_valid": v.structural, "compositional_valid": v.compositional, "valid": v.valid,
                     "prompt_facts_met": None if hit is None else {k: b for k, b in hit.items() if b is not None}})
    return rows


def _tick(b) -> str:
    return "—" if b is None else ("✓" if b else "✗")


def results_html(structures, rows: list[dict], include_script: bool = True, name: str = "sample") -> str:
    """The result table (with CIF links) and the 3-D views of ``structures`` as one HTML fragment."""
    from tgdmat.viewer import cif_download_link, crystal_views_html

    head = ("<tr><th>#</th><th>formula</th><th>atoms</th><th>space group (0.1 Å)</th><th>crystal system</th>"
            "<th>struct. valid</th><th>comp. valid</th><th>stated facts met</th><th>CIF</th></tr>")
    body = []
    for i, (s, r) in enumerate(zip(structures, rows)):
        met = r["prompt_facts_met"]
        met_s = "—" if not met else ", ".join(f"{k.replace('_', ' ')} {_tick(b)}" for k, b in met.items())
        body.append(f"<tr><td>{i}</td><td>{html.escape(r['formula'])}</td><td>{r['num_atoms']}</td>"
                    f"<td>{_show(r['space_group'])}</td><td>{_show(r['crystal_system'])}</td>"
                    f"<td>{_tick(r['structural_valid'])}</td><td>{_tick(r['compositional_valid'])}</td>"
                    f"<td>{html.escape(met_s)}</td><td>{cif_download_link(s, f'{name}_{i}.cif', 'CIF')}</td></tr>")
    table = '<table class="tgdmat-samples" style="font-size:0.85em">' + head + "".join(body) + "</table>"
    titles = [f"{i}: {r['formula']}" + ("" if r["valid"] else " (invalid)") for i, r in enumerate(rows)]
    views = crystal_views_html(structures, titles=titles, include_script=include_script, width=220, height=220)
    return table + views


class SamplingPanel:
    """The controls, the click handler and the last click's results (see the module docstring).

    Attributes (widgets): ``checkpoint``, ``prompt``, ``formula``, ``space_group``, ``value``,
    ``atoms``, ``guidance``, ``steps``, ``n``, ``seed``, ``stated_elements`` and ``seen_elements``
    (generation: :attr:`tgdmat.config.SampleConfig.restrict_to_stated_elements` and
    ``mask_unseen_elements``, both on by default), ``sample_button``, ``status``,
    ``understood``, ``results`` (an ``Output`` whose ``outputs`` hold the last results) and
    ``box`` (the whole panel). Results of the last click: ``prompt_sent``, ``reading``,
    ``structures``, ``rows`` (:func:`describe`), ``warnings``, ``error``.
    """

    def __init__(self, checkpoints: dict[str, str | os.PathLike] | None = None, device=None,
                 num_steps: int | None = None, n: int = 2, seed: int = 0):
        import ipywidgets as W

        self.checkpoints = {k: Path(v) for k, v in (checkpoints or default_checkpoints()).items()}
        self.device = device
        self._generators: dict[Path, object] = {}
        self.prompt_sent: str | None = None
        self.reading = None
        self.structures: list = []
        self.rows: list[dict] = []
        self.warnings: list[str] = []
        self.error: str | None = None

        wide = W.Layout(width="95%")
        style = {"description_width": "initial"}
        self.checkpoint = W.Dropdown(options=list(self.checkpoints), description="model", style=style, layout=wide)
        self.model_info = W.HTML()
        self.prompt = W.Textarea(description="prompt", rows=3, style=style, layout=wide, continuous_update=False)
        self.formula = W.Text(description="formula", placeholder="e.g. SrTiO3 (CSP: required)", style=style,
                              continuous_update=False)
        self.space_group = W.Text(description="space group", placeholder="e.g. 221 or Pm-3m", style=style,
                                  continuous_update=False)
        self.value = W.Text(description="property", placeholder="eV/atom", style=style, continuous_update=False)
        self.atoms = W.BoundedIntText(value=0, min=0, max=200, description="atoms per cell (0: from formula)",
                                      style=style)
        self.guidance = W.FloatSlider(value=1.0, min=0.0, max=5.0, step=0.1, description="guidance w", style=style)
        self.steps = W.IntSlider(value=100, min=1, max=1000, description="steps", style=style)
        self.n = W.IntSlider(value=n, min=1, max=8, description="samples", style=style)
        self.seed = W.IntText(value=seed, description="seed", style=style)
        self.stated_elements = W.Checkbox(value=True, description="only the elements the prompt names", indent=False)
        self.seen_elements = W.Checkbox(value=True, description="only elements seen in training", indent=False)
        self.sample_button = W.Button(description="Sample", button_style="primary", icon="play")
        self.status = W.HTML()
        self.understood = W.HTML()
        self.results = W.Output()
        self._num_steps = num_steps
        self.box = W.VBox([
            self.checkpoint, self.model_info, self.prompt,
            W.HBox([self.formula, self.space_group, self.value]),
            W.HBox([self.atoms, self.seed]),
            W.HBox([self.guidance, self.steps, self.n]),
            W.HBox([self.stated_elements, self.seen_elements]),
            W.HBox([self.sample_button, self.status]),
            W.HTML("<b>What the model reads in this prompt</b>"), self.understood,
            self.results,
        ])
        self.checkpoint.observe(self._on_checkpoint, names="value")
        for w in (self.prompt, self.formula, self.space_group, self.value):
            w.observe(self._on_text, names="value")
        self.sample_button.on_click(self.on_sample)
        self._on_checkpoint()

    # ------------------------------------------------------------------ model
    def generator(self):
        """The selected checkpoint's :class:`tgdmat.sample.CrystalGenerator` (loaded once)."""
        from tgdmat.sample import from_pretrained

        path = self.checkpoints[self.checkpoint.value]
        if path not in self._generators:
            self._generators[path] = from_pretrained(path, device=self.device)
        return self._generators[path]

    @property
    def task(self) -> str:
        return self.generator().config.model.task

    @property
    def dataset(self) -> str:
        return self.generator().config.model.dataset

    def _on_checkpoint(self, change=None) -> None:
        from tgdmat.text.facts import DATASET_PROPERTIES
        from tgdmat.text.prompts import PROPERTY_PHRASES, PROPERTY_UNITS

        gen = self.generator()
        cfg = gen.config
        prop = DATASET_PROPERTIES[cfg.model.dataset][0]
        self.value.description = f"{PROPERTY_PHRASES[prop]} ({PROPERTY_UNITS[prop]})"
        self.value.placeholder = "e.g. 1.2" if cfg.model.dataset == "perov_5" else "e.g. -154.5"
        self.guidance.value = float(cfg.sample.guidance_scale)
        self.steps.value = int(self._num_steps or cfg.sample.num_steps or 100)
        ex = EXAMPLE_PROMPTS.get(cfg.model.dataset, EXAMPLE_PROMPTS["perov_5"])
        with self.prompt.hold_trait_notifications():
            self.prompt.value, self.formula.value = ex["text"], ex["formula"]
            self.space_group.value, self.value.value, self.atoms.value = ex["space_group"], ex["value"], int(ex["atoms"])
        lo, hi = (min(gen.num_atoms_hist), max(gen.num_atoms_hist)) if gen.num_atoms_hist else ("?", "?")
        for box in (self.stated_elements, self.seen_elements):  # CSP models are given their atoms
            box.disabled = cfg.model.task != "gen"
        what = ("generation: the model chooses the atoms (a stated formula sets how many)"
                if cfg.model.task == "gen" else
                "crystal structure prediction: give a composition (formula field or the prompt's formula; "
                "atoms per cell to repeat it)")
        self.model_info.value = (f"<small>{html.escape(cfg.model.dataset)} · {html.escape(what)} · conditioned on "
                                 f"{html.escape(cfg.model.conditioning)} · trained on {lo}–{hi} atoms per cell · "
                                 f"{html.escape(str(gen.info.get('checkpoint', '')))}</small>")
        self._on_text()

    def compose(self) -> str | None:
        """The prompt the current fields make (:func:`compose_prompt`)."""
        return compose_prompt(self.prompt.value, self.formula.value, self.space_group.value, self.value.value,
                              self.dataset)

    def _on_text(self, change=None) -> None:
        from tgdmat.text.facts import PromptError

        prompt = self.compose()
        if prompt is None:
            self.reading = None
            self.understood.value = "<i>no prompt: the model samples unconditioned (w is then ignored)</i>"
            return
        try:
            self.reading = self.generator().read(prompt)
            self.understood.value = reading_html(self.reading)
        except PromptError as exc:
            self.reading = None
            self.understood.value = f'<span style="color:#b00">the prompt contradicts itself: {html.escape(str(exc))}</span>'

    # ------------------------------------------------------------------ sampling
    def _composition(self, gen, reading):
        """CSP: the composition to sample (a pymatgen ``Composition``), from the formula and atom count."""
        from pymatgen.core import Composition

        from tgdmat.sample import RequestError

        formula = reading.facts.formula if reading is not None else None
        if formula is None:
            raise RequestError("a CSP model needs a composition: fill in the formula field or state one in the prompt")
        comp = Composition(formula)
        base = int(round(comp.num_atoms))
        atoms = int(self.atoms.value)
        if atoms:
            if atoms % base:
                raise RequestError(f"{atoms} atoms cannot hold {formula} ({base} atoms per formula unit)")
            return comp * (atoms // base)
        allowed = [k for k in sorted(gen.num_atoms_hist) if k % base == 0] or [base]
        return comp * (allowed[0] // base)

    def on_sample(self, button=None) -> list:
        """The *Sample* button's handler: sample, describe, show. Returns the structures."""
        from tgdmat.sample import RequestError
        from tgdmat.text.facts import PromptError

        self.sample_button.disabled = True
        self.status.value = "<i>sampling…</i>"
        self.structures, self.rows, self.warnings, self.error = [], [], [], None
        try:
            gen = self.generator()
            prompt = self.compose()
            reading = gen.read(prompt) if prompt is not None else None
            self.prompt_sent, self.reading = prompt, reading
            settings = dict(num_steps=int(self.steps.value), guidance_scale=float(self.guidance.value),
                            seed=int(self.seed.value))
            n = int(self.n.value)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if gen.config.model.task == "gen":
                    settings.update(restrict_to_stated_elements=bool(self.stated_elements.value),
                                    mask_unseen_elements=bool(self.seen_elements.value))
                    atoms = int(self.atoms.value) or None
                    if prompt is None:
                        made = gen.generate(None, n=n, num_atoms=None if atoms is None else [atoms] * n,
                                            progress=False, **settings)
                    else:
                        made = gen.generate([prompt], n=n, num_atoms=None if atoms is None else [atoms],
                                            progress=False, **settings)
                else:
                    comp = self._composition(gen, reading)
                    made = gen.sample_csp([comp], prompts=None if prompt is None else [prompt], n_samples=n,
                                          progress=False, **settings)[0]
            self.warnings = list(dict.fromkeys(str(w.message) for w in caught))
            self.structures = made
            self.rows = describe(made, reading)
            self._show()
            n_valid = sum(r["valid"] for r in self.rows)
            self.status.value = f"{len(made)} crystal(s), {n_valid} valid · {settings['num_steps']} steps, " \
                                f"w = {settings['guidance_scale']:g}, seed {settings['seed']}"
        except (PromptError, RequestError, ValueError) as exc:
            self.error = str(exc)
            self.status.value = f'<span style="color:#b00">{html.escape(self.error)}</span>'
            self.results.outputs = ()
        finally:
            self.sample_button.disabled = False
        return self.structures

    def _show(self) -> None:
        """Put the last results into :attr:`results` (HTML with the inlined viewer, then a PNG)."""
        import base64
        import io

        import matplotlib.pyplot as plt

        from tgdmat.viewer import projection_figure

        notes = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
        page = (f"<div><b>prompt sent:</b> <code>{html.escape(self.prompt_sent or '(none: unconditioned)')}</code></div>"
                + (f'<div style="font-size:0.85em"><b>notes:</b><ul>{notes}</ul></div>' if notes else "")
                + results_html(self.structures, self.rows, include_script=True))
        fig = projection_figure(self.structures, titles=[f"{i}: {r['formula']}" for i, r in enumerate(self.rows)])
        fig.suptitle("Unit cells projected along c (atoms coloured by element; key in each panel)", fontsize=9)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        png = base64.b64encode(buf.getvalue()).decode("ascii")
        self.results.outputs = (
            {"output_type": "display_data", "metadata": {},
             "data": {"text/html": page, "text/plain": f"{len(self.structures)} crystals"}},
            {"output_type": "display_data", "metadata": {},
             "data": {"image/png": png, "text/plain": "projections along c"}},
        )

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)


def sampling_panel(checkpoints: dict[str, str | os.PathLike] | None = None, device=None,
                   num_steps: int | None = None, n: int = 2, seed: int = 0) -> SamplingPanel:
    """Build the interactive sampling panel (nothing is sampled until *Sample* is pressed).

    Args:
        checkpoints: ``{label: path}`` of the checkpoints to offer (default: the committed ones,
            :func:`default_checkpoints`).
        device: where to sample (default: the GPU when there is one).
        num_steps: the steps slider's start value (default: the checkpoint's saved setting).
        n, seed: start values of the samples slider and the seed box.
    """
    return SamplingPanel(checkpoints, device=device, num_steps=num_steps, n=n, seed=seed)
