"""The label-transfer window: import or click keypoints on a source, transfer them to many targets
in a worker thread, review and correct them, save the session, export the labels.

The window is a controller over a Qt-free :class:`rtn_core.labels.project.Project`: every edit is a Project
call (one undo step), and the views only redraw when the Project says something changed. No label
logic lives here. File dialogs open only from the ``*_dialog`` menu entry points (and from
``import_keypoints`` when the keypoint file names no readable image and none is given); questions go
through ``ask``, which tests replace. So every action can be driven with explicit paths.
"""
from __future__ import annotations

import os
from collections import OrderedDict

from PySide6.QtCore import QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QDialog, QDockWidget, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton,
                               QSizePolicy, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from rtn_core.labels.formats import FORMATS, read_labels, read_source, write_labels
from rtn_core.images import load_image
from rtn_core.labels.keypoints import ABSENT, OCCLUDED, SKIPPED, VISIBLE, ImageLabels, TransferSettings, new_project
from rtn_core.labels.project import AUTOSAVE_SUFFIX, Project, newer_autosave, read_project
from rtn_core.labels.transfer import IMAGE_EXTENSIONS, expand_targets, summary

from ..views import ImageView, titled_panes
from ..workers import ImageLoader, WorkerThread, default_matcher
from .canvas import AUTO, FLAGGED, MANUAL, KeypointLayer
from .keypoint_table import KeypointTable
from .thumbnails import ThumbnailStrip, target_state
from .worker import TransferWorker

IMAGE_FILTER = "Images (" + " ".join(f"*{e}" for e in IMAGE_EXTENSIONS) + ");;All files (*)"
LABEL_FILTER = "Keypoint files (*.json *.csv *.xml);;All files (*)"
PROJECT_FILTER = "RTN Studio label projects (*.rtnproj);;All files (*)"
EXPORT_SUFFIX = {"coco": ".json", "labelstudio": ".json", "cvat": ".xml", "csv": ".csv", "labelme": ""}
UNTITLED_AUTOSAVE = "untitled.rtnproj" + AUTOSAVE_SUFFIX
IMAGE_CACHE = 8  # decoded images kept for quick back-and-forth
NEXT_VISIBILITY = {VISIBLE: OCCLUDED, OCCLUDED: ABSENT, ABSENT: VISIBLE}
MOUSE_HELP = [
    ("Click a point", "select it (Ctrl/Shift-click: add to or remove from the selection)"),
    ("Drag a point", "move it, with the other selected points if it is selected; it becomes manual"),
    ("Ctrl/Shift-drag on the image", "rubber-band selection"),
    ("Click the source image", "add a keypoint there (then type its name)"),
    ("Click an image with one missing point selected", "place that point there"),
    ("Drag the image / wheel", "pan / zoom"),
    ("Double-click a name in the table", "rename the keypoint everywhere"),
]


def _message_box_ask(parent, title: str, text: str, choices) -> str:
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


