"""The one home of coordinate conversions.

Public coordinates are (x, y) in pixels of the ORIGINAL image, pixel centres at integers,
0-based. Inside the model every position is a normalised grid coordinate in [-1, 1] with
torch's ``align_corners=False`` convention: the left edge of pixel 0 is -1 and the right edge
of pixel W-1 is +1. That convention does not depend on resolution, so a normalised point means
the same spot in the original image, the resized model input and every feature map.
"""
from __future__ import annotations

import numpy as np
import torch


def pixels_to_normalised(points, size):
    """(..., 2) pixel (x, y) in an image of ``size`` = (width, height) -> normalised [-1, 1]."""
    width, height = size
    scale = _as_like(points, [2.0 / width, 2.0 / height])
    return (points + 0.5) * scale - 1.0


def normalised_to_pixels(points, size):
    """Inverse of :func:`pixels_to_normalised`."""
    width, height = size
    scale = _as_like(points, [width / 2.0, height / 2.0])
    return (points + 1.0) * scale - 0.5


def offsets_to_normalised(offsets, size):
    """(..., 2) pixel displacements -> normalised displacements (no centre shift)."""
    width, height = size
    return offsets * _as_like(offsets, [2.0 / width, 2.0 / height])


def affine_to_pixels(affine, source_size, target_size):
    """(..., 2, 2) local affine in normalised units -> the same map in pixels.

    A maps a normalised source offset to a normalised target offset; in pixels it becomes
    diag(target/2) A diag(2/source).
    """
    to_target = _as_like(affine, [target_size[0] / 2.0, target_size[1] / 2.0])
    from_source = _as_like(affine, [2.0 / source_size[0], 2.0 / source_size[1]])
    return affine * to_target[..., :, None] * from_source[..., None, :]


def grid_centres(height, width, device=None):
    """(height, width, 2) normalised (x, y) of every pixel centre of a height x width map."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * (2.0 / height) - 1.0
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * (2.0 / width) - 1.0
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def _as_like(reference, values):
    if isinstance(reference, torch.Tensor):
        return torch.tensor(values, dtype=reference.dtype, device=reference.device)
    return np.asarray(values, dtype=np.float64)
