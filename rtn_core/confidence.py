"""Per-point confidence of a match: the probability that it is right, from cheap features.

Each matched point gets a few features (FEATURES, below); the only costly one, the
forward-backward check, reuses the backbone maps and runs only the recurrent updates backwards
(``Matcher``). A logistic calibration fitted on the semcorr-val validation set (``main.py
evaluate --fit-confidence``) turns them into the probability that the point lands within 0.10 of
the object's size of the truth. It lives in the inference settings beside the weights they were
chosen for (``<weights>.inference.json``: ``input_size``, ``schedule``, ``confidence``); without
one the score is the raw window-softmax peak.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from . import coords

# peak: window-softmax peak of the correlation at the point (how sharply the window agrees);
# step1 / step2: log distance between this iteration's match and the one 1 / 2 updates earlier
# (a match still moving is unsettled); cosine: feature similarity of the point and its match;
# margin: how much better the best target cell scores than the match; cycle: log distance from
# the point to the source cell that best matches the match's feature (a cheap backward check);
# logdet: |log det| of the local affine (a match that shrinks or grows a lot is suspect); rough:
# log distance of the matches of the points one cell away from where the local affine puts
# them (a torn field);
# motion: log distance moved (long moves fail more often); outside: how far the match lies
# beyond the target's edge; fb: log distance from the point to where the backward field takes
# its match (the forward-backward check; the calibration's mean where there is no backward field);
# nearest: log distance from the match to the target cell whose feature best matches the point's
# (a match the features alone would also choose is more often right); mutual / entropy: the semantic
# readout's certainty (``model.semantic_readout``), the log dual-softmax probability of the chosen
# cell (high where the point's cell and its match's prefer each other) and the entropy of the
# readout's posterior over the target (low where one place clearly wins); geometry: log distance of
# the match from a robust quadratic map of all the readout's matches (``model.geometry_residual``:
# the object's overall geometry disagrees with it); NaN off a readout; crowding: log of the
# smallest ratio, over the other points scored with it, of the distance between the two matches
# to the distance between the two points (each as a share of its image's longer side: two points
# matched onto one spot are not both right; ninth session); NaN for a lone point, so a point's
# score can change when others are added beside it.
FEATURES = ("peak", "step1", "step2", "cosine", "margin", "cycle", "nearest", "logdet", "rough", "motion", "outside",
            "fb", "mutual", "entropy", "geometry", "crowding")
HIGHER_IS_BETTER = {"peak": 1, "step1": -1, "step2": -1, "cosine": 1, "margin": -1, "cycle": -1,
                    "nearest": -1, "logdet": -1, "rough": -1, "motion": -1, "outside": -1, "fb": -1,
                    "mutual": 1, "entropy": -1, "geometry": -1, "crowding": 1}  # signs, to measure each alone
LOG_FLOOR = 0.01  # distances are in units of the image's longer side; log(d + floor)
CROWDING_FLOOR = 0.001  # the crowding ratio's floors (as screened on semcorr-val, MODEL_CARD ninth session)


def settings_path(weights: str) -> str:
    return os.path.splitext(weights)[0] + ".inference.json"


def load_settings(weights: str | None) -> dict:
    """The inference settings beside ``weights`` (``input_size``, ``schedule``, ``confidence``), or {}."""
    path = settings_path(weights) if weights else ""
    if not path or not os.path.isfile(path):
        return {}
    try:
        with open(path) as handle:
            settings = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the inference settings ({exc})") from None
    features = settings.get("confidence", {}).get("features", list(FEATURES))
    if features != list(FEATURES):
        raise ValueError(f"{path}: confidence features {features} are not this version's {list(FEATURES)}")
    return settings


def point_features(result, points, iteration: int = -1) -> np.ndarray:
    """(N, len(FEATURES)) features of each source point's match at ``iteration``."""
    k = range(len(result.iterations))[iteration]
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    matches = [result.map_points(pts, max(k - d, 0)) for d in (0, 1, 2)]
    scale = float(max(result.target_size))
    step1, step2 = (np.log(np.linalg.norm(matches[0] - m, axis=1) / scale + LOG_FLOOR) for m in matches[1:])
    peak = result.iterations[k].confidence[None]
    columns = [sample_map(peak, pts, result.source_size)[:, 0], step1, step2]
    columns += _feature_columns(result, pts, matches[0]) + _field_columns(result, pts, matches[0], k)
    columns.append(_forward_backward(result, pts, matches[0]))
    certainty = result.iterations[k].certainty
    if certainty is None:
        columns += [np.full(len(pts), np.nan)] * 3
    else:
        mutual, entropy, geometry = sample_map(certainty, pts, result.source_size).numpy().T
        columns += [mutual, entropy, np.log(geometry / 2.0 + LOG_FLOOR)]  # normalised units: 2 = the side
    columns.append(_crowding(result, pts, matches[0]))
    return np.stack(columns, axis=1).astype(np.float64)


def _crowding(result, pts: np.ndarray, matches: np.ndarray) -> np.ndarray:
    """The crowding feature (FEATURES, above) of each point among the points scored with it."""
    if len(pts) < 2:
        return np.full(len(pts), np.nan)
    source = pts / float(max(result.source_size))
    target = matches / float(max(result.target_size))
    apart = np.linalg.norm(source[:, None] - source[None], axis=2)
    together = np.linalg.norm(target[:, None] - target[None], axis=2)
    ratio = together / (apart + CROWDING_FLOOR)
    np.fill_diagonal(ratio, np.inf)
    return np.log(ratio.min(axis=1) + CROWDING_FLOOR)


