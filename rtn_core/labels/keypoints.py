"""Keypoint labels: the Qt-free data model of label transfer.

A :class:`LabelSet` holds named keypoints on a list of images; in a transfer project the first
image is the hand-labelled source and the others are targets the model carries the labels to.
Everything here is immutable (frozen dataclasses, tuples): an edit returns a new LabelSet that
shares the untouched images with the old one. So undo is a list of earlier LabelSets (exact and
cheap), a worker thread can read a snapshot while the GUI edits, and equality is plain ``==``.

Coordinates are (x, y) in pixels of the original image, 0-based, pixel centres at integers.
Visibility follows COCO: 0 absent, 1 occluded (labelled but hidden), 2 visible.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, replace

from ..confidence import load_settings
from ..weights import DEFAULT_WEIGHTS

ABSENT, OCCLUDED, VISIBLE = 0, 1, 2

LOW_CONFIDENCE = "low_confidence"  # the model's confidence is below the threshold
FB_FAIL = "fb_fail"  # mapping the point to the target and back misses the source point
DEFAULT_MAX_FB_FRACTION = 0.05  # TransferSettings' default; evaluate measures the default flags with it
LR_SWAP = "lr_swap"  # a left/right pair sits in the opposite horizontal order from the source

PENDING, DONE, SKIPPED = "pending", "done", "skipped"


def shipped_review_threshold() -> float:
    """The shipped weights' review threshold (3 decimals), or 0.5 (more likely wrong than right)
    where no inference settings ship."""
    return round(load_settings(DEFAULT_WEIGHTS).get("confidence", {}).get("review_below", 0.5), 3)


@dataclass(frozen=True)
class TransferSettings:
    """Thresholds that flag transferred points for review."""

    # below this calibrated confidence the point is flagged low_confidence; default: the shipped
    # weights' threshold, chosen on semcorr-val so that it and the fb flag catch 70% of the wrong
    # points in every subset (resources/weights/rtn_lite0.inference.json, "review_below"; MODEL_CARD.md)
    min_confidence: float = field(default_factory=shipped_review_threshold)
    max_fb_fraction: float = DEFAULT_MAX_FB_FRACTION  # fb error above this share of the source's longer side: fb_fail

    def __post_init__(self):
        """Refuse thresholds that would flag nothing or everything unnoticed (NaN compares false)."""
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"minimum confidence must be between 0 and 1, not {self.min_confidence}")
        if not 0.0 < self.max_fb_fraction <= 10.0:
            raise ValueError(f"maximum forward-backward fraction must be above 0 and at most 10, "
                             f"not {self.max_fb_fraction}")

    def max_fb_error(self, source_size) -> float:
        """The forward-backward threshold in source pixels."""
        return self.max_fb_fraction * max(source_size)

    @classmethod
    def from_dict(cls, data: dict) -> "TransferSettings":
        return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Point:
    """One named keypoint on one image, with the model's scores when it was transferred."""

    name: str
    x: float
    y: float
    visibility: int = VISIBLE
    confidence: float | None = None  # model confidence in [0, 1]; None when placed by hand
    fb_error: float | None = None  # forward-backward distance in source pixels
    manual: bool = False  # placed or corrected by a person: a re-transfer keeps it
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "flags": list(self.flags)}

    @classmethod
    def from_dict(cls, data: dict) -> "Point":
        return cls(str(data["name"]), float(data["x"]), float(data["y"]), int(data.get("visibility", VISIBLE)),
                   _optional_float(data.get("confidence")), _optional_float(data.get("fb_error")),
                   bool(data.get("manual", False)), tuple(data.get("flags", ())))


