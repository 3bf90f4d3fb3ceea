"""Keypoints drawn over an :class:`app.views.ImageView`: skeleton, markers by state, names and scores,
and the mouse gestures that edit them.

Gestures (all in the image's original pixels, the view's coordinates):
- click a point: select it (Ctrl/Shift-click adds or removes it);
- drag a point: move it, with the other selected points of this image if it is one of them;
- Ctrl/Shift-drag on empty image: rubber-band selection (adds to the selection);
- click empty image: clears the selection (the window may add a point there instead);
- plain drag on empty image pans, the wheel zooms (the view's own behaviour).

The layer never edits labels: it emits signals the window turns into Project edits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from rtn_core.labels.keypoints import ABSENT, FB_FAIL, LOW_CONFIDENCE, LR_SWAP, OCCLUDED, ImageLabels

from ..views import ImageView

# marker colours (RGB): what a point is, at a glance
AUTO = (40, 200, 90)  # transferred, no flag
FLAGGED = {LOW_CONFIDENCE: (255, 150, 30), FB_FAIL: (235, 50, 50), LR_SWAP: (220, 60, 220)}
MANUAL = (80, 190, 255)  # placed or corrected by a person
SELECTED = (255, 255, 255)  # a thick white ring
FLAG_SHORT = {LOW_CONFIDENCE: "low conf", FB_FAIL: "fb fail", LR_SWAP: "L/R swap"}
CAPTION_FONT = QFont()
CAPTION_FONT.setPointSizeF(8)
MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def point_colour(point) -> tuple[int, int, int]:
    """The marker colour of a Point: its worst flag, else manual or transferred."""
    for flag in (FB_FAIL, LR_SWAP, LOW_CONFIDENCE):
        if flag in point.flags:
            return FLAGGED[flag]
    return MANUAL if point.manual else AUTO


def point_caption(point, scores: bool) -> str:
    """The text beside a marker: its name, and on targets its confidence and fb error and flags."""
    text = point.name
    if scores and point.confidence is not None and not point.manual:
        text += f"  {point.confidence:.2f}"
        if point.fb_error is not None:
            text += f" · {point.fb_error:.1f}px"
    if point.flags:
        text += "  ⚠ " + ", ".join(FLAG_SHORT.get(f, f) for f in point.flags)
    return text


@dataclass
class _Drag:
    names: list[str]
    start: np.ndarray  # (N, 2) positions when the drag started
    anchor: np.ndarray  # the pointer's image position when the drag started
    delta: np.ndarray  # current offset


class _PointsItem(pg.GraphItem):
    """The markers and skeleton; drags a point (pyqtgraph's CustomGraphItem pattern)."""

    def __init__(self, layer: "KeypointLayer"):
        super().__init__()
        self.layer = layer
        self.scatter.sigClicked.connect(self._on_scatter_clicked)

    def point_at(self, pos) -> int | None:
        spots = self.scatter.pointsAt(pos)
        return int(spots[0].data()) if len(spots) else None

    def mouseDragEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        if ev.isStart():
            index = self.point_at(ev.buttonDownPos())
            if index is None:
                ev.ignore()
                return
            self.layer.begin_drag(index, ev.buttonDownPos(), ev.modifiers())
        elif self.layer.drag is None:
            ev.ignore()
            return
        ev.accept()
        if ev.isFinish():
            self.layer.finish_drag(ev.pos())
        else:
            self.layer.update_drag(ev.pos())

    def _on_scatter_clicked(self, _plot, spots, ev) -> None:
        if len(spots):
            ev.accept()
            self.layer.click_point(int(spots[0].data()), ev.modifiers())


class _BackgroundItem(pg.GraphicsObject):
    """Covers the image under the markers: empty clicks, and Ctrl/Shift-drag rubber bands."""

    def __init__(self, layer: "KeypointLayer"):
        super().__init__()
        self.layer = layer
        self.rect = QRectF()
        self.band = QGraphicsRectItem()
        pen = QPen(QColor(*SELECTED))
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.band.setPen(pen)
        self.band.setBrush(QColor(255, 255, 255, 40))
        self.band.setParentItem(self)
        self.band.hide()

    def set_rect(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self.rect = QRectF(rect)

    def boundingRect(self) -> QRectF:
        return self.rect

    def paint(self, painter, *args) -> None:
        pass

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.rect.contains(ev.pos()):
            ev.accept()
            self.layer.click_empty(ev.pos(), ev.modifiers())
        else:
            ev.ignore()

    def mouseDragEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or not (ev.modifiers() & MODIFIERS):
            ev.ignore()  # the view box pans
            return
        ev.accept()
        band = QRectF(ev.buttonDownPos(), ev.pos()).normalized()
        if ev.isFinish():
            self.band.hide()
            self.layer.band_select(band)
        else:
            self.band.setRect(band)
            self.band.show()


class KeypointLayer(QObject):
    """One image's keypoints on an ImageView, and the edits the mouse asks for."""

    point_clicked = Signal(str, bool)  # name, additive (Ctrl/Shift held)
    empty_clicked = Signal(float, float, bool)  # image x, y, additive
    band_selected = Signal(object, bool)  # names inside the rubber band, additive
    points_dragged = Signal(object, float, float)  # names, dx, dy (image pixels) at the drop

    def __init__(self, view: ImageView, scores: bool):
        super().__init__(view)
        self.view = view
        self.scores = scores  # show confidence / fb error beside the names (targets)
        self.labels: ImageLabels | None = None
        self.names: list[str] = []  # point index -> name, in drawing order
        self.positions = np.zeros((0, 2))
        self.selected: frozenset[str] = frozenset()
        self.skeleton: tuple = ()
        self.all_names: tuple[str, ...] = ()
        self.drag: _Drag | None = None
        self.background = view.add_overlay(_BackgroundItem(self), 8)
        self.graph = view.add_overlay(_PointsItem(self), 30)
        self.captions: list[pg.TextItem] = []
        view.view_box.sigRangeChanged.connect(lambda *_: self.place_captions())  # zoom changes the overlaps

    # --- showing -----------------------------------------------------------------------------
    def show_labels(self, labels: ImageLabels | None, names=(), skeleton=(), selected=frozenset()) -> None:
        """Draw ``labels``' points (absent ones hidden), the skeleton edges between them, the selection."""
        self.labels, self.all_names, self.skeleton, self.selected = labels, tuple(names), tuple(skeleton), frozenset(selected)
        self.drag = None
        if self.view.image is not None:
            self.background.set_rect(self.view.image_rect())
        self._redraw()

    def _redraw(self, positions: np.ndarray | None = None) -> None:
        points = [p for p in (self.labels.points if self.labels else ()) if p.visibility != ABSENT]
        self.names = [p.name for p in points]
        self.positions = np.array([[p.x, p.y] for p in points], dtype=np.float64).reshape(-1, 2)
        shown = self.positions if positions is None else positions
        if not points:
            self.graph.setData(pos=np.zeros((0, 2)), adj=None)
        else:
            index = {name: i for i, name in enumerate(self.names)}
            edges = [(index[self.all_names[a]], index[self.all_names[b]]) for a, b in self.skeleton
                     if a < len(self.all_names) and b < len(self.all_names)
                     and self.all_names[a] in index and self.all_names[b] in index]
            brushes, pens, sizes, symbols = [], [], [], []
            for p in points:
                colour = point_colour(p)
                occluded = p.visibility == OCCLUDED  # hollow: a ring in the point's colour
                brushes.append(pg.mkBrush(*colour, 0 if occluded else 255))
                chosen = p.name in self.selected
                outline = SELECTED if chosen else colour if occluded else (0, 0, 0)
                pens.append(pg.mkPen(outline, width=3.5 if chosen or occluded else 1.5))
                sizes.append((18 if chosen else 11) + (3 if p.manual else 0))  # diamonds look smaller
                symbols.append("d" if p.manual else "o")  # manual points are diamonds
            self.graph.setData(pos=shown.copy(), adj=np.array(edges, dtype=int).reshape(-1, 2),
                               pen=pg.mkPen(255, 255, 255, 170, width=1.5), symbolBrush=brushes,
                               symbolPen=pens, size=sizes, symbol=symbols, pxMode=True,
                               data=np.arange(len(points)))
        while len(self.captions) > len(points):
            self.view.view_box.removeItem(self.captions.pop())
        while len(self.captions) < len(points):
            caption = pg.TextItem(anchor=(-0.05, 1.05), fill=pg.mkBrush(0, 0, 0, 150))
            caption.setFont(CAPTION_FONT)
            self.captions.append(self.view.add_overlay(caption, 28))
        for caption, p, (x, y) in zip(self.captions, points, shown):
            caption.setText(point_caption(p, self.scores), color=point_colour(p) if p.flags else (235, 235, 235))
            caption.setPos(x, y)
            caption.setZValue(29 if p.name in self.selected else 28)  # under the markers; a selected point's on top
        self.place_captions()

    def place_captions(self) -> None:
        """Put each caption at the first corner of its point (above right, below right, above left,
        below left) where it overlaps no caption placed before, in screen pixels; else above right."""
        width, height = self.view.view_box.viewPixelSize()
        if not self.captions or not width or not height:
            return
        centres = [(c.pos().x() / width, c.pos().y() / height) for c in self.captions]  # screen pixels
        markers = [QRectF(x - 8, y - 8, 16, 16) for x, y in centres]
        placed: list[QRectF] = []
        for index, (caption, (x, y)) in enumerate(zip(self.captions, centres)):
            size = caption.textItem.boundingRect()
            w, h = size.width() + 4, size.height()
            options = [((-0.05, 1.05), QRectF(x + 2, y - h, w, h)), ((-0.05, -0.05), QRectF(x + 2, y, w, h)),
                       ((1.05, 1.05), QRectF(x - w - 2, y - h, w, h)), ((1.05, -0.05), QRectF(x - w - 2, y, w, h))]
            taken = placed + markers[:index] + markers[index + 1:]  # other captions and other points
            anchor, rect = next((o for o in options if not any(o[1].intersects(r) for r in taken)), options[0])
            caption.setAnchor(anchor)
            placed.append(rect)

    # --- gestures (called by the items; public so tests can drive them in image pixels) ----------
    def click_point(self, index: int, modifiers) -> None:
        self.point_clicked.emit(self.names[index], bool(modifiers & MODIFIERS))

    def click_empty(self, pos, modifiers) -> None:
        self.empty_clicked.emit(float(pos.x()), float(pos.y()), bool(modifiers & MODIFIERS))

    def band_select(self, rect: QRectF) -> None:
        names = [n for n, (x, y) in zip(self.names, self.positions) if rect.contains(QPointF(x, y))]
        self.band_selected.emit(names, True)

    def begin_drag(self, index: int, pos, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
        """Start dragging point ``index`` and, if it is selected, every selected point with it."""
        name = self.names[index]
        names = [n for n in self.names if n in self.selected] if name in self.selected else [name]
        rows = [self.names.index(n) for n in names]
        self.drag = _Drag(names, self.positions[rows].copy(), np.array([pos.x(), pos.y()]), np.zeros(2))

    def update_drag(self, pos) -> None:
        """Preview the dragged points at the pointer (kept inside the image); nothing is edited yet."""
        if self.drag is None:
            return
        self.drag.delta = self._clamped(np.array([pos.x(), pos.y()]) - self.drag.anchor)
        shown = self.positions.copy()
        for row, start in zip((self.names.index(n) for n in self.drag.names), self.drag.start):
            shown[row] = start + self.drag.delta
        self._redraw(shown)

    def finish_drag(self, pos) -> None:
        """Drop: emit the move (the window edits the Project, which redraws us)."""
        if self.drag is None:
            return
        self.update_drag(pos)
        drag, self.drag = self.drag, None
        if np.any(drag.delta != 0):
            self.points_dragged.emit(drag.names, float(drag.delta[0]), float(drag.delta[1]))
        else:
            self._redraw()

    def _clamped(self, delta: np.ndarray) -> np.ndarray:
        """``delta`` limited so every dragged point stays on the image (edges at -0.5 and size - 0.5)."""
        size = self.labels.size if self.labels else None
        if size is None or self.drag is None:
            return delta
        low = -0.5 - self.drag.start.min(axis=0)
        high = np.array(size, dtype=np.float64) - 0.5 - self.drag.start.max(axis=0)
        return np.clip(delta, low, high)
