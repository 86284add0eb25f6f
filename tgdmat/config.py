"""Configuration: plain dataclasses with two named presets, ``quick`` and ``paper``.

Everything that changes a result — network sizes, diffusion constants, loss weights, text
settings, training schedule, sampling steps, the Langevin step size, the guidance scale and
the seed — lives here and is saved inside every checkpoint (as JSON), so a sample can always be
traced back to the settings that made it. Per-call overrides use :func:`dataclasses.replace`.

``paper`` follows the published settings (DiffCSP/TGDMat: CSPNet with 6 layers of width 512,
T = 1000, σ ∈ [0.005, 0.5], AdamW 1e-3, batch 256, EMA, predictor–corrector sampling with a
per-data-set Langevin step size); ``quick`` shrinks the network, the epochs and the sampling steps
so that Perov-5 trains to a non-trivial model in minutes on 2 CPU cores.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field

from tgdmat.denoiser import DenoiserConfig

#: Langevin corrector step size ``step_lr`` per data set and task, from the public DiffCSP
#: (``scripts/evaluate.py``: CSP; ``scripts/generation.py``: generation) and TGDMat code. The
#: public TGDMat code hard-codes the Perov-5 value for every data set; here it is per data set.
STEP_LR: dict[tuple[str, str], float] = {
    ("perov_5", "csp"): 5e-7,
    ("carbon_24", "csp"): 5e-6,
    ("mp_20", "csp"): 1e-5,
    ("perov_5", "gen"): 1e-6,
    ("carbon_24", "gen"): 1e-5,
    ("mp_20", "gen"): 5e-6,
}

TASKS = ("csp", "gen")
PROMPT_KINDS = ("short", "long", "none")
CONDITIONING = ("text", "text+facts")


@dataclass
class ModelConfig:
    """The network, the three diffusion processes, the loss and the text conditioning.

    Attributes:
        task: ``"csp"`` (atom types given, not diffused) or ``"gen"`` (D3PM on types too).
        dataset: data set the model is trained on (decides properties and step sizes).
        denoiser: :class:`tgdmat.denoiser.DenoiserConfig` (``cond_dim`` and ``num_atom_types``
            are filled in by the model).
        num_steps: ``T``, shared by the three processes.
        lattice_schedule: DDPM β schedule for the lattice (``"cosine"``).
        sigma_begin, sigma_end: ``σ_1`` and ``σ_T`` of the wrapped-normal process.
        type_kind: D3PM transition kind (``"absorbing"`` as in TGDMat, or ``"uniform"``).
        cost_lattice, cost_coord, cost_type: loss weights ``λ_L, λ_F, λ_A`` of
            ``L = λ_L L_L + λ_F L_F + λ_A L_A``.
        text_encoder: name for :func:`tgdmat.text.get_encoder` (``"minilm"`` offline default,
            ``"matscibert"`` as in the paper when available).
        prompt: ``"short"`` (template from structure + properties), ``"long"``
            (Robocrystallographer) or ``"none"`` (unconditional baseline).
        conditioning: ``"text"`` (sentence embedding only, as the paper) or ``"text+facts"``
            (sentence embedding plus learned embeddings of the numbers and categories parsed from
            the prompt; see :mod:`tgdmat.conditioning`).
        prompt_variants: how many seeded sentence orders of each short training prompt are
            encoded (one is drawn per crystal and epoch; evaluation uses the fixed order).
        cond_drop_prob: probability of replacing the condition by the learned null embedding
            during training (classifier-free guidance; 0 disables it).
        facts_dim: width of the parsed-facts embedding (``"text+facts"`` only).
    """

    task: str = "csp"
    dataset: str = "perov_5"
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    num_steps: int = 1000
    lattice_schedule: str = "cosine"
    sigma_begin: float = 0.005
    sigma_end: float = 0.5
    type_kind: str = "absorbing"
    cost_lattice: float = 1.0
    cost_coord: float = 1.0
    cost_type: float = 1.0
    text_encoder: str = "minilm"
    prompt: str = "short"
    conditioning: str = "text"
    prompt_variants: int = 4
    cond_drop_prob: float = 0.1
    facts_dim: int = 128

    def __post_init__(self) -> None:
        if isinstance(self.denoiser, dict):
            self.denoiser = DenoiserConfig(**self.denoiser)
        if self.task not in TASKS:
            raise ValueError(f"ModelConfig.task must be one of {TASKS}, got {self.task!r}")
        if self.prompt not in PROMPT_KINDS:
            raise ValueError(f"ModelConfig.prompt must be one of {PROMPT_KINDS}, got {self.prompt!r}")
        if self.conditioning not in CONDITIONING:
            raise ValueError(f"ModelConfig.conditioning must be one of {CONDITIONING}, got {self.conditioning!r}")
        if not 0.0 <= self.cond_drop_prob < 1.0:
            raise ValueError(f"ModelConfig.cond_drop_prob must be in [0, 1), got {self.cond_drop_prob}")


@dataclass
class TrainConfig:
    """The training loop (plain PyTorch; see :mod:`tgdmat.train`)."""

    epochs: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 500
    min_lr_ratio: float = 0.01
    grad_clip: float = 0.5
    ema_decay: float = 0.999
    holdout_fraction: float = 0.1
    eval_every: int = 10
    eval_csp_samples: int = 0
    """CSP tasks: held-out crystals sampled (one draw each, ``sample`` settings) for a match-rate
    check logged at each evaluation as ``holdout_match_rate_pct`` (0: loss only). The checkpoint
    is still selected on the held-out loss."""
    max_train: int | None = None
    """Use only the first ``max_train`` training crystals (quick runs)."""
    num_threads: int | None = None
    bf16: bool = False
    """bfloat16 autocast on CUDA (ignored on CPU)."""
    seed: int = 0


@dataclass
class SampleConfig:
    """Reverse-process settings; every one of them is saved with the model and overridable per call."""

    num_steps: int | None = None
    """Network evaluations along the reverse chain: ``None`` = all ``T`` steps (the paper);
    fewer steps use a strided schedule."""
    step_lr: float | None = None
    """Langevin corrector step size; ``None`` = :data:`STEP_LR` for the data set and task."""
    corrector: bool = True
    guidance_scale: float = 1.0
    """Classifier-free guidance ``w``: ``ε = ε_∅ + w (ε_c − ε_∅)``; 1 = plain conditional."""
    lattice_eta: float = 1.0
    """1 = ancestral DDPM lattice steps (the paper); 0 = DDIM (better for short strided chains)."""
    batch_size: int = 512
    seed: int = 0


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict) -> "Config":
        d = json.loads(text) if isinstance(text, str) else text
        return cls(
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**d["train"]),
            sample=SampleConfig(**d["sample"]),
        )

    def step_lr(self) -> float:
        if self.sample.step_lr is not None:
            return self.sample.step_lr
        return STEP_LR.get((self.model.dataset, self.model.task), 1e-5)


def preset(name: str = "quick", dataset: str = "perov_5", task: str = "csp", **model_overrides) -> Config:
    """The named preset for ``dataset`` and ``task``; keyword arguments override ``ModelConfig`` fields.

    * ``quick``: 3 layers of width 128, 32 Fourier frequencies, T = 1000 for training but
      100-step strided sampling, batch 64, a few epochs: minutes on 2 CPU cores.
    * ``paper``: DiffCSP/TGDMat sizes (6 × 512, T = 1000 sampling steps, batch 256, 1000 epochs
      for Perov-5 / Carbon-24 as in DiffCSP's configs, EMA).
    """
    if name == "quick":
        den = DenoiserConfig(hidden_dim=128, num_layers=3, num_freqs=32, time_dim=64, cond_proj_dim=64)
        model = ModelConfig(task=task, dataset=dataset, denoiser=den, prompt_variants=2)
        train = TrainConfig(epochs=12, batch_size=64, lr=2e-3, warmup_steps=50, eval_every=4, ema_decay=0.99)
        sample = SampleConfig(num_steps=100, batch_size=512)
    elif name == "paper":
        model = ModelConfig(task=task, dataset=dataset, denoiser=DenoiserConfig())
        epochs = {"perov_5": 3000, "carbon_24": 4000, "mp_20": 1000}.get(dataset, 1000)
        train = TrainConfig(epochs=epochs, batch_size=256, lr=1e-3, warmup_steps=500, eval_every=50)
        sample = SampleConfig(num_steps=None)
    else:
        raise ValueError(f"unknown preset {name!r}; choose 'quick' or 'paper'")
    if model_overrides:
        model = dataclasses.replace(model, **model_overrides)
    return Config(model=model, train=train, sample=sample)
