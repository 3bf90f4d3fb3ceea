"""The target strip: one thumbnail per target, its state shown by a coloured border and a badge.

States: pending (grey, "…"), done but not reviewed (amber, "?": nothing flagged, yet no person has
looked), flagged (orange, with a count per flag by the markers' glyphs, e.g. "✖2 ▲1": two fb
fails, one low confidence), skipped (red, "✗", the reason in the tooltip), reviewed (blue, "✔":
the only tick, so a tick always means a person accepted it). :func:`strip_legend` and the tooltips
say what each means. Thumbnails are decoded a few at a time from the event loop (QImageReader
with a scaled size, so big photos stay cheap); an unreadable file keeps a grey tile.
"""
from __future__ import annotations

import os
from collections import Counter

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImageReader, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem

from rtn_core.labels.keypoints import FB_FAIL, LOW_CONFIDENCE, PENDING, SKIPPED, ImageLabels

from ..scores import BY_HAND, score_text
from .canvas import FLAG_GLYPH, FLAG_ORDER, flag_text, worst_flag

REVIEWED, FLAGGED, DONE_STATE = "reviewed", "flagged", "done"
STATE_STYLE = {  # state -> (border colour, badge); a flagged tile counts its flags, as in this example
    PENDING: ((140, 140, 140), "…"),
    DONE_STATE: ((235, 200, 60), "?"),
    FLAGGED: ((255, 150, 30), f"{FLAG_GLYPH[FB_FAIL]}2 {FLAG_GLYPH[LOW_CONFIDENCE]}1"),
    SKIPPED: ((235, 50, 50), "✗"),
    REVIEWED: ((70, 160, 255), "✔"),
}
STATE_TEXT = {  # state -> (a few words for titles and tooltips, what it asks of the annotator)
    PENDING: ("not transferred yet", "transfer it (Ctrl+R)"),
    DONE_STATE: ("needs review", "nothing flagged, but nobody has checked it: look, correct, accept (A)"),
    FLAGGED: ("flagged points to review", "the badge counts them by flag (see the legend): correct, accept (A)"),
    SKIPPED: ("skipped", "it could not be transferred, for the reason its tooltip gives"),
    REVIEWED: ("reviewed", "a person accepted its points"),
}
TILE = 96  # thumbnail side in pixels
BORDER = 5
PATH_ROLE = Qt.ItemDataRole.UserRole
STATE_ROLE = Qt.ItemDataRole.UserRole + 1


def target_state(labels: ImageLabels) -> str:
    """pending, skipped, reviewed, flagged (transferred with flagged points) or done."""
    if labels.status == SKIPPED:
        return SKIPPED
    if labels.status == PENDING:
        return PENDING
    if labels.reviewed:
        return REVIEWED
    return FLAGGED if labels.flagged else DONE_STATE


def flag_badge(labels: ImageLabels) -> str:
    """How many points carry each flag, by the markers' glyphs: e.g. "✖2 ▲1"."""
    counts = Counter(worst_flag(p) for p in labels.flagged)
    return " ".join(f"{FLAG_GLYPH[flag]}{counts[flag]}" for flag in FLAG_ORDER if counts[flag])


def badge(labels: ImageLabels) -> str:
    """The tile's badge: its state's glyph, or for a flagged target the count per flag."""
    state = target_state(labels)
    return flag_badge(labels) if state == FLAGGED else STATE_STYLE[state][1]


def describe(labels: ImageLabels) -> str:
    """The tooltip: file, state, why it was skipped, which points are flagged or placed by hand."""
    state = target_state(labels)
    words, meaning = STATE_TEXT[state]
    lines = [os.path.basename(labels.image), f"{words}: {meaning}"]
    if state == SKIPPED:
        lines.append(f"reason: {labels.reason}")
    if labels.flagged:
        lines.append("flagged: " + ", ".join(f"{p.name} ({flag_text(p.flags)})" for p in labels.flagged))
    if labels.points:
        scores = [p.confidence for p in labels.points if p.confidence is not None and not p.manual]
        if scores:
            lines.append(f"lowest confidence: {score_text(min(scores))}")
        hand = [p.name for p in labels.points if p.manual]
        if hand:
            lines.append(f"{BY_HAND}: {', '.join(hand)}")
    return "\n".join(lines)


def strip_legend() -> str:
    """Rich text for a line under the strip: each badge on its colour, then its few words."""
    return "Targets: " + " &nbsp; ".join(
        f"<span style='background-color:rgb{STATE_STYLE[state][0]}; color:black'>&nbsp;{STATE_STYLE[state][1]}"
        f"&nbsp;</span>&nbsp;{STATE_TEXT[state][0]}" for state in (PENDING, DONE_STATE, FLAGGED, REVIEWED, SKIPPED))


