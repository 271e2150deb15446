"""The text-to-motion model: features, text encoder, networks, diffusion sampling, checkpoints, training."""
