"""``python main.py evaluate``: PCK of RTN on a keypoint benchmark, per iteration, with a
nearest-neighbour baseline, and how well the per-point confidence finds the wrong matches.

The baseline ("nearest_neighbour") maps each source keypoint to the argmax of
``result.score_map``: cosine similarity of the result's features (the backbone's semantic map
where it has one, else the finest level's) with every target cell, no geometry. RTN's answer at iteration k is ``result.map_points(points, k)``; iteration 0 is the
identity field. semcorr-val is reported per subset, and its headline is the unweighted mean of
the subsets (its README).
"""
from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .. import coords
from ..atomic import atomic_path
from ..confidence import FEATURES, HIGHER_IS_BETTER, fb_fraction, point_features, probability
from ..images import load_image
from ..labels.keypoints import DEFAULT_MAX_FB_FRACTION
from ..matcher import Matcher
from . import calibrate
from .data import KeypointPair, read_pf_pascal, read_pf_willow, read_semcorr, read_spair
from .pck import ALPHAS, mean_pck, pck, reference_length, relative_error

DATASETS = ("pf-willow", "semcorr-val", "pf-pascal", "spair")
VALIDATION = "semcorr-val"  # the only set the confidence may be fitted on


def load_pairs(dataset: str, root: str, pairs: str | None = None) -> list[KeypointPair]:
    """The benchmark's pairs, read from local files only."""
    if dataset == "pf-willow":
        return read_pf_willow(root)
    if dataset == "semcorr-val":
        return read_semcorr(root)
    if dataset == "pf-pascal":
        return read_pf_pascal(pairs or os.path.join(root, "test_pairs.csv"), root)
    folder = pairs or os.path.join(root, "PairAnnotation", "test")
    files = sorted(glob.glob(os.path.join(folder, "*.json")))
    if not files:
        raise ValueError(f"no SPair-71k pair files (*.json) in {folder}")
    return [read_spair(path, root) for path in files]


def nearest_neighbour(result, points: np.ndarray) -> np.ndarray:
    """(N, 2) target pixels: the best-scoring target feature cell of each source point."""
    matches = []
    for x, y in points:
        scores = result.score_map(float(x), float(y))
        row, col = np.unravel_index(int(np.argmax(scores)), scores.shape)
        cell = coords.grid_centres(*scores.shape)[row, col]
        matches.append(coords.normalised_to_pixels(cell.numpy().astype(np.float64), result.target_size))
    return np.array(matches)


@dataclass
class PointRecords:
    """Every evaluated keypoint: where it belongs, its errors and its confidence features."""

    subsets: np.ndarray  # (N,) str
    categories: np.ndarray  # (N,) str
    errors: np.ndarray  # (N, iterations + 1) relative error (units of L) at each iteration
    nearest: np.ndarray  # (N,) relative error of the nearest-neighbour baseline
    features: np.ndarray  # (N, len(confidence.FEATURES)) at the final iteration


def match_pairs(matcher: Matcher, pairs: list[KeypointPair], progress: bool = True) -> PointRecords:
    """Run every pair and record each keypoint's errors and confidence features."""
    rows = []
    for pair in tqdm(pairs, desc="pairs", unit="pair", disable=not progress):
        source, target = load_image(pair.source), load_image(pair.target)
        keep = np.isfinite(pair.source_points).all(1) & np.isfinite(pair.target_points).all(1)
        width, height = source.original_size
        points = np.clip(pair.source_points[keep], -0.5, [width - 0.5, height - 0.5])
        truth = pair.target_points[keep]
        length = reference_length(pair.reference, truth, target.original_size)
        result = matcher.match(source, target)
        errors = np.stack([relative_error(result.map_points(points, k), truth, length)
                           for k in range(len(result.iterations))], axis=1)
        rows.append((np.full(len(points), pair.subset or "all"),
                     np.full(len(points), pair.category), errors,
                     relative_error(nearest_neighbour(result, points), truth, length),
                     point_features(result, points)))
    return PointRecords(*(np.concatenate(column) for column in zip(*rows)))


def evaluate(matcher: Matcher, pairs: list[KeypointPair], alphas=ALPHAS, progress: bool = True,
             fit_confidence: bool = False, save_records: str | None = None) -> dict:
    """PCK (final iteration, per subset, per category, nearest neighbour, every iteration) and
    the confidence figures; ``fit_confidence`` fits a new calibration on these pairs first
    (returned as ``report["calibration"]``); ``save_records``: a .npz file to save the per-keypoint records in."""
    began = time.time()
    records = match_pairs(matcher, pairs, progress)
    if save_records:
        with atomic_path(save_records, ".tmp.npz") as temp:
            np.savez_compressed(temp, feature_names=np.array(FEATURES), **vars(records))
    report = summarise(records, pairs, alphas)
    report["seconds_per_pair"] = (time.time() - began) / max(len(pairs), 1)
    right = records.errors[:, -1] <= calibrate.RIGHT_WITHIN
    calibration = matcher.calibration
    if fit_confidence:
        calibration = calibrate.fit(records.features, right, records.subsets)
        calibration["review_below"] = calibrate.review_threshold(
            probability(records.features, calibration), right, records.subsets,
            fb_fraction(records.features) > DEFAULT_MAX_FB_FRACTION)
        report["calibration"] = calibration
    report["confidence"] = confidence_figures(records, right, calibration)
    return report


