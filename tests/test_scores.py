"""One way to show a score in both windows: a percentage, and "by hand" (no number) for a point a person fixed."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.labeling.canvas import point_caption
from app.labeling.keypoint_table import CONFIDENCE, FB, KeypointTable
from app.labeling.thumbnails import describe
from app.points import PointList
from app.points_table import PointsTableModel
from app.scores import BY_HAND, score_text
from rtn_core.labels.keypoints import DONE, VISIBLE, ImageLabels, Point, new_project


def test_score_text_is_a_whole_percentage_or_by_hand():
    assert [score_text(c) for c in (0.0, 0.724, 0.7251, 1.0)] == ["0%", "72%", "73%", "100%"]
    assert score_text(None) == "" and score_text(0.5, by_hand=True) == score_text(None, True) == BY_HAND


def test_main_window_table_shows_percent_and_a_fixed_match_by_hand(qtbot):
    points = PointList()
    points.add(10, 20)
    points.add(30, 40)
    points.fix(points.points[1].id, 5.0, 6.0)
    points.set_matches([(11.0, 21.0), (99.0, 99.0)], [0.724, 0.31])
    model = PointsTableModel(points)
    model.refresh()
    assert [model.item(row, 5).text() for row in range(2)] == ["72%", BY_HAND]
    assert model.item(1, 3).text() == "5.0"  # the fixed match, not the model's


def label_set():
    source = ImageLabels("src.png", (100, 80), (Point("nose", 50, 40), Point("tail", 10, 10)))
    labels = new_project(source).add_targets(["t.png"])
    labels = labels.with_transfer(ImageLabels("t.png", (100, 80), (
        Point("nose", 52, 41, VISIBLE, 0.6567, 1.25), Point("tail", 12, 11, VISIBLE, 0.9, 0.5)), status=DONE))
    return labels.place_point("t.png", "tail", 20, 20)


def test_label_transfer_table_caption_and_tooltip_show_percent_and_by_hand(qtbot):
    target = label_set().image("t.png")
    nose, tail = target.point("nose"), target.point("tail")
    table = KeypointTable()
    qtbot.addWidget(table)
    table.show_labels(target, ["nose", "tail"], [])
    assert (table.item(0, CONFIDENCE).text(), table.item(0, FB).text()) == ("66%", "1.25")
    assert (table.item(1, CONFIDENCE).text(), table.item(1, FB).text()) == (BY_HAND, "")  # no stale score
    assert point_caption(nose, scores=True) == "nose  66% · 1.2px"
    assert point_caption(tail, scores=True) == f"tail  {BY_HAND}" and point_caption(tail, scores=False) == "tail"
    tip = describe(target)
    assert "lowest confidence: 66%" in tip and f"{BY_HAND}: tail" in tip
