"""A simulated artist: real `generate` and `pick` messages to a running server, for experiments and tests.

    python server/simulate_picks.py --server tcp://127.0.0.1:5555 --captions 200 --corpus data/corpus
    python server/simulate_picks.py --in-process --checkpoint CKPT --db picks.db --captions 200   # no server/pyzmq

For each of N captions drawn from the corpus (train split by default: the test split stays
for the evaluator), it asks for `--n` candidates at the clip's duration, scores each with a
rule that is NOT the evaluator:

    score = r(x, c) - skate_weight * foot skating (m/s) - penetration_weight * ground penetration (m)

(r: the reward model, cos/2 + 1/2; foot skating and penetration: `server/retarget.py`'s
metrics on the forward-kinematics joints), picks the best candidate, or "none are good" when
even the best scores below `none_below`, and sends the pick (every other candidate rejected).
The server stores results and picks exactly as it does for Blender. `--in-process` makes the
same database rows without a server (the GPU box has no pyzmq): the generator runs here and
`PicksStore` records what the server would.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.corpus import Corpus  # noqa: E402
from server.retarget import foot_skating, ground_penetration  # noqa: E402
from shared.motion import forward_kinematics  # noqa: E402


@dataclass
class ArtistRule:
    skate_weight: float = 0.5  # score per m/s of foot skating
    penetration_weight: float = 5.0  # score per metre of mean ground penetration
    none_below: float = 0.4  # "none are good" when the best score is below this


def plausibility(rotations: np.ndarray, translation: np.ndarray, fps: float) -> tuple[float, float]:
    """(foot skating m/s, mean ground penetration m) of one motion (T, 22, 4), (T, 3)."""
    positions = forward_kinematics(np.asarray(rotations, np.float64), np.asarray(translation, np.float64))
    return foot_skating(positions, fps), ground_penetration(positions)[0]


def score_candidates(reward_model, prompt: str, rotations: np.ndarray, translation: np.ndarray, fps: float,
                     rule: ArtistRule) -> tuple[np.ndarray, dict]:
    """Scores (n,) of n candidates (n, T, 22, 4), (n, T, 3) and their parts."""
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
            "mean_best_reward": float(np.mean([max(e["reward"]) for e in log])) if log else None,
            "mean_chosen_score": float(np.mean([e["score"][e["chosen"]] for e in chosen])) if chosen else None}


def simulate_server(endpoint: str, prompts: list[tuple[str, float]], reward_model, rule: ArtistRule, n: int = 4,
                    steps: int | None = None, guidance: float | None = None, seed: int = 0, timeout: float = 120.0,
                    server_key=None, client_secret=None, progress=None) -> dict:
    """Generate and pick through a running server (real messages); returns a summary with a per-caption log."""
    from server.client import MotionClient

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
            log.append({"prompt": prompt, "request_id": res.request_id, "model": res.model, "chosen": pick,
                        "score": scores.tolist(), **parts})
            if progress is not None:
                progress(k + 1, len(prompts))
    return {**_summary(log), "model": log[-1]["model"] if log else None, "log": log}


def simulate_in_process(generator, db_path: Path, prompts: list[tuple[str, float]], reward_model,
                        rule: ArtistRule, n: int = 4, steps: int | None = None, guidance: float | None = None,
                        seed: int = 0, batch: int = 16, progress=None) -> dict:
    """The same rows the server would store (results + picks), without a server: for machines with no pyzmq."""
    from server.inference import GenerationRequest
    from server.picks import PicksStore

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
                log.append({"prompt": req.prompt, "request_id": rid, "model": generator.model_id, "chosen": pick,
                            "score": scores.tolist(), **parts})
            if progress is not None:
                progress(len(log), len(prompts))
    return {**_summary(log), "model": generator.model_id, "log": log}


def main(argv: list[str] | None = None) -> int:
    from server.evaluator import DEFAULT_REWARD_DIR

    d = ArtistRule()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="tcp://127.0.0.1:5555")
    p.add_argument("--captions", type=int, default=50, help="how many generate + pick rounds")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=int, default=4, help="candidates per caption")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reward", type=Path, default=DEFAULT_REWARD_DIR)
    p.add_argument("--text-cache", type=Path, default=None, help="text cache file for the reward model")
    p.add_argument("--skate-weight", type=float, default=d.skate_weight)
    p.add_argument("--penetration-weight", type=float, default=d.penetration_weight)
    p.add_argument("--none-below", type=float, default=d.none_below)
    p.add_argument("--device", default="cpu", help="device of the reward model (and --in-process generator)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--server-key", type=Path)
    p.add_argument("--client-secret", type=Path)
    p.add_argument("--in-process", action="store_true", help="no server: generate here, write --db directly")
    p.add_argument("--checkpoint", type=Path, help="--in-process: the generator checkpoint")
    p.add_argument("--db", type=Path, help="--in-process: the picks database to write")
    p.add_argument("--log", type=Path, help="write the per-caption log (JSON) here")
    args = p.parse_args(argv)

    from server.reward import RewardModel

    if not (args.reward / "model.safetensors").is_file():
        sys.exit(f"simulate_picks.py: no reward model at {args.reward} (python server/train_evaluator.py --kind reward)")
    reward = RewardModel.load(args.reward, args.device, text_cache=args.text_cache)
    rule = ArtistRule(args.skate_weight, args.penetration_weight, args.none_below)
    prompts = corpus_prompts(Corpus(args.corpus), args.captions, args.split, args.seed)
    say = lambda k, total: print(f"\r{k}/{total} captions", end="", file=sys.stderr, flush=True)  # noqa: E731
    if args.in_process:
        if not args.checkpoint or not args.db:
            sys.exit("simulate_picks.py: --in-process needs --checkpoint and --db")
        from server.inference import MotionGenerator
        from server.preference_data import CachedTextConditioner

        gen = MotionGenerator.load(args.checkpoint, args.device)
        gen.text = CachedTextConditioner(reward.text_cache, gen.device)
        summary = simulate_in_process(gen, args.db, prompts, reward, rule, args.n, args.steps, args.guidance,
                                      args.seed, progress=say)
    else:
        summary = simulate_server(args.server, prompts, reward, rule, args.n, args.steps, args.guidance, args.seed,
                                  args.timeout, args.server_key, args.client_secret, progress=say)
    print(file=sys.stderr)
    if args.log:
        args.log.write_text(json.dumps({"rule": asdict(rule), **summary}, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "log"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
