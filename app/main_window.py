"""The main window: layout and wiring of two image views, the points dock and the iteration
bar; its jobs live in small objects (pair, match run, playback, overlays, exports, marker
dragging, help), its actions, toolbar and menus in :mod:`.main_actions`.

The window owns the Qt-free :class:`PointList`; the objects report by signals and the window
connects them: a new pair starts a run, each snapshot of the run is shown by the playback and
drawn by the overlays.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from PySide6.QtCore import QEvent, QRectF, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (QApplication, QDockWidget, QGridLayout, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QVBoxLayout, QWidget)

from .export_actions import ExportActions
from .labeling import open_labeling_window
from .main_actions import build_actions, build_menus, build_toolbar
from .marker_drag import MarkerDrag
from .match_run import MatchRun
from .overlays import Overlays
from .pair import RESOURCES, SAMPLE_PAIR, Pair
from .playback import Playback
from .points import ADDED, MATCHED, REMOVED, RESTORED, SELECTED, PointList
from .points_table import PointsTable
from .scores import moved_text
from .views import ImageView, titled_panes
from .workers import collect_garbage_on_gui_thread, default_matcher, finish_abandoned

ICON = os.path.join(RESOURCES, "icons", "rtn-studio.svg")
SCREENSHOT_TIMEOUT_MS = 300_000
DEFAULT_SIZE = QSize(1480, 860)
SCREEN_SHARE = 0.96  # at most this much of the screen's free area, so the frame fits too

ADD_POINTS_HINT = "Click the source to add points."  # ends a finished match's message while there are none


class MainWindow(QMainWindow):
    """RTN Studio's main window. ``show_message(title, text)`` reports errors and ``ask(title,
    text) -> bool`` asks before points are thrown away (both injectable for tests)."""

    def __init__(self, device: str = "auto", weights: str | None = None, matcher_factory=default_matcher,
                 settings: QSettings | None = None, show_message=None, ask=None):
        super().__init__()
        self.setWindowTitle("RTN Studio")
        self.setWindowIcon(QIcon(ICON))
        self.settings = settings if settings is not None else QSettings("RTN Studio", "RTN Studio")
        self.show_message = show_message or self._message_box
        self.ask = ask or self._question_box
        self.screenshot_path: str | None = None
        self._linking = False
        self._fitted: dict[ImageView, bool] = {}  # views showing their whole image, re-fitted on resize
        self.points = PointList()
        self._run_fixes: list = []  # the corrections the current run imposes
        self._replace_on_first = False  # the shown field stays up until the new run's first update
        self._matches_before: dict | None = None  # a re-settle's unfixed matches as shown when it began
        self.pair = Pair(self, self.settings, self.show_message, self._may_replace_source)
        self.run = MatchRun(self, matcher_factory, device or "auto", weights or "",
                            hint=lambda: "" if len(self.points) else ADD_POINTS_HINT)
        self.playback = Playback(self)
        self._build_views()
        self.overlays = Overlays(self, self.source_view, self.target_view, self.points, self.pair)
        self.drag = MarkerDrag(self.source_view, lambda: ([p.id for p in self.points.points],
                                                          self.points.source_array()),
                               lambda point_id: self.points.select({point_id}), self.points.move)
        # a match dragged on the target is a correction: the field re-settles from it on release
        self.target_drag = MarkerDrag(self.target_view, self._matched_markers,
                                      lambda point_id: self.points.select({point_id}), self.points.fix,
                                      lambda point_id: self.start_match(keep_shown=True))
        self.exports = ExportActions(self, self.settings, self.show_message, self.points, self.pair, self.run,
                                     self.playback)
        build_actions(self)
        self._update_undo_actions()
        self._build_layout()
        build_toolbar(self)
        build_menus(self)
        self._connect()
        self.resize(self.default_size())

    # ----- building the window -------------------------------------------------------------

    def _build_views(self) -> None:
        self.source_view = ImageView("Drop a source image here")
        self.target_view = ImageView("Drop a target image here")
        for view in (self.source_view, self.target_view):
            view.view_box.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)  # the placeholder centred
            view.installEventFilter(self)
        self.source_title, self.target_title = QLabel("Source"), QLabel("Target")
        self.table = PointsTable(self.points)

    def _build_layout(self) -> None:
        splitter = titled_panes((self.source_title, self.source_view), (self.target_title, self.target_view))
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.playback.bar)
        self.setCentralWidget(central)

        dock_body = QWidget()
        dock_layout = QVBoxLayout(dock_body)
        dock_layout.setContentsMargins(4, 4, 4, 4)
        hint = QLabel("Click the source to add a point; its match appears on the target. Drag a point to move "
                      "it, or its match on the target to correct it (a corrected match is a ◆ diamond); "
                      "double-click a name to rename it.")
        hint.setWordWrap(True)
        dock_layout.addWidget(hint)
        dock_layout.addWidget(self.table, 1)
        buttons = QGridLayout()  # two rows, so that a narrow dock cuts none of them off
        for index, action in enumerate((self.delete_action, self.clear_action, *self.export_actions[:2])):
            button = QPushButton(action.text().replace("Export Points as ", "Export ").replace(" All", ""))
            button.setToolTip(action.toolTip())
            button.clicked.connect(action.trigger)
            buttons.addWidget(button, index // 2, index % 2)
        dock_layout.addLayout(buttons)
        self.dock = QDockWidget("Points", self)
        self.dock.setObjectName("points-dock")
        self.dock.setWidget(dock_body)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.resizeDocks([self.dock], [380], Qt.Orientation.Horizontal)

        self.status_text = QLabel("Starting…")
        self.status_text.setMinimumWidth(80)
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.run.progress)
        self.statusBar().addPermanentWidget(self.run.device_label)

    def _connect(self) -> None:
        self.source_view.clicked.connect(self.add_point)
        self.source_view.hovered.connect(self.overlays.preview_match)
        self.source_view.left.connect(self.overlays.hide_preview)
        self.source_view.file_dropped.connect(lambda path: self.pair.open_images(path, None))
        self.target_view.file_dropped.connect(lambda path: self.pair.open_images(None, path))
        for view in (self.source_view, self.target_view):
            view.view_box.sigRangeChanged.connect(self._on_range_changed)
            view.view_box.sigRangeChangedManually.connect(lambda *_, v=view: self._fitted.update({v: False}))
        for job in (self.pair, self.run, self.exports):
            job.status.connect(self.status_text.setText)
        for job in (self.pair, self.run):
            job.report.connect(self._report)
        self.pair.loaded.connect(self._on_images_loaded)
        self.pair.report.connect(self._on_load_failed)
        self.run.progressed.connect(self._on_progress)
        self.run.done.connect(self._on_done)
        self.playback.shown.connect(self.overlays.show)
        self.points.subscribe(self._on_points_changed)

    # ----- wiring ------------------------------------------------------------------------

    def open_images(self, source_path: str | None, target_path: str | None) -> None:
        self.pair.open_images(source_path, target_path)

    def _on_images_loaded(self, source, target) -> None:
        if source is not None:
            self.source_view.set_image(source)
            self.source_title.setText(_image_title("Source", source))
            self._fitted[self.source_view] = True
            self.points.reset()
        if target is not None:
            self.points.unfix_all()  # corrections belong to the old target
            self.target_view.set_image(target)
            self.target_title.setText(_image_title("Target", target))
            self._fitted[self.target_view] = True
        self.start_match()

    def _on_load_failed(self, *_) -> None:
        """Panes still without an image say how to open one (the message says what failed)."""
        for view, role in ((self.source_view, "source"), (self.target_view, "target")):
            if view.image is None:
                view.placeholder.setText(f"No {role} image.\nDrop one here, or use File > Open Pair… (Ctrl+O)")

    def _may_replace_source(self) -> bool:
        """A new source removes the points (they belong to the old one): ask first when there are any."""
        return not len(self.points) or self.ask(
            "Open a new source?", f"The {_count(len(self.points), 'point')} on the current source will be removed. "
            "To keep them, cancel and export them (File menu) or send them to Label Transfer (Points menu).")

    def start_match(self, keep_shown: bool = False) -> None:
        """Match the current pair from scratch with the points' fixes; any running job stops at its
        next iteration. ``keep_shown`` (a re-settle after a correction) leaves the shown field up
        until the new run's first update replaces it (see :meth:`_on_progress`)."""
        if self.pair.source is None or self.pair.target is None:
            return
        self._replace_on_first = keep_shown
        self._matches_before = {p.id: p.target for p in self.points.points
                                if p.fixed is None and p.target is not None} if keep_shown else None
        if not keep_shown:
            self.playback.reset()
        self._run_fixes = self.points.fixes()
        self.run.start(self.pair.source, self.pair.target, self._run_fixes)
        if not keep_shown:
            self.overlays.reset()

    def set_device(self, key: str) -> None:
        """Switch device: cancels the running job, reloads the model there and matches again."""
        if self.run.set_device(key):
            self.start_match()

    def _on_progress(self, snapshot) -> None:
        """Show a new snapshot; a re-settle skips its identity (iteration 0, which the fixes barely
        move): the previous result stays up until the first update replaces it, so the markers do
        not jump to the identity and back (the snapshot keeps iteration 0 to step back to)."""
        if self._replace_on_first:
            if snapshot.last == 0 and not snapshot.complete:
                return
            self._replace_on_first = False
            self.playback.reset()
            self.overlays.reset()
        self.overlays.set_result(snapshot)
        self.playback.set_result(snapshot)

    def _on_done(self) -> None:
        if self._matches_before is not None:
            self._say_what_moved(self._matches_before)
        if self.screenshot_path:
            QTimer.singleShot(200, self._save_screenshot_and_quit)

    def _say_what_moved(self, before: dict) -> None:
        """After a re-settle, how far the unfixed points' matches moved from where they were shown
        (``before``: point id -> target pixels), as Label Transfer says after a re-run."""
        moved = [p for p in self.points.points if p.id in before and p.fixed is None]
        if not moved:
            return
        after = self.run.result.map_points([p.source for p in moved])
        distances = np.hypot(*(after - np.array([before[p.id] for p in moved])).T).tolist()
        text = moved_text(distances)
        self.status_text.setText(f"{self.status_text.text()} {text[0].upper()}{text[1:]}.")

    # ----- points ------------------------------------------------------------------------

    def add_point(self, x: float, y: float) -> None:
        """Add a named source point with its match at the shown iteration, if a result exists."""
        self.points.add(x, y, *self.overlays.match_new_point(x, y))

    def clear_points(self) -> None:
        count = len(self.points)
        self.points.clear()
        if count:
            self._say_edit(f"Cleared {_count(count, 'point')}: Edit > Undo (Ctrl+Z) brings them back.")

    def undo(self) -> None:
        what = self.points.undo_text()
        if self.points.undo():
            self._say_edit(f"Undid {what}.")

    def redo(self) -> None:
        what = self.points.redo_text()
        if self.points.redo():
            self._say_edit(f"Redid {what}.")

    def _say_edit(self, text: str) -> None:
        """Say what an edit did; the re-match it may have started keeps saying it before its own messages."""
        self.status_text.setText(text)
        self.run.note = text

    def _on_points_changed(self, kind: str) -> None:
        if kind not in (MATCHED, SELECTED):  # an edit: the undo history changed
            self._update_undo_actions()
        if kind == ADDED and self.status_text.text().endswith(ADD_POINTS_HINT):  # done what it asked
            self.status_text.setText(self.status_text.text().removesuffix(ADD_POINTS_HINT).rstrip())
        if kind in (RESTORED, REMOVED) and self.points.fixes() != self._run_fixes:
            self.start_match(keep_shown=True)  # a fix undone, redone or deleted: re-settle without (with) it

    def _matched_markers(self):
        """(ids, (N, 2) target positions) of the points with a match: the markers a drag can take."""
        matched = [p for p in self.points.points if p.target is not None]
        return [p.id for p in matched], np.array([p.target for p in matched], np.float64).reshape(-1, 2)

    def _update_undo_actions(self) -> None:
        for action, verb, what in ((self.undo_action, "Undo", self.points.undo_text()),
                                   (self.redo_action, "Redo", self.points.redo_text())):
            action.setEnabled(what is not None)
            action.setText(f"&{verb} {what or ''}".rstrip())

    def open_label_transfer(self, require_points: bool = False):
        """The Label Transfer window on the open pair and its named points (empty without a source);
        a fixed point's match arrives on the target as placed by hand, so a transfer keeps and imposes it."""
        if require_points and not len(self.points):
            self.show_message("No points to send", "Click the source to add points first.")
            return None
        source, target = self.pair.source, self.pair.target
        options = {"device": self.run.device_key, "weights": self.run.weights or None}
        if source is None:
            return open_labeling_window(self, **options)
        targets = [target.path] if target else []
        fixed = [(path, *point) for path in targets for point in self.points.fixed_keypoints()]
        return open_labeling_window(self, source_path=source.path, target_paths=targets,
                                    keypoints=self.points.keypoints(), target_keypoints=fixed, **options)

    # ----- views -------------------------------------------------------------------------

    def default_size(self) -> QSize:
        """DEFAULT_SIZE, or less where the screen the window opens on is smaller."""
        screen = self.screen().availableGeometry()
        return DEFAULT_SIZE.boundedTo(QSize(int(screen.width() * SCREEN_SHARE), int(screen.height() * SCREEN_SHARE)))

    def fit_views(self) -> None:
        for view in (self.source_view, self.target_view):
            view.fit()
            self._fitted[view] = True

    def eventFilter(self, watched, event) -> bool:
        """A view showing its whole image still does after it is resized."""
        if event.type() == QEvent.Type.Resize and self._fitted.get(watched):
            QTimer.singleShot(0, watched.fit)
        return False

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

    def _question_box(self, title: str, text: str) -> bool:
        buttons = QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel
        return QMessageBox.question(self, title, text, buttons) == QMessageBox.StandardButton.Ok

    def closeEvent(self, event) -> None:
        """Close at once: cancel the running job and let the threads end on their own (a model
        still loading finishes unseen; :func:`launch` waits for it before the process exits)."""
        self.playback.stop_play()
        self.run.cancel()
        for job in (self.pair, self.run, self.exports):
            job.stop(wait=False)
        super().closeEvent(event)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


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
    app.garbage_collector = collect_garbage_on_gui_thread()  # kept alive with the app
    window = MainWindow(device=device or "auto", weights=weights)
    window.screenshot_path = screenshot
    if screenshot:
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, lambda: (print("rtn-studio: screenshot timed out", file=sys.stderr),
                                                          app.exit(1)))
    window.show()
    window.open_images(*(SAMPLE_PAIR if source is None else (source, target)))
    status = app.exec()
    window.close()
    finish_abandoned()
    return status
