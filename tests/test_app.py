"""The desktop app, offscreen: loading, matching, click-to-match, iterations, table, export, errors."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2
import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, QRectF, QSettings, QSizeF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog, QPushButton

from app.main_window import SAMPLE_PAIR, MainWindow
from app.points_table import COLUMNS
from app.scores import NO_SCORE, moved_text, score_text
from app.views import CIRCLE, DIAMOND
from rtn_core.matcher import Matcher
from rtn_core.result import CorrespondenceResult, Iteration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT_MS = 60_000  # a generous ceiling on 2 busy CPU cores; a match normally takes about a second


@pytest.fixture(scope="module")
def shared_matcher():
    """One model for the whole module: each window still loads it through its worker thread."""
    return Matcher(weights="", device="cpu")


class TurningMatcher:
    """A stand-in matcher whose field visibly changes each iteration: iteration k turns every
    local affine by 4k degrees and shifts matches by (0.03k, -0.02k) normalised units.
    ``delay`` seconds pass before each iteration, to catch a run in progress; with ``readout`` the
    last iteration is the semantic readout, on a finer grid (16 x 16, stride 8) than the updates (8 x 8, stride 16)."""

    device = "cpu"
    iterations = 5

    def __init__(self, delay: float = 0.0, readout: bool = False):
        self.delay = delay
        self.readout = readout

    def warm_up(self) -> None:
        pass

    def stream(self, source, target, fixed=()):  # fixes are not imposed: this field is made up
        result = CorrespondenceResult(source.original_size, target.original_size,
                                      total_iterations=self.iterations)
        for k in range(self.iterations + 1):
            time.sleep(self.delay)
            angle = np.radians(4.0 * k)
            field = torch.zeros(6, 8, 8)
            field[:4] = torch.tensor([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)])[:, None, None]
            field[4], field[5] = 0.03 * k, -0.02 * k
            readout = self.readout and k == self.iterations
            stride = 16 if k < 2 or self.readout else 8  # a run with a readout updates at stride 16 only...
            if readout:  # ...and reads out on a finer grid, as the shipped model does
                field, stride = torch.nn.functional.interpolate(field[None], size=(16, 16))[0], 8
            step = Iteration(field, torch.full(field.shape[1:], 0.1 * k), stride, readout)
            result = CorrespondenceResult(**{**result.__dict__, "iterations": result.iterations + [step]})
            yield result


@pytest.fixture
def messages():
    return []


@pytest.fixture
def questions():
    """Questions the window asked; the answer is the list's ``answer`` attribute (yes by default)."""
    class Questions(list):
        answer = True
    return Questions()


@pytest.fixture
def make_window(qtbot, tmp_path, shared_matcher, messages, questions):
    """Factory for a shown window with isolated settings and recorded (non-modal) messages."""
    def make(matcher_factory=lambda device, weights: shared_matcher) -> MainWindow:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(device="cpu", matcher_factory=matcher_factory, settings=settings,
                            show_message=lambda title, text: messages.append((title, text)),
                            ask=lambda title, text: questions.append((title, text)) or questions.answer)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return window
    return make


def wait_complete(qtbot, window):
    qtbot.waitUntil(lambda: window.run.result is not None and window.run.result.complete
                    and "Matched in" in window.status_text.text(), timeout=WAIT_MS)


@pytest.fixture
def window(make_window, qtbot):
    """A window with the sample pair fully matched."""
    window = make_window()
    window.open_images(*SAMPLE_PAIR)
    wait_complete(qtbot, window)
    return window


def click_image(view, x, y):
    """A real left click on ``view`` at image pixel (x, y)."""
    scene_point = view.view_box.mapViewToScene(QPointF(x, y))
    widget_point = view.mapFromScene(scene_point)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, widget_point)


def test_sample_pair_opens_matched_with_every_iteration(window):
    result = window.run.result
    assert result.source_size == (451, 300) and result.target_size == (640, 426)
    assert window.playback.slider.maximum() == result.total_iterations == result.last
    assert window.playback.iteration == result.last
    rect = window.target_view.image_rect()
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (-0.5, -0.5, 640, 426)
    assert "Iteration 5 / 5" in window.playback.iteration_label.text()


