"""The keypoint data model: edits, flags, left/right pairs, merging transfers, review order."""
import pytest

from rtn_core.labels.formats import FORMATS, canonical, read_labels, write_labels

from rtn_core.labels.keypoints import (ABSENT, DONE, FB_FAIL, LOW_CONFIDENCE, LR_SWAP, OCCLUDED, SKIPPED, VISIBLE,
                                ImageLabels, LabelSet, Point, TransferSettings, assess, mirror_pairs, new_project)


def make_project():
    source = ImageLabels("src.png", (100, 80), (Point("left_eye", 30, 20), Point("right_eye", 70, 20),
                                                Point("nose", 50, 40)))
    labels = new_project(source, skeleton=[(0, 1), (1, 2), (0, 2)]).add_targets(["a.png", "b.png", "c.png"])
    labels = labels.with_transfer(ImageLabels("a.png", (200, 100), (
        Point("left_eye", 60, 25, VISIBLE, 0.9, 1.0), Point("right_eye", 140, 25, VISIBLE, 0.8, 2.0),
        Point("nose", 100, 50, VISIBLE, 0.05, 1.0)), status=DONE))
    labels = labels.with_transfer(ImageLabels("b.png", (100, 80), (
        Point("left_eye", 75, 20, VISIBLE, 0.9, 1.0), Point("right_eye", 25, 20, VISIBLE, 0.9, 1.0),
        Point("nose", 50, 40, VISIBLE, 0.9, 50.0)), status=DONE))
    return labels


def test_mirror_pairs_recognise_the_usual_spellings():
    names = ["left_eye", "right_eye", "paw_L", "paw_R", "l-ear", "r-ear", "Left Hip", "right hip",
             "left_x", "r_x", "nose", "l", "r"]
    assert mirror_pairs(names) == [("left_eye", "right_eye"), ("paw_L", "paw_R"), ("l-ear", "r-ear"),
                                   ("Left Hip", "right hip")]


def test_transferred_points_are_flagged_by_threshold_and_pair_order():
    labels = make_project()
    a, b = labels.image("a.png"), labels.image("b.png")
    assert a.point("nose").flags == (LOW_CONFIDENCE,) and a.point("left_eye").flags == ()
    assert b.point("left_eye").flags == (LR_SWAP,) and b.point("right_eye").flags == (LR_SWAP,)
    assert b.point("nose").flags == (FB_FAIL,)  # 50 px > 5% of the source's 100 px side
    assert labels.worst_first() == ["b.png", "a.png", "c.png"]  # pending c has no flags, confidence 1


def test_fixing_a_swap_by_hand_clears_its_flags():
    labels = make_project()
    fixed = labels.place_point("b.png", "left_eye", 25, 20).place_point("b.png", "right_eye", 75, 20)
    assert all(p.flags == () for p in fixed.image("b.png").points if p.name != "nose")
    assert fixed.image("b.png").point("left_eye").manual
    # a person placing both points of a pair in swapped order is trusted
    swapped = labels.set_visibility("b.png", ["left_eye", "right_eye"], VISIBLE)
    assert LR_SWAP not in swapped.image("b.png").point("left_eye").flags


def test_move_several_points_together_and_refuse_points_outside():
    labels = make_project()
    moved = labels.move_points("a.png", ["left_eye", "nose"], 5, -3)
    a = moved.image("a.png")
    assert (a.point("left_eye").x, a.point("left_eye").y, a.point("nose").x) == (65, 22, 105)
    assert a.point("left_eye").manual and not a.point("right_eye").manual
    assert a.point("nose").flags == ()  # placed by a person: no longer the model's guess
    with pytest.raises(ValueError, match=r"a.png: point \(200, 25\) lies outside the image \(200x100 px\)"):
        labels.move_points("a.png", ["left_eye", "right_eye"], 60, 0)
    with pytest.raises(ValueError, match="a.png has no keypoint named 'tail'"):
        labels.move_points("a.png", ["tail"], 1, 1)
    assert labels.place_point("a.png", "nose", 199.5, 99.5).image("a.png").point("nose").x == 199.5  # the far edge


