"""Uniqueness and novelty of generated crystals (issue 21)."""
import pytest

from tgdmat.data import load_dataset, load_splits
from tgdmat.metrics.novelty import novelty_uniqueness


@pytest.fixture(scope="module")
def perov_train():
    return load_splits("perov_5").train.structures()[:120]


def test_copies_of_training_crystals_are_not_novel(perov_train):
    res = novelty_uniqueness(perov_train[:30], perov_train, n_max=None)
    for name in ("literature", "strict"):
        assert res["settings"][name]["novel_pct"] == 0.0
    assert res["n_scored"] == 30


def test_crystals_of_another_data_set_are_all_novel(perov_train):
    carbon = load_dataset("carbon_24", "test").structures()[:20]
    res = novelty_uniqueness(carbon, perov_train, n_max=None)
    assert res["settings"]["literature"]["novel_pct"] == 100.0


def test_a_repeated_crystal_is_not_unique(perov_train):
    gen = perov_train[:20] + [perov_train[3].copy()]
    res = novelty_uniqueness(gen, perov_train[20:], n_max=None)
    lit = res["settings"]["literature"]
    assert lit["unique_pct"] == pytest.approx(100.0 * 20 / 21)


def test_failed_samples_and_invalid_ones_are_not_scored(perov_train):
    gen = [None, perov_train[0], perov_train[1]]
    res = novelty_uniqueness(gen, perov_train[2:10], valid=[True, True, False], n_max=None)
    assert res["n_valid"] == 1 and res["n_scored"] == 1 and res["scored_indices"] == [1]


def test_subsample_is_seeded(perov_train):
    a = novelty_uniqueness(perov_train[:40], perov_train[40:60], n_max=10, seed=3)
    b = novelty_uniqueness(perov_train[:40], perov_train[40:60], n_max=10, seed=3)
    assert a["scored_indices"] == b["scored_indices"] and len(a["scored_indices"]) == 10


def test_unseen_elements_counts_samples_with_elements_absent_from_training(perov_train):
    from pymatgen.core import Lattice, Structure

    from tgdmat.metrics import unseen_elements

    cm = Structure(Lattice.cubic(4.0), ["Cm", "Os", "N", "N", "N"],
                   [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    copies = perov_train[:3]
    out = unseen_elements([*copies, cm, None], perov_train)
    assert out["n_samples"] == 1 and out["elements"] == {"Cm": 1} and out["pct"] == 25.0
    assert unseen_elements(copies, perov_train)["n_samples"] == 0


def test_novelty_reads_the_generating_models_split_and_refuses_a_broken_checkpoint(tmp_path):
    import argparse

    import pytest

    from tgdmat.checkpoint import CheckpointError
    from tgdmat.cli.evaluate import _training_for_novelty
    from tgdmat.config import Config
    from tgdmat.checkpoint import load_checkpoint
    from tgdmat.paths import results_dir

    ck = results_dir() / "checkpoints" / "perov_5_gen_text_facts.pt"
    train = Config.from_json(load_checkpoint(ck, map_location="cpu")["config"]).train
    args = argparse.Namespace(novelty="train", reference=None, dataset="perov_5", holdout_fraction=None,
                              holdout_seed=None, novelty_max=10, seed=0)
    _, cfg = _training_for_novelty(args, {"checkpoint": {"path": str(ck)}})
    assert (cfg["holdout_fraction"], cfg["holdout_seed"]) == (train.holdout_fraction, train.split_seed)
    assert cfg["split_from"] == f"checkpoint {ck}"
    args.holdout_seed = 7  # an option wins, and says so
    _, cfg = _training_for_novelty(args, {"checkpoint": {"path": str(ck)}})
    assert cfg["holdout_seed"] == 7 and cfg["split_from"] == "options"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.pt"):  # never a silent fall-back to the defaults
        _training_for_novelty(args, {"checkpoint": {"path": str(broken)}})
