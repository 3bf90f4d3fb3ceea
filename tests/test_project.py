"""The session: undo/redo restore exact states, observers hear every change, files and autosave
survive a kill, and failed edits or transfers lose nothing."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rtn_core.labels.keypoints import DONE, SKIPPED, VISIBLE, ImageLabels, Point, TransferSettings, new_project
from rtn_core.labels.project import Change, Project, Selection, newer_autosave, read_project

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_labels(folder):
    source = ImageLabels(os.path.join(folder, "src.png"), (100, 80),
                         (Point("left_eye", 30, 20), Point("right_eye", 70, 20), Point("nose", 50, 40)))
    labels = new_project(source).add_targets([os.path.join(folder, "a.png")])
    return labels.with_transfer(ImageLabels(os.path.join(folder, "a.png"), (200, 100), (
        Point("left_eye", 60, 25, VISIBLE, 0.9, 1.0), Point("right_eye", 140, 25, VISIBLE, 0.8, 2.0),
        Point("nose", 100, 50, VISIBLE, 0.05, 1.0)), status=DONE))


@pytest.fixture
def project(tmp_path):
    return Project(make_labels(str(tmp_path)))


def test_undo_and_redo_restore_exact_states(project, tmp_path):
    a = str(tmp_path / "a.png")
    states = [project.labels]
    edits = [lambda: project.move_points(a, ["left_eye", "nose"], 3, -2),
             lambda: project.place_point(a, "right_eye", 150.5, 30.25),
             lambda: project.set_visibility(a, ["nose"], 1),
             lambda: project.add_point(project.labels.source.image, "tail", 90, 70),
             lambda: project.rename_keypoint("tail", "tail_tip"),
             lambda: project.delete_keypoints(["left_eye"]),
             lambda: project.set_reviewed([a]),
             lambda: project.set_settings(TransferSettings(min_confidence=0.6))]
    for edit in edits:
        edit()
        states.append(project.labels)
    assert len({id(s) for s in states}) == len(states)  # every edit made a new state
    assert project.undo_text == "change thresholds"
    for expected in reversed(states[:-1]):
        project.undo()
        assert project.labels == expected
    assert project.undo_text is None and not project.modified
    for expected in states[1:]:
        project.redo()
        assert project.labels == expected
    project.undo()
    project.undo()
    project.move_points(a, ["nose"], 1, 1)  # a new edit drops the redo branch
    assert project.redo_text is None and project.labels.image(a).point("nose").x == 104


def test_failed_edits_change_nothing(project, tmp_path):
    before = project.labels
    with pytest.raises(ValueError, match="a.png: point"):
        project.move_points(str(tmp_path / "a.png"), ["nose"], 500, 0)
    with pytest.raises(ValueError, match="no keypoint named 'tail'"):
        project.rename_keypoint("tail", "x")
    assert project.labels is before and project.undo_text is None


def test_observers_hear_which_images_changed_and_selection_follows_the_data(project, tmp_path):
    a = str(tmp_path / "a.png")
    heard = []
    unsubscribe = project.subscribe(heard.append)
    project.select(a, ["nose", "left_eye"])
    project.move_points(a, ["nose"], 1, 0)
    assert heard == [Change("selection"), Change("labels", (a,)), Change("history")]
    heard.clear()
    project.delete_keypoints(["nose"])
    assert heard[-1] == Change("selection") and project.selection == Selection(a, frozenset({"left_eye"}))
    unsubscribe()
    project.undo()
    assert len(heard) == 3  # nothing after unsubscribing
    with pytest.raises(KeyError, match="elsewhere.png: not in this project"):
        project.select("elsewhere.png")


def test_save_and_open_round_trip_with_relative_paths(project, tmp_path):
    path = str(tmp_path / "session.rtnproj")
    project.place_point(str(tmp_path / "a.png"), "nose", 11, 12)
    project.save(path)
    assert not project.modified
    stored = json.load(open(path))
    assert stored["labels"]["images"][1]["image"] == "a.png" and stored["format"] == "rtn-studio-project"
    reopened = Project.open(path)
    assert reopened.labels == project.labels and not reopened.modified
    with pytest.raises(ValueError, match="session.json: not an RTN Studio project file"):
        (tmp_path / "session.json").write_text("{}")
        read_project(str(tmp_path / "session.json"))


def test_autosave_writes_only_after_changes_and_saving_removes_it(project, tmp_path):
    path = str(tmp_path / "p.rtnproj")
    project.save(path)
    assert not project.autosave()
    project.place_point(str(tmp_path / "a.png"), "nose", 11, 12)
    assert project.autosave() and not project.autosave()
    assert newer_autosave(path) == path + ".autosave"
    project.save()
    assert not os.path.exists(path + ".autosave") and newer_autosave(path) is None


def test_autosave_restores_every_correction_after_a_kill(tmp_path):
    """A child process opens the project, corrects points, autosaves, and is killed with SIGKILL."""
    path = str(tmp_path / "p.rtnproj")
    Project(make_labels(str(tmp_path))).save(path)
    child = textwrap.dedent(f"""
        import sys, time
        from rtn_core.labels.project import Project
        project = Project.open({path!r})
        a = project.labels.targets[0].image
        project.place_point(a, "nose", 42.5, 43.5)
        project.move_points(a, ["left_eye", "right_eye"], -1, 2)
        project.set_reviewed([a])
        project.autosave()
        print("autosaved", flush=True)
        time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "autosaved"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert newer_autosave(path) == path + ".autosave"
    assert Project.open(path).labels.targets[0].point("nose").x == 100  # the project file is untouched
    restored = Project.open(path, use_autosave=True)
    target = restored.labels.targets[0]
    assert (target.point("nose").x, target.point("nose").y, target.point("left_eye").x) == (42.5, 43.5, 59)
    assert target.reviewed and restored.modified
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_transfer_with_a_broken_target_is_one_undo_step_and_keeps_corrections(tmp_path):
    from test_transfer import CAT_B, FakeMatcher
    labels = make_labels(str(tmp_path)).remove_targets([str(tmp_path / "a.png")])
    project = Project(new_project(ImageLabels(CAT_B, (640, 426), labels.source.points)))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n not really")
    target = str(tmp_path / "cat.jpg")
    os.link(CAT_B, target)
    project.transfer(FakeMatcher(), [target, str(broken)])
    project.place_point(target, "nose", 5, 5)
    before = project.labels
    project.transfer(FakeMatcher(mirror=True))  # every unreviewed target again
    assert project.labels.image(target).point("nose") == before.image(target).point("nose")
    assert project.labels.image(str(broken)).status == SKIPPED
    assert "broken.png" in project.labels.image(str(broken)).reason
    assert project.undo_text == "transfer"
    project.undo()
    assert project.labels == before


