"""Saving and loading RTN weights (safetensors), with clear errors for files that do not fit."""
from __future__ import annotations

import hashlib
import json
import os

import torch

from .atomic import atomic_path
from .backbones import WeightsError, load_state_dict_file

RESOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources")
DEFAULT_WEIGHTS = os.path.join(RESOURCES, "weights", "rtn_lite0.safetensors")


def load_rtn_weights(model: torch.nn.Module, path: str) -> None:
    """Load a full RTN state dict saved by :func:`save_rtn_weights` into ``model``."""
    state = load_state_dict_file(path)
    for key, tensor in state.items():  # casting would hide a wrong file; NaN would reach every result
        if not tensor.is_floating_point():
            raise WeightsError(f"{os.path.basename(path)}: {key} is {tensor.dtype}, not floating point")
        if not torch.isfinite(tensor).all():
            raise WeightsError(f"{os.path.basename(path)}: {key} holds NaN or infinite values")
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(k for k in own if k not in state)
    unexpected = sorted(k for k in state if k not in own)
    misshapen = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    if missing or unexpected or misshapen:
        problems = [f"{label} {keys[:2]}" for label, keys in
                    (("missing", missing), ("unexpected", unexpected), ("misshapen", misshapen)) if keys]
        raise WeightsError(f"{os.path.basename(path)} does not fit this RTN "
                           f"({getattr(model, 'backbone_name', '?')}): " + "; ".join(problems))
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in own}, strict=False)


def save_rtn_weights(model: torch.nn.Module, path: str, metadata: dict | None = None) -> None:
    """Write the model's state dict as safetensors, atomically (temp file, then rename)."""
    from safetensors.torch import save_file
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    with atomic_path(path) as temp:
        save_file(state, temp, metadata={k: json.dumps(v) for k, v in (metadata or {}).items()})


def file_hash(path: str) -> str:
    """Short SHA-256 of a file, to record which weights produced a result."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
