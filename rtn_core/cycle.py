"""Cycle consistency across a project's targets: a keypoint carried source -> C -> B should land
where source -> B puts it.

Each target B is checked through a bounded number of other targets C (``routes``, the next ones in
the project's order), one extra match C -> B each on the images' prepared backbone maps; a point's
cycle error is the median over the routes of the distance between the two landings, in units of
B's longer side. A wrong point in B disagrees with every route; a right one only with routes
whose own point is wrong. :func:`joined_score` discounts a confidence by it.
"""
from __future__ import annotations

import warnings

import numpy as np

DEFAULT_ROUTES = 2
CYCLE_SCALE = 0.05  # cycle error (share of the target's longer side) at which the joined score halves


def routes_for(index: int, count: int, routes: int = DEFAULT_ROUTES) -> list[int]:
    """The other targets target ``index`` (of ``count``) is checked through: the next ``routes``, cyclically."""
    return [(index + step) % count for step in range(1, min(routes, count - 1) + 1)]


def cycle_errors(matcher, targets, landed, index: int, routes: int = DEFAULT_ROUTES) -> np.ndarray:
    """(N,) cycle error of N source points in target ``index``: ``targets[j]`` are the prepared target
    images (``Matcher.prepare``), ``landed[j]`` (N, 2) where the points landed in target j (NaN rows:
    not there). NaN where no route has the point, or the project has no other target."""
    here = np.asarray(landed[index], np.float64).reshape(-1, 2)
    distances = []
    for other in routes_for(index, len(targets), routes):
        via = np.asarray(landed[other], np.float64).reshape(-1, 2)
        both = np.isfinite(via).all(1) & np.isfinite(here).all(1)
        distance = np.full(len(here), np.nan)
        if both.any():
            width, height = targets[other].original_size
            moved = matcher.match(targets[other], targets[index]).map_points(
                np.clip(via[both], -0.5, [width - 0.5, height - 0.5]))
            distance[both] = np.linalg.norm(moved - here[both], axis=1)
        distances.append(distance)
    if not distances:
        return np.full(len(here), np.nan)
    with warnings.catch_warnings():  # a point no route has stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(distances, axis=0) / float(max(targets[index].original_size))


def joined_score(confidence: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    """The confidence discounted by the cycle error: confidence / (1 + cycle / CYCLE_SCALE); NaN
    cycle errors leave it as it is."""
    return confidence / (1.0 + np.nan_to_num(cycle) / CYCLE_SCALE)
