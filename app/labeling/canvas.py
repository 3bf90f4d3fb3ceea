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
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QApplication, QGraphicsRectItem

from rtn_core.labels.keypoints import ABSENT, FB_FAIL, LOW_CONFIDENCE, LR_SWAP, OCCLUDED, ImageLabels

from ..placement import place_labels
from ..scores import score_text
from ..views import ImageView

# markers tell a point's state by colour AND shape (and captions, table and strip by glyph)
AUTO = (40, 200, 90)  # transferred, no flag: a green circle
FLAGGED = {LOW_CONFIDENCE: (255, 150, 30), FB_FAIL: (235, 50, 50), LR_SWAP: (220, 60, 220)}
FLAG_SYMBOL = {LOW_CONFIDENCE: "t1", FB_FAIL: "x", LR_SWAP: "s"}  # pyqtgraph: triangle, cross, square
FLAG_GLYPH = {LOW_CONFIDENCE: "▲", FB_FAIL: "✖", LR_SWAP: "■"}  # the same shapes in text
FLAG_ORDER = (FB_FAIL, LR_SWAP, LOW_CONFIDENCE)  # worst first
MANUAL = (80, 190, 255)  # placed or corrected by a person: a blue diamond
SELECTED = (255, 255, 255)  # a thick white ring
FLAG_SHORT = {LOW_CONFIDENCE: "low conf", FB_FAIL: "fb fail", LR_SWAP: "L/R swap"}
FLAG_MEANING = {LOW_CONFIDENCE: "the model's confidence is below the threshold",
                FB_FAIL: "mapped to the target and back, it misses the source point",
                LR_SWAP: "this left/right pair is in the opposite order from the source"}
MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
MARKER_REACH = 9.0  # screen pixels from a marker's centre that its largest shape (selected) covers


def worst_flag(point) -> str | None:
    return next((flag for flag in FLAG_ORDER if flag in point.flags), None)


def point_colour(point) -> tuple[int, int, int]:
    """The marker colour of a Point: its worst flag, else manual or transferred."""
    flag = worst_flag(point)
    return FLAGGED[flag] if flag else MANUAL if point.manual else AUTO


def point_symbol(point) -> str:
    """The marker shape of a Point: its worst flag's, else a diamond (manual) or a circle."""
    flag = worst_flag(point)
    return FLAG_SYMBOL[flag] if flag else "d" if point.manual else "o"


def flag_text(flags) -> str:
    """Flags as glyph and words, e.g. "✖ fb fail, ▲ low conf"."""
    return ", ".join(f"{FLAG_GLYPH.get(f, '⚠')} {FLAG_SHORT.get(f, f)}" for f in flags)


def point_caption(point, scores: bool) -> str:
    """The text beside a marker: its name, and on targets its confidence and fb error (or that a
    person placed it) and flags."""
    text = point.name
    score = score_text(point.confidence, point.manual) if scores else ""
    if score:
        text += f"  {score}"
        if point.fb_error is not None and not point.manual:
            text += f" · {point.fb_error:.1f}px"
    if point.flags:
        text += "  " + flag_text(point.flags)
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
        self.drawn: list = []  # ... and the Points themselves
        self.positions = np.zeros((0, 2))
        self.selected: frozenset[str] = frozenset()
        self.skeleton: tuple = ()
        self.all_names: tuple[str, ...] = ()
        self.drag: _Drag | None = None
        self.background = view.add_overlay(_BackgroundItem(self), 8)
        self.graph = view.add_overlay(_PointsItem(self), 30)
        self.captions: list[pg.TextItem] = []
        self.caption_texts: list[str] = []  # each caption's full text (crowded ones show less)
        self.captions_shown = True
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
        points = self.drawn = [p for p in (self.labels.points if self.labels else ()) if p.visibility != ABSENT]
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
                symbol = point_symbol(p)
                sizes.append((18 if chosen else 11) + (0 if symbol == "o" else 3))  # other shapes look smaller
                symbols.append(symbol)
            self.graph.setData(pos=shown.copy(), adj=np.array(edges, dtype=int).reshape(-1, 2),
                               pen=pg.mkPen(255, 255, 255, 170, width=1.5), symbolBrush=brushes,
                               symbolPen=pens, size=sizes, symbol=symbols, pxMode=True,
                               data=np.arange(len(points)), hoverable=True, tip=self._tip)
        while len(self.captions) > len(points):
            self.view.view_box.removeItem(self.captions.pop())
        while len(self.captions) < len(points):
            caption = pg.TextItem(anchor=(-0.05, 1.05), fill=pg.mkBrush(0, 0, 0, 150))
            caption.setFont(QApplication.font())  # the app's font, as it is now (not made before the app)
            self.captions.append(self.view.add_overlay(caption, 28))
        self.caption_texts = [point_caption(p, self.scores) for p in points]
        for caption, p, (x, y), text in zip(self.captions, points, shown, self.caption_texts):
            caption.setText(text, color=point_colour(p) if p.flags else (235, 235, 235))
            caption.setPos(x, y)
            caption.setZValue(29 if p.name in self.selected else 28)  # under the markers; a selected point's on top
        self.place_captions()

    def _tip(self, x, y, data) -> str:
        """A marker's tooltip: its full caption (shown even where crowding or C hides the caption)."""
        return self.caption_texts[int(data)] if int(data) < len(self.caption_texts) else ""

    def set_captions_shown(self, shown: bool) -> None:
        """Show or hide the names and scores beside the markers."""
        self.captions_shown = shown
        self.place_captions()

    def place_captions(self) -> None:
        """Put each caption beside its point, inside the view, covering no other caption or marker where
        it can (:func:`app.placement.place_labels`, selected then flagged points first). Where points crowd,
        a caption with no free spot shows only the name, and if even that finds none, nothing unless its
        point is selected (the table has every score). Captions of points out of view are hidden."""
        width, height = self.view.view_box.viewPixelSize()
        if not self.captions or not width or not height:
            return
        shown = self.view.view_box.viewRect()
        bounds = (shown.left() / width, shown.top() / height, shown.right() / width, shown.bottom() / height)
        screen = np.array([(c.pos().x() / width, c.pos().y() / height) for c in self.captions]).reshape(-1, 2)
        chosen = [name in self.selected for name in self.names]
        flagged = [bool(p.flags) for p in self.drawn]
        order = sorted((i for i, (x, y) in enumerate(screen) if self.captions_shown  # the best spots go to
                        and bounds[0] <= x <= bounds[2] and bounds[1] <= y <= bounds[3]),  # selected, then flagged
                       key=lambda i: (not chosen[i], not flagged[i]))
        for index in set(range(len(self.captions))) - set(order):
            self.captions[index].hide()
        if not order:
            return
        short: set[int] = set()  # captions cut to the name: their full text found no free spot
        for _ in range(2):
            for index in order:
                self.captions[index].setText(self.names[index] if index in short else self.caption_texts[index])
            sizes = [(r.width(), r.height()) for r in (self.captions[i].textItem.boundingRect() for i in order)]
            offsets, _, crowd = place_labels(screen[order], sizes, MARKER_REACH, bounds=bounds,
                                             required=[chosen[i] for i in order])
            crowded = {i for i, c in zip(order, crowd) if c and not chosen[i]}
            if not crowded:
                break
            short = crowded
        for index, (dx, dy), (w, h) in zip(order, offsets.tolist(), sizes):
            caption = self.captions[index]
            caption.setAnchor((-dx / w, -dy / h))
            caption.setVisible(index not in crowded)

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

