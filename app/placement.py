"""Where each point's label goes, so that labels cover neither each other nor the points (Qt-free).

Greedy placement in screen pixels: labels are placed one after the other, each at the first of
a few candidate spots around its point that overlaps nothing already placed (the points' dots
and the labels before it), or at the spot that costs least when every spot is taken, where a
covered dot costs far more than a crowded label (a hidden point is worse than two labels that
touch). A label may name the spot to try first (where it is now), so that adding a point moves
few others. Where points crowd, a label with no free spot is reported, and unless it is
required (a selected point's) it is left out: later labels may take its place, and the view
hides it (or first tries a shorter text).
"""
from __future__ import annotations

import numpy as np

GAP = 9.0  # screen pixels between a dot's centre and the nearest edge of its label
DOT_WEIGHT = 25.0  # a pixel of another point's dot under a label costs this many of another label
OUTSIDE_WEIGHT = 4.0  # ... and a pixel of the label outside ``bounds``


def candidate_offsets(width: float, height: float) -> np.ndarray:
    """(8, 2) top-left corners, relative to the point, of a ``width`` x ``height`` label, in
    order of preference: right-above (the usual spot), left-above, right-below, left-below,
    right, left, above, below."""
    left, above = -GAP - width, -GAP - height + 3.0
    right, below = GAP, GAP - 3.0
    return np.array([[right, above], [left, above], [right, below], [left, below],
                     [GAP + 2.0, -height / 2], [-GAP - 2.0 - width, -height / 2],
                     [-width / 2, -GAP - 2.0 - height], [-width / 2, GAP + 2.0]])


def _overlap(rect: tuple[float, float, float, float], obstacles: list) -> float:
    """Total area the rect (x0, y0, x1, y1) shares with the obstacles (rects alike)."""
    x0, y0, x1, y1 = rect
    area = 0.0
    for a0, b0, a1, b1 in obstacles:
        if a1 > x0 and a0 < x1 and b1 > y0 and b0 < y1:  # most obstacles fail this cheap test
            area += (min(x1, a1) - max(x0, a0)) * (min(y1, b1) - max(y0, b0))
    return area


def place_labels(points: np.ndarray, sizes: np.ndarray, dot_radius: float = 6.0, preferred=None,
                 bounds=None, required=None) -> tuple[np.ndarray, list[int], list[bool]]:
    """(N, 2) screen positions of the points and (N, 2) label sizes -> ((N, 2) top-left corner of
    each label relative to its point, (N,) index of its spot in :func:`candidate_offsets`, (N,)
    whether it is crowded: no spot was free of other dots and labels). Earlier points get the
    better spots; ``preferred`` (N,) names the spot each label tries first (-1: none); ``bounds``
    (x0, y0, x1, y1), the visible area, keeps labels inside it where they fit; ``required`` (N,)
    bools, default all: a crowded label that is not required is left out (no obstacle to later ones).

    Plain Python over the few points near each one: for the tens of points a view holds this is
    several times faster than numpy, whose per-call cost dominates at that size.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if not len(points):
        return np.zeros((0, 2)), [], []
    reach = 2.0 * (sizes.max(axis=0) + GAP + 2.0 + dot_radius)  # farther points cannot interact
    apart = np.abs(points[:, None, :] - points[None, :, :])
    near = [np.flatnonzero(row).tolist() for row in (apart[..., 0] < reach[0]) & (apart[..., 1] < reach[1])]
    dots = np.hstack([points - dot_radius, points + dot_radius]).tolist()
    preferred = [-1] * len(points) if preferred is None else list(preferred)
    required = [True] * len(points) if required is None else list(required)
    placed: list = []  # each label's rect, None where it was left out
    offsets, spots, crowded = [], [], []
    for index, ((x, y), (width, height)) in enumerate(zip(points.tolist(), sizes.tolist())):
        others = [dots[j] for j in near[index] if j != index]
        labels = [placed[j] for j in near[index] if j < index and placed[j] is not None]
        candidates = candidate_offsets(width, height).tolist()
        first = preferred[index]
        order = ([first] if 0 <= first < len(candidates) else []) + list(range(len(candidates)))
        best, least, blocked = 0, np.inf, True
        for spot in order:
            dx, dy = candidates[spot]
            rect = (x + dx, y + dy, x + dx + width, y + dy + height)
            on_labels, on_dots = _overlap(rect, labels), _overlap(rect, others)
            cost = on_labels + DOT_WEIGHT * on_dots
            if bounds is not None:
                cost += OUTSIDE_WEIGHT * (width * height - _overlap(rect, [bounds]))
            if cost < least:
                best, least, blocked = spot, cost, on_labels + on_dots > 0.0
                if cost == 0.0:
                    break
        dx, dy = candidates[best]
        offsets.append((dx, dy))
        spots.append(best)
        crowded.append(blocked)
        placed.append((x + dx, y + dy, x + dx + width, y + dy + height) if required[index] or not blocked else None)
    return np.array(offsets), spots, crowded
