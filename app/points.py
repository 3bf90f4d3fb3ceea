"""The clicked points, as a Qt-free model: data plus selection, observed by the views.

Following napari's layer model, the list knows nothing of Qt. Views subscribe with
:meth:`PointList.subscribe` and are told what changed; they never edit each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

ADDED, REMOVED, MATCHED, SELECTED = "added", "removed", "matched", "selected"


@dataclass
class Point:
    """One clicked source point and, once a result exists, its match on the target."""

    id: int
    source: tuple[float, float]  # original source pixels
    target: tuple[float, float] | None = None  # original target pixels at the shown iteration
    confidence: float | None = None


class PointList:
    """Numbered source points, their matches and the selected ids."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.selected: set[int] = set()
        self._next_id = 1
        self._listeners: list[Callable[[str], None]] = []

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(kind)`` after every change; kind is ADDED, REMOVED, MATCHED or SELECTED."""
        self._listeners.append(listener)

    def __len__(self) -> int:
        return len(self.points)

    def add(self, x: float, y: float, target=None, confidence=None) -> Point:
        """Append a point with the next free number and select it alone."""
        point = Point(self._next_id, (float(x), float(y)),
                      None if target is None else (float(target[0]), float(target[1])),
                      None if confidence is None else float(confidence))
        self._next_id += 1
        self.points.append(point)
        self.selected = {point.id}
        self._emit(ADDED)
        return point

    def remove(self, ids) -> None:
        """Delete the points with these ids (unknown ids are ignored)."""
        ids = set(ids)
        if not ids & {p.id for p in self.points}:
            return
        self.points = [p for p in self.points if p.id not in ids]
        self.selected -= ids
        self._emit(REMOVED)

    def remove_selected(self) -> None:
        self.remove(self.selected)

    def clear(self) -> None:
        """Delete every point; numbering starts again at 1."""
        self.points = []
        self.selected = set()
        self._next_id = 1
        self._emit(REMOVED)

    def select(self, ids) -> None:
        ids = set(ids) & {p.id for p in self.points}
        if ids != self.selected:
            self.selected = ids
            self._emit(SELECTED)

    def source_array(self) -> np.ndarray:
        """(N, 2) source coordinates in list order."""
        return np.array([p.source for p in self.points], dtype=np.float64).reshape(-1, 2)

    def set_matches(self, targets, confidences) -> None:
        """Store each point's match, in list order; ``None`` forgets all matches."""
        if targets is None:
            for point in self.points:
                point.target = point.confidence = None
        else:
            for point, target, confidence in zip(self.points, targets, confidences, strict=True):
                point.target = (float(target[0]), float(target[1]))
                point.confidence = float(confidence)
        self._emit(MATCHED)

    def _emit(self, kind: str) -> None:
        for listener in self._listeners:
            listener(kind)