@dataclass(frozen=True)
class ImageLabels:
    """The keypoints of one image, its review state, and whether a transfer reached it."""

    image: str  # path to the image file
    size: tuple[int, int] | None = None  # (width, height) of the original image, None if unknown
    points: tuple[Point, ...] = ()
    reviewed: bool = False  # a person accepted this image's points
    status: str = PENDING  # pending, done (transferred or labelled) or skipped
    reason: str = ""  # why it was skipped

    def point(self, name: str) -> Point | None:
        return next((p for p in self.points if p.name == name), None)

    @property
    def flagged(self) -> tuple[Point, ...]:
        return tuple(p for p in self.points if p.flags)

    def worst_key(self) -> tuple:
        """Sort key putting the images that most need review first: most flags, then lowest confidence."""
        scores = [p.confidence for p in self.points if p.confidence is not None and not p.manual]
        return (self.status != SKIPPED, -len(self.flagged), min(scores, default=1.0), self.image)

    def to_dict(self) -> dict:
        return {"image": self.image, "size": list(self.size) if self.size else None,
                "points": [p.to_dict() for p in self.points], "reviewed": self.reviewed,
                "status": self.status, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict) -> "ImageLabels":
        size = data.get("size")
        return cls(str(data["image"]), (int(size[0]), int(size[1])) if size else None,
                   tuple(Point.from_dict(p) for p in data.get("points", ())), bool(data.get("reviewed", False)),
                   str(data.get("status", PENDING)), str(data.get("reason", "")))


