"""The image views: a pyqtgraph view per image, plus the items drawn over it.

Coordinates inside a view are the image's ORIGINAL pixel coordinates with pixel centres at
integers: the image item's rect is (-0.5, -0.5, width, height) whatever resolution the pixels
were decoded at, and Y points down.

Markers, arrows, ellipses and the hover cross are light strokes over a dark halo: white and
black are the only unsaturated colours drawn, so they read on any photo and never match a glyph
(saturated colours by source position) or the heatmap's colour map.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem,
                               QGraphicsSimpleTextItem, QLabel, QSplitter, QVBoxLayout, QWidget)

from rtn_core.images import LoadedImage

from .placement import place_labels

LIGHT = QColor(255, 255, 255)
HALO = QColor(0, 0, 0, 230)


def _cosmetic_pen(colour, width: float) -> QPen:
    pen = QPen(QColor(colour))
    pen.setWidthF(width)
    pen.setCosmetic(True)  # width in screen pixels at every zoom; <= 1 takes Qt's fast stroker
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


class PolylineItem(pg.GraphicsObject):
    """Many polylines drawn as one QPainterPath per colour: cheap enough for 60 fps animation.

    ``set_groups`` fixes which polyline gets which colour; ``set_lines`` then only rebuilds paths.
    With ``halo`` every line is first drawn two pixels wider in that colour, under all strokes.
    ``set_clip`` keeps the lines inside a rect (e.g. the image).
    """

    def __init__(self, colour=(255, 255, 255), width: float = 1.0, halo: QColor | None = None):
        super().__init__()
        # painted into a pixmap once and reused while the lines stay the same (e.g. under new markers)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._width = width
        self._halo = None if halo is None else _cosmetic_pen(halo, width + 2.0)
        self._groups: list[tuple[QPen, np.ndarray | None]] = [(self._pen(colour), None)]
        self._paths: list[tuple[QPen, QPainterPath]] = []
        self._bounds = QRectF()
        self._clip: QRectF | None = None
        self.lines: np.ndarray | None = None  # what is drawn, so callers and tests can read it back

    def _pen(self, colour) -> QPen:
        return _cosmetic_pen(QColor(*colour), self._width)

    def set_clip(self, rect: QRectF | None) -> None:
        """Draw only inside ``rect`` (item coordinates); None draws everywhere."""
        self.prepareGeometryChange()
        self._clip = rect
        self.update()

    def set_groups(self, groups: np.ndarray, colours) -> None:
        """Polyline i is drawn in ``colours[groups[i]]``."""
        self._groups = [(self._pen(colours[g]), np.flatnonzero(groups == g)) for g in np.unique(groups)]

    def set_lines(self, lines: np.ndarray | None) -> None:
        """(N, M, 2) polylines of M points each; None or empty clears the item."""
        self.prepareGeometryChange()
        self._paths = []
        self.lines = None if lines is None else np.asarray(lines, dtype=np.float64)
        if lines is None or not len(lines):
            self._bounds = QRectF()
        else:
            lines = self.lines
            for pen, index in self._groups:
                chosen = lines if index is None else lines[index]
                if len(chosen):
                    self._paths.append((pen, _polyline_path(chosen)))
            low, high = lines.reshape(-1, 2).min(axis=0), lines.reshape(-1, 2).max(axis=0)
            pad = 0.01 * float(max(high - low)) + 0.5  # room for the stroke's width at any zoom
            self._bounds = QRectF(low[0] - pad, low[1] - pad, high[0] - low[0] + 2 * pad, high[1] - low[1] + 2 * pad)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds if self._clip is None else self._bounds.intersected(self._clip)

    def paint(self, painter, *args) -> None:
        if self._clip is not None:
            painter.setClipRect(self._clip)
        if self._halo is not None:
            painter.setPen(self._halo)
            for _, path in self._paths:
                painter.drawPath(path)
        for pen, path in self._paths:
            painter.setPen(pen)
            painter.drawPath(path)


def _polyline_path(lines: np.ndarray) -> QPainterPath:
    count, length = lines.shape[:2]
    connect = np.ones((count, length), dtype=np.int32)
    connect[:, -1] = 0  # no stroke from one polyline's end to the next one's start
    return pg.arrayToQPath(lines[..., 0].ravel(), lines[..., 1].ravel(), connect.ravel())


class NumberLabel(QGraphicsRectItem):
    """A point's label on a dark plate beside its parent dot (screen pixels), where
    :meth:`move_to` puts it."""

    def __init__(self, parent: QGraphicsItem):
        super().__init__(parent)
        self.setBrush(QColor(0, 0, 0, 170))
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.text = QGraphicsSimpleTextItem(self)
        self.text.setBrush(LIGHT)
        self.size = (0.0, 0.0)  # the plate's width and height
        self.offset = (9.0, -20.0)  # the plate's top-left corner relative to the dot
        self.spot = -1  # which of placement.candidate_offsets it sits at (-1: not placed yet)
        self.crowded = False  # no free spot for it (points crowd): shown only while selected

    def set_text(self, text: str) -> None:
        self.text.setText(text)
        bounds = self.text.boundingRect()
        self.size = (bounds.width() + 4, bounds.height() + 2)
        self._draw()

    def move_to(self, dx: float, dy: float) -> None:
        """Put the plate's top-left corner at (dx, dy) from the dot (no Qt call when it is there)."""
        if (dx, dy) != self.offset:
            self.offset = (dx, dy)
            self._draw()

    def _draw(self) -> None:
        dx, dy = self.offset
        self.setRect(QRectF(dx, dy, *self.size))
        self.text.setPos(dx + 2, dy + 1)


