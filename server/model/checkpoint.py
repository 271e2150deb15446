"""Checkpoints: a folder with `model.safetensors` (weights) and `config.json` (everything else).

config.json holds `format_version`, the model config, the feature layout and normalisation
statistics, the MLD latent scale, the text encoder id, the training data (corpus fingerprint,
licences, commercial use), the training step, the git commit and the exact command. Loading
needs nothing but this module, the model classes and safetensors: no pickle, no training code.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, ModelConfig, from_dict, to_dict
from .networks import TextToMotion

FORMAT = "sopo-motion-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, of another format version, or inconsistent."""


@dataclass
class CheckpointInfo:
    """Everything in config.json besides the weights, as saved."""

    model: ModelConfig
    mean: np.ndarray
    std: np.ndarray
    latent_scale: float = 1.0
    name: str = ""
    step: int = 0
    corpus: dict = field(default_factory=dict)  # fingerprint, licences, commercial_ok, path
    git_commit: str = ""
    command: str = ""
    extra: dict = field(default_factory=dict)  # e.g. final losses, training time, hardware


def git_commit(repo: Path | None = None) -> str:
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip() if out.returncode == 0 else ""
        if commit:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def save_checkpoint(folder: str | Path, model: TextToMotion, info: CheckpointInfo,
                    dtype: torch.dtype = torch.float32) -> Path:
    """Write the folder (weights first, config last, each atomically). `dtype` float16 halves the size."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    os.replace(tmp, folder / WEIGHTS)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": info.name or folder.name,
        "model": to_dict(info.model),
        "text_encoder": info.model.text_encoder,
        "features": {"layout": "sopo-features-1", "redundant": info.model.redundant_features,
                     "dim": int(len(info.mean)), "mean": [float(v) for v in info.mean],
                     "std": [float(v) for v in info.std]},
        "latent_scale": float(info.latent_scale),
        "parameters": model.parameter_counts(),
        "weights_dtype": str(dtype).replace("torch.", ""),
        "step": int(info.step),
        "corpus": info.corpus,
        "git_commit": info.git_commit or git_commit(),
        "command": info.command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "extra": info.extra,
    }
    tmp = folder / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(config, indent=1))
    os.replace(tmp, folder / CONFIG)
    return folder


def read_config(folder: str | Path) -> dict:
    """config.json of a checkpoint folder, after checking format and version."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    path = folder / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder}: missing {CONFIG} (not a checkpoint folder?)")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a SoPo Motion checkpoint config (format {config.get('format') if isinstance(config, dict) else None!r})")
    version = config.get("format_version")
    if version is None:
        raise CheckpointError(f"{path}: no format_version; this code reads version {FORMAT_VERSION}")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version!r}, this code reads version {FORMAT_VERSION}")
    return config


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> tuple[TextToMotion, CheckpointInfo]:
    """Rebuild the model (eval mode, float32, on `device`) and its info from a checkpoint folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    try:
        model_cfg = from_dict(ModelConfig, config["model"]).validate()
        feats = config["features"]
        mean = np.asarray(feats["mean"], np.float32)
        std = np.asarray(feats["std"], np.float32)
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{folder / CONFIG}: bad or missing entry ({exc})") from None
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{folder}: missing {WEIGHTS}")
    model = TextToMotion(model_cfg, mean, std, float(config.get("latent_scale", 1.0)))
    state = load_file(str(weights))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{weights}: weights do not match the config (missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.to(device).eval()
    info = CheckpointInfo(model=model_cfg, mean=mean, std=std, latent_scale=model.latent_scale,
                          name=config.get("name", folder.name), step=int(config.get("step", 0)),
                          corpus=config.get("corpus", {}), git_commit=config.get("git_commit", ""),
                          command=config.get("command", ""), extra=config.get("extra", {}))
    return model, info
