"""Constraint-aware sampling: artist controls (shared/constraints.py) steer every denoising step, then hold exactly.

One exact fix-up in wire space (`constraint_fixup.fix_motion`) does all the geometry. During
sampling, each step's x0 prediction is turned into a motion, fixed up, and the change is brought
back as a change of the model's features (`feature_delta`: the features of the fixed motion minus
those of the unfixed one, so everything no constraint touches stays the model's own). How the
change enters the next step depends on the backbone (`METHODS`):

- MDM (frame features): ``replace``: the features are overwritten with the fixed ones (inpainting
  by replacement on x0; the solver re-noises it for the next step).
- MLD (VAE latents): ``encode``: decode x0, fix, encode the fixed features back (the VAE's encoder
  is an amortised projection onto the latent space); ``optimise``: a few Adam steps on the latent
  so that its decoding matches the fixed features; ``final``: no steering, fix-up only.
After sampling, `finish` runs the fix-up once more on the decoded motions: the constraints hold
exactly whatever the backbone did. server/bench/controls.py measures the methods (pose error before
the fix-up, joint speed where poses join, text following, latency); the defaults come from it:
MLD ``encode`` kept the prompt best (evaluator text cosine 0.69 averaged over the controls, against
0.67 for ``optimise`` and for ``final``; 0.79 without constraints) and left the least to fix (real
poses 7.2 cm from their targets at the start frame before the fix-up, 10.4 cm unsteered), for about
0.25 s more CPU per 4 x 10 s. MDM ``replace`` puts each step's prediction on the constraints (on the
tiny test model, under half the unsteered pose error); no trained MDM checkpoint was at hand to
benchmark it further.

`add_constraint_arguments(parser)` / `constraints_from_args(args)` are generate.py's flags.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shared.constraints import (Constraints, ConstraintError, KeepJoints, PoseKey, RootPath, WIRE_FPS,
                                clip_frames, LOWER_BODY, UPPER_BODY)
from shared.motion import Motion, MotionError
from shared.skeleton import JOINT_INDEX, NUM_JOINTS

from .constraint_fixup import fix_motion, placement
from .features import features_to_wire, motion_to_features

METHODS = {"mdm": ("replace", "final"), "mld": ("encode", "optimise", "final")}
DEFAULT_METHOD = {"mdm": "replace", "mld": "encode"}
OPTIMISE_ITERATIONS = 3
OPTIMISE_LR = 0.1


@dataclass
class _Row:
    index: int                 # row in the batch
    constraints: Constraints
    frames: int


class ConstraintPlan:
    """The constraints of one sampling batch: per-step steering (`edit_x0`), start placement, final fix-up.

    rows: one entry per batch row (candidate), None where a row has no constraints; frames: each
    row's length. Rows without constraints are never touched, so their motions do not change.
    """

    def __init__(self, model, rows: list[Constraints | None], frames: list[int], fps: float,
                 method: str | None = None):
        family = model.cfg.family
        self.method = method or DEFAULT_METHOD[family]
        if self.method not in METHODS[family]:
            raise ValueError(f"constraint method {self.method!r} is not one of {METHODS[family]} for {family}")
        self.model = model
        self.fps = float(fps)
        self.rows = [_Row(i, c, f) for i, (c, f) in enumerate(zip(rows, frames)) if c is not None and not c.is_empty()]
        self.batch = len(rows)
        self.max_frames = max(frames)
        starts = [placement(c) for c in rows]
        self.start_yaw = torch.tensor([s[0] for s in starts], dtype=torch.float64)
        self.start_xz = torch.tensor(np.stack([s[1] for s in starts]), dtype=torch.float64)
        self.unfixed: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # row -> the sampled motion before its fix-up

    def __bool__(self) -> bool:
        return bool(self.rows)

    # --- wire <-> features ------------------------------------------------------------------

    def _fix(self, row: _Row, rotations: np.ndarray, translation: np.ndarray, again: bool = False):
        return fix_motion(rotations[:row.frames], translation[:row.frames], row.constraints, self.fps,
                          stretch_loop=not again)

    def feature_delta(self, features: torch.Tensor) -> torch.Tensor:
        """(R, T, D) unnormalised features of the constrained rows -> the change their fix-up makes (R, T, D)."""
        layout = self.model.layout
        idx = [r.index for r in self.rows]
        q, p = features_to_wire(features, layout, self.start_yaw[idx], self.start_xz[idx])
        q, p = q.double().cpu().numpy(), p.double().cpu().numpy()
        delta = np.zeros(features.shape, dtype=np.float32)
        for k, row in enumerate(self.rows):
            T = row.frames
            fixed_q, fixed_p = self._fix(row, q[k], p[k])
            before = motion_to_features(Motion(q[k, :T], p[k, :T], self.fps), layout)
            after = motion_to_features(Motion(fixed_q, fixed_p, self.fps), layout)
            delta[k, :T] = after - before
        return torch.from_numpy(delta).to(features.device, features.dtype)

    # --- the sampler's hook -----------------------------------------------------------------

    def edit_x0(self, step: int, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """diffusion.sample's hook: the x0 the solver should use at this step (constrained rows steered)."""
        if not self.rows or self.method == "final":
            return x0
        model = self.model
        idx = torch.tensor([r.index for r in self.rows], device=x0.device)
        mask = (torch.arange(x0.shape[1] if model.vae is None else self.max_frames, device=x0.device)[None]
                < torch.tensor([r.frames for r in self.rows], device=x0.device)[:, None])
        sub = x0[idx]
        if model.vae is None:                                           # MDM: replacement on x0
            features = model.denormalize(sub.float())
            sub = sub + (self.feature_delta(features) / model.feature_std).to(sub.dtype) * mask[..., None]
        else:
            decoded = model.from_diffusion_space(sub, mask)             # normalised features (R, T, D)
            features = model.denormalize(decoded.float())
            target = model.normalize(features + self.feature_delta(features)) * mask[..., None]
            if self.method == "encode":
                sub = model.to_diffusion_space(target, mask, sample=False).to(sub.dtype)
            else:
                sub = self._optimise(sub, target, mask)
        out = x0.clone()
        out[idx] = sub
        return out

    def _optimise(self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A few Adam steps on the latent so that its decoding matches the fixed features."""
        model = self.model
        with torch.inference_mode(False), torch.enable_grad():
            z = z.clone().detach().requires_grad_(True)
            target, mask = target.clone(), mask.clone()
            weight = mask[..., None].float()
            opt = torch.optim.Adam([z], lr=OPTIMISE_LR)
            for _ in range(OPTIMISE_ITERATIONS):
                opt.zero_grad()
                loss = ((model.from_diffusion_space(z, mask) - target).pow(2) * weight).sum() / weight.sum()
                loss.backward()
                opt.step()
        return z.detach()

    # --- before and after the wire ----------------------------------------------------------

    def placement(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(start yaw (B,), start ground place (B, 2)) for features_to_wire."""
        return self.start_yaw.to(device), self.start_xz.to(device)

    def finish(self, rotations: np.ndarray, translation: np.ndarray, first_row: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
        """The exact fix-up of each constrained row: (R, T, 22, 4), (R, T, 3) holding batch rows
        first_row .. first_row + R - 1 -> the same, fixed (float32; unconstrained rows untouched)."""
        rotations, translation = rotations.copy(), translation.copy()
        for row in self.rows:
            k = row.index - first_row
            if 0 <= k < len(rotations):
                again = row.index in self.unfixed          # fixed once already (then foot-cleaned): no re-timing
                if not again:
                    self.unfixed[row.index] = (rotations[k, :row.frames].copy(), translation[k, :row.frames].copy())
                q, p = self._fix(row, rotations[k], translation[k], again)
                rotations[k, :row.frames] = q
                translation[k, :row.frames] = p
        return rotations, translation


# --- generate.py's flags --------------------------------------------------------------------

class ConstraintArgumentError(ValueError):
    """A constraint flag is unusable (missing file, bad format, impossible value); the message says which."""


def add_constraint_arguments(parser: argparse.ArgumentParser) -> None:
    """The artist controls as flags (constraints_from_args reads them back)."""
    g = parser.add_argument_group("constraints (artist controls)")
    g.add_argument("--start-pose", metavar="FILE.npz", help="start from a pose of this motion (its place and heading "
                   "too): by default its last frame, so the new motion continues it")
    g.add_argument("--start-frame", type=int, default=-1, metavar="K",
                   help="--start-pose: the frame of FILE to start from (default -1: the last)")
    g.add_argument("--end-pose", metavar="FILE.npz", help="end in a pose of this motion (its place and heading too): "
                   "by default its first frame")
    g.add_argument("--end-pose-frame", type=int, default=0, metavar="K",
                   help="--end-pose: the frame of FILE to end in (default 0: the first)")
    g.add_argument("--end-frame", type=int, default=None, metavar="N",
                   help="--end-pose: the frame of the new motion that takes the pose (default: its last)")
    g.add_argument("--end-anywhere", action="store_true",
                   help="--end-pose: pin the body's pose only, not its place and heading")
    g.add_argument("--loop", action="store_true", help="make a cycle: the last frame continues into the first")
    g.add_argument("--root-path", metavar="FILE.json|'x,z;x,z;...'",
                   help="the root follows these ground points (metres, Y-up: x and z), facing along them; "
                   "a JSON file holds a list of [x, z] or {\"points\", \"times\" (s) or \"speed\" (m/s)}")
    g.add_argument("--path-speed", type=float, default=None, metavar="M/S",
                   help="--root-path: walk it at this speed (default: the motion's own pace, ending at the path's end)")
    g.add_argument("--keep-joints", metavar="upper|lower|JOINTS",
                   help="keep these joints of --source exactly and make the rest anew: 'upper', 'lower' (with the "
                   "root's path), or joint names/indices separated by commas")
    g.add_argument("--source", metavar="FILE.npz", help="--keep-joints: the motion to keep joints of (as long as "
                   "the new one: --seconds)")


def _load(path: str, flag: str) -> Motion:
    try:
        motion = Motion.load(path)
    except FileNotFoundError:
        raise ConstraintArgumentError(f"{flag}: {path} does not exist") from None
    except (OSError, ValueError, KeyError, MotionError) as exc:
        raise ConstraintArgumentError(f"{flag}: cannot read {path} as a motion .npz: {exc}") from None
    if abs(motion.fps - WIRE_FPS) > 1e-6:
        raise ConstraintArgumentError(f"{flag}: {path} is at {motion.fps:g} fps; constraints need {WIRE_FPS:g} fps")
    return motion


def _pose(motion: Motion, frame: int, flag: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    T = motion.num_frames
    if not -T <= frame < T:
        raise ConstraintArgumentError(f"{flag}: {path} has {T} frames; frame {frame} is not one of them")
    return motion.rotations[frame].astype(np.float64), motion.translation[frame].astype(np.float64)


def parse_root_path(text: str) -> RootPath:
    """'x,z;x,z;...' or a JSON file (a list of [x, z], or {"points", "times"?, "speed"?}) -> RootPath."""
    if Path(text).suffix.lower() == ".json" or Path(text).is_file():
        try:
            data = json.loads(Path(text).read_text())
        except FileNotFoundError:
            raise ConstraintArgumentError(f"--root-path: {text} does not exist") from None
        except (OSError, ValueError) as exc:
            raise ConstraintArgumentError(f"--root-path: cannot read {text} as JSON: {exc}") from None
        if isinstance(data, list):
            data = {"points": data}
        if not isinstance(data, dict) or "points" not in data or set(data) - {"points", "times", "speed"}:
            raise ConstraintArgumentError(f"--root-path: {text} must hold a list of [x, z] points or an object "
                                          "with 'points' and optionally 'times' or 'speed'")
        try:
            points = np.array(data["points"], dtype=np.float64)
            times = None if data.get("times") is None else np.array(data["times"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ConstraintArgumentError(f"--root-path: {text}: points and times must be numbers") from None
        return RootPath(points, times, data.get("speed"))
    try:
        points = [[float(v) for v in pair.split(",")] for pair in text.replace(" ", "").strip(";").split(";")]
    except ValueError:
        raise ConstraintArgumentError(f"--root-path: expected 'x,z;x,z;...' (metres) or a .json file, "
                                      f"got {text!r}") from None
    if any(len(p) != 2 for p in points):
        raise ConstraintArgumentError(f"--root-path: each point is 'x,z' (two numbers), got {text!r}")
    return RootPath(np.array(points, dtype=np.float64))


def parse_joints(text: str) -> tuple[int, ...]:
    """'upper' | 'lower' | 'left_wrist,18,...' -> sorted joint indices."""
    word = text.strip().lower()
    if word == "upper":
        return UPPER_BODY
    if word == "lower":
        return LOWER_BODY
    out = []
    for item in (s.strip() for s in word.split(",") if s.strip()):
        if item.isdigit() and int(item) < NUM_JOINTS:
            out.append(int(item))
        elif item in JOINT_INDEX:
            out.append(JOINT_INDEX[item])
        else:
            raise ConstraintArgumentError(f"--keep-joints: {item!r} is not 'upper', 'lower', a joint index "
                                          f"(0..{NUM_JOINTS - 1}) or a joint name ({', '.join(JOINT_INDEX)})")
    if not out:
        raise ConstraintArgumentError("--keep-joints: name at least one joint")
    return tuple(sorted(set(out)))


def constraints_from_args(args: argparse.Namespace) -> Constraints | None:
    """The Constraints the flags ask for (validated against --seconds), or None; ConstraintArgumentError if unusable."""
    seconds = getattr(args, "seconds", None) or 6.0
    frames = clip_frames(seconds)
    c = Constraints()
    if args.start_pose:
        q, p = _pose(_load(args.start_pose, "--start-pose"), args.start_frame, "--start-pose", args.start_pose)
        c.start_pose = PoseKey(q, p, 0, None, True)
    if args.end_pose:
        q, p = _pose(_load(args.end_pose, "--end-pose"), args.end_pose_frame, "--end-pose", args.end_pose)
        frame = frames - 1 if args.end_frame is None else args.end_frame
        c.end_pose = PoseKey(q, p, frame, None, not args.end_anywhere)
    elif args.end_frame is not None or args.end_anywhere:
        raise ConstraintArgumentError("--end-frame and --end-anywhere go with --end-pose FILE.npz")
    c.loop = bool(args.loop)
    if args.root_path:
        c.root_path = parse_root_path(args.root_path)
        if args.path_speed is not None:
            c.root_path.speed = args.path_speed
    elif args.path_speed is not None:
        raise ConstraintArgumentError("--path-speed goes with --root-path")
    if args.keep_joints or args.source:
        if not (args.keep_joints and args.source):
            raise ConstraintArgumentError("--keep-joints and --source go together")
        source = _load(args.source, "--source")
        if source.num_frames != frames:
            raise ConstraintArgumentError(
                f"--source {args.source} has {source.num_frames} frames ({source.num_frames / WIRE_FPS:g} s at "
                f"{WIRE_FPS:g} fps) but the new motion has {frames} (--seconds {seconds:g}): pass --seconds "
                f"{source.num_frames / WIRE_FPS:g}")
        c.keep_joints = KeepJoints(parse_joints(args.keep_joints), source.rotations, source.translation)
    if c.is_empty():
        return None
    try:
        return c.check(frames)
    except ConstraintError as exc:
        raise ConstraintArgumentError(f"constraints: {exc}") from None