MARKER_RADIUS = 5.0
CHOSEN_RADIUS = 7.0
DIAMOND_SCALE = 1.25  # a diamond's half-diagonal over a circle's radius: about the same area, so neither reads bigger
CIRCLE, DIAMOND = "o", "d"  # marker shapes: a model's match, a match fixed by hand (Label Transfer's manual points)


class PointMarker(QGraphicsPathItem):
    """One numbered point: a white dot in a dark ring, of fixed screen size, placed in image
    pixels, with its label; a selected point is larger with a dark centre, and a fixed one is a
    diamond (a shape, not only a colour, tells them apart).

    One small item per point (rather than one item for all) keeps a click's repaint to the few
    pixels around the new point.
    """

    def __init__(self):
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPen(_cosmetic_pen(HALO, 2.5))
        self.setBrush(LIGHT)
        self.label = NumberLabel(self)
        self._shown = (None, None, None, None)  # position, chosen, text, fixed

    @property
    def chosen(self) -> bool:
        return bool(self._shown[1])

    @property
    def symbol(self) -> str:
        """The shape drawn: DIAMOND for a fixed point, else CIRCLE."""
        return DIAMOND if self._shown[3] else CIRCLE

    def present(self, x: float, y: float, chosen: bool, text: str, fixed: bool = False) -> None:
        """Place and style the marker; what is already shown costs no Qt call, and so no repaint."""
        position, was_chosen, shown_text, was_fixed = self._shown
        if position != (x, y):
            self.setPos(x, y)
        if (chosen, fixed) != (was_chosen, was_fixed):
            self.setPath(_marker_path(CHOSEN_RADIUS if chosen else MARKER_RADIUS, fixed))
        if text != shown_text:
            self.label.set_text(text)
            self.setToolTip(text)  # names the point on hover, also where crowding hides its label
        self._shown = ((x, y), chosen, text, fixed)

    def paint(self, painter, option, widget=None) -> None:
        super().paint(painter, option, widget)
        if self.chosen:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(HALO)
            painter.drawEllipse(QPointF(0, 0), 2.5, 2.5)


def _marker_path(radius: float, diamond: bool) -> QPainterPath:
    """A circle of ``radius``, or a diamond of about the same area, centred on (0, 0)."""
    path = QPainterPath()
    if diamond:
        reach = DIAMOND_SCALE * radius
        path.moveTo(0, -reach)
        for x, y in ((reach, 0), (0, reach), (-reach, 0)):
            path.lineTo(x, y)
        path.closeSubpath()
    else:
        path.addEllipse(QPointF(0, 0), radius, radius)
    return path


class ItemPool:
    """Hidden, ready-made items of one kind in a view, shown on demand.

    Adding an item to a scene repaints the whole view, but showing a hidden one repaints only
    its own few pixels; so items are made in batches and returned here instead of deleted.
    """

    BATCH = 16

    def __init__(self, view: "ImageView", make, z: float):
        self.view, self.make, self.z = view, make, z
        self.spare: list[QGraphicsItem] = []

    def take(self) -> QGraphicsItem:
        if not self.spare:
            for _ in range(self.BATCH):
                item = self.view.add_overlay(self.make(), self.z)
                item.setVisible(False)
                self.spare.append(item)
        item = self.spare.pop()
        item.setVisible(True)
        return item

    def give_back(self, item: QGraphicsItem) -> None:
        item.setVisible(False)
        self.spare.append(item)


