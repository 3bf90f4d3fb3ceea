"""Fitting and measuring the per-point confidence (``rtn_core.confidence``) on keypoint pairs.

The calibration is a logistic regression of "right within alpha 0.10" on the standardised
features, fitted on semcorr-val only, with each subset weighing the same (600 dog pairs would
otherwise decide it alone); features that come out with the wrong sign are dropped. Review flags
mark the points whose probability lies below a threshold chosen on semcorr-val so that they,
with Label Transfer's forward-backward flag, catch CATCH_TARGET of the wrong points in every
subset (:func:`review_threshold`; the rule in resources/weights/MODEL_CARD.md).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..atomic import write_atomic
from ..confidence import FEATURES, HIGHER_IS_BETTER

RIGHT_WITHIN = 0.10  # alpha: a match is "right" when within this share of the reference length
REVIEW_SHARE = 0.20  # worst-first review: the share of points looked at first
CATCH_TARGET = 0.70  # review flags must catch this share of the wrong points (issue 14's floor)
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)  # the grid review_threshold chooses from
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
    """The smallest threshold of THRESHOLDS at which the flags (probability below it, or
    ``also_flagged``: Label Transfer's forward-backward flag) catch at least ``catch`` of the
    wrong points in every group (semcorr-val's subsets: sets of different difficulty); the
    largest threshold where none does."""
    also = np.zeros(len(right), bool) if also_flagged is None else also_flagged
    for threshold in THRESHOLDS:
        if min(caught_per_group((probabilities < threshold) | also, right, groups).values()) >= catch:
            return float(threshold)
    return float(THRESHOLDS[-1])


def caught_per_group(flagged: np.ndarray, right: np.ndarray, groups: np.ndarray) -> dict:
    """{group: share of its wrong points that are flagged}."""
    wrong = ~np.asarray(right, bool)
    return {str(g): float(flagged[(groups == g) & wrong].mean()) for g in dict.fromkeys(groups[wrong])}


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
        figures.update(flagged_share=float(flagged.mean()),
                       wrong_caught=float(flagged[wrong].sum() / max(wrong.sum(), 1)))
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
