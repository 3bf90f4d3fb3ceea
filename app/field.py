"""Geometry for drawing a result's affine field, iteration by iteration (Qt-free, numpy only).

The views draw a grid of source squares and, on the target, the parallelogram each square
becomes under its local affine, placed at its match. :class:`FieldTrack` computes each
iteration's matches and affines for a set of source points once, so that animation frames only
interpolate arrays.
"""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

COLOUR_BINS = 6  # glyph colours are quantised to COLOUR_BINS x COLOUR_BINS groups, one path each


def sample_grid(size: tuple[int, int], density: int) -> tuple[np.ndarray, float]:
    """``density`` x ``density`` cell centres over an image of ``size`` -> ((N, 2) points, half side).

    The half side is the half-width of the square drawn around each point, small enough that
    squares never touch at the identity.
    """
    width, height = size
    xs = (np.arange(density) + 0.5) * (width / density) - 0.5
    ys = (np.arange(density) + 0.5) * (height / density) - 0.5
    grid_x, grid_y = np.meshgrid(xs, ys)
    half = 0.3 * min(width, height) / density
    return np.stack([grid_x.ravel(), grid_y.ravel()], axis=1), half


def position_groups(points: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Colour by position: (N,) group index per point and the RGB colour of each group.

    Hue runs with x, brightness with y, so a glyph's colour says where on the source it began.
    """
    width, height = size
    column = np.clip((points[:, 0] + 0.5) / width * COLOUR_BINS, 0, COLOUR_BINS - 1).astype(int)
    row = np.clip((points[:, 1] + 0.5) / height * COLOUR_BINS, 0, COLOUR_BINS - 1).astype(int)
    return row * COLOUR_BINS + column, [tuple(colour) for colour in position_colours().reshape(-1, 3).tolist()]


def position_colours() -> np.ndarray:
    """(COLOUR_BINS, COLOUR_BINS, 3) uint8 RGB: the glyph colour of each cell of the source
    (row = y, column = x), which is also the glyph legend's swatch. Saturated (0.75) and never
    darker than 0.65, so the white-on-black markers differ from every one of them."""
    swatch = np.empty((COLOUR_BINS, COLOUR_BINS, 3), np.uint8)
    for r in range(COLOUR_BINS):
        for c in range(COLOUR_BINS):
            hue = 0.85 * (c + 0.5) / COLOUR_BINS
            value = 1.0 - 0.35 * r / (COLOUR_BINS - 1)
            swatch[r, c] = np.round(np.array(colorsys.hsv_to_rgb(hue, 0.75, value)) * 255)
    return swatch


def parallelograms(centres: np.ndarray, affines: np.ndarray, half: float) -> np.ndarray:
    """(N, 2) centres and (N, 2, 2) affines -> (N, 5, 2) closed outlines of A applied to a square."""
    corners = half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=np.float64)
    return centres[:, None, :] + np.einsum("nij,kj->nki", affines, corners)


def ellipses(centres: np.ndarray, affines: np.ndarray, radius: float, steps: int = 33) -> np.ndarray:
    """(N, steps, 2) closed outlines of A applied to a circle of ``radius`` source pixels."""
    angles = np.linspace(0.0, 2.0 * np.pi, steps)
    circle = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centres[:, None, :] + np.einsum("nij,kj->nki", affines, circle)


def arrows(starts: np.ndarray, ends: np.ndarray, head: float) -> np.ndarray:
    """(N, 2) starts and ends -> (N, 3, 2, 2) line segments: the shaft and two head strokes."""
    direction = ends - starts
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    unit = np.divide(direction, length, out=np.zeros_like(direction), where=length > 1e-9)
    size = np.minimum(head, 0.5 * length)
    back = -unit * size
    side = np.stack([-unit[:, 1], unit[:, 0]], axis=1) * size * 0.6
    return np.stack([np.stack([starts, ends], 1),
                     np.stack([ends, ends + back + side], 1),
                     np.stack([ends, ends + back - side], 1)], axis=1)


class FieldTrack:
    """Matches, local affines and confidences of fixed source points, per iteration, on demand.

    Each iteration is computed the first time it is asked for and cached. Stream snapshots of
    one run share their Iteration objects, so the cache survives new snapshots of the same run
    and is dropped for a new run.
    """

    def __init__(self, points, result=None):
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.result = result
        self._cache: dict[int, tuple[object, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    @property
    def count(self) -> int:
        """How many iterations can be shown (0 without a result)."""
        return 0 if self.result is None else len(self.result.iterations)

    def iteration(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """((N, 2) matches, (N, 2, 2) affines, (N,) confidences) at iteration ``k``; the
        confidences are NaN except at the final iteration (see :meth:`_confidence`)."""
        field = self.result.iterations[k]
        cached = self._cache.get(k)
        if cached is None or cached[0] is not field:
            if len(self.points):
                values = (self.result.map_points(self.points, k), self.result.local_affine(self.points, k),
                          self._confidence(k))
            else:
                values = (np.zeros((0, 2)), np.zeros((0, 2, 2)), np.zeros(0))
            cached = self._cache[k] = (field, values)
        return cached[1]

    def _confidence(self, k: int) -> np.ndarray:
        """The calibrated confidence is fitted on final fields only, so it is given for the last
        iteration of a complete run; earlier (or still streaming) iterations get NaN: no score."""
        if self.result.complete and k in (-1, self.result.last):
            return self.result.confidence(self.points, k)
        return np.full(len(self.points), np.nan)

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(matches, affines, confidences) at fractional iteration ``t``, linearly interpolated."""
        t = float(np.clip(t, 0, self.count - 1))
        low = int(np.floor(t))
        weight = t - low
        if weight == 0.0:
            return self.iteration(low)
        return tuple((1.0 - weight) * a + weight * b
                     for a, b in zip(self.iteration(low), self.iteration(low + 1)))


def warp_source_onto_target(result, iteration: int, source_pixels: np.ndarray,
                            max_side: int = 512) -> np.ndarray:
    """RGBA image (target aspect, at most ``max_side``) of the source splatted onto the target.

    ``dense_map`` maps source -> target, so each source sample is pushed to its match and the
    colours landing in a target cell are averaged (forward splatting, sampled twice as densely
    as the canvas so that stretched regions keep few holes). Cells nothing lands on stay
    transparent. Draw the image over the target's full original rect.
    """
    target_w, target_h = result.target_size
    scale = min(1.0, max_side / max(target_w, target_h))
    canvas_w, canvas_h = max(1, round(target_w * scale)), max(1, round(target_h * scale))
    source_w, source_h = result.source_size
    sample_scale = 2.0 * min(1.0, max_side / max(source_w, source_h))
    samples = (max(1, round(source_w * sample_scale)), max(1, round(source_h * sample_scale)))
    mapped = result.dense_map(iteration, size=samples)  # (h, w, 2) target original pixels
    colours = cv2.resize(source_pixels, samples, interpolation=cv2.INTER_AREA).reshape(-1, 3)
    cells = np.floor((mapped.reshape(-1, 2) + 0.5) * [canvas_w / target_w, canvas_h / target_h]).astype(np.int64)
    inside = (cells[:, 0] >= 0) & (cells[:, 0] < canvas_w) & (cells[:, 1] >= 0) & (cells[:, 1] < canvas_h)
    index = cells[inside, 1] * canvas_w + cells[inside, 0]
    counts = np.bincount(index, minlength=canvas_w * canvas_h)
    image = np.zeros((canvas_h * canvas_w, 4), np.uint8)
    for channel in range(3):
        total = np.bincount(index, weights=colours[inside, channel], minlength=canvas_w * canvas_h)
        image[:, channel] = np.round(total / np.maximum(counts, 1))
    image[:, 3] = np.where(counts > 0, 255, 0)
    return image.reshape(canvas_h, canvas_w, 4)