def test_click_places_target_marker_where_the_result_maps_it(window, qtbot):
    assert window.status_text.text().endswith("Click the source to add points.")
    click_image(window.source_view, 200.0, 120.0)
    qtbot.waitUntil(lambda: len(window.points) == 1, timeout=2000)
    assert "add points" not in window.status_text.text() and "Matched in" in window.status_text.text()
    point = window.points.points[0]
    assert point.source == pytest.approx((200.0, 120.0), abs=1.0)
    expected = window.run.result.map_point(*point.source, window.run.result.last)
    marker = window.overlays.target_markers.positions[0]
    assert tuple(marker) == pytest.approx(expected, abs=1e-4)
    assert point.confidence == pytest.approx(window.run.result.confidence([point.source])[0], abs=1e-6)
    qtbot.waitUntil(lambda: window.table.model().rowCount() == 1, timeout=2000)
    markers = window.overlays.target_markers
    assert markers.outlines.shape[0] == 1 and len(markers.outline_items) == 1

    window.playback.step(-window.run.result.last)  # at the identity the marker follows iteration 0
    assert tuple(markers.positions[0]) == pytest.approx(window.run.result.map_point(*point.source, 0), abs=1e-4)
    # the calibrated confidence is that of the final match: none is shown before the last iteration
    window.table.sync()
    conf_column = COLUMNS.index("conf.")
    assert point.confidence is None and window.table.model().item(0, conf_column).text() == NO_SCORE
    assert markers.markers[point.id]._shown[2] == point.name  # the caption has no score either
    assert "final match" in window.table.model().horizontalHeaderItem(conf_column).toolTip()
    assert "last iteration only" in window.table.model().item(0, conf_column).toolTip()  # the dash says why
    window.playback.step(window.run.result.last)
    window.table.sync()
    assert point.confidence == pytest.approx(window.run.result.confidence([point.source])[0], abs=1e-6)
    assert window.table.model().item(0, conf_column).text() == score_text(point.confidence)
    assert window.table.model().item(0, conf_column).toolTip() == ""


def test_hover_previews_the_match(window):
    window.source_view.hovered.emit(100.0, 50.0)
    hover = window.overlays.hover_target
    assert hover.isVisible()
    assert (hover.pos().x(), hover.pos().y()) == pytest.approx(window.run.result.map_point(100, 50), abs=1e-4)
    window.source_view.left.emit()
    assert not hover.isVisible()


def test_stepping_and_playing_change_the_glyphs(make_window, qtbot):
    window = make_window(lambda device, weights: TurningMatcher())
    window.open_images(*SAMPLE_PAIR)
    wait_complete(qtbot, window)
    final = window.overlays.target_glyphs.lines.copy()
    window.playback.step(-1)
    assert window.playback.iteration == window.run.result.last - 1
    assert not np.allclose(window.overlays.target_glyphs.lines, final)
    QTest.keyClick(window, Qt.Key.Key_Right)
    assert window.playback.iteration == window.run.result.last
    np.testing.assert_allclose(window.overlays.target_glyphs.lines, final)

    window.playback.show_iteration(0)
    identity = window.overlays.target_glyphs.lines.copy()
    window.add_point(200, 150)
    window.table.sync()
    seen, table_x = [], set()
    window.playback.play_timer.timeout.connect(lambda: seen.append(window.playback.iteration))
    window.playback.play_timer.timeout.connect(lambda: table_x.add(window.table.model().item(0, 3).text()))
    window.playback.toggle_play()
    assert window.playback.play_timer.isActive()
    qtbot.waitUntil(lambda: not window.playback.play_timer.isActive(), timeout=20_000)
    assert len(table_x) > 3, "the table follows the point's match during playback"
    assert window.playback.iteration == window.run.result.last
    np.testing.assert_allclose(window.overlays.target_glyphs.lines, final)
    assert any(t != round(t) for t in seen), "playback interpolates between iterations"
    assert not np.allclose(identity, final)


def test_table_follows_adds_selection_and_deletes(window, qtbot):
    table = window.table
    rows = table.model().rowCount
    for x, y in ((50, 60), (150, 100), (300, 200)):
        window.add_point(x, y)
    assert len(window.overlays.target_markers.positions) == 3 and window.points.selected == {3}
    qtbot.waitUntil(lambda: rows() == 3, timeout=2000)  # the table catches up one loop pass later
    assert [i.row() for i in table.selectionModel().selectedRows()] == [2]
    assert table.model().item(1, 3).text() == f"{window.points.points[1].target[0]:.1f}"
    table.selectRow(0)
    assert window.points.selected == {1}
    QTest.keyClick(table, Qt.Key.Key_Delete)
    assert [p.id for p in window.points.points] == [2, 3]
    assert len(window.overlays.target_markers.positions) == 2
    assert set(window.overlays.target_markers.markers) == set(window.overlays.source_markers.markers) == {2, 3}
    qtbot.waitUntil(lambda: rows() == 2, timeout=2000)
    window.points.select({3})
    qtbot.waitUntil(lambda: [i.row() for i in table.selectionModel().selectedRows()] == [1], timeout=2000)
    window.points.clear()
    assert len(window.overlays.target_markers.positions) == 0 and not window.overlays.target_markers.markers
    qtbot.waitUntil(lambda: rows() == 0, timeout=2000)