@dataclass(frozen=True)
class LabelSet:
    """Named keypoints on many images: in a project, ``images[0]`` is the source.

    ``names`` lists every keypoint in order (the skeleton's edges index it); an image holds a
    point per name it has. ``info`` records what made the labels (model, weights hash,
    settings): plain JSON values, written into every export.
    """

    images: tuple[ImageLabels, ...]
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    category: str = "object"
    info: dict = field(default_factory=dict)

    # --- reading ---------------------------------------------------------------------------
    @property
    def source(self) -> ImageLabels:
        return self.images[0]

    @property
    def targets(self) -> tuple[ImageLabels, ...]:
        return self.images[1:]

    def image(self, path: str) -> ImageLabels:
        return self.images[self.index(path)]

    def index(self, path: str) -> int:
        for i, labels in enumerate(self.images):
            if labels.image == path:
                return i
        raise KeyError(f"{os.path.basename(path)}: not in this project")

    def worst_first(self) -> list[str]:
        """Target paths ordered for review: skipped, then most flags, then lowest confidence."""
        return [t.image for t in sorted(self.targets, key=ImageLabels.worst_key)]

    def for_export(self, reviewed_only: bool = False) -> "LabelSet":
        """The source and the transferred targets (optionally only reviewed ones), absent points dropped.

        This is the canonical form every exporter writes and every importer reads back.
        """
        chosen = [self.source] + [t for t in self.targets
                                  if t.status == DONE and (t.reviewed or not reviewed_only)]
        images = tuple(replace(im, points=tuple(p for p in im.points if p.visibility != ABSENT), reason="")
                       for im in chosen)
        return replace(self, images=images)

    # --- edits: each returns a new LabelSet ------------------------------------------------
    def map_paths(self, change) -> "LabelSet":
        """Every image path replaced by ``change(path)`` (e.g. made relative to a file's folder)."""
        return replace(self, images=tuple(replace(im, image=change(im.image)) for im in self.images))

    def replace_image(self, labels: ImageLabels) -> "LabelSet":
        images = list(self.images)
        images[self.index(labels.image)] = labels
        return replace(self, images=tuple(images))

    def add_targets(self, paths) -> "LabelSet":
        """Append new pending targets (paths already present are ignored)."""
        known = {im.image for im in self.images}
        fresh = [ImageLabels(p) for p in dict.fromkeys(paths) if p not in known]
        return replace(self, images=self.images + tuple(fresh))

    def remove_targets(self, paths) -> "LabelSet":
        drop = set(paths) - {self.source.image}
        return replace(self, images=tuple(im for im in self.images if im.image not in drop))

    def add_point(self, path: str, name: str, x: float, y: float, visibility: int = VISIBLE) -> "LabelSet":
        """Place a point by hand; a new name becomes a new keypoint of the whole set."""
        labels = self.image(path)
        if not name.strip():
            raise ValueError("a keypoint needs a name")
        if labels.point(name) is not None:
            raise ValueError(f"{os.path.basename(path)} already has a keypoint named {name!r}")
        check_inside(labels, [(x, y)])
        point = Point(name, float(x), float(y), _checked_visibility(visibility), manual=True)
        names = self.names if name in self.names else self.names + (name,)
        return replace(self, names=names).replace_image(self._assessed(replace(labels, points=labels.points + (point,))))

    def move_points(self, path: str, names, dx: float, dy: float) -> "LabelSet":
        """Shift the named points of one image together by (dx, dy) pixels; they become manual."""
        return self._edit(path, names, lambda p: replace(p, x=p.x + float(dx), y=p.y + float(dy)))

    def place_point(self, path: str, name: str, x: float, y: float) -> "LabelSet":
        """Put one point at (x, y), e.g. the end of a drag; it becomes manual."""
        return self._edit(path, [name], lambda p: replace(p, x=float(x), y=float(y)))

    def set_visibility(self, path: str, names, visibility: int) -> "LabelSet":
        visibility = _checked_visibility(visibility)
        return self._edit(path, names, lambda p: replace(p, visibility=visibility))

    def delete_keypoints(self, names) -> "LabelSet":
        """Remove keypoints from every image and from the skeleton."""
        gone = set(names)
        kept = [n for n in self.names if n not in gone]
        new_index = {n: kept.index(n) for n in kept}
        edges = tuple((new_index[self.names[a]], new_index[self.names[b]]) for a, b in self.skeleton
                      if self.names[a] not in gone and self.names[b] not in gone)
        images = tuple(replace(im, points=tuple(p for p in im.points if p.name not in gone)) for im in self.images)
        return replace(self, images=images, names=tuple(kept), skeleton=edges)

    def rename_keypoint(self, old: str, new: str) -> "LabelSet":
        if old not in self.names:
            raise ValueError(f"no keypoint named {old!r}")
        if not new.strip() or new in self.names:
            raise ValueError(f"cannot rename {old!r} to {new!r}: the name is empty or taken")
        images = tuple(replace(im, points=tuple(replace(p, name=new) if p.name == old else p for p in im.points))
                       for im in self.images)
        relabelled = replace(self, names=tuple(new if n == old else n for n in self.names), images=images)
        return replace(relabelled, images=(relabelled.source,) + tuple(relabelled._assessed(t) for t in relabelled.targets))

    def set_reviewed(self, paths, reviewed: bool = True) -> "LabelSet":
        result = self
        for path in paths:
            result = result.replace_image(replace(result.image(path), reviewed=reviewed))
        return result

    def with_settings(self, settings: TransferSettings) -> "LabelSet":
        """New thresholds: recorded in ``info`` and every target's flags recomputed."""
        updated = replace(self, info={**self.info, "settings": asdict(settings)})
        return replace(updated, images=(updated.source,) + tuple(updated._assessed(t) for t in updated.targets))

    def with_transfer(self, fresh: ImageLabels) -> "LabelSet":
        """Merge one target's fresh transfer result, keeping every manual point already there.

        Points of keypoints deleted since the transfer started are dropped. A skipped result keeps the old points and records the reason. The target stays reviewed
        only if the merge changed none of its points.
        """
        old = self.image(fresh.image)
        if fresh.status == SKIPPED:
            return self.replace_image(replace(old, status=SKIPPED, reason=fresh.reason))
        manual = {p.name: p for p in old.points if p.manual}
        points = tuple(manual.get(p.name, p) for p in fresh.points if p.name in self.names)
        points += tuple(p for name, p in manual.items() if fresh.point(name) is None)
        merged = self._assessed(replace(fresh, points=points, reviewed=old.reviewed))
        return self.replace_image(replace(merged, reviewed=old.reviewed and merged.points == old.points))

    @property
    def settings(self) -> TransferSettings:
        return TransferSettings.from_dict(self.info.get("settings", {}))

    def _edit(self, path: str, names, change) -> "LabelSet":
        """``change`` applied to the named points of one image; they become manual, and a point a
        person placed has no model score: its confidence, fb error and flags are dropped."""
        labels = self.image(path)
        names = set(names)
        missing = names - {p.name for p in labels.points}
        if missing:
            raise ValueError(f"{os.path.basename(path)} has no keypoint named {sorted(missing)[0]!r}")
        points = tuple(replace(change(p), manual=True, confidence=None, fb_error=None, flags=())
                       if p.name in names else p for p in labels.points)
        check_inside(labels, [(p.x, p.y) for p in points if p.name in names])
        edited = replace(labels, points=points)
        if labels.image == self.source.image:  # the source moved: every target's pair order may change
            result = self.replace_image(edited)
            return replace(result, images=(edited,) + tuple(result._assessed(t) for t in result.targets))
        return self.replace_image(self._assessed(edited))

    def _assessed(self, target: ImageLabels) -> ImageLabels:
        """``target`` with flags recomputed against the source (the source itself is returned as is)."""
        if target.image == self.source.image:
            return target
        return replace(target, points=assess(self.source, target.points, self.settings))

    # --- project files ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"names": list(self.names), "skeleton": [list(e) for e in self.skeleton],
                "category": self.category, "info": self.info, "images": [im.to_dict() for im in self.images]}

    @classmethod
    def from_dict(cls, data: dict) -> "LabelSet":
        return cls(tuple(ImageLabels.from_dict(im) for im in data["images"]), tuple(data["names"]),
                   tuple((int(a), int(b)) for a, b in data.get("skeleton", ())),
                   str(data.get("category", "object")), dict(data.get("info", {})))


