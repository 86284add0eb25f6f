"""The committed results the book reads: every file says how it was made, and CSP files say what was counted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "results"
MEASURED = sorted(p for p in RESULTS.glob("*.json") if p.name != "published.json")  # published.json: literature


@pytest.mark.parametrize("path", MEASURED, ids=lambda p: p.name)
def test_every_result_records_its_provenance(path):
    res = json.loads(path.read_text())
    for key in ("command", "commit", "versions"):
        assert res.get(key), f"{path.name}: no {key!r}"


CSP = sorted(RESULTS.glob("csp_*.json"))


@pytest.mark.parametrize("path", CSP, ids=lambda p: p.name)
def test_csp_results_state_protocol_and_draws(path):
    res = json.loads(path.read_text())
    assert "test split" in res["protocol"] and res["split"] == "test"
    assert res["n_targets"] == res["metrics"]["n_targets"] == 3785  # the whole official Perov-5 test split
    draws = res.get("draws_per_target", res["n_samples_per_target"])
    if draws > res["n_samples_per_target"]:  # k draws, one returned: never passed off as a one-draw number
        sel = res["selection"]
        assert sel["returned_per_target"] == 1 and sel["draws_per_target"] == draws
        assert sel["first_draw_metrics"]["k_max"] == 1 and res["metrics"]["k_max"] == 1
        assert sel["first_draw_metrics"]["n_targets"] == res["n_targets"]
