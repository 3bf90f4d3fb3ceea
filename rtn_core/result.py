"""The result of one RTN run: every iteration's affine field, and how to read it.

A field is a (6, h, w) tensor on the source's feature grid, channels
(a11, a12, a21, a22, fx, fy) in normalised units (see ``coords``): the source point p
matches p + f in the target, and a small source offset d maps to A d around it. Iteration 0
is the identity; iteration k is the field after the k-th recurrent update.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field

import numpy as np
import torch
import torch.nn.functional as F

from . import coords
from .confidence import point_features, probability, sample_map


@dataclass(frozen=True)
class Iteration:
    """One iteration's field and the confidence of its matches."""

    field: torch.Tensor  # (6, h, w) float32, CPU, normalised units
    confidence: torch.Tensor  # (h, w) float32 in [0, 1]: softmax peak of the window correlation
    # (one feature of the calibrated per-point confidence: CorrespondenceResult.confidence)
    stride: int  # feature stride of the level this field lives on
    readout: bool = False  # the semantic readout of the previous field (rtn_core.model.semantic_readout)
    certainty: torch.Tensor | None = None  # readout only: (2, h, w) log mutual probability, posterior entropy


@dataclass
class CorrespondenceResult:
    """Every iteration's field for one (source, target) pair, in original pixel coordinates."""

    source_size: tuple[int, int]  # (width, height) of the original source image
    target_size: tuple[int, int]
    iterations: list[Iteration] = dataclass_field(default_factory=list)
    source_features: torch.Tensor | None = None  # (C, h, w) L2-normalised: the semantic map, else the finest level
    target_features: torch.Tensor | None = None
    device: str = "cpu"
    total_iterations: int = 0  # fields after the identity in the full run: updates and readout (the stream may be partial)
    calibration: dict | None = None  # rtn_core.confidence calibration fitted for these weights
    backward: Iteration | None = None  # target-to-source field of the complete run (on the target grid)

    @property
    def last(self) -> int:
        """Index of the newest iteration available."""
        return len(self.iterations) - 1

    @property
    def complete(self) -> bool:
        return self.last >= self.total_iterations

    def map_points(self, points, iteration: int = -1) -> np.ndarray:
        """(N, 2) source pixels -> (N, 2) target pixels at ``iteration`` (bilinear in the field)."""
        source_n, samples = self._sample(self.iterations[iteration].field, points)
        target_n = source_n + samples[:, 4:6]
        return coords.normalised_to_pixels(target_n, self.target_size).numpy().astype(np.float64)

    def map_point(self, x: float, y: float, iteration: int = -1) -> tuple[float, float]:
        tx, ty = self.map_points([[x, y]], iteration)[0]
        return float(tx), float(ty)

    def local_affine(self, points, iteration: int = -1) -> np.ndarray:
        """(N, 2, 2) local affine at each source point, mapping source pixel offsets to target ones."""
        _, samples = self._sample(self.iterations[iteration].field, points)
        affine = samples[:, :4].reshape(-1, 2, 2)
        return coords.affine_to_pixels(affine, self.source_size, self.target_size).numpy().astype(np.float64)

    def confidence(self, points, iteration: int = -1) -> np.ndarray:
        """(N,) confidence in [0, 1] of each point's match at ``iteration``: the calibrated
        probability that it is right (``rtn_core.confidence``), or without a calibration the
        window-softmax peak."""
        check_inside(np.asarray(points, np.float64).reshape(-1, 2), self.source_size)
        if self.calibration is None:
            return sample_map(self.iterations[iteration].confidence[None], points, self.source_size
                              )[:, 0].numpy().astype(np.float64)
        return probability(point_features(self, points, iteration), self.calibration)

    def dense_map(self, iteration: int = -1, size: tuple[int, int] | None = None) -> np.ndarray:
        """(H, W, 2) target pixel (x, y) of every source pixel.

        ``size`` = (width, height) samples a coarser regular grid over the source instead of
        every original pixel (handy for huge images); the result is still in original pixels.
        """
        width, height = size or self.source_size
        field = self.iterations[iteration].field[None]
        grid = coords.grid_centres(height, width)
        samples = F.grid_sample(field, grid[None], mode="bilinear", padding_mode="border",
                                align_corners=False)[0]
        target_n = grid + samples[4:6].permute(1, 2, 0)
        return coords.normalised_to_pixels(target_n, self.target_size).numpy()

    def dense_flow(self, iteration: int = -1) -> np.ndarray:
        """(H, W, 2) displacement in pixels from each source pixel to its match.

        Only meaningful as a displacement when source and target have the same size; in general
        prefer :meth:`dense_map`.
        """
        matches = self.dense_map(iteration)
        height, width = matches.shape[:2]
        xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        return matches - np.stack([xs, ys], axis=-1)

    def score_map(self, x: float, y: float) -> np.ndarray:
        """(h, w) cosine similarity of the source point's feature with every target feature.

        The map covers the whole target on the finest feature grid; scale it to the target's size
        for display.
        """
        if self.source_features is None or self.target_features is None:
            raise ValueError("this result holds no features to score with")
        _, feature = self._sample(self.source_features, [[x, y]])
        feature = F.normalize(feature[0], dim=0)
        return torch.einsum("c,chw->hw", feature, self.target_features).numpy()

    def _sample(self, grid_values: torch.Tensor, points):
        """Bilinear samples of a (C, h, w) map at source pixel points -> (normalised points, (N, C))."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        check_inside(pts, self.source_size)
        source_n = coords.pixels_to_normalised(torch.from_numpy(pts).float(), self.source_size)
        return source_n, sample_map(grid_values, pts, self.source_size)


def check_inside(points: np.ndarray, size: tuple[int, int]) -> None:
    """Raise ValueError naming the first point that lies outside an image of ``size``."""
    width, height = size
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    bad = ~np.isfinite(pts).all(axis=1) | (pts[:, 0] < -0.5) | (pts[:, 1] < -0.5) \
        | (pts[:, 0] > width - 0.5) | (pts[:, 1] > height - 0.5)
    if bad.any():
        x, y = pts[np.argmax(bad)]
        raise ValueError(f"point ({x:g}, {y:g}) lies outside the source image ({width}x{height} px)")