def test_save_as_from_an_unsaved_project_removes_its_autosave(project, tmp_path):
    unsaved = Project(project.labels, autosave_path=str(tmp_path / "untitled.autosave"))
    unsaved.move_points(str(tmp_path / "a.png"), ["nose"], 1, 1)
    assert unsaved.autosave()
    restored = Project(read_project(str(tmp_path / "untitled.autosave")))
    assert restored.labels == unsaved.labels
    unsaved.save(str(tmp_path / "named.rtnproj"))
    assert not os.path.exists(tmp_path / "untitled.autosave") and unsaved.autosave_path.endswith("named.rtnproj.autosave")


def test_numpy_coordinates_from_a_view_still_save(project, tmp_path):
    import numpy as np
    project.move_points(str(tmp_path / "a.png"), ["nose"], np.float32(0.5), np.float32(0.25))
    project.add_point(str(tmp_path / "a.png"), "tail", np.float32(3.5), np.float64(4))
    project.save(str(tmp_path / "p.rtnproj"))
    assert Project.open(str(tmp_path / "p.rtnproj")).labels == project.labels


def test_a_failed_save_as_keeps_the_old_file_and_autosave(project, tmp_path):
    path = str(tmp_path / "p.rtnproj")
    project.save(path)
    project.place_point(str(tmp_path / "a.png"), "nose", 11, 12)
    assert project.autosave()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    with pytest.raises(OSError):
        project.save(str(blocked / "new.rtnproj"))
    assert project.path == path and project.autosave_path == path + ".autosave" and project.modified
    assert os.path.exists(path + ".autosave")