class ThumbnailStrip(QListWidget):
    """A horizontal row of target tiles; ``current_path_changed`` when the user picks one."""

    current_path_changed = Signal(str)

    def __init__(self):
        super().__init__()
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setIconSize(QSize(TILE + 2 * BORDER, TILE + 2 * BORDER))
        self.setGridSize(QSize(TILE + 2 * BORDER + 14, TILE + 2 * BORDER + 24))
        self.setFixedHeight(TILE + 2 * BORDER + 46)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go to the window's shortcuts
        self._thumbs: dict[str, QPixmap | None] = {}  # path -> decoded thumbnail (None: unreadable)
        self._queue: list[str] = []
        self._timer = QTimer(self, interval=0)
        self._timer.timeout.connect(self._decode_some)
        self._labels: dict[str, ImageLabels] = {}
        self._items: dict[str, QListWidgetItem] = {}
        self._updating = False
        self.currentItemChanged.connect(self._on_current_changed)

    # --- content ---------------------------------------------------------------------------------
    def set_targets(self, targets, current: str | None) -> None:
        """Show ``targets`` (ImageLabels, in display order) with ``current`` highlighted.

        Only tiles whose labels changed are repainted (unchanged images are the same objects).
        """
        self._updating = True
        try:
            order = [t.image for t in targets]
            previous, self._labels = self._labels, {t.image: t for t in targets}
            if order != self.paths():
                self.clear()
                self._items = {}
                previous = {}
                for path in order:
                    item = QListWidgetItem(os.path.basename(path))
                    item.setData(PATH_ROLE, path)
                    item.setSizeHint(self.gridSize())
                    self.addItem(item)
                    self._items[path] = item
            for target in targets:
                if previous.get(target.image) is not target:
                    self._refresh(self._items[target.image])
            if current in self._items:
                self.setCurrentItem(self._items[current])
                self.scrollToItem(self._items[current])
            else:
                self.setCurrentRow(-1)
        finally:
            self._updating = False

    def paths(self) -> list[str]:
        return [self.item(row).data(PATH_ROLE) for row in range(self.count())]

    def state(self, path: str) -> str:
        """The state shown for ``path`` (for tests and the status bar)."""
        return self._items[path].data(STATE_ROLE)

    def _refresh(self, item: QListWidgetItem) -> None:
        path = item.data(PATH_ROLE)
        labels = self._labels[path]
        state = target_state(labels)
        item.setData(STATE_ROLE, state)
        item.setToolTip(describe(labels))
        item.setIcon(self._icon(path, labels))
        if path not in self._thumbs and path not in self._queue:
            self._queue.append(path)
            self._timer.start()

    def _icon(self, path: str, labels: ImageLabels) -> QIcon:
        """The tile, drawn the same when selected: Qt's selection tint would turn amber olive, as
        if it were another state (the caption under it shows the selection)."""
        tile = self._tile(path, target_state(labels), badge(labels))
        icon = QIcon(tile)
        icon.addPixmap(tile, QIcon.Mode.Selected)
        return icon

    def _tile(self, path: str, state: str, text: str) -> QPixmap:
        colour = STATE_STYLE[state][0]
        side = TILE + 2 * BORDER
        tile = QPixmap(side, side)
        tile.fill(QColor(*colour))
        painter = QPainter(tile)
        painter.fillRect(BORDER, BORDER, TILE, TILE, QColor(45, 45, 45))
        thumb = self._thumbs.get(path)
        if thumb is not None:
            painter.drawPixmap(BORDER + (TILE - thumb.width()) // 2, BORDER + (TILE - thumb.height()) // 2, thumb)
        if state == SKIPPED:  # a red cross over the tile: nothing to review here
            painter.setPen(QPen(QColor(*colour), 4))
            painter.drawLine(BORDER + 8, BORDER + 8, side - BORDER - 8, side - BORDER - 8)
            painter.drawLine(side - BORDER - 8, BORDER + 8, BORDER + 8, side - BORDER - 8)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(15)
        painter.setFont(font)
        width = painter.fontMetrics().horizontalAdvance(text) + 10
        painter.fillRect(side - width, 0, width, 22, QColor(*colour))
        painter.setPen(QColor(0, 0, 0))
        painter.drawText(side - width, 0, width, 22, Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
        return tile

    def _decode_some(self) -> None:
        """Decode up to four queued thumbnails per event-loop turn, then redraw their tiles."""
        for _ in range(min(4, len(self._queue))):
            path = self._queue.pop(0)
            reader = QImageReader(path)
            reader.setAutoTransform(True)
            size = reader.size()
            if size.isValid() and size.width() > 0 and size.height() > 0:
                reader.setScaledSize(size.scaled(TILE, TILE, Qt.AspectRatioMode.KeepAspectRatio))
            image = reader.read()
            self._thumbs[path] = None if image.isNull() else QPixmap.fromImage(image)
            if path in self._items:
                item = self._items[path]
                labels = self._labels[path]
                item.setIcon(self._icon(path, labels))
        if not self._queue:
            self._timer.stop()

    def _on_current_changed(self, current, _previous) -> None:
        if current is not None and not self._updating:
            self.current_path_changed.emit(current.data(PATH_ROLE))
