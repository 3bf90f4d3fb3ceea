"""Does the cycle score (``rtn_core.cycle``) find wrong points? (``main.py evaluate --cycle R``)

A benchmark's pairs are grouped into image sets (same subset and category: semcorr-val's 25
StanfordExtra dogs, each PF-WILLOW sub-class's 10 images). In each set, a few images serve as the
source of a project whose targets are the set's other images; every transferred keypoint with a
ground truth gets its confidence (``result.confidence``), its cycle error over R routes, and
whether it is right (within 0.10 of the PCK length). Reported: the AUROC of finding the wrong
points by the confidence, by the cycle error, and by the two joined (:func:`joined_score`); points
of a two-image set (no other target to check through) are left out.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from tqdm import tqdm

from ..images import load_image
from ..cycle import DEFAULT_ROUTES, cycle_errors, joined_score, routes_for
from .calibrate import RIGHT_WITHIN, auroc
from .corrections import pair_keypoints
from .data import KeypointPair
from .pck import relative_error

def image_sets(pairs: list[KeypointPair]) -> dict[str, dict[str, dict[str, KeypointPair]]]:
    """{set name: {source path: {target path: pair}}}, a set being one subset and category."""
    sets = defaultdict(lambda: defaultdict(dict))
    for pair in pairs:
        sets[f"{pair.subset + ' ' if pair.subset else ''}{pair.category}"][pair.source][pair.target] = pair
    return sets


def cycle_records(matcher, pairs: list[KeypointPair], sources_per_set: int = 3, routes: int = DEFAULT_ROUTES,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """Per transferred keypoint: "set", "confidence", "cycle" (error), "right" (bool)."""
    rows = []
    sets = image_sets(pairs)
    with tqdm(total=sum(min(len(s), sources_per_set) for s in sets.values()), desc="projects",
              unit="project", disable=not progress) as bar:
        for name, by_source in sets.items():
            prepared = {}  # this set's images, each through the backbone once

            def image(path):
                if path not in prepared:
                    prepared[path] = matcher.prepare(load_image(path))
                return prepared[path]

            for source_path in list(by_source)[:sources_per_set]:
                by_target = by_source[source_path]
                source, targets = image(source_path), [image(path) for path in by_target]
                forward = [matcher.match(source, target) for target in targets]
                for index, pair in enumerate(by_target.values()):
                    points, truth, length = pair_keypoints(pair, source.original_size, targets[index].original_size)
                    right = relative_error(forward[index].map_points(points), truth, length) <= RIGHT_WITHIN
                    landed = {j: forward[j].map_points(points)
                              for j in [index, *routes_for(index, len(targets), routes)]}
                    rows.append((np.full(len(points), name), forward[index].confidence(points),
                                 cycle_errors(matcher, targets, landed, index, routes), right))
                bar.update(1)
    return dict(zip(("set", "confidence", "cycle", "right"), (np.concatenate(c) for c in zip(*rows))))


def evaluate_cycle(matcher, pairs: list[KeypointPair], sources_per_set: int = 3, routes: int = DEFAULT_ROUTES,
                   progress: bool = True) -> dict:
    """AUROC of finding the wrong points: by confidence, by cycle error, joined; overall and per set."""
    records = cycle_records(matcher, pairs, sources_per_set, routes, progress)

    def figures(rows):
        rows = rows & np.isfinite(records["cycle"])  # a set of two images has no route to check through
        right = records["right"][rows]
        confidence, cycle = records["confidence"][rows], records["cycle"][rows]
        return {"points": int(rows.sum()), "wrong": int((~right).sum()),
                "auroc_confidence": auroc(confidence, right), "auroc_cycle": auroc(-cycle, right),
                "auroc_joined": auroc(joined_score(confidence, cycle), right)}

    everything = np.ones(len(records["right"]), bool)
    return {"routes": routes, "sources_per_set": sources_per_set, **figures(everything),
            "per_set": {name: figures(records["set"] == name) for name in sorted(set(records["set"]))}}


def format_cycle(report: dict) -> str:
    """The printed AUROC table."""
    header = f"{'':42s}{'points':>8s}{'wrong':>7s}{'confidence':>12s}{'cycle':>8s}{'joined':>8s}"

    def row(name, f):
        return (f"{name:42s}{f['points']:8d}{f['wrong']:7d}{f['auroc_confidence']:12.3f}"
                f"{f['auroc_cycle']:8.3f}{f['auroc_joined']:8.3f}")

    lines = [f"cycle consistency: AUROC of finding the wrong points (wrong: beyond {RIGHT_WITHIN} of L), "
             f"{report['sources_per_set']} sources per image set, {report['routes']} routes per target", header,
             row("all", report)]
    lines += [row("  " + name, f) for name, f in report["per_set"].items()]
    return "\n".join(lines)
