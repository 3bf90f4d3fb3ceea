"""The Label Transfer window's two image panes: images decoded off the GUI thread and cached, the
keypoints drawn over them, and the placeholder text shown when there is no image (yet)."""
from __future__ import annotations

import os
from collections import OrderedDict

from PySide6.QtCore import QObject, Signal, Slot

from rtn_core.labels.keypoints import SKIPPED

from ..views import ImageView
from ..workers import ImageLoader, WorkerThread
from .canvas import KeypointLayer

IMAGE_CACHE = 8  # decoded images kept for quick back-and-forth
NO_TARGET = "Add targets (Ctrl+T)\nand transfer (Ctrl+R)"  # two short lines: narrow panes show them whole


def show_placeholder(view: ImageView, text: str) -> None:
    """Clear ``view`` and show ``text`` in its middle."""
    view.image = None
    view.image_item.clear()
    view.placeholder.setText(text)
    view.placeholder.setVisible(True)
    view.view_box.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
    view.placeholder.setPos(0, 0)


class ImagePanes(QObject):
    """Shows an image path and its keypoints on a view; decodes images in a loader thread."""

    request_load = Signal(object, object)  # image path, None (app.workers.ImageLoader's signature)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._images: OrderedDict = OrderedDict()  # path -> LoadedImage
        self._unreadable: dict[str, str] = {}  # path -> why it could not be shown
        self._loading: list[str] = []  # requested paths, in the loader's order
        self.loader = WorkerThread(ImageLoader(), "labeling-image-loader")
        self.request_load.connect(self.loader.worker.load)
        self.loader.worker.loaded.connect(self._on_image_loaded)
        self.loader.worker.failed.connect(self._on_image_failed)

    def show(self, view: ImageView, layer: KeypointLayer, path: str | None) -> None:
        """Show ``path``'s image (loading it off the GUI thread when needed) and its keypoints."""
        if layer.drag is not None:
            return  # a drop is coming; it redraws
        project = self.window.project
        labels = project.labels
        if path is None:
            layer.show_labels(None)
            show_placeholder(view, NO_TARGET)
            return
        image = self._images.get(path)
        if image is None:
            layer.show_labels(None)
            target = labels.image(path)
            if target.status == SKIPPED:
                show_placeholder(view, f"Skipped: {target.reason}")
            elif path in self._unreadable:
                show_placeholder(view, f"Cannot show {os.path.basename(path)}: {self._unreadable[path]}")
            else:
                show_placeholder(view, f"Loading {os.path.basename(path)}…")
                self._request_image(path)
            return
        if view.image is not image:
            view.set_image(image)
        selection = project.selection
        selected = selection.names if selection.image == path else frozenset()
        layer.show_labels(labels.image(path), labels.names, labels.skeleton, selected)

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
        if self.window.project is not None:
            self.window.refresh()

    @Slot(str)
    def _on_image_failed(self, message: str) -> None:
        path = self._loading.pop(0) if self._loading else None
        if path is not None:
            self._unreadable[path] = message
            if self.window.project is not None:
                self.window.refresh()

    def stop(self) -> None:
        """Stop the loader thread."""
        self.loader.stop()
