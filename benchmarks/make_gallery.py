"""A small gallery of generated crystals for the static book: prompts → structures, with what was understood.

A handful of prompts — TGDMat's template prompts of a few official test crystals, some written
freely (one of them with a phrase the reader does not understand), and the first free prompt's
facts rewritten as TGDMat's template — are given to a generation checkpoint; each gets ``--n`` samples with the checkpoint's saved sampling settings (or the ones
given here). For every prompt the file records what the model read in it (the facts, the
understood and not-understood words) and for every sample its CIF, formula, symmetry, validity
and which stated facts it meets. Chapter 9 of the book shows it without a kernel.

    python benchmarks/make_gallery.py --checkpoint results/checkpoints/perov_5_gen_text_facts.pt --out results/gallery_perov_5.json

Runs in well under a minute on one CPU core (12 crystals of 5 atoms, 100 steps).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: rows of the official test split whose template prompts are used, per data set
TEMPLATE_ROWS = {"perov_5": [4, 7, 0], "carbon_24": [0, 1, 2]}

#: free-written prompts, per data set (the last Perov-5 one has a bound the reader refuses to guess)
FREE_PROMPTS = {
    "perov_5": [
        "A cubic perovskite, SrTiO3, in space group Pm-3m, with a formation energy of about 0.9 eV/atom.",
        "An orthorhombic oxyfluoride made of K, Nb, O and F.",
        "A tetragonal oxynitride, BaTaO2N; its band gap is above 2 eV.",
    ],
    "carbon_24": [
        "A hexagonal carbon allotrope with 8 atoms in the cell.",
        "Pure carbon in space group Fd-3m.",
        "A monoclinic form of carbon whose energy is about -154.3 eV/atom.",
    ],
}


def template_rewrite(facts, dataset: str) -> str | None:
    """TGDMat's template prompt stating ``facts`` (elements from the formula); ``None`` when a fact
    the template needs (formula, space group, crystal system, the property) is not stated."""
    from dataclasses import replace

    from pymatgen.core import Composition

    from tgdmat.text.facts import DATASET_PROPERTIES
    from tgdmat.text.prompts import prompt_from_facts

    if facts.formula is None or facts.space_group is None or facts.crystal_system is None:
        return None
    if any(p not in facts.properties for p in DATASET_PROPERTIES[dataset]):
        return None
    elements = tuple(el.symbol for el in Composition(facts.formula).elements)
    return prompt_from_facts(replace(facts, elements=elements), dataset)


def main(argv=None) -> int:
    import torch

    from tgdmat.conditioning import split_prompts
    from tgdmat.data import load_dataset
    from tgdmat.provenance import write_result
    from tgdmat.sample import from_pretrained, understood_dict
    from tgdmat.viewer import to_cif
    from tgdmat.widgets import describe

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a generation checkpoint (task 'gen')")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=2, help="samples per prompt")
    ap.add_argument("--num-steps", type=int, default=None, help="default: the checkpoint's saved setting")
    ap.add_argument("--guidance-scale", type=float, default=None, help="default: the checkpoint's saved setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    gen = from_pretrained(args.checkpoint, device="cpu", task="gen")
    dataset = gen.config.model.dataset
    test = load_dataset(dataset, "test", progress=False)
    rows = TEMPLATE_ROWS[dataset]
    template = split_prompts(test.subset(rows), "short")
    free = FREE_PROMPTS[dataset]
    rewrite = template_rewrite(gen.read(free[0]).facts, dataset)
    prompts = list(template) + [free[0]] + ([rewrite] if rewrite else []) + free[1:]
    sources = ([f"TGDMat template prompt of {dataset}/test row {r} ({test.structure(r).composition.reduced_formula})"
                for r in rows] + ["free-written"]
               + (["the facts of the free-written prompt above, written as TGDMat's template"] if rewrite else [])
               + ["free-written"] * (len(free) - 1))

    settings = {"num_steps": args.num_steps, "guidance_scale": args.guidance_scale, "seed": args.seed}
    t1 = time.perf_counter()
    made = gen.generate(prompts, n=args.n, progress=False, **settings)
    sample_s = time.perf_counter() - t1
    used = gen.settings(**settings)

    entries = []
    for i, (prompt, source) in enumerate(zip(prompts, sources)):
        reading = gen.read(prompt)
        mine = made[i * args.n:(i + 1) * args.n]
        described = describe(mine, reading)
        entries.append({
            "prompt": prompt,
            "source": source,
            "understood": understood_dict(reading),
            "understood_spans": [{"text": s.text, "kind": s.kind, "value": list(s.value) if isinstance(s.value, tuple)
                                  else s.value} for s in reading.understood],
            "not_understood": [{"text": s.text, "reason": s.reason} for s in reading.not_understood],
            "samples": [{**d, "cif": to_cif(s)} for d, s in zip(described, mine)],
        })
        print(f"{i}: {prompt[:70]!r}: " + ", ".join(f"{d['formula']}{'' if d['valid'] else ' (invalid)'}"
                                                     for d in described), flush=True)
    flat = [s for e in entries for s in e["samples"]]
    result = {
        "dataset": dataset,
        "task": "gen",
        "what": f"{len(prompts)} prompts × {args.n} samples: a gallery for the book (not a benchmark)",
        "checkpoint": {"path": gen.info["checkpoint"], "sha256": gen.info["checkpoint_sha256"],
                       "epoch": gen.info.get("epoch")},
        "model": {"protocol": gen.info.get("protocol"), "conditioning": gen.config.model.conditioning},
        "sampling": {"n_per_prompt": args.n, "num_steps": used.num_steps, "guidance_scale": used.guidance_scale,
                     "seed": used.seed, "corrector": used.corrector, "step_lr": used.step_lr,
                     "batching": "all prompts in one batch, prompt-major order"},
        "summary": {"n_samples": len(flat), "n_valid": sum(s["valid"] for s in flat),
                    "n_structural_valid": sum(s["structural_valid"] for s in flat),
                    "n_compositional_valid": sum(s["compositional_valid"] for s in flat)},
        "entries": entries,
        "timings_s": {"sampling": round(sample_s, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    write_result(result, args.out, inputs=[args.checkpoint], checkpoint_protocol=gen.info.get("protocol"))
    print(f"wrote {args.out}: {result['summary']} in {result['timings_s']['total']} s")
    return 0


if __name__ == "__main__":
    from tgdmat.cli.main import run_script

    raise SystemExit(run_script(main))
