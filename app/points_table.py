"""The points table: a Qt view of the Qt-free :class:`PointList`, kept in sync both ways; a
point is renamed by editing its name cell.

The table catches up with the list SYNC_DELAY_MS after a change (changes in between coalesce,
e.g. during playback), so a click's marker is painted before the table's rows are.
"""
from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, QTimer
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from .points import Point, PointList
from .scores import FINAL_ONLY, NO_SCORE, score_text

COLUMNS = ["name", "src x", "src y", "tgt x", "tgt y", "conf."]  # short: the dock is narrow on a laptop
SYNC_DELAY_MS = 25  # the table follows this long after a change: after the views have painted it


class PointsTableModel(QStandardItemModel):
    """Rows are points in list order; columns are COLUMNS; the name cells are editable.

    The cells live in Qt's C++ item model and are copied from the point list by :meth:`refresh`,
    because a Python ``data()`` called for every cell and role made each repaint several times
    slower.
    """

    def __init__(self, points: PointList):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.horizontalHeaderItem(COLUMNS.index("conf.")).setToolTip(FINAL_ONLY)
        self.points = points
        self._ids: list[int] = []  # the point shown in each row
        self._shown: list[list[str]] = []  # the cells' texts, to compare without asking Qt
        self._writing = False
        self.itemChanged.connect(self._on_item_changed)

    def refresh(self) -> None:
        """Make the rows match the list: new points are appended, changed cells rewritten, and
        the rows rebuilt only when points were removed or restored."""
        ids = [point.id for point in self.points.points]
        rows = [_row_texts(point) for point in self.points.points]
        self._writing = True
        if ids[:len(self._ids)] != self._ids:
            self.setRowCount(0)
            self._ids, self._shown = [], []
        for index, (row, shown) in enumerate(zip(rows, self._shown)):
            for column, (text, old) in enumerate(zip(row, shown)):
                if text != old:
                    _show(self.item(index, column), text)
        for row in rows[len(self._shown):]:
            self.appendRow([_cell(text, name=column == 0) for column, text in enumerate(row)])
        self._writing = False
        self._ids, self._shown = ids, rows

    def _on_item_changed(self, item: QStandardItem) -> None:
        """The user typed a name: rename the point, or put its name back if the new one is refused."""
        if self._writing or item.column() != 0 or item.row() >= len(self._ids):
            return
        if not self.points.rename(self._ids[item.row()], item.text()):
            self._writing = True
            item.setText(self._shown[item.row()][0])
            self._writing = False


def _row_texts(point: Point) -> list[str]:
    source = [f"{point.source[0]:.1f}", f"{point.source[1]:.1f}"]
    if point.target is None:
        return [point.name, *source, "–", "–", "–"]
    return [point.name, *source, f"{point.target[0]:.1f}", f"{point.target[1]:.1f}",
            score_text(point.confidence, point.fixed is not None) or NO_SCORE]


def _cell(text: str, name: bool = False) -> QStandardItem:
    """A cell: the name (editable, read from the left) or a number (right-aligned, digits line up)."""
    item = QStandardItem()
    _show(item, text)
    item.setEditable(name)
    item.setTextAlignment((Qt.AlignmentFlag.AlignLeft if name else Qt.AlignmentFlag.AlignRight)
                          | Qt.AlignmentFlag.AlignVCenter)
    return item


def _show(item: QStandardItem, text: str) -> None:
    """Set a cell's text; a score not shown yet says why when hovered."""
    item.setText(text)
    item.setToolTip(FINAL_ONLY if text == NO_SCORE else "")


class PointsTable(QTableView):
    """Selecting rows selects points; selecting points (e.g. by clicking) selects rows."""

    def __init__(self, points: PointList):
        super().__init__()
        self.points = points
        self.setModel(PointsTableModel(points))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setToolTip("Double-click a name (or press F2) to rename the point; Delete removes the selected points")
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # a set width, not ResizeToContents: that would read every row on every change
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 64)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.setAlternatingRowColors(True)
        self._syncing = False
        self._sync_timer = QTimer(self, singleShot=True, interval=SYNC_DELAY_MS)
        self._sync_timer.timeout.connect(self.sync)
        self.selectionModel().selectionChanged.connect(self._on_rows_selected)
        points.subscribe(self._schedule_sync)

    def _schedule_sync(self, kind: str) -> None:
        if not self._sync_timer.isActive():  # not restarted, so steady changes (playback) still show
            self._sync_timer.start()

    def sync(self) -> None:
        """Copy the list's points and selection into the table now."""
        self._sync_timer.stop()
        self._syncing = True
        self.model().refresh()
        selection = QItemSelection()
        for row, point in enumerate(self.points.points):
            if point.id in self.points.selected:
                selection.select(self.model().index(row, 0), self.model().index(row, len(COLUMNS) - 1))
        if selection != self.selectionModel().selection():
            self.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if selection.indexes():
                self.scrollTo(selection.indexes()[0])
        self._syncing = False

    def _on_rows_selected(self, *args) -> None:
        if not self._syncing:
            rows = {index.row() for index in self.selectionModel().selectedRows()}
            self.points.select(p.id for row, p in enumerate(self.points.points) if row in rows)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.state() != self.State.EditingState:
            self.points.remove_selected()
        else:
            super().keyPressEvent(event)
