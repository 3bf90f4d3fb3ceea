"""Playback of the iterations: the iteration bar (step, play, loop, speed, slider, label), its
actions, and which (possibly fractional) iteration is shown."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QStyle, QToolButton, QWidget

SECONDS_PER_ITERATION = 0.6  # playback at 1x
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
LOOP_HOLD = 0.75  # when looping, the last iteration stays this many iteration-times before the identity
FRAME_MS = 16  # ~60 fps


def iteration_name(iteration) -> str:
    """What an iteration is, for labels: its level's stride, or the semantic readout of the last field
    and the stride of the grid it is read out on (finer than the update before it)."""
    return f"semantic readout, stride {iteration.stride}" if iteration.readout else f"stride {iteration.stride}"


class Playback(QObject):
    """The shown iteration of the newest result; ``shown(t)`` asks for iteration ``t`` to be drawn."""

    shown = Signal(float)

    def __init__(self, window: QWidget):
        super().__init__(window)
        self.result = None
        self.iteration = 0.0
        self.follow = True  # jump to each new iteration as it streams in
        self.play_timer = QTimer(self, interval=FRAME_MS)
        self.play_timer.timeout.connect(self._on_play_tick)
        self.play_clock = QElapsedTimer()
        self._play_from = 0.0
        self.bar = self._build_bar(window)
        self.step_back_action = QAction("Previous iteration", window, shortcut=QKeySequence(Qt.Key.Key_Left))
        self.step_back_action.triggered.connect(lambda: self.step(-1))
        self.step_forward_action = QAction("Next iteration", window, shortcut=QKeySequence(Qt.Key.Key_Right))
        self.step_forward_action.triggered.connect(lambda: self.step(1))
        self.play_action = QAction("Play / pause", window, shortcut=QKeySequence(Qt.Key.Key_Space))
        self.play_action.triggered.connect(self.toggle_play)

    def _build_bar(self, window: QWidget) -> QWidget:
        bar = QWidget()
        layout = QHBoxLayout(bar)
        layout.setContentsMargins(0, 0, 0, 0)
        style = window.style()
        self.back_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward), "")
        self.play_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Play")
        self.forward_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward), "")
        self.back_button.setToolTip("Previous iteration (Left)")
        self.forward_button.setToolTip("Next iteration (Right)")
        self.play_button.setToolTip("Play / pause: animate from the identity to the final field (Space)")
        self.loop_button = QToolButton()
        self.loop_button.setText("Loop")
        self.loop_button.setCheckable(True)
        self.loop_button.setToolTip("Loop: play again from the identity after the last iteration")
        self.speed = QComboBox()
        self.speed.addItems([f"{speed:g}×" for speed in SPEEDS])
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.setToolTip(f"Playback speed (1× = {SECONDS_PER_ITERATION:g} s per iteration)")
        self.speed.currentIndexChanged.connect(self._on_speed)
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.play_button.clicked.connect(self.toggle_play)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(100)
        self.slider.setToolTip("Shown iteration: 0 is the identity; the label names each iteration's level, "
                               "or the semantic readout and its grid (Left / Right step). Point confidences show at the last "
                               "iteration only: they are the final match's")
        self.slider.setRange(0, 0)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setPageStep(1)
        self.slider.valueChanged.connect(self._on_slider)
        self.iteration_label = QLabel()
        # wide enough for the usual texts (while playing, while streaming), so that the slider does not jump
        self.iteration_label.setMinimumWidth(max(self.iteration_label.fontMetrics().horizontalAdvance(text) for text in (
            "Iteration 5.0 / 5 · semantic readout, stride 8", "Iteration 4 / 5 · stride 16 (4 computed)")) + 8)
        for widget in (self.back_button, self.play_button, self.forward_button, self.loop_button, self.speed):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            layout.addWidget(widget)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.iteration_label)
        return bar

    @property
    def available(self) -> int:
        """The newest iteration that can be shown (0 before any result)."""
        return self.result.last if self.result is not None else 0

    def reset(self) -> None:
        """No result: back to the identity, following the next run's iterations as they come."""
        self.result = None
        self.follow = True
        self.iteration = 0.0
        self.stop_play()
        self.slider.setRange(0, 0)
        self._update_label()

    def set_result(self, snapshot) -> None:
        """A new snapshot of the run: follow it when at the newest iteration, and show."""
        self.result = snapshot
        self.slider.setRange(0, snapshot.total_iterations)
        if self.follow:
            self.iteration = float(snapshot.last)
        self._show()

    def show_iteration(self, t: float) -> None:
        """Show (fractional) iteration ``t``, clamped to what has been computed."""
        self.iteration = float(np.clip(t, 0, self.available))
        self.follow = self.iteration >= self.available and not self.play_timer.isActive()
        self._show()

    def _show(self) -> None:
        self._update_label()
        self.shown.emit(self.iteration)

    def step(self, delta: int) -> None:
        self.stop_play()
        self.show_iteration(round(self.iteration) + delta)

    def toggle_play(self) -> None:
        if self.play_timer.isActive():
            self.stop_play()
            self.show_iteration(round(self.iteration))
            return
        if self.result is None:
            return
        self._play_from = 0.0 if self.iteration >= self.available else self.iteration
        self.play_clock.start()
        self.play_timer.start()
        self.play_button.setText("Pause")
        self.play_button.setIcon(self.play_button.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))

    def stop_play(self) -> None:
        self.play_timer.stop()
        self.play_button.setText("Play")
        self.play_button.setIcon(self.play_button.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))

    def position(self, seconds: float) -> float:
        """The iteration to show ``seconds`` after play started, at the chosen speed; when
        looping it wraps to the identity after holding the last iteration a moment."""
        t = self._play_from + seconds * SPEEDS[self.speed.currentIndex()] / SECONDS_PER_ITERATION
        if self.loop_button.isChecked() and self.available > 0:
            t %= self.available + LOOP_HOLD
        return min(t, self.available)

    def _on_play_tick(self) -> None:
        t = self.position(self.play_clock.elapsed() / 1000.0)
        if t >= self.available and not self.loop_button.isChecked():
            self.stop_play()
        self.show_iteration(t)

    def _on_speed(self) -> None:
        """A new speed goes on from the shown iteration."""
        if self.play_timer.isActive():
            self._play_from = self.iteration
            self.play_clock.start()

    def _on_slider(self, value: int) -> None:
        if value != round(self.iteration):
            self.stop_play()
            self.show_iteration(value)

    def _update_label(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(self.iteration))
        self.slider.blockSignals(False)
        if self.result is None:
            self.iteration_label.setText("Iteration – (no result yet)")
            return
        k = round(self.iteration)
        shown = f"{self.iteration:.1f}" if self.play_timer.isActive() else f"{k}"
        detail = iteration_name(self.result.iterations[k]) if k else "identity"
        pending = "" if self.result.complete else f" ({self.result.last} computed)"
        self.iteration_label.setText(f"Iteration {shown} / {self.result.total_iterations} · {detail}{pending}")
