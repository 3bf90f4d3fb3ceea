"""Fitting and measuring the per-point confidence (``rtn_core.confidence``) on keypoint pairs.

The calibration is a logistic regression of "right within alpha 0.10" on the standardised
features, fitted on semcorr-val only, with each subset weighing the same (600 dog pairs would
otherwise decide it alone); features that come out with the wrong sign are dropped. Review flags
mark either the points whose probability lies below a fixed threshold (:func:`review_threshold`)
or, per project, the least likely points that hold a share of its expected wrong points
(:func:`review_share`); each setting is chosen on semcorr-val to catch CATCH_TARGET of the wrong
points in every subset (the rule in resources/weights/MODEL_CARD.md).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..atomic import write_atomic
from ..confidence import FEATURES, HIGHER_IS_BETTER, review_flags

RIGHT_WITHIN = 0.10  # alpha: a match is "right" when within this share of the reference length
REVIEW_SHARE = 0.20  # worst-first review: the share of points looked at first
CATCH_TARGET = 0.70  # review flags must catch this share of the wrong points (issue 14's floor)
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)  # the grid review_threshold chooses from
SHARES = np.round(np.arange(0.05, 0.991, 0.01), 2)  # the grid review_share chooses from
TIE_SHARE = 0.005  # choose_review: within this share of flagged points, the fixed design wins
L2 = 1e-3  # ridge on the weights: keeps the fit finite when a feature separates perfectly


def fit(features: np.ndarray, right: np.ndarray, groups: np.ndarray) -> dict:
    """Logistic calibration of (N, F) ``features`` against (N,) bool ``right``; every distinct
    ``groups`` value gets the same total weight. A feature whose fitted weight has the wrong
    sign for its meaning (``HIGHER_IS_BETTER``) is dropped (weight 0) and the rest refitted."""
    mean, scale = features.mean(0), features.std(0) + 1e-9
    x = np.c_[(features - mean) / scale, np.ones(len(features))]
    names, counts = np.unique(groups, return_counts=True)
    sample = (1.0 / counts)[np.searchsorted(names, groups)]
    sample *= len(sample) / sample.sum()
    signs = np.array([HIGHER_IS_BETTER[name] for name in FEATURES] + [0])
    active = np.ones(x.shape[1], bool)
    while True:
        beta = np.zeros(x.shape[1])
        beta[active] = _logistic(x[:, active], np.asarray(right, np.float64), sample, active[:-1].sum())
        wrong = active & (signs != 0) & (np.sign(beta) != signs)
        if not wrong.any():
            break
        active &= ~wrong
    return {"features": list(FEATURES), "mean": mean.tolist(), "scale": scale.tolist(),
            "weights": beta[:-1].tolist(), "bias": float(beta[-1]), "right_within": RIGHT_WITHIN,
            "dropped": [name for name, keep in zip(FEATURES, active) if not keep]}


def review_threshold(probabilities: np.ndarray, right: np.ndarray, groups: np.ndarray,
                     also_flagged: np.ndarray | None = None, catch: float = CATCH_TARGET) -> float:
    """The *fixed* design: the smallest threshold of THRESHOLDS at which the flags (probability
    below it, or ``also_flagged``: Label Transfer's forward-backward flag) catch at least
    ``catch`` of the wrong points in every group (semcorr-val's subsets: sets of different
    difficulty); the largest threshold where none does."""
    return _smallest_setting(THRESHOLDS, lambda t: probabilities < t, right, groups, also_flagged, catch)


def review_share(probabilities: np.ndarray, right: np.ndarray, groups: np.ndarray, projects: np.ndarray,
                 also_flagged: np.ndarray | None = None, catch: float = CATCH_TARGET) -> float:
    """The *per project* design: the smallest share of SHARES at which the flags
    (:func:`project_flags`, or ``also_flagged``) catch at least ``catch`` of the wrong points in
    every group; the largest share where none does."""
    return _smallest_setting(SHARES, lambda q: project_flags(probabilities, projects, q), right, groups,
                             also_flagged, catch)


def project_flags(probabilities: np.ndarray, projects: np.ndarray, share: float) -> np.ndarray:
    """(N,) bool: :func:`confidence.review_flags` within each project (the points that share one
    source image)."""
    flagged = np.zeros(len(probabilities), bool)
    for project in np.unique(projects):
        rows = projects == project
        flagged[rows] = review_flags(probabilities[rows], share)
    return flagged


def choose_review(probabilities: np.ndarray, right: np.ndarray, groups: np.ndarray, projects: np.ndarray,
                  also_flagged: np.ndarray) -> tuple[dict, dict]:
    """The review flags' design and setting (the eighth session's rule, MODEL_CARD.md): the fixed
    design at :func:`review_threshold` and the per-project one at :func:`review_share`, each with
    ``also_flagged``; the one whose flags mark the smaller share of points (mean of the groups)
    wins, the fixed one within TIE_SHARE. Returns the pick as calibration entries
    (``review_below`` or ``review_share``) and both designs' figures."""
    designs = {"fixed": {"review_below": review_threshold(probabilities, right, groups, also_flagged)},
               "per project": {"review_share": review_share(probabilities, right, groups, projects, also_flagged)}}
    for setting in designs.values():
        flagged = flags_of(setting, probabilities, projects) | also_flagged
        setting.update(flags=describe_flags(setting), lowest_caught=min(caught_per_group(flagged, right, groups).values()),
                       flagged_share=float(np.mean([flagged[groups == g].mean() for g in np.unique(groups)])))
    fixed, per_project = designs["fixed"], designs["per project"]
    pick = per_project if per_project["flagged_share"] < fixed["flagged_share"] - TIE_SHARE else fixed
    return {key: pick[key] for key in ("review_below", "review_share") if key in pick}, designs