class MarkerLayer:
    """Numbered point markers on one view and, optionally, an outline per point in image pixels.

    Labels are placed so that they cover neither each other nor the dots (again after each
    change and zoom; selected points' labels first), and can be hidden. Where points crowd so
    that a label would cover another point or label, it is left out unless its point is
    selected (the table names every point).
    """

    def __init__(self, view: "ImageView", z: float):
        self.view = view
        self.labels_shown = True
        self.markers: dict[int, PointMarker] = {}
        self.outline_items: dict[int, QGraphicsPathItem] = {}
        self._shown_outlines: dict[int, np.ndarray] = {}  # what each outline item draws now
        self._marker_pool = ItemPool(view, PointMarker, z + 0.1)
        self._outline_pool = ItemPool(view, _outline_item, z)
        self.positions = np.zeros((0, 2))
        self.outlines: np.ndarray | None = None
        self._ids: list[int] = []
        self._layout = None  # the points, screen positions and label sizes the labels were placed for
        view.view_box.sigRangeChanged.connect(self._on_zoom)

    def set_points(self, ids, positions, selected, texts, outlines=None, fixed=frozenset()) -> None:
        """Show points ``ids`` at (N, 2) ``positions`` labelled ``texts``; ``selected`` and ``fixed``
        (drawn as diamonds) are sets of ids; ``outlines`` (N, M, 2) draws a closed polyline per point
        (e.g. its affine ellipse)."""
        ids = list(ids)
        self.positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        self.outlines = None if outlines is None else np.asarray(outlines, dtype=np.float64)
        for point_id in set(self.markers) - set(ids):
            self._marker_pool.give_back(self.markers.pop(point_id))
        for point_id in set(self.outline_items) - (set() if self.outlines is None else set(ids)):
            self._outline_pool.give_back(self.outline_items.pop(point_id))
            self._shown_outlines.pop(point_id)
        for index, (point_id, (x, y), text) in enumerate(zip(ids, self.positions, texts)):
            marker = self.markers.get(point_id)
            if marker is None:
                marker = self.markers[point_id] = self._marker_pool.take()
            marker.present(x, y, point_id in selected, text, point_id in fixed)
            marker.label.setVisible(self.labels_shown and (marker.chosen or not marker.label.crowded))
            if self.outlines is not None:
                self._set_outline(point_id, self.outlines[index])
        self._ids = ids
        self.place_labels()

    def show_labels(self, shown: bool) -> None:
        """Show or hide every point's label (nothing to do when they already are)."""
        if shown == self.labels_shown:
            return
        self.labels_shown = shown
        for marker in self.markers.values():
            marker.label.setVisible(shown and (marker.chosen or not marker.label.crowded))
        self.place_labels()

    def _on_zoom(self, *args) -> None:
        self.place_labels(keep=False)  # a new zoom is a new layout: every label may take its best spot

    def place_labels(self, keep: bool = True) -> None:
        """Move each label to a spot that covers no other label or dot at the current zoom; with
        ``keep``, a label stays where it is while that spot is free (a click moves few labels)."""
        if not self.labels_shown or not self._ids:
            return
        order = sorted(range(len(self._ids)), key=lambda i: not self.markers[self._ids[i]].chosen)
        markers = [self.markers[self._ids[i]] for i in order]
        pixel = np.maximum(self.view.view_box.viewPixelSize(), 1e-9)
        screen, sizes = self.positions[order] / pixel, [m.label.size for m in markers]
        layout = ([self._ids[i] for i in order], [m.chosen for m in markers], screen.tobytes(), sizes)
        if layout == self._layout:  # e.g. a click's matches stored after its markers: already placed
            return
        self._layout = layout
        offsets, spots, crowded = place_labels(screen, sizes, CHOSEN_RADIUS + 1.5,
                                               [m.label.spot for m in markers] if keep else None,
                                               required=[m.chosen for m in markers])
        for marker, (dx, dy), spot, crowd in zip(markers, offsets.tolist(), spots, crowded):
            marker.label.move_to(dx, dy)
            marker.label.spot, marker.label.crowded = spot, crowd
            marker.label.setVisible(marker.chosen or not crowd)  # crowded: only while selected

    def _set_outline(self, point_id: int, outline: np.ndarray) -> None:
        if point_id not in self.outline_items:
            self.outline_items[point_id] = self._outline_pool.take()
        if not np.array_equal(self._shown_outlines.get(point_id), outline):  # unchanged: no repaint
            self._shown_outlines[point_id] = outline
            self.outline_items[point_id].setPath(_closed_path(outline))


