"""The main window's help: tooltips that say what an action does and its shortcut, and the
Help > Keyboard Shortcuts list, built from the menus so that it never disagrees with them."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QMenuBar, QTextBrowser, QVBoxLayout, QWidget

MOUSE = (("Click the source", "add a point; its match appears on the target"),
         ("Click a point's marker", "select it"),
         ("Drag a point's marker", "move it; its match follows"),
         ("Drag a match's marker on the target", "correct it: it is fixed (drawn as a diamond) and the field "
                                                 "re-settles"),
         ("Double-click a name in the Points table (or F2)", "rename the point"),
         ("Wheel / drag the background", "zoom / pan the image"),
         ("Drop an image on a pane", "open it as the source or the target"))


def keys(action: QAction) -> str:
    """The action's shortcuts as the user types them, e.g. 'Ctrl+Shift+Z, Ctrl+Y'."""
    return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())


def describe(action: QAction, what: str) -> QAction:
    """Tooltip and status tip: what the action does, then its shortcut."""
    shortcut = keys(action)
    action.setToolTip(f"{what} ({shortcut})" if shortcut else what)
    action.setStatusTip(what)
    return action


def shortcut_rows(menu_bar: QMenuBar) -> list[tuple[str, str, str]]:
    """(menu, action, shortcut) for every menu action that has a shortcut, in menu order."""
    rows = []
    for menu_action in menu_bar.actions():
        menu = menu_action.menu()
        for action in menu.actions() if menu else ():
            if keys(action):
                rows.append((menu.title().replace("&", ""), action.text().replace("&", ""), keys(action)))
    return rows


def shortcuts_html(menu_bar: QMenuBar) -> str:
    lines = ["<h3>Keyboard</h3><table cellpadding='3'>"]
    lines += [f"<tr><td><b>{html.escape(shortcut)}</b></td><td>{html.escape(text)}</td>"
              f"<td style='color:gray'>{html.escape(menu)}</td></tr>"
              for menu, text, shortcut in shortcut_rows(menu_bar)]
    lines.append("</table><h3>Mouse</h3><table cellpadding='3'>")
    lines += [f"<tr><td><b>{html.escape(gesture)}</b></td><td>{html.escape(what)}</td></tr>" for gesture, what in MOUSE]
    lines.append("</table>")
    return "".join(lines)


def show_shortcuts(parent: QWidget, menu_bar: QMenuBar) -> QDialog:
    """A non-modal window listing the shortcuts; returns it (shown)."""
    dialog = QDialog(parent)
    dialog.setWindowTitle("Keyboard shortcuts")
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    text = QTextBrowser()
    text.setHtml(shortcuts_html(menu_bar))
    QVBoxLayout(dialog).addWidget(text)
    dialog.resize(560, 520)
    dialog.show()
    return dialog