def flags_of(calibration: dict, probabilities: np.ndarray, projects: np.ndarray) -> np.ndarray:
    """(N,) bool review flags by the calibration's design: per project with ``review_share``,
    else below ``review_below``."""
    if "review_share" in calibration:
        return project_flags(probabilities, projects, calibration["review_share"])
    return probabilities < calibration["review_below"]


def describe_flags(calibration: dict) -> str:
    if "review_share" in calibration:
        return (f"per project, the least likely points holding {calibration['review_share']:.0%} of its "
                "expected wrong points")
    return f"confidence < {calibration['review_below']:.3f}"


def caught_per_group(flagged: np.ndarray, right: np.ndarray, groups: np.ndarray) -> dict:
    """{group: share of its wrong points that are flagged}."""
    wrong = ~np.asarray(right, bool)
    return {str(g): float(flagged[(groups == g) & wrong].mean()) for g in dict.fromkeys(groups[wrong])}


def _smallest_setting(grid, flags_at, right: np.ndarray, groups: np.ndarray, also_flagged, catch: float) -> float:
    """The first setting of ``grid`` whose flags, ``flags_at(setting)`` or ``also_flagged``,
    catch at least ``catch`` of the wrong points of every group; the last setting where none does."""
    also = np.zeros(len(right), bool) if also_flagged is None else also_flagged
    for setting in grid:
        if min(caught_per_group(flags_at(setting) | also, right, groups).values()) >= catch:
            return float(setting)
    return float(grid[-1])


def _logistic(x: np.ndarray, y: np.ndarray, sample: np.ndarray, penalised: int) -> np.ndarray:
    """Weighted ridge logistic regression by Newton's method (IRLS); the last column (the bias)
    is not penalised."""
    beta = np.zeros(x.shape[1])
    ridge = L2 * len(y) * np.diag([1.0] * penalised + [0.0])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        gradient = x.T @ (sample * (p - y)) + ridge @ beta
        hessian = (x * (sample * p * (1 - p))[:, None]).T @ x + ridge
        delta = np.linalg.solve(hessian, gradient)
        beta -= delta
        if np.abs(delta).max() < 1e-8:
            break
    return beta


