"""Training-time prompt augmentation: paraphrases and attribute dropout (tgdmat.text.prompts)."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from tgdmat.text import PromptFacts, parse_prompt
from tgdmat.text.facts import crystal_system_of
from tgdmat.text.prompts import (
    DATASET_ATTRIBUTES,
    NULL_PROMPT,
    attribute_wordings,
    augmented_prompt,
    drop_attributes,
    facts_subset,
    prompt_from_facts,
    structure_facts,
)
from tgdmat.text.reader import read_prompt

SRTIO3 = PromptFacts("SrTiO3", ("Sr", "Ti", "O"), "cubic", 221, {"heat_ref": -0.1234})


def real_facts(dataset: str, n: int) -> list[PromptFacts]:
    """Facts of ``n`` crystals spread over the shipped test split (read from the CSV)."""
    import pandas as pd
    from pymatgen.core import Structure

    from tgdmat.paths import data_dir
    from tgdmat.text.prompts import DATASET_PROPERTIES

    (prop,) = DATASET_PROPERTIES[dataset]
    df = pd.read_csv(data_dir() / dataset / "test.csv.gz", usecols=["cif", prop])
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, row in df.iloc[:: max(1, len(df) // n)].head(n).iterrows():
            structure = Structure.from_str(row["cif"], fmt="cif")
            out.append(structure_facts(structure, {prop: float(row[prop])}, dataset))
    return out


@pytest.fixture(scope="module")
def crystals():
    return {"perov_5": real_facts("perov_5", 150), "carbon_24": real_facts("carbon_24", 150)}


# ----------------------------------------------------------------------------- today's prompt
def test_no_augmentation_is_todays_prompt():
    for seed in range(10):
        text, kept = augmented_prompt(SRTIO3, "perov_5", rng=seed)
        assert text == prompt_from_facts(SRTIO3, "perov_5", rng=seed)
        assert set(kept) == set(DATASET_ATTRIBUTES["perov_5"])
    assert augmented_prompt(SRTIO3, "perov_5")[0] == prompt_from_facts(SRTIO3, "perov_5")
    assert augmented_prompt(SRTIO3, "perov_5", units=True)[0] == prompt_from_facts(
        SRTIO3, "perov_5", units=True)
    # a generator advances exactly as prompt_from_facts advances it
    g1, g2 = np.random.default_rng(4), np.random.default_rng(4)
    assert [augmented_prompt(SRTIO3, "perov_5", rng=g1)[0] for _ in range(5)] == [
        prompt_from_facts(SRTIO3, "perov_5", rng=g2) for _ in range(5)]


# ----------------------------------------------------------------------------- dropout
def test_dropout_is_seeded():
    attrs = list(DATASET_ATTRIBUTES["mp_20"])
    assert drop_attributes(attrs, 0.5, 3) == drop_attributes(attrs, 0.5, 3)
    r1, r2 = random.Random(8), random.Random(8)
    assert [drop_attributes(attrs, 0.5, r1) for _ in range(20)] == [
        drop_attributes(attrs, 0.5, r2) for _ in range(20)]
    g1, g2 = np.random.default_rng(8), np.random.default_rng(8)
    assert [drop_attributes(attrs, 0.5, g1) for _ in range(20)] == [
        drop_attributes(attrs, 0.5, g2) for _ in range(20)]
    assert len({tuple(drop_attributes(attrs, 0.5, s)) for s in range(50)}) > 10
    same = [augmented_prompt(SRTIO3, "perov_5", rng=11, paraphrase=True, drop_prob=0.4)
            for _ in range(3)]
    assert same[0] == same[1] == same[2]


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
@pytest.mark.parametrize("gen", [random.Random, np.random.default_rng])
def test_dropout_reaches_every_attribute_at_rate_p(p, gen):
    attrs = list(DATASET_ATTRIBUTES["mp_20"])
    rng, n = gen(0), 4000
    dropped = dict.fromkeys(attrs, 0)
    for _ in range(n):
        kept = drop_attributes(attrs, p, rng)
        assert kept == [a for a in attrs if a in kept]  # order kept
        for a in attrs:
            dropped[a] += a not in kept
    sigma = (p * (1 - p) / n) ** 0.5
    for a, k in dropped.items():
        assert abs(k / n - p) < 4 * sigma, (a, k / n)


def test_all_dropped_is_the_null_prompt():
    assert NULL_PROMPT is None
    for seed in range(5):
        assert augmented_prompt(SRTIO3, "perov_5", rng=seed, drop_prob=1.0) == (None, ())
    # with p = 0.5 and five attributes, about 1/32 of the prompts are null
    nulls = sum(augmented_prompt(SRTIO3, "perov_5", rng=s, drop_prob=0.5)[0] is None
                for s in range(640))
    assert 5 <= nulls <= 45
    assert drop_attributes(["formula"], 0.0, 1) == ["formula"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="drop_prob"):
        drop_attributes(["formula"], 1.5, 0)
    with pytest.raises(ValueError, match="need rng"):
        augmented_prompt(SRTIO3, "perov_5", paraphrase=True)
    with pytest.raises(TypeError):
        augmented_prompt(SRTIO3, "perov_5", rng="seed", drop_prob=0.1)


# ----------------------------------------------------------------------------- paraphrases
def test_every_wording_of_every_attribute_reads_back(crystals):
    """All wordings × 300 real crystals: each sentence alone reads back to its one fact."""
    n = 0
    for dataset, facts_list in crystals.items():
        for facts in facts_list:
            for attr in DATASET_ATTRIBUTES[dataset]:
                wordings = attribute_wordings(attr, facts, dataset)
                assert wordings[0] in prompt_from_facts(facts, dataset)  # TGDMat's comes first
                for sentence in wordings:
                    reading = read_prompt(sentence, dataset)
                    assert reading.facts == facts_subset(facts, [attr]), sentence
                    assert not reading.not_understood, sentence
                    n += 1
    assert n > 20000


def test_space_group_and_system_wordings_for_all_230_groups():
    for number in range(1, 231):
        facts = PromptFacts(space_group=number, crystal_system=crystal_system_of(number))
        for attr in ("space_group", "crystal_system"):
            for sentence in attribute_wordings(attr, facts, "mp_20"):
                assert read_prompt(sentence).facts == facts_subset(facts, [attr]), sentence


def test_mp20_property_wordings_read_back():
    facts = PromptFacts(properties={"formation_energy_per_atom": -2.0125, "band_gap": 1.75,
                                    "e_above_hull": 0.0123})
    for attr in facts.properties:
        for sentence in attribute_wordings(attr, facts, "mp_20"):
            assert read_prompt(sentence, "mp_20").facts == facts_subset(facts, [attr]), sentence
    assert "The energy above the convex hull is 12.3 meV/atom." in attribute_wordings(
        "e_above_hull", facts, "mp_20")


def test_augmented_prompts_read_back_to_the_kept_facts(crystals):
    rng = np.random.default_rng(0)
    seen = set()
    for dataset, facts_list in crystals.items():
        for facts in facts_list:
            for _ in range(4):
                text, kept = augmented_prompt(facts, dataset, rng=rng, paraphrase=True,
                                              drop_prob=0.3)
                if text is None:
                    assert kept == ()
                    continue
                want = facts_subset(facts, kept)
                reading = read_prompt(text, dataset)
                assert reading.facts == want and not reading.not_understood, text
                assert read_prompt(text, dataset).facts == want
                seen.add(text)
    assert len(seen) > 1000  # the wordings vary


def test_paraphrase_draws_many_wordings_for_one_crystal():
    texts = {augmented_prompt(SRTIO3, "perov_5", rng=s, paraphrase=True)[0] for s in range(200)}
    assert len(texts) > 150
    for t in texts:
        assert read_prompt(t, "perov_5").facts == SRTIO3


def test_facts_subset():
    assert facts_subset(SRTIO3, []) == PromptFacts()
    assert facts_subset(SRTIO3, ["formula", "heat_ref"]) == PromptFacts(
        formula="SrTiO3", properties={"heat_ref": -0.1234})
    assert facts_subset(SRTIO3, DATASET_ATTRIBUTES["perov_5"]) == SRTIO3


# ------------------------------------------------------------------ the training table (issue 16)
def test_training_table_with_dropout_states_exactly_the_kept_facts(monkeypatch):
    import torch

    from tgdmat.conditioning import build_prompt_table
    from tgdmat.config import ModelConfig
    from tgdmat.data import load_dataset
    from tgdmat.text.reader import read_prompt

    class Enc:  # a deterministic stand-in for the sentence encoder
        name, dim, cache_id = "stub", 4, "stub-encoder-test"

    def fake_encode(encoder, texts, **kw):
        assert all(texts), "the null prompt must never be encoded"
        return torch.stack([torch.tensor([len(t), t.count(" "), t.count("."), 1.0]) for t in texts])

    monkeypatch.setattr("tgdmat.text.encode_cached", fake_encode)
    ds = load_dataset("perov_5", "val").subset(range(40))
    cfg = ModelConfig(prompt="short", conditioning="text+facts", attribute_dropout=0.5, paraphrase=True,
                      prompt_variants=6)
    a = build_prompt_table(ds, cfg, encoder=Enc(), seed=3, progress=False)
    b = build_prompt_table(ds, cfg, encoder=Enc(), seed=3, progress=False)
    assert a.prompts == b.prompts and torch.equal(a.null, b.null)          # seeded
    assert a.variants == 6 and a.null.any() and not a.null.all()          # p=0.5, 5 facts: some all-dropped
    for v in range(6):
        for i in range(40):
            text = a.prompts[v][i]
            f = a.facts[v][i]
            if a.null[v, i]:
                assert text == "" and not f.mask.any() and int(f.space_group) == 0
                assert not a.embeddings[v, i].any()
                continue
            # what the reader understands of the paraphrased text is what the facts say
            read = read_prompt(text, dataset="perov_5").facts
            assert bool(f.mask[0]) == ("heat_ref" in read.properties)
            assert (int(f.space_group) != 0) == (read.space_group is not None)
    # every attribute is dropped somewhere, and kept somewhere
    stated_sg = torch.stack([fb.space_group != 0 for fb in a.facts])
    stated_e = torch.stack([fb.mask[:, 0] for fb in a.facts])
    assert stated_sg.any() and (~stated_sg).any() and stated_e.any() and (~stated_e).any()
    rows = a.null_rows(torch.arange(40), torch.zeros(40, dtype=torch.long))
    assert torch.equal(rows, a.null[0])


def test_augmentation_is_only_for_short_prompts():
    import pytest as _pytest

    from tgdmat.config import ConfigError, ModelConfig

    with _pytest.raises(ConfigError, match="attribute_dropout"):
        ModelConfig(prompt="long", attribute_dropout=0.2)
    with _pytest.raises(ConfigError, match="attribute_dropout"):
        ModelConfig(prompt="short", attribute_dropout=1.0)


def test_never_stated_attribute_is_absent_from_every_augmented_prompt():
    for seed in range(30):
        text, kept = augmented_prompt(SRTIO3, "perov_5", rng=seed, paraphrase=True, drop_prob=0.2, never=("heat_ref",))
        assert "heat_ref" not in kept
        if text is not None:
            read = read_prompt(text, dataset="perov_5").facts
            assert "heat_ref" not in read.properties
    # without dropout every other attribute is still stated
    text, kept = augmented_prompt(SRTIO3, "perov_5", rng=1, never=("space_group", "crystal_system"))
    assert set(kept) == {"formula", "elements", "heat_ref"}
    read = read_prompt(text, dataset="perov_5").facts
    assert read.space_group is None and read.crystal_system is None and read.formula == "SrTiO3"
    with pytest.raises(ValueError, match="no attribute"):
        augmented_prompt(SRTIO3, "perov_5", rng=1, never=("band_gap",))


def test_never_stated_config_is_checked_and_round_trips():
    from tgdmat.config import Config, ConfigError, ModelConfig, preset

    with pytest.raises(ConfigError, match="carbon_24 prompts have no attribute 'heat_ref'"):
        ModelConfig(dataset="carbon_24", never_stated=("heat_ref",))
    with pytest.raises(ConfigError, match="short prompts"):
        ModelConfig(prompt="long", never_stated=("heat_ref",))
    with pytest.raises(ConfigError, match="every attribute"):
        ModelConfig(never_stated=DATASET_ATTRIBUTES["perov_5"])
    with pytest.raises(ConfigError, match="list of attribute names"):
        ModelConfig(never_stated="heat_ref")
    cfg = preset("quick", never_stated=("heat_ref",))
    back = Config.from_json(cfg.to_json())
    assert back.model.never_stated == ("heat_ref",)


def test_never_stated_model_trains_and_evaluates_without_the_fact(monkeypatch):
    import torch

    from tgdmat.conditioning import split_prompts
    from tgdmat.conditioning import build_prompt_table
    from tgdmat.config import ModelConfig
    from tgdmat.data import load_dataset

    class Enc:
        name, dim, cache_id = "stub", 4, "stub-encoder-never"

    monkeypatch.setattr("tgdmat.text.encode_cached",
                        lambda encoder, texts, **kw: torch.stack([torch.tensor([len(t), 0.0, 0.0, 1.0]) for t in texts]))
    ds = load_dataset("perov_5", "val").subset(range(20))
    cfg = ModelConfig(prompt="short", conditioning="text+facts", never_stated=("heat_ref",), prompt_variants=3)
    table = build_prompt_table(ds, cfg, encoder=Enc(), seed=0, progress=False)
    assert table.variants == 3 and not table.null.any()
    for v in range(3):
        assert not table.facts[v].mask[:, 0].any()                       # the energy is never a fact
        assert (table.facts[v].space_group != 0).all()                   # the rest is
        assert all("heat_ref" not in read_prompt(t, dataset="perov_5").facts.properties for t in table.prompts[v])
    prompts = split_prompts(ds, "short", never_stated=("heat_ref",))
    assert len(prompts) == 20
    assert all("heat_ref" not in read_prompt(p, dataset="perov_5").facts.properties for p in prompts)
    assert all(read_prompt(p, dataset="perov_5").facts.space_group is not None for p in prompts)


def test_never_stated_from_the_command_line():
    from tgdmat.cli.main import build_parser, train_config

    args = build_parser().parse_args(["train", "--out", "x", "--conditioning", "text+facts", "--never-stated", "heat_ref"])
    assert train_config(args).model.never_stated == ("heat_ref",)
    args = build_parser().parse_args(["train", "--out", "x"])
    assert train_config(args).model.never_stated == ()
