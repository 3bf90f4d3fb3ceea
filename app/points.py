"""The clicked points, as a Qt-free model: named points, selection and undo/redo, observed by the views.

Following napari's layer model, the list knows nothing of Qt. Views subscribe with
:meth:`PointList.subscribe` and are told what changed; they never edit each other. Every edit
(add, move, rename, remove, clear) can be undone; the selection and the matches are not edits.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

ADDED, REMOVED, MOVED, RENAMED, RESTORED, MATCHED, SELECTED, FIXED = (
    "added", "removed", "moved", "renamed", "restored", "matched", "selected", "fixed")
UNDO_LIMIT = 200


@dataclass
class Point:
    """One source point and, once a result exists, its match on the target."""

    id: int
    source: tuple[float, float]  # original source pixels
    target: tuple[float, float] | None = None  # original target pixels at the shown iteration
    confidence: float | None = None
    name: str = ""
    fixed: tuple[float, float] | None = None  # target pixels set by hand: the field is re-settled from it


class PointList:
    """Numbered, named source points (``p1``, ``p2``…), their matches, the selected ids and the undo history."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.selected: set[int] = set()
        self._next_id = 1
        self._listeners: list[Callable[[str], None]] = []
        self._undo: list[tuple[str, object, tuple]] = []  # (what, merge key, state before)
        self._redo: list[tuple[str, object, tuple]] = []

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(kind)`` after every change; kind is one of the module's kind constants."""
        self._listeners.append(listener)

    def __len__(self) -> int:
        return len(self.points)

    def by_id(self, point_id: int) -> Point | None:
        return next((p for p in self.points if p.id == point_id), None)

    def add(self, x: float, y: float, target=None, confidence=None, name: str | None = None) -> Point:
        """Append a point with the next free number (named ``p<number>`` unless ``name``) and select it alone."""
        self._record("add")
        taken, number = {p.name for p in self.points}, self._next_id
        while name is None and f"p{number}" in taken:  # a point renamed to 'p<next>' keeps its name
            number += 1
        point = Point(self._next_id, (float(x), float(y)),
                      None if target is None else (float(target[0]), float(target[1])),
                      _score(confidence), name or f"p{number}")
        self._next_id += 1
        self.points.append(point)
        self.selected = {point.id}
        self._emit(ADDED)
        return point

    def move(self, point_id: int, x: float, y: float, merge: bool = False) -> None:
        """Move a point's source to (x, y); its match is stale until the next ``set_matches``.
        ``merge`` folds this move into the previous move of the same point (one drag, one undo)."""
        point = self.by_id(point_id)
        if point is None:
            return
        self._record("move", ("move", point_id), merge)
        point.source, point.target, point.confidence, point.fixed = (float(x), float(y)), None, None, None
        self._emit(MOVED)

    def fix(self, point_id: int, x: float, y: float, merge: bool = False) -> None:
        """Fix a point's match to target pixels (x, y), a correction; ``merge`` as in :meth:`move`."""
        point = self.by_id(point_id)
        if point is None:
            return
        self._record(f"fix {point.name}", ("fix", point_id), merge)
        point.fixed = point.target = (float(x), float(y))
        self._emit(FIXED)

    def fixes(self) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        """(source, target) of every fixed point: the corrections a match imposes (``Matcher.stream(fixed=)``)."""
        return [(p.source, p.fixed) for p in self.points if p.fixed is not None]

    def unfix_all(self) -> None:
        """Forget every fix, as no edit: they belonged to another target image."""
        for point in self.points:
            point.fixed = None

    def rename(self, point_id: int, name: str) -> bool:
        """Give a point a new, non-empty name not used by another point; False if refused."""
        point, name = self.by_id(point_id), name.strip()
        if point is None or not name or name == point.name or any(p.name == name for p in self.points):
            return False
        self._record("rename")
        point.name = name
        self._emit(RENAMED)
        return True

    def remove(self, ids) -> None:
        """Delete the points with these ids (unknown ids are ignored)."""
        ids = set(ids)
        if not ids & {p.id for p in self.points}:
            return
        self._record("delete")
        self.points = [p for p in self.points if p.id not in ids]
        self.selected -= ids
        self._emit(REMOVED)

    def remove_selected(self) -> None:
        self.remove(self.selected)

    def clear(self) -> None:
        """Delete every point; numbering starts again at 1 (undo brings them back)."""
        if self.points:
            self._record("clear")
        self.points = []
        self.selected = set()
        self._next_id = 1
        self._emit(REMOVED)

    def reset(self) -> None:
        """Forget every point and the undo history: the points belonged to another image."""
        self.points, self.selected, self._next_id = [], set(), 1
        self._undo.clear()
        self._redo.clear()
        self._emit(REMOVED)

    def select(self, ids) -> None:
        ids = set(ids) & {p.id for p in self.points}
        if ids != self.selected:
            self.selected = ids
            self._emit(SELECTED)

    def source_array(self) -> np.ndarray:
        """(N, 2) source coordinates in list order."""
        return np.array([p.source for p in self.points], dtype=np.float64).reshape(-1, 2)

    def keypoints(self) -> list[tuple[str, float, float]]:
        """(name, x, y) of every point in list order, in original source pixels."""
        return [(p.name, *p.source) for p in self.points]

    def fixed_keypoints(self) -> list[tuple[str, float, float]]:
        """(name, x, y) of every fixed point's match, in original target pixels: matches placed by hand."""
        return [(p.name, *p.fixed) for p in self.points if p.fixed is not None]

    def set_matches(self, targets, confidences) -> None:
        """Store each point's match, in list order; ``None`` forgets all matches."""
        if targets is None:
            for point in self.points:
                point.target = point.confidence = None
        else:
            for point, target, confidence in zip(self.points, targets, confidences, strict=True):
                point.target = point.fixed or (float(target[0]), float(target[1]))
                point.confidence = _score(confidence)
        self._emit(MATCHED)

    # ----- undo and redo -----------------------------------------------------------------

    def undo_text(self) -> str | None:
        """What :meth:`undo` would undo ('add', 'move', 'fix p4', 'rename', 'delete', 'clear'), or None."""
        return self._undo[-1][0] if self._undo else None

    def redo_text(self) -> str | None:
        return self._redo[-1][0] if self._redo else None

    def undo(self) -> bool:
        """Take back the last edit; False when there is none."""
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        """Do again the last undone edit; False when there is none."""
        return self._step(self._redo, self._undo)

    def _step(self, source: list, destination: list) -> bool:
        if not source:
            return False
        what, _, state = source.pop()
        destination.append((what, None, self._state()))
        self.points, self._next_id = [dataclasses.replace(p) for p in state[0]], state[1]
        self.selected &= {p.id for p in self.points}
        self._emit(RESTORED)
        return True

    def _state(self) -> tuple:
        return [dataclasses.replace(p) for p in self.points], self._next_id

    def _record(self, what: str, key=None, merge: bool = False) -> None:
        """Remember the state before an edit; with ``merge``, an edit with the same ``key`` as the
        last one folds into it."""
        self._redo.clear()
        if merge and self._undo and self._undo[-1][1] == key:
            return
        self._undo.append((what, key, self._state()))
        del self._undo[:-UNDO_LIMIT]

    def _emit(self, kind: str) -> None:
        for listener in self._listeners:
            listener(kind)


def _score(confidence) -> float | None:
    """A confidence as stored on a point: None for none (None or NaN: an iteration before the final one)."""
    return None if confidence is None or np.isnan(confidence) else float(confidence)