def auroc(scores: np.ndarray, right: np.ndarray) -> float:
    """Probability that a random right point scores above a random wrong one (ties count half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    n_right, n_wrong = right.sum(), (~right).sum()
    if not n_right or not n_wrong:
        return float("nan")
    return float((ranks[right].sum() - n_right * (n_right + 1) / 2.0) / (n_right * n_wrong))


def review_figures(scores: np.ndarray, right: np.ndarray, flagged: np.ndarray | None = None,
                   also_flagged: np.ndarray | None = None) -> dict:
    """How well ``scores`` find the wrong points: AUROC, the share of wrong points among the
    lowest-scored REVIEW_SHARE of points (worst-first review), and with the (N,) bool review
    ``flagged``, the share of points flagged and of wrong points caught; with ``also_flagged``
    (the points another check flags too, as Label Transfer's forward-backward flag does), the
    same two shares for the points either flags ("default_...")."""
    wrong = ~right
    first = np.argsort(scores, kind="mergesort")[:int(round(REVIEW_SHARE * len(scores)))]
    figures = {"points": int(len(scores)), "wrong": int(wrong.sum()), "auroc": auroc(scores, right),
               "wrong_found_in_first_20pct": float(wrong[first].sum() / max(wrong.sum(), 1))}
    if flagged is not None:
        figures.update(flagged_share=float(flagged.mean()), wrong_caught=float(flagged[wrong].sum() / max(wrong.sum(), 1)))
        if also_flagged is not None:
            flagged = flagged | also_flagged
            figures.update(default_flagged_share=float(flagged.mean()),
                           default_wrong_caught=float(flagged[wrong].sum() / max(wrong.sum(), 1)))
    return figures


def reliability_bins(probabilities: np.ndarray, right: np.ndarray, bins: int = 10) -> list[dict]:
    """Per probability bin: the points in it, their mean predicted and observed share right."""
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    return [{"low": b / bins, "high": (b + 1) / bins, "points": int((index == b).sum()),
             "predicted": float(probabilities[index == b].mean()) if (index == b).any() else None,
             "observed": float(right[index == b].mean()) if (index == b).any() else None}
            for b in range(bins)]


def write_reliability_png(path: str, bins: list[dict], title: str) -> None:
    """The reliability diagram: observed share right against predicted probability, per bin
    (bar height = observed, marker = mean predicted, diagonal = perfect calibration)."""
    size, margin = 420, 50
    image = np.full((size + 2 * margin, size + 2 * margin, 3), 255, np.uint8)

    def at(px, py):
        return int(margin + px * size), int(margin + (1 - py) * size)

    cv2.rectangle(image, at(0, 0), at(1, 1), (0, 0, 0), 1)
    cv2.line(image, at(0, 0), at(1, 1), (160, 160, 160), 1)
    most = max(b["points"] for b in bins) or 1
    for b in bins:
        if b["observed"] is None:
            continue
        cv2.rectangle(image, at(b["low"] + 0.01, 0), at(b["high"] - 0.01, b["observed"]), (200, 140, 60), -1)
        cv2.circle(image, at(b["predicted"], b["observed"]), 4, (0, 0, 200), -1)
        cv2.putText(image, str(b["points"]), at(b["low"] + 0.01, 0.02 + 0.9 * b["points"] / most),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1)
    for v in (0.0, 0.5, 1.0):
        cv2.putText(image, f"{v:.1f}", (at(v, 0)[0] - 8, size + margin + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(image, f"{v:.1f}", (8, at(0, v)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(image, title, (margin, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.putText(image, "predicted probability right (bars: observed share right, numbers: points)",
                (margin - 40, size + margin + 40), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"{path}: could not encode the reliability diagram")
    write_atomic(path, data.tobytes())
