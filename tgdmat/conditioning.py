"""From prompts to the conditioning vector ``c`` that enters every denoising step.

Two conditioning variants (``ModelConfig.conditioning``):

* ``"text"`` — the paper's: ``c = E(prompt)``, a frozen sentence embedding (MiniLM offline,
  MatSciBERT [CLS] in the paper).
* ``"text+facts"`` — numbers stay numbers: the facts a prompt states are parsed
  (:func:`tgdmat.text.parse_prompt`) and embedded next to the sentence embedding,

      c = [ E(prompt) ‖ φ(facts) ],
      φ = MLP( [ Σ_p m_p · FF(z_p) W_p ‖ e_sys(crystal system) ‖ e_sg(space group) ] ),
      z_p = (y_p − μ_p) / s_p,   FF(z) = [z, sin(2π f_k z), cos(2π f_k z)]_{k=1..K},

  with ``m_p`` = 1 when property ``p`` is stated (else a learned "unknown" vector), ``μ_p, s_p``
  the training split's mean and standard deviation and ``f_k`` log-spaced frequencies (0.25 to 16
  cycles per standard deviation). The Fourier map is smooth, so close values get close vectors,
  and deterministic. Sentence encoders blur numbers ("-0.1234" and "-0.1243" embed almost the
  same); this path gives the denoiser the value itself. Categories that are not stated map to an
  "unknown" index 0. Free text without facts still works: ``φ`` then sees only "unknown"s.

:class:`PromptTable` prepares everything a training run needs for one split: prompts (several
seeded sentence orders per crystal for short prompts), their cached embeddings and parsed facts.

**Per-atom grounding** of long prompts (``ModelConfig.grounding``; :class:`GroundingTable`):

* ``"sites"`` — each atom ``i`` gets ``u_i = ψ(site vector of its element)``
  (:mod:`tgdmat.text.site_vectors`; :class:`SiteEncoder`: numbers through the same Fourier map
  as above, masked where unstated, words and neighbour blocks as they are, then an MLP);
* ``"attention"`` — the description is split into sentences (:func:`tgdmat.text.sites.
  split_description`), every sentence is encoded on its own (so nothing is cut at the
  encoder's token window), and atoms attend over them in every layer
  (:class:`tgdmat.denoiser.SentenceAttention`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from tgdmat.text.facts import CRYSTAL_SYSTEM_RANGES

CRYSTAL_SYSTEMS = tuple(CRYSTAL_SYSTEM_RANGES)  # index + 1; 0 = not stated


@dataclass
class FactsBatch:
    """Parsed facts of ``B`` prompts as tensors.

    Attributes:
        values: ``[B, P]`` float property values in the data set's units (0 where not stated).
        mask: ``[B, P]`` bool, True where the prompt states property ``p``.
        crystal_system: ``[B]`` long, 1..7 (:data:`CRYSTAL_SYSTEMS` order) or 0 = not stated.
        space_group: ``[B]`` long, 1..230 or 0 = not stated.
    """

    values: Tensor
    mask: Tensor
    crystal_system: Tensor
    space_group: Tensor

    def __getitem__(self, idx) -> "FactsBatch":
        return FactsBatch(self.values[idx], self.mask[idx], self.crystal_system[idx], self.space_group[idx])

    def to(self, device) -> "FactsBatch":
        return FactsBatch(*(getattr(self, k).to(device) for k in ("values", "mask", "crystal_system", "space_group")))

    @staticmethod
    def from_facts(facts_list, property_names) -> "FactsBatch":
        """Build from :class:`tgdmat.text.PromptFacts` objects (one per prompt)."""
        b, p = len(facts_list), len(property_names)
        values = torch.zeros(b, p)
        mask = torch.zeros(b, p, dtype=torch.bool)
        system = torch.zeros(b, dtype=torch.long)
        sg = torch.zeros(b, dtype=torch.long)
        for i, f in enumerate(facts_list):
            for j, name in enumerate(property_names):
                if name in f.properties:
                    values[i, j] = float(f.properties[name])
                    mask[i, j] = True
            if f.crystal_system is not None:
                system[i] = CRYSTAL_SYSTEMS.index(f.crystal_system) + 1
            if f.space_group is not None:
                sg[i] = int(f.space_group)
        return FactsBatch(values, mask, system, sg)


class SiteEncoder(nn.Module):
    """``ψ``: per-atom site vectors ``[N, SITE_VECTOR_DIM]`` → ``[N, dim]`` (module docstring)."""

    def __init__(self, dim: int = 64, num_freqs: int = 4):
        super().__init__()
        from tgdmat.text.site_vectors import MASK_SLICE, NUMBERS_SLICE, SITE_VECTOR_DIM

        self.numbers, self.mask, self.num_freqs = NUMBERS_SLICE, MASK_SLICE, num_freqs
        n = NUMBERS_SLICE.stop - NUMBERS_SLICE.start
        width = n * (1 + 2 * num_freqs) + (SITE_VECTOR_DIM - n)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, dim))
        self.dim = dim

    def forward(self, v: Tensor) -> Tensor:
        x = v[:, self.numbers]
        m = v[:, self.mask]
        ff = fourier_value_features(x, self.num_freqs) * m.unsqueeze(-1)     # [N, n, 1 + 2K]
        rest = torch.cat([v[:, : self.numbers.start], v[:, self.numbers.stop:]], dim=-1)
        return self.mlp(torch.cat([ff.flatten(1), rest], dim=-1))


@dataclass
class GroundingTable:
    """Per-atom site vectors and per-sentence embeddings of one split's long prompts.

    Attributes:
        atom_vectors: ``[N_split, SITE_VECTOR_DIM]`` in the split's atom order, or None.
        atom_offsets: ``[n + 1]`` first atom of every crystal.
        sentence_bank: ``[U, d]`` distinct sentence embeddings, or None.
        sentence_index: ``[n, S_max]`` rows into the bank (-1 = padding).
        sentences_per_prompt, tokens_per_prompt: per crystal (recorded in results).
        mentioned_pct: share of atoms whose element has a site in the text.
    """

    atom_vectors: Tensor | None
    atom_offsets: np.ndarray
    sentence_bank: Tensor | None
    sentence_index: Tensor | None
    sentences_per_prompt: list[int]
    mentioned_pct: float

    def lookup(self, crystal_ids: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """``(atoms [N_b, F] | None, sentences [B, S_b, d] | None, mask [B, S_b] | None)``."""
        ids = [int(i) for i in crystal_ids]
        atoms = None
        if self.atom_vectors is not None:
            idx = np.concatenate([np.arange(self.atom_offsets[i], self.atom_offsets[i + 1]) for i in ids])
            atoms = self.atom_vectors[torch.as_tensor(idx, dtype=torch.long)]
        sent = mask = None
        if self.sentence_bank is not None:
            rows = self.sentence_index[torch.as_tensor(ids, dtype=torch.long)]
            width = max(1, int((rows >= 0).sum(1).max()))
            rows = rows[:, :width]
            mask = rows >= 0
            sent = self.sentence_bank[rows.clamp_min(0)] * mask.unsqueeze(-1)
        return atoms, sent, mask


def site_vectors_for(prompts, symbols_per_crystal) -> tuple[Tensor, float]:
    """``[Σ n_i, SITE_VECTOR_DIM]`` site vectors of every atom, and the % of atoms mentioned."""
    from tgdmat.text.site_vectors import MASK_SLICE, SITE_VECTOR_DIM, atom_site_vectors

    rows = [atom_site_vectors(text or "", syms) for text, syms in zip(prompts, symbols_per_crystal)]
    vec = np.concatenate(rows) if rows else np.zeros((0, SITE_VECTOR_DIM), np.float32)
    mentioned = float(100.0 * (vec[:, MASK_SLICE.stop] > 0).mean()) if len(vec) else 0.0
    return torch.as_tensor(vec, dtype=torch.float32), mentioned


def sentence_embeddings_for(prompts, encoder) -> tuple[Tensor, Tensor, list[int]]:
    """``(bank [U, d], index [n, S_max], counts)``: every sentence of every prompt, encoded once."""
    from tgdmat.text import encode_cached
    from tgdmat.text.sites import split_description

    split = [split_description(p or "") for p in prompts]
    distinct = list(dict.fromkeys(s for ss in split for s in ss))
    where = {s: k for k, s in enumerate(distinct)}
    bank = encode_cached(encoder, distinct).float() if distinct else torch.zeros(0, 1)
    width = max([len(ss) for ss in split] + [1])
    index = torch.full((len(prompts), width), -1, dtype=torch.long)
    for i, ss in enumerate(split):
        if ss:
            index[i, : len(ss)] = torch.as_tensor([where[s] for s in ss])
    return bank, index, [len(ss) for ss in split]


def build_grounding(dataset, prompts, grounding: str, encoder=None) -> GroundingTable | None:
    """:class:`GroundingTable` of ``dataset`` for its long ``prompts`` (None for ``"none"``)."""
    if grounding == "none":
        return None
    from pymatgen.core.periodic_table import Element

    syms = [[Element.from_Z(int(z)).symbol for z in dataset.atom_types[dataset.offsets[i]:dataset.offsets[i + 1]]]
            for i in range(len(dataset))]
    atoms, mentioned = (site_vectors_for(prompts, syms) if "sites" in grounding else (None, 0.0))
    bank = index = None
    counts = [0] * len(prompts)
    if "attention" in grounding:
        if encoder is None:
            raise ValueError("grounding with attention needs the text encoder")
        bank, index, counts = sentence_embeddings_for(prompts, encoder)
    else:
        from tgdmat.text.sites import split_description

        counts = [len(split_description(p or "")) for p in prompts]
    return GroundingTable(atoms, np.asarray(dataset.offsets), bank, index, counts, mentioned)


def fourier_value_features(z: Tensor, num_freqs: int = 8, f_min: float = 0.25, f_max: float = 16.0) -> Tensor:
    """``[..., 1 + 2K]`` features ``[z, sin(2π f_k z), cos(2π f_k z)]`` with log-spaced ``f_k``."""
    freqs = torch.exp(torch.linspace(math.log(f_min), math.log(f_max), num_freqs, device=z.device, dtype=z.dtype))
    ang = 2 * math.pi * z.unsqueeze(-1) * freqs
    return torch.cat([z.unsqueeze(-1), torch.sin(ang), torch.cos(ang)], dim=-1)


class FactsEncoder(nn.Module):
    """``φ(facts)``: ``FactsBatch`` → ``[B, dim]`` (see the module docstring).

    Args:
        property_names: the data set's property columns, in order.
        mean, std: ``[P]`` training-split statistics used to normalise values.
        dim: output width.
        num_freqs: Fourier frequencies per value.
    """

    def __init__(self, property_names, mean, std, dim: int = 128, num_freqs: int = 8):
        super().__init__()
        self.property_names = list(property_names)
        p = len(self.property_names)
        self.num_freqs = num_freqs
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(p))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)).reshape(p).clamp_min(1e-6))
        width = 1 + 2 * num_freqs
        self.value_proj = nn.ModuleList(nn.Linear(width, dim) for _ in range(p))
        self.unknown_value = nn.Parameter(torch.zeros(p, dim))
        self.system_embed = nn.Embedding(len(CRYSTAL_SYSTEMS) + 1, dim)
        self.sg_embed = nn.Embedding(231, dim)
        self.mlp = nn.Sequential(nn.Linear(3 * dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.dim = dim

    def forward(self, facts: FactsBatch) -> Tensor:
        z = (facts.values - self.mean) / self.std  # [B, P]
        value = torch.zeros(z.shape[0], self.dim, device=z.device, dtype=z.dtype)
        for j, proj in enumerate(self.value_proj):
            emb = proj(fourier_value_features(z[:, j], self.num_freqs))
            value = value + torch.where(facts.mask[:, j : j + 1], emb, self.unknown_value[j].expand_as(emb))
        feats = torch.cat([value, self.system_embed(facts.crystal_system), self.sg_embed(facts.space_group)], dim=-1)
        return self.mlp(feats)


# --------------------------------------------------------------------------------------------
# Prompts and embeddings for a data split
# --------------------------------------------------------------------------------------------


@dataclass
class PromptTable:
    """Prompts, frozen embeddings and parsed facts for every crystal of one split.

    Attributes:
        prompts: ``V`` lists of ``n`` prompts (``V`` sentence orders; ``V = 1`` for evaluation,
            long prompts and the unconditional baseline).
        embeddings: ``[V, n, d]`` float32, or ``None`` for ``prompt="none"``.
        facts: ``V`` :class:`FactsBatch` of ``n`` rows each.
        fallbacks: ids whose long prompt was missing/failed and fell back to the short prompt.
        parse_failures: ``(material_id, message)`` of prompts whose facts could not be parsed
            (their facts are "not stated"; counted, never silently).
        grounding: per-atom site vectors / sentence embeddings (``ModelConfig.grounding``).
        null: ``[V, n]`` bool, True where attribute dropout left a variant with no fact
            (:data:`tgdmat.text.prompts.NULL_PROMPT`; its embedding row is zeros and training
            uses the null condition), or None without dropout.
    """

    prompts: list[list[str]]
    embeddings: Tensor | None
    facts: list[FactsBatch]
    fallbacks: list[str]
    parse_failures: list[tuple[str, str]]
    grounding: GroundingTable | None = None
    null: Tensor | None = None

    def null_rows(self, crystal_ids: Tensor, variant: Tensor | int = 0) -> Tensor:
        """``[B]`` bool: the drawn variant stated nothing (attribute dropout dropped every fact)."""
        if self.null is None:
            return torch.zeros(len(crystal_ids), dtype=torch.bool)
        v = torch.as_tensor(variant).expand_as(crystal_ids) if not torch.is_tensor(variant) or variant.dim() == 0 else variant
        return self.null[v, crystal_ids]

    @property
    def variants(self) -> int:
        return len(self.prompts)

    def lookup(self, crystal_ids: Tensor, variant: Tensor | int = 0):
        """``(text_emb [B, d] | None, FactsBatch)`` for dataset positions ``crystal_ids``."""
        v = torch.as_tensor(variant).expand_as(crystal_ids) if not torch.is_tensor(variant) or variant.dim() == 0 else variant
        emb = None if self.embeddings is None else self.embeddings[v, crystal_ids]
        parts = [self.facts[int(k)][int(i)] for k, i in zip(v.tolist(), crystal_ids.tolist())] if self.variants > 1 else None
        if parts is None:
            facts = self.facts[0][crystal_ids]
        else:
            facts = FactsBatch(
                torch.stack([p.values for p in parts]),
                torch.stack([p.mask for p in parts]),
                torch.stack([p.crystal_system for p in parts]),
                torch.stack([p.space_group for p in parts]),
            )
        return emb, facts


def split_facts(dataset, progress: bool = True) -> list:
    """The :class:`tgdmat.text.facts.PromptFacts` of every crystal of ``dataset`` (symmetry + properties)."""
    from tqdm.auto import tqdm

    from tgdmat.text.prompts import structure_facts

    name = dataset.name
    return [structure_facts(dataset.structure(i), {k: float(v[i]) for k, v in dataset.properties.items()}, name)
            for i in tqdm(range(len(dataset)), desc=f"symmetry of {name}/{dataset.split}", disable=not progress,
                          leave=False)]


def build_prompts(dataset, kind: str = "short", variants: int = 1, seed: int = 0, progress: bool = True):
    """Prompts for every crystal of ``dataset`` (a :class:`tgdmat.data.CrystalDataset`).

    ``kind="short"``: TGDMat's template; variant 0 is the fixed evaluation order when
    ``variants == 1``, otherwise every variant is a seeded random order.
    ``kind="long"``: the shipped Robocrystallographer description (short prompt as fallback).
    ``kind="none"``: empty prompts (the unconditional baseline; no embedding is made).

    Returns ``(prompts [V][n], fallbacks)``.
    """
    from tgdmat.text.prompts import prompt_from_facts

    name = dataset.name
    n = len(dataset)
    if kind == "none":
        return [[""] * n], []
    facts = split_facts(dataset, progress)
    if kind == "short":
        if variants == 1:
            return [[prompt_from_facts(f, name) for f in facts]], []
        rng = np.random.default_rng(seed)
        return [[prompt_from_facts(f, name, rng=rng) for f in facts] for _ in range(variants)], []
    if kind == "long":
        from tgdmat.text.descriptions import load_descriptions

        desc = load_descriptions(name, source_split(dataset.split))
        prompts, fallbacks = [], []
        for i, mid in enumerate(dataset.material_ids):
            text = _description_text(desc, mid)
            if text is None:
                fallbacks.append(mid)
                text = prompt_from_facts(facts[i], name)
            prompts.append(text)
        return [prompts], fallbacks
    raise ValueError(f"unknown prompt kind {kind!r}")


def split_prompts(dataset, kind: str, never_stated=()) -> list[str] | None:
    """Evaluation prompts (fixed sentence order) for every crystal of ``dataset``; short prompts
    leave out the ``never_stated`` attributes (a model trained never to see them:
    ``ModelConfig.never_stated``)."""
    if kind == "none":
        return None
    if never_stated and kind == "short":
        from tgdmat.text.prompts import probe_prompt

        return [probe_prompt(f, dataset.name, omit=tuple(never_stated)) for f in split_facts(dataset, False)]
    prompts, _ = build_prompts(dataset, kind, variants=1, progress=False)
    return prompts[0]


def source_split(split: str) -> str:
    """The shipped file a split's rows come from: ``"train(val-holdout)"`` and ``"holdout(val)"`` → ``"val"``."""
    import re

    inner = split.split("(")[-1].rstrip(")") if "(" in split else split
    m = re.match(r"(train|val|test)\b", inner)
    return m.group(1) if m else inner