def summarise(records: PointRecords, pairs: list[KeypointPair], alphas=ALPHAS) -> dict:
    """The PCK tables of evaluated points: per subset (when the pairs have subsets; the headline
    is then their unweighted mean), per category, nearest neighbour, per iteration."""
    subsets = {}
    for name in dict.fromkeys(records.subsets):
        rows = records.subsets == name
        subsets[name] = {"pairs": sum(1 for p in pairs if (p.subset or "all") == name),
                         "keypoints": int(rows.sum()), "pck": pck(records.errors[rows, -1], alphas),
                         "nearest_neighbour": pck(records.nearest[rows], alphas),
                         "per_iteration": [pck(e, alphas) for e in records.errors[rows].T]}
    report = {"pairs": len(pairs), "keypoints": len(records.errors)}
    if any(p.subset for p in pairs):
        report.update(pck=mean_pck([s["pck"] for s in subsets.values()]),
                      nearest_neighbour=mean_pck([s["nearest_neighbour"] for s in subsets.values()]),
                      per_iteration=[mean_pck(list(k)) for k in zip(*(s["per_iteration"] for s in subsets.values()))],
                      per_subset=subsets)
    else:
        report.update(pck=pck(records.errors[:, -1], alphas), nearest_neighbour=pck(records.nearest, alphas),
                      per_iteration=[pck(e, alphas) for e in records.errors.T])
    report["per_category"] = {name: pck(records.errors[records.categories == name, -1], alphas)
                              for name in sorted(set(records.categories))}
    return report


def confidence_figures(records: PointRecords, right: np.ndarray, calibration: dict | None) -> dict:
    """How well each score separates right from wrong final matches: the shipped score
    (``result.confidence``) with its review flags, alone and joined by Label Transfer's default
    forward-backward flag (left/right swaps need named keypoints and are not counted), the
    default flags' catch per subset, reliability bins, then each raw feature."""
    score = probability(records.features, calibration) if calibration else records.features[:, 0]
    flagged = score < calibration["review_below"] if calibration else None
    fb_flagged = fb_fraction(records.features) > DEFAULT_MAX_FB_FRACTION
    figures = {"score": "calibrated probability" if calibration else "window-softmax peak",
               "right_within": calibrate.RIGHT_WITHIN, **calibrate.review_figures(score, right, flagged, fb_flagged)}
    if flagged is not None:
        figures["threshold"] = calibration["review_below"]
        figures["default_caught_per_subset"] = calibrate.caught_per_group(flagged | fb_flagged, right, records.subsets)
    return {**figures, "reliability": calibrate.reliability_bins(score, right),
            "per_feature_auroc": {name: calibrate.auroc(HIGHER_IS_BETTER[name] * records.features[:, i], right)
                                  for i, name in enumerate(FEATURES)}}


def format_report(report: dict) -> str:
    """The printed tables: headline, per subset, per category, per iteration, confidence."""
    keys = list(report["pck"])
    header = f"{'':28s}" + "".join(f"{'PCK@' + k:>10s}" for k in keys)

    def row(name, values):
        return f"{name:28s}" + "".join(f"{values[k]:10.3f}" for k in keys)

    mean = " (unweighted mean of the subsets)" if "per_subset" in report else " (PCK over all keypoints)"
    lines = [f"{report['dataset']}: {report['pairs']} pairs, {report['keypoints']} keypoints{mean}; "
             f"weights: {report['weights']}; input {report.get('input_size', '?')} px", header,
             row("RTN (final iteration)", report["pck"]), row("nearest neighbour", report["nearest_neighbour"])]
    for name, subset in report.get("per_subset", {}).items():
        lines += ["", f"{name}: {subset['pairs']} pairs, {subset['keypoints']} keypoints",
                  row("  RTN (final iteration)", subset["pck"]), row("  nearest neighbour", subset["nearest_neighbour"]),
                  "  per iteration: " + " ".join(f"{t['0.10']:.3f}" for t in subset["per_iteration"]) + " (@0.10)"]
    lines += ["", "per category:"] + [row("  " + name, values) for name, values in report["per_category"].items()]
    lines += ["", "per iteration (0 = identity):"]
    lines += [row(f"  T^{k}", values) for k, values in enumerate(report["per_iteration"])]
    c = report.get("confidence")
    if c:
        lines += ["", f"confidence ({c['score']}) against right = within {c['right_within']:.2f} at the final "
                  f"iteration: {c['points']} points, {c['wrong']} wrong",
                  f"  AUROC {c['auroc']:.3f}; worst-first review finds {c['wrong_found_in_first_20pct']:.1%} "
                  "of the wrong points in its first 20%"]
        if "threshold" in c:
            lines.append(f"  review flags (confidence < {c['threshold']:.3f}): {c['flagged_share']:.1%} of points "
                         f"flagged, {c['wrong_caught']:.1%} of wrong points caught")
            per_subset = c["default_caught_per_subset"]
            lines.append(f"  Label Transfer's default flags (that, or forward-backward error above "
                         f"{DEFAULT_MAX_FB_FRACTION:.0%} of the side): {c['default_flagged_share']:.1%} of points "
                         f"flagged, {c['default_wrong_caught']:.1%} of wrong points caught"
                         + ("; caught per subset: " + ", ".join(f"{name} {value:.1%}"
                                                                for name, value in per_subset.items())
                            if len(per_subset) > 1 else ""))
        lines.append("  AUROC of each feature alone: " + ", ".join(
            f"{name} {value:.3f}" for name, value in c["per_feature_auroc"].items()))
    return "\n".join(lines)
