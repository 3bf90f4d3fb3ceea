"""Benchmark the app's responsiveness offscreen: click-to-marker latency and animation frame time.

    python bench/bench_ui.py [--clicks 50] [--frames 120] [--density 32]

Opens the main window on the sample pair, waits for the full match, then
- clicks the source at random pixels and times each click until its marker is painted
  on the target (the click handling, then the event loop until the target view has repainted,
  as it would for the user): target 10 ms;
- replays the iterations with interpolation at a density x density glyph grid and times each
  frame (field interpolation, path building and the target view's repaint): target 16 ms.
Both are printed as wall time and as the GUI thread's CPU time; the second is the fairer figure
on a machine whose cores other jobs are using.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QObject, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.main_window import SAMPLE_PAIR, MainWindow  # noqa: E402


def wait_for_match(app: QApplication, window: MainWindow, timeout: float = 300.0) -> None:
    deadline = time.perf_counter() + timeout
    while not (window.result is not None and window.result.complete):
        if time.perf_counter() > deadline:
            raise SystemExit("the match did not finish in time")
        app.processEvents()
        time.sleep(0.005)


class PaintWatch(QObject):
    """Counts paint events of the watched widgets."""

    def __init__(self, widgets):
        super().__init__()
        self.painted = 0
        for widget in widgets:
            widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.painted += 1
        return False


def until_painted(app: QApplication, watch: PaintWatch, timeout: float = 1.0) -> None:
    """Run the event loop until the pending repaint has happened, as it would for the user."""
    watch.painted = 0
    deadline = time.perf_counter() + timeout
    while not watch.painted and time.perf_counter() < deadline:
        app.processEvents()


def median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--density", type=int, default=32)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as folder:
        settings = QSettings(os.path.join(folder, "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(device="cpu", settings=settings, show_message=lambda title, text: print(title, text))
        window.resize(1480, 860)
        window.show()
        window.open_images(*SAMPLE_PAIR)
        wait_for_match(app, window)
        window.density.setValue(args.density)
        app.processEvents()
        watch = PaintWatch([window.target_view.viewport()])

        rng = np.random.default_rng(0)
        width, height = window.source.original_size
        view = window.source_view
        clicks, click_cpu = [], []
        for x, y in rng.uniform([0, 0], [width - 1, height - 1], size=(args.clicks, 2)):
            position = view.mapFromScene(view.view_box.mapViewToScene(QPointF(x, y)))
            started, started_cpu = time.perf_counter(), time.thread_time()
            QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, position)
            until_painted(app, watch)
            clicks.append(time.perf_counter() - started)
            click_cpu.append(time.thread_time() - started_cpu)
        assert len(window.points) == args.clicks, "every click should have added a point"
        window.points.clear()

        frames, frame_cpu = [], []
        last = window.result.last
        for t in np.linspace(0.0, last, args.frames):
            started, started_cpu = time.perf_counter(), time.thread_time()
            window.show_iteration(t)
            until_painted(app, watch)
            frames.append(time.perf_counter() - started)
            frame_cpu.append(time.thread_time() - started_cpu)
        window.close()

    glyphs = args.density ** 2
    print(f"click to marker drawn: median {median_ms(clicks):.2f} ms wall, {median_ms(click_cpu):.2f} ms "
          f"GUI-thread CPU, over {args.clicks} clicks (target 10 ms)")
    print(f"animation frame at {args.density}x{args.density} = {glyphs} glyphs: median {median_ms(frames):.2f} ms "
          f"wall (p90 {1000 * np.percentile(frames, 90):.2f} ms), {median_ms(frame_cpu):.2f} ms GUI-thread CPU, "
          f"over {args.frames} frames (target 16 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
