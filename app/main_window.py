"""The main window: two image views, the affine field over them, click-to-match and export.

The window is a controller: it owns the Qt-free :class:`PointList` and the newest
:class:`CorrespondenceResult`, sends work to the image-loader and matcher threads by queued
signals, and redraws the overlays for the shown (possibly fractional) iteration.
"""
from __future__ import annotations

import json
import os
import sys
import time

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QElapsedTimer, QIODevice, QRectF, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMainWindow,
                               QMessageBox, QProgressBar, QPushButton, QSlider, QSpinBox,
                               QStyle, QToolBar, QVBoxLayout, QWidget)

from rtn_core.atomic import write_atomic

from . import export
from .labeling import open_labeling_window
from .field import (FieldTrack, arrows, ellipses, parallelograms, position_groups, sample_grid,
                    warp_source_onto_target)
from .points import ADDED, REMOVED, SELECTED, PointList
from .points_table import PointsTable
from .views import ImageView, MarkerLayer, PolylineItem, cross_marker, titled_panes
from .workers import (MODEL_JOB, FlowExporter, ImageLoader, MatchWorker, WorkerThread, default_matcher,
                      device_choices)

RESOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources")
SAMPLES = os.path.join(RESOURCES, "samples")
ICON = os.path.join(RESOURCES, "icons", "rtn-studio.svg")
SAMPLE_PAIR = (os.path.join(SAMPLES, "cat-chelsea.png"), os.path.join(SAMPLES, "cat-pexels-20787.jpg"))
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)"
SECONDS_PER_ITERATION = 0.6  # playback speed
FRAME_MS = 16  # ~60 fps
MAX_RECENT = 8
SCREENSHOT_TIMEOUT_MS = 300_000


