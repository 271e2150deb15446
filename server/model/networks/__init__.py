"""Networks: the MDM-style frame denoiser, the MLD-style motion VAE and latent denoiser, and the
`TextToMotion` container that holds one family's parts with its feature statistics."""
from .text_to_motion import TextToMotion, build_model

__all__ = ["TextToMotion", "build_model"]
