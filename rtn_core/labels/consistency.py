"""Cycle consistency of a transferred project (``transfer --cycle R``): each target's points are
checked through R other targets (``rtn_core.cycle``) and the cycle error joins their confidence
(``cycle.joined_score``), so the low-confidence flag also catches points the routes disagree with.

A route uses the other target's points as they stand, hand-fixed ones included. Each target image
goes through the backbone once in the pass; only the images the current target needs are kept.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..cycle import DEFAULT_ROUTES, cycle_errors, joined_score, routes_for
from ..images import load_image
from .keypoints import ABSENT, DONE, LabelSet


class _PreparedTargets:
    """The targets' prepared images by index, prepared on first use, the others let go."""

    def __init__(self, matcher, paths: list[str]):
        self.matcher, self.paths, self.kept = matcher, paths, {}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        if index not in self.kept:
            self.kept[index] = self.matcher.prepare(load_image(self.paths[index]))
        return self.kept[index]

    def keep_only(self, indices) -> None:
        self.kept = {i: image for i, image in self.kept.items() if i in indices}


def with_cycle_scores(labels: LabelSet, matcher, routes: int = DEFAULT_ROUTES) -> LabelSet:
    """``labels`` with each transferred (not hand-placed) target point's confidence joined with its
    cycle error over ``routes`` other done targets, and the flags recomputed."""
    done = [t for t in labels.targets if t.status == DONE and t.points]
    if len(done) < 2 or routes < 1:
        return labels
    landed = [np.array([[p.x, p.y] if p is not None and p.visibility != ABSENT else [np.nan, np.nan]
                        for p in map(t.point, labels.names)], np.float64).reshape(-1, 2) for t in done]
    images = _PreparedTargets(matcher, [t.image for t in done])
    for index, target in enumerate(done):
        needed = {index, *routes_for(index, len(done), routes)}
        images.keep_only(needed)
        errors = dict(zip(labels.names, cycle_errors(matcher, images, landed, index, routes)))
        points = tuple(p if p.manual or p.confidence is None or not np.isfinite(errors[p.name]) else
                       replace(p, confidence=round(float(joined_score(p.confidence, errors[p.name])), 4))
                       for p in target.points)
        labels = labels.with_transfer(replace(labels.image(target.image), points=points))
    return labels
