"""Benchmarks of a trained model on a data split, written as ``results/`` JSON.

* :func:`csp_benchmark` — crystal structure prediction on the official ``test`` split: the
  composition of each test crystal (and its prompt) goes in, ``k`` structures come out, and the
  match rate / RMSE of :func:`tgdmat.metrics.evaluate_csp` are reported.

Every result records the command, commit, seed, config, protocol, sampling settings, hardware
and timings, so that the book can cite it without anyone typing a number into prose.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import torch


def csp_benchmark(generator, dataset, n_samples: int = 1, limit: int | None = None, progress: bool = True,
                  select_from: int = 1, predictor="ours", template_t: int | None = None, strict: bool = False,
                  metre_targets: int | None = 200, prompts: list | None = None, property_guide=None,
                  guide_scale: float = 1.0, unconditional: bool = False, work=None, **sample_overrides) -> dict:
    """CSP on ``dataset`` (a :class:`tgdmat.data.CrystalDataset`) with ``n_samples`` per target.

    With ``select_from = k > 1`` (only with ``n_samples = 1``), ``k`` draws are made per target
    and one is returned by :func:`tgdmat.rerank.select` (validity, then agreement of
    ``predictor``'s property with the prompt's stated value); the result then says
    ``"draws_per_target": k`` and carries a ``"selection"`` block, so it is never mistaken for a
    single-draw number; ``selection.first_draw_metrics`` scores the first draw of every target
    alone, the one-sample baseline of the same run.

    With ``template_t`` every chain starts from the target's nearest **training** crystal noised
    to that time (:meth:`tgdmat.sample.CrystalGenerator.sample_csp_templated`); the result then
    carries a ``"templates"`` block.

    With ``strict`` the result also carries ``"strict"``: :func:`tgdmat.metrics.evaluate_csp_strict`
    (tight tolerances and the same space group; the polymorph-aware METRe/cRMSE on
    ``metre_targets`` sampled targets; match rates on the targets that have no duplicate in the
    model's **training** split, found with :func:`tgdmat.metrics.find_duplicates`).

    Every result carries ``"per_target"``: each target's material id and the RMS of its best match
    (``None`` for a miss), for paired comparisons of two models (:mod:`tgdmat.metrics.compare`).

    ``property_guide`` (a noise-aware predictor or its checkpoint, :mod:`tgdmat.guidance`) steers
    each chain toward its prompt's stated property with strength ``guide_scale`` (one draw per
    target; the result carries a ``"property_guidance"`` block).

    ``prompts`` replaces the split's evaluation prompts (one per target, after ``limit``): the
    omission / paraphrase probes (``benchmarks/bench_prompt_omission.py``). ``unconditional=True``
    samples with no prompt at all (the null condition of classifier-free guidance); ``prompts``
    must then be ``None``, and the result says ``"prompts": "none"``.

    ``work`` (a folder) makes the draws resumable: they are written batch by batch there
    (:func:`tgdmat.sample_set.run_csp`; batch ``b`` seeded ``seed + b``) and a rerun with the same
    arguments continues where a killed one stopped; the result then carries a ``"resumable"`` block.
    Not combined with templates or k-draw selection.
    """
    from tgdmat.conditioning import split_prompts
    from tgdmat.metrics import evaluate_csp
    from tgdmat.provenance import hardware

    if select_from < 1:
        raise ValueError(f"select_from must be >= 1, got {select_from}")
    if select_from > 1 and n_samples != 1:
        raise ValueError("select_from > 1 returns one structure per target: use it with n_samples=1")
    if limit is not None:
        dataset = dataset.subset(range(min(limit, len(dataset))))
    targets = dataset.structures()
    if unconditional:
        if prompts is not None:
            raise ValueError("unconditional=True samples without prompts: do not pass prompts as well")
    elif prompts is None:
        prompts = split_prompts(dataset, generator.config.model.prompt,
                                getattr(generator.config.model, "never_stated", ()))
    elif len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts for {len(targets)} targets")
    t0 = time.perf_counter()
    selection = templates = None
    if property_guide is not None and (template_t is not None or select_from > 1):
        raise ValueError("property guidance is combined with neither templates nor k-draw selection here")
    if work is not None and (template_t is not None or select_from > 1):
        raise ValueError("a resumable run (work folder) draws plainly: not with templates or k-draw selection")
    resumable = None
    if template_t is not None:
        if select_from > 1:
            raise ValueError("template_t and select_from > 1 are not combined")
        preds, templates = generator.sample_csp_templated(targets, prompts, template_t, n_samples=n_samples,
                                                           progress=progress, **sample_overrides)
    elif select_from > 1:
        sel = generator.sample_csp_selected(targets, prompts=prompts, draws=select_from, predictor=predictor,
                                            progress=progress, **sample_overrides)
        preds = [[s] for s in sel.structures]
    else:
        guide_kw = {} if property_guide is None else {"property_guide": property_guide, "guide_scale": guide_scale}
        if work is None:
            preds = generator.sample_csp(targets, prompts=prompts, n_samples=n_samples, progress=progress,
                                         **guide_kw, **sample_overrides)
        else:
            from tgdmat.sample_set import run_csp

            preds, resumable = run_csp(generator, targets, prompts, work, n_samples=n_samples, progress=progress,
                                       **guide_kw, **sample_overrides)
            if preds is None:
                raise RuntimeError(f"{work}: {resumable['batches_total']} batches expected, not all written")
    t_sample = time.perf_counter() - t0
    sampled = len(targets) * n_samples * select_from if resumable is None else resumable["crystals_this_call"]
    t0 = time.perf_counter()
    metrics = evaluate_csp(preds, targets, progress=progress, return_per_target=True)
    per_target = {"material_id": [str(i) for i in dataset.material_ids],  # paired comparisons (metrics.compare)
                  "rms": [None if r is None else round(float(r), 6) for r in metrics.pop("per_target_rms")]}
    if select_from > 1:
        first = [[group[0]] for group in sel.candidates]  # the first draw alone: the same-run one-sample baseline
        selection = {**sel.summary(), "first_draw_metrics": evaluate_csp(first, targets, progress=progress)}
    t_match = time.perf_counter() - t0
    strict_block = None
    if strict:
        from tgdmat.metrics import evaluate_csp_strict, find_duplicates

        t0 = time.perf_counter()
        train = generator.template_index().dataset
        dup = find_duplicates(targets, train.structures(), query_ids=list(dataset.material_ids),
                              reference_ids=list(train.material_ids), progress=progress)
        strict_block = evaluate_csp_strict(preds, targets, duplicates=dup, metre_targets=metre_targets,
                                           progress=progress)
        strict_block["duplicates_in_training_split"] = {
            name: {k: v for k, v in entry.items() if k not in ("has_duplicate", "match_index")}
            for name, entry in dup["settings"].items()}
        strict_block["seconds"] = time.perf_counter() - t0
    sc = dataclasses.replace(generator.config.sample, **{k: v for k, v in sample_overrides.items() if v is not None})
    return {
        "task": "csp",
        "dataset": dataset.name,
        "split": dataset.split,
        "n_targets": len(targets),
        "n_samples_per_target": n_samples,
        "draws_per_target": n_samples * select_from,
        **({"prompts": "none"} if unconditional else {}),
        **({"selection": selection} if selection is not None else {}),
        **({"templates": templates} if templates is not None else {}),
        **({"strict": strict_block} if strict_block is not None else {}),
        **({"resumable": resumable} if resumable is not None else {}),
        **({"property_guidance": {"predictor": str(property_guide), "scale": guide_scale,
                                  "method": "classifier guidance with a noise-aware predictor (tgdmat.guidance)"}}
           if property_guide is not None else {}),
        "metrics": metrics,
        "per_target": per_target,
        "sampling": dataclasses.asdict(sc) | {"step_lr_used": sc.step_lr if sc.step_lr is not None else generator.config.step_lr()},
        "seconds": {"sampling": t_sample, "matching": t_match,
                    "sampling_per_crystal": t_sample / sampled if sampled else None},
        "model": {"config": json.loads(generator.config.to_json()), **{k: str(v) for k, v in generator.info.items()}},
        "hardware": hardware(generator.device),
    }


def write_result(result: dict, path: str | os.PathLike, generator=None, checkpoint=None,
                 command: str | None = None) -> Path:
    """Write a CSP/sampling result with its provenance (:func:`tgdmat.provenance.write_result`).

    ``checkpoint`` (a path) is recorded with its sha256; the protocol comes from the split in
    ``result`` and the training protocol stored in the checkpoint (``generator.info``).
    """
    from tgdmat.provenance import write_result as _write

    proto = None if generator is None else generator.info.get("protocol")
    inputs = [] if not checkpoint else (list(checkpoint) if isinstance(checkpoint, (list, tuple)) else [checkpoint])
    return _write(result, path, inputs=inputs, command=command,
                  split=result.get("split"), dataset=result.get("dataset"), checkpoint_protocol=proto)


def step_lr_arg(text: str) -> float | None:
    """``argparse`` type of the benchmarks' ``--step-lr`` options: a step size >= 0, or
    ``"default"`` (``None``: the data set's :data:`tgdmat.config.STEP_LR`)."""
    import argparse

    if text == "default":
        return None
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"--step-lr must be >= 0 or 'default', got {text!r}")
    return value


def torch_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)
