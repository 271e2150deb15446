"""Where is fast motion lost? High-frequency wrist and foot energy kept by the motion VAE and by sampling.

    python server/bench/vae_detail.py                                  # the bundled default, data/corpus
    python server/bench/vae_detail.py --checkpoint runs/x/checkpoint --guidance 1 3 6 --steps 4 8 20

Clips: the corpus's unmirrored clips whose captions name the category (wave, punch, kick; regular
expressions in CATEGORIES), at most `--clips` per category, cropped to the model's longest motion.
Signal: wrist (20, 21) and foot (10, 11) positions relative to the pelvis in the body's heading frame
(metres; FK of the features' inverse, so a drift of the root's yaw or path does not count), each
coordinate linearly detrended and Hann-windowed; `band_power` splits its power per frame (m^2) at
`--cutoff` Hz (2 Hz: waving, punching and kicking are faster).

(a) VAE: each clip encoded (posterior mean) and decoded. `hf_kept` = the reconstructions' high-band
    power / the real clips' (means over clips); `hf_error` = the same for the power of (reconstruction
    - real) (0 = every fast movement reproduced; 1 = as wrong as leaving it out); `lf_kept` the same
    as hf_kept below the cutoff. A ratio is only meaningful where the real power (shown) is not tiny.
    `hf_kept_short`: hf_kept for the middle `--short` seconds of each clip alone (the same latents for less
    motion: if it keeps much more, the bottleneck is the latents' capacity per second of motion).
(b) Sampling: `--n` candidates x `--seeds` per prompt in PROMPTS, foot cleanup off, for each guidance
    x steps; `hf_kept` = mean high-band power of the samples / mean over the category's real clips.
    The row "VAE of real" gives the same ratio for the reconstructions, the ceiling for a perfect
    denoiser with this decoder.
(c) Feet: the physical metrics (server/eval/physics.py: GMD skate ratio, strict skate speed, frames
    below the floor) of held-out (val + test) walking and running clips, of their VAE
    reconstructions (does the decoder itself slide?) and of samples for FEET_PROMPTS (default
    guidance and steps, foot cleanup off: what training alone gives); beside them the mean
    horizontal pelvis speed and the mean foot-joint speed (m/s): a model that stops walking or
    freezes its legs also stops sliding.
Prints markdown tables; `--out FILE.json` also writes every number.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: import from the repository root
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.motion import forward_kinematics
from shared.skeleton import FOOT_JOINTS

GROUPS = {"wrists": (20, 21), "feet": (10, 11)}
CATEGORIES = {"wave": r"\bwav(e|es|ing)\b", "punch": r"\bpunch", "kick": r"\bkick"}
LOCOMOTION = r"\b(walk|walks|walking|run|runs|running|jog|jogs|jogging)\b"
FEET_PROMPTS = ["a person walks forward", "a person walks backwards", "a person runs forward", "a person jogs",
                "a person sits down", "a person kicks", "a person throws a ball", "a person crawls"]
PROMPTS = {
    "wave": ["a person waves with the right hand", "a person waves goodbye"],
    "punch": ["a person throws a punch", "a person punches"],
    "kick": ["a person kicks", "a person kicks with the right leg"],
}


class DetailError(ValueError):
    """Bad input to the benchmark (no clips, a bad argument); the message says what."""


def band_power(x: np.ndarray, fps: float, cutoff: float) -> tuple[float, float]:
    """x (T, ...) one signal over time -> (power below or at `cutoff` Hz, power above), per frame, summed over the
    other axes. Each series is linearly detrended and Hann-windowed; the two add up to the windowed variance."""
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    if T < 4:
        raise DetailError(f"need at least 4 frames, got {T}")
    flat = x.reshape(T, -1)
    t = np.arange(T) - (T - 1) / 2.0
    A = np.stack([np.ones(T), t], axis=1)
    coef, *_ = np.linalg.lstsq(A, flat, rcond=None)
    w = np.hanning(T + 2)[1:-1]  # no zero weights at the ends
    spec = np.abs(np.fft.rfft((flat - A @ coef) * w[:, None], axis=0)) ** 2  # (F, C)
    scale = np.full(spec.shape[0], 2.0)
    scale[0] = 1.0
    if T % 2 == 0:
        scale[-1] = 1.0
    power = (spec * scale[:, None]).sum(axis=1) / (T * T * np.mean(w ** 2))  # (F,)
    freqs = np.fft.rfftfreq(T, 1.0 / fps)
    return float(power[freqs <= cutoff].sum()), float(power[freqs > cutoff].sum())


def body_frame_positions(rotations: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Wire motion (T, 22, 4), (T, 3) -> (T, 22, 3) joints relative to the pelvis, in the heading frame of each frame."""
    from server.model.features import _ry, heading_yaw
    from shared import rotations as rot

    P = forward_kinematics(rotations, translation)
    yaw = heading_yaw(rot.quat_to_matrix(np.asarray(rotations[:, 0], np.float64)))
    return np.einsum("tij,tkj->tki", _ry(-yaw), P - P[:, :1])


