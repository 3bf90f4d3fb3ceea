"""PCK (percentage of correct keypoints), counted over all keypoints.

A transferred keypoint is correct when it lands within alpha * L of the true target keypoint;
L is the max side of the target keypoints' bounding box for PF-WILLOW (the literature's
protocol, see its README), of the target image for PF-PASCAL, of the annotated target box for
SPair-71k; semcorr-val sets it per subset (``data.read_semcorr``). PCK here is correct
keypoints / all keypoints, not the mean of per-pair fractions.
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


def relative_error(predicted: np.ndarray, truth: np.ndarray, length: float) -> np.ndarray:
    """(N,) distance of each predicted point from the truth, in units of L (correct: <= alpha)."""
    return np.linalg.norm(np.asarray(predicted, np.float64) - truth, axis=1) / length


def pck(errors: np.ndarray, alphas=ALPHAS) -> dict:
    """{"0.05": share of ``errors`` (relative, see :func:`relative_error`) <= 0.05, ...}."""
    errors = np.asarray(errors, np.float64)
    return {alpha_key(a): float((errors <= a).mean()) if len(errors) else 0.0 for a in alphas}


def mean_pck(tables: list[dict]) -> dict:
    """Unweighted mean of several PCK tables (semcorr-val's headline: the mean of its subsets)."""
    return {key: float(np.mean([t[key] for t in tables])) for key in tables[0]}
