"""Fixed correspondences (a person's corrections, source point -> target point) imposed on a field.

The recurrence refines a field step by step from a start, so a correction can be part of the start
and a constraint on every later step (``Matcher.match(..., fixed=...)``): each time, the translation
is corrected by a sum of Gaussian bumps centred on the fixed source points, weighted so that the
field, read bilinearly at each fixed point as ``CorrespondenceResult.map_points`` reads it, gives
exactly that point's target; the neighbours within the falloff move with it, and the next update
of the network starts from there. The semantic readout also takes each fix as an anchor of a second
hypothesis for every pixel (``model.semantic_readout``), so a fix reaches beyond its falloff.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import coords

DEFAULT_FALLOFF = 0.03  # Gaussian sigma in normalised units (the image spans 2), chosen on semcorr-val (MODEL_CARD.md)


def fixed_pairs(fixed, source_size, target_size) -> np.ndarray:
    """``[(source_xy, target_xy), ...]`` in original pixels -> (K, 2, 2) float; ValueError naming a
    point that is not finite or lies outside its image."""
    pairs = np.asarray(fixed, dtype=np.float64).reshape(-1, 2, 2)
    for side, size, name in ((0, source_size, "source"), (1, target_size, "target")):
        width, height = size
        points = pairs[:, side]
        bad = ~np.isfinite(points).all(axis=1) | (points < -0.5).any(axis=1) \
            | (points[:, 0] > width - 0.5) | (points[:, 1] > height - 0.5)
        if bad.any():
            x, y = points[np.argmax(bad)]
            raise ValueError(f"fixed point ({x:g}, {y:g}) lies outside the {name} image ({width}x{height} px)")
    return pairs


@dataclass(frozen=True)
class Fixes:
    """Fixed correspondences in normalised units: (K, 2) source and target points."""

    source: torch.Tensor
    target: torch.Tensor
    falloff: float = DEFAULT_FALLOFF

    @classmethod
    def from_pixels(cls, fixed, source_size, target_size, falloff: float = DEFAULT_FALLOFF) -> "Fixes":
        """``[(source_xy, target_xy), ...]`` in original pixels (checked by :func:`fixed_pairs`)."""
        pairs = torch.from_numpy(fixed_pairs(fixed, source_size, target_size)).float()
        return cls(coords.pixels_to_normalised(pairs[:, 0], source_size),
                   coords.pixels_to_normalised(pairs[:, 1], target_size), falloff)

    def reversed(self) -> "Fixes":
        """The same fixes for the reversed pair (target point -> source point)."""
        return Fixes(self.target, self.source, self.falloff)

    def impose(self, field: torch.Tensor) -> torch.Tensor:
        """The field with each fixed point mapped exactly to its target (:func:`impose_fixed`)."""
        return impose_fixed(field, self.source, self.target - self.source, self.falloff)


def impose_fixed(field: torch.Tensor, source_n: torch.Tensor, offset: torch.Tensor, falloff: float) -> torch.Tensor:
    """(B, 6, h, w) field whose translation, sampled bilinearly at each normalised source point
    ``source_n`` (K, 2), equals ``offset`` (K, 2); the correction is a sum of Gaussians of sigma
    ``falloff`` around the points, its weights solved from the K x K system of their samples."""
    if len(source_n) == 0:
        return field
    source_n, offset = source_n.to(field), offset.to(field)
    height, width = field.shape[-2:]
    centres = coords.grid_centres(height, width, field.device)  # (h, w, 2)
    distance2 = ((centres[None] - source_n[:, None, None]) ** 2).sum(-1)  # (K, h, w)
    bumps = torch.exp(distance2 / (-2.0 * falloff ** 2))
    at_points = _sample(bumps[None], source_n)[0].T  # (K points, K bumps)
    residual = offset[None] - _sample(field[:, 4:6], source_n).transpose(1, 2)  # (B, K, 2)
    ridge = 1e-6 * torch.eye(len(source_n), device=field.device)  # two fixes on one spot stay solvable
    weights = torch.linalg.solve(at_points + ridge, residual)  # (B, K bumps, 2)
    correction = torch.einsum("bkc,khw->bchw", weights, bumps)
    return torch.cat([field[:, :4], field[:, 4:6] + correction], dim=1)


def _sample(maps: torch.Tensor, points_n: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) maps read bilinearly at (K, 2) normalised points -> (B, C, K), as the result reads them."""
    grid = points_n.view(1, 1, -1, 2).expand(maps.shape[0], 1, -1, 2)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0]
