"""The verbs of ``python -m tgdmat {train, sample, csp, generate, evaluate} --help``.

Examples::

    # train the quick CSP model on Perov-5 (train = official val minus a held-out slice)
    python -m tgdmat train --dataset perov_5 --task csp --preset quick --out runs/perov_csp

    # CSP benchmark on the official test split with one sample per crystal
    python -m tgdmat csp --checkpoint runs/perov_csp/best.pt --split test --out results/csp_perov_5.json

    # generate crystals from a prompt and write CIFs (+ samples.json for `evaluate`)
    python -m tgdmat sample --checkpoint runs/perov_gen/best.pt --prompt "Below is ..." --n 8 --out samples/

    # 10,000 generated crystals, resumable, batch by batch (then: evaluate <out>/samples.json)
    python -m tgdmat generate --checkpoint runs/perov_gen/best.pt --n 10000 --out runs/perov_gen/free10k

    # score generated crystals with the literature's metrics
    python -m tgdmat evaluate --help
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def train_config(args):
    """The :class:`~tgdmat.config.Config` that ``python -m tgdmat train`` builds from its parsed arguments."""
    from tgdmat.config import preset

    overrides = {k: v for k, v in {"prompt": args.prompt, "conditioning": args.conditioning,
                                   "grounding": getattr(args, "grounding", None),
                                   "attribute_dropout": getattr(args, "attribute_dropout", None),
                                   "paraphrase": True if getattr(args, "paraphrase", False) else None,
                                   "prompt_variants": getattr(args, "prompt_variants", None),
                                   "never_stated": tuple(args.never_stated) if getattr(args, "never_stated", None) else None,
                                   "text_encoder": args.encoder}.items() if v is not None}
    cfg = preset(args.preset, dataset=args.dataset, task=args.task, **overrides)
    tr = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
                             "holdout_seed": args.holdout_seed,
                             "max_train": args.max_train, "num_threads": args.threads, "lr": args.lr,
                             "ema_decay": args.ema_decay, "warmup_steps": args.warmup_steps,
                             "eval_every": args.eval_every,
                             "bf16": args.bf16 or None}.items() if v is not None}
    cfg.train = dataclasses.replace(cfg.train, **tr)
    return cfg


def _train(args) -> int:
    from tgdmat.train import train

    cfg = train_config(args)
    result = train(cfg, args.out, device=args.device, resume=not args.no_resume, overwrite=args.overwrite)
    print(json.dumps({"out": str(result.out_dir), "best_epoch": result.best_epoch,
                      "best_holdout_loss": result.best_holdout_loss, "epochs_run": result.epochs_run,
                      "seconds": round(result.seconds, 1)}, indent=2))
    return 0


def _sample_overrides(args) -> dict:
    return {k: v for k, v in {"num_steps": args.steps, "step_lr": args.step_lr, "guidance_scale": args.guidance,
                              "seed": args.seed, "batch_size": args.batch_size,
                              "lattice_eta": args.lattice_eta,
                              "time_spacing": getattr(args, "time_spacing", None),
                              "mask_unseen_elements": True if getattr(args, "mask_unseen_elements", False) else None,
                              "restrict_to_stated_elements":
                                  True if getattr(args, "restrict_to_stated_elements", False) else None,
                              }.items() if v is not None}


def _threads(args) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def _sample(args) -> int:
    from tgdmat.sample import RequestError, from_pretrained, write_cifs

    _threads(args)
    gen = from_pretrained(args.checkpoint, device=args.device)
    prompts = list(args.prompt or [])
    if args.prompts_file:
        path = Path(args.prompts_file)
        if not path.is_file():
            raise RequestError(f"--prompts-file {path}: no such file")
        prompts += [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    ov = _sample_overrides(args)
    if gen.config.model.task == "csp":
        if not args.formula:
            raise RequestError("this is a CSP model: give --formula (one per prompt), e.g. --formula SrTiO3")
        if prompts and len(prompts) != len(args.formula):
            raise RequestError(f"got {len(prompts)} prompts for {len(args.formula)} --formula values (one each)")
        preds = gen.sample_csp(args.formula, prompts=prompts or None, n_samples=args.n,
                               allow_unseen_elements=args.allow_unseen_elements, **ov)
        structures = [s for group in preds for s in group]
        tags = [(f, p) for f, p in zip(args.formula, prompts or [None] * len(args.formula)) for _ in range(args.n)]
    else:
        if args.formula:
            raise RequestError("this is a generation model: it chooses the atoms itself; state a formula in "
                               "the prompt instead of --formula")
        structures = gen.generate(prompts or None, n=args.n, **ov)
        tags = [(None, p) for p in (prompts or [None]) for _ in range(args.n)]
    for p in dict.fromkeys(prompts):
        print(f"prompt {p[:70]!r}\n" + "\n".join("  " + ln for ln in gen.read(p).report().splitlines()))
    paths = write_cifs(structures, args.out)
    records = [{"cif": s.to(fmt="cif"), "prompt": p, "formula": f, "file": str(path),
                **({"understood": s.properties.get("understood"), "not_understood": s.properties.get("not_understood")}
                   if p is not None else {})}
               for s, path, (f, p) in zip(structures, paths, tags)]
    (Path(args.out) / "samples.json").write_text(json.dumps(records, indent=1))
    print(f"wrote {len(paths)} CIFs and samples.json to {args.out}")
    return 0


def _csp(args) -> int:
    from tgdmat.benchmark import csp_benchmark, write_result
    from tgdmat.data import load_dataset
    from tgdmat.sample import from_pretrained

    _threads(args)
    gen = from_pretrained(args.checkpoint, device=args.device)
    ds = load_dataset(gen.config.model.dataset, args.split)
    predictor = None if args.predictor == "none" else args.predictor
    result = csp_benchmark(gen, ds, n_samples=args.n, limit=args.limit, select_from=args.select_from,
                           predictor=predictor, template_t=args.template_t, strict=args.strict,
                           property_guide=args.property_guide, guide_scale=args.guide_scale, work=args.work,
                           **_sample_overrides(args))
    inputs = [args.checkpoint] + ([args.property_guide] if args.property_guide else [])
    if args.select_from > 1 and args.predictor == "ours":  # the regressor that chose among the draws
        from tgdmat.paths import results_dir

        inputs.append(results_dir() / "checkpoints" / f"regressor_{gen.config.model.dataset}.pt")
    write_result(result, args.out, generator=gen, checkpoint=inputs)
    m = result["metrics"]
    how = (f"1 of {args.select_from} draws returned ({args.predictor})" if args.select_from > 1
           else f"{args.n} samples")
    print(f"{ds.name}/{args.split}: match rate {m['match_rate_pct']:.2f} %, RMSE {m['rmse']}, "
          f"{result['n_targets']} targets × {how} → {args.out}")
    return 0


def _generate(args) -> int:
    from tgdmat import sample_set
    from tgdmat.sample import from_pretrained

    _threads(args)
    gen = from_pretrained(args.checkpoint, device=args.device)
    if args.per_prompt:
        request = sample_set.split_requests(gen, args.per_prompt, limit=args.limit)
    else:
        request = sample_set.training_requests(gen, args.n, seed=args.seed or 0, prompts_from=args.prompts_from)
    ov = {k: v for k, v in _sample_overrides(args).items() if k not in ("seed", "batch_size")}
    summary = sample_set.run(gen, request, args.out, batch_size=args.batch_size or 256, seed=args.seed or 0, **ov)
    print(json.dumps(summary, indent=1))
    return 0


def _evaluate(argv) -> int:
    from tgdmat.cli.evaluate import main as evaluate_main

    return int(evaluate_main(argv) or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tgdmat", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", metavar="DIR",
                   help="folder with <dataset>/{val,test}.csv.gz and text/ (default: the repository's data/, "
                        "or $TGDMAT_DATA); give it before the verb: python -m tgdmat --data-root DIR train …")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (checkpoints and logs in --out; resumes if present)")
    t.add_argument("--dataset", default="perov_5", choices=["perov_5", "carbon_24", "mp_20"])
    t.add_argument("--task", default="csp", choices=["csp", "gen"], help="csp: types given; gen: types diffused too")
    t.add_argument("--preset", default="quick", choices=["quick", "paper", "paper_exact"], help="quick: CPU minutes; paper: GPU (paper_exact: TGDMat's concat conditioning)")
    t.add_argument("--out", required=True, help="run folder (last.pt, best.pt, log.csv, config.json)")
    t.add_argument("--prompt", choices=["short", "long", "none"], help="prompt kind (default: short)")
    t.add_argument("--conditioning", choices=["text", "text+facts"], help="text only, or text plus parsed facts")
    t.add_argument("--attribute-dropout", type=float, default=None,
                   help="short prompts: probability of leaving out each fact sentence of a training prompt "
                        "(all left out = the null condition; default 0)")
    t.add_argument("--paraphrase", action="store_true", help="short prompts: seeded paraphrases of every sentence")
    t.add_argument("--never-stated", nargs="+", metavar="ATTRIBUTE", default=None,
                   help="short prompts: leave these facts out of every training prompt (e.g. heat_ref), "
                        "to measure what stating them is worth")
    t.add_argument("--prompt-variants", type=int, default=None,
                   help="seeded prompt variants per training crystal (orders / dropouts / wordings)")
    t.add_argument("--grounding", choices=["none", "sites", "attention", "sites+attention"],
                   help="long prompts, CSP: give each atom its element's site facts (sites), let atoms attend "
                        "over the description's sentences (attention), or both (default: none)")
    t.add_argument("--encoder", help="text encoder: minilm (offline default) or matscibert")
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--lr", type=float)
    t.add_argument("--ema-decay", type=float, help="EMA decay of the weights used for sampling")
    t.add_argument("--warmup-steps", type=int, help="linear learning-rate warm-up steps")
    t.add_argument("--eval-every", type=int, help="epochs between held-out evaluations (and best.pt updates)")
    t.add_argument("--seed", type=int)
    t.add_argument("--holdout-seed", type=int,
                   help="seed of the held-out slice (default: --seed); fix it to train replicate seeds on the same data")
    t.add_argument("--max-train", type=int, help="use only the first N training crystals")
    t.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    t.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    t.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CUDA")
    t.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    t.add_argument("--no-resume", action="store_true",
                   help="start afresh: refuse (exit 2) if --out already holds a run, unless --overwrite")
    t.add_argument("--overwrite", action="store_true",
                   help="delete the run files in --out (last.pt, best.pt, logs, config.json) and start afresh")
    t.set_defaults(func=_train)

    def sampling_args(q):
        q.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")
        q.add_argument("--steps", type=int, help="sampling steps (default: the checkpoint's config)")
        q.add_argument("--step-lr", type=float, help="Langevin corrector step size")
        q.add_argument("--guidance", type=float, help="classifier-free guidance scale (1 = none)")
        q.add_argument("--lattice-eta", type=float, help="1 = DDPM lattice steps (paper), 0 = DDIM")
        q.add_argument("--time-spacing", choices=["uniform", "quadratic"],  # = diffusion.time.TIME_SPACINGS (no torch at parse time)
                       help="how --steps are spread over the chain (quadratic: short steps near t = 0)")
        q.add_argument("--mask-unseen-elements", action="store_true",
                       help="generation: never draw an element absent from the model's training split")
        q.add_argument("--restrict-to-stated-elements", action="store_true",
                       help="generation: a crystal whose prompt names its elements (formula or element list) "
                            "is drawn among those elements only")
        q.add_argument("--seed", type=int)
        q.add_argument("--batch-size", type=_positive_int)
        q.add_argument("--device")
        q.add_argument("--threads", type=_positive_int, help="torch CPU threads (1 is fastest on busy cores)")
        q.add_argument("--allow-unseen-elements", action="store_true",
                       help="sample compositions with elements absent from the training split (warns)")
        q.add_argument("--debug", action="store_true", help="show the full traceback of an error")

    s = sub.add_parser("sample", help="sample crystals from prompts and write CIFs + samples.json")
    sampling_args(s)
    s.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    s.add_argument("--prompts-file", help="a text file with one prompt per line")
    s.add_argument("--formula", action="append", help="CSP models: the composition for each prompt")
    s.add_argument("--n", type=_positive_int, default=1, help="samples per prompt (or in total without prompts)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=_sample)

    c = sub.add_parser("csp", help="CSP benchmark of a checkpoint on a data split → results JSON")
    sampling_args(c)
    c.add_argument("--split", default="test")
    c.add_argument("--n", type=_positive_int, default=1, help="samples per target (match@k)")
    c.add_argument("--limit", type=_positive_int, help="only the first N targets")
    c.add_argument("--select-from", type=_positive_int, default=1,
                   help="draw K per target and return the one that is valid and agrees best with the "
                        "prompt's stated property (tgdmat.rerank); reported as K draws, 1 returned")
    c.add_argument("--predictor", default="ours", choices=["ours", "cdvae", "none"],
                   help="property predictor for --select-from (none: validity only)")
    c.add_argument("--template-t", type=_positive_int,
                   help="template-guided sampling: start each chain from the nearest training crystal "
                        "(by the prompt's facts) noised to this time t0 in 1..T")
    c.add_argument("--strict", action="store_true",
                   help="add the strict column: tight match + same space group, METRe/cRMSE (arXiv:2509.12178), "
                        "and match on targets without a duplicate in the training split")
    c.add_argument("--property-guide", default=None, metavar="CHECKPOINT",
                   help="steer every chain toward its prompt's stated property with this noise-aware predictor "
                        "(python -m tgdmat.guidance; classifier guidance, one draw per target)")
    c.add_argument("--guide-scale", type=float, default=1.0, help="guidance strength γ (0 = unguided; default 1)")
    c.add_argument("--work", metavar="FOLDER",
                   help="resumable: write the draws batch by batch to FOLDER (batch b seeded seed + b); rerunning "
                        "the same command continues a killed run")
    c.add_argument("--out", required=True, help="results JSON path")
    c.set_defaults(func=_csp)

    g = sub.add_parser("generate", help="generation models: a large resumable sampling run → <out>/samples.json")
    sampling_args(g)
    how = g.add_mutually_exclusive_group(required=True)
    how.add_argument("--per-prompt", metavar="SPLIT",
                     help="one sample per crystal of SPLIT, with its prompt and atom count (TGDMat's protocol)")
    how.add_argument("--n", type=_positive_int,
                     help="N samples with atom counts drawn from the training split (CDVAE/DiffCSP protocol)")
    g.add_argument("--prompts-from", metavar="SPLIT", help="with --n: cycle the prompts of SPLIT (conditioned set)")
    g.add_argument("--limit", type=_positive_int, help="with --per-prompt: only the first N crystals")
    g.add_argument("--out", required=True, help="run folder (batches/, samples.json, run.json); resumes if present")
    g.set_defaults(func=_generate)

    sub.add_parser("evaluate", help="score generated crystals (see: python -m tgdmat evaluate --help)", add_help=False)
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def expected_errors() -> tuple[type[BaseException], ...]:
    """The errors a user can cause (bad data, prompt, option, checkpoint, request): one line, exit 2."""
    from tgdmat.config import ConfigError
    from tgdmat.data import DataError
    from tgdmat.cli.evaluate import InputError
    from tgdmat.sample import RequestError
    from tgdmat.text.encoders import EncoderUnavailableError
    from tgdmat.text.facts import PromptError
    from tgdmat.checkpoint import CheckpointError, RunExistsError

    return (ConfigError, DataError, InputError, RequestError, PromptError, CheckpointError, RunExistsError,
            EncoderUnavailableError, FileNotFoundError, ValueError)


def run_script(main) -> int:
    """Run a script's ``main()`` (``benchmarks/*.py``) the way ``python -m tgdmat`` runs a verb: an
    error a user can cause (a bad checkpoint, option or file) is one line on stderr, exit status 2."""
    try:
        return main()
    except expected_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _take_data_root(argv: list[str]) -> list[str]:
    """Apply a leading ``--data-root DIR`` (or ``--data-root=DIR``): it sets ``TGDMAT_DATA`` for this
    process; a folder that does not exist or holds no data set is refused by name."""
    import os
    from pathlib import Path

    if not argv or not argv[0].startswith("--data-root"):
        return argv
    if argv[0].startswith("--data-root="):
        root, rest = argv[0].split("=", 1)[1], argv[1:]
    elif len(argv) > 1:
        root, rest = argv[1], argv[2:]
    else:
        raise ValueError("option --data-root needs a folder: python -m tgdmat --data-root DIR <verb> …")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ValueError(f"--data-root {root}: no such folder")
    if not any((path / d).is_dir() for d in ("perov_5", "carbon_24", "mp_20")):
        raise ValueError(f"--data-root {root}: holds none of perov_5/, carbon_24/, mp_20/ (see data/README.md)")
    os.environ["TGDMAT_DATA"] = str(path.resolve())
    return rest


def main(argv: list[str] | None = None) -> int:
    """Run one verb; an expected error is printed as one line on stderr with exit status 2.

    ``--debug`` (any verb) shows the traceback instead.
    """
    import warnings

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    if not debug:
        warnings.showwarning = lambda message, category, *a, **k: print(f"warning: {message}", file=sys.stderr)
    try:
        argv = _take_data_root(argv)
        if argv and argv[0] == "evaluate":
            return _evaluate(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except expected_errors() as err:
        if debug:
            raise
        msg = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {msg} (--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
