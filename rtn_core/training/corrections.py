"""Corrections measured (``main.py evaluate --fixed K``): fix the k worst-scored keypoints of each
pair to their ground truth, re-run the pair with them fixed, and compare PCK of the OTHER keypoints
with their PCK without the fix (k = 0), for k = 1..K.

"Worst-scored" is the lowest ``result.confidence``, as a person reviewing flagged points would pick
them. The re-run reuses the pair's backbone maps (``Matcher.prepare``) and, with
``from_previous``, continues from the plain result's last field (its stride-8 steps only).
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..images import load_image
from ..refine import DEFAULT_FALLOFF
from .data import KeypointPair
from .pck import ALPHAS, mean_pck, pck, reference_length, relative_error

FROM_PREVIOUS = False  # start the re-run from the identity (whole schedule): chosen on semcorr-val


def pair_keypoints(pair: KeypointPair, source_size, target_size):
    """(source points clipped into the source, their truth, the PCK length L) of the visible keypoints."""
    keep = np.isfinite(pair.source_points).all(1) & np.isfinite(pair.target_points).all(1)
    points = np.clip(pair.source_points[keep], -0.5, np.subtract(source_size, 0.5))
    truth = pair.target_points[keep]
    return points, truth, reference_length(pair.reference, truth, target_size)


def fixed_errors(matcher, pair: KeypointPair, max_fixed: int, falloff: float = DEFAULT_FALLOFF,
                 from_previous: bool = FROM_PREVIOUS) -> list[tuple[np.ndarray, np.ndarray]]:
    """For k = 0..max_fixed: (relative errors of the other keypoints without the fix, with it);
    k is left out where the pair has no keypoint besides the k fixed ones."""
    source, target = matcher.prepare(load_image(pair.source)), matcher.prepare(load_image(pair.target))
    points, truth, length = pair_keypoints(pair, source.original_size, target.original_size)
    plain = matcher.match(source, target)
    before = relative_error(plain.map_points(points), truth, length)
    worst_first = np.argsort(plain.confidence(points), kind="stable")
    rows = [(before, before)]
    for k in range(1, min(max_fixed, len(points) - 1) + 1):
        fixed, others = worst_first[:k], worst_first[k:]
        refined = matcher.match(source, target, fixed=list(zip(points[fixed], truth[fixed])),
                                start=plain if from_previous else None, falloff=falloff)
        rows.append((before[others], relative_error(refined.map_points(points[others]), truth[others], length)))
    return rows


def evaluate_fixed(matcher, pairs: list[KeypointPair], max_fixed: int, alphas=ALPHAS, progress: bool = True,
                   **options) -> dict:
    """{"curve": [{"fixed": k, "keypoints", "pck_without_fix", "pck_with_fix"}, ...]}, PCK of the
    other keypoints; semcorr-val's figures are the unweighted mean of its subsets (its README)."""
    collected = {}  # (k, subset) -> [(before, after), ...]
    for pair in tqdm(pairs, desc="pairs", unit="pair", disable=not progress):
        for k, row in enumerate(fixed_errors(matcher, pair, max_fixed, **options)):
            collected.setdefault((k, pair.subset or "all"), []).append(row)
    curve = []
    for k in range(max_fixed + 1):
        groups = [np.concatenate(rows, axis=1) for (j, _), rows in collected.items() if j == k]
        if groups:
            curve.append({"fixed": k, "keypoints": int(sum(g.shape[1] for g in groups)),
                          "pck_without_fix": mean_pck([pck(g[0], alphas) for g in groups]),
                          "pck_with_fix": mean_pck([pck(g[1], alphas) for g in groups])})
    return {"pairs": len(pairs), "curve": curve}


def format_fixed(report: dict, alpha: str = "0.10") -> str:
    """The printed curve: PCK@alpha of the other keypoints without and with the k fixes, and the
    change against the same keypoints unfixed and against every keypoint at k = 0, to four decimals
    (a floor such as "+0.05 at k = 1" must not be met by rounding)."""
    lines = [f"corrections: the k worst-scored keypoints of each pair fixed to the truth "
             f"({report['pairs']} pairs); PCK@{alpha} of the OTHER keypoints",
             f"{'k':>3s}{'keypoints':>11s}{'without fix':>13s}{'with fix':>10s}{'change':>10s}{'vs k=0':>10s}"]
    everything = report["curve"][0]["pck_with_fix"][alpha]
    for row in report["curve"]:
        before, after = row["pck_without_fix"][alpha], row["pck_with_fix"][alpha]
        lines.append(f"{row['fixed']:3d}{row['keypoints']:11d}{before:13.4f}{after:10.4f}{after - before:+10.4f}"
                     f"{after - everything:+10.4f}")
    return "\n".join(lines)
