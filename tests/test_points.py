"""The Qt-free point model: names, moves, renames and undo/redo of every edit."""
from __future__ import annotations

from app.points import ADDED, MOVED, RENAMED, RESTORED, PointList


def snapshot(points: PointList):
    return [(p.id, p.name, p.source) for p in points.points]


def test_points_are_named_p1_to_pn_and_renamable_to_unique_names():
    points = PointList()
    for x in range(3):
        points.add(x, 0)
    assert [p.name for p in points.points] == ["p1", "p2", "p3"]
    assert points.rename(2, " left eye ") and points.points[1].name == "left eye"
    assert not points.rename(3, "left eye"), "two points never share a name"
    assert not points.rename(3, "   ")
    assert points.keypoints() == [("p1", 0.0, 0.0), ("left eye", 1.0, 0.0), ("p3", 2.0, 0.0)]
    assert points.rename(1, "p4")
    assert points.add(5, 5).name == "p5", "a new point never takes a name in use"


def test_every_edit_undoes_and_redoes_in_order():
    points, events = PointList(), []
    points.subscribe(events.append)
    points.add(10, 20)
    points.add(30, 40)
    states = [snapshot(points)]
    points.move(1, 11, 21)
    points.move(1, 12, 22, merge=True)  # one drag: one undo step
    states.append(snapshot(points))
    points.rename(2, "nose")
    states.append(snapshot(points))
    points.select({1})
    points.remove_selected()
    states.append(snapshot(points))
    points.clear()
    assert len(points) == 0
    for expected, what in zip(reversed(states), ["clear", "delete", "rename", "move"]):
        assert points.undo_text() == what
        assert points.undo()
        assert snapshot(points) == expected
    assert points.undo_text() == "add" and points.undo() and points.undo() and not points.undo()
    assert len(points) == 0
    for _ in range(6):
        assert points.redo()
    assert len(points) == 0 and not points.redo()
    assert points.undo() and snapshot(points) == states[-1], "Clear is undone: its points come back"
    assert {ADDED, MOVED, RENAMED, RESTORED} <= set(events)


def test_a_new_edit_drops_the_redo_history_and_a_moved_point_forgets_its_match():
    points = PointList()
    points.add(1, 1, target=(5, 5), confidence=0.9)
    points.move(1, 2, 2)
    assert points.points[0].target is None and points.points[0].confidence is None
    points.move(1, 3, 3)  # a second drag of the same point is its own undo step
    points.undo()
    assert points.points[0].source == (2.0, 2.0)
    points.add(7, 7)
    assert points.redo_text() is None and not points.redo()
    points.undo()
    points.undo()
    assert snapshot(points) == [(1, "p1", (1.0, 1.0))] and points.points[0].target == (5.0, 5.0)
    points.reset()  # a new image: no points, no history, numbering from 1
    assert len(points) == 0 and points.undo_text() is None and points.redo_text() is None
    assert points.add(0, 0).name == "p1"
