"""Cycle consistency across targets (rtn_core.cycle): known answers on translation fields."""
import numpy as np
import torch

from rtn_core.matcher import Matcher
from rtn_core.model import identity_field
from rtn_core.result import CorrespondenceResult, Iteration
from rtn_core.cycle import cycle_errors, routes_for
from rtn_core.training.cycle_check import image_sets, joined_score
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
    errors = [cycle_errors(matcher, targets, forward, points, j, routes=2) * SIZE[0] for j in range(3)]
    np.testing.assert_allclose(errors, [[10, 10], [5, 5], [5, 5]], atol=1e-3)
    lone = cycle_errors(matcher, targets[:1], forward[:1], points, 0)
    assert np.isnan(lone).all()


def test_image_sets_group_pairs_by_subset_and_category_and_joined_score_discounts_cycles():
    points = np.zeros((1, 2))
    pairs = [KeypointPair(category, source, target, points, points, subset=subset)
             for category, subset, source, target in [("dog", "a", "1", "2"), ("dog", "a", "2", "1"),
                                                      ("dog", "b", "1", "3"), ("car", "a", "4", "5")]]
    sets = image_sets(pairs)
    assert {name: {s: sorted(t) for s, t in by.items()} for name, by in sets.items()} == {
        "a dog": {"1": ["2"], "2": ["1"]}, "b dog": {"1": ["3"]}, "a car": {"4": ["5"]}}
    np.testing.assert_allclose(joined_score(np.array([0.8, 0.8, 0.8]), np.array([0.0, 0.05, np.nan])), [0.8, 0.4, 0.8])
