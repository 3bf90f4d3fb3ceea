"""Small legends fixed to a corner of an image view: what the glyph colours and the heatmap mean."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsSimpleTextItem

from .field import position_colours

PAD = 6.0  # screen pixels inside the plate and between it and the view's edge


class Legend(QGraphicsRectItem):
    """A caption and, below it, an optional picture (a swatch or a colour bar) with a word under
    each end, on a dark plate fixed to a corner of a view box: screen pixels, whatever the zoom.

    It takes no clicks, so the image under it still gets them.
    """

    def __init__(self, view_box: pg.ViewBox, corner: str = "bottom-left"):
        super().__init__(view_box)
        self.view_box, self.corner = view_box, corner
        self.setZValue(1000)
        self.setBrush(QColor(0, 0, 0, 180))
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.caption = self._text()
        self.picture = QGraphicsPixmapItem(self)
        self.ends = (self._text(), self._text())
        self._shown = None  # what show_content last drew, so that a redraw of the same costs nothing
        self.setVisible(False)
        view_box.sigResized.connect(self._place)

    def _text(self) -> QGraphicsSimpleTextItem:
        text = QGraphicsSimpleTextItem(self)
        text.setBrush(QColor(255, 255, 255))
        return text

    def show_content(self, caption: str, picture: np.ndarray | None = None, size: tuple[int, int] = (0, 0),
                     ends: tuple[str, str] = ("", "")) -> None:
        """Show ``caption`` and, when given, the (h, w, 3) uint8 RGB ``picture`` stretched to
        ``size`` (width, height) pixels with ``ends`` written under its left and right ends."""
        self.setVisible(True)
        content = (caption, None if picture is None else picture.tobytes(), size, ends)
        if content == self._shown:
            return
        self._shown = content
        self.caption.setText(caption)
        self.caption.setPos(PAD, PAD)
        bottom = PAD + self.caption.boundingRect().height()
        width = self.caption.boundingRect().width()
        self.picture.setVisible(picture is not None)
        for end in self.ends:
            end.setVisible(picture is not None)
        if picture is not None:
            self.picture.setPixmap(_pixmap(picture, size))
            self.picture.setPos(PAD, bottom + 2)
            bottom += 2 + size[1]
            low, high = self.ends
            low.setText(ends[0])
            high.setText(ends[1])
            low.setPos(PAD, bottom)
            high.setPos(PAD + size[0] - high.boundingRect().width(), bottom)
            bottom += max(low.boundingRect().height(), high.boundingRect().height()) if any(ends) else 0
            width = max(width, size[0])
        self.setRect(QRectF(0, 0, width + 2 * PAD, bottom + PAD))
        self._place()

    def _place(self, *args) -> None:
        box, plate = self.view_box.rect(), self.rect()
        y = PAD if self.corner.startswith("top") else box.height() - plate.height() - PAD
        self.setPos(PAD, y)


def _pixmap(rgb: np.ndarray, size: tuple[int, int]) -> QPixmap:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.scaled(*size))  # nearest: the swatch's cells stay sharp


def glyph_legend(view_box: pg.ViewBox) -> Legend:
    """Top-left: the swatch of glyph colours over the source, and what it means."""
    legend = Legend(view_box, "top-left")
    legend.show_content("Glyph colour = where it\nstarts on the source", position_colours(), (60, 40))
    legend.setVisible(False)
    return legend


def show_heatmap_legend(legend: Legend, lookup: np.ndarray, name: str | None) -> None:
    """The heatmap's colour bar (``lookup``: (256, 3) RGB) and the name of the point it shows,
    or, with no point, what to do to get one."""
    if name is None:
        legend.show_content("Click a point on the source to see its score map")
    else:
        legend.show_content(f"Score map of {name}", lookup[None, :, :3], (140, 10), ("low", "high"))