def _description_text(desc, mid):
    entry = desc.get(mid) if hasattr(desc, "get") else None
    if entry is None:
        return None
    text = getattr(entry, "text", entry)
    status = getattr(entry, "status", "ok")
    return text if status == "ok" and text else None


def build_prompt_table(dataset, model_cfg, encoder=None, variants: int | None = None, seed: int = 0,
                       progress: bool = True) -> PromptTable:
    """Prompts + cached embeddings + parsed facts for a split (see :class:`PromptTable`)."""
    from tgdmat.text import encode_cached, get_encoder, parse_prompt

    variants = model_cfg.prompt_variants if variants is None else variants
    if model_cfg.prompt != "short":
        variants = 1
    varied = variants > 1 and (getattr(model_cfg, "attribute_dropout", 0.0) > 0 or getattr(model_cfg, "paraphrase", False))
    augment = model_cfg.prompt == "short" and (varied or bool(getattr(model_cfg, "never_stated", ())))
    names = list(dataset.properties)
    if augment:
        return _augmented_table(dataset, model_cfg, encoder, variants, seed, progress, names)
    prompts, fallbacks = build_prompts(dataset, model_cfg.prompt, variants, seed, progress)
    embeddings = None
    if model_cfg.prompt != "none":
        encoder = encoder or get_encoder(model_cfg.text_encoder)
        flat = [p for variant in prompts for p in variant]
        embeddings = encode_cached(encoder, flat).reshape(len(prompts), len(dataset), -1).float()
    facts, failures = [], []
    from tgdmat.text.facts import PromptFacts

    for variant in prompts:
        parsed = []
        for mid, text in zip(dataset.material_ids, variant):
            if not text:
                parsed.append(PromptFacts())
                continue
            try:
                parsed.append(parse_prompt(text, dataset=dataset.name))
            except ValueError as exc:
                failures.append((mid, str(exc)))
                parsed.append(PromptFacts())
        facts.append(FactsBatch.from_facts(parsed, names))
    grounding = None
    if getattr(model_cfg, "grounding", "none") != "none":
        grounding = build_grounding(dataset, prompts[0], model_cfg.grounding, encoder)
    return PromptTable(prompts, embeddings, facts, fallbacks, failures, grounding)


