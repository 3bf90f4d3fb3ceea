"""The Recurrent Transformer Network (Kim et al., NeurIPS 2018) as plain tensor functions
with thin ``nn.Module`` wrappers.

Shapes: B batch, C channels, h x w a feature grid. A field is (B, 6, h, w) with channels
(a11, a12, a21, a22, fx, fy) in normalised units (see ``coords``); the identity has A = I,
f = 0. Source and target feature grids always have the same size (both images are resized to
the same square input), so A is the same in normalised and in feature-pixel units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import coords
from .backbones import SEMANTIC, Backbone, build_backbone

if TYPE_CHECKING:
    from .refine import Fixes

WINDOW_RADIUS = 4  # 9 x 9 correlation window: 81 channels
SOFTMAX_TEMPERATURE = 0.05  # on cosine scores, for the weak loss and the confidence
DEFAULT_SCHEDULE = (16, 16, 8, 8, 8)  # the authors': two steps at stride 16, three at stride 8
# A coarse level with no weights of its own: the stride-16 maps pooled 2 x 2 and scored by the
# stride-16 level convolution; its 9 x 9 window reaches twice as far (most of a 320 px image).
COARSE_STRIDE, COARSE_OF = 32, 16
# anchored_hypotheses: a fix's geometry is fitted to the readout matches whose mutual (dual-softmax)
# probability exceeds ANCHOR_MUTUAL (chance on the 40 x 40 grid: about 4e-7; chosen on semcorr-val),
# when there are at least ANCHOR_MIN_CELLS of them
ANCHOR_MUTUAL = 1e-4
ANCHOR_MIN_CELLS = 6
GEOMETRY_PASSES = 10  # reweighting passes of robust_fit (chosen on semcorr-val, seventh session)
# semantic_readout with fixes: a pixel whose match lies farther than this (normalised units) from
# the overall geometry pinned to the fixes loses its field's prior (chosen on semcorr-val, seventh and
# eleventh sessions)
GEOMETRY_GATE = 0.15
# semantic_readout with fixes: a pixel the gate keeps weighs the fixes' hypotheses only within this
# distance (normalised units) of a fix's source; a fix's linear map is surest near it (eleventh session)
ANCHOR_REACH = 1.0
# semantic_readout with fixes: a fix's target is taken, so a pixel the gate frees may match near it
# only as near as its distance from the fix's source allows: cells c with |c - t| < EXCLUSION_RATIO
# |p - s| cost up to EXCLUSION more (score units; chosen on semcorr-val, tenth session)
EXCLUSION = 0.3
EXCLUSION_RATIO = 0.6


# ---------------------------------------------------------------- tensor functions

def identity_field(batch: int, height: int, width: int, device=None) -> torch.Tensor:
    """(B, 6, h, w) identity field: A = I, f = 0."""
    field = torch.zeros(batch, 6, height, width, device=device)
    field[:, 0] = 1.0
    field[:, 3] = 1.0
    return field


def affine_sample_grid(field: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Normalised positions p + f + A d for every grid pixel p and offset d.

    field: (B, 6, h, w); offsets: (K, 2) in feature pixels. Returns (B, h, w, K, 2).
    """
    batch, _, height, width = field.shape
    centres = coords.grid_centres(height, width, field.device)  # (h, w, 2)
    d = coords.offsets_to_normalised(offsets.to(field), (width, height))  # (K, 2)
    affine = field[:, :4].permute(0, 2, 3, 1).reshape(batch, height, width, 1, 2, 2)
    shift = (affine @ d.view(1, 1, 1, -1, 2, 1)).squeeze(-1)  # (B, h, w, K, 2)
    translation = field[:, 4:6].permute(0, 2, 3, 1)
    return (centres + translation)[:, :, :, None, :] + shift


def warp_by_field(features: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) target features sampled at each source pixel's match p + f -> (B, C, h, w)."""
    grid = affine_sample_grid(field, torch.zeros(1, 2))[:, :, :, 0]
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


