"""Sampling API: load a trained model and get pymatgen ``Structure`` objects from prompts.

    gen = tgdmat.from_pretrained("runs/perov_csp/best.pt")
    structures = gen.sample_csp(["SrTiO3"], prompts=["Below is a description ..."], n_samples=4)
    crystals = gen.generate(["Below is a description of a bulk material. ..."], n=8)
    tgdmat.sample.write_cifs(crystals, "out/")

Two generation protocols of the literature are supported: one sample per test prompt with the
test crystal's atom count (TGDMat; the atom count comes from the prompt's formula when it states
one), and ``N`` unconditioned samples whose atom counts are drawn from the training distribution
(CDVAE/DiffCSP; :meth:`CrystalGenerator.generate` with ``prompts=None``).

Every setting that changes a sample (steps, Langevin step size, guidance, seed) comes from the
checkpoint's saved :class:`tgdmat.config.SampleConfig` unless overridden per call, and sampling
runs with the network in ``eval()`` mode (no dropout).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tgdmat.config import Config, SampleConfig


class RequestError(ValueError):
    """A sampling request that contradicts itself or the model; the message names both sides."""


def check_draw_count(n_samples) -> None:
    """Refuse a draw count (``n_samples``, k in match@k) that is not a whole number >= 1."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise RequestError(f"n_samples must be a whole number >= 1, got {n_samples!r}")


_WARNING_KINDS = (("not understood (ignored)", "prompt with words the fact reader did not understand"),
                  ("was understood in the prompt", "prompt with no fact understood"),
                  ("never occurs in the", "composition with elements unseen in training"),
                  ("outside the trained range", "atom count outside the trained range"),
                  ("never stated: not used", "fact the model was trained without"))


def _warning_kind(message: str) -> str:
    """What a request warning of :meth:`Generator.check_request` is about, for counting many of them."""
    return next((kind for phrase, kind in _WARNING_KINDS if phrase in message), "other")


def composition_atoms(composition) -> list[int]:
    """Atomic numbers, one per atom, of a formula string, ``Composition`` or ``Structure``.

    A structure keeps its own atoms and order; a formula is used as written (``"Sr2Ti2O6"`` means
    10 atoms). Raises :class:`RequestError` for an unparseable formula, an element that is not a
    real element (pymatgen reads unknown symbols such as ``X`` as dummy species), fractional or
    non-positive amounts.
    """
    from pymatgen.core import Composition, Element

    if hasattr(composition, "species") and hasattr(composition, "lattice"):
        species = list(composition.species)
        items = [(sp, 1.0) for sp in species]
        name = composition.composition.formula
    else:
        try:
            comp = Composition(composition) if isinstance(composition, str) else composition
            items = list(comp.items())
        except Exception as exc:  # pymatgen raises several types for bad formulas
            raise RequestError(f"composition {composition!r} is not a formula pymatgen can read ({exc})") from None
        name = str(composition)
    if not items:
        raise RequestError(f"composition {name!r} has no atoms")
    zs = []
    for el, amt in items:
        symbol = getattr(el, "symbol", str(el))
        if not isinstance(el, Element) and not isinstance(getattr(el, "element", None), Element):
            raise RequestError(f"composition {name!r}: {symbol!r} is not a chemical element")
        if amt <= 0 or abs(amt - round(amt)) > 1e-6:
            raise RequestError(f"composition {name!r}: {symbol} has amount {amt}; use whole atom counts")
        z = el.Z if isinstance(el, Element) else el.element.Z
        zs += [int(z)] * int(round(amt))
    return zs


def understood_dict(reading) -> dict:
    """The facts of a :class:`tgdmat.text.reader.Reading` as plain JSON (only the stated ones)."""
    f = reading.facts
    out = {k: v for k, v in (("formula", f.formula), ("elements", list(f.elements) if f.elements else None),
                             ("crystal_system", f.crystal_system), ("space_group", f.space_group)) if v is not None}
    out.update(f.properties)
    return out


