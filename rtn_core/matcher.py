"""Inference API: two RGB images of any size in, a :class:`CorrespondenceResult` out.

Images are resized (ignoring aspect) to a square ``input_size``: by default 256 px (the
authors trained at 256), unless the weights' inference settings (``confidence.load_settings``:
input size, schedule, semantic readout weight and confidence chosen on semcorr-val) say otherwise.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterator

import cv2
import numpy as np
import torch

from .backbones import SEMANTIC
from .confidence import load_settings
from .device import choose_device
from .host_memory import keep_freed_memory
from .images import LoadedImage, as_loaded
from .model import DEFAULT_SCHEDULE, RTN, window_softmax
from .refine import DEFAULT_FALLOFF, Fixes
from .result import CorrespondenceResult, Iteration
from .weights import DEFAULT_WEIGHTS, load_rtn_weights

DEFAULT_INPUT_SIZE = 256


def to_input_tensor(pixels: np.ndarray, size: int) -> torch.Tensor:
    """H x W x 3 uint8 RGB -> (1, 3, size, size) float in [0, 1]."""
    resized = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(resized).permute(2, 0, 1)[None].float().div_(255.0)


class Matcher:
    """Owns one RTN on one device; matches image pairs, whole or iteration by iteration.

    weights: a file path, None for the shipped default (the untrained network when no
    weights ship), or "" for the untrained network.
    """

    def __init__(self, weights: str | None = None, backbone: str = "efficientnet-lite0",
                 device: str | None = None, input_size: int | None = None,
                 backbone_weights: str | None = None):
        self.device = choose_device(device)
        keep_freed_memory()  # activations reuse freed memory instead of page-faulting afresh
        if weights is None and os.path.isfile(DEFAULT_WEIGHTS):
            weights = DEFAULT_WEIGHTS
        self.weights = weights or None
        # settings chosen on semcorr-val with these weights: the updates run and the confidence
        settings = load_settings(self.weights)
        self.calibration = settings.get("confidence")
        self.input_size = input_size or settings.get("input_size", DEFAULT_INPUT_SIZE)
        self.model = RTN(backbone, backbone_weights, schedule=settings.get("schedule", DEFAULT_SCHEDULE))
        self.model.readout_weight = settings.get("readout_weight")
        if self.weights:
            load_rtn_weights(self.model, self.weights)
        # channels_last: 14% less CPU time a pair on this machine, fields equal within 2e-5 relative
        self.model.to(self.device, memory_format=torch.channels_last).eval()

    def prepare(self, image) -> "PreparedImage":
        """Run the backbone on one image; a prepared image matched against many others (label
        transfer) pays for its backbone once. ``image``: LoadedImage, array or PreparedImage."""
        return self._prepare(image)[0]

    def _prepare(self, *images) -> list["PreparedImage"]:
        """The images prepared; the backbone runs once, in one batch, over those not prepared yet."""
        prepared = list(images)
        pending = [i for i, image in enumerate(images) if not isinstance(image, PreparedImage)]
        if pending:
            loaded = [_loaded(images[i]) for i in pending]
            with torch.inference_mode():
                pixels = torch.cat([to_input_tensor(im.pixels, self.input_size) for im in loaded])
                pixels = pixels.to(self.device, memory_format=torch.channels_last)
                maps = self.model.features(pixels)
            for k, (i, image) in enumerate(zip(pending, loaded)):
                prepared[i] = PreparedImage(image, {stride: m[k:k + 1] for stride, m in maps.items()})
        return prepared

    def match(self, source, target, fixed=(), start: CorrespondenceResult | None = None,
              falloff: float = DEFAULT_FALLOFF) -> CorrespondenceResult:
        """Run every iteration and return the complete result (arguments as :meth:`stream`)."""
        result = None
        for result in self.stream(source, target, fixed, start, falloff):
            pass
        return result

    def stream(self, source, target, fixed=(), start: CorrespondenceResult | None = None,
               falloff: float = DEFAULT_FALLOFF) -> Iterator[CorrespondenceResult]:
        """Yield a new result snapshot after each iteration: first the start, last complete.

        ``source``/``target``: LoadedImage, H x W x {1,3,4} arrays (RGB order) or PreparedImage
        (pass prepared images to re-run a pair without its backbone). ``fixed``: corrections
        ``[(source_xy, target_xy), ...]`` in original pixels, imposed on every field (``refine``):
        each fixed point maps exactly to its target and pulls its neighbours within ``falloff``;
        the semantic readout also weighs, for every pixel, where the fix's geometry puts it.
        ``start``: a result of this pair to continue from (its last update's field, and the steps
        of the schedule on that field's level) instead of the identity and the whole schedule.
        """
        source, target = self._prepare(source, target)
        fixes = Fixes.from_pixels(fixed, source.original_size, target.original_size, falloff) if len(fixed) else None
        start_field = None if start is None else _last_update(start).field[None].to(self.device)
        first = 0 if start is None else self.model.schedule.index(_last_update(start).stride)
        with torch.inference_mode():
            source_features, target_features = self.model.final_features(source.features, target.features)
            shown = _readable_features(source, target) or (source_features, target_features)
            result = CorrespondenceResult(
                source.original_size, target.original_size,
                source_features=shown[0][0].cpu(), target_features=shown[1][0].cpu(),
                device=str(self.device), total_iterations=self.model.iterations - first,
                calibration=self.calibration)
            finest = {min(self.model.schedule): source_features}
            for step in self.model.iterate_features(source.features, target.features, finest,
                                                    start_field, fixes):
                confidence = window_softmax(step.correlation).amax(dim=1)[0]
                certainty = None if step.certainty is None else step.certainty[0].float().cpu()
                iteration = Iteration(step.field[0].float().cpu(), confidence.float().cpu(), step.stride, step.readout,
                                      certainty)
                result = dataclasses.replace(result, iterations=result.iterations + [iteration])
                if result.complete:
                    result = dataclasses.replace(result, backward=self._backward(source, target, target_features,
                                                                                 fixes))
                yield result

    def _backward(self, source, target, target_features, fixes: Fixes | None = None) -> Iteration:
        """The target-to-source field after the whole schedule, for the forward-backward check
        (the backbone maps are reused: only the updates cost), with the fixes reversed (target
        point -> source point) imposed, as a match of the reversed pair with them would."""
        finest = {min(self.model.schedule): target_features}
        *_, last = self.model.iterate_features(target.features, source.features, finest, None,
                                               None if fixes is None else fixes.reversed())
        peak = window_softmax(last.correlation).amax(dim=1)[0]
        return Iteration(last.field[0].float().cpu(), peak.float().cpu(), last.stride, last.readout)

    def warm_up(self) -> None:
        """One small run, so the first real match does not pay for lazy initialisation."""
        blank = np.zeros((32, 32, 3), np.uint8)
        self.match(blank, blank)


@dataclasses.dataclass(frozen=True)
class PreparedImage:
    """An image with its backbone maps ({stride: (1, C, h, w)}, on the matcher's device), made
    by :meth:`Matcher.prepare`; valid for that matcher only."""
    image: LoadedImage
    features: dict

    @property
    def original_size(self) -> tuple[int, int]:
        return self.image.original_size


def _readable_features(source: PreparedImage, target: PreparedImage):
    """The semantic maps of the pair, for the result's score map and confidence features: they tell
    kinds of parts apart, which the learned level features (trained on warps of one photo) do not
    (nearest-neighbour PCK@0.10 on semcorr-val at 320 px: 0.42 against 0.24); None where the backbone has none."""
    if SEMANTIC not in source.features:
        return None
    return source.features[SEMANTIC], target.features[SEMANTIC]


def _last_update(result: CorrespondenceResult) -> Iteration:
    """The result's newest iteration that is not a semantic readout (a start for the updates)."""
    return next(it for it in reversed(result.iterations) if not it.readout)


def _loaded(image) -> LoadedImage:
    return image if isinstance(image, LoadedImage) else as_loaded(image)