class MainWindow(QMainWindow):
    """RTN Studio's main window. ``show_message(title, text)`` reports errors (injectable for tests)."""

    request_load = Signal(object, object)  # source path or None, target path or None
    request_model = Signal(str, str)  # device key, weights path ("" for the default)
    request_match = Signal(int, object, object)  # job id, source, target
    request_flow_export = Signal(str, object, int)  # path, CorrespondenceResult, iteration

    def __init__(self, device: str = "auto", weights: str | None = None, matcher_factory=default_matcher,
                 settings: QSettings | None = None, show_message=None):
        super().__init__()
        self.setWindowTitle("RTN Studio")
        self.setWindowIcon(QIcon(ICON))
        self.settings = settings if settings is not None else QSettings("RTN Studio", "RTN Studio")
        self.show_message = show_message or self._message_box
        self.device_key, self.weights = device or "auto", weights or ""
        self.model_device = ""  # set once the model is ready
        self.model_failed = False
        self.source = self.target = None  # LoadedImage
        self.result = None  # newest snapshot of the current pair
        self.iteration = 0.0  # the shown iteration, fractional while playing
        self.follow = True  # jump to each new iteration as it streams in
        self.screenshot_path: str | None = None
        self._job = MODEL_JOB
        self._job_started = 0.0
        self._blend_cache: dict[int, np.ndarray] = {}
        self.points = PointList()
        self.points_track = FieldTrack(np.zeros((0, 2)))
        self.grid_track = FieldTrack(np.zeros((0, 2)))  # replaced by the glyph grid once a source is open
        self.grid_half = 1.0
        self._linking = False
        self._point_outlines = None  # (N, M, 2) affine ellipses of the clicked points

        self._build_views()
        self._build_controls()
        self._build_menus()
        self.points.subscribe(self._on_points_changed)

        self.play_timer = QTimer(self, interval=FRAME_MS)
        self.play_timer.timeout.connect(self._on_play_tick)
        self.play_clock = QElapsedTimer()
        self._play_from = 0.0

        self.loader = WorkerThread(ImageLoader(), "image-loader")
        self.request_load.connect(self.loader.worker.load)
        self.loader.worker.loaded.connect(self._on_images_loaded)
        self.loader.worker.failed.connect(self._on_load_failed)
        self.matcher = WorkerThread(MatchWorker(matcher_factory), "matcher")
        self.request_model.connect(self.matcher.worker.load_model)
        self.request_match.connect(self.matcher.worker.run)
        self.matcher.worker.model_ready.connect(self._on_model_ready)
        self.matcher.worker.started.connect(self._on_started)
        self.matcher.worker.progress.connect(self._on_progress)
        self.matcher.worker.finished.connect(self._on_finished)
        self.matcher.worker.failed.connect(self._on_match_failed)
        self.flow_exporter = WorkerThread(FlowExporter(), "flow-export")
        self.request_flow_export.connect(self.flow_exporter.worker.write)
        self.flow_exporter.worker.written.connect(self._on_flow_written)
        self.flow_exporter.worker.failed.connect(self._on_flow_export_failed)
        self._load_model()
        self.resize(1480, 860)

    # ----- building the window -------------------------------------------------------------

    def _build_views(self) -> None:
        self.source_view = ImageView("Drop a source image here")
        self.target_view = ImageView("Drop a target image here")
        self.source_glyphs = self.source_view.add_overlay(PolylineItem(), 10)
        self.target_glyphs = self.target_view.add_overlay(PolylineItem(), 10)
        self.target_arrows = self.target_view.add_overlay(PolylineItem((255, 255, 255, 200)), 11)
        self.target_blend = self.target_view.add_overlay(pg.ImageItem(axisOrder="row-major"), 5)
        self.target_blend.setOpacity(0.55)
        self.heatmap = self.target_view.add_overlay(pg.ImageItem(axisOrder="row-major"), 6)
        self.heatmap.setOpacity(0.6)
        self.heatmap.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        self.source_markers = MarkerLayer(self.source_view, 21)
        self.target_markers = MarkerLayer(self.target_view, 21)
        self.hover_source = self.source_view.add_overlay(cross_marker(), 22)
        self.hover_target = self.target_view.add_overlay(cross_marker(), 22)

        self.source_view.clicked.connect(self.add_point)
        self.source_view.hovered.connect(self._preview_match)
        self.source_view.left.connect(self._hide_preview)
        self.source_view.file_dropped.connect(lambda path: self.open_images(path, None))
        self.target_view.file_dropped.connect(lambda path: self.open_images(None, path))
        for view in (self.source_view, self.target_view):
            view.view_box.sigRangeChanged.connect(self._on_range_changed)

        self.source_title, self.target_title = QLabel("Source"), QLabel("Target")
        splitter = titled_panes((self.source_title, self.source_view), (self.target_title, self.target_view))

        self.iteration_bar = self._build_iteration_bar()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.iteration_bar)
        self.setCentralWidget(central)

        self.table = PointsTable(self.points)
        dock_body = QWidget()
        dock_layout = QVBoxLayout(dock_body)
        dock_layout.setContentsMargins(4, 4, 4, 4)
        dock_layout.addWidget(QLabel("Click the source to add a point; its match appears on the target."))
        dock_layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        for text, slot in (("Delete", self.points.remove_selected), ("Clear", self.points.clear),
                           ("Export CSV…", lambda: self.export_dialog("csv")),
                           ("Export JSON…", lambda: self.export_dialog("json"))):
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
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(True)
        self.device_label = QLabel("model: loading…")
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.device_label)

    def _build_iteration_bar(self) -> QWidget:
        bar = QWidget()
        layout = QHBoxLayout(bar)
        layout.setContentsMargins(0, 0, 0, 0)
        style = self.style()
        self.back_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward), "")
        self.play_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Play")
        self.forward_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward), "")
        self.back_button.setToolTip("Previous iteration (Left)")
        self.forward_button.setToolTip("Next iteration (Right)")
        self.play_button.setToolTip("Animate from the identity to the final field (Space)")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.play_button.clicked.connect(self.toggle_play)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setPageStep(1)
        self.slider.valueChanged.connect(self._on_slider)
        self.iteration_label = QLabel()
        self.iteration_label.setMinimumWidth(230)
        for widget in (self.back_button, self.play_button, self.forward_button):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            layout.addWidget(widget)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.iteration_label)
        self.density = QSpinBox()
        self.density.setRange(4, 64)
        self.density.setValue(16)
        self.density.setPrefix("grid ")
        self.density.setSuffix(" per side")
        self.density.setToolTip("How many glyphs per side of the source")
        self.density.valueChanged.connect(self._rebuild_grid)
        layout.addWidget(self.density)
        return bar

    def _build_controls(self) -> None:
        self.toggles: dict[str, QAction] = {}
        for key, text, shortcut, checked in (("glyphs", "Glyphs", "G", True), ("arrows", "Flow arrows", "A", False),
                                            ("blend", "Warped blend", "B", False),
                                            ("heatmap", "Score heatmap", "H", False),
                                            ("linked", "Linked zoom", "L", False)):
            action = QAction(text, self, checkable=True, checked=checked)
            action.setShortcut(QKeySequence(shortcut))
            action.toggled.connect(self.redraw)
            self.toggles[key] = action
        self.toggles["linked"].toggled.connect(lambda on: on and self._on_range_changed(self.source_view.view_box))
        self.fit_action = QAction("Fit to window", self, shortcut=QKeySequence("F"))
        self.fit_action.triggered.connect(self.fit_views)
        self.step_back_action = QAction("Previous iteration", self, shortcut=QKeySequence(Qt.Key.Key_Left))
        self.step_back_action.triggered.connect(lambda: self.step(-1))
        self.step_forward_action = QAction("Next iteration", self, shortcut=QKeySequence(Qt.Key.Key_Right))
        self.step_forward_action.triggered.connect(lambda: self.step(1))
        self.play_action = QAction("Play / pause", self, shortcut=QKeySequence(Qt.Key.Key_Space))
        self.play_action.triggered.connect(self.toggle_play)

        toolbar = QToolBar("View")
        toolbar.setObjectName("view-toolbar")
        toolbar.setMovable(False)
        toolbar.addAction(self.fit_action)
        toolbar.addAction(self.toggles["linked"])
        toolbar.addSeparator()
        for key in ("glyphs", "arrows", "blend", "heatmap"):
            toolbar.addAction(self.toggles[key])
        self.addToolBar(toolbar)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (("Open &Source…", "Ctrl+1", lambda: self._open_dialog("source")),
                                     ("Open &Target…", "Ctrl+2", lambda: self._open_dialog("target")),
                                     ("Open &Pair…", QKeySequence.StandardKey.Open, lambda: self._open_dialog("pair"))):
            file_menu.addAction(QAction(text, self, shortcut=QKeySequence(shortcut), triggered=slot))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        for text, kind in (("Export Points as CSV…", "csv"), ("Export Points as JSON…", "json"),
                           ("Export Dense Flow (.npy)…", "npy"), ("Save Window as PNG…", "png")):
            file_menu.addAction(QAction(text, self, triggered=lambda checked=False, k=kind: self.export_dialog(k)))
        file_menu.addSeparator()
        file_menu.addAction(QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close))

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.fit_action)
        for action in self.toggles.values():
            view_menu.addAction(action)
        view_menu.addSeparator()
        for action in (self.step_back_action, self.play_action, self.step_forward_action):
            view_menu.addAction(action)

        points_menu = self.menuBar().addMenu("&Points")
        points_menu.addAction(QAction("Delete Selected", self, shortcut=QKeySequence.StandardKey.Delete,
                                      triggered=self.points.remove_selected))
        points_menu.addAction(QAction("Clear All", self, triggered=self.points.clear))
        points_menu.addSeparator()
        points_menu.addAction(QAction("&Label Transfer…", self, shortcut=QKeySequence("Ctrl+Shift+L"),
                                      triggered=lambda: open_labeling_window(self)))

        device_menu = self.menuBar().addMenu("&Device")
        group = QActionGroup(self)
        self.device_actions = {}
        for key, label, enabled in device_choices():
            action = QAction(label, self, checkable=True, enabled=enabled, checked=key == self.device_key)
            action.triggered.connect(lambda checked=False, k=key: self.set_device(k))
            group.addAction(action)
            device_menu.addAction(action)
            self.device_actions[key] = action
        device_menu.addSeparator()
        self.device_info = QAction("Running on: loading…", self, enabled=False)
        device_menu.addAction(self.device_info)

    # ----- opening images ----------------------------------------------------------------

    def open_images(self, source_path: str | None, target_path: str | None) -> None:
        """Decode either or both images in the loader thread; the current pair stays until they arrive."""
        names = " and ".join(os.path.basename(p) for p in (source_path, target_path) if p)
        self.status_text.setText(f"Opening {names}…")
        self.request_load.emit(source_path, target_path)

    def _open_dialog(self, which: str) -> None:
        folder = self.settings.value("last_folder", SAMPLES)
        if which == "pair":
            paths, _ = QFileDialog.getOpenFileNames(self, "Open source and target (select two)", folder, IMAGE_FILTER)
            if len(paths) != 2:
                if paths:
                    self.show_message("Open pair", "Select exactly two images: the source, then the target.")
                return
            self.open_images(*paths)
        else:
            path, _ = QFileDialog.getOpenFileName(self, f"Open {which} image", folder, IMAGE_FILTER)
            if not path:
                return
            self.open_images(path if which == "source" else None, path if which == "target" else None)
        self.settings.setValue("last_folder", os.path.dirname(paths[0] if which == "pair" else path))

    @Slot(object, object)
    def _on_images_loaded(self, source, target) -> None:
        if source is not None:
            self.source = source
            self.source_view.set_image(source)
            self.source_title.setText(_image_title("Source", source))
            self.points.clear()
        if target is not None:
            self.target = target
            self.target_view.set_image(target)
            self.target_title.setText(_image_title("Target", target))
        if self.source is not None and self.target is not None:
            self._remember_pair(self.source.path, self.target.path)
            self.start_match()

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self.status_text.setText("Could not open the image; the previous pair is still shown.")
        self._report("Cannot open image", message)

    def _remember_pair(self, source_path: str, target_path: str) -> None:
        pair = [os.path.abspath(source_path), os.path.abspath(target_path)]
        pairs = [p for p in self.recent_pairs() if p != pair]
        self.settings.setValue("recent_pairs", json.dumps([pair] + pairs[:MAX_RECENT - 1]))

    def recent_pairs(self) -> list[list[str]]:
        try:
            pairs = json.loads(self.settings.value("recent_pairs", "[]"))
        except (TypeError, ValueError):
            return []
        return [p for p in pairs if isinstance(p, list) and len(p) == 2]

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for source_path, target_path in self.recent_pairs():
            label = f"{os.path.basename(source_path)}  →  {os.path.basename(target_path)}"
            self.recent_menu.addAction(QAction(label, self, triggered=lambda checked=False, s=source_path,
                                               t=target_path: self.open_images(s, t)))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    # ----- the model ---------------------------------------------------------------------

    def _load_model(self) -> None:
        self.model_device = ""
        self.model_failed = False
        self.device_label.setText(f"model: loading ({self.device_key})…")
        self.request_model.emit(self.device_key, self.weights)

    def set_device(self, key: str) -> None:
        """Switch device: cancels the running job, reloads the model there and matches again."""
        if key == self.device_key:
            return
        self.device_key = key
        self._cancel()
        self._load_model()
        self.start_match()

    def _cancel(self) -> None:
        self._job += 1
        self.matcher.worker.current_job = self._job

    def start_match(self) -> None:
        """Match the current pair from scratch; any running job stops at its next iteration."""
        if self.source is None or self.target is None:
            return
        self._cancel()
        self.result = None
        self._blend_cache.clear()
        self.follow = True
        self.iteration = 0.0
        self.stop_play()
        self.slider.setRange(0, 0)
        self.progress.setRange(0, 0)  # busy until the first iteration says how many there are
        self._rebuild_grid()
        self._rebuild_points_track()
        if self.model_failed:
            self.progress.setRange(0, 1)
            self.status_text.setText("No model is loaded: choose a device in the Device menu to try again.")
            return
        self.status_text.setText("Matching…" if self.model_device else "Loading the model, then matching…")
        self.request_match.emit(self._job, self.source, self.target)

    @Slot(str)
    def _on_model_ready(self, device: str) -> None:
        self.model_device = device
        self.device_label.setText(f"model: {device}")
        self.device_info.setText(f"Running on: {device}")

    @Slot(int)
    def _on_started(self, job: int) -> None:
        if job == self._job:
            self._job_started = time.perf_counter()
            self.status_text.setText(f"Matching on {self.model_device}…")

    @Slot(int, object)
    def _on_progress(self, job: int, snapshot) -> None:
        if job != self._job:
            return
        self.result = self.grid_track.result = self.points_track.result = snapshot
        total = snapshot.total_iterations
        self.slider.setRange(0, total)
        self.progress.setRange(0, total)
        self.progress.setValue(snapshot.last)
        self.progress.setFormat(f"%v / {total}")
        self.status_text.setText(f"Matching on {snapshot.device}: iteration {snapshot.last} of {total}…")
        if self.follow:
            self.iteration = float(snapshot.last)
        self.redraw()

    @Slot(int)
    def _on_finished(self, job: int) -> None:
        if job != self._job:
            return
        seconds = time.perf_counter() - self._job_started
        self.status_text.setText(f"Matched in {seconds:.2f} s on {self.result.device}: "
                                 f"{self.result.total_iterations} iterations. Click the source to add points.")
        if self.screenshot_path:
            QTimer.singleShot(200, self._save_screenshot_and_quit)

    @Slot(int, str)
    def _on_match_failed(self, job: int, message: str) -> None:
        if job not in (MODEL_JOB, self._job):
            return
        self.progress.setRange(0, 1)
        if job != MODEL_JOB and self.model_failed:
            return  # the model's own failure has been reported; the status bar keeps saying why
        self.status_text.setText(message)
        if job == MODEL_JOB:
            self.model_failed = True
            self.device_label.setText("model: failed")
            self.device_info.setText("Running on: none (the model failed to load; choose a device)")
        self._report("Matching failed", message)

    # ----- the shown iteration -----------------------------------------------------------

    @property
    def available(self) -> int:
        """The newest iteration that can be shown (0 before any result)."""
        return self.result.last if self.result is not None else 0

    def show_iteration(self, t: float) -> None:
        """Show (fractional) iteration ``t``, clamped to what has been computed."""
        self.iteration = float(np.clip(t, 0, self.available))
        self.follow = self.iteration >= self.available and not self.play_timer.isActive()
        self.redraw()

    def step(self, delta: int) -> None:
        self.stop_play()
        self.show_iteration(round(self.iteration) + delta)

    def toggle_play(self) -> None:
        if self.play_timer.isActive():
            self.stop_play()
            self.show_iteration(round(self.iteration))
            return
        if self.result is None:
            return
        self._play_from = 0.0 if self.iteration >= self.available else self.iteration
        self.play_clock.start()
        self.play_timer.start()
        self.play_button.setText("Pause")
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))

    def stop_play(self) -> None:
        self.play_timer.stop()
        self.play_button.setText("Play")
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))

    def _on_play_tick(self) -> None:
        t = self._play_from + self.play_clock.elapsed() / 1000.0 / SECONDS_PER_ITERATION
        if t >= self.available:
            self.stop_play()
        self.show_iteration(min(t, self.available))

    def _on_slider(self, value: int) -> None:
        if value != round(self.iteration):
            self.stop_play()
            self.show_iteration(value)

    # ----- drawing -----------------------------------------------------------------------

    def _rebuild_grid(self) -> None:
        """New glyph grid at the chosen density over the source."""
        if self.source is None:
            return
        points, self.grid_half = sample_grid(self.source.original_size, self.density.value())
        groups, colours = position_groups(points, self.source.original_size)
        self.grid_track = FieldTrack(points, self.result)
        for item in (self.source_glyphs, self.target_glyphs):
            item.set_groups(groups, colours)
        self.source_glyphs.set_lines(parallelograms(points, np.broadcast_to(np.eye(2), (len(points), 2, 2)),
                                                    self.grid_half))
        self.redraw()

    def _rebuild_points_track(self) -> None:
        """A track of the listed points (kept when it already has them, as after ``add_point``)."""
        points = self.points.source_array()
        if self.points_track.result is not self.result or not np.array_equal(self.points_track.points, points):
            self.points_track = FieldTrack(points, self.result)

    def redraw(self) -> None:
        """Redraw every overlay for the shown iteration."""
        t = self.iteration
        self._update_iteration_label()
        have_field = self.result is not None and self.grid_track.count > 0
        show = {key: action.isChecked() for key, action in self.toggles.items()}
        self.source_glyphs.setVisible(show["glyphs"])
        if have_field and (show["glyphs"] or show["arrows"]):
            matches, affines, _ = self.grid_track.at(t)
            self.target_glyphs.set_lines(parallelograms(matches, affines, self.grid_half) if show["glyphs"] else None)
            head = 0.35 * max(self.result.target_size) / self.density.value()
            self.target_arrows.set_lines(arrows(self.grid_track.iteration(0)[0], matches, head).reshape(-1, 2, 2)
                                         if show["arrows"] else None)
        else:
            self.target_glyphs.set_lines(None)
            self.target_arrows.set_lines(None)
        self._draw_blend(have_field and show["blend"])
        self._draw_heatmap(show["heatmap"])
        self._draw_point_matches()

    def _update_iteration_label(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(self.iteration))
        self.slider.blockSignals(False)
        if self.result is None:
            self.iteration_label.setText("Iteration – (no result yet)")
            return
        k = round(self.iteration)
        shown = f"{self.iteration:.1f}" if self.play_timer.isActive() else f"{k}"
        detail = "identity" if k == 0 else f"stride {self.result.iterations[k].stride}"
        pending = "" if self.result.complete else f" ({self.result.last} computed)"
        self.iteration_label.setText(f"Iteration {shown} / {self.result.total_iterations} · {detail}{pending}")

    def _draw_blend(self, visible: bool) -> None:
        self.target_blend.setVisible(visible)
        if not visible:
            return
        k = round(self.iteration)
        if k not in self._blend_cache:
            self._blend_cache[k] = warp_source_onto_target(self.result, k, self.source.pixels)
        self.target_blend.setImage(self._blend_cache[k], autoLevels=False)
        self.target_blend.setRect(self.target_view.image_rect())

    def _heatmap_point(self):
        selected = [p for p in self.points.points if p.id in self.points.selected]
        chosen = selected or self.points.points
        return chosen[-1].source if chosen else None

    def _draw_heatmap(self, visible: bool) -> None:
        point = self._heatmap_point() if visible and self.result is not None else None
        self.heatmap.setVisible(point is not None)
        if point is None:
            return
        scores = self.result.score_map(*point)
        width, height = self.result.target_size
        scale = min(1.0, 512 / max(width, height))
        smooth = cv2.resize(scores, (max(1, round(width * scale)), max(1, round(height * scale))),
                            interpolation=cv2.INTER_CUBIC)
        self.heatmap.setImage(smooth, levels=(float(scores.min()), float(scores.max())))
        self.heatmap.setRect(self.target_view.image_rect())

    def _point_matches(self):
        """(matches, confidences) of the clicked points at the shown iteration, or None; also
        keeps the outlines of their local affines (ellipses) for the markers."""
        if self.result is None or not len(self.points):
            self._point_outlines = None
            return None
        matches, affines, confidences = self.points_track.at(self.iteration)
        self._point_outlines = ellipses(matches, affines, 0.03 * min(self.result.source_size))
        return matches, confidences

    def _draw_point_matches(self) -> None:
        """Store the matches of the shown iteration in the point list; markers and table follow."""
        self.points.set_matches(*(self._point_matches() or (None, None)))

    # ----- points ------------------------------------------------------------------------

    def add_point(self, x: float, y: float) -> None:
        """Add a numbered source point with its match at the shown iteration, if a result exists."""
        target = confidence = None
        if self.result is not None:
            self.points_track = FieldTrack(np.vstack([self.points.source_array(), [[x, y]]]), self.result)
            matches, _, confidences = self.points_track.at(self.iteration)
            target, confidence = matches[-1], confidences[-1]
        self.points.add(x, y, target, confidence)

    def _on_points_changed(self, kind: str) -> None:
        if kind in (ADDED, REMOVED):  # the other points' matches are unchanged
            self._rebuild_points_track()
            self._point_matches()
            self._draw_markers()
            self._draw_heatmap(self.toggles["heatmap"].isChecked())
        elif kind == SELECTED:
            self._draw_markers()
            self._draw_heatmap(self.toggles["heatmap"].isChecked())
        else:
            self._draw_markers()

    def _draw_markers(self) -> None:
        """Numbered dots at each point on the source and at its match (with confidence) on the target."""
        points, selected = self.points.points, self.points.selected
        self.source_markers.set_points([p.id for p in points], [p.source for p in points], selected,
                                       [str(p.id) for p in points])
        matched = [p for p in points if p.target is not None]
        self.target_markers.set_points([p.id for p in matched], [p.target for p in matched], selected,
                                       [f"{p.id}  {p.confidence:.0%}" for p in matched],
                                       self._point_outlines if matched else None)

    def _preview_match(self, x: float, y: float) -> None:
        """Live match of the pointer position at the shown iteration."""
        if self.result is None:
            return
        k = round(self.iteration)
        self.hover_source.setPos(x, y)
        self.hover_target.setPos(*self.result.map_point(x, y, k))
        self.hover_source.setVisible(True)
        self.hover_target.setVisible(True)

    def _hide_preview(self) -> None:
        self.hover_source.setVisible(False)
        self.hover_target.setVisible(False)

    # ----- views -------------------------------------------------------------------------

    def fit_views(self) -> None:
        self.source_view.fit()
        self.target_view.fit()

    def _on_range_changed(self, view_box, *args) -> None:
        """Linked zoom: show the same part of both images, in normalised image coordinates."""
        if self._linking or not self.toggles["linked"].isChecked() or self.source is None or self.target is None:
            return
        if view_box is self.source_view.view_box:
            other, this_size, other_size = self.target_view, self.source.original_size, self.target.original_size
        else:
            other, this_size, other_size = self.source_view, self.target.original_size, self.source.original_size
        rect = view_box.viewRect()
        sx, sy = other_size[0] / this_size[0], other_size[1] / this_size[1]
        self._linking = True
        other.view_box.setRange(rect=QRectF((rect.x() + 0.5) * sx - 0.5, (rect.y() + 0.5) * sy - 0.5,
                                            rect.width() * sx, rect.height() * sy), padding=0)
        self._linking = False

    # ----- export ------------------------------------------------------------------------

    def export_dialog(self, kind: str) -> None:
        titles = {"csv": ("Export points as CSV", "CSV (*.csv)"), "json": ("Export points as JSON", "JSON (*.json)"),
                  "npy": ("Export dense flow", "NumPy array (*.npy)"), "png": ("Save window as PNG", "PNG (*.png)")}
        title, file_filter = titles[kind]
        folder = self.settings.value("export_folder", os.path.expanduser("~"))
        path, _ = QFileDialog.getSaveFileName(self, title, os.path.join(folder, f"rtn-studio.{kind}"), file_filter)
        if path:
            self.settings.setValue("export_folder", os.path.dirname(path))
            self.export(kind, path)

    def export(self, kind: str, path: str) -> bool:
        """Write the points (csv/json), the dense flow (npy, in the background) or the window
        (png) to ``path``; False (and a message) when it cannot."""
        try:
            if kind == "png":
                write_atomic(path, self.png_bytes())
            elif self.result is None:
                raise ValueError("nothing to export yet: wait for the match to finish")
            elif kind == "npy":
                self.request_flow_export.emit(path, self.result, round(self.iteration))
                self.status_text.setText(f"Writing the dense flow to {path}…")
                return True
            else:
                writer = export.write_points_csv if kind == "csv" else export.write_points_json
                writer(path, self.points, self.source, self.target, round(self.iteration))
        except (OSError, ValueError) as exc:
            self.show_message("Export failed", str(exc))
            return False
        self.status_text.setText(f"Saved {path}")
        return True

    @Slot(str)
    def _on_flow_written(self, path: str) -> None:
        self.status_text.setText(f"Saved {path}")

    @Slot(str)
    def _on_flow_export_failed(self, message: str) -> None:
        self.status_text.setText("The dense flow was not saved.")
        self.show_message("Export failed", message)

    def png_bytes(self) -> bytes:
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        self.grab().save(buffer, "PNG")
        return bytes(buffer.data())

    def _save_screenshot_and_quit(self) -> None:
        ok = self.export("png", self.screenshot_path)
        QApplication.instance().exit(0 if ok else 1)

    # ----- messages and closing ----------------------------------------------------------

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
        self.stop_play()
        self._cancel()
        self.loader.stop()
        self.matcher.stop()
        self.flow_exporter.stop()
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
