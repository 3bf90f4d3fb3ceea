"""The main window: layout, menus and wiring of two image views, the points dock and the
iteration bar; its jobs live in small objects (pair, match run, playback, overlays, exports).

The window owns the Qt-free :class:`PointList`; the objects report by signals and the window
connects them: a new pair starts a run, each snapshot of the run is shown by the playback and
drawn by the overlays.
"""
from __future__ import annotations

import os
import sys

from PySide6.QtCore import QRectF, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QToolBar, QVBoxLayout, QWidget)

from .export_actions import ExportActions
from .labeling import open_labeling_window
from .match_run import MatchRun
from .overlays import Overlays
from .pair import RESOURCES, SAMPLE_PAIR, Pair
from .playback import Playback
from .points import PointList
from .points_table import PointsTable
from .views import ImageView, titled_panes
from .workers import default_matcher

ICON = os.path.join(RESOURCES, "icons", "rtn-studio.svg")
SCREENSHOT_TIMEOUT_MS = 300_000


class MainWindow(QMainWindow):
    """RTN Studio's main window. ``show_message(title, text)`` reports errors (injectable for tests)."""

    def __init__(self, device: str = "auto", weights: str | None = None, matcher_factory=default_matcher,
                 settings: QSettings | None = None, show_message=None):
        super().__init__()
        self.setWindowTitle("RTN Studio")
        self.setWindowIcon(QIcon(ICON))
        self.settings = settings if settings is not None else QSettings("RTN Studio", "RTN Studio")
        self.show_message = show_message or self._message_box
        self.screenshot_path: str | None = None
        self._linking = False
        self.points = PointList()
        self.pair = Pair(self, self.settings, self.show_message)
        self.run = MatchRun(self, matcher_factory, device or "auto", weights or "")
        self.playback = Playback(self)
        self._build_views()
        self.overlays = Overlays(self, self.source_view, self.target_view, self.points, self.pair)
        self.exports = ExportActions(self, self.settings, self.show_message, self.points, self.pair, self.run,
                                     self.playback)
        self._build_layout()
        self._build_toolbar()
        self._build_menus()
        self._connect()
        self.resize(1480, 860)

    # ----- building the window -------------------------------------------------------------

    def _build_views(self) -> None:
        self.source_view = ImageView("Drop a source image here")
        self.target_view = ImageView("Drop a target image here")
        self.source_title, self.target_title = QLabel("Source"), QLabel("Target")
        self.table = PointsTable(self.points)

    def _build_layout(self) -> None:
        splitter = titled_panes((self.source_title, self.source_view), (self.target_title, self.target_view))
        self.playback.bar.layout().addWidget(self.overlays.density)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.playback.bar)
        self.setCentralWidget(central)

        dock_body = QWidget()
        dock_layout = QVBoxLayout(dock_body)
        dock_layout.setContentsMargins(4, 4, 4, 4)
        dock_layout.addWidget(QLabel("Click the source to add a point; its match appears on the target."))
        dock_layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        for text, slot in (("Delete", self.points.remove_selected), ("Clear", self.points.clear),
                           ("Export CSV…", lambda: self.exports.dialog("csv")),
                           ("Export JSON…", lambda: self.exports.dialog("json"))):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        dock_layout.addLayout(buttons)
        self.dock = QDockWidget("Points", self)
        self.dock.setObjectName("points-dock")
        self.dock.setWidget(dock_body)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.resizeDocks([self.dock], [380], Qt.Orientation.Horizontal)

        self.status_text = QLabel("Starting…")
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.run.progress)
        self.statusBar().addPermanentWidget(self.run.device_label)

    def _build_toolbar(self) -> None:
        self.linked_zoom = QAction("Linked zoom", self, checkable=True, checked=False, shortcut=QKeySequence("L"))
        self.linked_zoom.toggled.connect(lambda on: on and self._on_range_changed(self.source_view.view_box))
        self.fit_action = QAction("Fit to window", self, shortcut=QKeySequence("F"))
        self.fit_action.triggered.connect(self.fit_views)
        toolbar = QToolBar("View")
        toolbar.setObjectName("view-toolbar")
        toolbar.setMovable(False)
        toolbar.addAction(self.fit_action)
        toolbar.addAction(self.linked_zoom)
        toolbar.addSeparator()
        for action in self.overlays.toggles.values():
            toolbar.addAction(action)
        self.addToolBar(toolbar)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, which in (("Open &Source…", "Ctrl+1", "source"), ("Open &Target…", "Ctrl+2", "target"),
                                      ("Open &Pair…", QKeySequence.StandardKey.Open, "pair")):
            file_menu.addAction(QAction(text, self, shortcut=QKeySequence(shortcut),
                                        triggered=lambda checked=False, w=which: self.pair.open_dialog(w)))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(lambda: self.pair.fill_recent_menu(self.recent_menu))
        file_menu.addSeparator()
        for text, kind in (("Export Points as CSV…", "csv"), ("Export Points as JSON…", "json"),
                           ("Export Dense Flow (.npy)…", "npy"), ("Save Window as PNG…", "png")):
            file_menu.addAction(QAction(text, self, triggered=lambda checked=False, k=kind: self.exports.dialog(k)))
        file_menu.addSeparator()
        file_menu.addAction(QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close))

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.fit_action)
        for action in (*self.overlays.toggles.values(), self.linked_zoom):
            view_menu.addAction(action)
        view_menu.addSeparator()
        for action in (self.playback.step_back_action, self.playback.play_action, self.playback.step_forward_action):
            view_menu.addAction(action)

        points_menu = self.menuBar().addMenu("&Points")
        points_menu.addAction(QAction("Delete Selected", self, shortcut=QKeySequence.StandardKey.Delete,
                                      triggered=self.points.remove_selected))
        points_menu.addAction(QAction("Clear All", self, triggered=self.points.clear))
        points_menu.addSeparator()
        points_menu.addAction(QAction("&Label Transfer…", self, shortcut=QKeySequence("Ctrl+Shift+L"),
                                      triggered=lambda: open_labeling_window(self)))

        self.run.fill_device_menu(self.menuBar().addMenu("&Device"), self.set_device)

    def _connect(self) -> None:
        self.source_view.clicked.connect(self.add_point)
        self.source_view.hovered.connect(self.overlays.preview_match)
        self.source_view.left.connect(self.overlays.hide_preview)
        self.source_view.file_dropped.connect(lambda path: self.pair.open_images(path, None))
        self.target_view.file_dropped.connect(lambda path: self.pair.open_images(None, path))
        for view in (self.source_view, self.target_view):
            view.view_box.sigRangeChanged.connect(self._on_range_changed)
        for job in (self.pair, self.run, self.exports):
            job.status.connect(self.status_text.setText)
        for job in (self.pair, self.run):
            job.report.connect(self._report)
        self.pair.loaded.connect(self._on_images_loaded)
        self.run.progressed.connect(self._on_progress)
        self.run.done.connect(self._on_done)
        self.playback.shown.connect(self.overlays.show)

    # ----- wiring ------------------------------------------------------------------------

    def open_images(self, source_path: str | None, target_path: str | None) -> None:
        self.pair.open_images(source_path, target_path)

    def _on_images_loaded(self, source, target) -> None:
        if source is not None:
            self.source_view.set_image(source)
            self.source_title.setText(_image_title("Source", source))
            self.points.clear()
        if target is not None:
            self.target_view.set_image(target)
            self.target_title.setText(_image_title("Target", target))
        self.start_match()

    def start_match(self) -> None:
        """Match the current pair from scratch; any running job stops at its next iteration."""
        if self.pair.source is None or self.pair.target is None:
            return
        self.playback.reset()
        self.run.start(self.pair.source, self.pair.target)
        self.overlays.reset()

    def set_device(self, key: str) -> None:
        """Switch device: cancels the running job, reloads the model there and matches again."""
        if self.run.set_device(key):
            self.start_match()

    def _on_progress(self, snapshot) -> None:
        self.overlays.set_result(snapshot)
        self.playback.set_result(snapshot)

    def _on_done(self) -> None:
        if self.screenshot_path:
            QTimer.singleShot(200, self._save_screenshot_and_quit)

    def add_point(self, x: float, y: float) -> None:
        """Add a numbered source point with its match at the shown iteration, if a result exists."""
        self.points.add(x, y, *self.overlays.match_new_point(x, y))

    # ----- views -------------------------------------------------------------------------

    def fit_views(self) -> None:
        self.source_view.fit()
        self.target_view.fit()

    def _on_range_changed(self, view_box, *args) -> None:
        """Linked zoom: show the same part of both images, in normalised image coordinates."""
        source, target = self.pair.source, self.pair.target
        if self._linking or not self.linked_zoom.isChecked() or source is None or target is None:
            return
        if view_box is self.source_view.view_box:
            other, this_size, other_size = self.target_view, source.original_size, target.original_size
        else:
            other, this_size, other_size = self.source_view, target.original_size, source.original_size
        rect = view_box.viewRect()
        sx, sy = other_size[0] / this_size[0], other_size[1] / this_size[1]
        self._linking = True
        other.view_box.setRange(rect=QRectF((rect.x() + 0.5) * sx - 0.5, (rect.y() + 0.5) * sy - 0.5,
                                            rect.width() * sx, rect.height() * sy), padding=0)
        self._linking = False

    # ----- messages and closing ----------------------------------------------------------

    def _save_screenshot_and_quit(self) -> None:
        ok = self.exports.export("png", self.screenshot_path)
        QApplication.instance().exit(0 if ok else 1)

    def _report(self, title: str, text: str) -> None:
        """Show an error; in screenshot mode print it and exit with status 1 instead."""
        if self.screenshot_path:
            print(f"rtn-studio: {text}", file=sys.stderr)
            QApplication.instance().exit(1)
        else:
            self.show_message(title, text)

    def _message_box(self, title: str, text: str) -> None:
        """Non-blocking warning: the event loop (and the worker's results) keep flowing."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def closeEvent(self, event) -> None:
        """Cancel the running job and stop the threads (a flow export finishes first)."""
        self.playback.stop_play()
        self.run.cancel()
        self.pair.stop()
        self.run.stop()
        self.exports.stop()
        super().closeEvent(event)
def _image_title(role: str, image) -> str:
    width, height = image.original_size
    shown = "" if image.scale == 1 else f", shown at 1/{image.scale:.1f}"
    return f"<b>{role}</b>: {os.path.basename(image.path) or 'image'} ({width}×{height}{shown})"


def launch(source: str | None = None, target: str | None = None, screenshot: str | None = None,
           device: str | None = None, weights: str | None = None) -> int:
    """Open the window on SOURCE and TARGET (the bundled cats when both are None) and run Qt.

    With ``screenshot`` the window is saved there as PNG once the last iteration is in, and the
    app exits (0 on success). Returns the exit status.
    """
    if (source is None) != (target is None):
        print("rtn-studio: give both SOURCE and TARGET, or neither for the sample pair", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("RTN Studio")
    app.setOrganizationName("RTN Studio")
    window = MainWindow(device=device or "auto", weights=weights)
    window.screenshot_path = screenshot
    if screenshot:
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, lambda: (print("rtn-studio: screenshot timed out", file=sys.stderr),
                                                          app.exit(1)))
    window.show()
    window.open_images(*(SAMPLE_PAIR if source is None else (source, target)))
    status = app.exec()
    window.close()
    return status