_NEIGHBOURHOOD = torch.tensor([[dx, dy] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=torch.float32)


def affine_neighbourhood(features: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """The 3x3 neighbourhood {p + f + A d : d in {-1,0,1}^2} of every pixel, tiled into (B, C, 3h, 3w).

    A 3x3 convolution with stride 3 on this map is a deformable convolution whose offsets
    follow the local affine map (DESIGN.md 2.2).
    """
    batch, _, height, width = field.shape
    grid = affine_sample_grid(field, _NEIGHBOURHOOD)  # (B, h, w, 9, 2)
    grid = grid.view(batch, height, width, 3, 3, 2).permute(0, 1, 3, 2, 4, 5)
    grid = grid.reshape(batch, 3 * height, 3 * width, 2)
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def local_correlation(source: torch.Tensor, target: torch.Tensor, radius: int = WINDOW_RADIUS) -> torch.Tensor:
    """(B, C, h, w) x2 -> (B, (2r+1)^2, h, w) dot products of source[p] with target[p + d].

    Channel (dy + r) * (2r + 1) + (dx + r) holds offset d = (dx, dy); outside the map counts 0.
    """
    return _LocalCorrelation.apply(source, target, radius)


class _LocalCorrelation(torch.autograd.Function):
    """:func:`local_correlation` as one batched matmul per window row, forward and backward.

    For window row dy, every source pixel of image row y is multiplied with every pixel of the
    padded target row y + dy (a (w, C) x (C, w + 2r) product); the 2r + 1 diagonals of that
    product are the row's offsets. This wastes about (w + 2r) / (2r + 1) of the products but runs
    as matrix multiplication: 4x faster than 81 elementwise passes at stride 8 on CPU (autograd's
    backward of those passes zero-filled a padded gradient per offset and halved training speed).
    """

    @staticmethod
    def forward(ctx, source, target, radius):
        batch, _, height, width = source.shape
        side = 2 * radius + 1
        rows = F.pad(target, [radius] * 4).transpose(1, 2).contiguous()  # (B, h + 2r, C, w + 2r)
        pixels = source.permute(0, 2, 3, 1).contiguous()  # (B, h, w, C)
        out = source.new_empty(batch, side, side, height, width)
        for dy in range(side):
            products = pixels @ rows[:, dy:dy + height]  # (B, h, w, w + 2r)
            out[:, dy] = _window_band(products, side).permute(0, 3, 1, 2)
        ctx.save_for_backward(pixels, rows)
        ctx.radius = radius
        return out.view(batch, side * side, height, width)

    @staticmethod
    def backward(ctx, grad):
        pixels, rows = ctx.saved_tensors
        radius = ctx.radius
        batch, height, width, _ = pixels.shape
        side = 2 * radius + 1
        grad = grad.reshape(batch, side, side, height, width)
        grad_pixels = torch.zeros_like(pixels)
        grad_rows = torch.zeros_like(rows)
        banded = pixels.new_zeros(batch, height, width, width + 2 * radius)  # zero off the band
        for dy in range(side):
            _window_band(banded, side).copy_(grad[:, dy].permute(0, 2, 3, 1))
            grad_pixels += banded @ rows[:, dy:dy + height].transpose(-1, -2)
            grad_rows[:, dy:dy + height] += pixels.transpose(-1, -2) @ banded
        grad_target = grad_rows[:, radius:radius + height, :, radius:radius + width].transpose(1, 2)
        return grad_pixels.permute(0, 3, 1, 2), grad_target, None


def _window_band(matrix: torch.Tensor, side: int) -> torch.Tensor:
    """View (B, h, w, side) of a contiguous (B, h, w, w + side - 1) row product: element [x, dx]
    is [x, x + dx], the product of pixel x with the target pixel at window column dx."""
    batch, height, width, wide = matrix.shape
    return matrix.as_strided((batch, height, width, side), (height * width * wide, width * wide, wide + 1, 1))


def window_softmax(correlation: torch.Tensor, temperature: float = SOFTMAX_TEMPERATURE) -> torch.Tensor:
    """Softmax over the window channels of a cosine correlation."""
    return torch.softmax(correlation / temperature, dim=1)


def window_loss(correlation: torch.Tensor, mask: torch.Tensor | None = None,
                temperature: float = SOFTMAX_TEMPERATURE) -> torch.Tensor:
    """Weak loss (DESIGN.md 2.6): cross-entropy of the window softmax with the centre as positive.

    mask: optional (B, h, w) weights, e.g. 1 inside the source object box.
    """
    centre = correlation.shape[1] // 2
    nll = -torch.log_softmax(correlation / temperature, dim=1)[:, centre]
    if mask is None:
        return nll.mean()
    return (nll * mask).sum() / mask.sum().clamp(min=1.0)


def semantic_readout(field: torch.Tensor, source: torch.Tensor, target: torch.Tensor, weight: float,
                     anchors: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The field, resampled to the semantic maps' grid, with each pixel's translation moved to the
    target cell c that maximises score(p, c) - weight |c - (p + f(p))|^2 (normalised units): a MAP
    readout with the RTN's field as the prior and the ImageNet features as the likelihood.

    score: the cosine similarity averaged over p's 3 x 3 neighbourhood shifted as a block
    (:func:`neighbourhood_consensus`: a part matches with its surroundings), then made mutual by a
    dual softmax (:func:`dual_log_softmax`: a target cell many source pixels like is worth less).
    Both were chosen on semcorr-val (MODEL_CARD.md, fifth session). source/target: (B, C, H, W)
    L2-normalised features; A is kept.

    anchors: fixed correspondences, (K, 2) normalised source and target points. Each adds a second
    hypothesis of where every pixel belongs (:func:`anchored_hypotheses`: the fix's geometry); a
    pixel's prior distance is then to the nearer of its field's target and the hypotheses', so a
    correction reaches the pixels whose features agree with it, not only its neighbours (chosen
    on semcorr-val, MODEL_CARD.md sixth session), within ANCHOR_REACH of a fix (eleventh). A pixel whose match the overall geometry pinned
    to the fixes disagrees with (:func:`geometry_residual` above GEOMETRY_GATE) keeps only the
    fixes' hypotheses: its own match was probably wrong (seventh session); it also may not land on
    a fix's target unless it lies near the fix's source (:func:`taken_targets`; tenth session).

    Returns the field and its certainty, (B, 3, H, W): the log dual-softmax probability of each
    pixel's chosen cell (score / temperature: near 0 for a mutual match), the entropy of the
    pixel's posterior softmax((score - weight d^2) / temperature) over the target cells (low where
    one place clearly wins) and the distance of its match from the object's overall geometry
    (:func:`geometry_residual`); all are confidence features (``rtn_core.confidence``).
    """
    height, width = source.shape[-2:]
    if field.shape[-2:] != (height, width):
        field = upsample_field(field, (height, width))
    batch = field.shape[0]
    cells = coords.grid_centres(height, width, field.device).reshape(-1, 2)  # (n, 2)
    matches = cells[None] + field[:, 4:6].flatten(2).transpose(1, 2)  # (B, n, 2)
    similarity = source.flatten(2).transpose(1, 2) @ target.flatten(2)  # (B, n, n)
    score = dual_log_softmax(neighbourhood_consensus(similarity, height, width))
    distance2 = torch.cdist(matches, cells[None].expand(batch, -1, -1)) ** 2
    posterior = score - weight * distance2
    chosen = posterior.argmax(dim=2)  # (B, n)
    if anchors is not None and len(anchors[0]):
        mutual = score.gather(2, chosen[..., None])[..., 0] / SOFTMAX_TEMPERATURE
        anchored = torch.stack([torch.cdist(hypothesis, cells[None].expand(batch, -1, -1)) ** 2
                                for hypothesis in anchored_hypotheses(cells, cells[chosen], mutual, *anchors)]).amin(0)
        off_geometry = torch.stack([geometry_residual(cells, cells[c], m.exp(), pins=anchors)
                                    for c, m in zip(chosen, mutual)]) > GEOMETRY_GATE  # (B, n)
        near_fix = (torch.cdist(cells, anchors[0].to(cells)) < ANCHOR_REACH).any(dim=1)  # (n,)
        kept_prior = torch.where(near_fix[:, None], torch.minimum(distance2, anchored), distance2)
        distance2 = torch.where(off_geometry[..., None], anchored, kept_prior)
        posterior = score - weight * distance2 - EXCLUSION * taken_targets(cells, *anchors, off_geometry)
        chosen = posterior.argmax(dim=2)
    translation = (cells[chosen] - cells[None]).transpose(1, 2).reshape(batch, 2, height, width)
    mutual = score.gather(2, chosen[..., None])[..., 0] / SOFTMAX_TEMPERATURE
    log_p = torch.log_softmax(posterior / SOFTMAX_TEMPERATURE, dim=2)
    entropy = -(log_p.exp() * log_p).sum(dim=2)
    geometry = torch.stack([geometry_residual(cells, cells[c], m.exp()) for c, m in zip(chosen, mutual)])
    certainty = torch.stack([mutual, entropy, geometry], dim=1).view(batch, 3, height, width)
    return torch.cat([field[:, :4], translation], dim=1), certainty


def anchored_hypotheses(cells: torch.Tensor, matches: torch.Tensor, mutual: torch.Tensor,
                        source_n: torch.Tensor, target_n: torch.Tensor) -> list[torch.Tensor]:
    """Per fix k, where its geometry puts every cell p: t_k + (p - s_k) M, with the 2 x 2 M fitted
    by least squares to the cells' readout matches relative to the fix, (match - t_k) ~ (p - s_k) M,
    over the cells whose match is mutual (probability above ANCHOR_MUTUAL; M = I where fewer than
    ANCHOR_MIN_CELLS are). A robust fit scored higher at one fix but lower at two and three
    (MODEL_CARD.md, seventh session). cells: (n, 2); matches: (B, n, 2); mutual: (B, n) log probabilities.
    Returns K tensors of (B, n, 2)."""
    source_n, target_n = source_n.to(cells), target_n.to(cells)
    hypotheses = []
    for s, t in zip(source_n, target_n):
        placed = []
        for match, log_p in zip(matches, mutual):
            sure = log_p > math.log(ANCHOR_MUTUAL)
            linear = torch.eye(2, device=cells.device)
            if sure.sum() >= ANCHOR_MIN_CELLS:
                linear = torch.linalg.lstsq(cells[sure] - s, match[sure] - t).solution
            placed.append(t + (cells - s) @ linear)
        hypotheses.append(torch.stack(placed))
    return hypotheses


def taken_targets(cells: torch.Tensor, source_n: torch.Tensor, target_n: torch.Tensor,
                  freed: torch.Tensor) -> torch.Tensor:
    """(B, n, n) how far each source cell p matching target cell c would crowd a fix (s, t): 1 at
    c = t for p away from s, falling to 0 where |c - t| reaches EXCLUSION_RATIO |p - s|; the largest
    over the fixes; 0 for the pixels not ``freed`` ((B, n) bool: the geometry gate's), whose match
    the overall geometry accepts. Two parts are not one spot (the confidence's crowding feature says
    the same): on a rigid object a wrong point often sits on the look-alike a fix has just claimed."""
    source_n, target_n = source_n.to(cells), target_n.to(cells)
    reach = EXCLUSION_RATIO * torch.cdist(cells, source_n)  # (n, K): how near t a pixel may land
    near = torch.cdist(cells, target_n)  # (n, K)
    crowding = (reach.T[:, :, None] - near.T[:, None, :]) / reach.T[:, :, None].clamp_min(1e-6)  # (K, n, n)
    return crowding.clamp_min(0).amax(0)[None] * freed[..., None]


def robust_fit(basis: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, passes: int = GEOMETRY_PASSES,
               pins: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least squares of (m, 2) ``targets`` on (m, d) ``basis`` rows with (m,) ``weight``,
    reweighted ``passes`` times by 1 / (1 + (r / s)^2), s the weighted mean residual, so that the
    wrong rows stop pulling the fit. ``pins``: (k, d) basis rows and (k, 2) targets the fit must
    follow, each weighing as much as all the other rows together. Returns the (d, 2) coefficients
    and the (m,) residuals."""
    pin_basis, pin_targets = pins if pins is not None else (basis.new_zeros(0, basis.shape[1]), targets.new_zeros(0, 2))
    fit_weight = weight
    for _ in range(passes + 1):
        root = torch.cat([fit_weight, fit_weight.sum().expand(len(pin_basis))]).sqrt()[:, None]
        coefficients = torch.linalg.lstsq(torch.cat([basis, pin_basis]) * root,
                                          torch.cat([targets, pin_targets]) * root).solution
        residual = (basis @ coefficients - targets).norm(dim=1)
        spread = (residual * fit_weight).sum() / fit_weight.sum().clamp_min(1e-12) + 1e-3
        fit_weight = weight / (1 + (residual / spread) ** 2)
    return coefficients, residual


def geometry_residual(cells: torch.Tensor, matches: torch.Tensor, weight: torch.Tensor,
                      pins: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """(n,) distance (normalised units) of each cell's match from a robust quadratic map of the
    whole image fitted to all the matches: a match the rest of the object's geometry disagrees with
    (a wrong wheel, a swapped leg) lies far from it. :func:`robust_fit` of the (n, 2) matches on
    (x, y, 1, x^2, y^2, xy) of the (n, 2) cells, weighted by the (n,) ``weight`` (the readout's
    mutual probability; chosen on semcorr-val, MODEL_CARD.md seventh session). ``pins``: fixed
    correspondences, (K, 2) source and target points, that the map must follow."""
    def quadratic(points):
        x, y = points[:, :1], points[:, 1:]
        return torch.cat([x, y, torch.ones_like(x), x * x, y * y, x * y], dim=1)

    pins = None if pins is None else (quadratic(pins[0].to(cells)), pins[1].to(cells))
    return robust_fit(quadratic(cells), matches, weight, pins=pins)[1]


def neighbourhood_consensus(similarity: torch.Tensor, height: int, width: int, radius: int = 1) -> torch.Tensor:
    """(B, n, n) scores of every source cell p against every target cell c (n = height x width) ->
    the mean over offsets d in p's (2r+1)^2 neighbourhood of score(p + d, c + d); a target
    neighbour beyond the map counts 0, a source neighbour beyond it is left out of the mean."""
    batch = similarity.shape[0]
    scores = similarity.view(batch, height, width, height, width)
    padded = F.pad(scores, (radius,) * 8)
    total = torch.zeros_like(scores)
    inside = F.pad(similarity.new_ones(height, width), (radius,) * 4)
    count = torch.zeros_like(inside[:height, :width])
    span = range(-radius, radius + 1)
    for dy in span:
        for dx in span:
            ys, xs = slice(radius + dy, radius + dy + height), slice(radius + dx, radius + dx + width)
            total += padded[:, :, :, ys, xs][:, ys, xs]
            count += inside[ys, xs]
    return (total / count[None, :, :, None, None]).view(batch, height * width, height * width)


def dual_log_softmax(scores: torch.Tensor, temperature: float = SOFTMAX_TEMPERATURE) -> torch.Tensor:
    """(B, n, m) scores -> temperature x (log softmax over targets + log softmax over sources):
    high only where the target cell prefers the source cell back (a mutual match)."""
    logits = scores / temperature
    return temperature * (torch.log_softmax(logits, dim=2) + torch.log_softmax(logits, dim=1))


def upsample_field(field: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize of a field; normalised units need no rescaling."""
    return F.interpolate(field, size=size, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------- modules

class LevelConv(nn.Module):
    """The last convolution of a level, applied on the source's regular grid or on the target's
    affinely sampled neighbourhoods, followed by the level's activation and L2 normalisation.

    With a backbone conv (VGG-19's conv5_1 / conv4_1) the activation is its ReLU. Otherwise a
    learned 3x3 conv starts as the identity on its centre tap, with no activation, so the
    untrained network correlates the backbone's own features.
    """

    def __init__(self, channels: int, backbone_conv: nn.Conv2d | None = None):
        super().__init__()
        if backbone_conv is not None:
            self.conv, self.relu = backbone_conv, True
        else:
            self.conv, self.relu = nn.Conv2d(channels, channels, 3, bias=True), False
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[:, :, 1, 1] = torch.eye(channels)
                self.conv.bias.zero_()

    def _finish(self, x):
        return F.normalize(F.relu(x) if self.relu else x, dim=1)

    def regular(self, features: torch.Tensor) -> torch.Tensor:
        return self._finish(F.conv2d(features, self.conv.weight, self.conv.bias, padding=1))

    def aligned(self, features: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
        tiles = affine_neighbourhood(features, field)
        return self._finish(F.conv2d(tiles, self.conv.weight, self.conv.bias, stride=3))


def _conv_block(c_in, c_out, kernel=3):
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.ReLU(inplace=True))


class GeometricUNet(nn.Module):
    """G: 81-channel normalised correlation -> (B, 6, h, w) residual field in feature pixels.

    As the official network: 9x9 conv in, an encoder with pooling, a decoder with skip
    connections and bilinear x2 upsampling, a 9x9 conv out whose weights start at zero so the
    first field is the identity. ``widths`` sets the encoder channels (the official one is
    64-128-256-512-512; the default here is lighter for CPU speed).
    """

    def __init__(self, widths=(32, 64, 96, 128, 128), in_channels: int = (2 * WINDOW_RADIUS + 1) ** 2):
        super().__init__()
        self.head = _conv_block(in_channels, widths[0], 9)
        self.down = nn.ModuleList(_conv_block(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.up = nn.ModuleList(_conv_block(widths[i + 1] + widths[i], widths[i])
                                for i in reversed(range(len(widths) - 1)))
        self.out = nn.Conv2d(widths[0], 6, 9, padding=4)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, correlation):
        skips = [self.head(correlation)]
        for block in self.down:
            x = skips[-1]
            if min(x.shape[-2:]) >= 2:
                x = F.max_pool2d(x, 2)
            skips.append(block(x))
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.out(x)


@dataclass
class Step:
    """One iteration of the recurrence: the field T^k and the window correlation it yields."""

    field: torch.Tensor  # (B, 6, h, w)
    correlation: torch.Tensor  # (B, 81, h, w) cosine scores, target aligned by this field
    stride: int
    readout: bool = False  # this field is the semantic readout of the last update's
    certainty: torch.Tensor | None = None  # the readout's (B, 3, h, w) certainty maps (semantic_readout)


class RTN(nn.Module):
    """Siamese backbone + level convolutions + shared G, iterated over ``schedule`` strides."""

    def __init__(self, backbone: str = "efficientnet-lite0", backbone_weights: str | None = None,
                 schedule=DEFAULT_SCHEDULE, unet_widths=(32, 64, 96, 128, 128)):
        super().__init__()
        self.readout_weight: float | None = None  # semantic_readout of the last field; None: off
        self.backbone_name = backbone
        self.backbone: Backbone = build_backbone(backbone, backbone_weights)
        own = self.backbone.own_level_convs or {}
        self.level_convs = nn.ModuleDict({
            str(stride): LevelConv(self.backbone.channels[stride], own.get(stride))
            for stride in sorted(self.backbone.channels)})  # every level, whatever the schedule uses
        self.geometry = GeometricUNet(unet_widths)
        self.schedule = tuple(schedule)

    @property
    def reads_out(self) -> bool:
        """Whether a semantic readout follows the last update (a weight is set and the backbone has the maps)."""
        return self.readout_weight is not None and self.backbone.has_semantic

    @property
    def iterations(self) -> int:
        """Fields after the identity: one per update, and the readout."""
        return len(self.schedule) + self.reads_out

    @property
    def levels(self) -> list[int]:
        """The strides a schedule may use: the levels with weights, and the coarse level above stride 16."""
        strides = [int(s) for s in self.level_convs]
        return sorted(strides + ([COARSE_STRIDE] if COARSE_OF in strides else []))

    def level_conv(self, stride: int) -> LevelConv:
        return self.level_convs[str(_weighted_level(stride))]

    def features(self, images: torch.Tensor) -> dict:
        """(B, 3, S, S) RGB in [0, 1] -> {stride: pre map} of the backbone."""
        return self.backbone(self.backbone.normalise(images))

    def iterate(self, source: torch.Tensor, target: torch.Tensor) -> Iterator[Step]:
        """Yield T^0 (identity) .. T^K with their correlations, each as soon as it is computed."""
        pre_source, pre_target = self.siamese_features(source, target)
        yield from self.iterate_features(pre_source, pre_target)

    def iterate_features(self, pre_source: dict, pre_target: dict,
                         source_features: dict | None = None, start: torch.Tensor | None = None,
                         fixes: "Fixes | None" = None) -> Iterator[Step]:
        """:meth:`iterate` on precomputed backbone maps (the trainer reuses them).

        ``source_features``: {stride: source level features} already computed (e.g. by
        :meth:`final_features`), so they are not computed again. ``start``: a (B, 6, h, w) field
        to begin from instead of the identity; the schedule then begins at its first step on that
        grid. ``fixes``: fixed correspondences (``refine.Fixes``) imposed on every field before it
        is scored (the start, after each upsampling and each update) and anchoring the readout.
        When the model :attr:`reads_out`, one more field follows the last update's: its
        :func:`semantic_readout`.
        """
        field, first = start, 0
        source_features = dict(source_features or {})
        pre_source, pre_target = _with_coarse(pre_source, self.schedule), _with_coarse(pre_target, self.schedule)
        if start is not None:
            grids = [tuple(pre_source[s].shape[-2:]) for s in self.schedule]
            if tuple(start.shape[-2:]) not in grids:
                raise ValueError(f"start field grid {tuple(start.shape[-2:])} is none of the levels {grids}")
            first = grids.index(tuple(start.shape[-2:]))
        # the last update's field is scored on the last level; its readout on the semantic maps'
        # grid, the finest level's (Backbone.semantic)
        strides = self.schedule + (self.schedule[-1],) + ((min(self.backbone.channels),) if self.reads_out else ())
        for k, stride in enumerate(strides[first:], start=first):
            height, width = pre_source[stride].shape[-2:]
            if field is None:
                field = identity_field(pre_source[stride].shape[0], height, width, pre_source[stride].device)
            elif field.shape[-2:] != (height, width):
                field = upsample_field(field, (height, width))
            readout, certainty = k > len(self.schedule), None
            if readout:
                anchors = None if fixes is None else (fixes.source, fixes.target)
                field, certainty = semantic_readout(field, pre_source[SEMANTIC], pre_target[SEMANTIC],
                                                    self.readout_weight, anchors)
            if fixes is not None:
                field = fixes.impose(field)
            if stride not in source_features:
                source_features[stride] = self.level_conv(stride).regular(pre_source[stride])
            aligned = self.level_conv(stride).aligned(pre_target[stride], field)
            correlation = local_correlation(source_features[stride], aligned)
            yield Step(field, correlation, stride, readout, certainty)
            if k >= len(self.schedule):  # no update after the last one, nor after the readout
                continue
            residual = self.geometry(F.normalize(correlation, dim=1))
            scale = torch.tensor([1, 1, 1, 1, 2.0 / width, 2.0 / height], device=field.device).view(1, 6, 1, 1)
            field = field + residual * scale

    def final_features(self, pre_source: dict, pre_target: dict):
        """L2-normalised source and target features on the finest level's regular grid."""
        stride = min(self.schedule)
        conv = self.level_conv(stride)
        return conv.regular(pre_source[stride]), conv.regular(pre_target[stride])

    def siamese_features(self, source, target):
        both = self.features(torch.cat([source, target], dim=0))
        batch = source.shape[0]
        return ({s: m[:batch] for s, m in both.items()}, {s: m[batch:] for s, m in both.items()})

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> list[Step]:
        return list(self.iterate(source, target))


def _weighted_level(stride: int) -> int:
    """The level whose weights serve ``stride`` (the coarse level borrows stride 16's)."""
    return COARSE_OF if stride == COARSE_STRIDE else stride


def _with_coarse(pre: dict, schedule) -> dict:
    """``pre`` maps with the coarse level added (stride 16 pooled 2 x 2) when the schedule uses it."""
    if COARSE_STRIDE not in schedule or COARSE_STRIDE in pre:
        return pre
    return {**pre, COARSE_STRIDE: F.avg_pool2d(pre[COARSE_OF], 2, ceil_mode=True)}
