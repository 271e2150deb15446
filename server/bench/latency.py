"""Sampling latency: text in, wire-format motions out (text encoding included). One JSON line per setting.

    python server/bench/latency.py                            # the bundled default, n 1 4 8, seconds 5 10
    python server/bench/latency.py --checkpoint runs/mdm/checkpoint --steps 10 20
    python server/bench/latency.py --peers                    # also time MDM-50 / MLD-50 in this process

Keys: backbone, checkpoint, default (true for the bundled default), n, seconds, steps, device,
median_s, min_s, params_millions (+ other_cpu_cores, clean, calib_gflops when the peers' timer
is used). With --peers, `../shared/peers/latency.py` (beside the repository) times the peers'
samplers in the same process run and the speed-ups over each peer are printed; absolute CPU
times drift by up to 2x between runs, ratios taken in one run do not.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: import from the repository root, and not from server/
    # (a module beside this file must not shadow the peers' top-level packages)
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from server.model.inference import GenerationRequest, MotionGenerator, default_checkpoint_dir
from server.service.models_folder import locate_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO_ROOT.parent / "shared" / "peers"
PROMPTS = ["a person walks forward", "a person jumps in place", "someone waves with the right hand",
           "a person runs and turns left", "a man kicks with the left leg"]


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def load_peers_module():
    """The peers' latency.py as a module, or None (with the reason on stderr)."""
    script = PEERS_DIR / "latency.py"
    if not script.is_file():
        log(f"--peers: {script} not found (the peers' folder sits beside the repository as ../shared/peers); "
            "skipping the peer comparison")
        return None
    sys.path.insert(0, str(PEERS_DIR))
    import importlib

    return importlib.import_module("latency")


def simple_timer(fn, repeats: int):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), None, 0, len(ts), True, None


def bench_checkpoint(path: Path, is_default: bool, args, timer) -> list[dict]:
    gen = MotionGenerator.load(path, device=args.device)
    gen.warm_up()
    rows = []
    for steps in (args.steps or [gen.default_steps]):
        for seconds in args.seconds:
            for n in args.n:
                counter = iter(range(10 ** 9))

                def run():
                    gen.text._memory.clear()  # text encoding is part of the measured time
                    k = next(counter)
                    gen.generate([GenerationRequest(PROMPTS[k % len(PROMPTS)], n=n, seconds=seconds, seed=k,
                                                    steps=steps)])

                log(f"{gen.model_id} ({gen.family}) n={n} seconds={seconds} steps={steps}")
                med, mn, other, discarded, used, clean, gflops = timer(run)
                row = {"backbone": gen.family, "checkpoint": str(path), "default": is_default, "n": n,
                       "seconds": seconds, "steps": steps, "device": str(gen.device), "median_s": round(med, 4),
                       "min_s": round(mn, 4), "params_millions": round(gen.params_millions, 3)}
                if gflops is not None:
                    row.update(other_cpu_cores=other, discarded_runs=discarded, runs_used=used, clean=clean,
                               calib_gflops=gflops)
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def bench_peers(peers, args) -> list[dict]:
    """MDM-50 and MLD-50 from the peers' own code at 196 frames (their maximum), n as given."""
    rows = []

    def timed(fn):
        with contextlib.redirect_stdout(sys.stderr):  # the peers' own prints would break our JSON lines
            return peers.time_runs(fn, args.repeats, max_other=args.max_other, max_wait=args.max_wait)

    for name in args.peer_list.split(","):
        try:
            with contextlib.redirect_stdout(sys.stderr):  # the peers print while building
                if name == "mld":
                    model, cfg = peers.build_mld()
                    steps = int(cfg.model.scheduler.num_inference_timesteps)
                    params = peers.n_params(model.denoiser) + peers.n_params(model.vae)
                    make = lambda n: peers.mld_sampler(model, n)  # noqa: E731
                else:
                    model, diffusion, margs, params = peers.build_mdm(diffusion_steps=50)
                    steps = diffusion.num_timesteps
                    make = lambda n: peers.mdm_sampler(model, diffusion, margs, n)  # noqa: E731
        except Exception as exc:  # noqa: BLE001 - a missing peer dependency must not stop our numbers
            log(f"--peers: cannot build {name.upper()} ({type(exc).__name__}: {exc}); "
                f"install ../shared/peers/requirements.txt (e.g. omegaconf==2.4.0 for MLD) to include it")
            continue
        for n in args.n:
            log(f"peer {name.upper()}-{steps} n={n}")
            med, mn, other, disc, used, clean, gf = timed(make(n))
            row = {"peer": name.upper(), "steps": steps, "n": n, "frames": peers.FRAMES, "median_s": round(med, 4),
                   "min_s": round(mn, 4), "params_millions": round(params, 3), "other_cpu_cores": other,
                   "clean": clean, "calib_gflops": gf}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", nargs="*", default=None,
                    help="checkpoints: names, 'default' or folders (default: the bundled default)")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--seconds", type=float, nargs="+", default=[5.0, 10.0])
    ap.add_argument("--steps", type=int, nargs="+", default=None, help="default: each model's default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peers", action="store_true", help="also time the peers (../shared/peers/latency.py)")
    ap.add_argument("--peer-list", default="mld,mdm")
    ap.add_argument("--max-other", type=float, default=0.15)
    ap.add_argument("--max-wait", type=float, default=600)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    peers = load_peers_module() if args.peers else None
    if peers is not None:
        timer = lambda fn: peers.time_runs(fn, args.repeats, max_other=args.max_other, max_wait=args.max_wait)  # noqa: E731
    else:
        timer = lambda fn: simple_timer(fn, args.repeats)  # noqa: E731
    default = default_checkpoint_dir().resolve()
    paths = [locate_checkpoint(p) for p in args.checkpoint] if args.checkpoint else [default]
    ours = []
    with torch.inference_mode():
        for path in paths:
            ours += bench_checkpoint(path, path.resolve() == default, args, timer)
        theirs = bench_peers(peers, args) if peers is not None else []
    longest = max(args.seconds)  # 10 s = 200 frames >= the peers' 196
    for peer in theirs:
        for row in ours:
            if row["n"] != peer["n"] or row["seconds"] != longest:
                continue
            speedup = peer["median_s"] / row["median_s"]
            log(f"speed-up of {row['backbone']} ({Path(row['checkpoint']).name}, {row['steps']} steps, "
                f"{row['seconds']:g} s) over {peer['peer']}-{peer['steps']} ({peer['frames']} frames), "
                f"n={row['n']}: {speedup:.1f}x")
            print(json.dumps({"speedup": round(speedup, 2), "peer": peer["peer"], "peer_steps": peer["steps"],
                              "backbone": row["backbone"], "checkpoint": row["checkpoint"], "steps": row["steps"],
                              "n": row["n"], "seconds": row["seconds"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
