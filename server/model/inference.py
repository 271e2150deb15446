"""Text in, wire-format motions out: the interface the service and the CLIs use.

    gen = MotionGenerator.load(default_checkpoint_dir())          # or any checkpoint folder
    [(rotations, translation)] = gen.generate([GenerationRequest("a person jumps forward", n=4)])
    # rotations (4, T, 22, 4) float32 wxyz local, translation (4, T, 3) float32, T = round(seconds * fps)

All requests of one `generate` call run as one batch (different lengths via masks; requests
with different step counts run as one batch per step count). A request with a seed gives the
same motions every time; without one a random seed is drawn (see `last_seeds`). Motions start
at the origin (XZ) facing +Z. Unless a request sets `foot_cleanup=False`, feet in predicted
contact are pinned and bodies lifted out of the floor (`foot_cleanup.py`); `last_contacts` holds
the predicted contacts. `prompt_confidence` says how near prompts are to the training captions.
Bad requests raise `RequestError` before any work; `should_stop()` returning True raises
`SamplingCancelled` between denoising steps.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shared.constraints import ConstraintError, Constraints

from .checkpoint import CheckpointError, load_checkpoint, read_config
from .confidence import CaptionIndex, ConfidenceError, PromptConfidence
from .constraints import ConstraintPlan
from .diffusion import SamplingCancelled, sample
from .features import features_to_wire
from .foot_cleanup import clean_foot_contacts
from .text_encoder import TextConditioner

__all__ = ["GenerationRequest", "MotionGenerator", "RequestError", "CheckpointError", "SamplingCancelled",
           "default_checkpoint_dir", "CHECKPOINTS_DIR"]

CHECKPOINTS_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
MAX_GUIDANCE = 50.0
MIN_FRAMES = 2


class RequestError(ValueError):
    """A generation request is invalid; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class GenerationRequest:
    prompt: str
    n: int = 4
    seconds: float = 6.0
    seed: int | None = None
    guidance: float | None = None
    steps: int | None = None
    foot_cleanup: bool = True  # pin feet in predicted contact, lift bodies out of the floor (foot_cleanup.py)
    constraints: Constraints | None = None  # artist controls (shared/constraints.py), exact in the result


def default_checkpoint_dir() -> Path:
    """The bundled default: `server/checkpoints/default/`, or the folder named in `server/checkpoints/DEFAULT`."""
    folder = CHECKPOINTS_DIR / "default"
    if folder.is_dir():
        return folder
    pointer = CHECKPOINTS_DIR / "DEFAULT"
    if pointer.is_file():
        name = pointer.read_text().strip()
        if name:
            return (CHECKPOINTS_DIR / name).resolve()
    return folder


@dataclass
class _Job:
    prompt: str
    n: int
    frames: int
    seed: int
    guidance: float
    steps: int
    foot_cleanup: bool = True
    constraints: Constraints | None = None


