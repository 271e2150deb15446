"""Configuration dataclasses for the text-to-motion model and its training, and CLI overrides.

`ModelConfig` travels inside every checkpoint (config.json) and is all that is needed to
rebuild the network; `DataConfig` and `TrainConfig` are for `train.py` only.

Overrides come from the command line as `--section.field value` (or `--section.field=value`),
e.g. `--model.latent_dim 256 --train.steps 20000`. An unknown section or field is an error
that names the closest valid one; values are parsed by the field's type.

Presets (`preset(name)`) hold the configurations we train: "mld" and "mdm" (the real
models), "tiny-mld" and "tiny-mdm" (seconds on a CPU, for tests).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass, field

FAMILIES = ("mld", "mdm")
SAMPLERS = ("dpmsolver++", "ddim")


class ConfigError(ValueError):
    """A configuration value, override or file is invalid; the message names it."""


@dataclass
class ModelConfig:
    family: str = "mld"  # "mld" (motion VAE + latent denoiser, fast) | "mdm" (denoiser over frames)
    # motion features (server/model/features.py)
    redundant_features: bool = True  # joint positions, velocities, foot contacts beside root + 6D rotations
    fps: float = 20.0
    max_frames: int = 200  # longest motion the model makes (10 s at 20 fps)
    # text conditioning (server/model/text_encoder.py)
    text_encoder: str = "all-MiniLM-L6-v2"
    text_dim: int = 384  # width of the encoder's embeddings
    text_tokens: int = 24  # token embeddings kept per caption (cross-attention memory); 0 = pooled only
    # denoiser (both families): a pre-norm transformer with cross-attention to the text
    d_model: int = 256
    heads: int = 4
    ff: int = 1024
    layers: int = 4
    dropout: float = 0.1
    patch_frames: int = 1  # frames per transformer token: the MLD VAE's (4 = 0.2 s) or the MDM denoiser's
    # MLD motion VAE (server/model/networks/vae.py)
    latent_tokens: int = 2
    latent_dim: int = 64
    vae_d_model: int = 256
    vae_heads: int = 4
    vae_ff: int = 1024
    vae_layers: int = 4
    vae_dropout: float = 0.1
    # diffusion (server/model/diffusion.py, diffusers schedulers)
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"  # diffusers beta_schedule name
    sampler: str = "dpmsolver++"  # "dpmsolver++" | "ddim"
    default_steps: int = 10
    max_steps: int = 200
    default_guidance: float = 3.0
    cond_drop: float = 0.1  # probability of training without text (classifier-free guidance)

    def validate(self) -> "ModelConfig":
        if self.family not in FAMILIES:
            raise ConfigError(f"model.family must be one of {FAMILIES}, got {self.family!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"model.sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.d_model % self.heads or self.vae_d_model % self.vae_heads:
            raise ConfigError("model.d_model / vae_d_model must be divisible by the number of heads")
        if not 1 <= self.default_steps <= self.max_steps <= self.train_timesteps:
            raise ConfigError("need 1 <= model.default_steps <= model.max_steps <= model.train_timesteps")
        if self.patch_frames < 1:
            raise ConfigError("model.patch_frames must be >= 1")
        if self.max_frames < 2 or self.fps <= 0:
            raise ConfigError("model.max_frames must be >= 2 and model.fps > 0")
        return self

    @property
    def max_seconds(self) -> float:
        return self.max_frames / self.fps


# ModelConfig fields that shape the weights or what they mean (a warm start must keep them; text_tokens may change,
# the cross-attention has no per-token weights, but not between 0 and > 0)
SHAPE_FIELDS = ("family", "redundant_features", "fps", "text_encoder", "text_dim", "d_model", "heads", "ff", "layers",
                "patch_frames", "latent_tokens", "latent_dim", "vae_d_model", "vae_heads", "vae_ff", "vae_layers",
                "train_timesteps", "beta_schedule")


def shape_differences(a: ModelConfig, b: ModelConfig) -> list[str]:
    """`field: a != b` for each of SHAPE_FIELDS where the two configs differ (and text_tokens 0 against > 0)."""
    diff = [f"{k}: {getattr(a, k)!r} != {getattr(b, k)!r}" for k in SHAPE_FIELDS if getattr(a, k) != getattr(b, k)]
    if (a.text_tokens > 0) != (b.text_tokens > 0):
        diff.append(f"text_tokens: {a.text_tokens} != {b.text_tokens} (token cross-attention on/off)")
    return diff


@dataclass
class DataConfig:
    corpus: str = "data/corpus"  # relative paths are taken from the repository root
    min_frames: int = 40  # shortest random crop (2 s)
    crop_min_ratio: float = 0.6  # a crop keeps at least this share of its clip (captions describe whole clips)
    on_device: bool = True  # keep the whole corpus's features (and text embeddings) on the training device
    text_cache: str = ""  # a text-embedding cache file (.safetensors); "" = data/cache/text/<encoder>.safetensors
    caption_sources: str = ""  # comma-separated Caption.source values to use; "" = all
    cache_dir: str = ""  # feature cache folder; "" = data/cache (or $SOPO_CACHE_DIR)
    workers: int = 0  # processes computing the features once (then cached); 0 = one per CPU core


@dataclass
class TrainConfig:
    name: str = "run"  # writes runs/<name>/
    out_dir: str = "runs"
    steps: int = 20000  # denoiser steps
    vae_steps: int = 20000  # MLD only: VAE steps before the denoiser
    batch_size: int = 128
    lr: float = 2e-4
    vae_lr: float = 2e-4
    weight_decay: float = 0.01
    warmup: int = 500
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    kl_weight: float = 1e-4  # MLD VAE
    vel_weight: float = 1.0  # loss on feature differences between frames (smoothness of x0)
    foot_weight: float = 0.0  # foot-contact loss (server/model/contact_loss.py) on the MLD VAE's reconstructions / MDM's x0
    latent_foot_weight: float = 0.0  # MLD denoiser: the same loss on its x0 decoded by the frozen VAE decoder
    foot_target: str = "still"  # foot-contact loss: "still" (feet in contact do not move, MDM's) | "real" (move as
    # real while in contact) | "still+match" ("still" + foot velocities matched to the real ones in every frame)
    init_from: str = ""  # warm start: a checkpoint folder, or a name in server/checkpoints ("default" = the bundled
    # default); its weights, feature statistics and latent scale; the model config must match its shape fields
    stages: str = ""  # comma-separated stages to run ("denoiser" = keep the init's VAE); "" = the family's all
    eval_every: int = 1000
    eval_batches: int = 8
    save_every: int = 5000
    log_every: int = 50
    seed: int = 0
    device: str = ""  # "" = cuda if available, else cpu
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    resume: bool = False  # continue runs/<name>/ from its last training state
    stop_at: int = 0  # stop (saving state) after this many steps in all, VAE steps included; 0 = run to the end
    max_minutes: float = 0.0  # stop (saving state) after this much wall time; resume later; 0 = no limit
    threads: int = 0  # torch CPU threads; 0 = torch's default
    save_dtype: str = "float32"  # checkpoint weights: float32 | float16 (half the size; loaded as float32)
    progress: bool = True  # tqdm progress bar


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# --- presets ------------------------------------------------------------------------------

def preset(name: str) -> RunConfig:
    """The configurations we train; see the module docstring."""
    cfg = RunConfig()
    if name == "mld":
        cfg.model = ModelConfig(family="mld", beta_schedule="scaled_linear", default_guidance=3.0, default_steps=4,
                                d_model=192, heads=4, ff=768, layers=4, dropout=0.1,
                                latent_tokens=2, latent_dim=64, vae_d_model=192, vae_heads=4, vae_ff=768,
                                vae_layers=3, patch_frames=4)
        cfg.train = TrainConfig(name="mld", batch_size=256, lr=3e-4, vae_lr=3e-4, vae_steps=4500, steps=4500,
                                eval_every=1500, save_every=0, log_every=250, save_dtype="float16",
                                foot_weight=1.0, foot_target="still+match")  # docs/training.md "The foot-contact loss"
    elif name == "mdm":
        cfg.model = ModelConfig(family="mdm", beta_schedule="squaredcos_cap_v2", default_guidance=2.5, default_steps=20,
                                d_model=256, heads=4, ff=1024, layers=6, dropout=0.1)
        cfg.train = TrainConfig(name="mdm", batch_size=256, lr=3e-4, steps=9000, eval_every=1000, save_every=2000,
                                log_every=250, save_dtype="float16")
    elif name in ("tiny-mld", "tiny-mdm"):
        cfg.model = ModelConfig(family=name.split("-")[1], d_model=32, heads=2, ff=64, layers=1, dropout=0.0,
                                text_tokens=8, latent_tokens=1, latent_dim=8, vae_d_model=32, vae_heads=2,
                                vae_ff=64, vae_layers=1, vae_dropout=0.0, default_steps=4, max_steps=50,
                                patch_frames=2 if name == "tiny-mld" else 1,
                                beta_schedule="scaled_linear" if name == "tiny-mld" else "squaredcos_cap_v2")
        cfg.data = DataConfig(min_frames=16, on_device=True, workers=1)
        cfg.train = TrainConfig(steps=20, vae_steps=20, batch_size=8, lr=2e-3, vae_lr=2e-3, warmup=0,
                                eval_every=10, eval_batches=1, save_every=0, log_every=5, ema_decay=0.9,
                                progress=False)
    else:
        raise ConfigError(f"unknown preset {name!r}; choose one of mld, mdm, tiny-mld, tiny-mdm")
    return cfg


# --- overrides -----------------------------------------------------------------------------

def _parse_value(text: str, tp, where: str):
    if tp is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true/false, got {text!r}")
    try:
        return tp(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {text!r}") from None


def _field_types(obj) -> dict[str, type]:
    hints = typing.get_type_hints(type(obj))
    return {f.name: hints[f.name] for f in dataclasses.fields(obj)}


def set_value(cfg, dotted: str, value) -> None:
    """Set `section.field` (or a top-level field of a flat dataclass) from a string or value."""
    parts = dotted.split(".")
    obj = cfg
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(obj)]
        if part not in names:
            prefix = ".".join(parts[:depth])
            options = [f"{prefix}.{n}" if prefix else n for n in names]
            guess = difflib.get_close_matches(dotted, options, n=1) or difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else f"; valid: {', '.join(options)}"
            raise ConfigError(f"unknown config key {dotted!r}{hint}")
        if depth == len(parts) - 1:
            tp = _field_types(obj)[part]
            if dataclasses.is_dataclass(tp):
                raise ConfigError(f"{dotted!r} is a section; set one of its fields, e.g. --{dotted}.<field>")
            setattr(obj, part, _parse_value(value, tp, dotted) if isinstance(value, str) else tp(value))
        else:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(f"unknown config key {dotted!r}: {'.'.join(parts[:depth + 1])} is not a section")


def apply_overrides(cfg, args: list[str]):
    """Apply `--a.b value` / `--a.b=value` pairs in order; anything else is an error."""
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise ConfigError(f"unexpected argument {arg!r}; overrides look like --model.latent_dim 256")
        key = arg[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"{arg} needs a value")
            value = args[i + 1]
            i += 2
        set_value(cfg, key, value)
    return cfg


# --- (de)serialisation ------------------------------------------------------------------------

def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, data: dict):
    """Build dataclass `cls` from a dict; unknown keys are errors, missing keys take defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    types = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {unknown}")
    kwargs = {}
    for key, value in data.items():
        tp = types[key]
        kwargs[key] = from_dict(tp, value) if dataclasses.is_dataclass(tp) else value
    return cls(**kwargs)


def dumps(cfg) -> str:
    return json.dumps(to_dict(cfg), indent=1)
