"""PCK (percentage of correct keypoints), counted over all keypoints.

A transferred keypoint is correct when it lands within alpha * L of the true target keypoint;
L is the max side of the target keypoints' bounding box for PF-WILLOW (the literature's
protocol, see its README), of the target image for PF-PASCAL, of the annotated target box for
SPair-71k. PCK here is correct keypoints / all keypoints, not the mean of per-pair fractions.
"""
from __future__ import annotations

import numpy as np

ALPHAS = (0.05, 0.10, 0.15)


def alpha_key(alpha: float) -> str:
    return f"{alpha:.2f}"


def reference_length(reference, target_points: np.ndarray, target_size: tuple[int, int]) -> float:
    """L for one pair: a number as given, "keypoints" or "image" (see the module docstring)."""
    if reference == "keypoints":
        return float((target_points.max(axis=0) - target_points.min(axis=0)).max())
    if reference == "image":
        return float(max(target_size))
    return float(reference)


def correct(predicted: np.ndarray, truth: np.ndarray, length: float, alphas=ALPHAS) -> np.ndarray:
    """(N, 2) predicted and true target points -> (N, len(alphas)) bool: within alpha * length."""
    distance = np.linalg.norm(np.asarray(predicted, np.float64) - truth, axis=1)
    return distance[:, None] <= np.asarray(alphas)[None] * length


class Tally:
    """Counts correct keypoints per category and overall."""

    def __init__(self, alphas=ALPHAS):
        self.alphas = tuple(alphas)
        self.hits: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}

    def add(self, category: str, hits: np.ndarray) -> None:
        self.hits[category] = self.hits.get(category, 0) + hits.sum(axis=0)
        self.counts[category] = self.counts.get(category, 0) + len(hits)

    @property
    def keypoints(self) -> int:
        return sum(self.counts.values())

    def overall(self) -> dict:
        total = sum(self.hits.values()) if self.hits else np.zeros(len(self.alphas))
        return self._as_dict(total, max(self.keypoints, 1))

    def per_category(self) -> dict:
        return {name: self._as_dict(self.hits[name], self.counts[name]) for name in sorted(self.hits)}

    def _as_dict(self, hits, count) -> dict:
        return {alpha_key(a): float(h) / count for a, h in zip(self.alphas, hits)}