def new_project(source: ImageLabels, names=None, skeleton=(), category: str = "object",
                settings: TransferSettings = TransferSettings()) -> LabelSet:
    """A LabelSet with ``source`` (its points hand-placed: manual, reviewed, done) and no targets."""
    points = tuple(replace(p, manual=True, confidence=None, fb_error=None, flags=()) for p in source.points)
    source = replace(source, points=points, reviewed=True, status=DONE, reason="")
    names = tuple(names) if names else tuple(p.name for p in points)
    return LabelSet((source,), names, tuple(skeleton), category, {"settings": asdict(settings)})


def assess(source: ImageLabels, points, settings: TransferSettings) -> tuple[Point, ...]:
    """Recompute the review flags of a target's points against the source.

    Model points (not manual) below the confidence threshold get LOW_CONFIDENCE, those whose
    forward-backward error exceeds the threshold FB_FAIL. Each left/right pair whose horizontal
    order differs from the source's gets LR_SWAP on its model points: a point a person placed
    carries no flag.
    """
    max_fb = settings.max_fb_error(source.size) if source.size else math.inf
    flags = {p.name: [] for p in points}
    for p in points:
        if not p.manual and p.confidence is not None and p.confidence < settings.min_confidence:
            flags[p.name].append(LOW_CONFIDENCE)
        if not p.manual and p.fb_error is not None and p.fb_error > max_fb:
            flags[p.name].append(FB_FAIL)
    by_name = {p.name: p for p in points if p.visibility != ABSENT}
    source_points = {p.name: p for p in source.points if p.visibility != ABSENT}
    for left, right in mirror_pairs(list(flags)):
        if {left, right} <= by_name.keys() & source_points.keys():
            a, b = by_name[left], by_name[right]
            source_dx = source_points[left].x - source_points[right].x
            if source_dx * (a.x - b.x) < 0 and abs(source_dx) >= 1.0:
                for p in (a, b):
                    if not p.manual:
                        flags[p.name].append(LR_SWAP)
    return tuple(replace(p, flags=tuple(flags[p.name])) for p in points)


_SIDE_WORDS = {"left": "L", "l": "L", "right": "R", "r": "R"}


def mirror_pairs(names) -> list[tuple[str, str]]:
    """(left name, right name) pairs among ``names``.

    Recognised (any case, separator ``_``, ``-``, ``.`` or space): left_eye/right_eye,
    eye_left/eye_right, l_eye/r_eye, eye_l/eye_r.
    """
    sides = {}
    for name in names:
        words = re.split(r"[_\-. ]", name.lower())
        if len(words) < 2:
            continue
        for position in (0, -1):
            side = _SIDE_WORDS.get(words[position])
            if side:
                rest = words[1:] if position == 0 else words[:-1]
                sides[(side, position, len(words[position]) == 1, tuple(rest))] = name
    return [(name, sides[("R", *key)]) for (side, *key), name in sides.items()
            if side == "L" and ("R", *key) in sides]


def check_inside(labels: ImageLabels, points) -> None:
    """Raise ValueError naming the image when a point lies outside it (pixel edges are -0.5 and size-0.5)."""
    if labels.size is None:
        return
    width, height = labels.size
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y) and -0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
            raise ValueError(f"{os.path.basename(labels.image)}: point ({x:g}, {y:g}) lies outside the image "
                             f"({width}x{height} px)")


def _checked_visibility(visibility) -> int:
    if visibility not in (ABSENT, OCCLUDED, VISIBLE):
        raise ValueError(f"visibility must be 0 (absent), 1 (occluded) or 2 (visible), not {visibility!r}")
    return int(visibility)


def _optional_float(value) -> float | None:
    return None if value is None or value == "" else float(value)
