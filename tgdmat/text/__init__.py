"""The text side of TGDMat: prompts, their parser, text encoders, an embedding cache, descriptions.

* :func:`short_prompt` — TGDMat's short prompt from a structure and its properties
  (:mod:`tgdmat.text.prompts`).
* :func:`parse_prompt` / :func:`validate_prompt` — the facts a prompt states, and checks of a
  user's prompt (:mod:`tgdmat.text.parse`).
* :func:`read_prompt` — the facts of a free-written prompt and what was not understood
  (:mod:`tgdmat.text.reader`); :func:`check_composition` — a prompt against a CSP composition.
* :func:`augmented_prompt` — training prompts with paraphrases and attribute dropout
  (:mod:`tgdmat.text.prompts`).
* :func:`get_encoder` — MiniLM (offline default) or MatSciBERT (TGDMat's)
  (:mod:`tgdmat.text.encoders`); :func:`encode_cached` — frozen embeddings cached on disk
  (:mod:`tgdmat.text.cache`).
* :func:`load_descriptions` — Robocrystallographer long prompts (:mod:`tgdmat.text.descriptions`).

Importing this package is light: each submodule (and torch / transformers / pymatgen) loads on
first use.
"""
from __future__ import annotations

from tgdmat._lazy import attach

_LAZY = {
    "short_prompt": "tgdmat.text.prompts",
    "structure_facts": "tgdmat.text.prompts",
    "prompt_from_facts": "tgdmat.text.prompts",
    "attribute_order": "tgdmat.text.prompts",
    "DATASET_PROPERTIES": "tgdmat.text.facts",
    "SYMPREC": "tgdmat.text.prompts",
    "ANGLE_TOLERANCE": "tgdmat.text.prompts",
    "augmented_prompt": "tgdmat.text.prompts",
    "drop_attributes": "tgdmat.text.prompts",
    "attribute_wordings": "tgdmat.text.prompts",
    "facts_subset": "tgdmat.text.prompts",
    "NULL_PROMPT": "tgdmat.text.prompts",
    "read_prompt": "tgdmat.text.reader",
    "Reading": "tgdmat.text.reader",
    "check_composition": "tgdmat.text.reader",
    "PromptFacts": "tgdmat.text.facts",
    "PromptError": "tgdmat.text.facts",
    "crystal_system_of": "tgdmat.text.facts",
    "parse_prompt": "tgdmat.text.parse",
    "validate_prompt": "tgdmat.text.reader",
    "parse_number": "tgdmat.text.parse",
    "parse_formula": "tgdmat.text.parse",
    "TextEncoder": "tgdmat.text.encoders",
    "HFEncoder": "tgdmat.text.encoders",
    "MiniLMEncoder": "tgdmat.text.encoders",
    "MatSciBERTEncoder": "tgdmat.text.encoders",
    "EncoderUnavailableError": "tgdmat.text.encoders",
    "get_encoder": "tgdmat.text.encoders",
    "available_encoders": "tgdmat.text.encoders",
    "encode_cached": "tgdmat.text.cache",
    "EmbeddingCache": "tgdmat.text.cache",
    "load_descriptions": "tgdmat.text.descriptions",
    "Descriptions": "tgdmat.text.descriptions",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
