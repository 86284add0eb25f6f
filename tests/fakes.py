"""Test doubles shared by several test modules (imported as ``from fakes import HashEncoder``)."""
from __future__ import annotations

import hashlib

import torch

from tgdmat.text.encoders import TextEncoder


class HashEncoder(TextEncoder):
    """A deterministic stand-in for a sentence encoder: no weights, each text maps to the first
    ``dim`` bytes of its sha256 (scaled to [0, 1]); ``encoded`` records every text it was asked for."""

    def __init__(self, dim: int = 8, name: str = "hash-test"):
        super().__init__()
        self.name, self.dim, self.trainable = name, dim, False
        self.encoded: list[str] = []

    def forward(self, texts):
        self.encoded.extend(texts)
        return torch.stack([torch.tensor([b / 255 for b in hashlib.sha256(t.encode()).digest()[: self.dim]])
                            for t in texts])
