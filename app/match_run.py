"""The match run: loading the model on the chosen device, starting and cancelling a pair's
match in the matcher thread, and its streamed progress (status, progress bar, device label)."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QLabel, QMenu, QProgressBar, QWidget

from .workers import MODEL_JOB, MatchWorker, WorkerThread, default_matcher, device_choices


class MatchRun(QObject):
    """The model and the current job; ``result`` is the newest snapshot of the current pair."""

    request_model = Signal(str, str)  # device key, weights path ("" for the default)
    request_match = Signal(int, object, object, object)  # job id, source, target, fixed corrections
    progressed = Signal(object)  # a new snapshot of the current job
    done = Signal()  # the current job's last iteration is in
    status = Signal(str)
    report = Signal(str, str)  # title, message of a failure

    def __init__(self, window: QWidget, matcher_factory=default_matcher, device: str = "auto", weights: str = "",
                 hint=lambda: ""):
        super().__init__(window)
        self.window = window
        self.hint = hint  # () -> what to tell the user to do next, at the end of a finished match's message
        self.note = ""  # what started the current job (e.g. 'Undid fix p1.'): said before its messages
        self.device_key, self.weights = device, weights
        self.model_device = ""  # set once the model is ready
        self.model_failed = False
        self.result = None
        self._job = MODEL_JOB
        self.load_seconds: float | None = None  # how long the model took to load, until a match reports it
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(True)
        self.device_label = QLabel("model: loading…")
        self.device_actions: dict[str, QAction] = {}
        self.device_info = QAction("Running on: loading…", window, enabled=False)

        self.matcher = WorkerThread(MatchWorker(matcher_factory), "matcher")
        self.request_model.connect(self.matcher.worker.load_model)
        self.request_match.connect(self.matcher.worker.run)
        self.matcher.worker.model_ready.connect(self._on_model_ready)
        self.matcher.worker.started.connect(self._on_started)
        self.matcher.worker.progress.connect(self._on_progress)
        self.matcher.worker.finished.connect(self._on_finished)
        self.matcher.worker.failed.connect(self._on_failed)
        self._load_model()

    def fill_device_menu(self, menu: QMenu, choose) -> None:
        """One checkable entry per device (``choose(key)`` on a pick) and the device in use."""
        group = QActionGroup(self.window)
        for key, label, enabled in device_choices():
            action = QAction(label, self.window, checkable=True, enabled=enabled, checked=key == self.device_key)
            action.triggered.connect(lambda checked=False, k=key: choose(k))
            group.addAction(action)
            menu.addAction(action)
            self.device_actions[key] = action
        menu.addSeparator()
        menu.addAction(self.device_info)

    def _load_model(self) -> None:
        self.model_device = ""
        self.model_failed = False
        self.device_label.setText(f"model: loading ({self.device_key})…")
        self.request_model.emit(self.device_key, self.weights)

    def set_device(self, key: str) -> bool:
        """Switch device: cancels the running job and reloads the model there; False if unchanged."""
        if key == self.device_key:
            return False
        self.device_key = key
        self.cancel()
        self._load_model()
        return True

    def cancel(self) -> None:
        """The running job stops at its next iteration."""
        self._job += 1
        self.matcher.worker.current_job = self._job

    def start(self, source, target, fixed=()) -> None:
        """Match the pair from scratch with ``fixed`` corrections ((source, target) pixels) imposed;
        any running job stops at its next iteration."""
        self.cancel()
        self.result = None
        self.note = ""
        self.progress.setRange(0, 0)  # busy until the first iteration says how many there are
        if self.model_failed:
            self.progress.setRange(0, 1)
            self.status.emit("No model is loaded: choose a device in the Device menu to try again.")
            return
        self.status.emit("Matching…" if self.model_device else "Loading the model, then matching…")
        self.request_match.emit(self._job, source, target, list(fixed))

    @Slot(str, float)
    def _on_model_ready(self, device: str, seconds: float) -> None:
        self.model_device, self.load_seconds = device, seconds
        self.device_label.setText(f"model: {device}")
        self.device_info.setText(f"Running on: {device}")

    @Slot(int)
    def _on_started(self, job: int) -> None:
        if job == self._job:
            self._say(f"Matching on {self.model_device}…")

    @Slot(int, object)
    def _on_progress(self, job: int, snapshot) -> None:
        if job != self._job:
            return
        self.result = snapshot
        total = snapshot.total_iterations
        self.progress.setRange(0, total)
        self.progress.setValue(snapshot.last)
        self.progress.setFormat(f"%v / {total}")
        self._say(f"Matching on {snapshot.device}: iteration {snapshot.last} of {total}…")
        self.progressed.emit(snapshot)

    @Slot(int, float)
    def _on_finished(self, job: int, seconds: float) -> None:
        if job != self._job:
            return
        loaded = "" if self.load_seconds is None else f" (model loaded in {self.load_seconds:.2f} s)"
        self.load_seconds = None  # said once, after the first match
        total = self.result.total_iterations
        readout = ", the last a semantic readout" if self.result.iterations[-1].readout else ""
        self._say(f"Matched in {seconds:.2f} s on {self.result.device}{loaded}: "
                  f"{total} iteration{'' if total == 1 else 's'}{readout}. {self.hint()}")
        self.done.emit()

    def _say(self, text: str) -> None:
        """A status message of the current job, after the note of what started it (so it stays visible)."""
        self.status.emit(f"{self.note} {text}".strip())

    @Slot(int, str)
    def _on_failed(self, job: int, message: str) -> None:
        if job not in (MODEL_JOB, self._job):
            return
        self.progress.setRange(0, 1)
        if job != MODEL_JOB and self.model_failed:
            return  # the model's own failure has been reported; the status bar keeps saying why
        self.status.emit(message)
        if job == MODEL_JOB:
            self.model_failed = True
            self.device_label.setText("model: failed")
            self.device_info.setText("Running on: none (the model failed to load; choose a device)")
        self.report.emit("Matching failed", message)

    def stop(self, wait: bool = True) -> None:
        """Cancel the running job and end the matcher thread (see :meth:`WorkerThread.stop`)."""
        self.cancel()
        self.matcher.stop(wait)
