"""The text side of TGDMat: prompts, their parser, text encoders, an embedding cache, descriptions.

* :func:`short_prompt` — TGDMat's short prompt from a structure and its properties
  (:mod:`tgdmat.text.prompts`).
* :func:`parse_prompt` / :func:`validate_prompt` — the facts a prompt states, and checks of a
  user's prompt (:mod:`tgdmat.text.parse`).
* :func:`get_encoder` — MiniLM (offline default) or MatSciBERT (TGDMat's)
  (:mod:`tgdmat.text.encoders`); :func:`encode_cached` — frozen embeddings cached on disk
  (:mod:`tgdmat.text.cache`).
* :func:`load_descriptions` — Robocrystallographer long prompts (:mod:`tgdmat.text.descriptions`).

Importing this package is light: each submodule (and torch / transformers / pymatgen) loads on
first use.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "short_prompt": "tgdmat.text.prompts",
    "structure_facts": "tgdmat.text.prompts",
    "prompt_from_facts": "tgdmat.text.prompts",
    "attribute_order": "tgdmat.text.prompts",
    "DATASET_PROPERTIES": "tgdmat.text.prompts",
    "SYMPREC": "tgdmat.text.prompts",
    "ANGLE_TOLERANCE": "tgdmat.text.prompts",
    "PromptFacts": "tgdmat.text.facts",
    "PromptError": "tgdmat.text.facts",
    "crystal_system_of": "tgdmat.text.facts",
    "parse_prompt": "tgdmat.text.parse",
    "validate_prompt": "tgdmat.text.parse",
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

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tgdmat.text' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
