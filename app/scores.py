"""How a person reads a point's score, in both windows: the model's confidence as a whole
percentage ("72%"), and a point fixed by hand said so instead of a stale number; and what a
correction did to the other points. Files keep the 0-1 value; only what is shown goes through here."""
from __future__ import annotations

BY_HAND = "by hand"  # a point a person placed or corrected: it has no model score
NO_SCORE = "—"  # a matched point without a score: an iteration before the final one
FINAL_MATCH = "Confidence: the calibrated probability that the final match is right"
FINAL_ONLY = f"{FINAL_MATCH}; shown at the last iteration only ({NO_SCORE} before it)"  # windows with playback


def score_text(confidence: float | None, by_hand: bool = False) -> str:
    """"72%" for a confidence in [0, 1], BY_HAND for a point fixed by hand, "" without a score."""
    if by_hand:
        return BY_HAND
    return "" if confidence is None else f"{confidence:.0%}"


def moved_text(distances) -> str:
    """How far a correction's re-run moved the other points (pixel distances), in both windows'
    status lines: a move of a pixel or two is hard to see on the image, a large one worth a look."""
    moved = [d for d in distances if d >= 0.5]
    if not moved:
        return f"none of the {len(distances)} other point(s) moved"
    return f"{len(moved)} of the {len(distances)} other point(s) moved, up to {max(moved):.1f} px"
