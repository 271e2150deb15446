"""Which torch device ``--device`` means, checked before anything loads: one clear error instead of a torch assert."""
from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device this machine's torch cannot use; the message says why and what to pass instead."""


def resolve_device(spec: str | None = None) -> str:
    """``spec`` as a usable torch device string; None or "" (or "auto") = "cuda" when available, else "cpu".

    Accepts "cpu", "cuda", "cuda:N" and "mps". Raises DeviceError for a malformed name, a CUDA device on a
    CPU-only build of torch or a machine without a visible GPU, a GPU index beyond the GPUs present, or MPS
    where it is unavailable.
    """
    if spec is None or not str(spec).strip() or str(spec).strip().lower() == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    text = str(spec).strip()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {text!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda":
        if torch.version.cuda is None:
            raise DeviceError(f"device {text!r}: this torch ({torch.__version__}) is a CPU-only build; use "
                              f"--device cpu, or install a CUDA build of torch")
        if not torch.cuda.is_available():
            raise DeviceError(f"device {text!r}: torch {torch.__version__} has CUDA but sees no GPU (driver, "
                              f"CUDA_VISIBLE_DEVICES?); use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {text!r}: only {count} GPU{'s' if count != 1 else ''} visible "
                              f"(cuda:0..cuda:{count - 1})")
        return str(device)
    if device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError(f"device {text!r}: MPS is not available on this machine; use --device cpu")
        return "mps"
    raise DeviceError(f"device {text!r} is not supported; use cpu, cuda, cuda:N or mps")
