"""Cycle consistency across targets (rtn_core.cycle): known answers on translation fields."""
import numpy as np
import pytest
import torch

from rtn_core.matcher import Matcher
from rtn_core.model import identity_field
from rtn_core.result import CorrespondenceResult, Iteration
from rtn_core.cycle import cycle_errors, joined_score, routes_for
from rtn_core.training.cycle_check import image_sets
from rtn_core.training.data import KeypointPair

SIZE = (64, 48)  # width, height of every image here


def shifted(dx_pixels: float) -> CorrespondenceResult:
    """A source -> target result moving every point by dx pixels to the right."""
    field = identity_field(1, 6, 8)[0]
    field[4] = dx_pixels * 2.0 / SIZE[0]
    return CorrespondenceResult(SIZE, SIZE, [Iteration(field, torch.ones(6, 8), 8)])


def test_routes_are_the_next_targets_and_bounded():
    assert routes_for(0, 5, 2) == [1, 2]
    assert routes_for(4, 5, 2) == [0, 1]
    assert routes_for(1, 3, 5) == [2, 0]  # never itself, at most the other targets
    assert routes_for(0, 1, 2) == []


def test_a_wrong_target_disagrees_with_every_route_and_a_right_one_with_half():
    """Untrained network: every target -> target match is the identity. Target 0's forward result is
    10 px off, targets 1 and 2 are right: target 0 is 10 px from both routes, the others 0 px from
    one route and 10 px from the one through target 0 (median of two: 5 px)."""
    rng = np.random.default_rng(0)
    matcher = Matcher(weights="")
    targets = [matcher.prepare((rng.random((SIZE[1], SIZE[0], 3)) * 255).astype(np.uint8)) for _ in range(3)]
    forward = [shifted(10.0), shifted(0.0), shifted(0.0)]
    points = np.array([[20.0, 10.0], [40.0, 30.0]])
    landed = [f.map_points(points) for f in forward]
    errors = [cycle_errors(matcher, targets, landed, j, routes=2) * SIZE[0] for j in range(3)]
    np.testing.assert_allclose(errors, [[10, 10], [5, 5], [5, 5]], atol=1e-3)
    landed[2][1] = np.nan  # the second point is not in target 2: target 1 sees it through target 0 only
    np.testing.assert_allclose(cycle_errors(matcher, targets, landed, 1, routes=2) * SIZE[0], [5, 10], atol=1e-3)
    assert np.isnan(cycle_errors(matcher, targets[:1], landed[:1], 0)).all()


def test_image_sets_group_pairs_by_subset_and_category_and_joined_score_discounts_cycles():
    points = np.zeros((1, 2))
    pairs = [KeypointPair(category, source, target, points, points, subset=subset)
             for category, subset, source, target in [("dog", "a", "1", "2"), ("dog", "a", "2", "1"),
                                                      ("dog", "b", "1", "3"), ("car", "a", "4", "5")]]
    sets = image_sets(pairs)
    assert {name: {s: sorted(t) for s, t in by.items()} for name, by in sets.items()} == {
        "a dog": {"1": ["2"], "2": ["1"]}, "b dog": {"1": ["3"]}, "a car": {"4": ["5"]}}
    np.testing.assert_allclose(joined_score(np.array([0.8, 0.8, 0.8]), np.array([0.0, 0.05, np.nan])), [0.8, 0.4, 0.8])


def test_a_projects_cycle_scores_lower_the_confidence_of_the_point_the_routes_disagree_with(tmp_path):
    """Three targets of one size, untrained network (target -> target is the identity): point a sits
    10 px right in target 0, so its confidence is discounted by a 10 px cycle error there, by 5 px
    (the median of 0 and 10) in the others; b agrees everywhere and keeps its confidence; the hand-placed
    point is left alone."""
    import cv2
    from rtn_core.cycle import CYCLE_SCALE
    from rtn_core.labels.consistency import with_cycle_scores
    from rtn_core.labels.keypoints import DONE, ImageLabels, Point, TransferSettings, new_project

    rng = np.random.default_rng(1)
    paths = []
    for name in ("source", "t0", "t1", "t2"):
        paths.append(str(tmp_path / f"{name}.png"))
        cv2.imwrite(paths[-1], (rng.random((SIZE[1], SIZE[0], 3)) * 255).astype(np.uint8))
    names = ("a", "b", "c")
    source = ImageLabels(paths[0], SIZE, tuple(Point(n, 20.0 + 10 * i, 10.0 + 10 * i) for i, n in enumerate(names)))
    labels = new_project(source, settings=TransferSettings(min_confidence=0.25))
    labels = labels.add_targets(paths[1:])
    for k, path in enumerate(paths[1:]):
        a_x = 30.0 if k == 0 else 20.0
        labels = labels.with_transfer(ImageLabels(path, SIZE, (Point("a", a_x, 10.0, confidence=0.8),
                                                               Point("b", 30.0, 20.0, confidence=0.8),
                                                               Point("c", 40.0, 30.0, confidence=0.8)), status=DONE))
    labels = labels.place_point(paths[2], "c", 41.0, 31.0)
    checked = with_cycle_scores(labels, Matcher(weights=""), routes=2)

    def confidence(path, name):
        return checked.image(path).point(name).confidence

    assert confidence(paths[1], "a") == pytest.approx(0.8 / (1 + 10 / SIZE[0] / CYCLE_SCALE), abs=2e-3)
    assert confidence(paths[2], "a") == pytest.approx(0.8 / (1 + 5 / SIZE[0] / CYCLE_SCALE), abs=2e-3)
    assert confidence(paths[1], "b") == pytest.approx(0.8, abs=2e-3)
    assert checked.image(paths[2]).point("c") == labels.image(paths[2]).point("c")  # placed by hand
    assert "low_confidence" in checked.image(paths[1]).point("a").flags  # 0.19: below 0.25 now
    assert "low_confidence" not in checked.image(paths[2]).point("a").flags  # 0.31
