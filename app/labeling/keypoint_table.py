"""The keypoint table: every keypoint of the project, as it stands on the image being edited.

Columns: name (double-click or F2 to rename, inline), visibility (a combo: visible, occluded,
absent), confidence (a percentage, "by hand" for a point a person placed), forward-backward
error, flags, x, y: what a reviewer reads first comes first, so a narrow dock scrolls only the
coordinates out of view. Flagged rows are tinted and their flags shown by glyph and word (the markers'
shapes), manual points say so. Selecting rows selects the points; the table only emits what the
user asked for.
"""
from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHeaderView, QTableWidget, QTableWidgetItem

from rtn_core.labels.keypoints import ABSENT, OCCLUDED, PENDING, VISIBLE, ImageLabels

from ..scores import FINAL_MATCH, score_text
from .canvas import FLAG_GLYPH, FLAG_MEANING, FLAG_SHORT, flag_text, point_colour

VISIBILITY_ORDER = (VISIBLE, OCCLUDED, ABSENT)
VISIBILITY_TEXT = {VISIBLE: "visible", OCCLUDED: "occluded", ABSENT: "absent"}
COLUMNS = ("Keypoint", "Visibility", "Conf.", "FB err px", "Flags", "x", "y")  # what review needs first
NAME, VISIBILITY, CONFIDENCE, FB, FLAGS, X, Y = range(len(COLUMNS))


class KeypointTable(QTableWidget):
    """Rows are the project's keypoint names; empty cells where this image lacks the point."""

    rename_requested = Signal(str, str)  # old name, new name
    visibility_requested = Signal(str, int)  # name, visibility
    selection_requested = Signal(object)  # names

    def __init__(self):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.horizontalHeaderItem(COLUMNS.index("Conf.")).setToolTip(FINAL_MATCH)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
        header = self.horizontalHeader()
        # every column fits its text, Flags too: a narrow dock scrolls sideways rather than cut "◆ manual"
        # short (a stretched last section would shrink below its text)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setWordWrap(False)
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
            for row in range(len(self.names), self.rowCount()):
                self._set_combo(row, None)
            self.setRowCount(len(self.names))
            for row, name in enumerate(self.names):
                point = labels.point(name)
                self._set_text(row, NAME, name, editable=True, tip="Double-click or F2 to rename (in every image)")
                pending = labels.status == PENDING  # a target not transferred yet lacks every point
                if point is None:
                    cells = {VISIBILITY: "not run" if pending else "missing"}
                else:
                    flags = ([flag_text(point.flags)] if point.flags else []) + (["◆ manual"] if point.manual else [])
                    cells = {CONFIDENCE: score_text(point.confidence, point.manual),
                             FB: "" if point.fb_error is None or point.manual else f"{point.fb_error:.2f}",
                             FLAGS: ", ".join(flags), X: f"{point.x:.1f}", Y: f"{point.y:.1f}"}
                colour = QColor(*point_colour(point)) if point is not None and point.flags else None
                for column in range(VISIBILITY, len(COLUMNS)):
                    self._set_text(row, column, cells.get(column, ""), colour=colour, tip=flags_tip(point) if point else
                                   ("Not transferred yet (Ctrl+R); or " if pending else "Not on this image: ")
                                   + "select it and click the image to place it")
                self._set_combo(row, point)
            self.clearSelection()
            for row, name in enumerate(self.names):
                if name in selected:
                    self.selectRow(row) if len(selected) == 1 else self._add_row(row)
        finally:
            del blocker
            self._updating = False

    def _set_text(self, row: int, column: int, text: str, editable: bool = False, tip: str = "",
                  colour: QColor | None = None) -> None:
        """Update the cell's item in place (replacing items would orphan the row's combo box)."""
        item = self.item(row, column)
        if item is None:
            item = QTableWidgetItem()
            flags = item.flags() | Qt.ItemFlag.ItemIsEditable if editable else item.flags() & ~Qt.ItemFlag.ItemIsEditable
            item.setFlags(flags)
            self.setItem(row, column, item)
        item.setText(text)
        item.setToolTip(tip)
        item.setData(Qt.ItemDataRole.ForegroundRole, QBrush(colour) if colour is not None else None)

    def _set_combo(self, row: int, point) -> None:
        """The visibility combo of a row whose image has the point; none where it lacks it."""
        combo = self.cellWidget(row, VISIBILITY)
        if point is None:
            if combo is not None:  # Qt only forgets a removed cell widget: hide and delete it ourselves
                self.removeCellWidget(row, VISIBILITY)
                combo.hide()
                combo.deleteLater()
            return
        if combo is None:
            combo = QComboBox()
            combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            for value in VISIBILITY_ORDER:
                combo.addItem(VISIBILITY_TEXT[value], value)
            combo.activated.connect(lambda _index, c=combo, r=row: self._on_combo(r, c))
            self.setCellWidget(row, VISIBILITY, combo)
        combo.blockSignals(True)
        combo.setCurrentIndex(VISIBILITY_ORDER.index(point.visibility))
        combo.blockSignals(False)

    def _on_combo(self, row: int, combo: QComboBox) -> None:
        if row < len(self.names):
            self.visibility_requested.emit(self.names[row], combo.currentData())

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


def flags_tip(point) -> str:
    """What each of a point's flags means, one per line (the Flags cell's tooltip)."""
    lines = [f"{FLAG_GLYPH[f]} {FLAG_SHORT[f]}: {FLAG_MEANING[f]}" for f in point.flags if f in FLAG_MEANING]
    return "\n".join(lines + (["◆ manual: placed or corrected by hand"] if point.manual else []))
