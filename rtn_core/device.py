"""The one place that decides where the model runs."""
from __future__ import annotations

import torch


def cuda_status() -> tuple[bool, str]:
    """Whether CUDA can be used, and a sentence saying why or why not."""
    if not torch.backends.cuda.is_built():
        return False, f"this torch {torch.__version__} build has no CUDA support"
    if not torch.cuda.is_available():
        return False, "no CUDA device is visible (driver missing or no GPU)"
    return True, f"CUDA device: {torch.cuda.get_device_name(0)}"


def choose_device(requested: str | None = None) -> torch.device:
    """``requested`` ('cpu', 'cuda' or None for automatic) -> a usable torch.device.

    Raises ValueError with the reason when CUDA is asked for and cannot be used.
    """
    if requested in (None, "", "auto"):
        return torch.device("cuda" if cuda_status()[0] else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda":
        available, reason = cuda_status()
        if not available:
            raise ValueError(f"cannot use CUDA: {reason}")
        return torch.device("cuda")
    raise ValueError(f"unknown device {requested!r}: use cpu, cuda or auto")
