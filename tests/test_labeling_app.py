"""The label-transfer window: import, worker transfer with thumbnails, corrections by mouse and keys,
undo/redo, sessions with autosave, export. Offscreen; the model is the untrained RTN (fast)."""
import os
import shutil
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QIcon, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QTableWidget

from app.labeling import LabelingWindow
from app.pair import SAMPLE_PAIR
from app.labeling.canvas import point_symbol
from app.labeling.keypoint_table import CONFIDENCE, FB, FLAGS, VISIBILITY
from app.labeling.thumbnails import FLAGGED, PENDING, REVIEWED, SKIPPED, STATE_STYLE, badge, flag_badge
from rtn_core.labels.formats import FORMATS, canonical, read_labels, read_source
from rtn_core.labels.keypoints import ABSENT, DONE, FB_FAIL, LR_SWAP, OCCLUDED, VISIBLE, Point
from rtn_core.labels.project import Project
from rtn_core.images import load_image
from rtn_core.labels.transfer import transfer_into
from test_transfer import CAT_A, CAT_B, LABELS, FakeMatcher

DEMO = "/work/shared/demo"


def demo_image(name: str) -> str:
    """A demo photo, or (where the demo folder is missing) a copy of a sample under that name."""
    path = os.path.join(DEMO, name)
    if os.path.exists(path):
        return path
    copy = os.path.join(tempfile.mkdtemp(prefix="rtn-labeling-"), name)
    shutil.copy(CAT_B, copy)
    return copy


COFFEE, DOG = demo_image("coffee-skimage.png"), demo_image("dog-pexels-452772.jpg")
CLEAN = 0.9  # the fake matcher's confidence for a clean transfer: above the shipped review threshold


@pytest.fixture(scope="module")
def untrained():
    from rtn_core.matcher import Matcher
    return Matcher(weights="")


@pytest.fixture
def asked():
    return []


@pytest.fixture
def make_window(qtbot, tmp_path, asked):
    """Windows with a given matcher, answering every question with ``answer`` and recording it."""
    def make(project=None, matcher=None, answer="Discard"):
        matcher = matcher or FakeMatcher(confidence=CLEAN)

        def ask(title, text, choices):
            asked.append((title, text, choices))
            return answer if answer in choices else "Discard"  # "save changes?" at teardown
        window = LabelingWindow(project, matcher_factory=lambda device, weights: matcher, ask=ask,
                                autosave_dir=str(tmp_path / "autosave"))
        qtbot.addWidget(window)  # closed (threads stopped) at teardown
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)  # window shortcuts need an active window
        return window
    return make


def corrected_project(tmp_path, targets=(CAT_B,)):
    """The chelsea source (COCO: skeleton, an occluded point) transferred by the fast fake matcher."""
    labels = read_source(os.path.join(LABELS, "chelsea_coco.json"), CAT_A, (451, 300))
    return Project(transfer_into(labels, FakeMatcher(confidence=CLEAN), list(targets)),
                   autosave_path=str(tmp_path / "p.autosave"))


def wait_shown(qtbot, window):
    """Until both images are decoded and the target's points drawn."""
    qtbot.waitUntil(lambda: window.source_view.image is not None and window.target_view.image is not None
                    and len(window.target_layer.names) > 0, timeout=10_000)


def widget_pos(view, x, y) -> QPoint:
    """Where image pixel (x, y) is on the view's viewport."""
    return view.mapFromScene(view.view_box.mapViewToScene(QPointF(x, y)))


def image_pos(view, point: QPoint):
    scene = view.mapToScene(point)
    mapped = view.view_box.mapSceneToView(scene)
    return mapped.x(), mapped.y()