def test_untitled_sessions_each_own_a_locked_autosave(project, tmp_path):
    """Two untitled windows: separate autosaves; neither is offered the other's live session nor can
    take it over; once a session ends its autosave is offered for recovery."""
    from rtn_core.labels.project import is_live, orphaned_autosaves
    folder = str(tmp_path / "autosaves")
    first, second = Project.untitled(project.labels, folder), Project.untitled(project.labels, folder)
    assert first.autosave_path != second.autosave_path
    for session in (first, second):
        session.move_points(str(tmp_path / "a.png"), ["nose"], 1, 1)
        assert session.autosave()
    assert orphaned_autosaves(folder) == [] and is_live(first.autosave_path)
    with pytest.raises(ValueError, match="another RTN Studio session is using it"):
        Project.recover(second.autosave_path)
    second.discard_autosave()  # Discard in one window deletes only its own recovery file
    assert os.path.exists(first.autosave_path) and not os.path.exists(second.autosave_path)
    first.close()
    assert orphaned_autosaves(folder) == [first.autosave_path]
    recovered = Project.recover(first.autosave_path)
    assert recovered.labels == first.labels and recovered.modified and orphaned_autosaves(folder) == []
    recovered.save(str(tmp_path / "kept.rtnproj"))  # Save As: the untitled autosave and its lock go
    assert os.listdir(folder) == [os.path.basename(second.autosave_path) + ".lock"]


def test_a_clean_close_leaves_no_autosave_and_each_dead_session_is_offered_and_described(project, tmp_path):
    """Three untitled sessions in one folder: one closes with nothing unsaved (its autosave goes), two die
    with work in them; both are offered, newest first, each described by what it holds."""
    from rtn_core.labels.project import describe_autosave, orphaned_autosaves
    folder, target = str(tmp_path / "autosaves"), str(tmp_path / "a.png")
    clean, first, second = (Project.untitled(project.labels, folder) for _ in range(3))
    clean.move_points(target, ["nose"], 1, 1)
    assert clean.autosave()
    clean.undo()  # back to where it started: nothing unsaved
    clean.close()
    assert not os.path.exists(clean.autosave_path) and orphaned_autosaves(folder) == []
    first.move_points(target, ["nose"], 2, 2)
    second.set_reviewed([target])
    for session in (first, second):
        assert session.autosave()
        session.close()  # the window went away with the work unsaved
    os.utime(first.autosave_path, (1_000_000_000, 1_000_000_000))  # first autosaved long before second
    assert orphaned_autosaves(folder) == [second.autosave_path, first.autosave_path]
    assert Project.recover(first.autosave_path).labels == first.labels
    assert Project.recover(second.autosave_path).labels.targets[0].reviewed
    text = describe_autosave(second.autosave_path)
    assert text.startswith("src.png: 3 keypoints, 1 target (1 reviewed), autosaved ")
    assert describe_autosave(first.autosave_path).endswith("autosaved " + time.strftime(
        "%Y-%m-%d %H:%M", time.localtime(1_000_000_000)))


def test_a_killed_untitled_session_is_offered_for_recovery(tmp_path):
    folder = str(tmp_path / "autosaves")
    child = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.join(ROOT, "tests")!r})
        from test_project import make_labels
        from rtn_core.labels.project import Project
        project = Project.untitled(make_labels({str(tmp_path)!r}), {folder!r})
        project.set_reviewed([project.labels.targets[0].image])
        project.autosave()
        print(project.autosave_path, flush=True)
        time.sleep(60)
    """)
    from rtn_core.labels.project import orphaned_autosaves
    process = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        autosave = process.stdout.readline().strip()
        assert os.path.exists(autosave) and orphaned_autosaves(folder) == []  # alive: not offered
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert orphaned_autosaves(folder) == [autosave]
    assert Project.recover(autosave).labels.targets[0].reviewed
