"""The export actions: the save dialogs, points as CSV/JSON, the dense flow in its own writer
thread, and the window as PNG; failures become one message."""
from __future__ import annotations

import os

from PySide6.QtCore import QBuffer, QIODevice, QObject, QSettings, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QWidget

from rtn_core.atomic import write_atomic

from . import export
from .workers import FlowExporter, WorkerThread

TITLES = {"csv": ("Export points as CSV", "CSV (*.csv)"), "json": ("Export points as JSON", "JSON (*.json)"),
          "npy": ("Export dense flow", "NumPy array (*.npy)"), "png": ("Save window as PNG", "PNG (*.png)")}
SUFFIXES = {"csv": "points", "json": "points", "npy": "flow", "png": "window"}


class ExportActions(QObject):
    """Writes what the window shows: its pair, result, shown iteration and points."""

    request_flow_export = Signal(str, object, int)  # path, CorrespondenceResult, iteration
    status = Signal(str)

    def __init__(self, window: QWidget, settings: QSettings, show_message, points, pair, run, playback):
        super().__init__(window)
        self.window, self.settings, self.show_message = window, settings, show_message
        self.points, self.pair, self.run, self.playback = points, pair, run, playback
        self.flow_exporter = WorkerThread(FlowExporter(), "flow-export")
        self.request_flow_export.connect(self.flow_exporter.worker.write)
        self.flow_exporter.worker.written.connect(self._on_flow_written)
        self.flow_exporter.worker.failed.connect(self._on_flow_failed)

    def dialog(self, kind: str) -> None:
        """Ask where to write ``kind`` ('csv', 'json', 'npy' or 'png'), then write it."""
        title, file_filter = TITLES[kind]
        folder = self.settings.value("export_folder", os.path.expanduser("~"))
        path, _ = QFileDialog.getSaveFileName(self.window, title, os.path.join(folder, self.default_name(kind)),
                                              file_filter)
        if path:
            self.settings.setValue("export_folder", os.path.dirname(path))
            self.export(kind, path)

    def default_name(self, kind: str) -> str:
        """A file name that says which pair it belongs to, e.g. 'cat-a__cat-b_points.csv'."""
        images = [image for image in (self.pair.source, self.pair.target) if image is not None]
        stems = "__".join(os.path.splitext(os.path.basename(image.path))[0] for image in images) or "rtn-studio"
        return f"{stems}_{SUFFIXES[kind]}.{kind}"

    def export(self, kind: str, path: str) -> bool:
        """Write the points (csv/json), the dense flow (npy, in the background) or the window
        (png) to ``path``; False (and a message) when it cannot."""
        result, iteration = self.run.result, round(self.playback.iteration)
        try:
            if kind == "png":
                write_atomic(path, self.png_bytes())
            elif result is None:
                raise ValueError("nothing to export yet: wait for the match to finish")
            elif kind == "npy":
                self.request_flow_export.emit(path, result, iteration)
                self.status.emit(f"Writing the dense flow to {path}…")
                return True
            else:
                writer = export.write_points_csv if kind == "csv" else export.write_points_json
                writer(path, self.points, self.pair.source, self.pair.target, iteration)
        except (OSError, ValueError) as exc:
            self.show_message("Export failed", str(exc))
            return False
        self.status.emit(f"Saved {path}")
        return True

    def png_bytes(self) -> bytes:
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        self.window.grab().save(buffer, "PNG")
        return bytes(buffer.data())

    @Slot(str)
    def _on_flow_written(self, path: str) -> None:
        self.status.emit(f"Saved {path}")

    @Slot(str)
    def _on_flow_failed(self, message: str) -> None:
        self.status.emit("The dense flow was not saved.")
        self.show_message("Export failed", message)

    def stop(self, wait: bool = True) -> None:
        """End the writer thread once a flow being written is done (see :meth:`WorkerThread.stop`)."""
        self.flow_exporter.stop(wait)
