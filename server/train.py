"""Train a text-to-motion model on a corpus; writes runs/<name>/ (checkpoint, curve, log).

    python server/train.py --preset mld --train.name mld                 # MLD: VAE, then latent denoiser
    python server/train.py --preset mdm --train.name mdm --train.steps 40000
    torchrun --nproc_per_node 2 server/train.py --preset mld ...         # DistributedDataParallel

Any config field can be overridden: `--model.latent_dim 128 --train.batch_size 256` (see
server/model/config.py; a typo is an error). `--train.resume true` continues runs/<name>/.

The loop itself is `server/model/training.py`. What it does, top to bottom: set up (distributed, device, seeds) -> load the corpus, compute
features (cached) and their train-split statistics -> caption embeddings from the text cache
(encoding missing ones when the encoder is installed) -> keep everything on the device -> for
each stage (MLD: "vae" then "denoiser"; MDM: "denoiser"): AdamW with warm-up and cosine decay,
bf16 autocast on CUDA, gradient clipping, EMA weights, periodic validation loss on fixed
batches, periodic checkpoints -> final checkpoint of the EMA weights, training curve, log JSON.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from server.data.corpus import CorpusError
from server.model.config import ConfigError, RunConfig, apply_overrides, from_dict, preset
from server.model.device import DeviceError, resolve_device
from server.model.text_encoder import TextEncoderError
from server.model.training import train


def parse_args(argv: list[str]) -> RunConfig:
    """`--preset NAME` (default mld), `--config FILE.json`, then `--section.field value` overrides."""
    name, config_file, rest = "mld", None, []
    i = 0
    while i < len(argv):
        if argv[i] in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        if argv[i].startswith("--preset"):
            name, i = (argv[i].split("=", 1)[1], i + 1) if "=" in argv[i] else (argv[i + 1], i + 2)
        elif argv[i].startswith("--config"):
            config_file, i = (argv[i].split("=", 1)[1], i + 1) if "=" in argv[i] else (argv[i + 1], i + 2)
        else:
            rest.append(argv[i])
            i += 1
    cfg = preset(name)
    if config_file:
        cfg = from_dict(RunConfig, json.loads(Path(config_file).read_text()))
    return apply_overrides(cfg, rest)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_args(argv)
        if cfg.train.device:
            resolve_device(cfg.train.device)
    except (ConfigError, IndexError, OSError, ValueError, DeviceError) as exc:   # ValueError: a bad --config JSON
        print(f"train.py: {exc}", file=sys.stderr)
        return 2
    try:
        train(cfg, command="python server/train.py " + " ".join(argv))
    except (CorpusError, TextEncoderError, ConfigError) as exc:  # ConfigError: e.g. a bad train.init_from
        print(f"train.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