def _feature_columns(result, pts: np.ndarray, matches: np.ndarray) -> list:
    """cosine, margin, cycle, nearest (zeros when the result holds no features)."""
    if result.source_features is None or result.target_features is None:
        return [np.zeros(len(pts))] * 4
    source = F.normalize(sample_map(result.source_features, pts, result.source_size), dim=1)
    matched = F.normalize(sample_map(result.target_features, matches, result.target_size), dim=1)
    target_scores = source @ result.target_features.flatten(1)  # (N, h*w)
    source_scores = matched @ result.source_features.flatten(1)
    cosine = (source * matched).sum(1)
    height, width = result.source_features.shape[1:]
    cells = coords.normalised_to_pixels(coords.grid_centres(height, width).reshape(-1, 2), result.source_size)
    back = cells[source_scores.argmax(1)].numpy()
    cycle = np.log(np.linalg.norm(back - pts, axis=1) / float(max(result.source_size)) + LOG_FLOOR)
    height, width = result.target_features.shape[1:]
    cells = coords.grid_centres(height, width).reshape(-1, 2)[target_scores.argmax(1)]
    best = coords.normalised_to_pixels(cells, result.target_size).numpy()
    nearest = np.log(np.linalg.norm(best - matches, axis=1) / float(max(result.target_size)) + LOG_FLOOR)
    return [cosine.numpy(), (target_scores.amax(1) - cosine).numpy(), cycle, nearest]


def _field_columns(result, pts: np.ndarray, matches: np.ndarray, k: int) -> list:
    """logdet, rough, motion, outside."""
    affine = result.local_affine(pts, k)  # source pixel offsets -> target pixel offsets
    ratio = np.prod(result.source_size) / np.prod(result.target_size)
    logdet = np.abs(np.log(np.abs(np.linalg.det(affine)) * ratio + 1e-6))
    height, width = result.iterations[k].field.shape[1:]
    cell = np.asarray(result.source_size, np.float64) / (width, height)
    limit = np.asarray(result.source_size) - 0.5
    torn = []
    for d in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        neighbours = np.clip(pts + np.asarray(d) * cell, -0.5, limit)
        predicted = matches + np.einsum("nij,nj->ni", affine, neighbours - pts)
        torn.append(np.linalg.norm(result.map_points(neighbours, k) - predicted, axis=1))
    rough = np.log(np.mean(torn, axis=0) / float(max(result.target_size)) + LOG_FLOOR)
    source_n = coords.pixels_to_normalised(torch.from_numpy(pts).float(), result.source_size).numpy()
    target_n = coords.pixels_to_normalised(torch.from_numpy(matches).float(), result.target_size).numpy()
    motion = np.log(np.linalg.norm(target_n - source_n, axis=1) / 2.0 + LOG_FLOOR)
    outside = np.clip(np.abs(target_n) - 1.0, 0.0, None).max(axis=1)
    return [logdet, rough, motion, outside]


def _forward_backward(result, pts: np.ndarray, matches: np.ndarray) -> np.ndarray:
    """fb (NaN without a backward field)."""
    if result.backward is None:
        return np.full(len(pts), np.nan)
    return np.log(np.linalg.norm(returned_points(result, matches) - pts, axis=1) / float(max(result.source_size))
                  + LOG_FLOOR)


def fb_fraction(features: np.ndarray) -> np.ndarray:
    """(N,) forward-backward error, as a share of the source's longer side, from (N, F) features
    (NaN without a backward field): the inverse of the ``fb`` feature's log."""
    return np.exp(features[:, FEATURES.index("fb")]) - LOG_FLOOR


def returned_points(result, matches) -> np.ndarray:
    """(N, 2) source pixels where the result's backward field takes (N, 2) target pixels
    ``matches``: a point's distance to its own return is its forward-backward error."""
    matches = np.asarray(matches, np.float64).reshape(-1, 2)
    target_n = coords.pixels_to_normalised(torch.from_numpy(matches).float(), result.target_size)
    back_n = target_n + sample_map(result.backward.field, matches, result.target_size)[:, 4:6]
    return coords.normalised_to_pixels(back_n, result.source_size).numpy().astype(np.float64)


def probability(features: np.ndarray, calibration: dict) -> np.ndarray:
    """(N,) probability of being right from (N, F) features, by the logistic calibration; a
    missing (NaN) feature counts as its mean."""
    z = np.nan_to_num((features - np.asarray(calibration["mean"])) / np.asarray(calibration["scale"]))
    return 1.0 / (1.0 + np.exp(-(z @ np.asarray(calibration["weights"]) + calibration["bias"])))


def sample_map(grid_values: torch.Tensor, points, size) -> torch.Tensor:
    """(N, C) bilinear samples of a (C, h, w) map at (N, 2) pixel points of an image of ``size``
    (beyond the edge: the edge value)."""
    normalised = coords.pixels_to_normalised(torch.from_numpy(np.asarray(points, np.float64).reshape(-1, 2)).float(), size)
    samples = F.grid_sample(grid_values[None].float(), normalised[None, None], mode="bilinear",
                            padding_mode="border", align_corners=False)
    return samples[0, :, 0].T
