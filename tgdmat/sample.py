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
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from tgdmat.config import Config, SampleConfig


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

    def condition(self, prompts: Sequence[str] | None, n: int):
        """Conditioning vectors ``[n, cond_dim]`` for ``prompts`` (validated), or ``None``."""
        if prompts is None or self.config.model.prompt == "none":
            return None
        from tgdmat.conditioning import FactsBatch
        from tgdmat.text import encode_cached, parse_prompt, validate_prompt

        prompts = [validate_prompt(p) for p in prompts]
        if len(prompts) != n:
            raise ValueError(f"got {len(prompts)} prompts for {n} crystals")
        emb = encode_cached(self.encoder, prompts).to(self.device)
        facts = None
        if self.model.facts is not None:
            facts = FactsBatch.from_facts([parse_prompt(p, dataset=self.config.model.dataset) for p in prompts],
                                          self.property_names).to(self.device)
        return self.model.condition(emb, facts)

    # ------------------------------------------------------------------ sampling
    def _settings(self, **overrides) -> SampleConfig:
        return dataclasses.replace(self.config.sample, **{k: v for k, v in overrides.items() if v is not None})

    def _run(self, num_atoms: list[int], cond, atom_types: list[int] | None, sc: SampleConfig, progress: bool):
        from tgdmat.crystal import arrays_to_structure

        step_lr = sc.step_lr if sc.step_lr is not None else self.config.step_lr()
        gen = torch.Generator(device=self.device).manual_seed(sc.seed)
        structures = []
        counts = np.asarray(num_atoms, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        from tqdm.auto import tqdm

        chunks = range(0, len(counts), sc.batch_size)
        for start in tqdm(chunks, desc="sampling batches", disable=not progress or len(chunks) < 2, leave=False):
            stop = min(start + sc.batch_size, len(counts))
            na = torch.as_tensor(counts[start:stop])
            types = None
            if atom_types is not None:
                types = torch.as_tensor(atom_types[offsets[start] : offsets[stop]], dtype=torch.long)
            c = None if cond is None else cond[start:stop]
            A, F, L = self.model.sample(na, c, types, num_steps=sc.num_steps, step_lr=step_lr,
                                        corrector=sc.corrector, guidance_scale=sc.guidance_scale, lattice_eta=sc.lattice_eta,
                                        generator=gen, progress=progress)
            A, F, L = A.cpu(), F.cpu(), L.cpu()
            o = np.concatenate([[0], np.cumsum(na.numpy())])
            for i in range(stop - start):
                structures.append(arrays_to_structure(A[o[i] : o[i + 1]], F[o[i] : o[i + 1]], L[i]))
        return structures

    def sample_csp(self, compositions, prompts: Sequence[str] | None = None, n_samples: int = 1,
                   progress: bool = True, **overrides) -> list[list]:
        """Crystal structure prediction: ``n_samples`` structures for every composition.

        Args:
            compositions: pymatgen ``Structure``/``Composition`` objects or formula strings; a
                structure's own atoms (and count) are kept, a formula is used as written
                (``"Sr2Ti2O6"`` means 10 atoms).
            prompts: one prompt per composition (default: the model's unconditional mode).
            n_samples: samples per composition (k in match@k).
            **overrides: any :class:`tgdmat.config.SampleConfig` field (``num_steps``,
                ``step_lr``, ``guidance_scale``, ``seed``, ``batch_size``, ``corrector``).

        Returns:
            ``len(compositions)`` lists of ``n_samples`` ``Structure`` objects.
        """
        if self.config.model.task != "csp":
            raise ValueError("this model generates atom types too; use generate(), or train a task='csp' model")
        from pymatgen.core import Composition

        zs = []
        for c in compositions:
            if hasattr(c, "species") and hasattr(c, "lattice"):
                zs.append([s.Z for s in c.species])
            else:
                comp = Composition(c) if isinstance(c, str) else c
                zs.append([el.Z for el, amt in comp.items() for _ in range(int(round(amt)))])
                if any(abs(amt - round(amt)) > 1e-6 for amt in comp.values()):
                    raise ValueError(f"composition {c} has fractional amounts")
        num_atoms = [len(z) for z in zs for _ in range(n_samples)]
        types = [x for z in zs for _ in range(n_samples) for x in z]
        rep_prompts = None if prompts is None else [p for p in prompts for _ in range(n_samples)]
        cond = self.condition(rep_prompts, len(num_atoms))
        flat = self._run(num_atoms, cond, types, self._settings(**overrides), progress)
        return [flat[i * n_samples : (i + 1) * n_samples] for i in range(len(zs))]

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
        """
        if self.config.model.task != "gen":
            raise ValueError("this is a CSP model (atom types are inputs); use sample_csp()")
        sc = self._settings(**overrides)
        rng = np.random.default_rng(sc.seed)
        if prompts is None:
            counts = self._draw_num_atoms(n, rng) if num_atoms is None else list(num_atoms)
            return self._run(counts, None, None, sc, progress)
        prompts = list(prompts)
        if num_atoms is None:
            num_atoms = [self._atoms_from_prompt(p, rng) for p in prompts]
        counts = [int(k) for k in num_atoms for _ in range(n)]
        rep = [p for p in prompts for _ in range(n)]
        return self._run(counts, self.condition(rep, len(rep)), None, sc, progress)

    def _draw_num_atoms(self, n: int, rng) -> list[int]:
        if not self.num_atoms_hist:
            raise ValueError("the checkpoint holds no atom-count distribution; pass num_atoms=")
        keys = np.array(sorted(self.num_atoms_hist), dtype=int)
        p = np.array([self.num_atoms_hist[k] for k in keys], dtype=float)
        return rng.choice(keys, size=n, p=p / p.sum()).tolist()

    def _atoms_from_prompt(self, prompt: str, rng) -> int:
        from tgdmat.text import parse_prompt

        facts = parse_prompt(prompt, dataset=self.config.model.dataset)
        comp = facts.composition()
        if comp is None:
            return self._draw_num_atoms(1, rng)[0]
        base = int(round(comp.num_atoms))
        allowed = [k for k in sorted(self.num_atoms_hist) if k % base == 0] or [base]
        return allowed[0]


def from_pretrained(path: str | os.PathLike, device: str | torch.device | None = None) -> CrystalGenerator:
    """Load a checkpoint written by :func:`tgdmat.train.train` (``best.pt`` or ``last.pt``).

    Reads with ``weights_only=True``; the config, seed and commit travel in the checkpoint.
    """
    from tgdmat.train import build_model, default_device, load_checkpoint

    device = torch.device(device) if device is not None else default_device()
    ckpt = load_checkpoint(path, map_location=device)
    cfg = Config.from_json(ckpt["config"])
    names = json.loads(ckpt["property_names"])
    stats = (names, ckpt["property_mean"].numpy(), ckpt["property_std"].numpy())
    model = build_model(cfg, int(ckpt["text_dim"]), stats)
    model.load_state_dict(ckpt["ema"] if "ema" in ckpt else ckpt["model"])
    hist = json.loads(ckpt["num_atoms_hist"]) if "num_atoms_hist" in ckpt else {}
    info = {k: ckpt[k] for k in ("seed", "commit", "protocol", "epoch") if k in ckpt}
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