def limb_signal(positions: np.ndarray, joints) -> np.ndarray:
    """(T, 22, 3) body-frame positions -> (T, J, 3) the chosen joints."""
    return positions[:, list(joints)]


def category_clips(corpus, pattern: str, limit: int, splits=("train", "val", "test")) -> list[int]:
    """Unmirrored clips of `splits` with a caption matching `pattern`, in corpus order, at most `limit` spread
    over the list."""
    rx = re.compile(pattern, re.IGNORECASE)
    found = [i for i, c in enumerate(corpus.clips) if not c.mirrored and c.frames >= 8 and c.split in splits
             and any(rx.search(cap.text) for cap in c.captions)]
    if len(found) > limit:
        found = [found[int(k)] for k in np.linspace(0, len(found) - 1, limit).round()]
    return found


def _wire(features: torch.Tensor, layout) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) unnormalised features -> their inverse, rotations (T, 22, 4) and translation (T, 3)."""
    from server.model.features import features_to_wire

    q, p = features_to_wire(features[None].float(), layout)
    return q[0].numpy(), p[0].numpy()


def _positions(features: torch.Tensor, layout) -> np.ndarray:
    """(T, D) unnormalised features -> (T, 22, 3) body-frame positions of their inverse."""
    return body_frame_positions(*_wire(features, layout))


@torch.no_grad()
def reconstruct(model, corpus, i: int, frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip i's features (T, D), cropped to the middle `frames` (default and at most max_frames), and their VAE
    reconstruction (posterior mean)."""
    from server.model.features import motion_to_features

    f = torch.from_numpy(motion_to_features(corpus.motion(i), model.layout))
    T = f.shape[0]
    keep = min(T, model.cfg.max_frames, frames or model.cfg.max_frames)
    f = f[(T - keep) // 2:(T - keep) // 2 + keep]
    mask = torch.ones(1, keep, dtype=torch.bool)
    mean, _ = model.vae.encode(model.normalize(f)[None], mask)
    return f, model.denormalize(model.vae.decode(mean, mask))[0]


def feet_rows(model, corpus, indices: list[int], gen=None, n: int = 4, seconds: float = 5.0) -> dict:
    """Skate ratio, strict skate speed and penetrating-frame share (means over clips) of real, reconstructed and
    (with `gen`) sampled motions (n per prompt of FEET_PROMPTS, seed 0, foot cleanup off)."""
    from server.eval.physics import clip_physics
    from server.model.inference import GenerationRequest

    def physics(P):
        out = clip_physics(P, model.cfg.fps, jumps=np.zeros(len(P), bool))
        out["root_speed"] = float(np.linalg.norm(np.diff(P[:, 0, [0, 2]], axis=0), axis=-1).mean() * model.cfg.fps)
        out["foot_speed"] = float(np.linalg.norm(np.diff(P[:, list(FOOT_JOINTS)], axis=0), axis=-1).mean()
                                  * model.cfg.fps)
        return out

    per = {"real": [], "vae": []}
    for i in indices:
        for name, f in zip(("real", "vae"), reconstruct(model, corpus, i)):
            per[name].append(physics(forward_kinematics(*_wire(f, model.layout))))
    if gen is not None:
        reqs = [GenerationRequest(p, n=n, seconds=seconds, seed=k, foot_cleanup=False) for k, p in enumerate(FEET_PROMPTS)]
        per["samples, no cleanup"] = [physics(forward_kinematics(q[j], t[j]))
                                      for q, t in gen.generate(reqs) for j in range(q.shape[0])]
    return {name: {k: float(np.nanmean([r[k] for r in rows]))
                   for k in ("skate_ratio", "skate_speed", "penetration_share", "root_speed", "foot_speed")}
                   | {"clips": len(rows)}
            for name, rows in per.items()}


def vae_reconstructions(model, corpus, indices: list[int], frames: int | None = None
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(real, reconstructed) body-frame positions (T, 22, 3) of each clip, cropped as in `reconstruct`."""
    out = []
    for i in indices:
        f, rec = reconstruct(model, corpus, i, frames)
        out.append((_positions(f, model.layout), _positions(rec, model.layout)))
    return out


def vae_rows(pairs, fps: float, cutoff: float) -> dict:
    """Per joint group: hf_kept, hf_error, lf_kept (ratios of means over clips) and the real mean powers."""
    rows = {}
    for group, joints in GROUPS.items():
        r = np.array([band_power(limb_signal(a, joints), fps, cutoff) for a, _ in pairs])  # (N, 2)
        g = np.array([band_power(limb_signal(b, joints), fps, cutoff) for _, b in pairs])
        e = np.array([band_power(limb_signal(b, joints) - limb_signal(a, joints), fps, cutoff) for a, b in pairs])
        real = np.maximum(r.mean(axis=0), 1e-12)
        rows[group] = {"hf_kept": float(g[:, 1].mean() / real[1]), "hf_error": float(e[:, 1].mean() / real[1]),
                       "lf_kept": float(g[:, 0].mean() / real[0]),
                       "real_hf_cm2": float(r[:, 1].mean() * 1e4), "recon_hf_cm2": float(g[:, 1].mean() * 1e4),
                       "clips": int(len(pairs))}
    return rows


def mean_hf(positions: list[np.ndarray], fps: float, cutoff: float) -> dict:
    """Mean high-band power (cm^2) per joint group over motions."""
    return {group: float(np.mean([band_power(limb_signal(p, joints), fps, cutoff)[1] for p in positions]) * 1e4)
            for group, joints in GROUPS.items()}


def generated_positions(gen, prompts: list[str], n: int, seeds: int, seconds: float, guidance: float,
                        steps: int) -> list[np.ndarray]:
    """Body-frame positions of n x seeds candidates per prompt (foot cleanup off)."""
    from server.model.inference import GenerationRequest

    reqs = [GenerationRequest(p, n=n, seconds=seconds, seed=1000 * s + k, guidance=guidance, steps=steps,
                              foot_cleanup=False)
            for k, p in enumerate(prompts) for s in range(seeds)]
    out = []
    for rotations, translation in gen.generate(reqs):
        out += [body_frame_positions(rotations[j], translation[j]) for j in range(rotations.shape[0])]
    return out


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def run(checkpoint: Path, corpus_path: Path, clips: int, guidances: list[float], steps: list[int], n: int,
        seeds: int, seconds: float, cutoff: float, short_s: float = 2.0, log=print) -> dict:
    from server.data.corpus import Corpus
    from server.model.inference import MotionGenerator

    t0 = time.time()
    gen = MotionGenerator.load(checkpoint, device="cpu")
    model = gen.model
    if model.vae is None:
        raise DetailError(f"{checkpoint}: an MDM checkpoint has no VAE; (a) needs the MLD family")
    fps = model.cfg.fps
    corpus = Corpus(corpus_path)
    result = {"checkpoint": str(checkpoint), "corpus": str(corpus_path), "cutoff_hz": cutoff, "vae": {}, "sampling": {}}
    real_hf, recon_hf = {}, {}
    for cat, pattern in CATEGORIES.items():
        idx = category_clips(corpus, pattern, clips)
        if not idx:
            log(f"no {cat} clips in {corpus_path}; skipped")
            continue
        pairs = vae_reconstructions(model, corpus, idx)
        result["vae"][cat] = vae_rows(pairs, fps, cutoff)
        short = vae_rows(vae_reconstructions(model, corpus, idx, int(round(short_s * fps))), fps, cutoff)
        for group, row in short.items():
            result["vae"][cat][group]["hf_kept_short"] = row["hf_kept"]
        real_hf[cat] = mean_hf([a for a, _ in pairs], fps, cutoff)
        recon_hf[cat] = mean_hf([b for _, b in pairs], fps, cutoff)
    if not result["vae"]:
        raise DetailError(f"{corpus_path}: no clip's caption names any of {', '.join(CATEGORIES)}")
    rows = [[cat, g, r["clips"], f"{r['real_hf_cm2']:.3f}", f"{r['hf_kept']:.3f}", f"{r['hf_error']:.2f}",
             f"{r['lf_kept']:.2f}", f"{r['hf_kept_short']:.3f}"]
            for cat, groups in result["vae"].items() for g, r in groups.items()]
    log(f"\n(a) VAE encode-decode of real clips, {model.cfg.latent_tokens} x {model.cfg.latent_dim} latents, "
        f"cutoff {cutoff} Hz")
    log(_table(["category", "joints", "clips", f"real > {cutoff} Hz cm²", "HF kept", "HF error", "LF kept",
                f"HF kept, {short_s:g} s crops"], rows))

    settings = [(g, s) for g in guidances for s in steps]  # empty: no sampling
    loco = category_clips(corpus, LOCOMOTION, clips, splits=("val", "test"))
    if loco:
        result["feet"] = feet_rows(model, corpus, loco, gen if settings else None, n, seconds)
        log(f"\n(c) Feet of {len(loco)} held-out walking/running clips, of their VAE reconstructions"
            + (f" and of {n} samples for each of {len(FEET_PROMPTS)} prompts" if settings else ""))
        log(_table(["motion", "skate ratio %", "skate speed m/s (< 2 cm)", "frames > 3 cm below floor %",
                    "pelvis speed m/s", "foot speed m/s"],
                   [[k, f"{100 * r['skate_ratio']:.1f}", f"{r['skate_speed']:.3f}", f"{100 * r['penetration_share']:.1f}",
                     f"{r['root_speed']:.2f}", f"{r['foot_speed']:.2f}"] for k, r in result["feet"].items()]))

    header = ["category", "joints", "VAE of real"] + [f"g {g:g}, {s} st" for g, s in settings]
    table = {cat: {grp: [recon_hf[cat][grp] / max(real_hf[cat][grp], 1e-12)] for grp in GROUPS} for cat in real_hf}
    for g, s in settings:
        for cat in real_hf:
            pos = generated_positions(gen, PROMPTS[cat], n, seeds, seconds, g, s)
            hf = mean_hf(pos, fps, cutoff)
            result["sampling"].setdefault(cat, {})[f"g{g:g}_s{s}"] = {grp: hf[grp] / max(real_hf[cat][grp], 1e-12)
                                                                     for grp in GROUPS}
            for grp in GROUPS:
                table[cat][grp].append(hf[grp] / max(real_hf[cat][grp], 1e-12))
    if not settings:
        result["real_hf_cm2"] = real_hf
        result["seconds"] = round(time.time() - t0, 1)
        return result
    log(f"\n(b) High-frequency (> {cutoff} Hz) power of samples / of the category's real clips "
        f"({n} candidates x {seeds} seeds x {len(next(iter(PROMPTS.values())))} prompts, {seconds:g} s, no cleanup)")
    log(_table(header, [[cat, grp] + [f"{v:.3f}" for v in vals] for cat, d in table.items() for grp, vals in d.items()]))
    result["real_hf_cm2"] = real_hf
    result["seconds"] = round(time.time() - t0, 1)
    log(f"\n{result['seconds']:.0f} s")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="default", help="a checkpoint name, 'default' or a folder")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--clips", type=int, default=24, help="clips per category (at most)")
    ap.add_argument("--guidance", type=float, nargs="*", default=[1.0, 3.0, 6.0], help="none: skip (b)")
    ap.add_argument("--steps", type=int, nargs="*", default=[4, 8, 20], help="none: skip (b)")
    ap.add_argument("--n", type=int, default=4, help="candidates per prompt and seed")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--cutoff", type=float, default=2.0, help="Hz")
    ap.add_argument("--short", type=float, default=2.0, help="seconds of the short crops in (a)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from server.model.checkpoint import CheckpointError
    from server.data.corpus import CorpusError
    from server.service.models_folder import CheckpointNameError, locate_checkpoint

    try:
        folder = locate_checkpoint(args.checkpoint)
        result = run(folder, args.corpus, args.clips, args.guidance, args.steps, args.n, args.seeds, args.seconds,
                     args.cutoff, args.short)
    except (DetailError, CheckpointError, CheckpointNameError, CorpusError, OSError) as exc:
        print(f"vae_detail.py: {exc}", file=sys.stderr)
        return 2
    result["command"] = "python server/bench/vae_detail.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
