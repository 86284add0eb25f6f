"""The committed results the book reads: every file says how it was made, and CSP files say what was counted.

Files written by :mod:`tgdmat.provenance` (``provenance_format`` 2) are held to the full standard:
a clean commit, a command a reader can re-run (no ``python -c``, no absolute paths of this
machine), and inputs whose sha256 matches the committed file. Older files (format 1, made before
that module existed) are re-made by ``scripts/regenerate_results.sh``; until then they must still
name their command, commit and versions, and the test below lists them.
"""
from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
MEASURED = sorted(p for p in RESULTS.glob("*.json") if p.name != "published.json")  # published.json: literature
SPLIT_SIZES = {("perov_5", "test"): 3785, ("carbon_24", "test"): 2030}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", MEASURED, ids=lambda p: p.name)
def test_every_result_records_its_provenance(path):
    res = _load(path)
    for key in ("command", "commit", "versions"):
        assert res.get(key), f"{path.name}: no {key!r}"


CURRENT = [p for p in MEASURED if _load(p).get("provenance_format", 1) >= 2]
LEGACY = [p for p in MEASURED if p not in CURRENT]


def test_legacy_results_are_listed_for_regeneration():
    """Format-1 files are not hidden: each one is re-made by scripts/regenerate_results.sh."""
    script = (ROOT / "scripts" / "regenerate_results.sh").read_text() + (ROOT / "scripts" / "baselines.py").read_text()
    script += "".join(p.read_text() for p in (ROOT / "benchmarks").glob("*.py"))
    missing = [p.name for p in LEGACY if p.name not in script and p.stem not in script]
    assert not missing, f"legacy results no script re-makes: {missing}"
    if LEGACY:
        warnings.warn(f"{len(LEGACY)} results still in provenance format 1 (re-make with "
                      f"scripts/regenerate_results.sh): {[p.name for p in LEGACY]}", stacklevel=1)


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.name)
def test_current_results_are_rerunnable_from_a_clean_commit(path):
    res = _load(path)
    assert re.fullmatch(r"[0-9a-f]{40}", res["commit"]), f"{path.name}: commit {res['commit']!r} is not clean"
    cmd = res["command"]
    # "python tgdmat/<pkg>/<module>.py" is how results made before provenance learnt nested modules
    # spell "python -m tgdmat.<pkg>.<module>"; both re-run the same code.
    assert cmd.startswith(("python -m tgdmat", "python benchmarks/", "python scripts/", "python tgdmat/")), cmd
    assert not re.search(r"(^|\s|=)/(work|tmp|home|root)/", cmd), f"{path.name}: absolute path in {cmd!r}"
    for item in res.get("inputs", []):
        assert not Path(item["path"]).is_absolute(), item
        if item.get("committed"):
            from tgdmat.paths import sha256_file

            assert sha256_file(ROOT / item["path"]) == item["sha256"], f"{path.name}: {item['path']} changed"
    if "--checkpoint" in cmd:  # the checkpoint a result names is recorded with its hash
        ck = shlex.split(cmd)[shlex.split(cmd).index("--checkpoint") + 1]
        assert any(i["path"] == ck for i in res["inputs"]), f"{path.name}: {ck} not among the inputs"


CSP = sorted(RESULTS.glob("csp_*.json"))


@pytest.mark.parametrize("path", CSP, ids=lambda p: p.name)
def test_csp_results_state_protocol_and_draws(path):
    res = _load(path)
    assert res["split"] == "test"
    size = SPLIT_SIZES[(res["dataset"], res["split"])]
    limit = re.search(r"--limit (\d+)", res["command"])
    if limit:  # a slice says so in its file name
        assert res["n_targets"] == res["metrics"]["n_targets"] == int(limit.group(1)) < size
        assert f"first{limit.group(1)}" in path.name
    else:
        assert res["n_targets"] == res["metrics"]["n_targets"] == size  # the whole official test split
    if res.get("provenance_format", 1) >= 2:
        assert f"evaluated on {res['dataset']}/test (the official split)" in res["protocol"]
        assert "val minus" in res["model"]["protocol"] and "val minus" in res["protocol"]
    else:  # older phrasings: "... evaluated on the official test split" / "... on perov_5/test (the official split)"
        assert "val minus" in res["protocol"] and re.search(r"official test|/test \(the official split\)", res["protocol"])
    draws = res.get("draws_per_target", res["n_samples_per_target"])
    if draws > res["n_samples_per_target"]:  # k draws, one returned: never passed off as a one-draw number
        sel = res["selection"]
        assert sel["returned_per_target"] == 1 and sel["draws_per_target"] == draws
        assert sel["first_draw_metrics"]["k_max"] == 1 and res["metrics"]["k_max"] == 1
        assert sel["first_draw_metrics"]["n_targets"] == res["n_targets"]


def test_a_committed_csp_number_is_reproduced_exactly():
    """Re-run the committed 32-target slice from its committed checkpoint: the same matches, the same RMSE."""
    import tgdmat
    from tgdmat.benchmark import csp_benchmark

    res = _load(RESULTS / "csp_perov_5_long_text_facts_w3_first32.json")
    (ck,) = [i for i in res["inputs"] if i["path"].endswith(".pt")]
    from tgdmat.paths import sha256_file

    assert sha256_file(ROOT / ck["path"]) == ck["sha256"]
    gen = tgdmat.from_pretrained(ROOT / ck["path"], device="cpu")
    ds = tgdmat.load_dataset(res["dataset"], res["split"], progress=False)
    s = res["sampling"]
    again = csp_benchmark(gen, ds, limit=res["n_targets"], progress=False, num_steps=s["num_steps"],
                          guidance_scale=s["guidance_scale"], seed=s["seed"], batch_size=s["batch_size"])
    for key in ("match_rate_pct", "n_hits", "n_comparable_predictions"):
        assert again["metrics"][key] == res["metrics"][key], key
    # the sentence embeddings are float32 sums whose order depends on how the prompts were
    # batched when they were first encoded (padding changes the matrix shapes), so the RMSE
    # agrees to float32 precision rather than bit for bit
    assert again["metrics"]["rmse"] == pytest.approx(res["metrics"]["rmse"], rel=1e-4)


def test_source_note_names_command_commit_and_checkpoint_hash():
    from tgdmat.provenance import source_note

    path = RESULTS / "csp_perov_5_long_text_facts_w3.json"
    res = _load(path)
    note = source_note(path)
    ckpt = next(i for i in res["inputs"] if i["path"].endswith(".pt"))
    assert note.startswith(f"Source: `results/{path.name}`")
    assert res["command"] in note and res["commit"][:10] in note and ckpt["sha256"][:12] in note
    assert "uncommitted" not in note and "older provenance" not in note
    legacy = source_note({"command": "python x.py", "commit": "abc+dirty"}, names=["x.json"])
    assert "uncommitted changes" in legacy and "older provenance block" in legacy
    assert source_note(res, res).count("Source:") == 2


def test_command_line_names_nested_modules_with_dash_m():
    from tgdmat import provenance

    pkg = Path(provenance.__file__).resolve().parent
    assert provenance.command_line([str(pkg / "__main__.py"), "csp"]) == "python -m tgdmat csp"
    assert (provenance.command_line([str(pkg / "predictors" / "regressor.py"), "--dataset", "perov_5"])
            == "python -m tgdmat.predictors.regressor --dataset perov_5")
    assert provenance.command_line([str(pkg.parent / "benchmarks" / "bench_data.py")]) == "python benchmarks/bench_data.py"
    with pytest.raises(ValueError, match="re-runnable"):
        provenance.command_line(["-c", "x"])
