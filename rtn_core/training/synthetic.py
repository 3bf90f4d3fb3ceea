"""Synthetic training pairs with a known flow (DESIGN.md 2.7, stage 1).

A photo resized to a square becomes the *target*; the *source* is the target resampled through
a random warp W (affine + 3x3 thin-plate spline) with ``cv2.remap``, so source pixel q shows the
target at W(q): its ground-truth match is W(q) and the flow is W(q) - q. All positions are
normalised [-1, 1] coordinates (see ``coords``), so the flow is exact at any grid resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .. import coords

CONTROL = np.array([[x, y] for y in (-1.0, 0.0, 1.0) for x in (-1.0, 0.0, 1.0)])  # 3x3 TPS grid


@dataclass(frozen=True)
class WarpParams:
    """Ranges of the random warp; angles in radians, translation as a fraction of the size."""

    scale: tuple = (0.75, 1.25)
    rotation: float = np.pi / 12
    shear: float = np.pi / 12
    translation: float = 0.4
    tps: float = 0.1


@dataclass(frozen=True)
class Warp:
    """W(q) = M q + t + TPS(q) in normalised coordinates."""

    matrix: np.ndarray  # (2, 2)
    shift: np.ndarray  # (2,)
    tps_weights: np.ndarray  # (9, 2) radial-basis weights
    tps_affine: np.ndarray  # (3, 2) affine part of the spline

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) normalised source points -> (..., 2) normalised target points."""
        flat = points.reshape(-1, 2).astype(np.float64)
        spline = _tps_basis(flat) @ self.tps_weights + np.c_[np.ones(len(flat)), flat] @ self.tps_affine
        return (flat @ self.matrix.T + self.shift + spline).reshape(points.shape)


def _tps_basis(points: np.ndarray) -> np.ndarray:
    """U(r) = r^2 log r^2 between each point and each control point -> (N, 9)."""
    r2 = ((points[:, None, :] - CONTROL[None]) ** 2).sum(-1)
    return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)


def random_warp(rng: np.random.Generator, params: WarpParams = WarpParams()) -> Warp:
    """Draw an affine (scale, rotation, shear, translation) and a TPS displacement of the 3x3 grid."""
    scale = rng.uniform(*params.scale)
    angle = rng.uniform(-params.rotation, params.rotation)
    shear = rng.uniform(-params.shear, params.shear)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = scale * rotation @ np.array([[1.0, np.tan(shear)], [0.0, 1.0]])
    shift = rng.uniform(-1, 1, 2) * 2.0 * params.translation  # fraction of the size -> normalised
    displacement = rng.uniform(-params.tps, params.tps, (len(CONTROL), 2))
    # Solve the TPS system [K P; P^T 0] [w; a] = [v; 0] for the control displacements v.
    kernel = _tps_basis(CONTROL)
    poly = np.c_[np.ones(len(CONTROL)), CONTROL]
    system = np.zeros((12, 12))
    system[:9, :9], system[:9, 9:], system[9:, :9] = kernel, poly, poly.T
    solution = np.linalg.solve(system, np.r_[displacement, np.zeros((3, 2))])
    return Warp(matrix, shift, solution[:9], solution[9:])


def warp_image(target: np.ndarray, warp: Warp) -> tuple[np.ndarray, np.ndarray]:
    """The source image (target resampled at W(q) for every pixel q) and W on its pixel grid.

    Returns (source H x W x 3 uint8, (H, W, 2) normalised target position of each source pixel).
    Pixels whose match falls outside the target repeat the border (reflected); mask them with
    :func:`inside`.
    """
    height, width = target.shape[:2]
    grid = coords.grid_centres(height, width).numpy().astype(np.float64)
    matches = warp(grid)
    pixels = coords.normalised_to_pixels(matches, (width, height)).astype(np.float32)
    source = cv2.remap(target, pixels[..., 0], pixels[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT_101)
    return source, matches


def flow_on_grid(warp: Warp, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth on an h x w grid: (2, h, w) flow W(q) - q and (h, w) mask of matches inside."""
    grid = coords.grid_centres(height, width).numpy().astype(np.float64)
    matches = warp(grid)
    return (matches - grid).transpose(2, 0, 1).astype(np.float32), inside(matches).astype(np.float32)


def inside(points: np.ndarray) -> np.ndarray:
    """Whether normalised points lie inside the image."""
    return (np.abs(points) <= 1.0).all(axis=-1)


def photometric_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    """Random per-channel gain, brightness, contrast and occasional grey/blur, on uint8 RGB."""
    x = image.astype(np.float32) / 255.0
    x = x * rng.uniform(1 - strength, 1 + strength, 3) + rng.uniform(-strength / 2, strength / 2)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - strength, 1 + strength) + mean
    if rng.random() < 0.1:
        x[:] = x.mean(axis=2, keepdims=True)
    if rng.random() < 0.2:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