def test_export_writes_files_that_load_back_equal(window, qtbot, tmp_path):
    window.add_point(120.0, 80.0)
    window.add_point(33.5, 250.25)
    points = window.points.points
    exports = tmp_path / "exports"
    exports.mkdir()
    for kind in ("csv", "json", "npy", "png"):
        assert window.exports.export(kind, str(exports / f"out.{kind}"))
    qtbot.waitUntil(lambda: window.status_text.text().endswith("out.npy"), timeout=10_000)  # written in the background
    assert sorted(os.listdir(exports)) == ["out.csv", "out.json", "out.npy", "out.png"], "no temporary files left"

    data = json.loads((exports / "out.json").read_text())
    assert data["iteration"] == window.run.result.last
    assert data["source"] == {"path": SAMPLE_PAIR[0], "width": 451, "height": 300}
    expected = [(p.id, p.name, *(round(v, 3) for v in (*p.source, *p.target)), round(p.confidence, 4))
                for p in points]
    assert [(p["id"], p["name"], *p["source"], *p["target"], p["confidence"]) for p in data["points"]] == expected
    assert expected[1][1:4] == ("p2", 33.5, 250.25)
    assert [p["by_hand"] for p in data["points"]] == [False, False]

    with open(exports / "out.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(int(r["id"]), r["name"], float(r["source_x"]), float(r["source_y"]), float(r["target_x"]),
             float(r["target_y"]), float(r["confidence"])) for r in rows] == expected
    assert all(len(r["target_x"].partition(".")[2]) <= 3 for r in rows), "coordinates to a thousandth of a pixel"
    assert rows[0]["target_path"] == SAMPLE_PAIR[1] and rows[0]["target_width"] == "640"
    assert [r["by_hand"] for r in rows] == ["0", "0"]
    window.points.fix(points[0].id, 200.0, 150.0)  # a match placed by hand: no model score in the files
    window.exports.export("json", str(exports / "fixed.json"))
    first = json.loads((exports / "fixed.json").read_text())["points"][0]
    assert first["by_hand"] and first["confidence"] is None and first["target"] == [200.0, 150.0]
    assert window.exports.default_name("csv") == "cat-chelsea__cat-pexels-20787_points.csv"
    assert window.exports.default_name("npy") == "cat-chelsea__cat-pexels-20787_flow.npy"

    flow = np.load(exports / "out.npy")
    np.testing.assert_allclose(flow, window.run.result.dense_flow(window.run.result.last), atol=1e-4)
    image = cv2.imread(str(exports / "out.png"))
    assert image is not None and image.shape[1] >= window.width()


def test_a_flow_export_that_fails_in_the_background_says_why(window, qtbot, tmp_path, messages):
    (tmp_path / "a file").write_text("not a folder")
    assert window.exports.export("npy", str(tmp_path / "a file" / "flow.npy"))  # started
    qtbot.waitUntil(lambda: len(messages) > 0, timeout=10_000)
    assert messages[0][0] == "Export failed" and "a file" in messages[0][1]
    assert window.status_text.text() == "The dense flow was not saved."


def test_bad_image_shows_a_message_and_keeps_the_previous_pair(window, qtbot, tmp_path, messages):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    result, source = window.run.result, window.pair.source
    window.open_images(str(bad), None)
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert "broken.png" in messages[0][1]
    assert window.pair.source is source and window.run.result is result
    window.add_point(10, 10)
    assert window.points.points[0].target == pytest.approx(result.map_point(10, 10), abs=1e-4)


def test_model_error_is_reported_not_raised(make_window, qtbot, messages):
    def broken_factory(device, weights):
        raise ValueError("cannot use CUDA: no CUDA device is visible")
    window = make_window(broken_factory)
    window.open_images(*SAMPLE_PAIR)
    qtbot.waitUntil(lambda: window.pair.source is not None and window.run.model_failed, timeout=10_000)
    qtbot.wait(200)  # a job that was already queued fails too, quietly
    assert len(messages) == 1 and "CUDA" in messages[0][1]
    assert window.status_text.text().startswith(("No model is loaded", "Cannot load the model"))
    assert window.run.device_label.text() == "model: failed"


def test_heatmap_and_blend_cover_the_target(window):
    window.add_point(225, 150)
    window.overlays.toggles["heatmap"].setChecked(True)
    window.overlays.toggles["blend"].setChecked(True)
    assert window.overlays.heatmap.isVisible() and window.overlays.target_blend.isVisible()
    for item in (window.overlays.heatmap, window.overlays.target_blend):
        rect = item.mapRectToParent(item.boundingRect())
        assert (rect.width(), rect.height()) == pytest.approx((640, 426))
    window.overlays.toggles["arrows"].setChecked(True)
    assert window.overlays.target_arrows.lines.shape == (3 * window.overlays.density.value() ** 2, 2, 2)


def test_device_switch_cancels_and_matches_again(window, qtbot):
    first = window.run.result
    window.set_device("auto")
    assert window.run.result is None
    wait_complete(qtbot, window)
    assert window.run.result is not first


