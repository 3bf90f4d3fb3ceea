"""The keypoint table: every keypoint of the project, as it stands on the image being edited.

Columns: name (double-click or F2 to rename, inline), visibility (a combo: visible, occluded,
absent), x, y, confidence, forward-backward error, flags. Flagged rows are tinted, manual
points say so. Selecting rows selects the points; the table only emits what the user asked for.
"""
from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHeaderView, QTableWidget, QTableWidgetItem

from rtn_core.keypoints import ABSENT, OCCLUDED, VISIBLE, ImageLabels

from .canvas import FLAG_SHORT, point_colour

VISIBILITY_TEXT = {VISIBLE: "visible", OCCLUDED: "occluded", ABSENT: "absent"}
COLUMNS = ("Keypoint", "Visibility", "x", "y", "Conf.", "FB err px", "Flags")
NAME, VISIBILITY, X, Y, CONFIDENCE, FB, FLAGS = range(len(COLUMNS))


class KeypointTable(QTableWidget):
    """Rows are the project's keypoint names; empty cells where this image lacks the point."""

    rename_requested = Signal(str, str)  # old name, new name
    visibility_requested = Signal(str, int)  # name, visibility
    selection_requested = Signal(object)  # names

    def __init__(self):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(FLAGS, QHeaderView.ResizeMode.Stretch)
        self.names: list[str] = []
        self._updating = False
        self.itemChanged.connect(self._on_item_changed)
        self.itemSelectionChanged.connect(self._on_selection_changed)

    def show_labels(self, labels: ImageLabels | None, names, selected) -> None:
        """Fill the table for one image; ``selected`` names are highlighted."""
        self._updating = True
        blocker = QSignalBlocker(self)
        try:
            self.names = list(names) if labels is not None else []
            self.setRowCount(len(self.names))
            for row, name in enumerate(self.names):
                point = labels.point(name)
                item = QTableWidgetItem(name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setToolTip("Double-click or F2 to rename (in every image)")
                self.setItem(row, NAME, item)
                if point is None:
                    self.removeCellWidget(row, VISIBILITY)
                    cells = ["not on this image", "", "", "", "", ""]
                else:
                    combo = QComboBox()
                    combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                    for value in (VISIBLE, OCCLUDED, ABSENT):
                        combo.addItem(VISIBILITY_TEXT[value], value)
                    combo.setCurrentIndex([VISIBLE, OCCLUDED, ABSENT].index(point.visibility))
                    combo.currentIndexChanged.connect(
                        lambda _index, n=name, c=combo: self.visibility_requested.emit(n, c.currentData()))
                    self.setCellWidget(row, VISIBILITY, combo)
                    flags = [FLAG_SHORT.get(f, f) for f in point.flags] + (["manual"] if point.manual else [])
                    cells = ["", f"{point.x:.1f}", f"{point.y:.1f}",
                             "" if point.confidence is None else f"{point.confidence:.3f}",
                             "" if point.fb_error is None else f"{point.fb_error:.2f}", ", ".join(flags)]
                for column, text in enumerate(cells, start=VISIBILITY):
                    cell = QTableWidgetItem(text)
                    cell.setFlags(cell.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    if point is not None and point.flags:
                        cell.setForeground(QBrush(QColor(*point_colour(point))))
                    self.setItem(row, column, cell)
            self.clearSelection()
            for row, name in enumerate(self.names):
                if name in selected:
                    self.selectRow(row) if len(selected) == 1 else self._add_row(row)
        finally:
            del blocker
            self._updating = False

    def _add_row(self, row: int) -> None:
        model = self.selectionModel()
        model.select(self.model().index(row, 0), model.SelectionFlag.Select | model.SelectionFlag.Rows)

    def selected_names(self) -> list[str]:
        return [self.names[i.row()] for i in self.selectionModel().selectedRows()]

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating or item.column() != NAME:
            return
        old, new = self.names[item.row()], item.text().strip()
        if new != old:
            self.rename_requested.emit(old, new)

    def _on_selection_changed(self) -> None:
        if not self._updating:
            self.selection_requested.emit(self.selected_names())
