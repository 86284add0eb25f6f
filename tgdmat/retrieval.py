"""Retrieval baselines for CSP: answer a prompt with a training crystal, no diffusion.

A :class:`TemplateIndex` holds the **training** split and the facts its short prompts state
(space group, crystal system, property values; symmetry read as the prompts read it,
:data:`tgdmat.text.prompts.SYMPREC`). A query is the facts parsed from a prompt
(:func:`tgdmat.text.parse_prompt`) plus the requested atom count; the index answers with the k
nearest training crystals:

1. the atom count must be equal (no candidate: an empty answer);
2. if the prompt states a space group, crystals with that space group; if there are none,
   crystals of the stated (or implied) crystal system; if none, any crystal of that size
   (each answer says which ``level`` it came from);
3. ranked by the distance between standardised property values ((y − μ)/σ, μ and σ over the
   training split; Euclidean over the properties the prompt states); ties by training order.

Two baselines return one structure per target:

* :func:`random_same_size` — a uniformly drawn training crystal of the target's atom count;
* :func:`nearest_template` — the index's first answer.

Both can relabel the template's species to a target composition (CSP gives the composition):
elements are paired by atom count, ties broken by Pauling electronegativity (Perov-5's A and B
cations: the less electronegative one goes on the A site's position); on Carbon-24 this is a
no-op. A template whose count pattern cannot carry the composition is skipped.

**The test split cannot be read.** :class:`TemplateIndex` and :func:`random_same_size` refuse a
dataset whose ``split`` label names a test split, or whose source file is a ``test`` file
(:func:`check_not_test`); neither loads any data itself.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tgdmat.text.facts import PromptFacts, crystal_system_of


class TestSplitError(ValueError):
    """A retrieval baseline was handed the test split."""

    __test__ = False  # not a pytest class


def _is_test_split(dataset) -> bool:
    split = str(getattr(dataset, "split", "") or "").lower()
    path = Path(str(getattr(dataset, "path", "") or ""))
    stem = path.name.split(".")[0].lower() if path.name else ""
    tokens = split.replace("(", " ").replace(")", " ").replace("-", " ").replace("_", " ").split()
    return "test" in tokens or stem == "test"


def check_not_test(dataset) -> None:
    """Raise :class:`TestSplitError` if ``dataset`` is (or was cut from) a test split.

    Looks at the dataset's ``split`` label (``CrystalDataset.split``: ``"test"`` for the official
    test split; ``load_splits`` labels training data ``"train(val-holdout)"``) and at its source
    file (``CrystalDataset.path``: ``.../test.csv[.gz]``), which a subset keeps even if relabelled.
    """
    if _is_test_split(dataset):
        raise TestSplitError(
            f"refusing to build a retrieval baseline from the test split "
            f"(split={getattr(dataset, 'split', None)!r}, path={getattr(dataset, 'path', None)!r}): "
            "templates must come from the training split only"
        )


def _species_map(template_comp, target_comp) -> dict | None:
    """Element of the template → element of the target, paired by count then electronegativity."""
    def ranked(comp):
        items = [(el, float(n)) for el, n in comp.get_el_amt_dict().items()]
        from pymatgen.core import Element

        return sorted(items, key=lambda x: (-x[1], Element(x[0]).X if not math.isnan(Element(x[0]).X) else 99.0,
                                            x[0]))

    a, b = ranked(template_comp), ranked(target_comp)
    na, nb = sum(x[1] for x in a), sum(x[1] for x in b)  # a reduced formula is scaled up
    if len(a) != len(b) or any(abs(x[1] / na - y[1] / nb) > 1e-8 for x, y in zip(a, b)):
        return None
    return {x[0]: y[0] for x, y in zip(a, b)}


def relabel(structure, composition):
    """``structure`` with its species renamed so its composition is ``composition`` (or ``None``).

    ``composition``: a pymatgen ``Composition`` / formula string (the target's, or its reduced
    formula). Returns ``None`` when the count pattern differs (e.g. A2BX6 template, ABX3 target).
    """
    from pymatgen.core import Composition

    comp = Composition(composition) if not isinstance(composition, Composition) else composition
    mapping = _species_map(structure.composition, comp)
    if mapping is None:
        return None
    out = structure.copy()
    if any(k != v for k, v in mapping.items()):
        out.replace_species(mapping)
    return out


@dataclass(frozen=True)
class Neighbour:
    """One answer of :meth:`TemplateIndex.query`."""

    index: int  # row in the training dataset
    material_id: str
    level: str  # "space_group", "crystal_system" or "any": which filter it passed
    distance: float  # standardised property distance (0.0 when no property is stated)


class TemplateIndex:
    """Nearest training crystals for a prompt's facts (see the module docstring).

    Args:
        train: the training split (a :class:`tgdmat.data.CrystalDataset`); a test split is
            refused (:class:`TestSplitError`).
        facts: the facts each training crystal's short prompt states (one :class:`PromptFacts`
            per crystal); default: computed with :func:`tgdmat.text.prompts.structure_facts`
            (space group and crystal system at the prompts' spglib tolerance; values rounded as
            the prompts state them).
        progress: show a progress bar while reading the training crystals' symmetry.
    """

    def __init__(self, train, facts: Sequence[PromptFacts] | None = None, progress: bool = False):
        check_not_test(train)
        self.dataset = train
        n = len(train)
        if facts is None:
            from tqdm.auto import tqdm

            from tgdmat.text.prompts import structure_facts

            name = getattr(train, "name", None)
            ds = name if name in ("perov_5", "carbon_24", "mp_20") else None
            facts = [
                structure_facts(train.structure(i), {k: float(v[i]) for k, v in train.properties.items()}, ds)
                for i in tqdm(range(n), desc="template index: symmetry", disable=not progress, leave=False)
            ]
        facts = list(facts)
        if len(facts) != n:
            raise ValueError(f"{len(facts)} facts for {n} training crystals")
        self.facts = facts
        self.num_atoms = np.asarray(train.num_atoms, dtype=np.int64)
        self.space_groups = np.array([-1 if f.space_group is None else int(f.space_group) for f in facts])
        self.crystal_systems = np.array([f.crystal_system or "" for f in facts], dtype=object)
        self.property_names = list(train.properties)
        self.values = np.stack([np.asarray(train.properties[k], dtype=float) for k in self.property_names],
                               axis=1) if self.property_names else np.zeros((n, 0))
        self.mean = self.values.mean(axis=0) if n else np.zeros(self.values.shape[1])
        std = self.values.std(axis=0) if n else np.ones(self.values.shape[1])
        self.std = np.where(std > 0, std, 1.0)
        self._by_size: dict[int, np.ndarray] = {}
        for size in np.unique(self.num_atoms):
            self._by_size[int(size)] = np.flatnonzero(self.num_atoms == size)

    def __len__(self) -> int:
        return len(self.num_atoms)

    def __repr__(self) -> str:
        return (f"TemplateIndex(split={getattr(self.dataset, 'split', None)!r}, n={len(self)}, "
                f"properties={self.property_names})")

    def structure(self, i: int):
        """The training crystal at row ``i`` (a pymatgen ``Structure``)."""
        return self.dataset.structure(int(i))

    def candidates(self, facts: PromptFacts, num_atoms: int) -> tuple[np.ndarray, str]:
        """All training rows that pass the filters, in rank order, and the filter level used."""
        pool = self._by_size.get(int(num_atoms))
        if pool is None or len(pool) == 0:
            return np.zeros(0, dtype=np.int64), "none"
        level = "any"
        chosen = pool
        system = facts.crystal_system
        if system is None and facts.space_group is not None:
            system = crystal_system_of(int(facts.space_group))
        if facts.space_group is not None:
            same = pool[self.space_groups[pool] == int(facts.space_group)]
            if len(same):
                chosen, level = same, "space_group"
        if level == "any" and system is not None:
            same = pool[self.crystal_systems[pool] == system]
            if len(same):
                chosen, level = same, "crystal_system"
        dist = self._property_distance(facts, chosen)
        order = np.lexsort((chosen, dist))
        return chosen[order], level

    def _property_distance(self, facts: PromptFacts, rows: np.ndarray) -> np.ndarray:
        cols = [j for j, k in enumerate(self.property_names) if k in facts.properties]
        if not cols:
            return np.zeros(len(rows))
        q = np.array([(facts.properties[self.property_names[j]] - self.mean[j]) / self.std[j] for j in cols])
        z = (self.values[np.ix_(rows, cols)] - self.mean[cols]) / self.std[cols]
        return np.sqrt(((z - q[None, :]) ** 2).sum(axis=1))

    def query(self, facts: PromptFacts, num_atoms: int, k: int = 1) -> list[Neighbour]:
        """The ``k`` nearest training crystals for a prompt's ``facts`` and an atom count."""
        rows, level = self.candidates(facts, num_atoms)
        rows = rows[:k]
        dist = self._property_distance(facts, rows)
        return [Neighbour(int(r), str(self.dataset.material_ids[int(r)]), level, float(d))
                for r, d in zip(rows, dist)]