class MotionGenerator:
    """A loaded checkpoint plus its text encoder, ready to sample."""

    def __init__(self, model, info, device: torch.device, checkpoint_dir: Path):
        self.model = model
        self.info = info
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        cfg = info.model
        self.model_id: str = info.name or checkpoint_dir.name
        self.family: str = cfg.family
        self.fps: float = float(cfg.fps)
        self.max_seconds: float = float(cfg.max_seconds)
        self.default_steps: int = int(cfg.default_steps)
        self.default_guidance: float = float(cfg.default_guidance)
        self.max_steps: int = int(cfg.max_steps)
        self.licences: list[str] = list(info.corpus.get("licences", []))
        self.commercial_ok: bool = bool(info.corpus.get("commercial_ok", False))
        self.params_millions: float = model.parameter_counts()["total"] / 1e6
        self.text = TextConditioner(cfg.text_encoder, device=str(device))
        self.last_seeds: list[int] = []
        self.constraint_method: str | None = None  # None: the family's default (server/model/constraints.py)
        self.last_plan: ConstraintPlan | None = None  # the last batch's constraints (benchmarks read it)
        self.last_contacts: list[np.ndarray | None] = []  # per request: (n, T, 4) predicted foot contacts, raw motion
        try:  # training-caption embeddings for prompt_confidence; None in checkpoints made before them
            self.caption_index: CaptionIndex | None = CaptionIndex.load(checkpoint_dir, cfg.text_encoder)
        except ConfidenceError as exc:
            raise CheckpointError(str(exc)) from None

    @classmethod
    def load(cls, checkpoint_dir: str | Path, device: str | None = None) -> "MotionGenerator":
        """Load a checkpoint folder; device None = CUDA when available, else CPU. Raises CheckpointError."""
        folder = Path(checkpoint_dir)
        read_config(folder)  # format/version errors before anything heavy
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model, info = load_checkpoint(folder, dev)
        return cls(model, info, dev, folder)

    def warm_up(self) -> None:
        """Load the text encoder and run one tiny generation (first-call costs out of the way)."""
        self.generate([GenerationRequest("a person walks", n=1, seconds=1.0, seed=0, steps=1)])

    # --- validation ---------------------------------------------------------------------------

    def _job(self, req: GenerationRequest) -> _Job:
        if not isinstance(req, GenerationRequest):
            raise RequestError("request", f"expected a GenerationRequest, got {type(req).__name__}")
        if not isinstance(req.prompt, str) or not req.prompt.strip():
            raise RequestError("prompt", "prompt is empty")
        if isinstance(req.n, bool) or not isinstance(req.n, (int, np.integer)) or req.n < 1:
            raise RequestError("n", f"n must be an integer >= 1, got {req.n!r}")
        try:
            seconds = float(req.seconds)
        except (TypeError, ValueError):
            raise RequestError("seconds", f"seconds must be a number, got {req.seconds!r}") from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise RequestError("seconds", f"seconds must be > 0, got {req.seconds!r}")
        if seconds > self.max_seconds + 1e-9:
            raise RequestError("seconds", f"seconds must be at most {self.max_seconds:g} for this model, got {seconds:g}")
        frames = min(max(MIN_FRAMES, int(round(seconds * self.fps))), self.info.model.max_frames)
        steps = self.default_steps if req.steps is None else req.steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= self.max_steps:
            raise RequestError("steps", f"steps must be an integer in [1, {self.max_steps}], got {req.steps!r}")
        guidance = self.default_guidance if req.guidance is None else req.guidance
        try:
            guidance = float(guidance)
        except (TypeError, ValueError):
            raise RequestError("guidance", f"guidance must be a number, got {req.guidance!r}") from None
        if not math.isfinite(guidance) or not 0.0 <= guidance <= MAX_GUIDANCE:
            raise RequestError("guidance", f"guidance must be in [0, {MAX_GUIDANCE:g}], got {req.guidance!r}")
        if req.seed is None:
            seed = secrets.randbits(63)
        elif isinstance(req.seed, bool) or not isinstance(req.seed, (int, np.integer)):
            raise RequestError("seed", f"seed must be an integer or None, got {req.seed!r}")
        else:
            seed = int(req.seed) % (2 ** 63)
        if not isinstance(req.foot_cleanup, (bool, np.bool_)):
            raise RequestError("foot_cleanup", f"foot_cleanup must be true or false, got {req.foot_cleanup!r}")
        job = _Job(req.prompt.strip(), int(req.n), frames, seed, guidance, int(steps), bool(req.foot_cleanup))
        if req.constraints is not None:
            try:
                job.constraints = req.constraints.check(frames, self.fps)
            except (ConstraintError, AttributeError) as exc:
                raise RequestError("constraints", f"constraints: {exc}") from None
        return job

    # --- generation ----------------------------------------------------------------------------

    def _noise(self, job: _Job, frames: int) -> torch.Tensor:
        """Initial noise from the request's own seed (CPU generator: the same on every device)."""
        gen = torch.Generator("cpu").manual_seed(job.seed)
        shape = self.model.diffusion_shape(job.n, job.frames)
        noise = torch.randn(shape, generator=gen)
        if self.family == "mdm" and frames > job.frames:
            noise = torch.nn.functional.pad(noise, (0, 0, 0, frames - job.frames))
        return noise

    @torch.inference_mode()
    def generate(self, requests: list[GenerationRequest], progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per request: rotations (n, T, 22, 4) float32 and translation (n, T, 3) float32."""
        if isinstance(requests, GenerationRequest):
            requests = [requests]
        jobs = [self._job(r) for r in requests]
        self.last_seeds = [j.seed for j in jobs]
        self.last_contacts = [None] * len(jobs)
        if not jobs:
            return []
        groups: dict[int, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.steps, []).append(i)
        total = sum(groups) + 1
        done = 0
        results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(jobs)
        for steps, members in groups.items():
            offset = done
            report = None if progress is None else (lambda i, _t, o=offset: progress(o + i, total))
            outputs = self._generate_batch([jobs[i] for i in members], steps, report, should_stop, total)
            for i, out in zip(members, outputs):
                results[i], self.last_contacts[i] = out[:2], out[2]
            done += steps
        if progress is not None:
            progress(total, total)
        return results  # type: ignore[return-value]

    def _generate_batch(self, jobs: list[_Job], steps: int, progress, should_stop, total):
        frames = max(j.frames for j in jobs)
        dev = self.device
        text = self.text([j.prompt for j in jobs], self.info.model.text_tokens)
        counts = torch.tensor([j.n for j in jobs])
        text = text.index(torch.repeat_interleave(torch.arange(len(jobs)), counts).to(text.pooled.device))
        lengths = torch.tensor([j.frames for j in jobs for _ in range(j.n)], device=dev)
        guidance = torch.tensor([j.guidance for j in jobs for _ in range(j.n)], device=dev)
        noise = torch.cat([self._noise(j, frames) for j in jobs]).to(dev)
        rows = [j.constraints for j in jobs for _ in range(j.n)]
        plan = ConstraintPlan(self.model, rows, [j.frames for j in jobs for _ in range(j.n)], self.fps,
                              self.constraint_method) if any(rows) else None
        self.last_plan = plan
        feats, _ = sample(self.model, text, lengths, noise, guidance, steps, progress=progress,
                          should_stop=should_stop, total=total, edit_x0=plan.edit_x0 if plan else None)
        feats = self.model.denormalize(feats.float())
        rotations, translation = features_to_wire(feats, self.model.layout, *(plan.placement(dev) if plan else ()))
        rotations, translation = rotations.cpu().numpy(), translation.cpu().numpy()
        if plan:   # constraints exact (fixed again after the foot cleanup below)
            rotations, translation = plan.finish(rotations, translation)
        layout = self.model.layout  # predicted foot contacts: in the redundant features only
        contacts = feats[..., layout.contacts].cpu().numpy() if layout.redundant else None
        out, start = [], 0
        for j in jobs:
            rot_j = np.ascontiguousarray(rotations[start:start + j.n, :j.frames], dtype=np.float32)
            trans_j = np.ascontiguousarray(translation[start:start + j.n, :j.frames], dtype=np.float32)
            con_j = None if contacts is None else contacts[start:start + j.n, :j.frames].astype(np.float32)
            if j.foot_cleanup:
                rot_j, trans_j = clean_foot_contacts(rot_j, trans_j, con_j)
                if plan:
                    rot_j, trans_j = plan.finish(rot_j, trans_j, first_row=start)
            out.append((rot_j, trans_j, con_j))
            start += j.n
        return out

    def prompt_confidence(self, prompts: list[str]) -> list[PromptConfidence | None]:
        """Per prompt, how near it is to the training captions; None each when the checkpoint has no caption index."""
        if self.caption_index is None or not prompts:
            return [None] * len(prompts)
        pooled = self.text([p.strip() for p in prompts], 1).pooled.float().cpu().numpy()
        return self.caption_index.score(pooled)
