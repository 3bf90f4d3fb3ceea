"""The open image pair: choosing the files (dialogs with source/target roles, drops, recent
pairs) and decoding them in the image-loader thread; holds the current source and target."""
from __future__ import annotations

import json
import os

from PySide6.QtCore import QObject, QSettings, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLabel, QMenu, QPushButton,
                               QWidget)

from .workers import ImageLoader, WorkerThread

RESOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources")
SAMPLES = os.path.join(RESOURCES, "samples")
SAMPLE_PAIR = (os.path.join(SAMPLES, "cat-chelsea.png"), os.path.join(SAMPLES, "cat-pexels-20787.jpg"))
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)"
MAX_RECENT = 8
HOW_TO_OPEN = "Open a pair with File > Open Pair… (Ctrl+O), or drop images on the two panes."


class Pair(QObject):
    """The current source and target (:class:`LoadedImage` or None) and how new ones are opened."""

    request_load = Signal(object, object)  # source path or None, target path or None
    loaded = Signal(object, object)  # the newly opened source or None, target or None (already stored)
    status = Signal(str)
    report = Signal(str, str)  # title, message of a failure

    def __init__(self, window: QWidget, settings: QSettings, show_message, may_replace_source=lambda: True,
                 choose_roles=None):
        super().__init__(window)
        self.window, self.settings, self.show_message = window, settings, show_message
        self.may_replace_source = may_replace_source  # asked before a new source is opened
        self.choose_roles = choose_roles or (lambda paths: PairRoles(paths, window).choose())
        self.source = self.target = None
        self.loader = WorkerThread(ImageLoader(), "image-loader")
        self.request_load.connect(self.loader.worker.load)
        self.loader.worker.loaded.connect(self._on_loaded)
        self.loader.worker.failed.connect(self._on_failed)

    def open_images(self, source_path: str | None, target_path: str | None) -> None:
        """Decode either or both images in the loader thread; the current pair stays until they
        arrive. A new source is opened only if ``may_replace_source()`` agrees."""
        if source_path is not None and not self.may_replace_source():
            return
        names = " and ".join(os.path.basename(p) for p in (source_path, target_path) if p)
        self.status.emit(f"Opening {names}…")
        self.request_load.emit(source_path, target_path)

    def open_dialog(self, which: str) -> None:
        """Ask for the 'source', the 'target' or the 'pair' (two files) and open them."""
        folder = self.settings.value("last_folder", SAMPLES)
        if which == "pair":
            paths, _ = QFileDialog.getOpenFileNames(self.window, "Open source and target (select two)", folder,
                                                    IMAGE_FILTER)
            if len(paths) != 2:
                if paths:
                    self.show_message("Open pair", "Select exactly two images: the source and the target.")
                return
            roles = self.choose_roles(paths)
            if roles is None:
                return
            self.open_images(*roles)
        else:
            path, _ = QFileDialog.getOpenFileName(self.window, f"Open {which} image", folder, IMAGE_FILTER)
            if not path:
                return
            self.open_images(path if which == "source" else None, path if which == "target" else None)
        self.settings.setValue("last_folder", os.path.dirname(paths[0] if which == "pair" else path))

    @Slot(object, object)
    def _on_loaded(self, source, target) -> None:
        if source is not None:
            self.source = source
        if target is not None:
            self.target = target
        if self.source is not None and self.target is not None:
            self._remember(self.source.path, self.target.path)
        self.loaded.emit(source, target)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.source is not None and self.target is not None:
            self.status.emit(f"Could not open the image ({message}); the previous pair is still shown.")
        else:
            self.status.emit(f"Could not open the image ({message}). {HOW_TO_OPEN}")
        self.report.emit("Cannot open image", message)

    def _remember(self, source_path: str, target_path: str) -> None:
        pair = [os.path.abspath(source_path), os.path.abspath(target_path)]
        pairs = [p for p in self.recent_pairs() if p != pair]
        self.settings.setValue("recent_pairs", json.dumps([pair] + pairs[:MAX_RECENT - 1]))

    def recent_pairs(self) -> list[list[str]]:
        try:
            pairs = json.loads(self.settings.value("recent_pairs", "[]"))
        except (TypeError, ValueError):
            return []
        return [p for p in pairs if isinstance(p, list) and len(p) == 2]

    def fill_recent_menu(self, menu: QMenu) -> None:
        """One entry per remembered pair, newest first."""
        menu.clear()
        for source_path, target_path in self.recent_pairs():
            label = f"{os.path.basename(source_path)}  →  {os.path.basename(target_path)}"
            menu.addAction(QAction(label, menu, triggered=lambda checked=False, s=source_path,
                                   t=target_path: self.open_images(s, t)))
        menu.setEnabled(bool(menu.actions()))

    def stop(self, wait: bool = True) -> None:
        self.loader.stop(wait)


class PairRoles(QDialog):
    """Says which of two chosen files is the source and which the target; Swap exchanges them."""

    def __init__(self, paths, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open pair")
        self.paths = list(paths)
        self.source_label, self.target_label = QLabel(), QLabel()
        swap = QPushButton("Swap source and target")
        swap.clicked.connect(self.swap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QFormLayout(self)
        layout.addRow("Source (points are clicked here):", self.source_label)
        layout.addRow("Target (matches appear here):", self.target_label)
        layout.addRow(swap)
        layout.addRow(buttons)
        self._show()

    def swap(self) -> None:
        self.paths.reverse()
        self._show()

    def _show(self) -> None:
        for label, path in zip((self.source_label, self.target_label), self.paths):
            label.setText(os.path.basename(path))
            label.setToolTip(path)

    def choose(self) -> tuple[str, str] | None:
        """Ask (modal); (source, target) or None when cancelled."""
        return tuple(self.paths) if self.exec() == QDialog.DialogCode.Accepted else None
