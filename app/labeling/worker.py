"""The transfer worker: carries the source's keypoints to many targets off the GUI thread.

It follows ``app.workers``: a QObject moved to its own QThread (:class:`app.workers.WorkerThread`),
driven by queued signals, its receivers ``@Slot`` methods. It streams one fresh
:class:`ImageLabels` per target (``rtn_core.labels.transfer.iter_transfer``); the window applies them to
the Project on the GUI thread. A run stops between targets once the GUI changes
:attr:`TransferWorker.current_job`.
"""
from __future__ import annotations

import torch
from PySide6.QtCore import QObject, Signal, Slot

from rtn_core.labels.keypoints import SKIPPED, ImageLabels
from rtn_core.labels.transfer import iter_transfer, model_info

from ..workers import default_matcher, report_failure


class TransferWorker(QObject):
    """Owns the matcher (built on first use, in the worker thread) and runs transfer jobs."""

    model_loading = Signal(int)  # job id: the model is being built (slow the first time)
    result = Signal(int, object, object)  # job id, fresh ImageLabels, model info dict
    finished = Signal(int, bool)  # job id, whether it was cancelled before the last target
    failed = Signal(int, str)  # job id, message (the run stopped: bad source, model failed to load)

    def __init__(self, matcher_factory=default_matcher, device: str | None = None, weights: str | None = None):
        super().__init__()
        self._factory, self._device, self._weights = matcher_factory, device, weights
        self._matcher = None
        self._info: dict = {}
        self.current_job = 0  # written by the GUI thread; a running job stops at its next check

    @Slot(int, object, object, object, object)
    def run(self, job: int, source: ImageLabels, paths, settings, fixed=None) -> None:
        """Transfer ``source``'s keypoints to each of ``paths``, emitting one result per target;
        ``fixed``: {target path: its points fixed by hand} (``transfer.hand_fixed``), imposed."""
        if job != self.current_job:  # cancelled (or replaced) before it started
            self.finished.emit(job, True)
            return
        try:
            if self._matcher is None:
                self.model_loading.emit(job)
                self._matcher = self._factory(self._device, self._weights)
                self._info = model_info(self._matcher)
            with torch.inference_mode():  # thread-local: entered here, in the worker thread
                # an empty run checks the source (readable, has keypoints) and raises a clear error
                list(iter_transfer(self._matcher, source, [], settings))
                for path in paths:
                    if job != self.current_job:
                        self.finished.emit(job, True)
                        return
                    self.result.emit(job, self._transfer_one(source, path, settings, fixed), self._info)
        except Exception as exc:  # never let an exception escape into Qt's event loop
            self.failed.emit(job, report_failure(exc))
            return
        self.finished.emit(job, False)

    def _transfer_one(self, source: ImageLabels, path: str, settings, fixed=None) -> ImageLabels:
        """One target's result; any failure on it (not only undecodable files) skips it with the reason."""
        try:
            return next(iter_transfer(self._matcher, source, [path], settings, fixed))
        except Exception as exc:
            return ImageLabels(path, status=SKIPPED, reason=report_failure(exc))
