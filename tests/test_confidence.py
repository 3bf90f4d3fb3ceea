"""Per-point confidence: its features on a constructed result, the calibration, and the figures
that measure it (AUROC, worst-first review, flags)."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from rtn_core.confidence import CROWDING_FLOOR, FEATURES, LOG_FLOOR, fb_fraction, point_features, probability
from rtn_core.model import identity_field
from rtn_core.result import CorrespondenceResult, Iteration
from rtn_core.training import calibrate


def _result(shifts, calibration=None, back=None):
    """A 4 x 4-cell result on 64 x 64 px images whose k-th field moves every point by shifts[k]
    normalised units along x (the backward field by ``back``); one-hot features, so each cell
    matches only itself."""
    iterations = []
    for shift in shifts:
        field = identity_field(1, 4, 4)[0]
        field[4] += shift
        iterations.append(Iteration(field, torch.full((4, 4), 0.75), 8))
    features = torch.eye(16).reshape(16, 4, 4)
    backward = None
    if back is not None:
        field = identity_field(1, 4, 4)[0]
        field[4] += back
        backward = Iteration(field, torch.ones(4, 4), 8)
    return CorrespondenceResult((64, 64), (64, 64), iterations, features, features.clone(),
                                total_iterations=len(shifts) - 1, calibration=calibration, backward=backward)


def test_features_of_a_settled_match_onto_the_same_cell():
    features = point_features(_result([0.0, 0.0, 0.0]), [[7.5, 7.5], [39.5, 23.5]])  # cell centres (16 px cells)
    settled = np.log(LOG_FLOOR)
    apart = np.hypot(32, 16) / 64  # the two points, and their matches, as a share of the side
    rigid = np.log(apart / (apart + CROWDING_FLOOR) + CROWDING_FLOOR)
    # peak, step1, step2, cosine, margin, cycle, nearest, logdet, rough, motion, outside, fb, mutual, entropy,
    # geometry, crowding
    assert features == pytest.approx(np.array([[0.75, settled, settled, 1.0, 0.0, settled, settled,
                                                0.0, settled, settled, 0.0, np.nan, np.nan, np.nan, np.nan, rigid]] * 2),
                                     abs=1e-5, nan_ok=True)  # no backward field, no readout


def test_crowding_marks_two_points_matched_onto_one_spot():
    result = _result([0.0, 0.0])
    result.iterations[-1].field[4, 0, 0] += 0.5  # cell (0, 0) now lands one cell right, on cell (0, 1)'s match
    crowding = point_features(result, [[7.5, 7.5], [23.5, 7.5], [55.5, 55.5]])[:, FEATURES.index("crowding")]
    assert crowding[:2] == pytest.approx([np.log(CROWDING_FLOOR)] * 2)  # same spot: distance ratio 0
    to_first = np.hypot(32, 48) / 64 / (np.hypot(48, 48) / 64 + CROWDING_FLOOR)  # its match is nearer A's than C is to A
    assert crowding[2] == pytest.approx(np.log(to_first + CROWDING_FLOOR))
    assert np.isnan(point_features(result, [[55.5, 55.5]])[0, FEATURES.index("crowding")])  # a lone point: no crowding


def test_features_of_a_moving_match_onto_another_cell():
    # the last field moves by 0.5 normalised = 16 px = one cell to the right; earlier fields by 0 and 0.25
    features = point_features(_result([0.0, 0.25, 0.5], back=-0.25), [[7.5, 7.5]])[0]
    peak, step1, step2, cosine, margin, cycle, nearest, logdet, rough, motion, outside, fb, *_ = features
    assert peak == pytest.approx(0.75)
    assert step1 == pytest.approx(np.log(8 / 64 + LOG_FLOOR))  # 8 px moved since the previous update
    assert step2 == pytest.approx(np.log(16 / 64 + LOG_FLOOR))
    assert cosine == pytest.approx(0.0) and margin == pytest.approx(1.0)  # matched the wrong cell
    assert cycle == pytest.approx(np.log(16 / 64 + LOG_FLOOR))  # that cell points back one cell away
    assert nearest == pytest.approx(np.log(16 / 64 + LOG_FLOOR))  # the best-scoring cell is one cell back
    assert logdet == pytest.approx(0.0, abs=1e-5) and rough == pytest.approx(np.log(LOG_FLOOR))  # a rigid shift
    assert motion == pytest.approx(np.log(16 / 64 + LOG_FLOOR)) and outside == 0.0
    assert fb == pytest.approx(np.log(8 / 64 + LOG_FLOOR))  # the backward field brings it back 8 px short
    assert fb_fraction(features[None]) == pytest.approx([8 / 64])  # 8 px of the 64 px side, as transfer's fb_error
    assert point_features(_result([0.0, 0.25, 0.5], back=-0.5), [[7.5, 7.5]])[0, FEATURES.index("fb")] == \
        pytest.approx(np.log(LOG_FLOOR))
    corner = point_features(_result([0.0, 0.0, 0.75]), [[55.5, 7.5]])[0]  # lands 16 px beyond the right edge
    assert corner[FEATURES.index("outside")] == pytest.approx(0.5)  # normalised units (2 = the width)


def test_readout_certainty_features_read_the_readout_maps_at_the_point():
    result = _result([0.0, 0.0])
    certainty = torch.stack([torch.full((4, 4), -3.0), torch.arange(16.0).view(4, 4),  # entropy grows along rows
                             torch.full((4, 4), 0.5)])  # geometry: a quarter of the side off the overall map
    result.iterations[-1] = dataclasses.replace(result.iterations[-1], readout=True, certainty=certainty)
    features = point_features(result, [[7.5, 7.5], [55.5, 39.5]])  # cells (0, 0) and (3, 2)
    mutual, entropy, geometry = (features[:, FEATURES.index(name)] for name in ("mutual", "entropy", "geometry"))
    assert mutual == pytest.approx([-3.0, -3.0]) and entropy == pytest.approx([0.0, 11.0])
    assert geometry == pytest.approx([np.log(0.25 + LOG_FLOOR)] * 2)


def test_result_confidence_is_the_calibrated_probability():
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("cosine")] = 2.0
    calibration = {"features": list(FEATURES), "mean": [0.0] * len(FEATURES), "scale": [1.0] * len(FEATURES),
                   "weights": weights, "bias": -1.0}
    good, bad = _result([0.0, 0.0, 0.0], calibration), _result([0.0, 0.25, 0.5], calibration)
    assert good.confidence([[7.5, 7.5]]) == pytest.approx([1 / (1 + np.exp(-1.0))])  # cosine 1
    assert bad.confidence([[7.5, 7.5]]) == pytest.approx([1 / (1 + np.exp(1.0))])  # cosine 0
    assert _result([0.0]).confidence([[7.5, 7.5]]) == pytest.approx([0.75])  # no calibration: the peak
    weights[FEATURES.index("fb")] = -1.0  # no backward field: fb counts as its mean (0 here)
    assert _result([0.0, 0.0, 0.0], calibration).confidence([[7.5, 7.5]]) == pytest.approx([1 / (1 + np.exp(-1.0))])
    with pytest.raises(ValueError, match="outside"):
        good.confidence([[70, 8]])


def test_auroc_and_review_figures_on_a_hand_counted_case():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2])
    right = np.array([False, False, True, True, False])
    # right/wrong pairs ordered correctly: 0.35 > 0.1, 0.2; 0.8 > all three -> 5 of 6
    assert calibrate.auroc(scores, right) == pytest.approx(5 / 6)
    assert calibrate.auroc(np.ones(5), right) == pytest.approx(0.5)  # ties count half
    figures = calibrate.review_figures(scores, right, scores < 0.3)
    assert figures["wrong_found_in_first_20pct"] == pytest.approx(1 / 3)  # the first point, 0.1, is wrong
    assert figures["flagged_share"] == pytest.approx(2 / 5) and figures["wrong_caught"] == pytest.approx(2 / 3)
    assert "default_flagged_share" not in figures
    # another check also flags the second point (wrong, 0.4) and the fourth (right, 0.8)
    joined = calibrate.review_figures(scores, right, scores < 0.3, np.array([False, True, False, True, False]))
    assert joined["flagged_share"] == pytest.approx(2 / 5)  # the confidence's own figures stay
    assert joined["default_flagged_share"] == pytest.approx(4 / 5) and joined["default_wrong_caught"] == pytest.approx(1.0)


def test_review_threshold_is_the_smallest_that_catches_the_target_share_in_every_group():
    probabilities = np.array([0.1, 0.3, 0.6, 0.8, 0.9, 0.2, 0.4, 0.05])
    right = np.array([False, False, False, False, True, False, False, True])
    groups = np.array(["a"] * 5 + ["b"] * 3)
    # wrong in a: 0.1 0.3 0.6 0.8; in b: 0.2 0.4. a catches 3/4 >= 0.70 first below 0.61 (b: 2/2)
    assert calibrate.review_threshold(probabilities, right, groups) == pytest.approx(0.61)
    # below 0.31: a 2/4, b 1/2
    assert calibrate.review_threshold(probabilities, right, groups, catch=0.5) == pytest.approx(0.31)
    assert calibrate.review_threshold(probabilities, right, groups, catch=1.0) == pytest.approx(0.81)
    # the forward-backward check also flags a's 0.6: a reaches 3/4 below 0.31, but b needs 0.41
    also = np.arange(8) == 2
    assert calibrate.review_threshold(probabilities, right, groups, also) == pytest.approx(0.41)
    # nothing on the grid catches a wrong point scored 0.99: the largest threshold
    assert calibrate.review_threshold(np.array([0.99]), np.array([False]), np.array(["a"])) == pytest.approx(0.95)


def test_caught_per_group_counts_each_groups_wrong_points():
    flagged = np.array([True, False, True, True, False])
    right = np.array([False, False, True, False, True])
    groups = np.array(["a", "a", "a", "b", "b"])
    assert calibrate.caught_per_group(flagged, right, groups) == {"a": 0.5, "b": 1.0}


def test_fit_recovers_a_known_logistic_and_drops_wrong_signs():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4000, len(FEATURES)))
    peak, step1, margin = (FEATURES.index(n) for n in ("peak", "step1", "margin"))
    truth = 1 / (1 + np.exp(-(1.5 * features[:, peak] - 1.0 * features[:, step1] + 0.5)))
    right = rng.random(4000) < truth
    calibration = calibrate.fit(features, right, np.array(["a", "b"] * 2000))
    weights = np.array(calibration["weights"]) / np.array(calibration["scale"])
    expected = np.zeros(len(FEATURES))
    expected[[peak, step1]] = 1.5, -1.0
    assert weights == pytest.approx(expected, abs=0.15)
    p = probability(features, calibration)
    assert np.abs(p - truth).mean() < 0.03
    assert calibrate.auroc(p, right) > 0.75
    # a large margin (best cell far better than the match) predicting success: wrong sign, dropped
    features[:, margin] = 2.0 * features[:, peak] + rng.normal(scale=0.3, size=4000)
    refit = calibrate.fit(features, right, np.zeros(4000))
    assert "margin" in refit["dropped"] and refit["weights"][margin] == 0.0
    assert refit["weights"][peak] > 0 and refit["weights"][step1] < 0


def test_the_matcher_reads_its_schedule_and_confidence_beside_the_weights(tmp_path):
    from rtn_core.matcher import Matcher
    from rtn_core.weights import save_rtn_weights
    weights = str(tmp_path / "w.safetensors")
    save_rtn_weights(Matcher(weights="").model, weights)
    calibration = {"features": list(FEATURES), "mean": [0.0] * len(FEATURES), "scale": [1.0] * len(FEATURES),
                   "weights": [0.0] * len(FEATURES), "bias": 2.0}
    (tmp_path / "w.inference.json").write_text(json.dumps({"input_size": 128, "schedule": [16, 8, 8],
                                                           "confidence": calibration}))
    assert Matcher(weights=weights, device="cpu", input_size=192).input_size == 192  # an explicit size wins
    matcher = Matcher(weights=weights, device="cpu")
    assert matcher.input_size == 128
    result = matcher.match(np.zeros((64, 48, 3), np.uint8), np.zeros((40, 64, 3), np.uint8))
    assert len(result.iterations) == 4 and result.complete and result.backward is not None
    assert result.backward.field.shape[1:] == result.target_features.shape[1:]  # on the target's grid
    assert result.confidence([[3, 5]]) == pytest.approx([1 / (1 + np.exp(-2.0))])
    (tmp_path / "w.inference.json").write_text(json.dumps({"confidence": {**calibration, "features": ["peak"]}}))
    with pytest.raises(ValueError, match="features"):
        Matcher(weights=weights, device="cpu")


def test_the_shipped_settings_fit_the_shipped_weights_and_set_the_review_threshold():
    from rtn_core.confidence import load_settings
    from rtn_core.labels.keypoints import TransferSettings
    from rtn_core.weights import DEFAULT_WEIGHTS, file_hash
    settings = load_settings(DEFAULT_WEIGHTS)
    assert file_hash(DEFAULT_WEIGHTS) in settings["weights"]  # fitted for exactly these weights
    assert settings["confidence"]["fitted_on"].startswith("semcorr-val")
    assert TransferSettings().min_confidence == round(settings["confidence"]["review_below"], 3)