def test_large_photo_opens_without_blocking_the_gui(make_window, qtbot, tmp_path):
    height, width = 6000, 8000
    gradient = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), gradient)
    window = make_window()
    ticks = []
    window.startTimer(20)
    window.timerEvent = lambda event: ticks.append(time.perf_counter())
    window.open_images(SAMPLE_PAIR[0], str(big))
    qtbot.waitUntil(lambda: window.pair.target is not None, timeout=WAIT_MS)
    assert window.pair.target.original_size == (width, height)
    rect = window.target_view.image_rect()
    assert (rect.width(), rect.height()) == (width, height)
    gaps = np.diff(ticks)
    assert len(gaps) > 3 and gaps.max() < 1.0, "the event loop kept running while the photo decoded"
    wait_complete(qtbot, window)
    window.add_point(225, 150)
    target = window.points.points[0].target
    assert 0 <= target[0] <= width and 0 <= target[1] <= height


def test_dropping_a_file_opens_it_and_the_pair_is_remembered(window, qtbot):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(SAMPLE_PAIR[0])])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    first = window.run.result
    window.target_view.dropEvent(drop)
    qtbot.waitUntil(lambda: window.pair.target.path == SAMPLE_PAIR[0], timeout=10_000)
    wait_complete(qtbot, window)
    assert window.run.result is not first and window.run.result.target_size == (451, 300)
    assert window.pair.recent_pairs()[:2] == [[SAMPLE_PAIR[0], SAMPLE_PAIR[0]], list(SAMPLE_PAIR)]
    window.pair.fill_recent_menu(window.recent_menu)
    assert len(window.recent_menu.actions()) == 2


def test_linked_zoom_shows_the_same_part_of_both_images(window):
    window.linked_zoom.setChecked(True)
    window.source_view.view_box.setRange(xRange=(100, 200), yRange=(50, 150), padding=0)
    source = window.source_view.view_box.viewRect()
    target = window.target_view.view_box.viewRect()
    scale = 640 / 451
    assert (target.center().x() + 0.5) == pytest.approx((source.center().x() + 0.5) * scale, rel=0.02)
    assert target.width() <= 1.05 * source.width() * scale or target.height() <= 1.05 * source.height() * 426 / 300


def test_closing_during_a_run_is_quick(make_window, qtbot):
    window = make_window(lambda device, weights: TurningMatcher(delay=0.5))
    window.open_images(*SAMPLE_PAIR)
    qtbot.waitUntil(lambda: window.run.result is not None, timeout=WAIT_MS)
    started = time.perf_counter()
    window.close()
    assert time.perf_counter() - started < 0.3
    assert not window.run.result.complete
    qtbot.waitUntil(lambda: not window.run.matcher.thread.isRunning() and not window.pair.loader.thread.isRunning(),
                    timeout=2000)  # the run stops at its next iteration


class SlowModel(TurningMatcher):
    """A matcher whose model takes ``load`` seconds to warm up."""

    def __init__(self, load: float, delay: float = 0.0):
        super().__init__(delay)
        self.load = load

    def warm_up(self) -> None:
        time.sleep(self.load)


def test_closing_while_the_model_loads_closes_at_once_and_the_thread_ends_on_its_own(make_window, qtbot):
    from app.workers import finish_abandoned
    window = make_window(lambda device, weights: SlowModel(load=1.5))
    window.open_images(*SAMPLE_PAIR)
    qtbot.wait(200)
    assert window.run.matcher.thread.isRunning() and not window.run.model_device
    started = time.perf_counter()
    window.close()
    assert time.perf_counter() - started < 0.3 and not window.isVisible()
    finish_abandoned()  # what launch() does before the process exits
    assert not window.run.matcher.thread.isRunning()
    assert time.perf_counter() - started > 1.0, "the load went on unseen"


def test_first_status_line_gives_load_and_match_times_apart(make_window, qtbot):
    window = make_window(lambda device, weights: SlowModel(load=0.6, delay=0.02))
    window.open_images(*SAMPLE_PAIR)
    wait_complete(qtbot, window)
    text = window.status_text.text()
    match, load = (float(text.split(word)[1].split(" s")[0]) for word in ("Matched in ", "model loaded in "))
    assert load >= 0.6 and 0.1 <= match < load, text
    window.set_device("auto")
    wait_complete(qtbot, window)
    assert "model loaded in" in window.status_text.text(), "a reloaded model reports its load once more"
    window.start_match()
    wait_complete(qtbot, window)
    assert "model loaded" not in window.status_text.text()


