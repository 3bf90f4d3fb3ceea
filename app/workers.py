"""Work that must not block the GUI thread: decoding images, running the matcher, writing the
dense flow.

Each worker is a QObject moved to its own QThread; the GUI talks to it only through queued
signals, and its receivers are ``@Slot`` methods (see DESIGN.md's known traps). A running
match is cancelled by changing :attr:`MatchWorker.current_job`; the worker checks it between
iterations.
"""
from __future__ import annotations

import atexit
import sys
import time
import traceback

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, Signal, Slot
from pyqtgraph.util.garbage_collector import GarbageCollector

from rtn_core.device import cuda_status
from rtn_core.images import ImageError, load_image

from .export import write_dense_flow

MODEL_JOB = 0  # the job id under which model loading reports its errors
_abandoned: list["WorkerThread"] = []  # threads left running by stop(wait=False), kept alive until they end


def default_matcher(device: str | None, weights: str | None):
    """Build the shipped matcher; imported lazily so the window opens before torch models load."""
    from rtn_core.matcher import Matcher
    return Matcher(weights=weights, device=device)


def describe_error(exc: BaseException) -> str:
    """One sentence for the user; out-of-memory gets a hint instead of a traceback."""
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return "Out of memory while matching: try the CPU device or smaller images."
    if isinstance(exc, (ImageError, ValueError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def report_failure(exc: BaseException) -> str:
    """Log a worker's failure on the terminal and return the user's message: expected failures (a
    bad file, no CUDA, out of memory) get one line, anything else (a bug) its traceback."""
    message = describe_error(exc)
    expected = isinstance(exc, (ValueError, OSError, MemoryError, torch.OutOfMemoryError)) or (
        isinstance(exc, RuntimeError) and "cuda" in str(exc).lower())
    if expected:
        print(f"RTN Studio: {message}", file=sys.stderr)
    else:
        traceback.print_exception(exc)
    return message


class WorkerThread:
    """A QObject worker living in its own QThread, stopped cleanly by :meth:`stop`."""

    def __init__(self, worker: QObject, name: str):
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self, wait: bool = True) -> None:
        """Ask the thread's event loop to end after its current job, and wait for it; with
        ``wait=False`` return at once and keep this object alive until the thread has ended
        (a QThread destroyed while running aborts the process): see :func:`finish_abandoned`."""
        self.thread.quit()
        if wait:
            self.thread.wait()
            return
        _abandoned[:] = [t for t in _abandoned if t.thread.isRunning()]
        if self.thread.isRunning():
            _abandoned.append(self)


def finish_abandoned() -> None:
    """Wait for the threads that ``stop(wait=False)`` left running (e.g. a model still loading
    when the window closed); call before the QApplication goes (and, failing that, at exit)."""
    while _abandoned:
        _abandoned.pop().thread.wait()


atexit.register(finish_abandoned)


def collect_garbage_on_gui_thread() -> GarbageCollector:
    """Turn Python's automatic cyclic garbage collection off and collect from a GUI-thread timer
    instead (pyqtgraph's GarbageCollector): left automatic, a collection runs in whichever thread
    happens to allocate, e.g. a worker in the middle of a match, and Qt objects freed there crash
    or hang the process. Keep the returned object alive while the app runs."""
    return GarbageCollector(interval=1.0)


class ImageLoader(QObject):
    """Decodes (and, for huge photos, downsizes) images off the GUI thread."""

    loaded = Signal(object, object)  # source LoadedImage or None, target LoadedImage or None
    failed = Signal(str)

    @Slot(object, object)
    def load(self, source_path, target_path) -> None:
        """Load either or both images; a failure of either reports once and loads neither."""
        try:
            images = [None if path is None else load_image(path) for path in (source_path, target_path)]
        except Exception as exc:  # a bad file must become a message, never a crash
            self.failed.emit(describe_error(exc))
            return
        self.loaded.emit(*images)


class FlowExporter(QObject):
    """Writes the dense flow: for a 48-megapixel source that is 384 MB and seconds of work."""

    written = Signal(str)  # path
    failed = Signal(str)  # message

    @Slot(str, object, int)
    def write(self, path: str, result, iteration: int) -> None:
        try:
            write_dense_flow(path, result, iteration)
        except Exception as exc:  # a full disk or a bad folder must become a message, never a crash
            self.failed.emit(describe_error(exc))
            return
        self.written.emit(path)


class MatchWorker(QObject):
    """Owns the matcher in the worker thread and streams each iteration's snapshot back."""

    model_ready = Signal(str, float)  # device the model now runs on, seconds it took to load
    started = Signal(int)  # job id, when the worker begins it (model loading may come first)
    progress = Signal(int, object)  # job id, CorrespondenceResult snapshot
    finished = Signal(int, float)  # job id, seconds the match took, after its last iteration
    failed = Signal(int, str)  # job id (MODEL_JOB for model loading), message

    def __init__(self, matcher_factory=default_matcher):
        super().__init__()
        self._factory = matcher_factory
        self._matcher = None
        self._pair, self._pair_key = None, None  # the last pair's prepared images, and whose they are
        self.current_job = MODEL_JOB  # written by the GUI thread; any other job stops at its next check

    @Slot(str, str)
    def load_model(self, device: str, weights: str) -> None:
        """(Re)build the matcher on ``device`` ('auto', 'cpu', 'cuda') and warm it up once."""
        self._matcher = None
        started = time.perf_counter()
        try:
            matcher = self._factory(None if device == "auto" else device, weights or None)
            warm_up = getattr(matcher, "warm_up", None)
            if warm_up is not None:
                warm_up()
            else:
                blank = np.zeros((32, 32, 3), np.uint8)
                matcher.match(blank, blank)
        except Exception as exc:
            self.failed.emit(MODEL_JOB, f"Cannot load the model: {describe_error(exc)}")
            return
        self._matcher = matcher
        self.model_ready.emit(str(matcher.device), time.perf_counter() - started)

    @Slot(int, object, object, object)
    def run(self, job: int, source, target, fixed=()) -> None:
        """Match one pair with the ``fixed`` corrections imposed, emitting a snapshot per iteration
        until done or cancelled; the pair's backbone maps are kept for the next run of the same pair."""
        if job != self.current_job:
            return
        if self._matcher is None:
            self.failed.emit(job, "The model is not loaded.")
            return
        self.started.emit(job)
        started = time.perf_counter()
        try:
            with torch.inference_mode():  # thread-local: entered here, in the worker thread
                stream = self._matcher.stream(*self._prepared(source, target), fixed=fixed)
                try:
                    for snapshot in stream:
                        if job != self.current_job:
                            return
                        self.progress.emit(job, snapshot)
                finally:
                    stream.close()
        except Exception as exc:
            self.failed.emit(job, report_failure(exc))
            return
        self.finished.emit(job, time.perf_counter() - started)

    def _prepared(self, source, target) -> tuple:
        """The pair ready to match: its backbone maps are computed once per pair of images and model."""
        prepare = getattr(self._matcher, "prepare", None)
        if prepare is None:
            return source, target
        key = (id(self._matcher), id(source), id(target))
        if self._pair_key != key:
            self._pair, self._pair_key = (prepare(source), prepare(target)), key
        return self._pair


def device_choices() -> list[tuple[str, str, bool]]:
    """(device key, menu label, enabled) for the device menu, with why CUDA is or is not usable."""
    cuda_ok, reason = cuda_status()
    return [("auto", "Automatic (CUDA when available)", True),
            ("cpu", "CPU", True),
            ("cuda", f"CUDA: {reason}", cuda_ok)]
