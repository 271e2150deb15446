"""Which stages a training runs and from which weights: warm starts from a checkpoint (`train.init_from`),
`train.stages`, and the MLD "decoder" stage that fine-tunes the VAE's decoder with its encoder frozen."""
from __future__ import annotations

from pathlib import Path

import torch

from server.model.checkpoint import CheckpointError, read_config
from server.model.config import ConfigError, ModelConfig, RunConfig, from_dict, shape_differences

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO_ROOT / "server" / "checkpoints"


def repo_path(p: str) -> Path:
    """A config path: absolute as given, relative from the repository root."""
    path = Path(p)
    return path if path.is_absolute() else REPO_ROOT / path


def init_checkpoint(cfg: RunConfig) -> tuple[Path, dict] | None:
    """The warm start's checkpoint folder and config.json (train.init_from), checked against cfg.model; or None.

    train.init_from is a folder (absolute, or from the repository root), a name in server/checkpoints, or
    "default" (the bundled default). Its ModelConfig's SHAPE_FIELDS must equal cfg.model's."""
    name = cfg.train.init_from
    if not name:
        return None
    if name == "default":
        from server.model.inference import default_checkpoint_dir

        folder = default_checkpoint_dir()
    else:
        folder = repo_path(name)
        if not folder.is_dir() and (CHECKPOINTS / name).is_dir():
            folder = CHECKPOINTS / name
    try:
        config = read_config(folder)
        init_model = from_dict(ModelConfig, config["model"])
    except (CheckpointError, KeyError) as exc:
        raise ConfigError(f"train.init_from {name!r}: {exc}") from None
    diff = shape_differences(cfg.model, init_model)
    if diff:
        raise ConfigError(f"train.init_from {name!r}: the model config differs from the checkpoint's in "
                          f"{'; '.join(diff)} (use the preset it was trained with)")
    return folder, config


def stage_names(cfg: RunConfig) -> list[str]:
    """The stages this run trains, in order: the family's (MLD "vae", "denoiser"; MDM "denoiser"), those in
    train.stages if set, less those with 0 steps. MLD's "decoder" (train.vae_steps steps) replaces "vae": it
    trains the VAE's decoder only, so the latents (and the init's denoiser and latent scale) stay valid. An MLD
    run without "vae" needs train.init_from (the checkpoint whose VAE, or encoder, to keep)."""
    tc = cfg.train
    mld = cfg.model.family == "mld"
    family = ["vae", "decoder", "denoiser"] if mld else ["denoiser"]
    wanted = [s.strip() for s in tc.stages.split(",") if s.strip()] or [s for s in family if s != "decoder"]
    unknown = [s for s in wanted if s not in family]
    if unknown:
        raise ConfigError(f"train.stages: {', '.join(unknown)} is not a stage of the {cfg.model.family} family "
                          f"(choose from {', '.join(family)})")
    if "vae" in wanted and "decoder" in wanted:
        raise ConfigError("train.stages: choose vae (encoder and decoder) or decoder (decoder only), not both")
    stages = [s for s in family if s in wanted and (tc.steps if s == "denoiser" else tc.vae_steps) > 0]
    if not stages:
        raise ConfigError("train.stages / steps: nothing to train (every chosen stage has 0 steps)")
    if mld and "vae" not in stages and not tc.init_from:
        raise ConfigError("MLD without the vae stage needs train.init_from (the checkpoint whose VAE to keep)")
    return stages


ENCODER_PARTS = ("enc_input", "queries", "encoder", "to_dist")  # MotionVAE attributes the "decoder" stage keeps


def decoder_only(vae: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Freeze the VAE's encoder (eval mode, no gradients); returns the decoder's parameters."""
    for name in ENCODER_PARTS:
        part = getattr(vae, name)
        if isinstance(part, torch.nn.Module):
            part.eval()
        part.requires_grad_(False)
    return [p for p in vae.parameters() if p.requires_grad]