class HaloPathItem(QGraphicsPathItem):
    """A path drawn as a light stroke over a dark halo two pixels wider."""

    def __init__(self, path: QPainterPath | None = None, width: float = 2.0):
        super().__init__(QPainterPath() if path is None else path)
        self.setPen(_cosmetic_pen(HALO, width + 2.0))  # the pen Qt sizes the bounding rect by
        self._stroke = _cosmetic_pen(LIGHT, width)

    def paint(self, painter, *args) -> None:
        painter.setPen(self.pen())
        painter.drawPath(self.path())
        painter.setPen(self._stroke)
        painter.drawPath(self.path())


def _outline_item() -> QGraphicsPathItem:
    return HaloPathItem(width=1.5)


def _closed_path(points: np.ndarray) -> QPainterPath:
    return pg.arrayToQPath(points[:, 0], points[:, 1], connect="all")


def cross_marker() -> QGraphicsPathItem:
    """A cross of fixed screen size, hidden until placed (the hover preview)."""
    path = QPainterPath()
    for start, end in (((-9, 0), (9, 0)), ((0, -9), (0, 9))):
        path.moveTo(*start)
        path.lineTo(*end)
    item = HaloPathItem(path)
    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
    item.setVisible(False)
    return item


class ImageView(pg.GraphicsView):
    """One image with pan (drag), zoom (wheel), clicks, hover and file drops, in image pixels."""

    clicked = Signal(float, float)
    hovered = Signal(float, float)
    left = Signal()  # the pointer left the image
    file_dropped = Signal(str)

    def __init__(self, placeholder: str):
        super().__init__()
        self.setAntialiasing(True)  # smooth lines and dots; images stay crisp (no SmoothPixmapTransform)
        self.setBackground((38, 38, 42))
        self.view_box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self.placeholder = pg.TextItem(placeholder, color=(180, 180, 180), anchor=(0.5, 0.5))
        self.view_box.addItem(self.placeholder)
        self.image: LoadedImage | None = None
        self._clipped: list = []  # overlays kept inside the image
        self.setAcceptDrops(True)
        self.scene().sigMouseClicked.connect(self._on_click)
        self.scene().sigMouseMoved.connect(self._on_move)

    def add_overlay(self, item, z: float, clip: bool = False):
        """Draw ``item`` over the image (higher ``z`` on top), in image pixel coordinates; with
        ``clip``, only inside the image (the item needs ``set_clip``, as :class:`PolylineItem`)."""
        item.setZValue(z)
        self.view_box.addItem(item)
        if clip:
            self._clipped.append(item)
            if self.image is not None:
                item.set_clip(self.image_rect())
        return item

    def set_image(self, image: LoadedImage) -> None:
        """Show ``image``'s pixels stretched over its original size, then fit it in the view."""
        self.image = image
        self.placeholder.setVisible(False)
        self.image_item.setImage(image.pixels, autoLevels=False)
        width, height = image.original_size
        self.image_item.setRect(QRectF(-0.5, -0.5, width, height))
        for item in self._clipped:
            item.set_clip(self.image_rect())
        self.fit()

    def image_rect(self) -> QRectF:
        return self.image_item.mapRectToParent(self.image_item.boundingRect())

    def fit(self) -> None:
        """Show the whole image."""
        if self.image is not None:
            self.view_box.setRange(rect=self.image_rect(), padding=0.02)

    def _image_point(self, scene_pos) -> tuple[float, float] | None:
        """Scene position -> image (x, y), or None outside the image."""
        if self.image is None:
            return None
        point = self.view_box.mapSceneToView(scene_pos)
        width, height = self.image.original_size
        if -0.5 <= point.x() <= width - 0.5 and -0.5 <= point.y() <= height - 0.5:
            return point.x(), point.y()
        return None

    def _on_click(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        point = self._image_point(event.scenePos())
        if point is not None:
            self.clicked.emit(*point)

    def _on_move(self, scene_pos) -> None:
        point = self._image_point(scene_pos)
        if point is None:
            self.left.emit()
        else:
            self.hovered.emit(*point)

    def leaveEvent(self, event) -> None:
        self.left.emit()
        super().leaveEvent(event)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event) -> None:
        urls = [url for url in event.mimeData().urls() if url.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.file_dropped.emit(urls[0].toLocalFile())


def titled_panes(*panes: tuple[QLabel, QWidget]) -> QSplitter:
    """Side-by-side panes, each a (selectable) title label above its view, in one splitter."""
    splitter = QSplitter(Qt.Orientation.Horizontal)
    for title, view in panes:
        title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(title)
        layout.addWidget(view, 1)
        splitter.addWidget(pane)
    return splitter
