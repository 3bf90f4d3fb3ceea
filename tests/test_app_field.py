"""The app's Qt-free parts: field geometry, the iteration cache, the warped blend, the point list."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app.field import FieldTrack, parallelograms, sample_grid, warp_source_onto_target
from app.placement import candidate_offsets, place_labels
from app.points import ADDED, MATCHED, REMOVED, SELECTED, PointList
from rtn_core.result import CorrespondenceResult, Iteration


def shifted_result(size, shifts) -> CorrespondenceResult:
    """A result whose iteration k moves every point by shifts[k] normalised units, A = identity."""
    iterations = []
    for shift in shifts:
        field = torch.zeros(6, 4, 4)
        field[0] = field[3] = 1.0
        field[4], field[5] = shift
        iterations.append(Iteration(field, torch.full((4, 4), 0.5), 16))
    return CorrespondenceResult(size, size, iterations, total_iterations=len(shifts) - 1)


def test_identity_glyphs_are_the_grid_squares():
    points, half = sample_grid((200, 100), 4)
    outlines = parallelograms(points, np.broadcast_to(np.eye(2), (16, 2, 2)), half)
    assert outlines.shape == (16, 5, 2)
    np.testing.assert_allclose(outlines[:, :4].mean(axis=1), points)
    np.testing.assert_allclose(np.ptp(outlines, axis=1), 2 * half)


def test_track_interpolates_between_iterations_and_keeps_its_cache():
    size = (100, 80)
    result = shifted_result(size, [(0.0, 0.0), (0.2, -0.1)])
    track = FieldTrack([[10.0, 20.0], [50.0, 40.0]], result)
    start, end = track.at(0)[0], track.at(1)[0]
    np.testing.assert_allclose(end - start, [[10.0, -4.0]] * 2, atol=1e-4)  # 0.2 * 100 / 2, -0.1 * 80 / 2
    np.testing.assert_allclose(track.at(0.25)[0], 0.75 * start + 0.25 * end)
    grown = CorrespondenceResult(**{**result.__dict__, "iterations": result.iterations + [result.iterations[1]]})
    cached = track.iteration(1)
    track.result = grown
    assert track.iteration(1) is cached and track.count == 3


def test_track_gives_confidence_only_at_the_final_iteration_of_a_complete_run():
    """The calibrated confidence is fitted on final fields: earlier iterations, and the newest one of a run
    still streaming, have none (NaN), which the point list stores as no score."""
    size = (100, 80)
    complete = shifted_result(size, [(0.0, 0.0), (0.1, 0.0), (0.2, 0.0)])
    track = FieldTrack([[10.0, 20.0], [50.0, 40.0]], complete)
    assert np.isnan(track.at(0)[2]).all() and np.isnan(track.at(1.5)[2]).all()
    np.testing.assert_allclose(track.at(2)[2], [0.5, 0.5])  # the stand-in field's confidence map
    streaming = CorrespondenceResult(**{**complete.__dict__, "iterations": complete.iterations[:2]})
    assert np.isnan(FieldTrack([[10.0, 20.0]], streaming).at(1)[2]).all()
    points = PointList()
    points.add(10, 20, target=(1, 2), confidence=np.nan)
    points.add(50, 40)
    assert [p.confidence for p in points.points] == [None, None]
    points.set_matches(*track.at(0)[::2])
    assert [p.confidence for p in points.points] == [None, None]
    points.set_matches(*track.at(2)[::2])
    assert [p.confidence for p in points.points] == pytest.approx([0.5, 0.5])


def test_track_and_blend_follow_a_readout_on_a_finer_grid_than_the_update_before_it():
    """As the shipped model's: the update's field is 4 x 4 (stride 16), its readout 8 x 8 (stride 8) and
    moves the left and right quarters of the source 20 px apart, which only the finer grid can hold."""
    size = (160, 120)  # cells of the 8 x 8 grid are 20 x 15 px; centres at (20 c + 9.5, 15 r + 7)
    update = shifted_result(size, [(0.0, 0.0), (0.0, 0.0)]).iterations
    field = torch.zeros(6, 8, 8)
    field[0] = field[3] = 1.0
    field[4, :, :2], field[4, :, -2:] = 0.125, -0.125  # +-10 px at the outer two columns, 0 between
    readout = Iteration(field, torch.full((8, 8), 0.5), 8, readout=True)
    result = CorrespondenceResult(size, size, update + [readout], total_iterations=2)
    points = [[9.5, 52.0], [29.5, 52.0], [69.5, 52.0], [149.5, 52.0]]  # cell centres: exact, whatever the grid
    track = FieldTrack(points, result)
    np.testing.assert_allclose(track.at(1)[0], points, atol=1e-4)
    np.testing.assert_allclose(track.at(2)[0], [[19.5, 52.0], [39.5, 52.0], [69.5, 52.0], [139.5, 52.0]], atol=1e-4)
    np.testing.assert_allclose(track.at(1.5)[0], 0.5 * (track.at(1)[0] + track.at(2)[0]))
    blend = warp_source_onto_target(result, 2, np.zeros((120, 160, 3), np.uint8))
    assert blend.shape == (120, 160, 4) and not blend[:, :10, 3].any()  # nothing lands left of x = 10


def test_warped_blend_of_an_identity_field_is_the_source():
    rng = np.random.default_rng(0)
    source = np.kron(rng.integers(0, 255, (12, 16, 3)), np.ones((10, 10, 1))).astype(np.uint8)  # 160x120 blocks
    blend = warp_source_onto_target(shifted_result((160, 120), [(0.0, 0.0)]), 0, source)
    assert blend.shape == (120, 160, 4) and (blend[..., 3] == 255).all()
    assert np.abs(blend[..., :3].astype(int) - source).mean() < 3


def test_point_list_numbers_selects_and_notifies():
    points, events = PointList(), []
    points.subscribe(events.append)
    points.add(1, 2)
    points.add(3, 4, target=(5, 6), confidence=0.5)
    assert [p.id for p in points.points] == [1, 2] and points.selected == {2}
    points.select({1})
    points.set_matches([(7, 8), (9, 10)], [0.1, 0.2])
    assert points.points[0].target == (7.0, 8.0) and points.points[1].confidence == pytest.approx(0.2)
    points.remove_selected()
    assert [p.id for p in points.points] == [2] and points.selected == set()
    points.clear()
    points.add(0, 0)
    assert points.points[0].id == 1
    assert events == [ADDED, ADDED, SELECTED, MATCHED, REMOVED, REMOVED, ADDED]


def _rects(points, offsets, sizes):
    corners = np.asarray(points) + offsets
    return np.hstack([corners, corners + sizes])


def _overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_a_lone_label_sits_right_above_its_point():
    offsets, spots, covers = place_labels([[200.0, 100.0]], [[40.0, 16.0]])
    x, y = offsets[0]
    assert x > 0 and y + 16.0 < 0 and spots == [0] and covers == [False]  # its whole rect is right of and above the point
    np.testing.assert_allclose(offsets[0], candidate_offsets(40.0, 16.0)[0])


def test_labels_of_crowded_points_cover_neither_each_other_nor_the_points():
    # a 3 x 3 cluster 30 px apart across, 44 down, labels 44 x 16 px: at the usual spot they overlap
    points = np.array([[x, y] for y in (100.0, 144.0, 188.0) for x in (100.0, 130.0, 160.0)])
    sizes = np.tile([44.0, 16.0], (len(points), 1))
    usual = _rects(points, np.tile(candidate_offsets(44.0, 16.0)[0], (9, 1)), sizes)
    assert _overlaps(usual[0], usual[1])
    radius = 6.0
    labels = _rects(points, place_labels(points, sizes, radius)[0], sizes)
    dots = np.hstack([points - radius, points + radius])
    for i, label in enumerate(labels):
        assert not any(_overlaps(label, dot) for dot in dots)
        assert not any(_overlaps(label, other) for other in labels[i + 1:])


def test_crowded_labels_are_reported_and_the_rest_cover_nothing_and_labels_stay_in_bounds():
    size = np.array([40.0, 16.0])
    centres = np.array([100.0, 100.0]) + candidate_offsets(*size) + size / 2  # a dot mid each spot
    points = np.vstack([[[100.0, 100.0]], centres])
    sizes, radius = np.tile(size, (len(points), 1)), 6.0
    assert place_labels(points, sizes, radius)[2][0]  # every spot of the ringed point's label covers a dot
    offsets, _, crowded = place_labels(points, sizes, radius, required=[False] * len(points))
    kept = _rects(points, offsets, sizes)[~np.array(crowded)]
    dots = np.hstack([points - radius, points + radius])
    assert crowded[0] and 0 < len(kept) < len(points)
    for i, label in enumerate(kept):  # left-out labels block nothing; the kept ones cover nothing
        assert sum(_overlaps(label, dot) for dot in dots) == 0 and not any(_overlaps(label, o) for o in kept[i + 1:])
    corner = [[395.0, 5.0]]  # the top-right corner of a 400 x 300 view: only left-below fits inside
    offsets, spots, covers = place_labels(corner, [size], bounds=(0.0, 0.0, 400.0, 300.0))
    assert spots == [3] and covers == [False]
    assert place_labels(corner, [size])[1] == [0]  # without bounds: the usual spot


def test_a_label_keeps_its_spot_while_it_is_free():
    sizes = [[40.0, 16.0]] * 2
    apart = [[100.0, 100.0], [400.0, 100.0]]
    assert place_labels(apart, sizes, preferred=[3, -1])[1] == [3, 0]  # left-below is free: it stays
    close = [[100.0, 100.0], [125.0, 90.0]]  # the second dot sits where the first label's usual spot is
    offsets, spots, _ = place_labels(close, sizes, preferred=[0, -1])
    assert spots[0] != 0 and place_labels(close, sizes)[1][0] == spots[0]
