"""On-disk cache of frozen text embeddings, keyed by (encoder, sha256 of the text).

A frozen encoder maps the same prompt to the same vector every epoch, so each prompt is encoded
once and read back afterwards. Layout::

    <tgdmat cache>/text/<encoder.cache_id>/shard-<16 hex>.safetensors

``encoder.cache_id`` is the encoder's name plus a hash of its settings and weights, so a
different model, pooling or truncation never reads another's vectors. Each shard holds two
tensors: ``keys`` (uint8 ``[k, 32]``, the sha256 digests of the texts) and ``embeddings``
(float32 ``[k, dim]``); safetensors holds plain arrays, nothing is unpickled. Writes go to a
temporary file renamed into place, so a killed run leaves no half-written shard; when more than
:data:`MAX_SHARDS` shards pile up they are merged into one.

A trainable (fine-tuned) encoder changes as it trains, so :func:`encode_cached` refuses it: call
the encoder inside the training step instead.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

MAX_SHARDS = 32


def text_digest(text: str) -> bytes:
    """sha256 of the UTF-8 text (32 bytes): the cache key of one prompt."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Embeddings of one encoder, on disk, with an in-memory index loaded on first use.

    Attributes:
        directory: the shard folder.
        last_hits / last_misses: texts found / encoded in the latest :func:`encode_cached` call.
    """

    def __init__(self, cache_id: str, root: str | os.PathLike | None = None):
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", cache_id)
        if root is None:
            from tgdmat.paths import cache_dir

            self.directory = cache_dir("text", safe)
        else:
            self.directory = Path(root) / safe
            self.directory.mkdir(parents=True, exist_ok=True)
        self.cache_id = cache_id
        self._index: dict[bytes, torch.Tensor] | None = None
        self._loaded: set[str] = set()
        self.last_hits = 0
        self.last_misses = 0

    def _shards(self) -> list[Path]:
        return sorted(self.directory.glob("shard-*.safetensors"))

    def _refresh(self) -> dict[bytes, torch.Tensor]:
        """Read shards not yet indexed (another process may have added some)."""
        from safetensors.torch import load_file

        if self._index is None:
            self._index = {}
        for shard in self._shards():
            if shard.name in self._loaded:
                continue
            try:
                tensors = load_file(str(shard))
                keys, emb = tensors["keys"], tensors["embeddings"]
            except Exception as exc:  # corrupt / foreign file
                raise ValueError(f"embedding cache shard {shard} is unreadable ({exc}); "
                                 "delete it to rebuild") from exc
            if keys.dtype != torch.uint8 or keys.ndim != 2 or keys.shape[1] != 32 or \
                    emb.ndim != 2 or emb.shape[0] != keys.shape[0]:
                raise ValueError(f"embedding cache shard {shard} has keys {tuple(keys.shape)} "
                                 f"{keys.dtype} and embeddings {tuple(emb.shape)}; expected "
                                 "uint8 [k, 32] and [k, dim]")
            for k, row in zip(keys.numpy(), emb):
                self._index[k.tobytes()] = row
            self._loaded.add(shard.name)
        return self._index

    def __len__(self) -> int:
        return len(self._refresh())

    def get(self, digest: bytes) -> torch.Tensor | None:
        """Cached embedding ``[dim]`` of a digest, or None."""
        return self._refresh().get(digest)

    def put(self, digests: Sequence[bytes], embeddings: torch.Tensor) -> Path | None:
        """Store ``embeddings [k, dim]`` under ``digests``; returns the new shard (None if k=0)."""
        from safetensors.torch import save_file

        if len(digests) != embeddings.shape[0]:
            raise ValueError(f"{len(digests)} keys for {embeddings.shape[0]} embeddings")
        if len(digests) == 0:
            return None
        emb = embeddings.detach().float().cpu().contiguous()
        keys = torch.tensor([list(d) for d in digests], dtype=torch.uint8)
        name = "shard-" + hashlib.sha256(b"".join(digests)).hexdigest()[:16] + ".safetensors"
        path = self._write(save_file, {"keys": keys, "embeddings": emb}, name)
        index = self._refresh()
        for d, row in zip(digests, emb):
            index[d] = row
        if len(self._shards()) > MAX_SHARDS:
            self.compact()
        return path

    def _write(self, save_file, tensors: dict[str, torch.Tensor], name: str) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"encoder": self.cache_id})
            os.replace(tmp, self.directory / name)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self._loaded.add(name)
        return self.directory / name

    def compact(self) -> None:
        """Merge all shards into one."""
        from safetensors.torch import save_file

        index = self._refresh()
        old = self._shards()
        if len(old) <= 1:
            return
        digests = sorted(index)
        keys = torch.tensor([list(d) for d in digests], dtype=torch.uint8)
        emb = torch.stack([index[d] for d in digests]).contiguous()
        name = "shard-" + hashlib.sha256(b"".join(digests)).hexdigest()[:16] + ".safetensors"
        self._write(save_file, {"keys": keys, "embeddings": emb}, name)
        for shard in old:
            if shard.name != name:
                shard.unlink(missing_ok=True)
                self._loaded.discard(shard.name)

    def clear(self) -> None:
        """Delete every shard of this encoder."""
        for shard in self._shards():
            shard.unlink(missing_ok=True)
        self._index, self._loaded = None, set()


_CACHES: dict[tuple[str, str], EmbeddingCache] = {}


def cache_for(encoder, root: str | os.PathLike | None = None) -> EmbeddingCache:
    """The (per-process shared) cache of ``encoder`` under ``root`` (default: tgdmat's cache)."""
    key = (encoder.cache_id, str(root))
    if key not in _CACHES:
        _CACHES[key] = EmbeddingCache(encoder.cache_id, root)
    return _CACHES[key]


#: texts encoded between two cache writes: a killed run keeps every finished chunk
CHUNK = 4096


def encode_cached(encoder, texts: Sequence[str], batch_size: int = 32,
                  cache: EmbeddingCache | None = None, progress: bool | None = None) -> torch.Tensor:
    """Embeddings ``[len(texts), encoder.dim]`` (float32, CPU), encoding only texts not cached.

    Args:
        encoder: a frozen :class:`tgdmat.text.encoders.TextEncoder`.
        texts: prompts (duplicates are encoded once).
        batch_size: encoder batch size for the misses.
        cache: where to look/store (default: ``cache_for(encoder)`` under
            ``tgdmat.paths.cache_dir("text", ...)``).
        progress: a progress bar over the texts to encode (default: when there are more than one
            chunk of them). Misses are encoded and stored :data:`CHUNK` at a time, so an
            interrupted run resumes where it stopped.

    Raises:
        ValueError: the encoder is trainable (its embeddings change while it trains).
    """
    if getattr(encoder, "trainable", False):
        raise ValueError(f"encoder {encoder.name!r} is trainable: its embeddings change as it "
                         "trains, so they are not cached; call encoder(texts) in the train step")
    if isinstance(texts, str):
        raise TypeError("encode_cached() takes a list of texts; wrap a single prompt as [text]")
    texts = list(texts)
    if cache is None:
        cache = cache_for(encoder)
    digests = [text_digest(t) for t in texts]
    missing: dict[bytes, str] = {}
    for d, t in zip(digests, texts):
        if d not in missing and cache.get(d) is None:
            missing[d] = t
    if missing:
        keys, todo = list(missing), list(missing.values())
        show = len(todo) > CHUNK if progress is None else progress
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"encoding with {encoder.name}", unit="text")
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            emb = encoder.encode(chunk, batch_size=batch_size)
            if emb.shape != (len(chunk), encoder.dim):
                raise ValueError(f"encoder {encoder.name!r} returned {tuple(emb.shape)} for "
                                 f"{len(chunk)} texts; expected [{len(chunk)}, {encoder.dim}]")
            cache.put(keys[start:start + CHUNK], emb)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
    cache.last_misses = len(missing)
    cache.last_hits = len(texts) - sum(1 for d in digests if d in missing)
    if not texts:
        return torch.zeros(0, encoder.dim)
    return torch.stack([cache.get(d) for d in digests])
