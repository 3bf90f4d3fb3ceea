"""Pressing and dragging existing point markers in an image view: a press on a marker selects
its point and a drag moves it; presses elsewhere go on to the view (a click adds a point there,
a drag pans)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, Qt

from .views import ImageView

HIT_RADIUS_PX = 9.0  # a press this close to a marker's centre (screen pixels) takes that marker


class MarkerDrag(QObject):
    """Watches ``view``'s mouse: ``markers()`` gives (ids, (N, 2) image positions) of the markers
    that can be taken; ``select(id)`` on a press, ``move(id, x, y, merge)`` while dragging, where
    ``merge`` is False for the first move of a drag and True after; ``release(id)`` (optional) when
    a drag that moved ends."""

    def __init__(self, view: ImageView, markers, select, move, release=None):
        super().__init__(view)
        self.view, self.markers, self.select, self.move, self.release = view, markers, select, move, release
        self.dragging: int | None = None
        self._moved = False
        view.viewport().installEventFilter(self)

    def marker_at(self, position: QPointF) -> int | None:
        """The id of the marker nearest a viewport position, if within HIT_RADIUS_PX."""
        ids, points = self.markers()
        if not len(ids):
            return None
        m = self.view.view_box.childGroup.sceneTransform() * self.view.viewportTransform()
        screen = np.column_stack([m.m11() * points[:, 0] + m.m21() * points[:, 1] + m.dx(),
                                  m.m12() * points[:, 0] + m.m22() * points[:, 1] + m.dy()])
        distances = np.hypot(screen[:, 0] - position.x(), screen[:, 1] - position.y())
        nearest = int(np.argmin(distances))
        return ids[nearest] if distances[nearest] <= HIT_RADIUS_PX else None

    def eventFilter(self, watched, event) -> bool:
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self.dragging = self.marker_at(event.position())
            self._moved = False
            if self.dragging is not None:
                self.select(self.dragging)
                return True
        elif kind == QEvent.Type.MouseMove and self.dragging is not None:
            x, y = self._image_point(event.position())
            self.move(self.dragging, x, y, self._moved)
            self._moved = True
            return False  # the view still sees the pointer move (its hover preview follows); it never saw the press
        elif kind in (QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick) and self.dragging is not None:
            dragged, self.dragging = self.dragging, None
            if self._moved and self.release is not None:
                self.release(dragged)
            return True
        return False

    def _image_point(self, position: QPointF) -> tuple[float, float]:
        """Viewport position -> image pixels, kept inside the image."""
        point = self.view.view_box.mapSceneToView(self.view.mapToScene(position.toPoint()))
        width, height = self.view.image.original_size
        return float(np.clip(point.x(), -0.5, width - 0.5)), float(np.clip(point.y(), -0.5, height - 0.5))