class CrystalGenerator:
    """A trained :class:`tgdmat.model.TGDMat` with its config, text encoder and statistics."""

    def __init__(self, model, config: Config, property_names, num_atoms_hist: dict[int, float] | None = None,
                 device: torch.device | None = None, info: dict | None = None):
        self.model = model.eval()
        self.config = config
        self.property_names = list(property_names)
        self.num_atoms_hist = num_atoms_hist or {}
        self.device = device or next(model.parameters()).device
        self.info = info or {}
        self._encoder = None

    # ------------------------------------------------------------------ text
    @property
    def encoder(self):
        if self._encoder is None and self.config.model.prompt != "none":
            from tgdmat.text import get_encoder

            self._encoder = get_encoder(self.config.model.text_encoder)
        return self._encoder

    def condition(self, prompts: Sequence[str] | None, n: int, atom_types: Sequence[int] | None = None,
                  num_atoms: Sequence[int] | None = None):
        """Conditioning vectors ``[n, cond_dim]`` for ``prompts`` (validated), or ``None``.

        A model grounded per atom (``ModelConfig.grounding``) also needs the atoms: ``atom_types``
        (Z of every atom, crystals concatenated) and ``num_atoms``; it returns a
        :class:`tgdmat.denoiser.Condition` whose site vectors come from each prompt's sentences
        about the atom's element and whose sentence embeddings are each prompt's sentences.
        """
        if prompts is None or self.config.model.prompt == "none":
            return None
        from tgdmat.conditioning import FactsBatch
        from tgdmat.text import encode_cached, validate_prompt

        prompts = [validate_prompt(p) for p in prompts]
        if len(prompts) != n:
            raise ValueError(f"got {len(prompts)} prompts for {n} crystals")
        emb = encode_cached(self.encoder, prompts).to(self.device)
        facts = None
        if self.model.facts is not None:
            facts = FactsBatch.from_facts([self.usable_facts(self.read(p).facts) for p in prompts],
                                          self.property_names).to(self.device)
        grounding = None
        if self.model.grounded:
            grounding = self._grounding(prompts, atom_types, num_atoms)
        return self.model.condition(emb, facts, grounding)

    def _grounding(self, prompts, atom_types, num_atoms):
        from pymatgen.core.periodic_table import Element

        from tgdmat.conditioning import sentence_embeddings_for, site_vectors_for

        if atom_types is None or num_atoms is None:
            raise RequestError("this model reads the description per atom: it needs the atoms (CSP with a composition)")
        offsets = np.concatenate([[0], np.cumsum(np.asarray(num_atoms, dtype=np.int64))])
        symbols = [[Element.from_Z(int(z)).symbol for z in atom_types[offsets[i]:offsets[i + 1]]]
                   for i in range(len(prompts))]
        grounding = self.config.model.grounding
        atoms = site_vectors_for(prompts, symbols)[0] if "sites" in grounding else None
        sentences = mask = None
        if "attention" in grounding:
            bank, index, _ = sentence_embeddings_for(prompts, self.encoder)
            mask = index >= 0
            sentences = bank[index.clamp_min(0)] * mask.unsqueeze(-1)
        return atoms, sentences, mask

    def read(self, prompt: str):
        """What the model understands of ``prompt``: a :class:`tgdmat.text.reader.Reading`.

        The facts (formula, elements, crystal system, space group, properties; templated or
        free-written, units converted) are what a ``text+facts`` model is conditioned on; the
        spans it did not understand are listed so that nothing is dropped silently.
        """
        cache = self.__dict__.setdefault("_readings", {})
        if prompt not in cache:
            from tgdmat.text.reader import read_prompt

            if len(cache) > 100_000:
                cache.clear()
            cache[prompt] = read_prompt(prompt, dataset=self.config.model.dataset)
        return cache[prompt]

    def usable_facts(self, facts):
        """``facts`` without the attributes this model was trained never to see
        (``ModelConfig.never_stated``: their embeddings were never trained, so they are not used)."""
        never = getattr(self.config.model, "never_stated", ())
        if not never:
            return facts
        from tgdmat.text.prompts import facts_without

        return facts_without(facts, never)

    def annotate(self, structures, prompts) -> None:
        """Record, in each structure's ``properties``, its prompt and what was understood of it."""
        for s, p in zip(structures, prompts):
            if p is None:
                continue
            reading = self.read(p)
            s.properties.update(prompt=p, understood=understood_dict(reading),
                                not_understood=[u.text for u in reading.not_understood])

    # ------------------------------------------------------------------ what the model knows
    @property
    def training_elements(self) -> frozenset[int]:
        """Atomic numbers present in the training split (from the checkpoint, else recomputed)."""
        if "train_elements" not in self.info:
            self.info["train_elements"] = sorted({int(z) for z in np.unique(self._training_split().atom_types)})
        return frozenset(self.info["train_elements"])

    def _training_split(self):
        """The crystals this model was trained on, rebuilt from its config (data set, held-out
        fraction, split seed and ``max_train``)."""
        from tgdmat.data import model_splits

        train = model_splits(self.config, progress=False).train
        mt = self.config.train.max_train
        return train if mt is None else train.subset(range(mt))

    def check_request(self, atoms: Sequence[int] | int, prompt: str | None = None,
                      allow_unseen_elements: bool = False, what: str = "request") -> list[str]:
        """Check one request against its prompt and the model; return warnings, raise on contradictions.

        ``atoms`` is a list of atomic numbers (CSP) or an atom count (generation). Errors
        (:class:`RequestError`): an element the model cannot represent (Z > 100); an element not in
        the training split unless ``allow_unseen_elements``; a prompt formula or element list that
        contradicts the composition; an atom count that is not a multiple of the prompt's reduced
        formula. Warnings: an atom count outside the trained range; unseen elements when allowed;
        a prompt from which no fact was understood (for a ``text+facts`` model nothing but the
        sentence embedding then conditions the sample).
        """
        from pymatgen.core import Composition, Element

        from tgdmat.model import NUM_ELEMENTS

        warnings_: list[str] = []
        zs = None if isinstance(atoms, (int, np.integer)) else [int(z) for z in atoms]
        count = int(atoms) if zs is None else len(zs)
        if count < 1:
            raise RequestError(f"{what}: a crystal needs at least one atom, got {count}")
        if zs is not None:
            too_big = sorted({z for z in zs if not 1 <= z <= NUM_ELEMENTS})
            if too_big:
                names = ", ".join(f"{Element.from_Z(z).symbol} (Z={z})" if 1 <= z <= 118 else f"Z={z}" for z in too_big)
                raise RequestError(f"{what}: {names} cannot be represented (the model knows Z = 1..{NUM_ELEMENTS})")
            unseen = sorted(set(zs) - self.training_elements)
            if unseen:
                names = ", ".join(Element.from_Z(z).symbol for z in unseen)
                msg = (f"{what}: {names} never occurs in the {self.config.model.dataset} training split "
                       f"({len(self.training_elements)} elements)")
                if not allow_unseen_elements:
                    raise RequestError(msg + "; pass allow_unseen_elements=True (CLI: --allow-unseen-elements) "
                                       "to sample anyway")
                warnings_.append(msg)
        if self.num_atoms_hist:
            lo, hi = min(self.num_atoms_hist), max(self.num_atoms_hist)
            if not lo <= count <= hi:
                warnings_.append(f"{what}: {count} atoms is outside the trained range {lo}–{hi} atoms per cell")
        if prompt is not None and self.config.model.prompt != "none":
            reading = self.read(prompt)
            facts = reading.facts
            if facts.is_empty:
                warnings_.append(f"{what}: no fact (formula, elements, crystal system, space group, property) "
                                 f"was understood in the prompt {prompt[:60]!r}")
            elif (reading.not_understood and "facts" in self.config.model.conditioning
                  and self.config.model.prompt != "long"):
                # (a text-only model reads every word through its encoder: nothing is ignored there; a
                # long-prompt model was trained on descriptions whose site sentences the fact reader never
                # reads — the encoder and the site parser do — so every description would be flagged)
                unread = "; ".join(repr(u.text[:60]) for u in reading.not_understood[:3])
                warnings_.append(f"{what}: not understood (ignored): {unread}")
            never = [a for a in getattr(self.config.model, "never_stated", ())
                     if a in facts.properties or getattr(facts, a, None) is not None]
            if never:
                warnings_.append(f"{what}: this model was trained with {', '.join(never)} never stated: "
                                 "not used")
            stated = facts.composition()
            if stated is not None:
                base = int(round(stated.num_atoms))
                if zs is not None:
                    mine = Composition({Element.from_Z(z).symbol: zs.count(z) for z in set(zs)})
                    if mine.reduced_formula != stated.reduced_formula:
                        raise RequestError(f"{what}: the composition {mine.reduced_formula} contradicts the "
                                           f"prompt's formula {facts.formula}")
                elif count % base:
                    raise RequestError(f"{what}: {count} atoms cannot hold the prompt's formula {facts.formula} "
                                       f"({base} atoms per formula unit)")
            if facts.elements is not None and zs is not None:
                mine_el = {Element.from_Z(z).symbol for z in zs}
                if set(facts.elements) != mine_el:
                    raise RequestError(f"{what}: the composition's elements {sorted(mine_el)} contradict the "
                                       f"prompt's elements {list(facts.elements)}")
        return warnings_

    def checked_compositions(self, compositions, prompts: Sequence[str] | None = None,
                             allow_unseen_elements: bool = False) -> list[list[int]]:
        """The atomic numbers of each CSP composition, each checked against its prompt
        (:meth:`check_request`: errors raise, warnings are given once, naming the composition's index)."""
        if prompts is not None and len(prompts) != len(compositions):
            raise RequestError(f"got {len(prompts)} prompts for {len(compositions)} compositions")
        zs, notes = [], []
        for i, c in enumerate(compositions):
            z = composition_atoms(c)
            notes += self.check_request(z, None if prompts is None else prompts[i], allow_unseen_elements,
                                        what=f"composition {i} ({c if isinstance(c, str) else len(z)})")
            zs.append(z)
        self._warn(notes)
        return zs

    WARN_SHOWN = 5  # request warnings shown one by one; the rest of a batch is counted by kind

    def _warn(self, messages: list[str]) -> None:
        """Warn about each distinct message; beyond :attr:`WARN_SHOWN`, one more warning counts the rest by kind."""
        import warnings

        msgs = list(dict.fromkeys(messages))
        for m in msgs[:self.WARN_SHOWN]:
            warnings.warn(m, stacklevel=3)
        rest = msgs[self.WARN_SHOWN:]
        if rest:
            kinds = Counter(_warning_kind(m) for m in rest)
            warnings.warn(f"... and {len(rest)} more request warnings like these: "
                          + "; ".join(f"{n} × {k}" for k, n in kinds.most_common()), stacklevel=3)

    # ------------------------------------------------------------------ sampling
    def settings(self, **overrides) -> SampleConfig:
        """The reverse-process settings a call with these ``overrides`` uses: the checkpoint's
        :class:`tgdmat.config.SampleConfig` with every override that is not ``None`` applied (and checked)."""
        return dataclasses.replace(self.config.sample, **{k: v for k, v in overrides.items() if v is not None})

    def _run(self, num_atoms: list[int], cond, atom_types: list[int] | None, sc: SampleConfig, progress: bool,
             template: "Templates | None" = None, guide=None, allowed: "list[set[int] | None] | None" = None):
        """The reverse chain in batches. ``allowed``: generation, per crystal, the atomic numbers its
        types may take (``None`` = any; :attr:`SampleConfig.restrict_to_stated_elements`)."""
        from tgdmat.crystal import arrays_to_structures

        gen = torch.Generator(device=self.device).manual_seed(sc.seed)
        structures = []
        counts = np.asarray(num_atoms, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        from tqdm.auto import tqdm

        mask = None
        if sc.mask_unseen_elements and atom_types is None:  # generation: only elements seen in training
            mask = element_mask(self.training_elements)
        chunks = range(0, len(counts), sc.batch_size)
        for start in tqdm(chunks, desc="sampling batches", disable=not progress or len(chunks) < 2, leave=False):
            stop = min(start + sc.batch_size, len(counts))
            na = torch.as_tensor(counts[start:stop])
            types = None
            if atom_types is not None:
                types = torch.as_tensor(atom_types[offsets[start] : offsets[stop]], dtype=torch.long)
            c = None if cond is None else (cond[start:stop] if torch.is_tensor(cond) else
                                           cond.crystals(start, stop, offsets))
            tpl = None if template is None else template.slice(start, stop, offsets)
            g = None if guide is None else guide.slice(start, stop)
            rows = [] if allowed is None else allowed[start:stop]
            m = torch.stack([_allowed_types(zs, mask) for zs in rows]) if any(rows) else mask
            A, F, L = self.model.sample(na, c, types, sc, generator=gen, progress=progress, start=tpl, guide=g,
                                        type_mask=m)
            structures += arrays_to_structures(A.cpu(), F.cpu(), L.cpu(), na)
        return structures

    def sample_csp(self, compositions, prompts: Sequence[str] | None = None, n_samples: int = 1,
                   progress: bool = True, allow_unseen_elements: bool = False,
                   templates: Sequence | None = None, template_t: int | None = None,
                   property_guide=None, guide_scale: float = 1.0, **overrides) -> list[list]:
        """Crystal structure prediction: ``n_samples`` structures for every composition.

        Args:
            compositions: pymatgen ``Structure``/``Composition`` objects or formula strings; a
                structure's own atoms (and count) are kept, a formula is used as written
                (``"Sr2Ti2O6"`` means 10 atoms).
            prompts: one prompt per composition (default: the model's unconditional mode).
            n_samples: samples per composition (k in match@k).
            allow_unseen_elements: sample compositions with elements absent from the training
                split (with a warning) instead of refusing them.
            templates: template-guided sampling: one template ``Structure`` per composition with
                the same number of atoms (e.g. from :class:`tgdmat.retrieval.TemplateIndex`,
                built on the training split); each chain starts from its template noised to
                ``template_t`` (:class:`tgdmat.model.TemplateStart`).
            template_t: the start time ``t_0`` in ``1..T`` (required with ``templates``).
            **overrides: any :class:`tgdmat.config.SampleConfig` field (``num_steps``,
                ``step_lr``, ``guidance_scale``, ``seed``, ``batch_size``, ``corrector``).

        Returns:
            ``len(compositions)`` lists of ``n_samples`` ``Structure`` objects.

        Raises:
            RequestError: a composition the model cannot sample or one that contradicts its prompt.
        """
        if self.config.model.task != "csp":
            raise ValueError("this model generates atom types too; use generate(), or train a task='csp' model")
        check_draw_count(n_samples)
        compositions = list(compositions)
        sc = self.settings(**overrides)
        zs = self.checked_compositions(compositions, prompts, allow_unseen_elements)
        template = None
        if templates is not None:
            template = Templates.build(templates, zs, template_t, self.model.num_steps, n_samples)
            # the same step size as the full chain: num_steps · t0 / T evaluations from t0 down to 0
            sc = dataclasses.replace(sc, num_steps=template_t if sc.num_steps is None else
                                     max(1, round(sc.num_steps * template_t / self.model.num_steps)))
        return self.sample_checked_csp(zs, prompts, n_samples, sc, progress, template, property_guide, guide_scale)

    def sample_checked_csp(self, zs: list[list[int]], prompts: Sequence[str] | None, n_samples: int, sc: SampleConfig,
                           progress: bool = False, template: "Templates | None" = None, property_guide=None,
                           guide_scale: float = 1.0) -> list[list]:
        """The reverse chains of :meth:`sample_csp` for compositions already turned into atomic
        numbers and checked by :meth:`checked_compositions` (nothing is checked or warned again);
        ``sc`` are the final settings (:meth:`settings`). Used by :func:`tgdmat.sample_set.run_csp`,
        which checks a whole run once and then samples it batch by batch."""
        num_atoms = [len(z) for z in zs for _ in range(n_samples)]
        types = [x for z in zs for _ in range(n_samples) for x in z]
        rep_prompts = None if prompts is None else [p for p in prompts for _ in range(n_samples)]
        cond = self.condition(rep_prompts, len(num_atoms), types, num_atoms)
        guide = self._property_guide(property_guide, guide_scale, rep_prompts, len(num_atoms))
        flat = self._run(num_atoms, cond, types, sc, progress, template, guide)
        if rep_prompts is not None:
            self.annotate(flat, rep_prompts)
        return [flat[i * n_samples : (i + 1) * n_samples] for i in range(len(zs))]

    def _property_guide(self, predictor, scale: float, prompts, n: int):
        """A :class:`tgdmat.guidance.PropertyGuide` toward each prompt's stated value (None: off)."""
        if predictor is None:
            return None
        from tgdmat.guidance import NoisyPropertyModel, PropertyGuide, load_noisy_property

        if not math.isfinite(scale) or scale < 0:
            raise RequestError(f"guide_scale must be a finite number >= 0, got {scale!r}")
        model = predictor if isinstance(predictor, NoisyPropertyModel) else load_noisy_property(predictor, self.device)
        model = model.to(self.device).eval()
        if model.num_steps != self.model.num_steps:
            raise RequestError(f"the property predictor was trained for T={model.num_steps} steps, "
                               f"this model has T={self.model.num_steps}")
        values = [float("nan")] * n
        if prompts is not None:
            values = [self.read(p).facts.properties.get(model.property_name, float("nan")) for p in prompts]
        return PropertyGuide(model, torch.tensor(values, dtype=torch.float32), float(scale))

    def sample_csp_selected(self, compositions, prompts: Sequence[str] | None = None, draws: int = 4,
                            predictor="ours", progress: bool = True, **overrides):
        """CSP with ``draws`` samples per composition of which one is returned (:mod:`tgdmat.rerank`).

        The returned draw is structurally valid when any is, and among those the one whose
        property (``predictor``: ``"ours"``, ``"cdvae"``, a callable, or ``None`` for validity only)
        is closest to the value its prompt states. Returns a :class:`tgdmat.rerank.Selection`
        (``.structures``: one ``Structure`` per composition; ``.candidates``: all draws).
        """
        from tgdmat.metrics.stats import predictor_info, resolve_predictor
        from tgdmat.rerank import select

        if draws < 1:
            raise ValueError(f"draws must be >= 1, got {draws}")
        candidates = self.sample_csp(compositions, prompts=prompts, n_samples=draws, progress=progress, **overrides)
        dataset = self.config.model.dataset
        fn, why = resolve_predictor(dataset, predictor) if predictor is not None else (None, "no predictor given")
        prop = self.property_names[0] if self.property_names else None
        sel = select(candidates, prompts, fn, prop, dataset=dataset)
        sel.info.update({"draws_per_target": draws, "returned_per_target": 1,
                         "rule": "structurally valid first, then |predicted − stated property| smallest",
                         "predictor": predictor_info(fn) if fn is not None else None,
                         "predictor_missing_reason": None if fn is not None else why})
        return sel

    def generate(self, prompts: Sequence[str] | None = None, n: int = 1, num_atoms: Sequence[int] | None = None,
                 progress: bool = True, **overrides) -> list:
        """Generate crystals (lattice, coordinates and atom types) from prompts.

        Args:
            prompts: one prompt per crystal to make ``n`` samples of; ``None`` for ``n``
                unconditioned samples.
            n: samples per prompt (or in total when ``prompts`` is ``None``).
            num_atoms: atoms per crystal, one per prompt; by default the prompt's formula fixes
                it (its reduced formula's atom count, times the smallest multiple seen in
                training), else it is drawn from the training distribution.

        Returns:
            a flat list of ``Structure`` objects (prompt-major order).

        Raises:
            RequestError: ``n`` < 1, an atom count < 1, or one the prompt's formula cannot fill.
        """
        if self.config.model.task != "gen":
            raise ValueError("this is a CSP model (atom types are inputs); use sample_csp()")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise RequestError(f"n must be a whole number >= 1, got {n!r}")
        sc = self.settings(**overrides)
        rng = np.random.default_rng(sc.seed)
        if prompts is None:
            counts = self._draw_num_atoms(n, rng) if num_atoms is None else [int(k) for k in num_atoms]
            self._warn([w for i, k in enumerate(counts) for w in self.check_request(k, None, what=f"sample {i}")])
            return self._run(counts, None, None, sc, progress)
        prompts = list(prompts)
        if num_atoms is None:
            num_atoms = [self._atoms_from_prompt(p, rng) for p in prompts]
        elif len(num_atoms) != len(prompts):
            raise RequestError(f"got {len(num_atoms)} atom counts for {len(prompts)} prompts")
        self._warn([w for i, (k, p) in enumerate(zip(num_atoms, prompts))
                    for w in self.check_request(int(k), p, what=f"prompt {i}")])
        counts = [int(k) for k in num_atoms for _ in range(n)]
        rep = [p for p in prompts for _ in range(n)]
        allowed = [self.stated_elements(p) for p in rep] if sc.restrict_to_stated_elements else None
        out = self._run(counts, self.condition(rep, len(rep)), None, sc, progress, allowed=allowed)
        self.annotate(out, rep)
        return out

    def stated_elements(self, prompt: str) -> set[int] | None:
        """Atomic numbers of the elements ``prompt`` names (its formula's, else its element
        list); ``None`` when it names none."""
        from pymatgen.core import Element

        facts = self.read(prompt).facts
        comp = facts.composition()
        if comp is not None:
            return {el.Z for el in comp.elements}
        return {Element(e).Z for e in facts.elements} if facts.elements else None

    def template_index(self):
        """A :class:`tgdmat.retrieval.TemplateIndex` over this model's **training** split (built once).

        The split is rebuilt from the checkpoint's config (same data set, held-out fraction, seed
        and ``max_train``), so retrieval sees exactly the crystals the model was trained on.
        """
        if getattr(self, "_template_index", None) is None:
            from tgdmat.retrieval import TemplateIndex

            self._template_index = TemplateIndex(self._training_split())
        return self._template_index

    def sample_csp_templated(self, compositions, prompts: Sequence[str] | None, template_t: int,
                             n_samples: int = 1, progress: bool = True, **overrides) -> tuple[list[list], dict]:
        """CSP from retrieved templates: each target's chain starts from its nearest training crystal.

        The template is the first answer of :meth:`template_index` for the prompt's facts and the
        target's atom count, relabelled to the target composition (:func:`tgdmat.retrieval.nearest_template`);
        it is noised to ``template_t`` and the model finishes it. Targets without a template
        (no training crystal of that size and count pattern) are sampled from the prior.
        Returns the structures (one list per composition) and a summary of the retrieval.
        """
        from tgdmat.retrieval import facts_from_prompts, nearest_template

        comps = [composition_atoms(c) for c in compositions]
        facts = (facts_from_prompts(prompts, self.config.model.dataset) if prompts is not None
                 else [self._empty_facts()] * len(compositions))
        index = self.template_index()
        from pymatgen.core import Composition, Element

        templates = []
        for z, f in zip(comps, facts):
            comp = Composition({Element.from_Z(k).symbol: z.count(k) for k in set(z)})
            templates.append(nearest_template(index, f, len(z), composition=comp))
        have = [i for i, t in enumerate(templates) if t is not None]
        rest = [i for i, t in enumerate(templates) if t is None]
        out: list = [None] * len(compositions)
        pick = (lambda seq, idx: None if seq is None else [seq[i] for i in idx])
        if have:
            got = self.sample_csp(pick(list(compositions), have), prompts=pick(prompts, have), n_samples=n_samples,
                                  progress=progress, templates=[templates[i] for i in have], template_t=template_t,
                                  **overrides)
            for i, g in zip(have, got):
                out[i] = g
        if rest:
            got = self.sample_csp(pick(list(compositions), rest), prompts=pick(prompts, rest), n_samples=n_samples,
                                  progress=progress, **overrides)
            for i, g in zip(rest, got):
                out[i] = g
        return out, {"template_t": template_t, "targets_with_template": len(have), "targets_without_template": len(rest),
                     "retrieved_from": f"{index.dataset.name}/{index.dataset.split} ({len(index)} crystals)"}

    @staticmethod
    def _empty_facts():
        from tgdmat.text.facts import PromptFacts

        return PromptFacts()

    def _draw_num_atoms(self, n: int, rng) -> list[int]:
        if not self.num_atoms_hist:
            raise ValueError("the checkpoint holds no atom-count distribution; pass num_atoms=")
        keys = np.array(sorted(self.num_atoms_hist), dtype=int)
        p = np.array([self.num_atoms_hist[k] for k in keys], dtype=float)
        return rng.choice(keys, size=n, p=p / p.sum()).tolist()

    def _atoms_from_prompt(self, prompt: str, rng) -> int:
        comp = self.read(prompt).facts.composition()
        if comp is None:
            return self._draw_num_atoms(1, rng)[0]
        base = int(round(comp.num_atoms))
        allowed = [k for k in sorted(self.num_atoms_hist) if k % base == 0] or [base]
        return allowed[0]


def element_mask(zs) -> torch.Tensor:
    """``[K]`` bool over atomic numbers 1..K, True at the atomic numbers ``zs``."""
    from tgdmat.model import NUM_ELEMENTS

    mask = torch.zeros(NUM_ELEMENTS, dtype=torch.bool)
    mask[[z - 1 for z in zs]] = True
    return mask


def _allowed_types(stated: set[int] | None, base: torch.Tensor | None) -> torch.Tensor:
    """One crystal's ``[K]`` type mask: the ``stated`` elements the ``base`` mask allows (the
    stated ones alone when it allows none of them); ``base`` (or every type) when none is stated."""
    from tgdmat.model import NUM_ELEMENTS

    if not stated:
        return base if base is not None else torch.ones(NUM_ELEMENTS, dtype=torch.bool)
    mask = element_mask(stated)
    both = mask if base is None else mask & base
    return both if bool(both.any()) else mask


@dataclass
class Templates:
    """Template crystals for every chain of a CSP run (see :meth:`CrystalGenerator.sample_csp`).

    ``lattice [B, 3, 3]`` and ``frac_coords [N, 3]`` follow the chains' order; atoms of each
    template are ordered like the target composition's atoms (by species when the template has
    the same elements, else as the template lists them).
    """

    t: int
    lattice: torch.Tensor
    frac_coords: torch.Tensor

    @classmethod
    def build(cls, templates, zs: list[list[int]], t: int | None, T: int, repeats: int) -> "Templates":
        if t is None or isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= T:
            raise RequestError(f"template_t must be a whole number in [1, {T}] with templates, got {t!r}")
        if len(templates) != len(zs):
            raise RequestError(f"got {len(templates)} templates for {len(zs)} compositions")
        lats, fracs = [], []
        for i, (tpl, z) in enumerate(zip(templates, zs)):
            if len(tpl) != len(z):
                raise RequestError(f"template {i} has {len(tpl)} atoms but composition {i} has {len(z)}")
            tz = [site.specie.Z for site in tpl]
            order = list(range(len(tz)))
            if sorted(tz) == sorted(z):  # pair atoms species by species
                pool: dict[int, list[int]] = {}
                for j, zz in enumerate(tz):
                    pool.setdefault(zz, []).append(j)
                order = [pool[zz].pop(0) for zz in z]
            f = np.asarray(tpl.frac_coords, dtype=np.float64)[order] % 1.0
            for _ in range(repeats):
                lats.append(np.asarray(tpl.lattice.matrix, dtype=np.float64))
                fracs.append(f)
        return cls(t, torch.as_tensor(np.stack(lats), dtype=torch.float32),
                   torch.as_tensor(np.concatenate(fracs), dtype=torch.float32))

    def slice(self, start: int, stop: int, offsets: np.ndarray):
        """The :class:`tgdmat.model.TemplateStart` of chains ``start:stop``."""
        from tgdmat.model import TemplateStart

        return TemplateStart(self.t, self.lattice[start:stop], self.frac_coords[offsets[start] : offsets[stop]])


def from_pretrained(path: str | os.PathLike, device: str | torch.device | None = None,
                    task: str | None = None) -> CrystalGenerator:
    """Load a checkpoint written by :func:`tgdmat.train.train` (``best.pt`` or ``last.pt``).

    Reads with ``weights_only=True``; the config, seed and commit travel in the checkpoint.

    Args:
        task: ``"csp"`` or ``"gen"`` to refuse any other kind of model (before it is built).

    Raises:
        CheckpointError: the file is not a usable checkpoint, or its task is not ``task``.
    """
    from tgdmat.checkpoint import CheckpointError, load_checkpoint
    from tgdmat.train import build_model, default_device

    if task not in (None, "csp", "gen"):
        raise ValueError(f"task must be None, 'csp' or 'gen', got {task!r}")
    device = torch.device(device) if device is not None else default_device()
    ckpt = load_checkpoint(path, map_location=device)
    cfg = Config.from_json(ckpt["config"])
    if task is not None and cfg.model.task != task:
        kind = {"csp": "structure prediction (csp)", "gen": "generation (gen)"}[task]
        raise CheckpointError(f"{path}: a {cfg.model.task} model; a {kind} model is needed here")
    names = json.loads(ckpt["property_names"])
    stats = (names, ckpt["property_mean"].numpy(), ckpt["property_std"].numpy())
    model = build_model(cfg, int(ckpt["text_dim"]), stats)
    model.load_state_dict(ckpt["ema"] if "ema" in ckpt else ckpt["model"])
    hist = json.loads(ckpt["num_atoms_hist"]) if "num_atoms_hist" in ckpt else {}
    info = {k: ckpt[k] for k in ("seed", "commit", "protocol", "epoch") if k in ckpt}
    from tgdmat.paths import sha256_file
    from tgdmat.provenance import relative

    info["checkpoint"] = relative(path)
    info["checkpoint_sha256"] = sha256_file(path)
    if "train_elements" in ckpt:
        info["train_elements"] = json.loads(ckpt["train_elements"])
    return CrystalGenerator(model.to(device), cfg, names, {int(k): v for k, v in hist.items()}, device, info)


def write_cifs(structures, folder: str | os.PathLike, prefix: str = "sample") -> list[Path]:
    """Write ``<folder>/<prefix>_<i>.cif`` for every structure; returns the paths."""
    from pymatgen.io.cif import CifWriter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(structures):
        p = folder / f"{prefix}_{i:05d}.cif"
        CifWriter(s).write_file(p)
        paths.append(p)
    return paths