def _count_pattern(counts) -> tuple:
    """Sorted atom fractions of a composition (what :func:`_species_map` needs to agree)."""
    c = np.sort(np.asarray(counts, dtype=float))
    return tuple(np.round(c / c.sum(), 8))


def _composition_of(composition):
    if composition is None:
        return None
    from pymatgen.core import Composition

    return composition if isinstance(composition, Composition) else Composition(composition)


def random_same_size(train, num_atoms: int, rng: np.random.Generator, composition=None,
                     k: int | None = None):
    """A uniformly drawn training crystal with ``num_atoms`` atoms (``None`` if there is none).

    ``train``: the training split (a ``CrystalDataset``; a test split is refused) or a
    :class:`TemplateIndex` built from it. ``composition`` (optional): the target's composition;
    the species are relabelled to it and crystals whose count pattern cannot carry it are not
    drawn. ``k``: return a list of ``k`` draws (without replacement while the pool lasts, then
    with replacement) instead of one structure.
    """
    dataset = train.dataset if isinstance(train, TemplateIndex) else train
    check_not_test(dataset)
    comp = _composition_of(composition)
    pool = np.flatnonzero(np.asarray(dataset.num_atoms) == int(num_atoms))
    if comp is not None and len(pool):
        want = _count_pattern(np.array(list(comp.get_el_amt_dict().values()), dtype=float))
        ok = [_count_pattern(np.unique(dataset.atom_types[dataset.atoms(int(i))], return_counts=True)[1]) == want
              for i in pool]
        pool = pool[np.array(ok, dtype=bool)]
    n = 1 if k is None else int(k)
    if len(pool) == 0:
        return None if k is None else [None] * n
    if n <= len(pool):
        picks = rng.choice(pool, size=n, replace=False)
    else:
        picks = np.concatenate([rng.permutation(pool), rng.choice(pool, size=n - len(pool), replace=True)])
    out = []
    for i in picks:
        s = dataset.structure(int(i))
        out.append(relabel(s, comp) if comp is not None else s)
    return out[0] if k is None else out


def nearest_template(index: TemplateIndex, facts: PromptFacts, num_atoms: int, composition=None):
    """The retrieval-only CSP answer: the first template :meth:`TemplateIndex.candidates` ranks.

    With ``composition`` the species are relabelled to it; templates whose count pattern cannot
    carry it are skipped. ``None`` when no training crystal qualifies.
    """
    if not isinstance(index, TemplateIndex):
        raise TypeError("nearest_template needs a TemplateIndex (built from the training split)")
    rows, _ = index.candidates(facts, num_atoms)
    comp = _composition_of(composition)
    for r in rows:
        s = index.structure(int(r))
        if comp is None:
            return s
        out = relabel(s, comp)
        if out is not None:
            return out
    return None


def facts_from_prompts(prompts: Sequence[str], dataset: str | None = None) -> list[PromptFacts]:
    """Parse each prompt (:func:`tgdmat.text.parse_prompt`): the only thing a query may use."""
    from tgdmat.text.parse import parse_prompt

    return [parse_prompt(p, dataset) for p in prompts]


__all__ = ["TemplateIndex", "Neighbour", "TestSplitError", "check_not_test", "random_same_size",
           "nearest_template", "relabel", "facts_from_prompts"]
