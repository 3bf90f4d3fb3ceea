"""Label transfer: carry the source's keypoints to many target images with a Matcher.

Each point gets its match, the model's confidence, and a forward-backward check: the matched
point is taken back by the same run's target-to-source field (``CorrespondenceResult.backward``,
made with any fixes reversed); its distance to the original point (source pixels) is the fb error. Points failing the thresholds are flagged
for review (see :func:`rtn_core.labels.keypoints.assess`). A target that cannot be read is skipped
with its reason. The GUI runs :func:`iter_transfer` (or :func:`transfer_targets`) in a worker
thread and hands the results to ``Project.apply_transfers`` on its own thread; ``main.py transfer`` (:func:`run`) goes
through :func:`transfer_into`, the same code path, in one go.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, replace
from typing import Callable, Iterable, Iterator

import numpy as np

from ..confidence import returned_points
from ..image_header import read_header
from ..images import ImageError, load_image
from .keypoints import (ABSENT, DONE, SKIPPED, VISIBLE, ImageLabels, LabelSet, Point, TransferSettings, assess,
                        check_inside)
from ..weights import file_hash

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

Progress = Callable[[int, int, str], None]  # (targets finished, total, path just finished)

def model_info(matcher) -> dict:
    """What made the labels, for every export: the model with the inference settings behind them
    (input size, the schedule's strides, the semantic readout's weight), the weights file and its hash."""
    weights, model = matcher.weights, matcher.model
    readout = "no readout" if model.readout_weight is None else f"readout w={model.readout_weight:g}"
    schedule = "/".join(str(stride) for stride in model.schedule)
    return {"model": f"RTN {model.backbone_name} {matcher.input_size}px, schedule {schedule}, {readout}",
            "weights": os.path.basename(weights) if weights else None,
            "weights_hash": file_hash(weights) if weights else None}

def iter_transfer(matcher, source: ImageLabels, target_paths: Iterable[str],
                  settings: TransferSettings, fixed: dict | None = None) -> Iterator[ImageLabels]:
    """Yield each target's fresh transfer result in turn, so a worker can stream them and stop between targets.

    ``fixed``: {target path: its points fixed by hand} (:func:`hand_fixed`); the target is matched
    with them imposed (``Matcher.match(fixed=...)``), so they pull the other points along.

    Raises ValueError when the source has no keypoints, ImageError (a ValueError) when it cannot be read.
    """
    present = [p for p in source.points if p.visibility != ABSENT]
    if not present:
        raise ValueError(f"{os.path.basename(source.image)}: no keypoints to transfer")
    source_image = matcher.prepare(load_image(source.image))  # its backbone runs once for all targets
    for path in target_paths:
        yield _transfer_one(matcher, source_image, source, present, path, settings, (fixed or {}).get(path, ()))

def transfer_targets(matcher, source: ImageLabels, target_paths: Iterable[str], settings: TransferSettings,
                     progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                     fixed: dict | None = None) -> list[ImageLabels]:
    """Fresh transfer results for the target paths, in order; stops after the current target once ``cancelled()``."""
    target_paths = list(target_paths)
    results = []
    for fresh in iter_transfer(matcher, source, target_paths, settings, fixed):
        results.append(fresh)
        if progress:
            progress(len(results), len(target_paths), fresh.image)
        if cancelled and cancelled():
            break
    return results

def _transfer_one(matcher, source_image, source: ImageLabels, present: list[Point], path: str,
                  settings: TransferSettings, fixed_points=()) -> ImageLabels:
    try:
        return _matched(matcher, source_image, source, present, path, settings, fixed_points)
    except ImageError as exc:
        return ImageLabels(path, status=SKIPPED, reason=str(exc))
    except (ValueError, OSError, MemoryError, RuntimeError) as exc:  # one target's failure (e.g. out of memory) skips it
        return ImageLabels(path, status=SKIPPED, reason=f"{os.path.basename(path)}: {type(exc).__name__}: "
                                                         f"{' '.join(str(exc).split())[:200]}")

def _matched(matcher, source_image, source: ImageLabels, present: list[Point], path: str,
             settings: TransferSettings, fixed_points=()) -> ImageLabels:
    target_image = matcher.prepare(load_image(path))
    width, height = target_image.original_size
    source_xy = np.array([[p.x, p.y] for p in present], dtype=np.float64).reshape(-1, 2)
    by_name = {p.name: p for p in present}
    fixes = [((by_name[p.name].x, by_name[p.name].y), (p.x, p.y)) for p in fixed_points if p.name in by_name]
    forward = matcher.match(source_image, target_image, fixed=fixes)
    target_xy = np.clip(forward.map_points(source_xy), -0.5, [width - 0.5, height - 0.5])
    confidence = forward.confidence(source_xy)
    fb_error = np.linalg.norm(returned_points(forward, target_xy) - source_xy, axis=1)
    points = tuple(Point(p.name, round(float(x), 3), round(float(y), 3), VISIBLE, round(float(c), 4),
                         round(float(e), 3))
                   for p, (x, y), c, e in zip(present, target_xy, confidence, fb_error))
    return ImageLabels(path, (width, height), assess(source, points, settings), status=DONE)

def transfer_into(labels: LabelSet, matcher, target_paths: Iterable[str] | None = None,
                  progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> LabelSet:
    """``labels`` with the targets (default: every unreviewed target) transferred and merged.

    New paths become targets; manual points already there are kept (see ``LabelSet.with_transfer``).
    """
    target_paths = list(target_paths or [])
    labels = labels.add_targets(target_paths)
    paths = target_paths or [t.image for t in labels.targets if not t.reviewed]
    results = transfer_targets(matcher, labels.source, paths, labels.settings, progress, cancelled,
                               hand_fixed(labels))
    return apply_results(labels, results, model_info(matcher))


def add_fixes(labels: LabelSet, fixes: LabelSet) -> LabelSet:
    """``labels`` with the fixes of ``fixes`` (:func:`is_fix`; e.g. ``project.read_fixes``) placed by
    hand on the targets of the same file name, so a transfer imposes them. An image of the fixes that
    is no target, a keypoint the source lacks, or a point outside its target image raises ValueError
    naming it (before any matching)."""
    targets = {os.path.basename(t.image): t.image for t in labels.targets}
    for image in fixes.images:
        name = os.path.basename(image.image)
        if name == os.path.basename(labels.source.image):
            continue
        if name not in targets:
            raise ValueError(f"fixed points for {name}: it is not one of the targets")
        size = _shown_size(targets[name])
        for p in filter(is_fix, image.points):
            if p.name not in labels.names:
                raise ValueError(f"fixed point {p.name!r} on {name}: the source has no keypoint of that name")
            try:
                check_inside(ImageLabels(targets[name], size), [(p.x, p.y)])
            except ValueError as exc:
                raise ValueError(f"fixed point {p.name!r} on {exc}") from None
            labels = labels.add_point(targets[name], p.name, p.x, p.y, p.visibility)
    return labels


def is_fix(point: Point) -> bool:
    """Whether a point read from a fixes file fixes its target: a visible or occluded point placed by
    hand, or one without a model score (a plain label file's). A transferred point carries its score
    and is not a fix, so a project or an export of one fixes only what a person placed."""
    return point.visibility != ABSENT and (point.manual or point.confidence is None)


def _shown_size(path: str) -> tuple[int, int] | None:
    """(width, height) of an image as shown, from its header; None when the header does not say."""
    try:
        return read_header(path).shown_size
    except OSError:
        return None  # the transfer reports the unreadable file when it gets there


def hand_fixed(labels: LabelSet) -> dict:
    """{target path: its visible points placed or corrected by hand}: the fixes a re-transfer imposes."""
    return {t.image: tuple(p for p in t.points if p.manual and p.visibility != ABSENT) for t in labels.targets}

def apply_results(labels: LabelSet, results: Iterable[ImageLabels], info: dict) -> LabelSet:
    """Merge fresh results into ``labels`` and record the model that made them.

    Results for targets removed meanwhile (e.g. while a worker ran) are dropped.
    """
    labels = replace(labels, info={**labels.info, **info, "settings": asdict(labels.settings)})
    for fresh in results:
        if fresh.image in {im.image for im in labels.images}:
            labels = labels.with_transfer(fresh)
    return labels

def summary(labels: LabelSet) -> str:
    """A few lines: targets done (how many of them a person accepted, how many await review),
    skipped with reasons, points flagged by kind."""
    done = [t for t in labels.targets if t.status == DONE]
    skipped = [t for t in labels.targets if t.status == SKIPPED]
    reviewed = sum(t.reviewed for t in done)
    flags = Counter(f for t in done for p in t.points for f in p.flags)
    flagged = sum(len(t.flagged) for t in done)
    review = f" ({reviewed} reviewed, {len(done) - reviewed} awaiting review)" if done else ""
    lines = [f"targets: {len(done)} done{review}, {len(skipped)} skipped, "
             f"{len(labels.targets) - len(done) - len(skipped)} not run",
             f"points flagged for review: {flagged} of {sum(len(t.points) for t in done)}"
             + (f" ({', '.join(f'{k} {v}' for k, v in sorted(flags.items()))})" if flags else "")]
    lines += [f"skipped {os.path.basename(t.image)}: {t.reason.removeprefix(os.path.basename(t.image) + ': ')}"
              for t in skipped]  # a reason may start with the name already
    return "\n".join(lines)

def expand_targets(entries: Iterable[str], source: str) -> list[str]:
    """Folders become their image files (sorted); files are kept as given; the source is left out.

    A folder holding no image files stays in the list as itself, so the transfer reports it
    as skipped ("is a folder, not an image") instead of dropping it silently.
    """
    paths = []
    for entry in entries:
        if os.path.isdir(entry):
            images = sorted(os.path.join(entry, f) for f in os.listdir(entry) if f.lower().endswith(IMAGE_EXTENSIONS))
            paths += images or [entry]
        else:
            paths.append(entry)
    source = os.path.abspath(source)
    return [p for p in dict.fromkeys(os.path.abspath(p) for p in paths) if p != source]

