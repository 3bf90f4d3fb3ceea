"""Cycle consistency across a project's targets: a keypoint carried source -> C -> B should land
where source -> B puts it.

Each target B is checked through a bounded number of other targets C (``routes``, the next ones in
the project's order), one extra match C -> B each on the images' prepared backbone maps; a point's
cycle error is the median over the routes of the distance between the two landings, in units of
B's longer side. A wrong point in B disagrees with every route; a right one only with routes
whose own point is wrong.
"""
from __future__ import annotations

import numpy as np

DEFAULT_ROUTES = 2


def routes_for(index: int, count: int, routes: int = DEFAULT_ROUTES) -> list[int]:
    """The other targets target ``index`` (of ``count``) is checked through: the next ``routes``, cyclically."""
    return [(index + step) % count for step in range(1, min(routes, count - 1) + 1)]


def cycle_errors(matcher, targets: list, forward: list, points, index: int,
                 routes: int = DEFAULT_ROUTES) -> np.ndarray:
    """(N,) cycle error of the source ``points`` in target ``index``: ``targets`` are the prepared
    target images (``Matcher.prepare``), ``forward`` their source -> target results. NaN when
    the project has no other target."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    landed = forward[index].map_points(points)
    target = targets[index]
    distances = []
    for other in routes_for(index, len(targets), routes):
        width, height = targets[other].original_size
        via = np.clip(forward[other].map_points(points), -0.5, [width - 0.5, height - 0.5])
        distances.append(np.linalg.norm(matcher.match(targets[other], target).map_points(via) - landed, axis=1))
    if not distances:
        return np.full(len(points), np.nan)
    return np.median(distances, axis=0) / float(max(target.original_size))
