"""What the Label Transfer window says and asks: the dismissible error bar, the question box, and the
keyboard and mouse reference built from the window's actions."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QDialog, QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

MOUSE_HELP = [
    ("Click a point", "select it (Ctrl/Shift-click: add to or remove from the selection)"),
    ("Drag a point", "move it, with the other selected points if it is selected; it becomes manual"),
    ("Ctrl/Shift-drag on the image", "rubber-band selection"),
    ("Click the source image", "add a keypoint there (then type its name)"),
    ("Click an image with one missing point selected", "place that point there"),
    ("Drag the image / wheel", "pan / zoom"),
    ("Double-click a name in the table", "rename the keypoint everywhere"),
]


def message_box_ask(parent, title: str, text: str, choices) -> str:
    """Ask with one button per choice (the first is the default); returns the chosen text."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent)
    buttons = [box.addButton(choice, QMessageBox.ButtonRole.AcceptRole) for choice in choices]
    box.setDefaultButton(buttons[0])
    box.exec()
    clicked = box.clickedButton()
    return choices[buttons.index(clicked)] if clicked in buttons else choices[-1]


class MessageBar(QFrame):
    """A dismissible line at the top of the window for errors that need reading (not a modal box)."""

    def __init__(self):
        super().__init__()
        self.setStyleSheet("MessageBar { background: #7a1f1f; border-radius: 3px; } QLabel { color: white; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_text(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


def help_dialog(parent, actions) -> QDialog:
    """The keyboard and mouse reference (non-modal): each action with shortcuts, then the mouse gestures."""
    rows = [(", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()),
             action.text().replace("&", "")) for action in actions if action.shortcuts()]
    rows += MOUSE_HELP
    dialog = QDialog(parent)
    dialog.setWindowTitle("Label transfer: keyboard and mouse")
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Key / gesture", "Action"])
    table.verticalHeader().setVisible(False)
    for row, (key, text) in enumerate(rows):
        table.setItem(row, 0, QTableWidgetItem(key))
        table.setItem(row, 1, QTableWidgetItem(text))
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    table.setWordWrap(True)
    table.resizeRowsToContents()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    dialog.resize(980, 720)
    return dialog
