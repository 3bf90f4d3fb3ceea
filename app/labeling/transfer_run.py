"""The Label Transfer window's transfer run: start, cancel, results as they arrive, progress.

Owns the transfer worker and its thread (``app.labeling.worker``). Each run is a numbered job; results of
an older job (cancelled, or for a project no longer shown) are ignored. Results go into the window's
Project as they arrive, one undo step each.
"""
from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from rtn_core.labels.keypoints import ABSENT, PENDING, SKIPPED, ImageLabels
from rtn_core.labels.transfer import hand_fixed, summary

from ..scores import moved_text
from ..workers import WorkerThread
from .worker import TransferWorker


def resettled_text(before: ImageLabels, after: ImageLabels) -> str:
    """The status line after a correction's re-run: how many of the other points moved, how far
    (:func:`moved_text`), and the flags left."""
    old = {p.name: p for p in before.points}
    moves = [float(np.hypot(p.x - old[p.name].x, p.y - old[p.name].y)) for p in after.points
             if not p.manual and p.name in old]
    fixed = sum(p.manual and p.visibility != ABSENT for p in after.points)
    return (f"Re-ran {os.path.basename(after.image)} with {fixed} point(s) fixed by hand: {moved_text(moves)}; "
            f"{len(after.flagged)} flagged point(s) left.")


class TransferRun(QObject):
    """Runs the window's transfers in a worker thread and shows their progress in its status bar."""

    request_transfer = Signal(int, object, object, object, object)  # job, source, paths, settings, hand fixes

    def __init__(self, window, matcher_factory, device: str | None, weights: str | None):
        super().__init__(window)
        self.window = window
        self.job = 0
        self.running = False
        self._amend = (0, None)  # (job, labels it was started on) of a re-run after a correction
        self._corrected_meanwhile: list[str] = []  # targets corrected while a transfer ran: re-run after it
        self.worker = TransferWorker(matcher_factory, None if device in (None, "auto") else device, weights or None)
        self.worker_thread = WorkerThread(self.worker, "label-transfer")
        self.request_transfer.connect(self.worker.run)
        self.worker.model_loading.connect(self._on_model_loading)
        self.worker.result.connect(self._on_result)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)

    def start(self, paths=None) -> None:
        """Transfer the source's keypoints to ``paths`` (default: the targets not run yet) in the worker."""
        window = self.window
        if window.project is None or self.running:
            return
        labels = window.project.labels
        paths = list(paths) if paths is not None else [t.image for t in labels.targets if t.status == PENDING]
        if not paths:
            window.show_error("Every target has been transferred: Targets > Transfer Again to Unreviewed Targets "
                              "(Ctrl+Alt+R) runs them again; add new ones with Ctrl+T." if labels.targets else
                              "No targets to transfer to: add target images first (Ctrl+T).")
            return
        self.job += 1
        self.running = True
        window.message_bar.hide()
        self.worker.current_job = self.job
        window.progress.setRange(0, len(paths))
        window.progress.setValue(0)
        window.progress.show()
        window.cancel_button.setEnabled(True)
        window.cancel_button.show()
        window.actions_by_name["cancel"].setEnabled(True)
        window.status_text.setText(f"Transferring {len(labels.source.points)} keypoints to {len(paths)} target(s)…")
        self.request_transfer.emit(self.job, labels.source, paths, labels.settings, hand_fixed(labels))

    def resettle(self, path: str) -> None:
        """Re-run target ``path`` right after a correction, its fixed points imposed; the result is
        folded into the correction's undo step unless the labels changed meanwhile. It supersedes the
        re-run of an earlier correction still running, whose result would be stale; during a transfer
        it waits for its end (:meth:`_on_finished`)."""
        if self.window.project is None:
            return
        if self.running and self._amend[0] == self.job:
            self.abandon()
        elif self.running:  # a transfer is running: it imposes the fixes it started with, so re-run after it
            if path not in self._corrected_meanwhile:
                self._corrected_meanwhile.append(path)
            self.window.status_text.setText(f"{os.path.basename(path)} re-runs with its corrections when the "
                                            "transfer ends…")
            return
        self.start([path])
        self._amend = (self.job, self.window.project.labels)
        self.window.status_text.setText(f"Re-running {os.path.basename(path)} with the points fixed by hand…")

    def start_unreviewed(self) -> None:
        """Transfer again to every target not accepted yet (hand corrections are kept)."""
        if self.window.project is not None:
            self.start([t.image for t in self.window.project.labels.targets if not t.reviewed])

    def start_current(self) -> None:
        """Transfer again to the target shown."""
        if self.window.review.current:
            self.start([self.window.review.current])

    def cancel(self) -> None:
        """Stop after the target being computed; results already made are kept."""
        if self.running:
            self.worker.current_job = -1
            self.window.cancel_button.setEnabled(False)
            self.window.actions_by_name["cancel"].setEnabled(False)
            self.window.status_text.setText("Cancelling after the current target…")

    def abandon(self) -> None:
        """Forget the run in progress (another project is shown): its remaining results are ignored."""
        self._corrected_meanwhile = []
        if self.running:
            self.worker.current_job = -1
            self.job += 1
            self._end()

    def stop(self) -> None:
        """Stop the worker thread (waits for the target being computed); nothing of it is applied after."""
        self.job += 1  # results still queued for this window are ignored
        self.worker.current_job = -1
        self.worker_thread.stop()

    @Slot(int)
    def _on_model_loading(self, job: int) -> None:
        if job == self.job:
            self.window.status_text.setText("Loading the model (first transfer only)…")

    @Slot(int, object, object)
    def _on_result(self, job: int, fresh: ImageLabels, info) -> None:
        window = self.window
        if job != self.job or window.project is None:
            return
        before = window.project.labels
        amend = self._amend[0] == job and self._amend[1] is before
        window.project.apply_transfers([fresh], info, amend)
        window.progress.setValue(window.progress.value() + 1)
        path = fresh.image
        if self._amend[0] == job and fresh.status != SKIPPED and path in {t.image for t in before.targets}:
            window.status_text.setText(resettled_text(before.image(path), window.project.labels.image(path)))
        else:
            window.status_text.setText(f"Transferred {os.path.basename(path)}"
                                       + (f" (skipped: {fresh.reason})" if fresh.status == SKIPPED else ""))

    @Slot(int, bool)
    def _on_finished(self, job: int, cancelled: bool) -> None:
        if job != self.job:
            return
        window = self.window
        self._end()
        if job != self._amend[0]:  # a correction's re-run keeps the line saying what it changed
            done = summary(window.project.labels).splitlines()[0].capitalize()
            window.status_text.setText(f"Transfer {'cancelled' if cancelled else 'finished'}: "
                                       f"{window.progress.value()} of {window.progress.maximum()} target(s) "
                                       f"processed. {done}.")
        window.files.autosave()
        targets = {t.image for t in window.project.labels.targets}
        corrected = [path for path in self._corrected_meanwhile if path in targets]
        self._corrected_meanwhile = []
        if corrected:
            self.start(corrected)
            window.status_text.setText(f"Re-running {len(corrected)} target(s) corrected during the transfer…")

    @Slot(int, str)
    def _on_failed(self, job: int, message: str) -> None:
        if job != self.job:
            return
        self._end()
        self.window.show_error(f"Transfer stopped: {message}")
        self.window.files.autosave()

    def _end(self) -> None:
        self.running = False
        self.window.progress.hide()
        self.window.cancel_button.hide()
        self.window.actions_by_name["cancel"].setEnabled(False)
