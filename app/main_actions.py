"""The main window's actions, toolbar and menus: every QAction with its text, shortcut and tip,
set on the window as attributes (``open_actions``, ``undo_action``, ``linked_zoom``…)."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QToolBar

from .shortcuts import describe, show_shortcuts


def _action(window, text: str, what: str, slot, shortcut=None) -> QAction:
    action = QAction(text, window)
    if slot is not None:
        action.triggered.connect(slot)
    if shortcut is not None:
        action.setShortcuts([QKeySequence(key) for key in shortcut] if isinstance(shortcut, tuple)
                            else [QKeySequence(shortcut)])
    return describe(action, what)


def build_actions(window) -> None:
    """The window's actions, and the tips of the overlay and playback ones it borrows."""
    def a(*args):
        return _action(window, *args)

    pair = window.pair
    window.open_actions = [
        a("Open &Source…", "Open the source image (points are clicked on it)",
          lambda: pair.open_dialog("source"), "Ctrl+1"),
        a("Open &Target…", "Open the target image (matches appear on it)",
          lambda: pair.open_dialog("target"), "Ctrl+2"),
        a("Open &Pair…", "Open two images and choose which is the source", lambda: pair.open_dialog("pair"),
          QKeySequence.StandardKey.Open)]
    exports = (("Export Points as CSV…", "Write the points and their matches as CSV", "csv"),
               ("Export Points as JSON…", "Write the points and their matches as JSON", "json"),
               ("Export Dense Flow (.npy)…", "Write every source pixel's displacement as a NumPy array", "npy"),
               ("Save Window as PNG…", "Save a picture of the window", "png"))
    window.export_actions = [a(text, what, lambda checked=False, k=kind: window.exports.dialog(k))
                             for text, what, kind in exports]
    window.quit_action = a("&Quit", "Close RTN Studio", window.close, QKeySequence.StandardKey.Quit)
    window.undo_action = a("&Undo", "Undo the last point edit", window.undo, QKeySequence.StandardKey.Undo)
    window.redo_action = a("&Redo", "Redo the last undone point edit", window.redo, ("Ctrl+Shift+Z", "Ctrl+Y"))
    window.delete_action = a("Delete Selected", "Delete the selected points", window.points.remove_selected,
                             QKeySequence.StandardKey.Delete)
    window.clear_action = a("Clear All", "Delete every point (Undo brings them back)", window.clear_points)
    window.send_action = a("&Send Points to Label Transfer", "Open Label Transfer on this pair with these points",
                           lambda: window.open_label_transfer(require_points=True), "Ctrl+Shift+T")
    window.labeling_action = a("&Label Transfer…", "Open the Label Transfer window on this pair and its points",
                               window.open_label_transfer, "Ctrl+Shift+L")
    window.fit_action = a("Fit to window", "Show both images whole", window.fit_views, "F")
    window.linked_zoom = a("Linked zoom", "Zoom and pan both images together", None, "L")
    window.linked_zoom.setCheckable(True)
    window.linked_zoom.toggled.connect(lambda on: on and window._on_range_changed(window.source_view.view_box))
    window.help_action = a("&Keyboard Shortcuts", "List every shortcut and mouse gesture",
                           lambda: show_shortcuts(window, window.menuBar()), QKeySequence.StandardKey.HelpContents)
    for key, what in (("glyphs", "Show each grid square's local affine on the target"),
                      ("arrows", "Show where each grid square moved"),
                      ("blend", "Show the source warped onto the target"),
                      ("heatmap", "Show the selected point's match scores over the target"),
                      ("labels", "Show each point's name (and confidence on the target)")):
        describe(window.overlays.toggles[key], what)
    playback = window.playback
    for action, what in ((playback.step_back_action, "Show the previous iteration"),
                         (playback.step_forward_action, "Show the next iteration"),
                         (playback.play_action, "Play or pause the iterations")):
        describe(action, what)


def build_toolbar(window) -> None:
    toolbar = QToolBar("View")
    toolbar.setObjectName("view-toolbar")
    toolbar.setMovable(False)
    toolbar.addAction(window.fit_action)
    toolbar.addAction(window.linked_zoom)
    toolbar.addSeparator()
    for action in window.overlays.toggles.values():
        toolbar.addAction(action)
    toolbar.addWidget(window.overlays.density)
    window.addToolBar(toolbar)


def build_menus(window) -> None:
    """The menu bar; ``window.recent_menu`` is filled from the pair's recent files as it opens."""
    menu_bar, playback = window.menuBar(), window.playback
    file_menu = menu_bar.addMenu("&File")
    file_menu.addActions(window.open_actions)
    window.recent_menu = file_menu.addMenu("Open &Recent")
    window.recent_menu.aboutToShow.connect(lambda: window.pair.fill_recent_menu(window.recent_menu))
    file_menu.addSeparator()
    file_menu.addActions(window.export_actions)
    file_menu.addSeparator()
    file_menu.addAction(window.quit_action)

    edit_menu = menu_bar.addMenu("&Edit")
    edit_menu.addActions([window.undo_action, window.redo_action])

    view_menu = menu_bar.addMenu("&View")
    view_menu.addActions([window.fit_action, *window.overlays.toggles.values(), window.linked_zoom])
    view_menu.addSeparator()
    view_menu.addActions([playback.step_back_action, playback.play_action, playback.step_forward_action])

    points_menu = menu_bar.addMenu("&Points")
    points_menu.addActions([window.delete_action, window.clear_action])
    points_menu.addSeparator()
    points_menu.addActions([window.send_action, window.labeling_action])

    window.run.fill_device_menu(menu_bar.addMenu("&Device"), window.set_device)
    menu_bar.addMenu("&Help").addAction(window.help_action)