def send_mouse(view, kind, pos: QPoint, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    global_pos = view.viewport().mapToGlobal(pos)
    event = QMouseEvent(kind, QPointF(pos), QPointF(global_pos), button, buttons, modifiers)
    QApplication.sendEvent(view.viewport(), event)


def drag(view, start: QPoint, end: QPoint, modifiers=Qt.KeyboardModifier.NoModifier, steps=6):
    held = Qt.MouseButton.LeftButton
    send_mouse(view, QEvent.Type.MouseButtonPress, start, held, modifiers)
    for i in range(1, steps + 1):
        QTest.qWait(20)  # pyqtgraph starts a drag only after some distance or time
        step = start + (end - start) * (i / steps)
        send_mouse(view, QEvent.Type.MouseMove, step, held, modifiers)
    send_mouse(view, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton, modifiers)


def click(view, pos: QPoint, modifiers=Qt.KeyboardModifier.NoModifier):
    send_mouse(view, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, modifiers)  # pyqtgraph hover first
    send_mouse(view, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton, modifiers)
    send_mouse(view, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton, modifiers)


def test_a_file_that_is_not_an_image_is_not_added_as_a_target(make_window, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    window = make_window(corrected_project(tmp_path))
    before = window.strip.paths()
    window.review.add_targets([str(text), COFFEE])
    assert window.strip.paths() == before + [COFFEE]
    assert "notes.jpg" in window.message_bar.text() and "not an image" in window.message_bar.text()
    window.review.add_targets([str(text)])  # alone: refused, nothing added
    assert window.strip.paths() == before + [COFFEE]


def test_keypoints_without_their_image_ask_for_it_beside_the_keypoint_file(make_window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    labels = tmp_path / "labels" / "points.csv"
    labels.parent.mkdir()
    labels.write_text("name,x,y\nnose,10,20\n")  # a plain file: it names no image
    asked_in = []

    def cancel(parent, title, folder, filters):
        asked_in.append(folder)
        return "", ""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", cancel)
    window = make_window()
    assert not window.files.import_keypoints(str(labels))  # cancelled: nothing changes
    assert asked_in == [str(labels.parent)] and window.project is None


def test_a_second_image_of_a_target_s_file_name_is_not_added(make_window, tmp_path):
    """Exports name images by file name, so a copy of a target elsewhere (or two in one folder run)
    would make the export fail later: it is refused when added, by name."""
    folder = tmp_path / "more"
    folder.mkdir()
    copy, fresh = folder / os.path.basename(CAT_B), folder / "fresh.jpg"
    shutil.copy(CAT_B, copy)
    shutil.copy(CAT_B, fresh)
    window = make_window(corrected_project(tmp_path))
    before = window.strip.paths()
    window.review.add_targets([str(folder)])
    assert window.strip.paths() == before + [str(fresh)]
    assert "same file name" in window.message_bar.text() and str(copy) in window.message_bar.text()


def test_export_suggests_a_file_named_after_the_source(make_window, tmp_path, monkeypatch):
    window = make_window(corrected_project(tmp_path))
    suggested = []
    monkeypatch.setattr(window.files, "choose_save", lambda title, name, filters, folder_only=False:
                        suggested.append(name) or "")  # the dialog cancelled
    window.files.export_dialog("csv")
    window.files.export_dialog("coco")
    source = os.path.splitext(os.path.basename(window.project.labels.source.image))[0]
    assert suggested == [f"{source}-keypoints.csv", f"{source}-keypoints-coco.json"]


def test_import_transfer_in_the_worker_thumbnails_and_a_corrupt_target(make_window, qtbot, tmp_path, untrained):
    corrupt = tmp_path / "corrupt.jpg"
    with open(CAT_B, "rb") as jpeg:
        corrupt.write_bytes(jpeg.read(300))  # starts like a JPEG, so it is added, but cannot be decoded
    window = make_window(matcher=untrained)
    assert window.files.import_keypoints(os.path.join(LABELS, "chelsea_coco.json"), CAT_A)
    labels = window.project.labels
    assert labels.skeleton and labels.source.point("right_ear").visibility == OCCLUDED
    window.review.add_targets([CAT_B, str(corrupt), COFFEE])
    assert [window.strip.state(p) for p in window.strip.paths()] == ["pending"] * 3
    window.transfer.start()
    assert window.progress.isVisible() and window.cancel_button.isVisible()
    qtbot.waitUntil(lambda: not window.transfer.running, timeout=90_000)
    states = {os.path.basename(p): window.strip.state(p) for p in window.strip.paths()}
    assert states["corrupt.jpg"] == SKIPPED
    assert states["cat-pexels-20787.jpg"] in ("done", FLAGGED) and states[os.path.basename(COFFEE)] in ("done", FLAGGED)
    tips = {os.path.basename(window.strip.item(i).data(Qt.ItemDataRole.UserRole)): window.strip.item(i).toolTip()
            for i in range(window.strip.count())}
    assert "corrupt.jpg" in tips["corrupt.jpg"].split("reason:")[1]
    target = window.project.labels.image(CAT_B)
    assert target.status == DONE and len(target.points) == 4  # left_ear is absent on the source
    assert all(p.confidence is not None and p.fb_error is not None for p in target.points)
    assert window.project.labels.info["model"].startswith("RTN")
    assert not window.progress.isVisible()
    assert os.path.exists(window.project.autosave_path)  # autosaved after the transfer
    # the skipped target shows why, not an image; the done one shows points with their scores
    window.review.go_to(str(corrupt))
    assert "Skipped" in window.target_view.placeholder.textItem.toPlainText()
    assert window.target_view.image is None
    window.review.go_to(CAT_B)
    wait_shown(qtbot, window)
    assert len(window.target_layer.names) == 4 and window.target_layer.graph.adjacency is not None
    caption = window.target_layer.caption_texts[0]  # the full caption (a crowded view may show less)
    assert f"{target.points[0].confidence * 100:.0f}%" in caption and "px" in caption  # as the main window shows it


def test_broken_keypoint_file_is_a_message_in_the_window(make_window):
    window = make_window()
    assert not window.files.import_keypoints(os.path.join(LABELS, "broken.json"), CAT_A)
    assert "broken.json" in window.message_bar.text() and window.project is None
    assert window.files.import_keypoints(os.path.join(LABELS, "chelsea.csv"), CAT_A)
    before = window.project.labels
    assert not window.files.import_keypoints(os.path.join(LABELS, "outside.csv"))
    assert "outside.csv" in window.message_bar.text() and window.project.labels is before


def test_drag_moves_a_point_to_the_drop_and_undo_redo(make_window, qtbot, tmp_path):
    project = corrected_project(tmp_path)
    window = make_window(project)
    wait_shown(qtbot, window)
    view = window.target_view
    original = project.labels.image(CAT_B).point("nose")
    start = widget_pos(view, original.x, original.y)
    end = start + QPoint(40, -25)
    drag(view, start, end)
    qtbot.waitUntil(lambda: project.labels.image(CAT_B).point("nose") != original, timeout=3000)
    moved = project.labels.image(CAT_B).point("nose")
    (x0, y0), (x1, y1) = image_pos(view, start), image_pos(view, end)
    assert moved.x == pytest.approx(original.x + x1 - x0, abs=1e-6)
    assert moved.y == pytest.approx(original.y + y1 - y0, abs=1e-6)
    assert moved.manual and abs(moved.x - original.x) > 5
    assert window.target_layer.graph.scatter.data["symbol"][window.target_layer.names.index("nose")] == "d"
    assert project.selection.names == {"nose"}
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert project.labels.image(CAT_B).point("nose") == original
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert project.labels.image(CAT_B).point("nose") == moved
    assert window.target_layer.positions[window.target_layer.names.index("nose")].tolist() == [moved.x, moved.y]


def test_click_select_ctrl_click_and_dragging_a_selection_moves_them_together(make_window, qtbot, tmp_path):
    project = corrected_project(tmp_path)
    window = make_window(project)
    wait_shown(qtbot, window)
    view, target = window.target_view, project.labels.image(CAT_B)
    eye, nose = target.point("left_eye"), target.point("nose")
    click(view, widget_pos(view, eye.x, eye.y))
    assert project.selection.image == CAT_B and project.selection.names == {"left_eye"}
    click(view, widget_pos(view, nose.x, nose.y), Qt.KeyboardModifier.ControlModifier)
    assert project.selection.names == {"left_eye", "nose"}
    start = widget_pos(view, nose.x, nose.y)
    drag(view, start, start + QPoint(-30, 20))
    qtbot.waitUntil(lambda: project.labels.image(CAT_B).point("nose") != nose, timeout=3000)
    moved = project.labels.image(CAT_B)
    dx, dy = moved.point("nose").x - nose.x, moved.point("nose").y - nose.y
    assert moved.point("left_eye").x == pytest.approx(eye.x + dx) and moved.point("left_eye").y == pytest.approx(eye.y + dy)
    assert moved.point("right_eye") == target.point("right_eye")
    assert project.undo_text == "fix points"  # a correction of a target
    # a Ctrl-drag on empty image is a rubber band: it selects what it encloses
    window.project.select(CAT_B)
    right = moved.point("right_eye")
    corner = widget_pos(view, right.x, right.y)
    drag(view, corner - QPoint(15, 15), corner + QPoint(15, 15), Qt.KeyboardModifier.ControlModifier)
    assert project.selection.names == {"right_eye"}


def test_arrow_keys_nudge_the_selection_and_accept_marks_reviewed(make_window, qtbot, tmp_path):
    project = corrected_project(tmp_path, targets=(CAT_B, COFFEE))
    window = make_window(project)
    wait_shown(qtbot, window)
    before = project.labels.image(CAT_B)
    project.select(CAT_B, ["left_eye", "right_eye"])
    QTest.keyClick(window, Qt.Key.Key_Right)
    QTest.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    after = project.labels.image(CAT_B)
    for name in ("left_eye", "right_eye"):
        assert (after.point(name).x, after.point(name).y) == (before.point(name).x + 1, before.point(name).y + 10)
        assert after.point(name).manual
    assert after.point("nose") == before.point("nose")
    QTest.keyClick(window, Qt.Key.Key_V)  # cycle visibility: visible -> occluded
    assert project.labels.image(CAT_B).point("left_eye").visibility == OCCLUDED
    QTest.keyClick(window, Qt.Key.Key_Delete)  # on a target: absent
    assert project.labels.image(CAT_B).point("right_eye").visibility == ABSENT
    QTest.keyClick(window, Qt.Key.Key_A)
    assert project.labels.image(CAT_B).reviewed
    assert window.strip.state(CAT_B) == REVIEWED and window.review.current == COFFEE  # moved on to the next
    QTest.keyClick(window, Qt.Key.Key_BracketLeft)
    assert window.review.current == CAT_B
    QTest.keyClick(window, Qt.Key.Key_PageDown)
    assert window.review.current == COFFEE
    QTest.keyClick(window, Qt.Key.Key_Return)
    assert project.labels.image(COFFEE).reviewed
    # worst first: flagged and unreviewed targets lead
    window.actions_by_name["worst_first"].setChecked(True)
    worst = project.labels.worst_first()
    assert window.strip.paths() == [p for p in worst if not project.labels.image(p).reviewed] + \
        [p for p in worst if project.labels.image(p).reviewed]


def test_enter_in_a_threshold_box_commits_the_threshold_and_accepts_nothing(make_window, qtbot, tmp_path):
    project = corrected_project(tmp_path)
    window = make_window(project)
    wait_shown(qtbot, window)
    window.activateWindow()
    box = window.min_confidence
    box.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is box, timeout=5_000)
    box.lineEdit().selectAll()
    QTest.keyClicks(box, "10")
    QTest.keyClick(box, Qt.Key.Key_Return)
    assert project.labels.settings.min_confidence == pytest.approx(0.10)
    assert not project.labels.image(CAT_B).reviewed
    assert "default" in box.toolTip().lower()


def test_clicking_the_source_adds_a_keypoint_renamed_in_the_table(make_window, qtbot, tmp_path):
    window = make_window()
    window.files.new_from_image(CAT_A)
    qtbot.waitUntil(lambda: window.source_view.image is not None, timeout=10_000)
    click(window.source_view, widget_pos(window.source_view, 100, 80))
    source = window.project.labels.source
    assert [p.name for p in source.points] == ["point_1"]
    assert source.point("point_1").x == pytest.approx(100, abs=2) and source.point("point_1").manual
    window.table.item(0, 0).setText("tail")  # what inline editing commits
    assert window.project.labels.names == ("tail",)
    window.table.item(0, 0).setText("")  # refused: the message says why and the name stays
    assert "tail" in window.message_bar.text() and window.table.item(0, 0).text() == "tail"
    combo = window.table.cellWidget(0, 1)
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    assert window.project.labels.source.point("tail").visibility == OCCLUDED
    assert window.project.labels.source.point("tail").visibility != VISIBLE


def test_save_reopen_and_restore_the_autosave(make_window, qtbot, tmp_path, asked):
    project = corrected_project(tmp_path)
    window = make_window(project)
    path = str(tmp_path / "session.rtnproj")
    window.project.place_point(CAT_B, "nose", 100.25, 120.5)
    window.project.set_reviewed([CAT_B])
    assert window.files.save(path) and not window.project.modified
    reopened = make_window(answer="Restore")
    assert reopened.files.open_project(path) and reopened.project.labels == window.project.labels
    assert not asked  # no autosave: no question
    window.project.move_points(CAT_B, ["left_eye"], 2, 3)
    window.files.autosave()
    assert os.path.exists(path + ".autosave")
    assert reopened.files.open_project(path)
    assert asked and asked[-1][0] == "Restore autosave?"
    assert reopened.project.labels == window.project.labels and reopened.project.modified
    declined = make_window(answer="Open the saved file")
    assert declined.files.open_project(path)
    assert declined.project.labels.image(CAT_B).point("left_eye") != window.project.labels.image(CAT_B).point("left_eye")
    broken = tmp_path / "broken.rtnproj"
    broken.write_text("{")
    assert not declined.files.open_project(str(broken)) and "broken.rtnproj" in declined.message_bar.text()


def test_autosave_timer_writes_after_changes_and_leaves_the_status_line_alone(make_window, qtbot, tmp_path):
    window = make_window(corrected_project(tmp_path))
    window.files.autosave_timer.setInterval(50)
    window.project.move_points(CAT_B, ["nose"], 1, 1)
    window.project.move_points(CAT_B, ["nose"], 1, 1)
    window.undo_step()  # a changed project still: it autosaves
    qtbot.waitUntil(lambda: os.path.exists(window.project.autosave_path), timeout=3000)
    assert window.autosave_note.text().startswith("Autosaved")
    assert window.status_text.isVisible() and window.status_text.text() == "Undid move points."


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_export_reads_back_equal(make_window, tmp_path, format_name):
    project = corrected_project(tmp_path, targets=(CAT_B, COFFEE))
    project.place_point(CAT_B, "nose", 50.5, 60.25)
    project.set_reviewed([CAT_B])
    window = make_window(project)
    extension = {"coco": ".json", "labelme": "", "labelstudio": ".json", "cvat": ".xml", "csv": ".csv"}[format_name]
    path = str(tmp_path / "out" / f"labels{extension}")
    assert window.files.export(format_name, path, reviewed_only=False)
    assert read_labels(path) == canonical(project.labels.for_export())
    reviewed = str(tmp_path / "reviewed" / f"labels{extension}")
    assert window.files.export(format_name, reviewed, reviewed_only=True)
    back = read_labels(reviewed)
    assert back == canonical(project.labels.for_export(reviewed_only=True)) and len(back.targets) == 1


def test_export_dialogs_start_in_the_project_folder_else_the_last_one_else_home(make_window, tmp_path, monkeypatch):
    """Never beside the images (the shipped samples): home, then the folder last exported to, then the saved project's."""
    home, exports, saved = tmp_path / "home", tmp_path / "exports", tmp_path / "saved"
    for folder in (home, exports, saved):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    starts, answers = [], [str(exports / "points.csv"), str(exports / "labelme"), ""]

    def choose_folder(parent, title, start):
        starts.append(start)
        return answers.pop(0)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", choose_folder)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda parent, title, start, filters: (choose_folder(parent, title, os.path.dirname(start)), ""))
    window = make_window(corrected_project(tmp_path))
    window.files.export_dialog("csv")
    assert os.path.exists(exports / "points.csv")
    window.files.export_dialog("labelme")  # a format written as a folder of files
    assert os.path.isdir(exports / "labelme")
    assert window.files.save(str(saved / "labels.rtnproj"))
    window.files.export_dialog("csv")  # cancelled
    assert starts == [str(home), str(exports), str(saved)]
    assert os.path.dirname(CAT_A) not in starts


def test_help_lists_the_shortcuts_and_closing_mid_transfer_is_clean(make_window, qtbot, tmp_path, untrained):
    window = make_window(corrected_project(tmp_path, targets=(CAT_B, COFFEE)), matcher=untrained)
    QTest.keyClick(window, Qt.Key.Key_F1)
    dialog = window.help_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    table = dialog.findChild(QTableWidget)
    texts = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert {"Ctrl+Z", "A, Ctrl+Return", "PgDown, ]"} <= texts
    window.transfer.start_unreviewed()
    window.transfer.cancel()
    qtbot.waitUntil(lambda: not window.transfer.running, timeout=60_000)
    window.close()
    assert not window.transfer.worker_thread.thread.isRunning()


class SlowMatcher(FakeMatcher):
    """The fake matcher, mirrored, taking a while per image pair: time to edit or switch mid-run."""

    def __init__(self, mirror=False, confidence=CLEAN):
        super().__init__(mirror, confidence)

    def match(self, source, target, fixed=()):
        time.sleep(0.15)
        return super().match(source, target, fixed)


def test_corrections_made_during_a_transfer_are_kept(make_window, qtbot, tmp_path):
    project = corrected_project(tmp_path, targets=(CAT_B, COFFEE))
    window = make_window(project, matcher=SlowMatcher(mirror=True))
    window.transfer.start_unreviewed()  # both targets again (neither is reviewed)
    project.place_point(CAT_B, "nose", 123.5, 234.5)  # while the worker runs
    qtbot.waitUntil(lambda: not window.transfer.running, timeout=20_000)
    nose = project.labels.image(CAT_B).point("nose")
    assert (nose.x, nose.y, nose.manual) == (123.5, 234.5, True)
    eye = project.labels.image(CAT_B).point("left_eye")
    assert eye.x > 451 / 2 and LR_SWAP in eye.flags  # the mirrored result did arrive for the rest


def test_opening_another_project_mid_transfer_ignores_the_old_run(make_window, qtbot, tmp_path):
    window = make_window(corrected_project(tmp_path, targets=(CAT_B, COFFEE)), matcher=SlowMatcher(mirror=True))
    window.transfer.start_unreviewed()
    other = corrected_project(tmp_path, targets=(CAT_B, COFFEE))
    before = other.labels
    window.set_project(other)
    assert not window.transfer.running
    QTest.qWait(1000)  # the old run ends after its current target; nothing of it is applied
    assert other.labels is before
    window.transfer.start([COFFEE])
    qtbot.waitUntil(lambda: not window.transfer.running, timeout=20_000)
    assert other.labels.image(COFFEE) != before.image(COFFEE) and other.undo_text.startswith("transfer")


def test_closing_asks_first_and_quitting_the_app_keeps_the_work(make_window, tmp_path, asked):
    window = make_window(corrected_project(tmp_path), answer="Cancel")
    window.project.move_points(CAT_B, ["nose"], 1, 1)
    assert not window.close() and window.isVisible()  # "Unsaved changes": Cancel
    assert asked[-1][0] == "Unsaved changes"
    window._on_app_quit()  # the application quits with the window open (e.g. its parent closed)
    assert os.path.exists(window.project.autosave_path) and not window.transfer.worker_thread.thread.isRunning()
    other = tmp_path / "other"
    other.mkdir()
    discarding = make_window(corrected_project(other))
    discarding.project.move_points(CAT_B, ["nose"], 1, 1)
    discarding.files.autosave()
    assert os.path.exists(discarding.project.autosave_path)
    assert discarding.close() and not os.path.exists(discarding.project.autosave_path)


def test_an_unsaved_session_is_offered_back_before_a_new_one_replaces_it(make_window, qtbot, asked):
    crashed = make_window()
    assert crashed.files.import_keypoints(os.path.join(LABELS, "chelsea.csv"), CAT_A)
    crashed.project.move_points(CAT_A, ["nose"], 3, 4)
    crashed.files.autosave()
    assert not crashed.actions_by_name["recover"].isEnabled()  # its own autosave
    assert not make_window().actions_by_name["recover"].isEnabled()  # nor another live window's
    crashed.project.close()  # ... and then the process died: the OS dropped its autosave lock
    later = make_window(answer="Recover it")
    assert later.actions_by_name["recover"].isEnabled()
    assert not later.files.import_keypoints(os.path.join(LABELS, "chelsea_coco.json"), CAT_A)
    assert asked[-1][0] == "Unsaved session found"
    assert later.project.labels == crashed.project.labels


def test_every_session_left_behind_is_offered_and_a_clean_close_leaves_none(make_window, qtbot, asked):
    """Two untitled windows die with work in them: each is listed under File > Recover Unsaved Session
    (newest first) and recovered as it was; a window closed with nothing unsaved leaves nothing."""
    crashed = []
    for dx in (3, 5):
        window = make_window()
        assert window.files.import_keypoints(os.path.join(LABELS, "chelsea.csv"), CAT_A)
        window.project.move_points(CAT_A, ["nose"], dx, 4)
        window.files.autosave()
        window.project.close()  # the process died: the OS dropped its lock, its autosave stays
        crashed.append(window.project)
    os.utime(crashed[0].autosave_path, (1_000_000_000, 1_000_000_000))  # the first died long ago
    clean = make_window()
    assert clean.files.import_keypoints(os.path.join(LABELS, "chelsea.csv"), CAT_A)  # both kept for later
    assert asked[-1][2] == ("Recover the newest", "Discard them all", "Keep them for later")
    assert asked[-1][1].count("• cat-chelsea.png: 5 keypoints, 0 targets, autosaved ") == 2
    questions = len(asked)
    assert clean.files.import_keypoints(os.path.join(LABELS, "chelsea.csv"), CAT_A)  # kept: not asked again
    assert len(asked) == questions
    clean.project.move_points(CAT_A, ["nose"], 1, 1)
    clean.files.autosave()
    clean.project.undo()
    assert clean.close() and not os.path.exists(clean.project.autosave_path)
    later = make_window()
    assert later.status_text.text() == "2 unsaved sessions can be recovered: File > Recover Unsaved Session."
    later.recover_menu.aboutToShow.emit()
    entries = later.recover_menu.actions()
    assert len(entries) == 2 and later.actions_by_name["recover"].isEnabled()
    assert entries[1].text().endswith(time.strftime("%Y-%m-%d %H:%M", time.localtime(1_000_000_000)))
    entries[1].trigger()  # the older one
    assert later.project.labels == crashed[0].labels and later.project.modified
    assert "Recovered cat-chelsea.png: 5 keypoints" in later.status_text.text()
    again = make_window(answer="Recover it")  # the other one is still offered, alone now
    assert not again.files.import_keypoints(os.path.join(LABELS, "chelsea.csv"), CAT_A)
    assert again.project.labels == crashed[1].labels and again.files.recoverable() == []


def test_cancel_stops_between_targets_and_keeps_what_was_done(make_window, qtbot, tmp_path):
    labels = read_source(os.path.join(LABELS, "chelsea.csv"), CAT_A, (451, 300)).add_targets([CAT_B, COFFEE, DOG])
    window = make_window(Project(labels), matcher=SlowMatcher())
    window.transfer.start()
    qtbot.waitUntil(lambda: window.progress.value() >= 1, timeout=20_000)
    window.transfer.cancel()
    assert not window.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not window.transfer.running, timeout=20_000)
    assert "cancelled" in window.status_text.text()
    assert window.strip.state(CAT_B) == "done" and window.strip.state(DOG) == "pending"


def test_place_a_missing_point_by_clicking_and_delete_on_the_source(make_window, qtbot, tmp_path):
    folder = tmp_path / "targets"
    folder.mkdir()
    shutil.copy(CAT_B, folder / "a.jpg")
    (folder / "notes.txt").write_text("not an image")
    window = make_window(corrected_project(tmp_path))
    window.review.add_targets([str(folder)])  # a folder: its images
    new = str(folder / "a.jpg")
    assert window.strip.paths() == [CAT_B, new] and window.review.current == CAT_B  # where the user was
    wait_shown(qtbot, window)
    window.table.selectRow(window.table.names.index("left_ear"))  # left_ear is missing on the target
    assert window.project.selection.names == {"left_ear"}
    view = window.target_view
    click(view, widget_pos(view, 100, 50))
    placed = window.project.labels.image(CAT_B).point("left_ear")
    assert placed is not None and placed.manual and placed.x == pytest.approx(100, abs=2)
    source = window.project.labels.source.image
    window.project.select(source, ["right_ear"])
    QTest.keyClick(window, Qt.Key.Key_Delete)  # on the source: the keypoint goes everywhere
    assert "right_ear" not in window.project.labels.names
    assert window.project.labels.image(CAT_B).point("right_ear") is None
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert "right_ear" in window.project.labels.names


def test_open_labeling_window_starts_from_a_source_its_points_and_targets(qtbot, tmp_path):
    from app.labeling import open_labeling_window
    options = dict(matcher_factory=lambda device, weights: FakeMatcher(), ask=lambda *a: "Discard",
                   autosave_dir=str(tmp_path / "autosave"))
    window = open_labeling_window(source_path=CAT_A, target_paths=[CAT_B, CAT_A],
                                  keypoints=[("p1", 120.5, 80), ("p2", 300, 200.25)], **options)
    qtbot.addWidget(window)
    labels = window.project.labels
    assert labels.names == ("p1", "p2") and labels.source.image == os.path.abspath(CAT_A)
    assert [(p.x, p.y, p.manual) for p in labels.source.points] == [(120.5, 80.0, True), (300.0, 200.25, True)]
    assert [t.image for t in labels.targets] == [os.path.abspath(CAT_B)]  # the source is no target
    assert window.review.current == os.path.abspath(CAT_B) and window.strip.paths() == [os.path.abspath(CAT_B)]
    window.project.select(os.path.abspath(CAT_B))
    assert window.table.item(0, VISIBILITY).text() == "not run"  # not "missing": nothing was transferred yet
    assert window.table.item(0, VISIBILITY).toolTip().startswith("Not transferred yet (Ctrl+R)")
    # a point off the image is one message; the window stays up and empty
    off = open_labeling_window(source_path=CAT_A, keypoints=[("p1", 10, 10), ("p2", 451, 10)], **options)
    qtbot.addWidget(off)
    assert off.project is None and "outside the image" in off.message_bar.text()
    twice = open_labeling_window(source_path=CAT_A, keypoints=[("p1", 10, 10), ("p1", 20, 10)], **options)
    qtbot.addWidget(twice)
    assert twice.project is None and "unique" in twice.message_bar.text()


def test_the_sample_cat_opens_from_the_empty_window_with_points_on_its_features(make_window):
    window = make_window()
    assert window.empty_state.isVisible()
    window.empty_state.linkActivated.emit("sample")  # the "try the sample cat" link
    assert not window.empty_state.isVisible()
    labels = window.project.labels
    source, target = (os.path.abspath(p) for p in SAMPLE_PAIR)
    assert labels.source.image == source and [t.image for t in labels.targets] == [target]
    width, height = labels.source.size
    points = {p.name: p for p in labels.source.points}
    assert len(points) >= 5 and all(0 <= p.x <= width - 1 and 0 <= p.y <= height - 1 for p in points.values())
    pixels = load_image(source).pixels.astype(float)  # RGB, full size (451 x 300)
    def mean_rgb(name):
        x, y = round(points[name].x), round(points[name].y)
        return pixels[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(axis=0)
    median = np.median(pixels.mean(axis=2))
    assert all(mean_rgb(eye).mean() < median / 3 for eye in ("left_eye", "right_eye"))  # on the dark pupils
    red, green, _ = mean_rgb("nose")
    assert red > 2 * green  # on the pink nose leather
    assert points["left_eye"].x > points["right_eye"].x  # the cat's own left: the image's right


def test_flags_have_shapes_and_glyphs_not_only_colours(make_window, qtbot):
    labels = read_source(os.path.join(LABELS, "chelsea_coco.json"), CAT_A, (451, 300))
    project = Project(transfer_into(labels, FakeMatcher(mirror=True, confidence=0.05), [CAT_B]))
    window = make_window(project)
    wait_shown(qtbot, window)
    target = project.labels.image(CAT_B)
    assert LR_SWAP in target.point("left_eye").flags and target.point("nose").flags == ("low_confidence",)
    layer = window.target_layer
    symbols = dict(zip(layer.names, layer.graph.scatter.data["symbol"]))
    assert symbols["left_eye"] == symbols["right_eye"] == "s" and symbols["nose"] == "t1"  # square, triangle
    assert point_symbol(Point("p", 1, 1, flags=(FB_FAIL,))) == "x" and point_symbol(Point("p", 1, 1)) == "o"
    captions = dict(zip(layer.names, layer.caption_texts))
    assert "■ L/R swap" in captions["left_eye"] and "▲ low conf" in captions["nose"]
    row = window.table.names.index("nose")
    assert window.table.item(row, FLAGS).text().startswith("▲ low conf")
    assert flag_badge(target) == "■2 ▲2"  # both eyes swapped; nose and right ear low confidence
    table, eye = window.table, window.table.names.index("left_eye")
    text = table.item(eye, FLAGS).text()
    assert text == "▲ low conf, ■ L/R swap"
    assert table.columnWidth(FLAGS) > table.fontMetrics().horizontalAdvance(text), "the Flags column shows it all"
    assert table.columnViewportPosition(FLAGS) + table.columnWidth(FLAGS) <= table.viewport().width(), \
        "... without scrolling in the dock's default width (the coordinates come after it)"
    assert "opposite order from the source" in table.item(eye, FLAGS).toolTip()
    assert "below the threshold" in table.item(eye, FLAGS).toolTip()


def test_captions_use_the_app_font_stay_inside_the_view_avoid_each_other_and_can_be_hidden(make_window, qtbot):
    corners = [("top_left", 1, 1), ("top_right", 449, 1), ("bottom_left", 1, 298), ("bottom_right", 449, 298),
               ("a", 200, 150), ("b", 206, 152), ("c", 212, 149)]
    window = make_window()
    window.resize(900, 640)
    assert window.files.new_from_points(CAT_A, corners)
    qtbot.waitUntil(lambda: window.source_view.image is not None and len(window.source_layer.captions) == 7)
    layer, view = window.source_layer, window.source_view
    assert layer.captions[0].textItem.font() == QApplication.font()
    view_rect = view.view_box.sceneBoundingRect()
    rects = [c.sceneBoundingRect() for c in layer.captions]
    assert all(c.isVisible() for c in layer.captions)
    assert all(view_rect.contains(r) for r in rects), (view_rect, rects)
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    QTest.keyClick(window, Qt.Key.Key_C)  # View > Show Point Captions off
    assert not any(c.isVisible() for c in layer.captions + window.target_layer.captions)
    QTest.keyClick(window, Qt.Key.Key_C)
    assert all(c.isVisible() for c in layer.captions)


def test_crowded_captions_hide_no_marker_and_the_selected_point_keeps_its_caption(make_window, qtbot):
    """A tight cluster: captions that would cover another point's marker are left out (the selected
    point's stays); zoomed in, the points spread and every caption comes back."""
    cluster = [(f"front_paw_{i}", 200 + 5 * (i % 3), 150 + 5 * (i // 3)) for i in range(9)]
    window = make_window()
    window.resize(1400, 800)
    assert window.files.new_from_points(CAT_A, cluster)
    qtbot.waitUntil(lambda: window.source_view.image is not None and len(window.source_layer.captions) == 9)
    layer, box = window.source_layer, window.source_view.view_box
    window.project.select(CAT_A, {"front_paw_4"})  # the middle one

    def covered_markers(but="front_paw_4"):
        """(caption, marker) pairs where a shown caption (other than ``but``'s) covers another point's marker."""
        centres = [box.mapViewToScene(QPointF(x, y)) for _, x, y in cluster]
        shown = [(i, c.sceneBoundingRect()) for i, c in enumerate(layer.captions)
                 if c.isVisible() and layer.names[i] != but]
        return [(layer.names[i], name) for i, rect in shown for (name, _, _), centre in zip(cluster, centres)
                if name != layer.names[i] and rect.adjusted(-4, -4, 4, 4).contains(centre)]

    middle = layer.captions[layer.names.index("front_paw_4")]
    assert middle.isVisible() and middle.textItem.toPlainText() == "front_paw_4"
    assert not all(c.isVisible() for c in layer.captions), "the cluster is crowded at this zoom"
    assert covered_markers() == []


    def hover_tip(x, y) -> list[str]:
        send_mouse(window.source_view, QEvent.Type.MouseMove, widget_pos(window.source_view, x, y),
                   Qt.MouseButton.NoButton)
        return box.toolTip().split("\n\n")

    tip = hover_tip(205, 155)  # the middle: every point of the cluster is under the pointer
    assert tip[:3] and set(tip[:3]) <= {name for name, _, _ in cluster} and tip[3] == "(6 others...)"
    box.setRange(xRange=(198, 212), yRange=(148, 162), padding=0)  # zoomed in: room for every caption
    qtbot.waitUntil(lambda: all(c.isVisible() for c in layer.captions))
    assert covered_markers(but=None) == []
    qtbot.waitUntil(lambda: hover_tip(200, 150) == ["front_paw_0"], timeout=3000)  # once repainted at this zoom


def review_project(tmp_path):
    """CAT_B and COFFEE transferred cleanly, DOG mirrored at low confidence: DOG is the worst target."""
    labels = read_source(os.path.join(LABELS, "chelsea_coco.json"), CAT_A, (451, 300))
    labels = transfer_into(labels, FakeMatcher(confidence=CLEAN), [CAT_B, COFFEE])
    labels = transfer_into(labels, FakeMatcher(mirror=True, confidence=0.05), [DOG])
    return Project(labels, autosave_path=str(tmp_path / "review.autosave"))


def test_worst_first_goes_to_the_worst_and_keeps_the_edited_target_in_place(make_window, qtbot, tmp_path):
    project = review_project(tmp_path)
    window = make_window(project)
    assert window.review.current == CAT_B
    QTest.keyClick(window, Qt.Key.Key_W)
    assert window.review.current == DOG and window.strip.paths()[0] == DOG
    window.review.go_to(COFFEE)
    assert window.strip.paths() == [DOG, CAT_B, COFFEE]
    right_eye = project.labels.image(COFFEE).point("right_eye")
    project.place_point(COFFEE, "left_eye", right_eye.x + 20, right_eye.y)  # now an L/R swap: worse than CAT_B
    assert [p.name for p in project.labels.image(COFFEE).flagged] == ["right_eye"]  # the model's side, not the hand's
    assert window.strip.paths() == [DOG, CAT_B, COFFEE] and window.review.current == COFFEE  # kept in place
    QTest.keyClick(window, Qt.Key.Key_BracketLeft)  # moving on re-sorts
    assert window.review.current == CAT_B and window.strip.paths() == [DOG, COFFEE, CAT_B]


def test_accepting_a_target_with_flags_asks_and_shift_a_accepts_saying_how_many(make_window, tmp_path, asked):
    project = review_project(tmp_path)
    window = make_window(project, answer="Keep reviewing")
    window.review.go_to(DOG)
    flagged = len(project.labels.image(DOG).flagged)
    QTest.keyClick(window, Qt.Key.Key_A)
    assert asked[-1][0] == "Accept with flagged points?" and f"{flagged} flagged" in asked[-1][1]
    assert not project.labels.image(DOG).reviewed and window.review.current == DOG
    questions = len(asked)
    QTest.keyClick(window, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert project.labels.image(DOG).reviewed and len(asked) == questions  # no question with Shift
    assert f"{flagged} flagged point(s) left" in window.status_text.text()
    QTest.keyClick(window, Qt.Key.Key_A)  # CAT_B (shown next) has no flags: accepted at once
    assert project.labels.image(CAT_B).reviewed and len(asked) == questions
    assert "Every transferred target" not in window.status_text.text()
    QTest.keyClick(window, Qt.Key.Key_A)  # COFFEE, the last one: the status says what comes next
    assert project.labels.image(COFFEE).reviewed
    assert window.status_text.text().endswith("Every transferred target is reviewed: Export > Reviewed Targets "
                                              "Only writes them.")
    fresh = str(tmp_path / "fresh.jpg")
    shutil.copy(CAT_B, fresh)
    window.review.add_targets([fresh])
    window.review.go_to(fresh)
    QTest.keyClick(window, Qt.Key.Key_A)  # not transferred yet: nothing to accept
    assert not project.labels.image(fresh).reviewed and "transfer first" in window.message_bar.text()


def test_esc_clears_the_selection_only_and_shift_esc_cancels_the_run(make_window, qtbot, tmp_path):
    labels = read_source(os.path.join(LABELS, "chelsea.csv"), CAT_A, (451, 300)).add_targets([CAT_B, COFFEE, DOG])
    window = make_window(Project(labels), matcher=SlowMatcher())
    window.transfer.start()
    window.project.select(window.project.labels.source.image, ["nose"])
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert window.project.selection.names == frozenset() and window.transfer.running
    assert window.cancel_button.isVisible() and "Shift+Esc" in window.cancel_button.toolTip()
    QTest.keyClick(window, Qt.Key.Key_Escape, Qt.KeyboardModifier.ShiftModifier)
    assert not window.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not window.transfer.running, timeout=20_000)
    assert "cancelled" in window.status_text.text() and window.strip.state(DOG) == "pending"


def test_ctrl_r_runs_only_targets_not_run_yet_and_rerunning_all_is_its_own_command(make_window, qtbot, tmp_path):
    matcher = FakeMatcher()
    project = corrected_project(tmp_path)  # CAT_B transferred
    project.add_targets([COFFEE])
    window = make_window(project, matcher=matcher)
    done = project.labels.image(CAT_B)
    QTest.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.transfer.running and project.labels.image(COFFEE).status == DONE, timeout=20_000)
    assert project.labels.image(CAT_B) is done  # not run again
    per_target = matcher.calls
    QTest.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # nothing left: a message
    assert "Ctrl+Alt+R" in window.message_bar.text() and matcher.calls == per_target
    QTest.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: not window.transfer.running and matcher.calls == 3 * per_target, timeout=20_000)


def test_the_window_fits_a_1366x768_screen_and_images_refit_after_resizing(make_window, qtbot, tmp_path):
    window = make_window(corrected_project(tmp_path))
    screen = window.screen().availableGeometry()
    assert window.frameGeometry().width() <= screen.width() and window.height() <= screen.height()
    wait_shown(qtbot, window)
    for width, height in ((1366 - 16, 768 - 40), (1024, 600)):
        window.resize(width, height)
        QTest.qWait(50)
        assert (window.width(), window.height()) == (width, height)  # the layout allows it
        for widget in (window.min_confidence, window.max_fb, window.table, window.strip, window.strip_legend,
                       window.summary_label,
                       window.source_view, window.target_view, window.source_title, window.target_title):
            corner = widget.mapTo(window, widget.rect().bottomRight())
            assert widget.isVisible() and window.rect().contains(corner), (widget, width, height)
            assert widget.width() >= widget.minimumSizeHint().width() or widget in (window.source_title,
                                                                                    window.target_title)
    view = window.target_view
    window.resize(700, 480)
    QTest.qWait(50)
    window.resize(1300, 720)
    QTest.qWait(50)
    image, shown = view.image_rect(), view.view_box.viewRect()
    assert shown.contains(image)  # the whole image, filling the view along one side
    assert max(image.width() / shown.width(), image.height() / shown.height()) > 0.9


class Recording(FakeMatcher):
    """The fake matcher, noting the points each match has fixed (``fixes``), taking ``seconds`` per pair."""

    def __init__(self, confidence=CLEAN, seconds=0.0):
        super().__init__(confidence=confidence)
        self.fixes, self.seconds = [], seconds

    def match(self, source, target, fixed=()):
        time.sleep(self.seconds)
        self.fixes.append(list(fixed))
        return super().match(source, target, fixed)


def test_a_drag_on_a_target_re_runs_it_with_the_correction_fixed_as_one_undo_step(make_window, qtbot, tmp_path):
    project = corrected_project(tmp_path)
    matcher = Recording(confidence=0.3)  # the re-run's scores differ
    window = make_window(project, matcher=matcher)
    wait_shown(qtbot, window)
    original = project.labels
    nose = original.image(CAT_B).point("nose")
    start = widget_pos(window.target_view, nose.x, nose.y)
    drag(window.target_view, start, start + QPoint(40, -25))
    qtbot.waitUntil(lambda: len(matcher.fixes) == 1 and not window.transfer.running, timeout=20_000)
    moved = project.labels.image(CAT_B).point("nose")
    source_nose = original.source.point("nose")
    assert matcher.fixes[0] == [((source_nose.x, source_nose.y), (moved.x, moved.y))]  # forward, the drop fixed
    assert moved.manual and project.labels.image(CAT_B).point("left_eye").confidence == 0.3
    assert (moved.confidence, moved.fb_error, moved.flags) == (None, None, ())  # a person's point: no model score
    row = window.table.names.index("nose")
    assert window.table.item(row, CONFIDENCE).text() == "by hand" and window.table.item(row, FB).text() == ""
    assert project.undo_text == "fix nose"  # the re-run folded into the drag
    assert window.status_text.text().endswith("fixed by hand: none of the 3 other point(s) moved; "
                                              "3 flagged point(s) left.")  # the fake moves nothing; 0.3 is low
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert project.labels == original and project.labels.image(CAT_B).point("nose") == nose  # its score back
    assert window.table.item(row, CONFIDENCE).text() == f"{nose.confidence * 100:.0f}%"


def test_a_nudge_on_a_target_re_runs_it_like_a_drag_as_one_undo_step(make_window, qtbot, tmp_path):
    project = corrected_project(tmp_path)
    matcher = Recording(confidence=0.3)  # the re-run's scores differ
    window = make_window(project, matcher=matcher)
    wait_shown(qtbot, window)
    original = project.labels
    nose, source_nose = original.image(CAT_B).point("nose"), original.source.point("nose")
    project.select(CAT_B, ["nose"])
    QTest.keyClick(window, Qt.Key.Key_Right)
    assert not matcher.fixes  # the re-run waits for the nudging to pause
    qtbot.waitUntil(lambda: len(matcher.fixes) == 1 and not window.transfer.running, timeout=20_000)
    assert matcher.fixes[0] == [((source_nose.x, source_nose.y), (nose.x + 1, nose.y))]
    assert project.labels.image(CAT_B).point("left_eye").confidence == 0.3
    assert project.undo_text == "fix nose" and window.status_text.text().startswith("Re-ran cat-pexels-20787.jpg")
    assert window.actions_by_name["undo"].text() == "&Undo fix nose"
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert project.labels == original and window.status_text.text() == "Undid fix nose."


def test_held_arrow_keys_re_run_once_and_a_later_nudge_supersedes_a_running_re_run(make_window, qtbot, tmp_path):
    project = corrected_project(tmp_path)
    matcher = Recording(confidence=0.3, seconds=1.0)  # slow: a nudge comes while the re-run runs
    window = make_window(project, matcher=matcher)
    wait_shown(qtbot, window)
    nose, source_nose = project.labels.image(CAT_B).point("nose"), project.labels.source.point("nose")
    before = project.labels.image(CAT_B)
    project.select(CAT_B, ["nose"])
    for _ in range(5):  # a held key: presses closer together than the pause
        QTest.keyClick(window, Qt.Key.Key_Right)
        QTest.qWait(50)
    qtbot.waitUntil(lambda: len(matcher.fixes) == 1 and not window.transfer.running, timeout=20_000)
    assert matcher.fixes == [[((source_nose.x, source_nose.y), (nose.x + 5, nose.y))]]
    project.undo()  # the burst and its re-run are one step
    assert project.labels.image(CAT_B) == before
    project.redo()
    assert project.labels.image(CAT_B).point("nose").x == nose.x + 5
    QTest.keyClick(window, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: window.transfer.running, timeout=5000)
    QTest.keyClick(window, Qt.Key.Key_Down)
    assert window.transfer.running  # the first re-run is still computing when the second nudge comes
    qtbot.waitUntil(lambda: len(matcher.fixes) == 3 and not window.transfer.running, timeout=20_000)
    assert matcher.fixes[2] == [((source_nose.x, source_nose.y), (nose.x + 5, nose.y + 2))]
    assert project.undo_text == "fix nose"  # the stale re-run's result was dropped, the last one folded in
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    undone = project.labels.image(CAT_B).point("nose")
    assert (undone.x, undone.y) == (nose.x + 5, nose.y + 1)


def test_a_correction_during_a_transfer_re_runs_its_target_when_the_transfer_ends(make_window, qtbot, tmp_path):
    """A transfer imposes the fixes it started with; a target corrected meanwhile re-runs after it."""
    project = corrected_project(tmp_path)
    matcher = Recording(confidence=0.3, seconds=1.0)
    window = make_window(project, matcher=matcher)
    wait_shown(qtbot, window)
    nose = project.labels.image(CAT_B).point("nose")
    window.transfer.start([CAT_B])  # a transfer again, without fixes
    qtbot.waitUntil(lambda: window.transfer.running, timeout=5000)
    start = widget_pos(window.target_view, nose.x, nose.y)
    drag(window.target_view, start, start + QPoint(40, -25))
    assert window.transfer.running and "re-runs with its corrections when the transfer ends" in \
        window.status_text.text()
    qtbot.waitUntil(lambda: len(matcher.fixes) == 2 and not window.transfer.running, timeout=20_000)
    moved, source_nose = project.labels.image(CAT_B).point("nose"), project.labels.source.point("nose")
    assert matcher.fixes == [[], [((source_nose.x, source_nose.y), (moved.x, moved.y))]]
    assert moved.manual and (moved.x, moved.y) != (nose.x, nose.y)


def test_removing_the_shown_target_shows_the_next_one_and_undo_brings_it_back(make_window, qtbot, tmp_path):
    other = str(tmp_path / "other.jpg")
    shutil.copy(CAT_B, other)
    project = corrected_project(tmp_path, targets=(CAT_B, other))
    window = make_window(project)
    wait_shown(qtbot, window)
    window.review.go_to(CAT_B)
    project.select(CAT_B, ["nose"])  # the removed target's point selected, as a person reviewing it would
    window.actions_by_name["remove_target"].trigger()
    assert [t.image for t in project.labels.targets] == [other]
    assert window.review.current == project.selection.image == other  # the next target, shown and edited
    assert "other.jpg" in window.target_title.text() and "Target 1/1" in window.target_title.text()
    assert window.table_title.text().endswith("other.jpg") and not window.message_bar.isVisible()
    assert window.status_text.text().startswith("Removed cat-pexels-20787.jpg from the targets")
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [t.image for t in project.labels.targets] == [CAT_B, other] and not window.message_bar.isVisible()


def test_the_confidence_threshold_reads_as_a_percentage_and_files_keep_the_fraction(make_window, tmp_path):
    project = corrected_project(tmp_path)  # the fake matcher's confidence: CLEAN (0.9)
    window = make_window(project)
    assert window.min_confidence.text() == f"{project.labels.settings.min_confidence * 100:.1f}%"
    window.min_confidence.setValue(95.0)
    assert project.labels.settings.min_confidence == pytest.approx(0.95)
    assert all("low_confidence" in p.flags for p in project.labels.image(CAT_B).points)
    window.min_confidence.setValue(80.0)
    assert not any(p.flags for p in project.labels.image(CAT_B).points)


def test_tiles_say_needs_review_until_a_person_accepts_and_the_legend_says_so(make_window, qtbot, tmp_path):
    clean, flagged, later, corrupt = (str(tmp_path / name) for name in ("clean.jpg", "flagged.jpg", "later.jpg",
                                                                           "corrupt.jpg"))
    for path in (clean, flagged, later):
        shutil.copy(CAT_B, path)
    open(corrupt, "wb").write(b"not an image")
    labels = read_source(os.path.join(LABELS, "chelsea.csv"), CAT_A, (451, 300))
    labels = transfer_into(labels, FakeMatcher(confidence=CLEAN), [clean, corrupt])
    labels = transfer_into(labels, FakeMatcher(mirror=True, confidence=0.05), [flagged]).add_targets([later])
    window = make_window(Project(labels))
    wait_shown(qtbot, window)
    strip = window.strip

    def tile(path):
        """(state, badge, tooltip's state line, the tile's corner colour)."""
        item = strip.item(strip.paths().index(path))
        corner = item.icon().pixmap(strip.iconSize()).toImage().pixelColor(1, 1)
        return (strip.state(path), badge(window.project.labels.image(path)), item.toolTip().splitlines()[1],
                (corner.red(), corner.green(), corner.blue()))

    state, glyph, tip, colour = tile(clean)
    assert (state, glyph, colour) == ("done", "?", STATE_STYLE["done"][0])
    assert tip.startswith("needs review: nothing flagged, but nobody has checked")
    state, glyph, tip, colour = tile(flagged)
    assert state == FLAGGED and glyph == flag_badge(window.project.labels.image(flagged)) and "▲" in glyph
    assert tip.startswith("flagged points to review") and colour == STATE_STYLE[FLAGGED][0]
    assert tile(later)[:3] == (PENDING, "…", "not transferred yet: transfer it (Ctrl+R)")
    assert tile(corrupt)[0] == SKIPPED and tile(corrupt)[2].startswith("skipped")
    assert not any(tick in tile(path)[1] for path in (clean, flagged, later, corrupt) for tick in "✓✔")
    window.review.go_to(clean)
    assert "needs review" in window.target_title.text()
    selected = strip.currentItem().icon().pixmap(strip.iconSize(), QIcon.Mode.Selected).toImage().pixelColor(1, 1)
    assert (selected.red(), selected.green(), selected.blue()) == STATE_STYLE["done"][0]  # amber, not tinted olive
    QTest.keyClick(window, Qt.Key.Key_A)  # accept: now, and only now, a tick
    assert tile(clean) == (REVIEWED, "✔", "reviewed: a person accepted its points", STATE_STYLE[REVIEWED][0])
    assert "2 done (1 reviewed, 1 awaiting review)" in window.summary_label.text()
    legend = window.strip_legend.text()
    for state, (colour, glyph) in STATE_STYLE.items():
        assert f"rgb{colour}; color:black'>&nbsp;{glyph}&nbsp;</span>" in legend
    assert "needs review" in legend and "reviewed" in window.strip_legend.toolTip()


def test_the_status_line_says_how_far_a_correction_moved_the_other_points_and_names_undo(make_window, qtbot,
                                                                                          tmp_path):
    class Following(FakeMatcher):
        """With a fix, every point follows it: the field shifts by the fix's offset."""
        def match(self, source, target, fixed=()):
            result = super().match(source, target, fixed)
            if fixed:
                (start, end), = fixed
                offset = np.subtract(end, FakeMatcher.match(self, source, target).map_points([start])[0])
                plain = result.map_points
                result.map_points = lambda points: plain(points) + offset
            return result

    project = corrected_project(tmp_path)
    window = make_window(project, matcher=Following(confidence=CLEAN))
    wait_shown(qtbot, window)
    original = project.labels.image(CAT_B)
    nose = original.point("nose")
    start = widget_pos(window.target_view, nose.x, nose.y)
    drag(window.target_view, start, start + QPoint(30, 20))
    qtbot.waitUntil(lambda: not window.transfer.running and "Re-ran" in window.status_text.text(), timeout=20_000)
    moved = project.labels.image(CAT_B)
    shift = np.hypot(moved.point("nose").x - nose.x, moved.point("nose").y - nose.y)
    assert shift > 10 and moved.point("left_eye").x == pytest.approx(original.point("left_eye").x
                                                                      + moved.point("nose").x - nose.x, abs=0.01)
    assert window.status_text.text() == (f"Re-ran cat-pexels-20787.jpg with 1 point(s) fixed by hand: 3 of the 3 "
                                         f"other point(s) moved, up to {shift:.1f} px; "
                                         f"{len(moved.flagged)} flagged point(s) left.")
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert project.labels.image(CAT_B) == original and window.status_text.text() == "Undid fix nose."
    QTest.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert project.labels.image(CAT_B) == moved and window.status_text.text() == "Redid fix nose."