def test_screenshot_command_writes_a_png(tmp_path):
    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    code = ("import sys; from app.main_window import launch; "
            f"sys.exit(launch(screenshot={str(shot)!r}, device='cpu', weights=''))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=240,
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 400 and image.shape[1] > 700  # the offscreen screen is 800x600


def test_points_menu_opens_the_label_transfer_window(make_window, qtbot):
    from PySide6.QtWidgets import QApplication
    from app.labeling.window import LabelingWindow
    window = make_window()
    action = next(a for menu in window.menuBar().actions() for a in menu.menu().actions()
                  if a.text() == "&Label Transfer…")
    action.trigger()
    opened = [w for w in QApplication.topLevelWidgets() if isinstance(w, LabelingWindow) and w.isVisible()]
    assert len(opened) == 1
    opened[0].close()


def image_to_widget(view, x, y):
    return view.mapFromScene(view.view_box.mapViewToScene(QPointF(x, y)))


def test_a_click_on_a_point_selects_it_and_a_drag_moves_it_with_its_match(window, qtbot):
    view, points = window.source_view, window.points
    window.add_point(100, 100)
    window.add_point(300, 200)
    assert points.selected == {2}
    click_image(view, 101, 100)  # on p1's marker: select, no duplicate
    assert len(points) == 2 and points.selected == {1}
    before, shown = points.points[0].target, view.view_box.viewRect()
    start, end = image_to_widget(view, 100, 100), image_to_widget(view, 150, 130)
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for step in range(1, 6):
        QTest.mouseMove(view.viewport(), start + (end - start) * step / 5)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    moved = points.points[0]
    assert view.view_box.viewRect() == shown, "dragging a point does not pan the view"
    assert len(points) == 2 and moved.source == pytest.approx((150, 130), abs=1.5)
    assert moved.target == pytest.approx(window.run.result.map_point(*moved.source), abs=1e-4)
    assert moved.target != pytest.approx(before, abs=1.0)
    assert tuple(window.overlays.target_markers.positions[0]) == pytest.approx(moved.target, abs=1e-4)
    assert points.undo_text() == "move"
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the whole drag is one step
    assert points.points[0].source == (100.0, 100.0)
    assert tuple(window.overlays.target_markers.positions[0]) == pytest.approx(window.run.result.map_point(100, 100),
                                                                               abs=1e-4)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert points.points[0].source == pytest.approx((150, 130), abs=1.5)
    click_image(view, 250, 60)  # away from the markers: a new point
    assert [p.name for p in points.points] == ["p1", "p2", "p3"]


def test_clear_delete_and_add_undo_and_redo_from_the_keyboard(window, qtbot):
    points = window.points
    for x in (50, 150, 250):
        window.add_point(x, 100)
    window.clear_action.trigger()
    assert len(points) == 0 and "Ctrl+Z" in window.status_text.text()
    assert window.undo_action.text() == "&Undo clear" and window.undo_action.isEnabled()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [p.name for p in points.points] == ["p1", "p2", "p3"]
    assert all(p.target is not None for p in points.points), "restored points get their matches back"
    points.select({2})
    QTest.keyClick(window, Qt.Key.Key_Delete)
    assert [p.name for p in points.points] == ["p1", "p3"]
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # and the third add
    assert [p.name for p in points.points] == ["p1", "p2"]
    QTest.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert [p.name for p in points.points] == ["p1", "p2", "p3"]
    qtbot.waitUntil(lambda: window.table.model().rowCount() == 3, timeout=2000)


def test_undoing_a_fix_keeps_saying_so_through_the_re_match(make_window, qtbot):
    """The re-match an undo starts merges its message after 'Undid fix p1.'; the click hint is only for no points."""
    window = make_window(lambda device, weights: TurningMatcher())
    window.open_images(*SAMPLE_PAIR)
    wait_complete(qtbot, window)
    assert window.status_text.text().endswith("Click the source to add points.")
    point = window.points.add(100, 100)
    window.points.fix(point.id, 120, 90)
    window.start_match(keep_shown=True)  # what a drag's release does
    wait_complete(qtbot, window)
    assert "Click the source" not in window.status_text.text()
    window.undo()
    assert window.points.fixes() == [] and window.status_text.text() == f"Undid fix {point.name}."
    qtbot.waitUntil(lambda: "Matched in" in window.status_text.text(), timeout=WAIT_MS)
    text = window.status_text.text()
    assert text.startswith(f"Undid fix {point.name}. Matched in ") and "Click the source" not in text


def test_a_dragged_match_carries_its_ellipse_during_the_drag(window, qtbot):
    """The affine ellipse is drawn around the marker at every step of a drag, not only after the re-match."""
    window.add_point(200, 120)
    view, markers, point = window.target_view, window.overlays.target_markers, window.points.points[0]
    before = point.target
    start, end = image_to_widget(view, *before), image_to_widget(view, before[0] + 60, before[1] + 40)
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for step in range(1, 6):
        QTest.mouseMove(view.viewport(), start + (end - start) * step / 5)
        centre = markers.outline_items[point.id].path().boundingRect().center()
        assert (centre.x(), centre.y()) == pytest.approx(point.target, abs=0.5), f"step {step}"
    assert point.fixed == pytest.approx((point.target[0], point.target[1]), abs=1e-6)
    assert point.fixed == pytest.approx((before[0] + 60, before[1] + 40), abs=2.0)
    assert tuple(markers.positions[0]) == pytest.approx(point.fixed, abs=1e-4)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def drag_match(window, point, goal):
    """A real drag of ``point``'s target marker to image pixel ``goal``: a correction."""
    view = window.target_view
    start, end = image_to_widget(view, *point.target), image_to_widget(view, *goal)
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for step in range(1, 6):
        QTest.mouseMove(view.viewport(), start + (end - start) * step / 5)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def drawn_shape(marker) -> str:
    """'diamond' or 'circle', read from the marker's drawn path: a point at 60% of its reach along
    a diagonal lies inside a circle but outside a diamond."""
    reach = marker.path().boundingRect().width() / 2
    return "circle" if marker.path().contains(QPointF(0.6 * reach, 0.6 * reach)) else "diamond"


def two_matched_points(make_window, qtbot):
    """A window on the sample pair with two points matched (by the turning fake)."""
    window = make_window(lambda device, weights: TurningMatcher())
    window.open_images(*SAMPLE_PAIR)
    wait_complete(qtbot, window)
    window.add_point(100, 100)
    window.add_point(300, 200)
    return window


def test_a_fixed_match_is_a_diamond_until_the_fix_is_undone(make_window, qtbot):
    window = two_matched_points(make_window, qtbot)
    first, second = window.points.points
    markers = window.overlays.target_markers.markers
    assert drawn_shape(markers[first.id]) == drawn_shape(markers[second.id]) == "circle"
    drag_match(window, first, (first.target[0] + 40, first.target[1] + 25))
    assert first.fixed is not None
    wait_complete(qtbot, window)
    assert (markers[first.id].symbol, drawn_shape(markers[first.id])) == (DIAMOND, "diamond")
    assert (markers[second.id].symbol, drawn_shape(markers[second.id])) == (CIRCLE, "circle")
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert drawn_shape(markers[first.id]) == "circle"
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert drawn_shape(markers[first.id]) == "diamond"


def test_a_correction_re_settles_from_the_shown_matches_not_from_the_identity(make_window, qtbot):
    """The re-settle's first snapshot (the identity) leaves the previous result's matches up; its
    first update replaces them; iteration 0 can still be stepped to afterwards."""
    window = two_matched_points(make_window, qtbot)
    first, second = window.points.points
    previous = window.run.result
    shown = []  # the target markers' positions after each snapshot of the re-settle
    window.run.progressed.connect(lambda snapshot: shown.append(window.overlays.target_markers.positions.copy()))
    goal = (first.target[0] + 40, first.target[1] + 25)
    drag_match(window, first, goal)
    wait_complete(qtbot, window)
    result = window.run.result
    assert result is not previous and len(shown) == result.total_iterations + 1
    moved = np.hypot(*np.subtract(result.map_point(*second.source), previous.map_point(*second.source)))
    said = moved_text([moved])
    assert window.status_text.text().endswith(f" {said[0].upper()}{said[1:]}.")  # what the correction moved
    assert shown[0][0] == pytest.approx(goal, abs=1.5), "the dragged match stays where it was dropped"
    assert shown[0][1] == pytest.approx(previous.map_point(*second.source), abs=1e-4), "no jump to the identity"
    assert shown[1][1] == pytest.approx(result.map_point(*second.source, 1), abs=1e-4)
    window.playback.step(-result.last)
    assert window.playback.iteration == 0 and window.playback.slider.value() == 0
    assert window.overlays.target_markers.positions[1] == pytest.approx(result.map_point(*second.source, 0), abs=1e-4)

    shown.clear()  # undoing the fix re-settles the same way
    window.playback.step(result.last)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    wait_complete(qtbot, window)
    assert shown[0][1] == pytest.approx(result.map_point(*second.source), abs=1e-4)


def test_a_fixed_match_goes_to_label_transfer_as_placed_by_hand_and_a_transfer_keeps_it(window, qtbot):
    from rtn_core.labels.keypoints import DONE
    from rtn_core.labels.transfer import hand_fixed
    window.add_point(120, 80)
    window.add_point(300, 200)
    window.points.fix(1, 150.5, 95.25)
    labeling = window.open_label_transfer(require_points=True)  # deletes itself on close
    try:
        labels = labeling.project.labels
        target = labels.targets[0]
        sent = target.point("p1")
        assert (sent.x, sent.y, sent.manual) == (150.5, 95.25, True) and target.point("p2") is None
        assert hand_fixed(labels) == {target.image: (sent,)}, "what a transfer of the target imposes"
        labeling.transfer.start()
        qtbot.waitUntil(lambda: labeling.project.labels.targets[0].status == DONE and not labeling.transfer.running,
                        timeout=WAIT_MS)
        target = labeling.project.labels.targets[0]
        assert target.point("p1") == sent and not target.point("p2").manual
    finally:
        labeling.ask = lambda *args: "Discard"  # the transfer changed the project: do not ask to save it
        labeling.close()


def test_crowded_point_labels_hide_no_dot_and_the_selected_keeps_its_label(window, qtbot):
    view, layer = window.source_view, window.overlays.source_markers
    for i in range(16):  # a 4 x 4 grid 12 px apart: too tight for every label at this zoom
        window.add_point(150 + 12 * (i % 4), 100 + 12 * (i // 4))
    window.points.select({6})  # one inside the grid

    def covered_dots(but=6):
        """(label, dot) pairs where a shown label (other than ``but``'s) covers another point's dot, on screen."""
        dots = {i: QPointF(view.mapFromScene(m.scenePos())) for i, m in layer.markers.items()}
        labels = [(i, QRectF(dots[i] + QPointF(*m.label.offset), QSizeF(*m.label.size)))
                  for i, m in layer.markers.items() if m.label.isVisible() and i != but]
        return [(i, j) for i, rect in labels for j, dot in dots.items() if j != i and rect.contains(dot)]

    assert layer.markers[6].label.isVisible()
    assert [m.toolTip() for m in layer.markers.values()] == [f"p{i}" for i in range(1, 17)]  # named on hover
    assert not all(m.label.isVisible() for m in layer.markers.values()) and covered_dots() == []
    view.view_box.setRange(xRange=(140, 200), yRange=(90, 150), padding=0)  # zoomed in: room for all
    qtbot.waitUntil(lambda: all(m.label.isVisible() for m in layer.markers.values()))
    assert covered_dots(but=None) == []


def test_points_are_renamed_in_the_table(window, qtbot):
    window.add_point(50, 60)
    window.add_point(150, 60)
    window.table.sync()
    model = window.table.model()
    model.item(0, 0).setText("left eye")  # what the cell editor does
    assert window.points.points[0].name == "left eye"
    model.item(1, 0).setText("left eye")  # taken: refused, the old name comes back
    assert window.points.points[1].name == "p2" and model.item(1, 0).text() == "p2"
    assert window.overlays.source_markers.markers[1].label.text.text() == "left eye"
    assert model.item(0, 0).textAlignment() & Qt.AlignmentFlag.AlignLeft  # names read from the left,
    assert model.item(0, 1).textAlignment() & Qt.AlignmentFlag.AlignRight  # numbers line up on the right


def test_a_new_source_asks_before_its_points_are_cleared(window, qtbot, questions):
    window.add_point(50, 60)
    source = window.pair.source
    questions.answer = False
    window.open_images(SAMPLE_PAIR[1], None)
    assert len(questions) == 1 and "The 1 point on" in questions[0][1]
    qtbot.wait(300)
    assert window.pair.source is source and len(window.points) == 1
    questions.answer = True
    window.open_images(SAMPLE_PAIR[1], None)
    qtbot.waitUntil(lambda: window.pair.source is not source, timeout=10_000)
    assert len(window.points) == 0 and window.points.undo_text() is None, "old points do not undo onto a new image"
    window.open_images(None, SAMPLE_PAIR[0])  # a new target keeps the points: nothing to ask
    assert len(questions) == 2


def test_points_go_to_label_transfer_with_the_pair_and_their_names(window, qtbot):
    from app.labeling.window import LabelingWindow
    window.add_point(120.25, 80.5)
    window.add_point(300, 200)
    window.points.rename(2, "nose")
    labeling = window.open_label_transfer(require_points=True)  # deletes itself on close
    try:
        assert isinstance(labeling, LabelingWindow)
        labels = labeling.project.labels
        assert labels.names == ("p1", "nose") and labels.source.image == os.path.abspath(SAMPLE_PAIR[0])
        assert [(p.x, p.y) for p in labels.source.points] == [(120.25, 80.5), (300.0, 200.0)]
        assert [t.image for t in labels.targets] == [os.path.abspath(SAMPLE_PAIR[1])]
    finally:
        labeling.close()


def test_the_readout_iteration_is_named_with_its_grid_and_the_label_never_pushes_the_slider(make_window, qtbot):
    """The readout lives on a finer grid than the update before it (as the shipped model's does): its
    label says so. Every label text of a run, streaming or complete, fits the label's reserved width."""
    window = make_window(lambda device, weights: TurningMatcher(readout=True))
    window.open_images(*SAMPLE_PAIR)
    wait_complete(qtbot, window)
    label, playback = window.playback.iteration_label, window.playback
    assert label.text() == "Iteration 5 / 5 · semantic readout, stride 8"
    assert "5 iterations, the last a semantic readout." in window.status_text.text()
    texts = [label.text()]
    playback.step(-1)
    assert label.text() == "Iteration 4 / 5 · stride 16"
    complete = window.run.result
    playback.set_result(CorrespondenceResult(**{**complete.__dict__, "iterations": complete.iterations[:5]}))
    texts.append(label.text())
    assert texts[-1] == "Iteration 4 / 5 · stride 16 (4 computed)"
    assert all(label.fontMetrics().horizontalAdvance(text) <= label.minimumWidth() for text in texts)


def test_loop_and_speed_control_playback(make_window, qtbot):
    from app.playback import LOOP_HOLD, SECONDS_PER_ITERATION
    window = make_window(lambda device, weights: TurningMatcher())
    window.open_images(*SAMPLE_PAIR)
    wait_complete(qtbot, window)
    playback = window.playback
    assert playback.position(SECONDS_PER_ITERATION) == pytest.approx(1.0)
    playback.speed.setCurrentText("4×")
    assert playback.position(SECONDS_PER_ITERATION) == pytest.approx(4.0)
    assert playback.position(10 * SECONDS_PER_ITERATION) == 5.0, "without loop it stops at the end"
    playback.loop_button.setChecked(True)
    assert playback.position((5 + LOOP_HOLD + 1) * SECONDS_PER_ITERATION / 4) == pytest.approx(1.0)
    seen = []
    playback.play_timer.timeout.connect(lambda: seen.append(playback.iteration))
    playback.show_iteration(0)
    playback.toggle_play()  # 5 iterations at 4x: under a second a lap
    qtbot.wait(2500)
    assert playback.play_timer.isActive(), "looping goes on"
    laps = sum(1 for a, b in zip(seen, seen[1:]) if b < a)
    assert laps >= 1
    playback.toggle_play()
    assert not playback.play_timer.isActive()


def test_help_lists_the_shortcuts_and_controls_say_theirs(window):
    from app.shortcuts import shortcut_rows, shortcuts_html
    rows = {(text, keys) for _, text, keys in shortcut_rows(window.menuBar())}
    assert {("Undo", "Ctrl+Z"), ("Redo", "Ctrl+Shift+Z, Ctrl+Y"), ("Keyboard Shortcuts", "F1")} <= rows
    assert "Drag a point" in shortcuts_html(window.menuBar())
    assert window.overlays.toggles["glyphs"].toolTip().endswith("(G)")
    assert "(Space)" in window.playback.play_button.toolTip() and window.playback.loop_button.toolTip()
    window.help_action.trigger()
    dialogs = [w for w in window.findChildren(QDialog) if w.isVisible() and w.windowTitle() == "Keyboard shortcuts"]
    assert len(dialogs) == 1
    dialogs[0].close()


def test_the_window_fits_a_laptop_screen_and_its_images_refit(window, qtbot):
    screen = window.screen().availableGeometry()
    size = window.default_size()
    assert size.width() <= screen.width() and size.height() <= screen.height()
    for width, height in ((1366, 768), (1000, 600)):
        window.resize(width - 40, height - 60)  # a laptop's screen less its panel and the frame
        qtbot.waitUntil(lambda: window.width() <= width, timeout=2000)
        qtbot.wait(50)
        slider = window.playback.slider
        assert slider.isVisible() and slider.width() >= 100, (width, slider.width())
        assert slider.mapTo(window, slider.rect().bottomRight()).y() < window.height()
        buttons = window.dock.findChildren(QPushButton)
        assert all(b.width() >= b.minimumSizeHint().width() for b in buttons if b.isVisible())
    window.resize(1300, 760)
    qtbot.wait(100)
    rect = window.target_view.view_box.viewRect()
    image = window.target_view.image_rect()
    assert rect.contains(image) and (rect.width() < 1.1 * image.width() or rect.height() < 1.1 * image.height())


def test_a_bad_path_is_one_clear_message_and_the_panes_say_how_to_open(make_window, qtbot, messages):
    window = make_window()
    window.open_images("NOT_AN_IMAGE", SAMPLE_PAIR[1])
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert messages == [("Cannot open image", "NOT_AN_IMAGE: no such file")]
    status = window.status_text.text()
    assert "NOT_AN_IMAGE" in status and "previous pair" not in status and "Open Pair" in status
    assert "Open Pair" in window.source_view.placeholder.toPlainText()
    assert window.pair.source is None and window.pair.target is None


def test_open_pair_lets_the_user_say_which_file_is_the_source(make_window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    from app.pair import PairRoles
    roles = PairRoles(list(SAMPLE_PAIR))
    assert roles.source_label.text() == "cat-chelsea.png"
    roles.swap()
    assert roles.paths == [SAMPLE_PAIR[1], SAMPLE_PAIR[0]] and roles.source_label.text() == "cat-pexels-20787.jpg"
    window = make_window()
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args: (list(SAMPLE_PAIR), ""))
    window.pair.choose_roles = lambda paths: (paths[1], paths[0])  # the user pressed Swap, then Open
    window.pair.open_dialog("pair")
    qtbot.waitUntil(lambda: window.pair.source is not None, timeout=10_000)
    assert window.pair.source.path == SAMPLE_PAIR[1] and window.pair.target.path == SAMPLE_PAIR[0]