def test_add_rename_delete_keypoints_keep_images_and_skeleton_consistent():
    labels = make_project().add_point("src.png", "tail", 90, 70, OCCLUDED)
    assert labels.names[-1] == "tail" and labels.source.point("tail").visibility == OCCLUDED
    with pytest.raises(ValueError, match="already has a keypoint named 'nose'"):
        labels.add_point("src.png", "nose", 1, 1)
    renamed = labels.rename_keypoint("left_eye", "eye_L")
    assert renamed.names[0] == "eye_L" and renamed.image("a.png").point("eye_L").x == 60
    with pytest.raises(ValueError, match="the name is empty or taken"):
        labels.rename_keypoint("nose", "tail")
    deleted = labels.delete_keypoints(["right_eye"])
    assert deleted.names == ("left_eye", "nose", "tail") and deleted.skeleton == ((0, 1),)
    assert all(im.point("right_eye") is None for im in deleted.images)


def test_visibility_review_and_export_form():
    labels = make_project().set_visibility("a.png", ["nose"], ABSENT).set_reviewed(["a.png"])
    with pytest.raises(ValueError, match="visibility must be 0"):
        labels.set_visibility("a.png", ["nose"], 3)
    exported = labels.for_export(reviewed_only=True)
    assert [im.image for im in exported.images] == ["src.png", "a.png"]
    assert exported.image("a.png").point("nose") is None
    assert [im.image for im in labels.for_export().images] == ["src.png", "a.png", "b.png"]


def test_merging_a_transfer_keeps_manual_points_and_skips_keep_old_points():
    labels = make_project().place_point("a.png", "nose", 10, 10).set_reviewed(["a.png"])
    fresh = ImageLabels("a.png", (200, 100), tuple(Point(n, 1, 1, VISIBLE, 0.9, 0.0) for n in labels.names),
                        status=DONE)
    merged = labels.with_transfer(fresh).image("a.png")
    assert merged.point("nose") == labels.image("a.png").point("nose")
    assert merged.point("left_eye").x == 1 and not merged.reviewed
    skipped = labels.with_transfer(ImageLabels("a.png", status=SKIPPED, reason="gone"))
    assert skipped.image("a.png").points == labels.image("a.png").points
    assert (skipped.image("a.png").status, skipped.image("a.png").reason) == (SKIPPED, "gone")


def test_settings_change_recomputes_flags_and_dicts_round_trip():
    labels = make_project().with_settings(TransferSettings(min_confidence=0.95, max_fb_fraction=0.9))
    assert labels.image("a.png").point("left_eye").flags == (LOW_CONFIDENCE,)
    assert FB_FAIL not in labels.image("b.png").point("nose").flags
    assert LabelSet.from_dict(labels.to_dict()) == labels
    assert assess(labels.source, (), labels.settings) == ()


def test_a_point_fixed_by_hand_has_no_model_score_and_undo_restores_it(tmp_path):
    from rtn_core.labels.project import Project
    labels = make_project()
    old = labels.image("b.png").point("left_eye")
    assert (old.confidence, old.fb_error, old.flags) == (0.9, 1.0, (LR_SWAP,))
    for edited in (labels.place_point("b.png", "left_eye", 25, 20), labels.move_points("b.png", ["left_eye"], 1, 0),
                   labels.set_visibility("b.png", ["left_eye"], OCCLUDED)):
        point = edited.image("b.png").point("left_eye")
        assert point.manual and (point.confidence, point.fb_error, point.flags) == (None, None, ())
        assert edited.image("b.png").point("right_eye").confidence == 0.9  # the others keep theirs
    # still in swapped order: the model's partner is flagged, the point a person placed is not
    swapped = labels.place_point("b.png", "left_eye", 80, 20).image("b.png")
    assert swapped.point("left_eye").flags == () and swapped.point("right_eye").flags == (LR_SWAP,)
    added = labels.add_point("c.png", "nose", 5, 5).image("c.png").point("nose")
    assert added.manual and (added.confidence, added.fb_error) == (None, None)
    project = Project(labels, autosave_path=str(tmp_path / "p.autosave"))
    project.place_point("b.png", "left_eye", 25, 20)
    assert project.labels.image("b.png").point("left_eye").confidence is None
    project.undo()
    assert project.labels.image("b.png").point("left_eye") == old


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_every_export_format_round_trips_a_point_fixed_by_hand(tmp_path, format_name):
    labels = make_project().place_point("a.png", "nose", 90.5, 45.25).for_export()
    labels = labels.map_paths(lambda path: str(tmp_path / path))
    path = str(tmp_path / "out" / f"labels.{format_name}")
    write_labels(labels, path, format_name)
    back = read_labels(path, format_name)
    nose = back.image(str(tmp_path / "a.png")).point("nose")
    assert (nose.x, nose.y, nose.manual, nose.confidence, nose.fb_error, nose.flags) == (90.5, 45.25, True, None, None, ())
    assert back == canonical(labels)
