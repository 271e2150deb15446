"""Data preparation: source readers, retargeting, captions and the training corpus."""
