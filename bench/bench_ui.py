"""Benchmark the app's responsiveness offscreen: click-to-marker latency and animation frame time.

    python bench/bench_ui.py [--clicks 50] [--frames 120] [--density 32]

Opens the main window on the sample pair, waits for the full match, then
- clicks the source at random pixels (apart from each other) and times each click until the target view has finished
  painting its match's marker (the click handling, then the event loop as it runs for the
  user, up to the end of that paint): target 10 ms;
- replays the iterations with interpolation at a density x density glyph grid and times each
  frame (field interpolation, path building and the target view's repaint): target 16 ms;
- drags a point's match on the target (a correction) and times from the release until the first
  frame of the re-settling field is painted (its first update: a re-settle skips the identity; the
  model re-runs on the pair's kept backbone maps in its thread): target 300 ms.
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
from PySide6.QtCore import QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.main_window import SAMPLE_PAIR, MainWindow  # noqa: E402


def wait_for_match(app: QApplication, window: MainWindow, timeout: float = 300.0) -> None:
    deadline = time.perf_counter() + timeout
    while not (window.run.result is not None and window.run.result.complete):
        if time.perf_counter() > deadline:
            raise SystemExit("the match did not finish in time")
        app.processEvents()
        time.sleep(0.005)


class PaintWatch:
    """Notes when a view has finished painting (wall clock and GUI-thread CPU clock)."""

    def __init__(self, view):
        self.finished: tuple[float, float] | None = None
        paint = view.paintEvent

        def timed_paint(event):
            paint(event)
            self.finished = (time.perf_counter(), time.thread_time())
        view.paintEvent = timed_paint


def time_until_painted(app: QApplication, watch: PaintWatch, action, timeout: float = 1.0) -> tuple[float, float]:
    """Run ``action``, then the event loop until the view has repainted, as it would for the user;
    returns (wall, CPU) seconds from the start of ``action`` to the end of that paint."""
    watch.finished = None
    started, started_cpu = time.perf_counter(), time.thread_time()
    action()
    deadline = started + timeout
    while watch.finished is None and time.perf_counter() < deadline:
        app.processEvents()
    if watch.finished is None:
        raise SystemExit("the view did not repaint")
    return watch.finished[0] - started, watch.finished[1] - started_cpu


def time_until_resettled(app: QApplication, window: MainWindow, watch: PaintWatch, step: int) -> float:
    """Drag point p1's match on the target a little further each ``step``; seconds from the release
    until the target view has painted the first snapshot of the re-run it shows, the first update's
    (then waits for its end)."""
    if not len(window.points):
        window.add_point(*(0.4 * np.array(window.pair.source.original_size)))
    view, point = window.target_view, window.points.points[0]
    start = view.mapFromScene(view.view_box.mapViewToScene(QPointF(*point.target)))
    end = start + QPointF(6 + step % 3, 4).toPoint()
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(view.viewport(), end)
    started = time.perf_counter()
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    # the release started a new run; a re-settle shows its first snapshot after the identity
    while window.run.result is None or window.overlays.result is not window.run.result:
        app.processEvents()
    watch.finished = None
    while watch.finished is None:
        app.processEvents()
    seconds = watch.finished[0] - started
    wait_for_match(app, window)
    return seconds


def click_positions(rng, count: int, width: int, height: int) -> np.ndarray:
    """``count`` random pixels, one per cell of a shuffled grid over the image, so that no click
    lands on an earlier point's marker (a click there selects that point instead of adding one)."""
    columns = int(np.ceil(np.sqrt(count * width / height)))
    rows = int(np.ceil(count / columns))
    cells = rng.permutation(rows * columns)[:count]
    jitter = rng.uniform(0.25, 0.75, size=(count, 2))
    return np.column_stack([(cells % columns + jitter[:, 0]) * width / columns - 0.5,
                            (cells // columns + jitter[:, 1]) * height / rows - 0.5])


def median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--density", type=int, default=32)
    parser.add_argument("--drags", type=int, default=10)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as folder:
        settings = QSettings(os.path.join(folder, "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(device="cpu", settings=settings, show_message=lambda title, text: print(title, text))
        window.resize(1480, 860)
        window.show()
        window.open_images(*SAMPLE_PAIR)
        wait_for_match(app, window)
        window.overlays.density.setValue(args.density)
        app.processEvents()
        watch = PaintWatch(window.target_view)

        rng = np.random.default_rng(0)
        width, height = window.pair.source.original_size
        view = window.source_view
        clicks = []
        for x, y in click_positions(rng, args.clicks, width, height):
            position = view.mapFromScene(view.view_box.mapViewToScene(QPointF(x, y)))
            clicks.append(time_until_painted(app, watch, lambda: QTest.mouseClick(
                view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, position)))
        assert len(window.points) == args.clicks, "every click should have added a point"
        window.points.clear()

        frames = [time_until_painted(app, watch, lambda t=t: window.playback.show_iteration(t))
                  for t in np.linspace(0.0, window.run.result.last, args.frames)]
        drags = [time_until_resettled(app, window, watch, step) for step in range(args.drags)]
        window.close()

    glyphs = args.density ** 2
    click_wall, click_cpu = np.array(clicks).T
    frame_wall, frame_cpu = np.array(frames).T
    print(f"click to marker drawn: median {median_ms(click_wall):.2f} ms wall, {median_ms(click_cpu):.2f} ms "
          f"GUI-thread CPU, over {args.clicks} clicks (target 10 ms)")
    print(f"animation frame at {args.density}x{args.density} = {glyphs} glyphs: median {median_ms(frame_wall):.2f} ms "
          f"wall (p90 {1000 * np.percentile(frame_wall, 90):.2f} ms), {median_ms(frame_cpu):.2f} ms GUI-thread CPU, "
          f"over {args.frames} frames (target 16 ms)")
    print(f"drag release to first re-settled frame: median {median_ms(drags):.1f} ms wall, max "
          f"{1000 * max(drags):.1f} ms, over {args.drags} drags (target 300 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
