"""Choosing one crystal among ``k`` draws: validity first, then agreement with the prompt's numbers.

A single draw of the diffusion model may put two atoms on one site, or may choose the cation
arrangement whose formation energy is not the one the prompt states (on Perov-5 both
arrangements of a composition are plausible; only the number tells them apart). Drawing ``k``
candidates and returning the one that agrees best with what the prompt says lets the stated
numbers decide at inference time, with a property predictor ``f`` trained on the training split:

    score(x) = ( [x is not structurally valid],  |f(x) − y| / s )      compared lexicographically
    returned = argmin_j score(x_j),  j = 1..k        (ties: the earlier draw)

where ``y`` is the value of property ``p`` stated by the prompt (parsed with
:func:`tgdmat.text.parse_prompt`, so a free-text prompt without a number is ranked by validity
alone) and ``s`` the predictor's scale (1 when unknown). Structural validity is the literature's
(:func:`tgdmat.metrics.validity.structure_validity`: every interatomic distance ≥ 0.5 Å, volume
≥ 0.1 Å³).

This costs ``k`` times the sampling and returns exactly one structure per target. Match rates
computed on it are reported as "``k`` draws, 1 returned" next to plain one-sample numbers, never
in their place: a published match@1 uses a single draw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


@dataclass
class Selection:
    """Result of :func:`select`: the chosen structure per target and why.

    Attributes:
        structures: one ``Structure`` per target (the first draw when every draw is invalid).
        chosen: index of the chosen draw per target.
        n_valid: structurally valid draws per target.
        stated: the prompt's value of the property per target (``nan`` when not stated).
        predicted: the predictor's value for the chosen draw (``nan`` without predictor/value).
    """

    structures: list
    chosen: list[int]
    n_valid: list[int]
    stated: np.ndarray
    predicted: np.ndarray
    property_name: str | None = None
    info: dict = field(default_factory=dict)
    candidates: list | None = None
    """All draws per target, as given to :func:`select`."""

    def summary(self) -> dict:
        """JSON-ready counts: how often the choice differed from the first draw, validity, |Δ|."""
        n = len(self.chosen)
        dev = np.abs(self.predicted - self.stated)
        dev = dev[np.isfinite(dev)]
        return {
            "n_targets": n,
            "property": self.property_name,
            "chosen_not_first_pct": 100.0 * sum(c != 0 for c in self.chosen) / max(1, n),
            "targets_without_valid_draw": int(sum(v == 0 for v in self.n_valid)),
            "mean_valid_draws": float(np.mean(self.n_valid)) if n else 0.0,
            "targets_with_stated_value": int(np.isfinite(self.stated).sum()),
            "mean_abs_deviation_chosen": float(dev.mean()) if dev.size else None,
            **self.info,
        }


def stated_values(prompts: Sequence[str] | None, property_name: str | None, n: int,
                  dataset: str | None = None) -> np.ndarray:
    """The value of ``property_name`` each prompt states (``nan`` where it states none).

    Raises :class:`tgdmat.text.PromptError` (naming the sentence) for a malformed number.
    """
    from tgdmat.text.parse import parse_prompt

    out = np.full(n, np.nan)
    if prompts is None or property_name is None:
        return out
    if len(prompts) != n:
        raise ValueError(f"stated_values: {len(prompts)} prompts for {n} targets")
    for i, p in enumerate(prompts):
        value = parse_prompt(p, dataset).properties.get(property_name)
        if value is not None:
            out[i] = float(value)
    return out


def select(candidates: Sequence[Sequence], prompts: Sequence[str] | None = None,
           predictor: Callable | None = None, property_name: str | None = None, scale: float = 1.0,
           dataset: str | None = None) -> Selection:
    """Pick one structure per target from its list of draws (see the module docstring).

    Args:
        candidates: per target, a non-empty list of pymatgen ``Structure`` draws.
        prompts: per target, the prompt (or ``None``: validity only).
        predictor: ``f(list[Structure]) -> array`` of ``property_name`` (e.g. from
            :func:`tgdmat.metrics.stats.resolve_predictor`); ``nan`` outputs rank last among
            valid draws.
        property_name: the property the prompts state (e.g. ``"heat_ref"``).
        scale: divides ``|f(x) − y|`` (only the order matters; kept for reporting).
    """
    from tgdmat.metrics.validity import structure_validity

    n = len(candidates)
    if any(len(c) == 0 for c in candidates):
        raise ValueError("select: every target needs at least one candidate draw")
    stated = stated_values(prompts, property_name, n, dataset)
    use_pred = predictor is not None and np.isfinite(stated).any()
    flat = [s for group in candidates for s in group]
    valid = np.array([bool(structure_validity(s)) for s in flat])
    if use_pred:
        pred = np.asarray(predictor(flat), dtype=float)
        if pred.shape != (len(flat),):
            raise ValueError(f"select: predictor returned shape {pred.shape} for {len(flat)} structures")
    else:
        pred = np.full(len(flat), np.nan)
    structures, chosen, n_valid, chosen_pred = [], [], [], []
    start = 0
    for i, group in enumerate(candidates):
        k = len(group)
        best, best_key = 0, None
        for j in range(k):
            dev = abs(pred[start + j] - stated[i]) / scale if use_pred and np.isfinite(stated[i]) else 0.0
            key = (not valid[start + j], dev if math.isfinite(dev) else math.inf, j)
            if best_key is None or key < best_key:
                best, best_key = j, key
        structures.append(group[best])
        chosen.append(best)
        n_valid.append(int(valid[start : start + k].sum()))
        chosen_pred.append(pred[start + best])
        start += k
    return Selection(structures, chosen, n_valid, stated, np.array(chosen_pred, dtype=float), property_name,
                     candidates=[list(group) for group in candidates])
