"""A simulated artist: real `generate` and `pick` messages to a running server (or in-process), for experiments and tests.

Two tastes, neither of them the evaluator:
- "plausibility": score = r(x, c) - skate_weight * foot skating - penetration_weight * ground penetration
  (r: the reward model);
- "arm-energy": an artist who likes big, energetic arm movement: score = `arm_energy`, the mean speed
  (m/s) of both wrists relative to the pelvis, smoothed over 0.25 s so that jitter does not count
  (FK joint positions only: no reward model, no evaluator).
The artist picks the best-scoring candidate, or "none are good" when even the best scores below
`none_below`. The CLI is `python server/simulate_picks.py`."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np


from server.data.corpus import Corpus
from server.data.retarget import foot_skating, ground_penetration
from shared.motion import forward_kinematics

TASTES = ("plausibility", "arm-energy")
NONE_BELOW = {"plausibility": 0.4, "arm-energy": 0.15}  # default "none are good" threshold per taste
PELVIS, WRISTS = 0, (20, 21)


@dataclass
class ArtistRule:
    skate_weight: float = 0.5  # plausibility: score per m/s of foot skating
    penetration_weight: float = 5.0  # plausibility: score per metre of mean ground penetration
    none_below: float = 0.4  # "none are good" when the best score is below this (see NONE_BELOW)
    taste: str = "plausibility"  # one of TASTES

    def __post_init__(self):
        if self.taste not in TASTES:
            raise ValueError(f"taste must be one of {TASTES}, got {self.taste!r}")

    @property
    def needs_reward(self) -> bool:
        return self.taste == "plausibility"


def plausibility(rotations: np.ndarray, translation: np.ndarray, fps: float) -> tuple[float, float]:
    """(foot skating m/s, mean ground penetration m) of one motion (T, 22, 4), (T, 3)."""
    positions = forward_kinematics(np.asarray(rotations, np.float64), np.asarray(translation, np.float64))
    return foot_skating(positions, fps), ground_penetration(positions)[0]


def arm_energy(positions: np.ndarray, fps: float, smooth_s: float = 0.25) -> float:
    """Mean speed (m/s) of the two wrists relative to the pelvis, from FK positions (T, 22, 3).

    Positions relative to the pelvis are smoothed by a moving average of `smooth_s` seconds (5 frames
    at 20 fps) before differencing, so frame-to-frame jitter adds little; 0 for motions shorter than
    two smoothed frames."""
    p = np.asarray(positions, np.float64)
    rel = p[:, list(WRISTS)] - p[:, [PELVIS]]  # (T, 2, 3)
    k = max(1, int(round(smooth_s * fps)))
    if len(rel) < k + 1:
        return 0.0
    c = np.cumsum(np.concatenate([np.zeros((1, 2, 3)), rel]), axis=0)
    smooth = (c[k:] - c[:-k]) / k  # (T - k + 1, 2, 3)
    return float(np.linalg.norm(np.diff(smooth, axis=0), axis=-1).mean() * fps)


def taste_scores(rotations: np.ndarray, translation: np.ndarray, fps: float) -> np.ndarray:
    """The arm-energy taste of n motions (n, T, 22, 4), (n, T, 3) -> (n,) m/s."""
    pos = forward_kinematics(np.asarray(rotations, np.float64), np.asarray(translation, np.float64))
    return np.array([arm_energy(pos[i], fps) for i in range(len(pos))])


def score_candidates(reward_model, prompt: str, rotations: np.ndarray, translation: np.ndarray, fps: float,
                     rule: ArtistRule) -> tuple[np.ndarray, dict]:
    """Scores (n,) of n candidates (n, T, 22, 4), (n, T, 3) and their parts (reward_model: None for arm-energy)."""
    if rule.taste == "arm-energy":
        score = taste_scores(rotations, translation, fps)
        return score, {"arm_energy": score.tolist()}
    r = reward_model.reward((np.array(rotations, np.float32), np.array(translation, np.float32)), prompt)
    r = r.astype(np.float64)
    phys = np.array([plausibility(rotations[i], translation[i], fps) for i in range(len(rotations))])
    score = r - rule.skate_weight * phys[:, 0] - rule.penetration_weight * phys[:, 1]
    return score, {"reward": r.tolist(), "skating": phys[:, 0].tolist(), "penetration": phys[:, 1].tolist()}


def choose(scores: np.ndarray, rule: ArtistRule) -> int | None:
    best = int(np.argmax(scores))
    return None if scores[best] < rule.none_below else best


def corpus_prompts(corpus: Corpus, count: int, split: str = "train", seed: int = 0, min_seconds: float = 2.0,
                   max_seconds: float = 10.0) -> list[tuple[str, float]]:
    """`count` (caption, seconds) pairs: random clips of `split`, one of their captions, their duration."""
    rng = np.random.default_rng(seed)
    idx = [i for i in corpus.indices(split) if corpus.clips[i].captions]
    if not idx:
        raise ValueError(f"corpus {corpus.path} has no captioned {split} clips")
    chosen = rng.choice(idx, count, replace=count > len(idx))
    out = []
    for i in chosen:
        clip = corpus.clips[int(i)]
        caption = clip.captions[int(rng.integers(len(clip.captions)))].text
        out.append((caption, float(np.clip(clip.frames / corpus.fps, min_seconds, max_seconds))))
    return out


def _summary(log: list[dict]) -> dict:
    chosen = [e for e in log if e["chosen"] is not None]
    return {"captions": len(log), "chosen": len(chosen), "none_good": len(log) - len(chosen),
            "mean_best_score": float(np.mean([max(e["score"]) for e in log])) if log else None,
            "mean_chosen_score": float(np.mean([e["score"][e["chosen"]] for e in chosen])) if chosen else None}


def simulate_server(endpoint: str, prompts: list[tuple[str, float]], reward_model, rule: ArtistRule, n: int = 4,
                    steps: int | None = None, guidance: float | None = None, seed: int = 0, timeout: float = 120.0,
                    server_key=None, client_secret=None, progress=None) -> dict:
    """Generate and pick through a running server (real messages); returns a summary with a per-caption log."""
    from server.service.client import MotionClient

    log = []
    with MotionClient(endpoint, timeout=timeout, server_key=server_key, client_secret=client_secret) as client:
        hello = client.hello("simulate_picks")
        max_s = float(hello.fields["limits"].get("max_seconds", 10.0))
        for k, (prompt, seconds) in enumerate(prompts):
            res = client.generate(prompt, n=n, seconds=min(seconds, max_s), seed=seed * 100003 + k, steps=steps,
                                  guidance=guidance, timeout=timeout)
            scores, parts = score_candidates(reward_model, prompt, res.rotations, res.translation, res.fps, rule)
            pick = choose(scores, rule)
            client.pick(res.request_id, pick, idempotency_key=f"sim-{res.request_id}")
            log.append({"prompt": prompt, "seconds": min(seconds, max_s), "request_id": res.request_id,
                        "model": res.model, "chosen": pick,
                        "score": scores.tolist(), **parts})
            if progress is not None:
                progress(k + 1, len(prompts))
    return {**_summary(log), "model": log[-1]["model"] if log else None, "log": log}


def simulate_in_process(generator, db_path: Path, prompts: list[tuple[str, float]], reward_model,
                        rule: ArtistRule, n: int = 4, steps: int | None = None, guidance: float | None = None,
                        seed: int = 0, batch: int = 16, progress=None) -> dict:
    """The same rows the server would store (results + picks), without a server: for machines with no pyzmq."""
    from server.model.inference import GenerationRequest
    from server.service.picks import PicksStore

    log = []
    with PicksStore(db_path) as store:
        for s in range(0, len(prompts), batch):
            chunk = prompts[s:s + batch]
            reqs = [GenerationRequest(p, n=n, seconds=min(sec, generator.max_seconds), seed=seed * 100003 + s + j,
                                      guidance=guidance, steps=steps) for j, (p, sec) in enumerate(chunk)]
            outs = generator.generate(reqs)
            for req, (rot, trans) in zip(reqs, outs):
                rid = uuid.uuid4().hex
                params = {"n": n, "seconds": float(req.seconds), "seed": int(req.seed),
                          "guidance": float(generator.default_guidance if guidance is None else guidance),
                          "steps": int(generator.default_steps if steps is None else steps),
                          "family": generator.family}
                store.save_result(rid, req.prompt, params, generator.model_id, int(req.seed), rot, trans,
                                  generator.fps)
                scores, parts = score_candidates(reward_model, req.prompt, rot, trans, generator.fps, rule)
                pick = choose(scores, rule)
                store.record_pick(f"sim-{rid}", rid, pick, None, client="simulate_picks")
                log.append({"prompt": req.prompt, "seconds": float(req.seconds), "request_id": rid,
                            "model": generator.model_id, "chosen": pick,
                            "score": scores.tolist(), **parts})
            if progress is not None:
                progress(len(log), len(prompts))
    return {**_summary(log), "model": generator.model_id, "log": log}
