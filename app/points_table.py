"""The points table: a Qt view of the Qt-free :class:`PointList`, kept in sync both ways."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from .points import ADDED, MATCHED, SELECTED, PointList

COLUMNS = ["#", "source x", "source y", "target x", "target y", "confidence"]


class PointsTableModel(QAbstractTableModel):
    """Rows are points in list order; columns are COLUMNS."""

    def __init__(self, points: PointList):
        super().__init__()
        self.points = points
        points.subscribe(self._on_change)

    def _on_change(self, kind: str) -> None:
        if kind == ADDED:
            row = len(self.points) - 1
            self.beginInsertRows(QModelIndex(), row, row)
            self.endInsertRows()
        elif kind == MATCHED:
            if len(self.points):
                self.dataChanged.emit(self.index(0, 3), self.index(len(self.points) - 1, len(COLUMNS) - 1))
        elif kind != SELECTED:
            self.beginResetModel()
            self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.points)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid():
            return None
        point = self.points.points[index.row()]
        column = index.column()
        if column == 0:
            return str(point.id)
        if column in (1, 2):
            return f"{point.source[column - 1]:.1f}"
        if point.target is None:
            return "–"
        if column in (3, 4):
            return f"{point.target[column - 3]:.1f}"
        return f"{point.confidence:.2f}"

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None


class PointsTable(QTableView):
    """Selecting rows selects points; selecting points (e.g. by clicking) selects rows."""

    def __init__(self, points: PointList):
        super().__init__()
        self.points = points
        self.setModel(PointsTableModel(points))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.setAlternatingRowColors(True)
        self._syncing = False
        self.selectionModel().selectionChanged.connect(self._on_rows_selected)
        points.subscribe(self._on_points_changed)

    def _on_rows_selected(self, *args) -> None:
        if not self._syncing:
            rows = {index.row() for index in self.selectionModel().selectedRows()}
            self.points.select(p.id for row, p in enumerate(self.points.points) if row in rows)

    def _on_points_changed(self, kind: str) -> None:
        if kind == MATCHED:
            return
        self._syncing = True
        selection = QItemSelection()
        for row, point in enumerate(self.points.points):
            if point.id in self.points.selected:
                selection.select(self.model().index(row, 0), self.model().index(row, len(COLUMNS) - 1))
        self.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if selection.indexes():
            self.scrollTo(selection.indexes()[0])
        self._syncing = False

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.points.remove_selected()
        else:
            super().keyPressEvent(event)