class LabelingWindow(QMainWindow):
    """Label transfer: one source image's keypoints carried to many targets, reviewed and exported.

    ``project``: a Project to show (or None: start empty). ``matcher_factory(device, weights)``
    builds the model in the worker thread. ``ask(title, text, choices) -> choice`` replaces the
    question boxes (tests). ``autosave_dir`` holds the autosave of a project not saved yet.
    """

    request_transfer = Signal(int, object, object, object)  # job, source ImageLabels, paths, settings
    request_load = Signal(object, object)  # image path, None (app.workers.ImageLoader's signature)

    def __init__(self, project: Project | None = None, parent=None, matcher_factory=default_matcher,
                 device: str | None = None, weights: str | None = None, ask=None,
                 autosave_dir: str | None = None, autosave_ms: int = 10_000):
        super().__init__(parent)
        if parent is not None:
            self.setWindowFlag(Qt.WindowType.Window)  # its own window, closed with its parent
        self.ask = ask or (lambda title, text, choices: _message_box_ask(self, title, text, choices))
        self.autosave_dir = autosave_dir or QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.AppDataLocation) or os.path.expanduser("~/.rtn-studio")
        self.project: Project | None = None
        self.current: str | None = None  # the target shown on the right
        self._unsubscribe = None
        self._images: OrderedDict = OrderedDict()  # path -> LoadedImage
        self._unreadable: dict[str, str] = {}  # path -> why it could not be shown
        self._loading: list[str] = []  # requested paths, in the loader's order
        self._job = 0
        self._running = False
        self.help_dialog: QDialog | None = None

        self._build_views()
        self._build_dock()
        self._build_status()
        self._build_actions()
        self._build_menus()

        self.loader = WorkerThread(ImageLoader(), "labeling-image-loader")
        self.request_load.connect(self.loader.worker.load)
        self.loader.worker.loaded.connect(self._on_image_loaded)
        self.loader.worker.failed.connect(self._on_image_failed)
        self.transfer_worker = TransferWorker(matcher_factory, None if device in (None, "auto") else device,
                                              weights or None)
        self.transfer_thread = WorkerThread(self.transfer_worker, "label-transfer")
        self.request_transfer.connect(self.transfer_worker.run)
        self.transfer_worker.model_loading.connect(self._on_model_loading)
        self.transfer_worker.result.connect(self._on_result)
        self.transfer_worker.finished.connect(self._on_finished)
        self.transfer_worker.failed.connect(self._on_failed)

        self.autosave_timer = QTimer(self, interval=autosave_ms)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self._stopped = False
        QApplication.instance().aboutToQuit.connect(self._on_app_quit)
        self.resize(1500, 920)
        self.set_project(project)

    # ----- building ------------------------------------------------------------------------------
    def _build_views(self) -> None:
        self.source_view = ImageView("Import keypoints (Ctrl+I) or open a source image (Ctrl+N)")
        self.target_view = ImageView("Add targets (Ctrl+T) and transfer (Ctrl+R)")
        self._empty_text = {view: view.placeholder.textItem.toPlainText()
                            for view in (self.source_view, self.target_view)}
        self.source_layer = KeypointLayer(self.source_view, scores=False)
        self.target_layer = KeypointLayer(self.target_view, scores=True)
        for layer in (self.source_layer, self.target_layer):
            layer.point_clicked.connect(lambda name, additive, l=layer: self._on_point_clicked(l, name, additive))
            layer.empty_clicked.connect(lambda x, y, additive, l=layer: self._on_empty_clicked(l, x, y, additive))
            layer.band_selected.connect(lambda names, additive, l=layer: self._select_on(l, names, additive))
            layer.points_dragged.connect(lambda names, dx, dy, l=layer: self._on_dragged(l, names, dx, dy))
        self.target_view.file_dropped.connect(lambda path: self.add_targets([path]))
        self.source_view.file_dropped.connect(self._on_source_dropped)

        self.source_title, self.target_title = QLabel("Source"), QLabel("Target")
        for title in (self.source_title, self.target_title):  # long file names never resize the panes
            title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        splitter = titled_panes((self.source_title, self.source_view), (self.target_title, self.target_view))
        self.strip = ThumbnailStrip()
        self.strip.current_path_changed.connect(self.go_to)
        self.message_bar = MessageBar()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.message_bar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.strip)
        self.setCentralWidget(central)

    def _build_dock(self) -> None:
        self.table = KeypointTable()
        self.table.rename_requested.connect(self._on_rename)
        self.table.visibility_requested.connect(lambda name, v: self._edit(
            lambda p: p.set_visibility(p.selection.image, [name], v)))
        self.table.selection_requested.connect(self._on_table_selection)
        self.table_title = QLabel()
        legend = QLabel(
            f"<span style='color:rgb{AUTO}'>●</span> transferred &nbsp; "
            f"<span style='color:rgb{FLAGGED['low_confidence']}'>●</span> low confidence &nbsp; "
            f"<span style='color:rgb{FLAGGED['fb_fail']}'>●</span> fb fail &nbsp; "
            f"<span style='color:rgb{FLAGGED['lr_swap']}'>●</span> L/R swap<br>"
            f"<span style='color:rgb{MANUAL}'>◆</span> manual (placed or corrected) &nbsp; hollow: occluded "
            "&nbsp; white ring: selected")
        legend.setWordWrap(True)
        self.min_confidence = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05)
        self.max_fb = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=1.0, singleStep=0.01)
        self.min_confidence.setToolTip("Flag transferred points whose confidence is below this")
        self.max_fb.setToolTip("Flag points whose forward-backward error exceeds this fraction of the "
                               "source's longer side")
        for box in (self.min_confidence, self.max_fb):
            box.setKeyboardTracking(False)
            box.valueChanged.connect(self._on_thresholds)
        form = QFormLayout()
        form.addRow("Min. confidence", self.min_confidence)
        form.addRow("Max. fb error (fraction)", self.max_fb)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table_title)
        layout.addWidget(self.table, 1)
        layout.addWidget(legend)
        layout.addLayout(form)
        layout.addWidget(self.summary_label)
        self.dock = QDockWidget("Keypoints", self)
        self.dock.setObjectName("labeling-keypoints-dock")
        self.dock.setWidget(body)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.resizeDocks([self.dock], [430], Qt.Orientation.Horizontal)

    def _build_status(self) -> None:
        self.status_text = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%v / %m targets")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(self.cancel_transfer)
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()

    def _action(self, text: str, slot, shortcuts=(), menu_role=None) -> QAction:
        action = QAction(text, self)
        keys = [QKeySequence(s) for s in (shortcuts if isinstance(shortcuts, (list, tuple)) else [shortcuts])]
        action.setShortcuts(keys)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda checked=False: slot())
        self.addAction(action)  # shortcuts work even for actions only in the help dialog
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.actions_by_name = {
            "new": a("&New Project from Source Image…", self.new_from_image_dialog, "Ctrl+N"),
            "import": a("&Import Source Keypoints…", self.import_keypoints_dialog, "Ctrl+I"),
            "open": a("&Open Project…", self.open_project_dialog, QKeySequence.StandardKey.Open),
            "save": a("&Save Project", self.save, QKeySequence.StandardKey.Save),
            "save_as": a("Save Project &As…", self.save_as_dialog, "Ctrl+Shift+S"),
            "recover": a("&Recover Unsaved Session", self.recover_unsaved),
            "close": a("&Close Window", self.close, QKeySequence.StandardKey.Close),
            "add_targets": a("Add &Target Images…", self.add_targets_dialog, "Ctrl+T"),
            "add_folder": a("Add Target &Folder…", self.add_folder_dialog, "Ctrl+Shift+T"),
            "remove_target": a("&Remove Current Target", self.remove_current_target),
            "transfer": a("&Transfer to Unreviewed Targets", self.start_transfer, ["Ctrl+R", "F5"]),
            "transfer_current": a("Transfer &Current Target Again", self.transfer_current, "Ctrl+Shift+R"),
            "cancel": a("Cancel Transfer / Clear Selection", self.escape, "Esc"),
            "undo": a("&Undo", lambda: self.project and self.project.undo(), QKeySequence.StandardKey.Undo),
            "redo": a("&Redo", lambda: self.project and self.project.redo(), ["Ctrl+Shift+Z", "Ctrl+Y"]),
            "next": a("Next Target", lambda: self.step_target(1), ["PgDown", "]"]),
            "previous": a("Previous Target", lambda: self.step_target(-1), ["PgUp", "["]),
            "accept": a("&Accept Target (Mark Reviewed) and Go to Next", self.accept_current, ["A", "Ctrl+Return"]),
            "unaccept": a("U&naccept Target", self.unaccept_current, "U"),
            "visibility": a("Cycle &Visibility of Selected (visible, occluded, absent)", self.cycle_visibility, "V"),
            "delete": a("&Delete Selected (source: the keypoint everywhere; target: mark absent)",
                        self.delete_selected, QKeySequence.StandardKey.Delete),
            "select_all": a("Select All Points of the Image", self.select_all, QKeySequence.StandardKey.SelectAll),
            "fit": a("&Fit Images", self.fit_views, "F"),
            "help": a("&Keyboard and Mouse…", self.show_help, "F1"),
        }
        self.actions_by_name["worst_first"] = worst = QAction("Sort Targets &Worst First", self, checkable=True)
        worst.setShortcut(QKeySequence("W"))
        worst.toggled.connect(lambda _on: self._refresh())
        self.addAction(worst)
        for (dx, dy), key in (((-1, 0), "Left"), ((1, 0), "Right"), ((0, -1), "Up"), ((0, 1), "Down")):
            self.actions_by_name[f"nudge_{key}"] = a(
                f"Nudge Selected {key} by 1 px", lambda dx=dx, dy=dy: self.nudge(dx, dy), key)
            self.actions_by_name[f"nudge_{key}_10"] = a(
                f"Nudge Selected {key} by 10 px", lambda dx=dx, dy=dy: self.nudge(10 * dx, 10 * dy), f"Shift+{key}")
        self.export_actions = []
        for reviewed_only in (False, True):
            for name, fmt in FORMATS.items():
                action = QAction(fmt.description, self)
                action.triggered.connect(lambda _c=False, n=name, r=reviewed_only: self.export_dialog(n, r))
                self.export_actions.append((reviewed_only, action))

    def _build_menus(self) -> None:
        n = self.actions_by_name
        menus = (("&File", ["new", "import", "open", None, "save", "save_as", "recover", None, "close"]),
                 ("&Edit", ["undo", "redo", None, "select_all", "visibility", "delete", None, "nudge_Left",
                            "nudge_Right", "nudge_Up", "nudge_Down"]),
                 ("&Targets", ["add_targets", "add_folder", "remove_target", None, "transfer", "transfer_current",
                               "cancel", None, "accept", "unaccept", "next", "previous", None, "worst_first"]),
                 ("&View", ["fit"]))
        for title, names in menus:
            menu = self.menuBar().addMenu(title)
            for name in names:
                menu.addSeparator() if name is None else menu.addAction(n[name])
        export_menu = self.menuBar().addMenu("E&xport")
        for reviewed_only, title in ((False, "All Transferred Targets"), (True, "Reviewed Targets Only")):
            sub = export_menu.addMenu(title)
            for only, action in self.export_actions:
                if only == reviewed_only:
                    sub.addAction(action)
        self.menuBar().addMenu("&Help").addAction(n["help"])

    # ----- the project ---------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Show ``project`` (observing it), or the empty window for None."""
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._running:  # results of a run for the old project must not reach the new one
            self.transfer_worker.current_job = -1
            self._job += 1
            self._end_run()
        self.project = project
        self.current = None
        self.message_bar.hide()
        if project is not None:
            self._unsubscribe = project.subscribe(self._on_project_change)
            targets = self.ordered_targets()
            if targets:
                self.go_to(targets[0].image)
        self._refresh()
        untitled = os.path.join(self.autosave_dir, UNTITLED_AUTOSAVE)
        if project is None and os.path.exists(untitled):
            self.status_text.setText("An unsaved session can be recovered: File > Recover Unsaved Session.")

    def _untitled_autosave(self) -> str:
        return os.path.join(self.autosave_dir, UNTITLED_AUTOSAVE)

    def _on_project_change(self, change) -> None:
        if change.kind in ("labels", "selection"):
            self._refresh()
        else:
            self._update_actions()

    def ordered_targets(self) -> list[ImageLabels]:
        """The targets in strip order: as added, or worst first."""
        if self.project is None:
            return []
        labels = self.project.labels
        if self.actions_by_name["worst_first"].isChecked():  # reviewed ones need no review: last
            by_path = {t.image: t for t in labels.targets}
            return sorted((by_path[path] for path in labels.worst_first()), key=lambda t: t.reviewed)
        return list(labels.targets)

    def _refresh(self) -> None:
        """Redraw everything from the Project (cheap: a few dozen points, tiles only where changed)."""
        project = self.project
        targets = self.ordered_targets()
        if project is not None and self.current not in {t.image for t in targets}:
            self.current = targets[0].image if targets else None
        self.strip.set_targets(targets, self.current)
        if project is None:
            for view, layer in ((self.source_view, self.source_layer), (self.target_view, self.target_layer)):
                layer.show_labels(None)
                self._placeholder(view, self._empty_text[view])
            self.table.show_labels(None, (), ())
            self.source_title.setText("Source")
            self.target_title.setText("Target")
            self.summary_label.setText("")
        else:
            labels = project.labels
            self._show(self.source_view, self.source_layer, labels.source.image)
            self._show(self.target_view, self.target_layer, self.current)
            edited = labels.image(project.selection.image)
            self.table.show_labels(edited, labels.names, project.selection.names)
            role = "source" if edited is labels.source else "target"
            self.table_title.setText(f"Keypoints on the {role}, {os.path.basename(edited.image)}")
            self._set_titles()
            self.summary_label.setText(summary(labels) if labels.targets else
                                       "No targets yet: add images (Ctrl+T) or a folder (Ctrl+Shift+T).")
            settings = labels.settings
            for box, value in ((self.min_confidence, settings.min_confidence), (self.max_fb, settings.max_fb_fraction)):
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)
        self._update_actions()

    def _set_titles(self) -> None:
        labels = self.project.labels
        source = labels.source
        size = f"{source.size[0]}x{source.size[1]}, " if source.size else ""
        shown = sum(p.visibility != ABSENT for p in source.points)
        self.source_title.setText(f"<b>Source</b> {os.path.basename(source.image)} "
                                  f"({size}{shown} keypoint{'' if shown == 1 else 's'})")
        if self.current is None:
            self.target_title.setText("<b>Target</b> none yet")
            return
        target = labels.image(self.current)
        order = [t.image for t in self.ordered_targets()]
        state = target_state(target)
        detail = f": {target.reason}" if target.status == SKIPPED else (
            f", {len(target.flagged)} flagged point(s)" if target.flagged else "")
        self.target_title.setText(f"<b>Target {order.index(self.current) + 1}/{len(order)}</b> "
                                  f"{os.path.basename(self.current)} — {state}{detail}")

    def _update_actions(self) -> None:
        has = self.project is not None
        n = self.actions_by_name
        for name in ("save", "save_as", "add_targets", "add_folder", "select_all", "visibility", "delete",
                     "transfer", "fit"):
            n[name].setEnabled(has)
        has_target = has and self.current is not None
        for name in ("remove_target", "transfer_current", "accept", "unaccept", "next", "previous"):
            n[name].setEnabled(has_target)
        n["undo"].setEnabled(has and self.project.undo_text is not None)
        n["redo"].setEnabled(has and self.project.redo_text is not None)
        n["undo"].setText(f"&Undo {self.project.undo_text}" if has and self.project.undo_text else "&Undo")
        n["redo"].setText(f"&Redo {self.project.redo_text}" if has and self.project.redo_text else "&Redo")
        untitled = self._untitled_autosave()
        n["recover"].setEnabled(os.path.exists(untitled) and not (has and self.project.autosave_path == untitled))
        for _only, action in self.export_actions:
            action.setEnabled(has)
        for box in (self.min_confidence, self.max_fb):
            box.setEnabled(has)
        name = os.path.basename(self.project.path) if has and self.project.path else "unsaved project"
        self.setWindowTitle(f"Label transfer — {name}{' *' if has and self.project.modified else ''}")

    # ----- images in the views ---------------------------------------------------------------------
    def _show(self, view: ImageView, layer: KeypointLayer, path: str | None) -> None:
        """Show ``path``'s image (loading it off the GUI thread when needed) and its keypoints."""
        if layer.drag is not None:
            return  # a drop is coming; it redraws
        labels = self.project.labels
        if path is None:
            layer.show_labels(None)
            self._placeholder(view, "Add targets (Ctrl+T) and transfer (Ctrl+R)")
            return
        image = self._images.get(path)
        if image is None:
            layer.show_labels(None)
            target = labels.image(path)
            if target.status == SKIPPED:
                self._placeholder(view, f"Skipped: {target.reason}")
            elif path in self._unreadable:
                self._placeholder(view, f"Cannot show {os.path.basename(path)}: {self._unreadable[path]}")
            else:
                self._placeholder(view, f"Loading {os.path.basename(path)}…")
                self._request_image(path)
            return
        if view.image is not image:
            view.set_image(image)
        selection = self.project.selection
        selected = selection.names if selection.image == path else frozenset()
        layer.show_labels(labels.image(path), labels.names, labels.skeleton, selected)

    @staticmethod
    def _placeholder(view: ImageView, text: str) -> None:
        view.image = None
        view.image_item.clear()
        view.placeholder.setText(text)
        view.placeholder.setVisible(True)
        view.view_box.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
        view.placeholder.setPos(0, 0)

    def _request_image(self, path: str) -> None:
        if path not in self._loading:
            self._loading.append(path)
            self.request_load.emit(path, None)

    @Slot(object, object)
    def _on_image_loaded(self, image, _unused) -> None:
        path = self._loading.pop(0) if self._loading else image.path
        self._images[path] = image
        self._images.move_to_end(path)
        while len(self._images) > IMAGE_CACHE:
            self._images.popitem(last=False)
        self._unreadable.pop(path, None)
        if self.project is not None:
            self._refresh()

    @Slot(str)
    def _on_image_failed(self, message: str) -> None:
        path = self._loading.pop(0) if self._loading else None
        if path is not None:
            self._unreadable[path] = message
            if self.project is not None:
                self._refresh()

    def fit_views(self) -> None:
        self.source_view.fit()
        self.target_view.fit()

    # ----- selection and mouse edits -----------------------------------------------------------------
    def _path_of(self, layer: KeypointLayer) -> str | None:
        if self.project is None:
            return None
        return self.project.labels.source.image if layer is self.source_layer else self.current

    def _select_on(self, layer: KeypointLayer, names, additive: bool) -> None:
        path = self._path_of(layer)
        if path is None:
            return
        selection = self.project.selection
        names = set(names)
        if additive and selection.image == path:
            if len(names) == 1 and names <= selection.names:
                names = selection.names - names  # Ctrl-click on a selected point deselects it
            else:
                names = selection.names | names
        self.project.select(path, names)

    def _on_point_clicked(self, layer: KeypointLayer, name: str, additive: bool) -> None:
        self._select_on(layer, [name], additive)

    def _on_empty_clicked(self, layer: KeypointLayer, x: float, y: float, additive: bool) -> None:
        """Place the one selected point this image lacks; on the source, else add a new keypoint."""
        path = self._path_of(layer)
        if path is None or additive:
            return
        labels, selection = self.project.labels, self.project.selection
        image = labels.image(path)
        missing = [n for n in selection.names if image.point(n) is None or image.point(n).visibility == ABSENT]
        if selection.image == path and len(selection.names) == 1 and missing:
            name = missing[0]
            if image.point(name) is None:
                self._edit(lambda p: p.add_point(path, name, x, y))
            else:
                self._edit(lambda p: p.apply(f"place {name}", lambda ls: ls.place_point(path, name, x, y)
                                             .set_visibility(path, [name], VISIBLE)))
        elif layer is self.source_layer:
            name = next(f"point_{i}" for i in range(1, len(labels.names) + 2) if f"point_{i}" not in labels.names)
            if self._edit(lambda p: p.add_point(path, name, x, y)):
                self.project.select(path, [name])
                self.table.editItem(self.table.item(self.table.names.index(name), 0))
        else:
            self.project.select(path)

    def _on_dragged(self, layer: KeypointLayer, names, dx: float, dy: float) -> None:
        path = self._path_of(layer)
        if path is None:
            return
        self.project.select(path, names)
        if len(names) == 1:
            point = self.project.labels.image(path).point(names[0])
            self._edit(lambda p: p.place_point(path, names[0], point.x + dx, point.y + dy))
        else:
            self._edit(lambda p: p.move_points(path, names, dx, dy))

    def _on_table_selection(self, names) -> None:
        if self.project is not None:
            self.project.select(self.project.selection.image, names)

    def _on_rename(self, old: str, new: str) -> None:
        if not self._edit(lambda p: p.rename_keypoint(old, new)):
            self._refresh()  # put the old name back in the table

    def _on_source_dropped(self, path: str) -> None:
        if os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS:
            self.new_from_image(path)
        else:
            self.import_keypoints(path)

    def _edit(self, change) -> bool:
        """Run ``change(project)``; a refused edit (e.g. a point off the image) becomes a message."""
        if self.project is None:
            return False
        try:
            change(self.project)
        except (ValueError, KeyError) as exc:
            self.show_error(str(exc).strip("'\""))
            return False
        return True

    # ----- keyboard edits ------------------------------------------------------------------------
    def nudge(self, dx: float, dy: float) -> None:
        """Move the selected points of the edited image by (dx, dy) pixels."""
        if self.project and self.project.selection.names:
            selection = self.project.selection
            self._edit(lambda p: p.move_points(selection.image, sorted(selection.names), dx, dy))

    def cycle_visibility(self) -> None:
        if not (self.project and self.project.selection.names):
            return
        selection = self.project.selection
        image = self.project.labels.image(selection.image)
        first = image.point(sorted(selection.names)[0])
        self._edit(lambda p: p.set_visibility(selection.image, sorted(selection.names),
                                              NEXT_VISIBILITY[first.visibility]))

    def delete_selected(self) -> None:
        if not (self.project and self.project.selection.names):
            return
        selection = self.project.selection
        if selection.image == self.project.labels.source.image:
            self._edit(lambda p: p.delete_keypoints(sorted(selection.names)))
        else:
            self._edit(lambda p: p.set_visibility(selection.image, sorted(selection.names), ABSENT))

    def select_all(self) -> None:
        if self.project:
            path = self.project.selection.image
            self.project.select(path, [p.name for p in self.project.labels.image(path).points
                                       if p.visibility != ABSENT])

    def escape(self) -> None:
        if self._running:
            self.cancel_transfer()
        elif self.project:
            self.project.select(self.project.selection.image)

    # ----- targets ---------------------------------------------------------------------------------
    def go_to(self, path: str) -> None:
        """Show target ``path`` and make it the edited image."""
        if self.project is None:
            return
        self.current = path
        self.project.select(path)
        self._refresh()

    def step_target(self, step: int) -> None:
        order = [t.image for t in self.ordered_targets()]
        if not order:
            return
        index = order.index(self.current) + step if self.current in order else 0
        self.go_to(order[max(0, min(len(order) - 1, index))])

    def accept_current(self) -> None:
        """Mark the shown target reviewed and move on to the next unreviewed one."""
        if self.project is None or self.current is None:
            return
        target = self.project.labels.image(self.current)
        if target.status == SKIPPED:
            self.show_error(f"{os.path.basename(self.current)} was skipped ({target.reason}): nothing to accept.")
            return
        self._edit(lambda p: p.set_reviewed([self.current]))
        order = [t for t in self.ordered_targets()]
        paths = [t.image for t in order]
        later = order[paths.index(self.current) + 1:] + order[:paths.index(self.current)]
        following = next((t.image for t in later if not t.reviewed and t.status != SKIPPED), None)
        if following:
            self.go_to(following)

    def unaccept_current(self) -> None:
        if self.project and self.current:
            self._edit(lambda p: p.set_reviewed([self.current], False))

    def add_targets(self, entries) -> None:
        """Add image files and folders (their images) as targets."""
        if self.project is None:
            self.show_error("Open a source image or import its keypoints first.")
            return
        paths = expand_targets(entries, self.project.labels.source.image)
        known = {im.image for im in self.project.labels.images}
        fresh = [p for p in paths if p not in known]
        if not fresh:
            self.status_text.setText("No new target images.")
            return
        self._edit(lambda p: p.add_targets(fresh))
        if self.current is None or self.current not in known:
            self.go_to(fresh[0])
        self.status_text.setText(f"Added {len(fresh)} target image(s). Transfer with Ctrl+R.")

    def remove_current_target(self) -> None:
        if self.project and self.current:
            self._edit(lambda p: p.remove_targets([self.current]))

    # ----- transfer ----------------------------------------------------------------------------------
    def start_transfer(self, paths=None) -> None:
        """Transfer the source's keypoints to ``paths`` (default: every unreviewed target) in the worker."""
        if self.project is None or self._running:
            return
        labels = self.project.labels
        paths = list(paths) if paths is not None else [t.image for t in labels.targets if not t.reviewed]
        if not paths:
            self.show_error("No unreviewed targets to transfer to: add target images first (Ctrl+T).")
            return
        self._job += 1
        self._running = True
        self.message_bar.hide()
        self.transfer_worker.current_job = self._job
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.status_text.setText(f"Transferring {len(labels.source.points)} keypoints to {len(paths)} target(s)…")
        self.request_transfer.emit(self._job, labels.source, paths, labels.settings)

    def transfer_current(self) -> None:
        if self.current:
            self.start_transfer([self.current])

    def cancel_transfer(self) -> None:
        """Stop after the target being computed; results already made are kept."""
        if self._running:
            self.transfer_worker.current_job = -1
            self.cancel_button.setEnabled(False)
            self.status_text.setText("Cancelling after the current target…")

    @property
    def transferring(self) -> bool:
        return self._running

    @Slot(int)
    def _on_model_loading(self, job: int) -> None:
        if job == self._job:
            self.status_text.setText("Loading the model (first transfer only)…")

    @Slot(int, object, object)
    def _on_result(self, job: int, fresh: ImageLabels, info) -> None:
        if job != self._job or self.project is None:
            return
        self.project.apply_transfers([fresh], info)
        self.progress.setValue(self.progress.value() + 1)
        self.status_text.setText(f"Transferred {os.path.basename(fresh.image)}"
                                 + (f" (skipped: {fresh.reason})" if fresh.status == SKIPPED else ""))

    @Slot(int, bool)
    def _on_finished(self, job: int, cancelled: bool) -> None:
        if job != self._job:
            return
        self._end_run()
        self.status_text.setText(f"Transfer {'cancelled' if cancelled else 'finished'}: "
                                 f"{self.progress.value()} of {self.progress.maximum()} target(s) processed. "
                                 + summary(self.project.labels).splitlines()[0].capitalize() + ".")
        self.autosave()

    @Slot(int, str)
    def _on_failed(self, job: int, message: str) -> None:
        if job != self._job:
            return
        self._end_run()
        self.show_error(f"Transfer stopped: {message}")
        self.autosave()

    def _end_run(self) -> None:
        self._running = False
        self.progress.hide()
        self.cancel_button.hide()

    # ----- files: new, import, open, save, autosave --------------------------------------------------
    def _maybe_save(self) -> bool:
        """Before the project is replaced: offer to save changes; False if the user cancels."""
        if self.project is None or not self.project.modified:
            return True
        choice = self.ask("Unsaved changes", "Save the changes to this label project first?",
                          ("Save", "Discard", "Cancel"))
        if choice == "Cancel":
            return False
        if choice == "Save":
            return self.save()
        self._drop_autosave()
        return True

    def _drop_autosave(self) -> None:
        path = self.project.autosave_path if self.project else None
        if path and os.path.exists(path):
            os.remove(path)

    def _new_project(self, labels) -> bool:
        """Show a new unsaved project; first offer to recover an unsaved session its autosave would replace."""
        untitled = self._untitled_autosave()
        mine = self.project is not None and self.project.autosave_path == untitled
        if os.path.exists(untitled) and not mine and self.ask(
                "Unsaved session found", "A session that was never saved (the window closed or crashed) "
                "can still be recovered. Recover it instead, or discard it?", ("Recover it", "Discard it")) == "Recover it":
            self._open_untitled()
            return False
        self.set_project(Project(labels, autosave_path=untitled))
        return True

    def new_from_image(self, path: str) -> None:
        """A new project whose source is the image at ``path``, with no keypoints yet (click to add)."""
        if not self._maybe_save():
            return
        try:
            size = load_image(path).original_size
        except ValueError as exc:
            self.show_error(f"Cannot open the source image: {exc}")
            return
        if self._new_project(new_project(ImageLabels(os.path.abspath(path), size))):
            self.status_text.setText("Click the source image to add keypoints, then add targets (Ctrl+T).")

    def import_keypoints(self, path: str, image: str | None = None) -> bool:
        """Start a project from a keypoint file (labelme / COCO JSON, CSV name,x,y, or our exports).

        The source image is ``image``, else the current project's source, else the file's own image.
        Targets already in the window are kept (as pending). A broken file leaves everything as it was.
        """
        old = self.project
        try:
            if image is None and old is not None:
                image = old.labels.source.image
            if image is None:
                stored = [im.image for im in read_labels(path).images]
                image = next((p for p in stored if os.path.isfile(p)), None) if len(stored) == 1 else None
            if image is None:
                image = self._choose_open("Source image for these keypoints", IMAGE_FILTER)
                if not image:
                    return False
            image = os.path.abspath(image)
            labels = read_source(path, image, load_image(image).original_size)
        except ValueError as exc:
            self.show_error(f"Cannot import keypoints from {os.path.basename(path)}: {exc}")
            return False
        if old is not None:
            labels = labels.with_settings(old.labels.settings).add_targets(
                [t.image for t in old.labels.targets if t.image != image])
            if not self._maybe_save():
                return False
        if not self._new_project(labels):
            return False
        self.status_text.setText(f"Imported {len(labels.source.points)} keypoints from {os.path.basename(path)}.")
        return True

    def open_project(self, path: str) -> bool:
        """Open a project file, offering to restore a newer autosave of it."""
        if not self._maybe_save():
            return False
        use_autosave = False
        if newer_autosave(path):
            use_autosave = self.ask(
                "Restore autosave?", f"{os.path.basename(path)} has an autosave newer than the file: "
                "changes that were never saved. Restore them?", ("Restore", "Open the saved file")) == "Restore"
        try:
            project = Project.open(path, use_autosave=use_autosave)
        except (ValueError, OSError) as exc:
            self.show_error(f"Cannot open the project: {exc}")
            return False
        self.set_project(project)
        self.status_text.setText(f"Opened {os.path.basename(path)}"
                                 + (" with its autosaved changes" if use_autosave else "") + ".")
        return True

    def recover_unsaved(self) -> None:
        """Open the autosave of a session that was never saved (it stays unsaved until Save As)."""
        if os.path.exists(self._untitled_autosave()) and self._maybe_save():
            self._open_untitled()

    def _open_untitled(self) -> None:
        path = self._untitled_autosave()
        try:
            self.set_project(Project(read_project(path), autosave_path=path))
        except ValueError as exc:
            self.show_error(f"Cannot recover the unsaved session: {exc}")
            return
        self.status_text.setText("Recovered the unsaved session: save it with Ctrl+Shift+S.")

    def save(self, path: str | None = None) -> bool:
        """Save the project (``path``: save as); without a file yet, ask for one."""
        if self.project is None:
            return False
        if path is None and self.project.path is None:
            path = self._choose_save("Save label project", "labels.rtnproj", PROJECT_FILTER)
            if not path:
                return False
        try:
            self.project.save(path)
        except (ValueError, OSError) as exc:
            self.show_error(f"Cannot save the project: {exc}")
            return False
        self._update_actions()
        self.status_text.setText(f"Saved {self.project.path}.")
        return True

    def autosave(self) -> None:
        """Write the autosave if anything changed since the last (auto)save (timer, after transfers)."""
        if self.project is None or not self.project.autosave_path:
            return
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.project.autosave_path)), exist_ok=True)
            if self.project.autosave():
                self.statusBar().showMessage("Autosaved.", 2000)
        except OSError as exc:
            self.show_error(f"Autosave failed: {exc}")

    # ----- export --------------------------------------------------------------------------------------
    def export(self, format_name: str, path: str, reviewed_only: bool = False) -> bool:
        """Write the source and the transferred (or only the reviewed) targets in ``format_name``."""
        if self.project is None:
            return False
        labels = self.project.labels.for_export(reviewed_only)
        try:
            write_labels(labels, path, format_name)
        except (ValueError, OSError) as exc:
            self.show_error(f"Export failed: {exc}")
            return False
        self.status_text.setText(f"Exported the source and {len(labels.targets)} target(s) as "
                                 f"{format_name} to {path}.")
        return True

    # ----- dialogs (entry points from menus; tests call the methods above with paths) ------------------
    def _folder(self) -> str:
        if self.project is not None:
            return os.path.dirname(self.project.path or self.project.labels.source.image)
        return os.getcwd()

    def _choose_open(self, title: str, filters: str) -> str:
        return QFileDialog.getOpenFileName(self, title, self._folder(), filters)[0]

    def _choose_save(self, title: str, name: str, filters: str) -> str:
        return QFileDialog.getSaveFileName(self, title, os.path.join(self._folder(), name), filters)[0]

    def new_from_image_dialog(self) -> None:
        path = self._choose_open("Source image", IMAGE_FILTER)
        if path:
            self.new_from_image(path)

    def import_keypoints_dialog(self) -> None:
        path = self._choose_open("Import source keypoints (labelme, COCO, CSV name,x,y)", LABEL_FILTER)
        if path:
            self.import_keypoints(path)

    def open_project_dialog(self) -> None:
        path = self._choose_open("Open label project", PROJECT_FILTER)
        if path:
            self.open_project(path)

    def save_as_dialog(self) -> None:
        path = self._choose_save("Save label project as", "labels.rtnproj", PROJECT_FILTER)
        if path:
            self.save(path)

    def add_targets_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add target images", self._folder(), IMAGE_FILTER)
        if paths:
            self.add_targets(paths)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add every image in a folder", self._folder())
        if folder:
            self.add_targets([folder])

    def export_dialog(self, format_name: str, reviewed_only: bool = False) -> None:
        if self.project is None:
            return
        if FORMATS[format_name].writes_folder:
            path = QFileDialog.getExistingDirectory(self, f"Export {format_name}: folder for the files", self._folder())
        else:
            path = self._choose_save(f"Export {FORMATS[format_name].description}",
                                     f"keypoints-{format_name}{EXPORT_SUFFIX[format_name]}", "All files (*)")
        if path:
            self.export(format_name, path, reviewed_only)

    def show_help(self) -> QDialog:
        """The keyboard and mouse reference (non-modal), built from the actions themselves."""
        if self.help_dialog is None:
            rows = [(", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()),
                     action.text().replace("&", "")) for action in self.actions_by_name.values() if action.shortcuts()]
            rows += MOUSE_HELP
            dialog = QDialog(self)
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
            self.help_dialog = dialog
        self.help_dialog.show()
        self.help_dialog.raise_()
        return self.help_dialog

    # ----- messages and closing ------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        """Show ``text`` in the window's message bar (no modal box) and the status bar."""
        self.message_bar.show_text(text)
        self.status_text.setText(text.splitlines()[0] if text else "")

    def _on_thresholds(self) -> None:
        if self.project is not None:
            self._edit(lambda p: p.set_settings(TransferSettings(self.min_confidence.value(), self.max_fb.value())))

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            self.accept_current()  # reaches the window only when no editor took the key
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:
        if not self._maybe_save():  # saved, or discarded (autosave removed), or cancelled
            event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)

    @Slot()
    def _on_app_quit(self) -> None:
        """The application quits with this window open (e.g. its parent closed): keep the work, stop the threads."""
        if not self._stopped:
            self.autosave()
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the timer and both threads (idempotent): on close, and when the application quits."""
        if self._stopped:
            return
        self._stopped = True
        self.autosave_timer.stop()
        self._job += 1  # results still queued for this window are ignored
        self.transfer_worker.current_job = -1
        self.transfer_thread.stop()  # waits for the target being computed
        self.loader.stop()
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None


_windows: list[LabelingWindow] = []  # keeps parentless windows alive until they close


def open_labeling_window(parent=None, project_path: str | None = None, **options) -> LabelingWindow:
    """Open the label-transfer window (a separate window; ``parent``: e.g. the main window).

    The model follows the parent's device and weights when it has them (``device_key``, ``weights``).
    ``project_path``: a project file to open. ``options`` go to :class:`LabelingWindow`.
    """
    options.setdefault("device", getattr(parent, "device_key", None))
    options.setdefault("weights", getattr(parent, "weights", None) or None)
    window = LabelingWindow(parent=parent, **options)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    _windows.append(window)
    window.destroyed.connect(lambda *_: _windows.remove(window) if window in _windows else None)
    window.show()
    if project_path:
        window.open_project(project_path)
    return window


def main(argv=None) -> int:
    """Run the window on its own: ``python -m app.labeling [project.rtnproj]``."""
    import sys
    argv = sys.argv if argv is None else argv
    app = QApplication.instance() or QApplication(argv)
    open_labeling_window(project_path=argv[1] if len(argv) > 1 else None)
    return app.exec()