def _augmented_table(dataset, model_cfg, encoder, variants: int, seed: int, progress: bool, names) -> PromptTable:
    """Training prompts with attribute dropout, paraphrases and never-stated attributes
    (``ModelConfig.attribute_dropout``, ``paraphrase``, ``never_stated``): ``variants`` seeded draws
    per crystal; the facts of each are exactly the kept sentences' (:func:`tgdmat.text.prompts.facts_subset`),
    never re-parsed."""
    from tgdmat.text import encode_cached, get_encoder
    from tgdmat.text.prompts import augmented_prompt, facts_subset

    name = dataset.name
    base = split_facts(dataset, progress)
    rng = np.random.default_rng(seed)
    prompts, facts, null = [], [], torch.zeros(variants, len(dataset), dtype=torch.bool)
    for v in range(variants):
        texts, kept_facts = [], []
        for i, f in enumerate(base):
            text, kept = augmented_prompt(f, name, rng=rng, paraphrase=model_cfg.paraphrase,
                                          drop_prob=model_cfg.attribute_dropout,
                                          never=getattr(model_cfg, "never_stated", ()))
            if text is None:
                null[v, i] = True
            texts.append(text or "")
            kept_facts.append(facts_subset(f, kept))
        prompts.append(texts)
        facts.append(FactsBatch.from_facts(kept_facts, names))
    encoder = encoder or get_encoder(model_cfg.text_encoder)
    flat = [t for variant in prompts for t in variant if t]
    emb = encode_cached(encoder, flat).float() if flat else torch.zeros(0, 1)
    out = torch.zeros(variants * len(dataset), emb.shape[-1] if flat else 1)
    out[~null.flatten()] = emb
    return PromptTable(prompts, out.reshape(variants, len(dataset), -1), facts, [], [], None, null)

