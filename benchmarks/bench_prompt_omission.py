"""What each stated fact is worth: CSP with one attribute of the prompt left out or reworded.

For one short-prompt CSP checkpoint this draws one structure per target for each prompt
condition and reports the match rate / RMSE of each (same seed and sampler settings for all):

* ``template`` — the evaluation prompt as trained (fixed order, TGDMat's wording);
* ``omit:<attr>`` — that attribute's sentence left out (the others as in the template);
* ``paraphrase:<attr>`` — that sentence in one of its other wordings
  (:data:`tgdmat.text.prompts.WORDINGS`, seeded per target), the others as in the template;
* ``paraphrase:all`` — every sentence reworded;
* ``none`` — no prompt (the null condition: what the composition alone gives).

A model that survives omission loses at most what the left-out fact carried; one that survives
paraphrase scores the same on ``paraphrase:*`` as on ``template``.

Usage::

    python benchmarks/bench_prompt_omission.py --checkpoint results/checkpoints/perov_5_csp_long_text_facts.pt \\
        --guidance 3 --split test --out results/omission_perov_5_text_facts.json
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def conditions_for(dataset: str) -> list[str]:
    from tgdmat.text.prompts import attribute_order

    attrs = attribute_order(dataset)
    return (["template"] + [f"omit:{a}" for a in attrs] + [f"paraphrase:{a}" for a in attrs]
            + ["paraphrase:all", "none"])


def prompts_for(condition: str, facts: list, dataset: str, seed: int) -> list[str] | None:
    """One prompt per target for ``condition`` (``None`` for the condition ``"none"``)."""
    from tgdmat.text.prompts import attribute_order, probe_prompt

    if condition == "none":
        return None
    rng = np.random.default_rng(seed)
    if condition == "template":
        return [probe_prompt(f, dataset) for f in facts]
    kind, attr = condition.split(":", 1)
    attrs = attribute_order(dataset) if attr == "all" else [attr]
    if kind == "omit":
        return [probe_prompt(f, dataset, omit=attrs) for f in facts]
    if kind == "paraphrase":
        return [probe_prompt(f, dataset, paraphrase=attrs, rng=rng) for f in facts]
    raise ValueError(f"unknown condition {condition!r}; use one of {conditions_for(dataset)}")


def main(argv=None) -> int:
    from tgdmat.benchmark import csp_benchmark, write_result
    from tgdmat.data import load_dataset, model_splits
    from tgdmat.sample import from_pretrained
    from tgdmat.conditioning import split_facts

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--split", default="test", choices=["test", "holdout"],
                    help="the official test split, or the held-out slice of the training protocol")
    ap.add_argument("--conditions", nargs="+", default=None, help="default: all (see the module docstring)")
    ap.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the checkpoint's)")
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the checkpoint's)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N targets")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sampler and of the paraphrase draws")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = from_pretrained(args.checkpoint, device="cpu")
    cfg = gen.config
    if cfg.model.prompt != "short" or cfg.model.task != "csp":
        raise SystemExit(f"error: {args.checkpoint} is not a short-prompt CSP model (prompt={cfg.model.prompt!r}, "
                         f"task={cfg.model.task!r})")
    name = cfg.model.dataset
    if args.split == "test":
        ds = load_dataset(name, "test")
    else:
        ds = model_splits(cfg).val
    if args.limit is not None:
        ds = ds.subset(range(min(args.limit, len(ds))))
    facts = split_facts(ds, progress=False)
    conditions = args.conditions or conditions_for(name)
    rows = []
    for cond in conditions:
        t0 = time.perf_counter()
        prompts = prompts_for(cond, facts, name, args.seed)
        res = csp_benchmark(gen, ds, n_samples=1, progress=False, prompts=prompts, guidance_scale=args.guidance,
                            num_steps=args.steps, seed=args.seed, unconditional=prompts is None)
        m = res["metrics"]
        rows.append({"condition": cond, "match_rate_pct": m["match_rate_pct"], "rmse": m["rmse"],
                     "rms_distribution": m.get("rms_distribution"),
                     "n_targets": m["n_targets"], "example_prompt": None if prompts is None else prompts[0],
                     "seconds": round(time.perf_counter() - t0, 1)})
        print({k: v for k, v in rows[-1].items() if k not in ("example_prompt", "rms_distribution")}, flush=True)
        sampling = res["sampling"]
    write_result({"task": "csp", "dataset": name, "split": ds.split, "checkpoint": args.checkpoint,
                  "n_targets": len(ds), "draws_per_target": 1, "sampling": sampling,
                  "note": "one draw per target and condition; same seed and sampler settings for every condition",
                  "rows": rows}, args.out, generator=gen, checkpoint=args.checkpoint)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
