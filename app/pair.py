"""The open image pair: choosing the files (dialogs, drops, recent pairs) and decoding them in
the image-loader thread; holds the current source and target."""
from __future__ import annotations

import json
import os

from PySide6.QtCore import QObject, QSettings, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from .workers import ImageLoader, WorkerThread

RESOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources")
SAMPLES = os.path.join(RESOURCES, "samples")
SAMPLE_PAIR = (os.path.join(SAMPLES, "cat-chelsea.png"), os.path.join(SAMPLES, "cat-pexels-20787.jpg"))
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)"
MAX_RECENT = 8


class Pair(QObject):
    """The current source and target (:class:`LoadedImage` or None) and how new ones are opened."""

    request_load = Signal(object, object)  # source path or None, target path or None
    loaded = Signal(object, object)  # the newly opened source or None, target or None (already stored)
    status = Signal(str)
    report = Signal(str, str)  # title, message of a failure

    def __init__(self, window: QWidget, settings: QSettings, show_message):
        super().__init__(window)
        self.window, self.settings, self.show_message = window, settings, show_message
        self.source = self.target = None
        self.loader = WorkerThread(ImageLoader(), "image-loader")
        self.request_load.connect(self.loader.worker.load)
        self.loader.worker.loaded.connect(self._on_loaded)
        self.loader.worker.failed.connect(self._on_failed)

    def open_images(self, source_path: str | None, target_path: str | None) -> None:
        """Decode either or both images in the loader thread; the current pair stays until they arrive."""
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
                    self.show_message("Open pair", "Select exactly two images: the source, then the target.")
                return
            self.open_images(*paths)
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
        self.status.emit("Could not open the image; the previous pair is still shown.")
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

    def stop(self) -> None:
        self.loader.stop()
