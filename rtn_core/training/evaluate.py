"""``python main.py evaluate``: PCK of RTN on a keypoint benchmark, per iteration, with a
nearest-neighbour baseline.

The baseline ("nearest_neighbour") maps each source keypoint to the argmax of
``result.score_map``: cosine similarity of the model's finest-level features (the stride-8
hypercolumn after the level convolution, 32 x 32 cells at 256 px) with every target cell, no
geometry. RTN's answer at iteration k is ``result.map_points(points, k)``; iteration 0 is the
identity field.
"""
from __future__ import annotations

import glob
import os
import time

import numpy as np
from tqdm import tqdm

from .. import coords
from .data import KeypointPair, read_pf_pascal, read_pf_willow, read_spair
from ..images import load_image
from ..matcher import Matcher
from .pck import ALPHAS, Tally, correct, reference_length

DATASETS = ("pf-willow", "pf-pascal", "spair")

def load_pairs(dataset: str, root: str, pairs: str | None = None) -> list[KeypointPair]:
    """The benchmark's test pairs, read from local files only."""
    if dataset == "pf-willow":
        return read_pf_willow(root)
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

def evaluate(matcher: Matcher, pairs: list[KeypointPair], alphas=ALPHAS, progress: bool = True) -> dict:
    """PCK over all keypoints: final iteration, per category, nearest neighbour, every iteration."""
    final, baseline, iterations = Tally(alphas), Tally(alphas), None
    began = time.time()
    for pair in tqdm(pairs, desc="pairs", unit="pair", disable=not progress):
        source, target = load_image(pair.source), load_image(pair.target)
        keep = np.isfinite(pair.source_points).all(1) & np.isfinite(pair.target_points).all(1)
        width, height = source.original_size
        points = np.clip(pair.source_points[keep], -0.5, [width - 0.5, height - 0.5])
        truth = pair.target_points[keep]
        length = reference_length(pair.reference, truth, target.original_size)
        result = matcher.match(source, target)
        if iterations is None:
            iterations = [Tally(alphas) for _ in result.iterations]
        for k, tally in enumerate(iterations):
            tally.add(pair.category, correct(result.map_points(points, k), truth, length, alphas))
        final.add(pair.category, correct(result.map_points(points), truth, length, alphas))
        baseline.add(pair.category, correct(nearest_neighbour(result, points), truth, length, alphas))
    return {"pairs": len(pairs), "keypoints": final.keypoints, "pck": final.overall(),
            "per_category": final.per_category(), "nearest_neighbour": baseline.overall(),
            "per_iteration": [t.overall() for t in iterations or []],
            "seconds_per_pair": (time.time() - began) / max(len(pairs), 1)}

def format_report(report: dict) -> str:
    """The printed tables: overall, per category, nearest neighbour, per iteration."""
    keys = list(report["pck"])
    header = f"{'':24s}" + "".join(f"{'PCK@' + k:>10s}" for k in keys)

    def row(name, values):
        return f"{name:24s}" + "".join(f"{values[k]:10.3f}" for k in keys)

    lines = [f"{report['dataset']}: {report['pairs']} pairs, {report['keypoints']} keypoints "
             f"(PCK over all keypoints); weights: {report['weights']}", header,
             row("RTN (final iteration)", report["pck"]),
             row("nearest neighbour", report["nearest_neighbour"]), "", "per category:"]
    lines += [row("  " + name, values) for name, values in report["per_category"].items()]
    lines += ["", "per iteration (0 = identity):"]
    lines += [row(f"  T^{k}", values) for k, values in enumerate(report["per_iteration"])]
    return "\n".join(lines)

