"""The Label Transfer window: layout and wiring. Import or click keypoints on a source,
transfer them to many targets in a worker thread, review and correct them, save, export.

The window is a controller over a Qt-free :class:`rtn_core.labels.project.Project`: every edit is a
Project call (one undo step), and the views only redraw when the Project says something changed. Its
jobs live in small objects: ``files`` (:mod:`.project_files`), ``transfer`` (:mod:`.transfer_run`),
``review`` (:mod:`.review`), ``edits`` (:mod:`.point_edits`) and ``panes`` (:mod:`.image_panes`); its
actions and menus are built by :mod:`.actions`.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QStandardPaths, Qt, Slot
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QDialog, QDockWidget, QDoubleSpinBox, QFormLayout,
                               QLabel, QMainWindow, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from rtn_core.labels.keypoints import ABSENT, SKIPPED, TransferSettings
from rtn_core.labels.project import Project
from rtn_core.labels.transfer import summary

from ..views import ImageView, titled_panes
from ..workers import collect_garbage_on_gui_thread, default_matcher
from .actions import build_actions, build_menus, update_actions
from .canvas import AUTO, FLAG_GLYPH, FLAG_ORDER, FLAG_SHORT, FLAGGED, MANUAL, KeypointLayer
from .image_panes import NO_TARGET, ImagePanes, show_placeholder
from .keypoint_table import KeypointTable
from .messages import MessageBar, help_dialog, message_box_ask
from .point_edits import PointEdits
from .project_files import ProjectFiles
from .review import ReviewNavigation
from .thumbnails import FLAGGED as FLAGGED_STATE, STATE_TEXT, ThumbnailStrip, strip_legend, target_state
from .transfer_run import TransferRun


class LabelingWindow(QMainWindow):
    """Label transfer: one source image's keypoints carried to many targets, reviewed and exported.

    ``project``: a Project to show (or None: start empty). ``matcher_factory(device, weights)``
    builds the model in the worker thread. ``ask(title, text, choices) -> choice`` replaces the
    question boxes (tests). ``autosave_dir`` holds the autosave of a project not saved yet.
    """

    def __init__(self, project: Project | None = None, parent=None, matcher_factory=default_matcher,
                 device: str | None = None, weights: str | None = None, ask=None,
                 autosave_dir: str | None = None, autosave_ms: int = 10_000):
        super().__init__(parent)
        if parent is not None:
            self.setWindowFlag(Qt.WindowType.Window)  # its own window, closed with its parent
        self.ask = ask or (lambda title, text, choices: message_box_ask(self, title, text, choices))
        self.project: Project | None = None
        self._unsubscribe = None
        self.help_dialog: QDialog | None = None
        self.files = ProjectFiles(self, autosave_dir or QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.AppDataLocation) or os.path.expanduser("~/.rtn-studio"), autosave_ms)
        self.review = ReviewNavigation(self)
        self.edits = PointEdits(self)
        self.panes = ImagePanes(self)
        self.transfer = TransferRun(self, matcher_factory, device, weights)

        self._build_views()
        self._build_dock()
        self._build_status()
        build_actions(self)
        build_menus(self)

        self._stopped = False
        QApplication.instance().aboutToQuit.connect(self._on_app_quit)
        self._fit_screen()
        self.set_project(project)

    # ----- building ------------------------------------------------------------------------------
    def _build_views(self) -> None:
        self.source_view = ImageView("Import keypoints (Ctrl+I)\nor open a source image (Ctrl+N)")
        self.target_view = ImageView(NO_TARGET)
        self._empty_text = {view: view.placeholder.textItem.toPlainText()
                            for view in (self.source_view, self.target_view)}
        self.source_layer = KeypointLayer(self.source_view, scores=False)
        self.target_layer = KeypointLayer(self.target_view, scores=True)
        for layer in (self.source_layer, self.target_layer):
            self.edits.connect_layer(layer)
        self.target_view.file_dropped.connect(lambda path: self.review.add_targets([path]))
        self.source_view.file_dropped.connect(self.files.open_dropped_source)

        self.source_title, self.target_title = QLabel("Source"), QLabel("Target")
        for title in (self.source_title, self.target_title):  # long file names never resize the panes
            title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            title.setWordWrap(True)  # narrow panes wrap them instead of cutting them off
        splitter = titled_panes((self.source_title, self.source_view), (self.target_title, self.target_view))
        self.strip = ThumbnailStrip()
        self.strip.current_path_changed.connect(self.review.go_to)
        self.message_bar = MessageBar()
        self.empty_state = QLabel("No project yet: import keypoints (Ctrl+I), open a source image (Ctrl+N) or a "
                                  "project (Ctrl+O), or <a href='sample'>try the sample cat</a>: six keypoints on one "
                                  "photo, ready to transfer to another.")
        self.empty_state.setWordWrap(True)
        self.empty_state.linkActivated.connect(lambda _link: self.files.open_sample())
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.empty_state)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.strip)
        self.strip_legend = QLabel(strip_legend())
        self.strip_legend.setToolTip("\n".join(f"{words}: {meaning}" for words, meaning in STATE_TEXT.values()))
        self.strip_legend.setWordWrap(True)  # breaks only between entries (each is joined by &nbsp;)
        layout.addWidget(self.strip_legend)
        self.setCentralWidget(central)

    def _build_dock(self) -> None:
        self.table = KeypointTable()
        self.table.rename_requested.connect(self.edits.on_rename)
        self.table.visibility_requested.connect(self.edits.set_visibility)
        self.table.selection_requested.connect(self.edits.on_table_selection)
        self.table_title = QLabel()
        legend = QLabel(
            f"<span style='color:rgb{AUTO}'>●</span> transferred &nbsp; "
            + " &nbsp; ".join(f"<span style='color:rgb{FLAGGED[flag]}'>{FLAG_GLYPH[flag]}</span> {FLAG_SHORT[flag]}"
                              for flag in FLAG_ORDER) + "<br>"
            f"<span style='color:rgb{MANUAL}'>◆</span> manual (placed or corrected) &nbsp; hollow: occluded "
            "&nbsp; white&nbsp;ring:&nbsp;selected")  # wraps whole, never between a word and its meaning
        legend.setWordWrap(True)
        self.min_confidence = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=100.0, singleStep=5.0, suffix="%")
        self.max_fb = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=1.0, singleStep=0.01)
        defaults = TransferSettings()
        self.min_confidence.setToolTip(
            "Flag transferred points whose confidence (the probability that the match lies within 10% of the "
            f"object's size of the truth) is below this. Default {defaults.min_confidence:.0%}: on the validation "
            "set, this flag and the fb flag together catch 70% of the wrong points in each of its subsets")
        self.max_fb.setToolTip("Flag points whose forward-backward error (the FB err px column) exceeds this "
                               f"fraction of the source's longer side. Default {defaults.max_fb_fraction:g}")
        self.min_confidence.setValue(defaults.min_confidence * 100)  # shown, disabled, before a project opens
        self.max_fb.setValue(defaults.max_fb_fraction)
        for box in (self.min_confidence, self.max_fb):
            box.setKeyboardTracking(False)
            box.valueChanged.connect(self._on_thresholds)
        form = QFormLayout()
        form.addRow("Min. confidence", self.min_confidence)
        form.addRow("Max. fb error (share of side)", self.max_fb)
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
        self.cancel_button = QPushButton("Cancel transfer")
        self.cancel_button.setToolTip("Stop after the target being computed; results made so far are kept (Shift+Esc)")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(lambda: self.transfer.cancel())
        self.autosave_note = QLabel()  # beside the status line, so an autosave never hides what it says
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.autosave_note)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()

    # ----- the project ---------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Show ``project`` (observing it), or the empty window for None."""
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        self.transfer.abandon()  # results of a run for the old project must not reach the new one
        self.edits.nudge_pause.stop()  # ... nor a re-run of its nudged target
        if self.project is not None and self.project is not project:
            self.project.close()  # its autosave lock: saved or discarded by now, or kept for recovery
        self.project = project
        self.review.current = None
        self.message_bar.hide()
        if project is not None:
            self._unsubscribe = project.subscribe(self._on_project_change)
            targets = self.review.ordered_targets()
            if targets:
                self.review.go_to(targets[0].image)
        self.refresh()
        left = self.files.recoverable() if project is None else ()
        if left:
            self.status_text.setText(f"{'An unsaved session' if len(left) == 1 else f'{len(left)} unsaved sessions'} "
                                     "can be recovered: File > Recover Unsaved Session.")

    def _on_project_change(self, change) -> None:
        if change.kind in ("labels", "selection"):
            self.refresh()
        else:
            self.update_actions()

    def edit(self, change) -> bool:
        """Run ``change(project)``; a refused edit (e.g. a point off the image) becomes a message."""
        if self.project is None:
            return False
        try:
            change(self.project)
        except (ValueError, KeyError) as exc:
            self.show_error(str(exc).strip("'\""))
            return False
        return True

    def refresh(self) -> None:
        """Redraw everything from the Project (cheap: a few dozen points, tiles only where changed)."""
        project, review = self.project, self.review
        targets = review.ordered_targets()
        if project is not None and review.current not in {t.image for t in targets}:
            review.current = targets[0].image if targets else None
        self.strip.set_targets(targets, review.current)
        self.empty_state.setVisible(project is None)
        if project is None:
            for view, layer in ((self.source_view, self.source_layer), (self.target_view, self.target_layer)):
                layer.show_labels(None)
                show_placeholder(view, self._empty_text[view])
            self.table.show_labels(None, (), ())
            self.source_title.setText("Source")
            self.target_title.setText("Target")
            self.summary_label.setText("")
        else:
            labels = project.labels
            self.panes.show(self.source_view, self.source_layer, labels.source.image)
            self.panes.show(self.target_view, self.target_layer, review.current)
            edited = labels.image(project.selection.image)
            self.table.show_labels(edited, labels.names, project.selection.names)
            role = "source" if edited is labels.source else "target"
            self.table_title.setText(f"Keypoints on the {role}, {os.path.basename(edited.image)}")
            self._set_titles()
            self.summary_label.setText(summary(labels) if labels.targets else
                                       "No targets yet: add images (Ctrl+T) or a folder (Ctrl+Shift+T).")
            settings = labels.settings
            for box, value in ((self.min_confidence, settings.min_confidence * 100),  # shown as a percentage
                               (self.max_fb, settings.max_fb_fraction)):
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)
        self.update_actions()

    def _set_titles(self) -> None:
        labels, current = self.project.labels, self.review.current
        source = labels.source
        size = f"{source.size[0]}x{source.size[1]}, " if source.size else ""
        shown = sum(p.visibility != ABSENT for p in source.points)
        self.source_title.setText(f"<b>Source</b> {os.path.basename(source.image)} "
                                  f"({size}{shown} keypoint{'' if shown == 1 else 's'})")
        if current is None:
            self.target_title.setText("<b>Target</b> none yet")
            return
        target = labels.image(current)
        order = [t.image for t in self.review.ordered_targets()]
        state = target_state(target)
        detail = (f": {target.reason}" if state == SKIPPED else
                  f" ({len(target.flagged)})" if state == FLAGGED_STATE else "")
        self.target_title.setText(f"<b>Target {order.index(current) + 1}/{len(order)}</b> "
                                  f"{os.path.basename(current)} — {STATE_TEXT[state][0]}{detail}")

    def update_actions(self) -> None:
        """Enable the actions that apply now and title the window (:func:`.actions.update_actions`)."""
        update_actions(self)

    # ----- small window actions ----------------------------------------------------------------------
    def fit_views(self) -> None:
        self.source_view.fit()
        self.target_view.fit()

    def _fit_screen(self) -> None:
        """Open at 1500x920, or smaller to fit the screen it opens on (e.g. a 1366x768 laptop)."""
        available = (self.screen() or QApplication.primaryScreen()).availableGeometry()
        self.resize(min(1500, available.width() - 16), min(920, available.height() - 40))

    def show_help(self) -> QDialog:
        """The keyboard and mouse reference (non-modal), built from the actions themselves."""
        if self.help_dialog is None:
            self.help_dialog = help_dialog(self, self.actions_by_name.values())
        self.help_dialog.show()
        self.help_dialog.raise_()
        return self.help_dialog

    def undo_step(self, redo: bool = False) -> None:
        """Undo (redo) the last step and name it in the status bar: a re-run's small moves are easy to miss."""
        text = self.project and (self.project.redo_text if redo else self.project.undo_text)
        if text:
            self.project.redo() if redo else self.project.undo()
            self.status_text.setText(f"{'Redid' if redo else 'Undid'} {text}.")

    def show_error(self, text: str) -> None:
        """Show ``text`` in the window's message bar (no modal box) and the status bar."""
        self.message_bar.show_text(text)
        self.status_text.setText(text.splitlines()[0] if text else "")

    def _on_thresholds(self) -> None:
        if self.project is not None:
            self.edit(lambda p: p.set_settings(TransferSettings(self.min_confidence.value() / 100, self.max_fb.value())))

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            # a threshold box passes Enter on after committing its value: that Enter accepts nothing
            if not isinstance(QApplication.focusWidget(), QAbstractSpinBox):
                self.review.accept_current()  # reaches the window only when no editor took the key
        else:
            super().keyPressEvent(event)

    # ----- closing ---------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        if not self.files.maybe_save():  # saved, or discarded (autosave removed), or cancelled
            event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)

    @Slot()
    def _on_app_quit(self) -> None:
        """The application quits with this window open (e.g. its parent closed): keep the work, stop the threads."""
        if not self._stopped:
            self.files.autosave()
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the timer and both threads (idempotent): on close, and when the application quits."""
        if self._stopped:
            return
        self._stopped = True
        self.files.autosave_timer.stop()
        self.edits.nudge_pause.stop()
        if self.project is not None:
            self.project.close()
        self.transfer.stop()
        self.panes.stop()
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None


_windows: list[LabelingWindow] = []  # keeps parentless windows alive until they close


def open_labeling_window(parent=None, project_path: str | None = None, *, source_path: str | None = None,
                         target_paths=(), keypoints=(), target_keypoints=(), **options) -> LabelingWindow:
    """Open the Label Transfer window (a separate window; ``parent``: e.g. the main window).

    What it starts from (else empty):
    - ``project_path``: a project file to open;
    - ``source_path``: a new project on that source image, with ``keypoints``, a list of
      ``(name, x, y)`` in the source's original pixels (0-based, pixel centres at integers), and
      ``target_paths``, images (or folders of images) added as targets not transferred yet, and
      ``target_keypoints``, ``(target path, name, x, y)`` placed by hand on those targets.
      Bad input shows one message in the window, which stays up.

    The model follows the parent's device and weights when it has them (``device_key``, ``weights``).
    ``options`` go to :class:`LabelingWindow`. Returns the window, shown.
    """
    options.setdefault("device", getattr(parent, "device_key", None))
    options.setdefault("weights", getattr(parent, "weights", None) or None)
    window = LabelingWindow(parent=parent, **options)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    _windows.append(window)
    window.destroyed.connect(lambda *_: _windows.remove(window) if window in _windows else None)
    window.show()
    if project_path:
        window.files.open_project(project_path)
    elif source_path:
        window.files.new_from_points(source_path, keypoints, target_paths, target_keypoints)
    return window


def main(argv=None) -> int:
    """Run the window on its own: ``python -m app.labeling [project.rtnproj]``."""
    import sys
    argv = sys.argv if argv is None else argv
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("RTN Studio")  # the main app's names: the same autosave folder, so either
    app.setOrganizationName("RTN Studio")  # can recover a session the other left unsaved
    app.garbage_collector = collect_garbage_on_gui_thread()  # kept alive with the app
    open_labeling_window(project_path=argv[1] if len(argv) > 1 else None)
    return app.exec()
